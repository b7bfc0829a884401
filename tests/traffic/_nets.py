"""The square lattice TNTP link table shared by the static-assignment tests (bidirectional links
between 4-neighbours, 1-based node ids, capacities and free-flow times drawn from ``rng``)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def lattice_links(side: int, rng: np.random.Generator, *, capacity: tuple[float, float],
                  free_flow_time: tuple[float, float], length: float, power: float) -> pd.DataFrame:
    fr, to = [], []
    for i in range(side):
        for j in range(side):
            a = i * side + j + 1
            if j + 1 < side:
                fr += [a, a + 1]
                to += [a + 1, a]
            if i + 1 < side:
                fr += [a, a + side]
                to += [a + side, a]
    m = len(fr)
    cap = rng.uniform(*capacity, m)  # drawn before the free-flow times (the tests' nets)
    fft = rng.uniform(*free_flow_time, m)
    return pd.DataFrame({"init_node": fr, "term_node": to, "capacity": cap, "length": length,
                         "free_flow_time": fft, "b": 0.15, "power": power, "speed": 0.0,
                         "toll": 0.0, "link_type": 1})
