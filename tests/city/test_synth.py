"""Synthetic cities: deterministic, plausible, and loaded through the same path as real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from citytwin.city import City
from citytwin.errors import InputError
from citytwin.synth import SYNTH_CRS, synthetic_layers, write_synthetic_city


def test_same_seed_same_city_other_seed_differs() -> None:
    a = synthetic_layers(500, seed=3)
    b = synthetic_layers(500, seed=3)
    c = synthetic_layers(500, seed=4)
    for name in a:
        assert a[name].equals(b[name]), name
    assert not a["buildings"].equals(c["buildings"])


def test_layers_are_plausible() -> None:
    layers = synthetic_layers(25_000, seed=1)
    b, r, f, p = (layers[k] for k in ("buildings", "roads", "facilities", "power"))
    assert len(b) == 25_000 and b.crs.to_string() == SYNTH_CRS
    assert b.geometry.is_valid.all() and (b.geometry.area > 50).all()
    # footprints never overlap each other nor the streets
    assert not b.geometry.iloc[:2000].union_all().intersects(r.geometry.union_all())
    assert b.sindex.query(b.geometry.iloc[:500], predicate="overlaps").size == 0
    shares = b["building"].value_counts(normalize=True)
    assert 0.5 < shares["residential"] < 0.8 and shares["office"] > 0.04
    assert set(r["highway"]) == {"primary", "residential"}
    assert 0.15 < (r["highway"] == "primary").mean() < 0.3
    assert (p["power"] == "substation").sum() == 2  # one per ~10k buildings
    kinds = f["kind"].value_counts()
    assert kinds["fire_station"] == 5 and kinds["hospital"] == 1 and kinds["police"] == 2


def test_synth_city_builds_through_the_normal_path(tmp_path: Path) -> None:
    path = write_synthetic_city(tmp_path / "s.gpkg", n_buildings=400, seed=0)
    city = City.from_path(path, use_cache=False)
    assert len(city.buildings) == 400
    assert (city.buildings["use_source"] == "building_tag").all()
    assert city.report.inferred.get("road speed from highway class", 0) == 0
    speeds = {d["highway"]: d["speed_kph"] for _, _, d in city.roads.edges(data=True)}
    assert speeds == {"primary": 50.0, "residential": 30.0}
    lanes = {d["highway"]: d["lanes"] for _, _, d in city.roads.edges(data=True)}
    assert lanes == {"primary": 2, "residential": 1}
    assert set(city.facilities["kind"]) == {"fire_station", "ambulance_station", "hospital",
                                            "police"}
    assert city.buildings["transformer"].notna().all()
    subs = [n for n, d in city.power.nodes(data=True) if d["kind"] == "substation"]
    assert len(subs) == 1
    assert np.isfinite(city.buildings["year_built"]).all()


def test_bad_arguments() -> None:
    with pytest.raises(InputError, match="n_buildings must be >= 1"):
        synthetic_layers(0)
