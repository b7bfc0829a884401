from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELSINKI = ROOT / "geodata" / "helsinki.gpkg"


@pytest.fixture(scope="session")
def helsinki(tmp_path_factory):
    from citytwin.city import City

    return City.from_path(HELSINKI, cache_dir=tmp_path_factory.mktemp("cache"))

TINY = ROOT / "tests" / "data" / "tiny.gpkg"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    from citytwin.city import City

    return City.from_path(TINY, use_cache=False)


@pytest.fixture()
def tiny_layers():
    """Fresh raw layers of the tiny fixture (mutate freely)."""
    from citytwin.layers import read_layers

    return read_layers(TINY)
