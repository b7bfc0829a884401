"""Analytic checks on the hand-made tiny city (tests/data/make_tiny.py documents the layout)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from citytwin.city import City

X0, Y0 = 385_000.0, 6_672_000.0


def _node_at(G: nx.MultiDiGraph, x: float, y: float) -> int:
    for n, d in G.nodes(data=True):
        if abs(d["x"] - (X0 + x)) < 0.02 and abs(d["y"] - (Y0 + y)) < 0.02:
            return n
    raise AssertionError(f"no node at {x}, {y}")


def test_grid_topology_and_scc(tiny: City) -> None:
    G = tiny.roads
    assert G.number_of_nodes() == 9  # spur end and the detached link are dropped
    assert G.number_of_edges() == 11 * 2 + 1
    assert sum(d["length"] for _, _, d in G.edges(data=True)) == pytest.approx(2300.0)
    assert any("dropped 3 nodes in 2 smaller part(s)" in n for n in tiny.report.notes)
    c0, c1 = _node_at(G, 200, 0), _node_at(G, 200, 100)
    assert G.has_edge(c0, c1) and not G.has_edge(c1, c0)  # one-way
    assert G[c0][c1][0]["oneway"] is True
    assert G.nodes[_node_at(G, 100, 100)]["street_count"] == 4
    assert G.nodes[_node_at(G, 0, 0)]["street_count"] == 2
    assert G.nodes[_node_at(G, 200, 200)]["street_count"] == 2  # the dropped spur is not counted


def test_defaults_and_tags_per_class(tiny: City) -> None:
    G = tiny.roads
    d0, e = _node_at(G, 0, 100), _node_at(G, 100, 100)
    prim = G[d0][e][0]
    assert prim["highway"] == "primary" and prim["speed_kph"] == 50.0
    assert prim["lanes"] == 2  # 4 lanes two-way -> 2 per direction
    assert prim["capacity_vph"] == 2 * 1600.0
    assert prim["travel_time"] == pytest.approx(100 / (50 / 3.6))
    back = G[e][d0][0]
    assert back["geometry"].coords[0] == pytest.approx((X0 + 100, Y0 + 100))
    a, b = _node_at(G, 0, 0), _node_at(G, 100, 0)
    res = G[a][b][0]
    assert (res["speed_kph"], res["lanes"], res["capacity_vph"]) == (30.0, 1, 800.0)
    assert res["travel_time"] == pytest.approx(12.0)
    assert tiny.report.inferred["road speed from highway class"] == 12


def test_building_inference_paths(tiny: City) -> None:
    b = tiny.buildings
    assert b["use"].tolist() == ["residential", "office", "retail", "hospitality",
                                 "residential", "residential", "other"]
    assert b["use_source"].tolist() == ["building_tag", "landuse", "amenity", "amenity",
                                        "default", "building_tag", "building_tag"]
    assert b["levels"].tolist() == [5, 5, 1, 4, 2, 2, 1]  # b4: house-sized footprint -> 2
    assert np.allclose(b["floor_area_m2"], [1000, 500, 400, 400, 200, 200, 100])
    assert b["population"].tolist() == [25, 0, 0, 0, 5, 5, 0]
    assert b["jobs"].tolist() == [0, 20, 10, 10, 0, 0, 0]
    assert b.loc[4, "year_built"] == 1975 and b.loc[4, "vintage"] == "1960_1990"
    assert np.isnan(b.loc[0, "year_built"])


def test_attachment_is_nearest_node(tiny: City) -> None:
    G = tiny.roads
    b = tiny.buildings
    assert b.loc[0, "road_node"] == _node_at(G, 100, 100)
    nodes = np.array([[G.nodes[n]["x"], G.nodes[n]["y"]] for n in G.nodes])
    ids = np.array(list(G.nodes))
    for geom, node in zip(b.geometry, b["road_node"], strict=True):
        p = geom.representative_point()
        d = np.hypot(nodes[:, 0] - p.x, nodes[:, 1] - p.y)
        assert d[ids == node][0] == pytest.approx(d.min())
    f = tiny.facilities
    assert f.loc[0, "road_node"] == _node_at(G, 200, 200)
    assert f.loc[1, "road_node"] == _node_at(G, 0, 200)
    assert f.index.name == "facility_id"


def test_summary(tiny: City) -> None:
    s = tiny.summary()
    assert s["road_nodes"] == 9 and s["road_edges"] == 23 and s["road_length_km"] == 2.3
    assert s["street_length_km"] == 1.2
    assert s["buildings"] == 7 and s["population"] == 35 and s["jobs"] == 40
    assert s["facilities"] == {"fire_station": 1, "hospital": 1}
    assert s["crs"] == "EPSG:32635"
    assert s["inferred"]["use from landuse"] == 1


def test_small_inferred_residential_is_an_outbuilding(tiny_layers) -> None:
    import shapely

    from citytwin.layers import infer_buildings

    b = tiny_layers["buildings"]
    b.loc[4, "geometry"] = shapely.box(X0 + 20, Y0 + 160, X0 + 25, Y0 + 165)  # 25 m2, default use
    b.loc[5, "geometry"] = shapely.box(X0 + 60, Y0 + 160, X0 + 65, Y0 + 165)  # tagged house
    out = infer_buildings(b)
    assert out.loc[4, "use"] == "other" and out.loc[4, "use_source"] == "default"
    assert out.loc[4, "population"] == 0
    assert out.loc[5, "use"] == "residential" and out.loc[5, "population"] == 1  # 50 m2 / 40
