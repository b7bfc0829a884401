"""The own network model (citytwin.energy.admittance) against pandapower: data, matrices, solution.

The normal topology of every run is solved on these matrices without importing pandapower, so they
must be pandapower's: the same equipment data, the same equivalent circuits, the same answer.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandapower as pp
import pytest

from citytwin.energy.admittance import LINE_TYPES, TRAFO_TYPES, build_admittance, grid_layout
from citytwin.energy.grid import GridSolver, _FastPF, to_pandapower
from citytwin.network.power import build_power_graph
from tests.energy._power_cities import CRS, grid_roads, make_buildings


def test_equipment_data_are_pandapowers():
    net = pp.create_empty_network()
    for name, (r, x, c, i_max) in LINE_TYPES.items():
        st = pp.load_std_type(net, name, element="line")
        assert (st["r_ohm_per_km"], st["x_ohm_per_km"], st["c_nf_per_km"], st["max_i_ka"]) == (r, x, c, i_max)
    for name, (sn, vn_hv, vk, vkr, pfe, i0) in TRAFO_TYPES.items():
        st = pp.load_std_type(net, name, element="trafo")
        assert (st["sn_mva"], st["vn_hv_kv"], st["vn_lv_kv"], st["vk_percent"], st["vkr_percent"],
                st["pfe_kw"], st["i0_percent"]) == (sn, vn_hv, 0.4, vk, vkr, pfe, i0)


def _graph_10kv_with_800kva():
    roads = grid_roads(4)
    b = make_buildings(roads, 30, seed=9)
    b.loc[0, ["use", "floor_area_m2"]] = ["industrial", 200_000.0]  # parallel 800 kVA units
    return build_power_graph(b, roads, crs=CRS, mv_kv=10.0)


@pytest.fixture(scope="module", params=["small", "grid", "10kv-800kva"])
def graph(request, small_city, grid_city):
    return {"small": lambda: small_city.power, "grid": lambda: grid_city.power,
            "10kv-800kva": _graph_10kv_with_800kva}[request.param]()


def _pandapower_solution(G, scale: float):
    net, pm = to_pandapower(G, aggregate_loads=True, pv=True)
    net.load["p_mw"] *= scale
    net.load["q_mvar"] *= scale
    net.sgen["p_mw"] = 0.02 * np.arange(len(net.sgen)) / max(len(net.sgen), 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net, numba=False, calculate_voltage_angles=False, tolerance_mva=1e-9, max_iteration=30)
    return net, pm


def test_ybus_is_pandapowers(graph):
    """Bus admittance matrix equal entry by entry (over pandapower's own bus order, 1e-12)."""
    net, _ = _pandapower_solution(graph, 1.0)
    ppci = net["_ppc"]["internal"]
    lay = grid_layout(graph)
    adm = build_admittance(lay)
    assert adm.n_bus == ppci["bus"].shape[0]
    # our bus k -> pandapower's internal bus: layout buses via the lookup, each tie's auxiliary bus is
    # the (open) from end of that line's branch in pandapower's branch table
    perm = np.empty(adm.n_bus, dtype=np.int64)
    lookup = np.asarray(net._pd2ppc_lookups["bus"])
    perm[: len(lay.bus_names)] = lookup[: len(lay.bus_names)]
    a, _ = net._pd2ppc_lookups["branch"]["line"]
    for k in range(len(lay.line_rows)):
        if adm.f[k] >= len(lay.bus_names):
            perm[adm.f[k]] = int(ppci["branch"][a + k, 0].real)
    assert len(set(perm.tolist())) == adm.n_bus
    ours = adm.Ybus.toarray()
    theirs = ppci["Ybus"].toarray()[np.ix_(perm, perm)]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12 * np.abs(theirs).max())


