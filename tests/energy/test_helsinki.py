"""The shipped default city (real OSM extract of central Helsinki): grid built, power flow converges."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

GPKG = Path(__file__).resolve().parents[2] / "geodata" / "helsinki.gpkg"
pytestmark = pytest.mark.skipif(not GPKG.exists(), reason="geodata/helsinki.gpkg not present")


@pytest.fixture(scope="module")
def helsinki():
    from citytwin.city import City

    return City.from_path(GPKG)  # the project's disk cache (rebuilt when power.py changes)


def test_grid_uses_the_osm_substation_and_is_radial(helsinki):
    G = helsinki.power
    subs = [d for _, d in G.nodes(data=True) if d["kind"] == "substation"]
    assert len(subs) >= 1 and all(d["osm_id"] for d in subs)  # from the OSM power layer
    radial = nx.Graph([(u, v) for u, v, d in G.edges(data=True) if d["kind"] != "tie"])
    assert nx.is_forest(radial) and nx.number_connected_components(radial) == len(subs)
    assert any(d["kind"] == "tie" for *_, d in G.edges(data=True))
    assert (helsinki.buildings["transformer"].notna()).all()


def test_power_flow_converges_with_design_load(helsinki):
    from citytwin.energy.grid import GridSolver

    solver = GridSolver(helsinki, numba=False)
    G = helsinki.power
    p = np.array([G.nodes[f"b{b}"]["design_kw"] for b in solver.building_ids])
    f = solver.solve(p)
    assert f.converged
    assert 0.95 <= f.vm_min_pu and f.vm_max_pu <= 1.05
    assert f.max_trafo_loading_pct < 100 and f.n_overloads == 0
    assert abs(f.ext_grid_kw - (f.load_kw + f.losses_kw - f.generation_kw)) <= 1e-6 * f.ext_grid_kw
    g = solver.solve(p * 0.6)
    assert solver.last_method == "fast" and g.losses_kw < f.losses_kw
