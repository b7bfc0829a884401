"""build_road_graph on hand-made layers (no files), and City.with_roads after closures."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import pandas as pd
import pytest
import shapely

from citytwin.city import City
from citytwin.layers import LoadReport
from citytwin.network.roads import build_road_graph, parse_maxspeed, parse_oneway

CRS = "EPSG:32635"


def _roads(rows: list[dict]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(rows, crs=CRS)


def test_parsers() -> None:
    s = parse_maxspeed(pd.Series(["50", "30 mph", None, "walk", "40;50"]))
    assert s[0] == 50 and s[1] == pytest.approx(48.28, abs=0.01) and s[4] == 40
    assert pd.isna(s[2]) and pd.isna(s[3])
    assert parse_oneway(pd.Series(["yes", "-1", "no", None, "true"])).tolist() == [1, -1, 0, 0, 1]


def test_multilinestring_reverse_oneway_roundabout_unknown_class() -> None:
    sq = [(0, 0), (100, 0), (100, 100), (0, 100)]
    rows = [
        # a two-part feature: (0,0)-(100,0) and (100,0)-(100,100), two-way, 3 lanes, 20 mph
        {"highway": "tertiary", "oneway": None, "lanes": "3", "maxspeed": "20 mph",
         "geometry": shapely.MultiLineString([[sq[0], sq[1]], [sq[1], sq[2]]])},
        # drawn (0,100)->(100,100) but oneway=-1: traffic flows (100,100)->(0,100)
        {"highway": "weird_class", "oneway": "-1", "lanes": None, "maxspeed": None,
         "geometry": shapely.LineString([sq[3], sq[2]])},
        {"highway": "residential", "oneway": None, "lanes": None, "maxspeed": None,
         "junction": "roundabout", "geometry": shapely.LineString([sq[3], sq[0]])},
    ]
    report = LoadReport()
    G = build_road_graph(_roads(rows), report=report)
    assert nx.is_strongly_connected(G)
    pos = {(round(d["x"]), round(d["y"])): n for n, d in G.nodes(data=True)}
    a, b, c, d = (pos[p] for p in sq)
    assert G.has_edge(c, d) and not G.has_edge(d, c)  # reverse one-way
    assert G.has_edge(d, a) and not G.has_edge(a, d)  # roundabout implies one-way
    assert G.has_edge(a, b) and G.has_edge(b, a) and G.has_edge(b, c) and G.has_edge(c, b)
    e = G[a][b][0]
    assert e["lanes"] == 1 and e["speed_kph"] == pytest.approx(32.19, abs=0.01)
    assert e["capacity_vph"] == 1200.0
    w = G[c][d][0]
    assert w["highway"] == "weird_class" and w["speed_kph"] == 30.0  # unclassified default
    assert w["geometry"].coords[0] == (100.0, 100.0)
    assert any("MultiLineString" in n for n in report.notes)
    assert report.inferred["road class unknown (treated as unclassified)"] == 1
    assert sorted(d["edge_id"] for *_, d in G.edges(data=True)) == list(range(6))


def test_with_roads_reattaches_after_closure(tiny: City) -> None:
    G = tiny.roads.copy()
    b0 = int(tiny.buildings.loc[0, "road_node"])
    # close every link into b0's node: it stays in the graph but can no longer be reached
    for u, v, k in list(G.in_edges(b0, keys=True)):
        G.remove_edge(u, v, k)
    for i, (*_, d) in enumerate(G.edges(data=True)):
        d["edge_id"] = i
    c2 = tiny.with_roads(G)
    n0 = int(c2.buildings.loc[0, "road_node"])
    assert n0 != b0 and n0 in G
    core = max(nx.strongly_connected_components(G), key=len)
    assert c2.buildings["road_node"].isin(core).all()
    assert int(tiny.buildings.loc[0, "road_node"]) == b0  # original untouched
    kept = tiny.buildings["road_node"] != b0
    assert (c2.buildings.loc[kept, "road_node"] == tiny.buildings.loc[kept, "road_node"]).all()


def test_unnoded_lines_are_split_at_shared_vertices() -> None:
    # one long east-west line through (100, 0), where a north-south line ends (T-junction),
    # and a north-south line crossing at (200, 0) sharing that vertex (X-junction);
    # a third line crosses at (50, 0) *without* a shared vertex: a bridge, not split
    rows = [
        {"highway": "primary", "geometry": shapely.LineString(
            [(0, 0), (100, 0), (200, 0), (300, 0)])},
        {"highway": "residential", "geometry": shapely.LineString([(100, 0), (100, 100)])},
        {"highway": "residential", "geometry": shapely.LineString(
            [(200, -100), (200, 0), (200, 100)])},
        {"highway": "residential", "geometry": shapely.LineString([(50, -50), (50, 50)])},
    ]
    report = LoadReport()
    G = build_road_graph(_roads(rows), report=report)
    pos = {(round(d["x"]), round(d["y"])): n for n, d in G.nodes(data=True)}
    assert (100, 0) in pos and (200, 0) in pos and (50, 0) not in pos
    assert G.has_edge(pos[(0, 0)], pos[(100, 0)]) and G.has_edge(pos[(100, 0)], pos[(200, 0)])
    assert G.has_edge(pos[(200, 0)], pos[(200, 100)])
    assert G.nodes[pos[(200, 0)]]["street_count"] == 4
    assert G[pos[(100, 0)]][pos[(200, 0)]][0]["length"] == pytest.approx(100.0)
    assert any("split 2 feature(s) at 2 interior junction(s)" in n for n in report.notes)
    # the bridge is its own (two-way, hence strongly connected) part, dropped as smaller
    assert (50, 50) not in pos
    total = sum(d["length"] for *_, d in G.edges(data=True))
    assert total == pytest.approx(2 * (300 + 100 + 200))
