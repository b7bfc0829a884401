from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(scope="session")
def tiny_city_path(tmp_path_factory) -> Path:
    """A tiny synthetic city GeoPackage (foundation's generator), shared by the session."""
    from citytwin import synth

    out = tmp_path_factory.mktemp("city") / "tiny.gpkg"
    return synth.write_synthetic_city(out, n_buildings=48, seed=3)


@pytest.fixture(scope="session")
def tiny_city(tiny_city_path, tmp_path_factory):
    from citytwin.city import City

    return City.from_path(tiny_city_path, cache_dir=tmp_path_factory.mktemp("cache"))
