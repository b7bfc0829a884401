"""Property: splitting road lines at junctions preserves geometry and leaves no interior junction."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from citytwin.network.roads import split_at_junctions

# lines on a coarse integer lattice so that shared vertices happen often
point = st.tuples(st.integers(0, 4), st.integers(0, 4))
line = st.lists(point, min_size=2, max_size=6).filter(
    lambda pts: all(a != b for a, b in zip(pts[:-1], pts[1:], strict=False)))


@settings(max_examples=60, deadline=None)
@given(st.lists(line, min_size=1, max_size=6))
def test_split_preserves_length_and_removes_interior_junctions(lines) -> None:
    geom = np.array([shapely.LineString(np.array(p, dtype=float) * 10) for p in lines])
    out, src, _, _ = split_at_junctions(geom)
    assert np.isclose(shapely.length(out).sum(), shapely.length(geom).sum())
    for i in range(len(geom)):
        assert np.isclose(shapely.length(out[src == i]).sum(), shapely.length(geom[i]))
    ends = {tuple(c) for g in out for c in (g.coords[0], g.coords[-1])}
    for g in out:
        for c in g.coords[1:-1]:
            assert tuple(c) not in ends
