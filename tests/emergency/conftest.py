from __future__ import annotations

import pytest

from citytwin.emergency._grid import GridCity, grid_city


@pytest.fixture(scope="session")
def city() -> GridCity:
    return grid_city(6, seed=1)
