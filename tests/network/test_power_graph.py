"""The synthesized power graph: structure, sizing rules, bad input."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from citytwin.energy.loads import compute_loads, design_peak_kw
from citytwin.energy.weather import temperature_at, typical_year
from citytwin.errors import GeodataError
from citytwin.network.power import (
    TRANSFORMER_SIZES_KVA,
    build_power_graph,
    building_transformers,
    coincident_kw,
    installed_kw,
    transformer_size_kva,
)
from tests.energy._power_cities import CRS, grid_roads, make_buildings


def test_coincidence_formula_analytic():
    # 100 households of 30 kW: 3000 kW * (0.07 + 0.93 * 100^-0.75) = 3000 * (0.07 + 0.93 * 0.0316...)
    p = np.full(100, 30.0)
    got = coincident_kw(p, np.ones(100), np.array(["residential"] * 100, dtype=object))
    assert got == pytest.approx(3000 * (0.07 + 0.93 * 100 ** -0.75))
    # one consumer: no coincidence reduction
    assert coincident_kw(np.array([50.0]), np.ones(1), np.array(["commercial"], dtype=object)) == 50.0


def test_installed_power_is_the_load_models_peak_over_f():
    """One design load: the grid's installed power is the energy model's own peak (its
    coincident load) / the class's coincidence factor — not a second set of W/m² numbers."""
    use, area, vin = ["residential", "office", "retail"], [150.0, 1000.0, 500.0], ["post2010"] * 3
    kw = installed_kw(use, area, vin)
    peak = design_peak_kw(use, area, vin, typical_year())
    np.testing.assert_allclose(kw, peak / np.array([0.07, 0.5, 0.5]))
    # the peak is the maximum of what the energy engine computes over the same year
    idx = pd.date_range("2001-01-01", "2001-12-31 23:45", freq="15min")
    b = pd.DataFrame({"use": use, "floor_area_m2": area, "vintage": vin})
    loads = compute_loads(b, temperature_at(typical_year(), idx + pd.Timedelta(minutes=7.5)),
                          index=idx, step_minutes=15)
    np.testing.assert_allclose(loads.electric_kw().max(axis=1), peak, rtol=1e-5)
    assert 40 < peak[1] < 50      # kW on 1,000 m² of office: ~46 W/m² (BDEW G1, 95 kWh/m²a)


def test_transformer_size_smallest_with_reserve():
    assert transformer_size_kva(100) == (250, 1)
    assert transformer_size_kva(200) == (250, 1)
    assert transformer_size_kva(201) == (400, 1)
    assert transformer_size_kva(600) == (800, 1)
    assert transformer_size_kva(1500) == (800, 3)


def test_graph_structure(small_city):
    G = small_city.power
    b = small_city.buildings
    kinds = nx.get_node_attributes(G, "kind")
    assert set(kinds.values()) == {"substation", "mv_node", "transformer", "building"}
    assert nx.is_connected(G)
    # without the normally-open ties the grid is radial: a tree
    radial = nx.Graph([(u, v) for u, v, d in G.edges(data=True) if d["kind"] != "tie"])
    assert nx.is_tree(radial)
    assert any(d["kind"] == "tie" for *_, d in G.edges(data=True))
    ids = [d["element_id"] for *_, d in G.edges(data=True)]
    assert len(ids) == len(set(ids))
    for n, d in G.nodes(data=True):
        if d["kind"] == "transformer":
            assert d["rated_kva"] in TRANSFORMER_SIZES_KVA
            assert d["rated_kva"] * d["parallel"] * 0.8 >= d["design_kva"] - 1e-9
        if d["kind"] == "building":
            nb = list(G.neighbors(n))
            assert len(nb) == 1 and kinds[nb[0]] == "transformer" == kinds[d["transformer"]]
    tr = building_transformers(G)
    assert tr.index.tolist() == b.index.tolist()
    # every length is positive and MV edges follow streets (>= straight line distance)
    for u, v, d in G.edges(data=True):
        assert d["length_m"] > 0
        if d["kind"] == "mv_line" and kinds[u] == kinds[v] == "mv_node":
            straight = math.dist((G.nodes[u]["x"], G.nodes[u]["y"]), (G.nodes[v]["x"], G.nodes[v]["y"]))
            assert d["length_m"] >= straight - 1e-6


def test_deterministic():
    roads = grid_roads(6)
    b = make_buildings(roads, 120, seed=3)
    g1 = build_power_graph(b, roads, crs=CRS)
    g2 = build_power_graph(b, roads, crs=CRS)
    assert nx.utils.graphs_equal(g1, g2)


def test_substations_one_per_10k_buildings(monkeypatch):
    import citytwin.network.power as power

    monkeypatch.setattr(power, "BUILDINGS_PER_SUBSTATION", 100)
    roads = grid_roads(8)
    G = build_power_graph(make_buildings(roads, 250, seed=2), roads, crs=CRS)
    subs = [n for n, d in G.nodes(data=True) if d["kind"] == "substation"]
    assert len(subs) == 3
    # still radial per substation, and every transformer hangs under exactly one substation
    radial = nx.Graph([(u, v) for u, v, d in G.edges(data=True) if d["kind"] != "tie"])
    assert nx.number_connected_components(radial) == 3


def test_power_layer_substation_used():
    import geopandas as gpd
    from shapely.geometry import Point

    roads = grid_roads(6)
    b = make_buildings(roads, 80, seed=4)
    layer = gpd.GeoDataFrame({"power": ["substation", "cable_distribution_cabinet"],
                              "id": [42, 43], "name": ["Sub A", ""]},
                             geometry=[Point(10, 20), Point(200, 200)], crs=CRS)
    G = build_power_graph(b, roads, layer, crs=CRS)
    subs = [d for _, d in G.nodes(data=True) if d["kind"] == "substation"]
    assert len(subs) == 1 and subs[0]["osm_id"] == "42" and subs[0]["name"] == "Sub A"
    assert G.graph["substations_from_layer"]


def test_bad_input_lists_every_problem():
    roads = grid_roads(4)
    b = make_buildings(roads, 10, seed=5)
    b.loc[2, "floor_area_m2"] = -5.0
    b.loc[3, "use"] = "castle"
    b.loc[4, "road_node"] = 9999
    with pytest.raises(GeodataError) as e:
        build_power_graph(b, roads, crs=CRS)
    msg = str(e.value)
    assert "row 2" in msg and "floor_area_m2" in msg
    assert "row 3" in msg and "castle" in msg
    assert "row 4" in msg and "9999" in msg
    assert len(e.value.problems) == 3
    with pytest.raises(GeodataError, match="missing column 'use'"):
        build_power_graph(b.drop(columns="use"), roads, crs=CRS)
