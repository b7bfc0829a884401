from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELSINKI = ROOT / "geodata" / "helsinki.gpkg"


@pytest.fixture(scope="session")
def helsinki(tmp_path_factory):
    from citytwin.city import City

    return City.from_path(HELSINKI, cache_dir=tmp_path_factory.mktemp("cache"))
