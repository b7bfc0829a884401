"""Shared-tree routing returns shortest routes, origin- or destination-rooted."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from citytwin.errors import InputError
from citytwin.network.routing import RoadArrays, road_arrays, travel_times
from citytwin.traffic.grid import grid_roads
from citytwin.traffic.paths import _tables, landmarks, route_trips


def test_routes_are_connected_and_shortest_in_both_tree_directions():
    G = grid_roads(7, 7, seed=4)
    # a parallel, slower edge must never be chosen
    d0 = next(d for *_, d in G.edges(data=True) if d["edge_id"] == 0)
    u0, v0 = next((u, v) for u, v, d in G.edges(data=True) if d["edge_id"] == 0)
    G.add_edge(u0, v0, **{**d0, "edge_id": G.number_of_edges(), "travel_time": 1e4})
    a = road_arrays(G)
    rng = np.random.default_rng(0)
    cost = a.freeflow_s * rng.uniform(1, 3, a.n_edges)
    for src, dst in [(rng.integers(0, 49, 300), rng.integers(0, 49, 300)),  # many origins
                     (rng.integers(0, 49, 300), np.full(300, 5))]:  # one destination: reverse
        off, edges = route_trips(a, src, dst, cost=cost)
        dist = travel_times(a, np.arange(49), cost=cost)
        for i in range(300):
            r = edges[off[i]:off[i + 1]]
            if src[i] == dst[i]:
                assert r.size == 0
                continue
            assert a.edge_from[r[0]] == src[i] and a.edge_to[r[-1]] == dst[i]
            assert (a.edge_to[r[:-1]] == a.edge_from[r[1:]]).all()
            assert cost[r].sum() == np.float64(dist[src[i], dst[i]]) or np.isclose(
                cost[r].sum(), dist[src[i], dst[i]])
            assert G.number_of_edges() - 1 not in r
    # unreachable: empty route
    H = nx.MultiDiGraph(G)
    H.add_node(999, x=0.0, y=0.0, lon=0.0, lat=0.0)
    b = road_arrays(H)
    off, _ = route_trips(b, [0], [b.node_pos(999)], cost=b.freeflow_s)
    assert off[1] == 0


def _irregular(n: int = 400, seed: int = 1) -> RoadArrays:
    """Random points joined to their nearest neighbours: one-way and two-way links of uneven
    length and speed, parallel links, closed links (free-flow time inf) and a separate island
    of 10 nodes that no other node reaches."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 5000, (n, 2))
    xy[-10:] += 20000  # the island
    f, t = [], []
    for i in range(n):
        near = np.argsort(((xy - xy[i]) ** 2).sum(1))[1:4]
        for j in near:
            f.append(i)
            t.append(int(j))
            if rng.random() < 0.7:  # two-way
                f.append(int(j))
                t.append(i)
    par = rng.choice(len(f), 30, replace=False)  # parallel links
    f += [f[p] for p in par]
    t += [t[p] for p in par]
    ef, et = np.array(f, dtype=np.int64), np.array(t, dtype=np.int64)
    length = np.hypot(*(xy[ef] - xy[et]).T) + 1.0
    ff = length / rng.choice([30 / 3.6, 50 / 3.6, 80 / 3.6], ef.shape[0])
    ff[rng.choice(ef.shape[0], 20, replace=False)] = np.inf  # closed
    m = ef.shape[0]
    return RoadArrays(node_ids=np.arange(n), x=xy[:, 0], y=xy[:, 1], edge_from=ef, edge_to=et,
                      length_m=length, freeflow_s=ff, lanes=np.ones(m),
                      capacity_vph=np.full(m, 1800.0), edge_keys=())


def _assert_shortest(a: RoadArrays, src, dst, cost, off, edges) -> None:
    dist = travel_times(a, np.arange(a.n_nodes), cost=cost)
    for i in range(len(src)):
        r = edges[off[i]:off[i + 1]]
        if src[i] == dst[i] or not np.isfinite(dist[src[i], dst[i]]):
            assert r.size == 0, i
            continue
        assert r.size > 0, i
        assert a.edge_from[r[0]] == src[i] and a.edge_to[r[-1]] == dst[i]
        assert (a.edge_to[r[:-1]] == a.edge_from[r[1:]]).all()
        assert np.isfinite(cost[r]).all()
        assert np.isclose(cost[r].sum(), dist[src[i], dst[i]], rtol=1e-9, atol=1e-9), i


def test_shortest_on_an_irregular_graph_under_congestion():
    """Random congested costs (never below free flow, as the engine's), costs below free flow
    on some links (the landmark bounds must shrink), and a closed link reopened (no bound)."""
    a = _irregular()
    rng = np.random.default_rng(5)
    n = a.n_nodes
    src, dst = rng.integers(0, n, 600), rng.integers(0, n, 600)
    src[:20] = n - 3  # from the island: only its own nodes are reachable
    base = np.where(np.isfinite(a.freeflow_s), a.freeflow_s, np.inf)
    congested = base * rng.uniform(1, 3, a.n_edges)
    faster = congested.copy()
    faster[rng.choice(a.n_edges, 50, replace=False)] *= 0.3
    reopened = congested.copy()
    reopened[np.flatnonzero(~np.isfinite(a.freeflow_s))[:5]] = 1.0
    for cost in (base, congested, faster, reopened):
        off, edges = route_trips(a, src, dst, cost=cost)
        _assert_shortest(a, src, dst, cost, off, edges)
    # ties everywhere: every link costs the same
    off, edges = route_trips(a, src, dst, cost=np.where(np.isfinite(base), 10.0, np.inf))
    _assert_shortest(a, src, dst, np.where(np.isfinite(base), 10.0, np.inf), off, edges)


