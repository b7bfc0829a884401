from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from citytwin.city import City
from citytwin.layers import USES, VINTAGES

EDGE_ATTRS = {"edge_id", "osmid", "name", "highway", "oneway", "length", "speed_kph",
              "travel_time", "lanes", "capacity_vph", "geometry"}


def test_helsinki_roads_follow_contract(helsinki: City) -> None:
    G = helsinki.roads
    assert isinstance(G, nx.MultiDiGraph)
    assert G.graph["crs"] == helsinki.crs.to_string() == "EPSG:32635"
    assert nx.is_strongly_connected(G)
    assert G.number_of_nodes() > 1000
    ids = sorted(d["edge_id"] for _, _, d in G.edges(data=True))
    assert ids == list(range(G.number_of_edges()))
    for u, _v, d in G.edges(data=True):
        assert EDGE_ATTRS <= set(d)
        assert d["length"] > 0 and d["speed_kph"] > 0 and d["lanes"] >= 1
        assert d["travel_time"] == pytest.approx(d["length"] / (d["speed_kph"] / 3.6))
        assert d["capacity_vph"] >= 600 * d["lanes"]
        # geometry runs from u to v
        x0, y0 = d["geometry"].coords[0]
        assert (x0, y0) == pytest.approx((G.nodes[u]["x"], G.nodes[u]["y"]), abs=0.02)
        assert d["length"] == pytest.approx(d["geometry"].length)
    for _, d in G.nodes(data=True):
        assert 24.9 < d["lon"] < 25.0 and 60.1 < d["lat"] < 60.2


def test_helsinki_buildings_follow_contract(helsinki: City) -> None:
    b = helsinki.buildings
    assert list(b.index) == list(range(len(b)))
    assert len(b) > 400
    assert set(b["use"].unique()) <= set(USES)
    assert set(b["vintage"].unique()) <= set(VINTAGES)
    assert np.allclose(b["floor_area_m2"], b["footprint_m2"] * b["levels"])
    assert b["road_node"].isin(list(helsinki.roads.nodes)).all()
    res = b["use"] == "residential"
    assert (b.loc[~res, "population"] == 0).all()
    assert b.loc[res, "population"].sum() == pytest.approx(
        b.loc[res, "floor_area_m2"].sum() / 40.0, rel=0.02)
    assert (b.loc[res, "jobs"] == 0).all()
    assert b["jobs"].sum() > 0
    assert b.crs == helsinki.crs


def test_helsinki_facilities_have_the_real_fire_station(helsinki: City) -> None:
    f = helsinki.facilities
    fire = f[f["kind"] == "fire_station"]
    assert len(fire) == 1 and "Erottaja" in fire["name"].iloc[0]
    assert f["road_node"].isin(list(helsinki.roads.nodes)).all()


def test_road_arrays_and_with_roads(helsinki: City) -> None:
    arr = helsinki.road_arrays
    assert arr.n_edges == helsinki.roads.number_of_edges()
    G = helsinki.roads.copy()
    node = int(helsinki.buildings["road_node"].iloc[0])
    G.remove_node(node)
    G2 = nx.MultiDiGraph(G)
    # renumber edge ids so the new graph is still a valid contract graph
    for i, (_, _, d) in enumerate(G2.edges(data=True)):
        d["edge_id"] = i
    c2 = helsinki.with_roads(G2)
    assert c2.roads is G2 and helsinki.roads.has_node(node)
    assert c2.buildings["road_node"].isin(list(G2.nodes)).all()
    assert c2.road_arrays.n_edges == G2.number_of_edges()
    assert np.all(helsinki.buildings["road_node"].iloc[:1] == node)


def test_helsinki_power_graph_wired(helsinki: City) -> None:
    P = helsinki.power
    assert P.number_of_nodes() > len(helsinki.buildings)
    tr = helsinki.buildings["transformer"]
    assert tr.notna().all()
    assert all(P.nodes[t]["kind"] == "transformer" for t in set(tr))
    # the building node of building 0 is served by its transformer
    assert P.has_edge("b0", tr.iloc[0]) or any(
        P.nodes[n].get("kind") != "building" for n in P.neighbors("b0"))
