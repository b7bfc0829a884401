from __future__ import annotations

from types import SimpleNamespace

import networkx as nx
import pytest


@pytest.fixture
def city_of():
    """A stand-in City: the engine only needs ``.roads`` (and uses ``.road_arrays`` if present)."""

    def make(G: nx.MultiDiGraph) -> SimpleNamespace:
        return SimpleNamespace(roads=G)

    return make
