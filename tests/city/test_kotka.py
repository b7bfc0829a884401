"""A second real city: pyrosm's ``test_pbf`` extract (Karhula, Kotka), built straight from PBF."""

from __future__ import annotations

import networkx as nx
import pytest

from citytwin.city import City


@pytest.fixture(scope="module")
def kotka(tmp_path_factory) -> City:
    pyrosm = pytest.importorskip("pyrosm")
    return City.from_path(pyrosm.get_data("test_pbf"), cache_dir=tmp_path_factory.mktemp("c"))


def test_kotka_builds_from_pbf(kotka: City) -> None:
    lon0, lat0, lon1, lat1 = kotka.summary()["extent_lonlat"]
    assert 26.9 < lon0 < lon1 < 27.0 and 60.5 < lat0 < lat1 < 60.55  # Karhula, Kotka
    assert kotka.crs.to_epsg() == 32635
    G = kotka.roads
    assert nx.is_strongly_connected(G) and G.number_of_nodes() > 500
    motorway = [d for *_, d in G.edges(data=True) if d["highway"] == "motorway"]
    assert motorway and all(d["oneway"] for d in motorway)
    assert all(d["speed_kph"] >= 60 for d in motorway)
    b = kotka.buildings
    assert len(b) > 2000 and b["road_node"].isin(list(G.nodes)).all()
    assert b["road_dist_m"].max() < 1000
    # a suburb of small houses: most untagged small footprints are outbuildings, not homes
    assert (b["use"] == "other").sum() > 300
    assert b["transformer"].notna().all()
    people_per_building = b["population"].sum() / (b["use"] == "residential").sum()
    assert 2 < people_per_building < 40