def test_closed_links_are_never_used():
    a = _irregular(seed=3)
    rng = np.random.default_rng(2)
    cost = np.where(np.isfinite(a.freeflow_s), a.freeflow_s, np.inf) * rng.uniform(1, 2, a.n_edges)
    src, dst = rng.integers(0, 390, 300), rng.integers(0, 390, 300)
    off, edges = route_trips(a, src, dst, cost=cost)
    used = np.unique(edges)
    closed = cost.copy()
    closed[used[::3]] = np.inf  # close a third of the links the routes took
    off2, edges2 = route_trips(a, src, dst, cost=closed)
    assert not np.isin(edges2, used[::3]).any()
    assert np.isfinite(a.freeflow_s[edges2]).all()
    _assert_shortest(a, src, dst, closed, off2, edges2)


def test_routes_do_not_depend_on_the_other_trips():
    """A trip's route is a function of its ends and the costs alone (ties included: a grid of
    equal blocks has many equally short routes). The shared trees this replaced picked origin or
    destination trees by the mix of trips in the call, so a tied route could change with it."""
    a = road_arrays(grid_roads(9, 9, seed=2, length_m=(400.0, 400.0), speeds_kph=(36.0,)))
    rng = np.random.default_rng(8)
    cost = a.freeflow_s.copy()
    src, dst = rng.integers(0, 81, 400), rng.integers(0, 81, 400)
    dst[:300] = 40  # most trips go to one node: the old trees were destination trees
    full = route_trips(a, src, dst, cost=cost)
    alone = [route_trips(a, src[i:i + 1], dst[i:i + 1], cost=cost) for i in range(0, 400, 7)]
    for j, i in enumerate(range(0, 400, 7)):
        assert np.array_equal(alone[j][1], full[1][full[0][i]:full[0][i + 1]]), i
    perm = rng.permutation(400)
    sh = route_trips(a, src[perm], dst[perm], cost=cost)
    for k, i in enumerate(perm):
        assert np.array_equal(sh[1][sh[0][k]:sh[0][k + 1]], full[1][full[0][i]:full[0][i + 1]])
    again = route_trips(a, src, dst, cost=cost)
    assert np.array_equal(again[0], full[0]) and np.array_equal(again[1], full[1])
    _assert_shortest(a, src, dst, cost, *full)


def test_landmark_bounds_never_exceed_the_distance():
    """Free-flow tables, scaled and joined with each call's own cost tables: every bound of
    every node towards every target is at most its distance (congested, faster, reopened)."""
    a = _irregular(n=250, seed=4)
    rng = np.random.default_rng(1)
    base = np.where(np.isfinite(a.freeflow_s), a.freeflow_s, np.inf)
    faster = base * rng.uniform(1, 3, a.n_edges)
    faster[rng.choice(a.n_edges, 30, replace=False)] *= 0.4
    reopened = base.copy()
    reopened[np.flatnonzero(~np.isfinite(a.freeflow_s))[:3]] = 5.0
    nodes, lf, lt = landmarks(a)
    assert np.unique(nodes).shape[0] == nodes.shape[0]
    for cost in (base, base * rng.uniform(1, 3, a.n_edges), faster, reopened):
        from_l, to_l = _tables(a, np.maximum(cost, 1e-9))
        dist = travel_times(a, np.arange(a.n_nodes), cost=cost)  # dist[v, t]
        # bound[v, t] = max_j max(to_l[v, j] - to_l[t, j], from_l[t, j] - from_l[v, j])
        h = np.maximum((to_l[:, None, :] - to_l[None, :, :]).max(2),
                       (from_l[None, :, :] - from_l[:, None, :]).max(2))
        ok = np.isfinite(dist)
        assert (h[ok] <= dist[ok]).all()
        assert (h[ok] > 0.5 * dist[ok]).mean() > 0.5  # and they do bound (not all 0)


def test_bad_node_positions_and_cost_length_are_input_errors():
    """The compiled search does not check indices: out-of-range nodes must not reach it."""
    a = road_arrays(grid_roads(3, 3, seed=1))
    with pytest.raises(InputError, match="dst: node positions outside 0..8 at trips \\[1\\]"):
        route_trips(a, [0, 1], [2, 9], cost=a.freeflow_s)
    with pytest.raises(InputError, match="src"):
        route_trips(a, [-1], [2], cost=a.freeflow_s)
    with pytest.raises(InputError, match="cost: expected"):
        route_trips(a, [0], [2], cost=a.freeflow_s[:-1])
