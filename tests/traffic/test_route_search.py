"""Target-stopped route searches (issue 16, scale): shortest, canonical, the same as scipy's trees
where the shortest route is unique, and independent of where a search stops."""

from __future__ import annotations

import numpy as np
import pytest

from citytwin import examples
from citytwin.network.routing import path_edges, shortest_path_tree, travel_times
from citytwin.traffic.paths import route_trips


@pytest.fixture(scope="module")
def arrays():
    # a synthetic city: block grid with many equal-cost alternatives under free-flow times
    return examples.synthetic(400).road_arrays


def _trips(a, rng, n, n_dst=None):
    src = rng.integers(0, a.n_nodes, n)
    if n_dst is None:
        return src, rng.integers(0, a.n_nodes, n)
    return src, rng.choice(a.n_nodes, n_dst, replace=False)[rng.integers(0, n_dst, n)]


@pytest.mark.parametrize("n_dst", [None, 4])  # origin-rooted, destination-rooted (reverse)
def test_routes_cost_exactly_the_shortest_distance_with_ties(arrays, n_dst):
    a = arrays
    rng = np.random.default_rng(1)
    src, dst = _trips(a, rng, 400, n_dst)
    cost = a.freeflow_s.copy()
    cost[rng.integers(0, a.n_edges, 20)] = np.inf  # closed links are never used
    off, edges = route_trips(a, src, dst, cost=cost)
    dist = travel_times(a, src, cost=cost)[np.arange(src.size), dst]
    n_found = 0
    for i in range(src.size):
        r = edges[off[i]:off[i + 1]]
        if src[i] == dst[i] or not np.isfinite(dist[i]):
            assert r.size == 0
            continue
        n_found += 1
        assert a.edge_from[r[0]] == src[i] and a.edge_to[r[-1]] == dst[i]
        assert (a.edge_to[r[:-1]] == a.edge_from[r[1:]]).all()
        assert np.isfinite(cost[r]).all()
        assert cost[r].sum() == pytest.approx(dist[i], rel=1e-12, abs=1e-9)
    assert n_found > 300


def test_same_routes_as_scipy_trees_where_the_shortest_route_is_unique(arrays):
    """With costs that leave no ties, every route is the one read off scipy's tree."""
    a = arrays
    rng = np.random.default_rng(2)
    cost = a.freeflow_s * rng.uniform(1.0, 3.0, a.n_edges)
    src, dst = _trips(a, rng, 60)
    off, edges = route_trips(a, src, dst, cost=cost)
    for i in range(src.size):
        _, pred = shortest_path_tree(a, int(src[i]), cost=cost)
        want = path_edges(a, pred, int(dst[i]), cost=cost) if src[i] != dst[i] else []
        assert edges[off[i]:off[i + 1]].tolist() == want


def test_ties_are_broken_the_same_wherever_a_search_stops(arrays):
    """Free-flow costs on a grid tie often: the routes are the same whether each search stops
    at its own trips' targets, at any cost limit, or serves other trips from the same root
    (routing a subset or a reordering of the trips gives the same route per trip)."""
    a = arrays
    rng = np.random.default_rng(3)
    # fewer origins than destinations in every subset: origin-rooted searches throughout (a
    # destination-rooted tree breaks ties its own way, also canonically)
    src = rng.choice(a.n_nodes, 40, replace=False)[rng.integers(0, 40, 600)]
    dst = rng.integers(0, a.n_nodes, 600)
    cost = a.freeflow_s
    full = route_trips(a, src, dst, cost=cost)

    def route(res, i):
        return res[1][res[0][i]:res[0][i + 1]].tolist()

    for limit in (0.0, 60.0, float(np.median(cost)) * 4, 1e9):
        got = route_trips(a, src, dst, cost=cost, limit=limit)
        assert np.array_equal(got[0], full[0]) and np.array_equal(got[1], full[1]), limit
    perm = rng.permutation(src.size)[:250]
    sub = route_trips(a, src[perm], dst[perm], cost=cost)
    assert all(route(sub, j) == route(full, int(i)) for j, i in enumerate(perm))
    # a far target added to the same roots makes their searches longer, not their routes other
    far = np.argmax(a.x + a.y)
    more = route_trips(a, np.concatenate([src, src[:50]]),
                       np.concatenate([dst, np.full(50, far)]), cost=cost)
    assert all(route(more, i) == route(full, i) for i in range(src.size))
