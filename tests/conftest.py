"""Shared fixtures: the reference cities of :mod:`citytwin.examples` (real ``City`` objects)."""

from __future__ import annotations

from pathlib import Path

import pytest

from citytwin import examples
from citytwin.city import City

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny.gpkg"


@pytest.fixture(scope="session")
def grid_city() -> City:
    """48 buildings on a 3 x 3 block grid, one fire station, a synthesised grid."""
    return examples.grid()


@pytest.fixture(scope="session")
def small_city() -> City:
    """300 buildings of mixed use on a synthetic street grid with its synthesised power grid."""
    return examples.synthetic(300, seed=1)


@pytest.fixture(scope="session")
def small_solver(small_city: City):
    from citytwin.energy.grid import GridSolver

    return GridSolver(small_city, numba=False)


@pytest.fixture(scope="session")
def tiny_city_file() -> City:
    """The committed tiny GeoPackage (tests/data/tiny.gpkg), built without the cache."""
    return City.from_path(TINY, use_cache=False)
