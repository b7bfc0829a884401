"""Routing on CSR arrays agrees with networkx's Dijkstra on the same graph."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from citytwin.network.routing import path_edges, road_arrays, shortest_path_tree, travel_times


def _grid(n: int = 6, seed: int = 3) -> nx.MultiDiGraph:
    rng = np.random.default_rng(seed)
    G = nx.MultiDiGraph(crs="EPSG:32635")
    for i in range(n):
        for j in range(n):
            G.add_node(i * n + j, x=100.0 * i, y=100.0 * j)
    eid = 0
    for i in range(n):
        for j in range(n):
            for di, dj in ((1, 0), (0, 1), (-1, 0), (0, -1)):
                a, b = i + di, j + dj
                if 0 <= a < n and 0 <= b < n:
                    speed = float(rng.choice([30.0, 50.0]))
                    G.add_edge(i * n + j, a * n + b, edge_id=eid, length=100.0,
                               speed_kph=speed, travel_time=100.0 / (speed / 3.6), lanes=1,
                               capacity_vph=1800.0)
                    eid += 1
    # a slower parallel edge must never be chosen over the fast one
    G.add_edge(0, 1, edge_id=eid, length=100.0, speed_kph=5.0, travel_time=72.0, lanes=1,
               capacity_vph=600.0)
    return G


def test_travel_times_match_networkx() -> None:
    G = _grid()
    arr = road_arrays(G)
    ours = travel_times(arr, [0, 17])
    for row, src in enumerate((0, 17)):
        ref = nx.single_source_dijkstra_path_length(G, src, weight="travel_time")
        for node, t in ref.items():
            assert ours[row, arr.node_pos(node)] == pytest.approx(t, rel=1e-12)


def test_reverse_trees_are_times_to_the_target() -> None:
    G = _grid()
    arr = road_arrays(G)
    to_5 = travel_times(arr, [arr.node_pos(5)], reverse=True)[0]
    from_all = travel_times(arr, np.arange(arr.n_nodes))[:, arr.node_pos(5)]
    np.testing.assert_allclose(to_5, from_all)


def test_path_edges_sum_to_tree_time_and_follow_cost_changes() -> None:
    G = _grid()
    arr = road_arrays(G)
    dist, pred = shortest_path_tree(arr, 0)
    target = arr.node_pos(35)
    edges = path_edges(arr, pred, target)
    assert edges and arr.edge_from[edges[0]] == 0 and arr.edge_to[edges[-1]] == target
    assert arr.freeflow_s[edges].sum() == pytest.approx(dist[target])
    # closing every edge on that path (infinite cost) forces a different, longer route
    cost = arr.freeflow_s.copy()
    cost[edges] = np.inf
    dist2, pred2 = shortest_path_tree(arr, 0, cost=cost)
    edges2 = path_edges(arr, pred2, target, cost=cost)
    assert not set(edges) & set(edges2)
    assert dist2[target] > dist[target]


def test_duplicate_edge_ids_are_rejected() -> None:
    G = _grid(3)
    u, v, k = next(iter(G.edges(keys=True)))
    G.edges[u, v, k]["edge_id"] = 1 if G.edges[u, v, k]["edge_id"] != 1 else 2
    with pytest.raises(ValueError, match="edge_id"):
        road_arrays(G)
