"""An osmnx user can call osmnx functions on the road graph."""

from __future__ import annotations

import networkx as nx
import pytest

from citytwin.city import City

ox = pytest.importorskip("osmnx")


def test_osmnx_functions_run_on_the_road_graph(helsinki: City) -> None:
    G = helsinki.roads
    nodes, edges = ox.graph_to_gdfs(G)
    assert len(nodes) == G.number_of_nodes() and len(edges) == G.number_of_edges()
    assert edges.crs == helsinki.crs
    b = helsinki.buildings.geometry.representative_point()
    near = ox.distance.nearest_nodes(G, b.x.to_numpy()[:20], b.y.to_numpy()[:20])
    assert list(near) == helsinki.buildings["road_node"].iloc[:20].tolist()
    o, d = int(helsinki.buildings["road_node"].iloc[0]), int(helsinki.facilities["road_node"][0])
    route = ox.routing.shortest_path(G, o, d, weight="travel_time")
    assert route[0] == o and route[-1] == d
    cost = sum(min(e["travel_time"] for e in G[u][v].values())
               for u, v in zip(route[:-1], route[1:], strict=True))
    assert cost == pytest.approx(nx.shortest_path_length(G, o, d, weight="travel_time"))
    stats = ox.stats.basic_stats(G)
    assert stats["n"] == G.number_of_nodes()
    assert stats["edge_length_total"] == pytest.approx(
        sum(d["length"] for *_, d in G.edges(data=True)))
