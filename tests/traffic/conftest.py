from __future__ import annotations

import networkx as nx
import pytest

from citytwin import examples
from citytwin.city import City


@pytest.fixture
def city_of():
    """A real City around a hand-made road graph (:func:`citytwin.examples.assembled`)."""

    def make(G: nx.MultiDiGraph) -> City:
        return examples.assembled(G)

    return make