@pytest.mark.parametrize("scale", [0.3, 1.0, 1.6])
def test_solution_is_pandapowers(graph, scale):
    """Voltages, loadings, losses and infeed of the own model = pandapower's Newton-Raphson."""
    net, _ = _pandapower_solution(graph, scale)
    fast = _FastPF.from_layout(grid_layout(graph), ext_vm_pu=1.02)
    assert fast is not None
    r = fast.solve(net.load["p_mw"].to_numpy(), net.load["q_mvar"].to_numpy(), net.sgen["p_mw"].to_numpy())
    assert r is not None
    nb = len(net.bus)
    np.testing.assert_allclose(r["vm"][:nb], net.res_bus["vm_pu"].to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(r["line_pct"], net.res_line["loading_percent"].to_numpy(), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(r["trafo_pct"], net.res_trafo["loading_percent"].to_numpy(), rtol=1e-7)
    losses = float(net.res_line["pl_mw"].sum() + net.res_trafo["pl_mw"].sum())
    assert r["losses_mw"] == pytest.approx(losses, rel=1e-7)
    np.testing.assert_allclose(r["s_ext"].real, net.res_ext_grid["p_mw"].to_numpy(), rtol=1e-8, atol=1e-10)


def test_solver_runs_the_normal_topology_without_pandapower(graph):
    """GridSolver on the normal topology never builds the pandapower network; an outage does, and
    returning to normal goes back to the own model — with the same numbers as before the outage."""
    solver = GridSolver(graph)
    p = np.array([graph.nodes[f"b{b}"]["design_kw"] for b in solver.building_ids])
    first = solver.solve(p)
    assert solver.last_method == "fast" and solver._net is None and first.converged
    line = next(d["element_id"] for *_, d in graph.edges(data=True) if d["kind"] == "mv_line")
    solver.solve(p, out_of_service={line})
    assert solver.last_method == "pandapower" and solver._net is not None
    again = solver.solve(p)
    assert solver.last_method == "fast"
    np.testing.assert_allclose(again.trafo_loading_pct, first.trafo_loading_pct, rtol=1e-9)
    assert again.losses_kw == pytest.approx(first.losses_kw, rel=1e-9)


def test_a_run_of_the_grid_city_does_not_import_pandapower(tmp_path):
    """A whole three-domain run (no outage) in a fresh process: pandapower, matplotlib and scipy.stats
    are never imported (the start-up cost #11 measured)."""
    code = (
        "import sys\n"
        "from citytwin import examples\n"
        "from citytwin.model import CityModel\n"
        "from citytwin.scenario import scenario_from_dict\n"
        "spec = scenario_from_dict({'name': 't', 'city': 'c.gpkg', 'duration_h': 6, 'traffic': {},\n"
        "                           'energy': {}, 'emergency': {}})\n"
        "m = CityModel(spec, city=examples.grid(), seed=1)\n"
        "m.run()\n"
        "assert m.energy.kpis()['peak_transformer_loading_pct'] > 0\n"
        "print(sorted(x for x in ('pandapower', 'matplotlib', 'scipy.stats') if x in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_declined_own_solve_falls_back_to_pandapower_and_its_capture(small_city, monkeypatch):
    """If the Z-bus iteration on the own model declines (returns None), the step is pandapower's,
    and later steps use the fast solver captured from that run — not pandapower every step."""
    solver = GridSolver(small_city)
    ref = GridSolver(small_city, fast=False)
    p = np.array([small_city.power.nodes[f"b{b}"]["design_kw"] for b in solver.building_ids])
    assert solver._normal is not None
    monkeypatch.setattr(solver._normal, "solve", lambda *a, **k: None)
    first = solver.solve(p)
    assert solver.last_method == "pandapower" and solver._normal is None
    later = solver.solve(p * 0.8)
    assert solver.last_method == "fast"
    for got, want in ((first, ref.solve(p)), (later, ref.solve(p * 0.8))):
        assert got.losses_kw == pytest.approx(want.losses_kw, rel=1e-7)
        np.testing.assert_allclose(got.trafo_loading_pct, want.trafo_loading_pct, rtol=1e-7)
