"""Shared-tree routing returns shortest routes, origin- or destination-rooted."""

from __future__ import annotations

import networkx as nx
import numpy as np

from citytwin.network.routing import road_arrays, travel_times
from citytwin.traffic.grid import grid_roads
from citytwin.traffic.paths import route_trips


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


def test_limited_trees_give_the_same_routes():
    """Trees stopped at ``limit`` and the trips beyond it routed again: the routes of unlimited
    trees, for short and long trips alike."""
    a = road_arrays(grid_roads(9, 9, seed=2))
    rng = np.random.default_rng(3)
    cost = a.freeflow_s * rng.uniform(1, 3, a.n_edges)
    src, dst = rng.integers(0, 81, 500), rng.integers(0, 81, 500)
    full = route_trips(a, src, dst, cost=cost)
    for limit in (0.0, 60.0, float(np.median(cost)) * 4, 1e9):
        got = route_trips(a, src, dst, cost=cost, limit=limit)
        assert np.array_equal(got[0], full[0]) and np.array_equal(got[1], full[1]), limit
