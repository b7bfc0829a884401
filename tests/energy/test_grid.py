"""Power flow: pandapower export, GridSolver steps, energy balance, violations, bad input."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandapower as pp
import pytest

from citytwin.energy.grid import GridSolver, to_pandapower
from citytwin.errors import InputError


@pytest.fixture(scope="module")
def solver(small_solver):
    return small_solver


def _design(solver):
    return np.array([solver.graph.nodes[f"b{b}"]["design_kw"] for b in solver.building_ids])


def test_export_uses_standard_types(small_city):
    net, pm = to_pandapower(small_city)
    G = small_city.power
    assert len(net.trafo) == sum(1 for _, d in G.nodes(data=True) if d["kind"] == "transformer")
    assert set(net.trafo.std_type) <= {"0.25 MVA 20/0.4 kV", "0.4 MVA 20/0.4 kV", "0.63 MVA 20/0.4 kV",
                                       "0.8 MVA 20/0.4 kV"}
    assert set(net.line.std_type) == {"NA2XS2Y 1x240 RM/25 12/20 kV"}
    assert len(net.load) == len(small_city.buildings) == len(pm.load)
    assert not net.switch.closed.any() and len(net.switch) == len(pm.switch) > 0
    pp.runpp(net, numba=False)
    assert net.converged
    assert 0.95 < net.res_bus.vm_pu.min() < 1.02


def test_energy_balance_with_pv(solver):
    rng = np.random.default_rng(7)
    p = _design(solver) * rng.uniform(0.3, 1.2, len(solver.building_ids))
    pv = rng.uniform(0, 20, len(p))
    f = solver.solve(p, pv_kw=pv)
    assert f.converged
    assert f.generation_kw == pytest.approx(pv.sum(), rel=1e-9)
    assert f.load_kw == pytest.approx(p.sum(), rel=1e-9)
    balance = f.load_kw + f.losses_kw - f.generation_kw
    assert abs(f.ext_grid_kw - balance) <= 1e-6 * abs(f.ext_grid_kw)
    assert f.losses_kw > 0


def test_repeated_steps_match_a_fresh_full_power_flow(small_city, solver):
    p = _design(solver)
    for k in range(3):  # warm, recycled steps
        f = solver.solve(p * (0.8 + 0.2 * k))
    net, pm = to_pandapower(small_city, pv=False)  # per-building loads, fresh full run
    net.load["p_mw"] = net.load["p_mw"] * 1.2
    net.load["q_mvar"] = net.load["q_mvar"] * 1.2
    pp.runpp(net, numba=False)
    assert f.ext_grid_kw == pytest.approx(net.res_ext_grid.p_mw.sum() * 1000, rel=1e-6)
    ref = net.res_trafo.loading_percent.to_numpy()[[pm.trafo[t] for t in f.trafo_loading_pct.index]]
    np.testing.assert_allclose(f.trafo_loading_pct.to_numpy(), ref, rtol=1e-5)
    assert f.vm_min_pu == pytest.approx(net.res_bus.vm_pu.min(), abs=1e-6)


def test_overload_and_voltage_violations_reported(solver):
    f = solver.solve(_design(solver) * 2.0)
    assert f.converged
    assert f.n_overloads == int((f.trafo_loading_pct > 100).sum() + (f.line_loading_pct > 100).sum()) > 0
    assert f.max_trafo_loading_pct > 100
    low = solver.solve(_design(solver) * 0.1)
    assert low.n_overloads == 0 and low.vm_min_pu > f.vm_min_pu


def test_line_outage_cuts_supply_and_tie_restores(small_city, solver):
    G = small_city.power
    sub = next(n for n, d in G.nodes(data=True) if d["kind"] == "substation")
    radial = nx.Graph([(u, v, d) for u, v, d in G.edges(data=True) if d["kind"] != "tie"])
    # the MV line whose cut drops the most buildings
    best, below = None, set()
    for u, v, d in radial.edges(data=True):
        if d["kind"] != "mv_line":
            continue
        H = radial.copy()
        H.remove_edge(u, v)
        cut = {G.nodes[n]["building_id"] for n in set(H) - nx.node_connected_component(H, sub)
               if G.nodes[n]["kind"] == "building"}
        if len(cut) > len(below):
            best, below = d["element_id"], cut
    p = _design(solver)
    f = solver.solve(p, out_of_service={best})
    assert f.converged
    got = set(solver.building_ids[f.unsupplied].tolist())
    assert got == below
    assert f.unsupplied_kw == pytest.approx(p[f.unsupplied].sum())
    assert f.load_kw == pytest.approx(p.sum() - f.unsupplied_kw, rel=1e-9)
    assert abs(f.ext_grid_kw - (f.load_kw + f.losses_kw)) <= 1e-6 * f.ext_grid_kw
    # closing every tie re-supplies at least part of the cut area
    ties = frozenset(d["element_id"] for *_, d in G.edges(data=True) if d["kind"] == "tie")
    g = solver.solve(p, out_of_service={best}, closed_ties=ties)
    assert g.unsupplied.sum() <= f.unsupplied.sum()
    back = solver.solve(p)
    assert not back.unsupplied.any()


def test_non_convergence_is_reported_not_raised(solver):
    f = solver.solve(_design(solver) * 60.0)
    assert not f.converged and "converge" in f.message
    assert f.max_trafo_loading_pct > 1000  # estimated from demand
    ok = solver.solve(_design(solver))  # recovers on the next step
    assert ok.converged


def test_bad_input(solver):
    n = len(solver.building_ids)
    with pytest.raises(InputError, match=r"shape \(3,\)"):
        solver.solve(np.ones(3))
    bad = np.ones(n)
    bad[5] = np.nan
    with pytest.raises(InputError, match="position 5"):
        solver.solve(bad)
    with pytest.raises(InputError) as e:
        solver.solve(np.ones(n), out_of_service={"t999", "line0"}, closed_ties={"nope"})
    assert "'t999'" in str(e.value) and "'nope'" in str(e.value) and len(e.value.problems) == 2


def test_assets_table(solver):
    f = solver.solve(_design(solver))
    a = f.assets()
    assert list(a.columns) == ["asset_id", "kind", "loading_pct", "vm_pu"]
    assert set(a.kind) == {"transformer", "line", "substation"}
    assert a.asset_id.is_unique


def test_large_building_gets_parallel_800kva_units():
    from citytwin.network.power import build_power_graph
    from tests.energy._power_cities import CRS, grid_roads, make_buildings

    roads = grid_roads(4)
    b = make_buildings(roads, 30, seed=9)
    # 200,000 m² of industry: 35 kWh/m²a on BDEW G0 peaks at 1.7 MW, / f 0.6 = 2.8 MW installed
    b.loc[0, ["use", "floor_area_m2"]] = ["industrial", 200_000.0]
    G = build_power_graph(b, roads, crs=CRS)
    tr = G.nodes[G.nodes["b0"]["transformer"]]
    assert tr["rated_kva"] == 800 and tr["parallel"] >= 3 and tr["n_buildings"] == 1
    net, pm = to_pandapower(G)
    assert "0.8 MVA 20/0.4 kV" in set(net.trafo.std_type)
    assert net.trafo.at[pm.trafo[G.nodes["b0"]["transformer"]], "parallel"] == tr["parallel"]
    pp.runpp(net, numba=False)
    assert net.converged and net.res_trafo.loading_percent.max() < 100


def test_fast_path_equals_pandapower(small_city, solver):
    """Warm steps use the captured Z-bus solver; it must reproduce pandapower's results, also with
    an outage (isolated buses) and a closed tie."""
    ref = GridSolver(small_city, numba=False, fast=False)
    G = small_city.power
    p = _design(solver)
    pv = np.linspace(0.0, 30.0, len(p))
    lines = sorted(d["element_id"] for *_, d in G.edges(data=True) if d["kind"] == "mv_line")
    ties = sorted(d["element_id"] for *_, d in G.edges(data=True) if d["kind"] == "tie")
    for oos, closed in ((set(), set()), ({lines[7]}, set()), ({lines[7]}, {ties[0]})):
        solver.solve(p, out_of_service=oos, closed_ties=closed)  # first step of a topology: pandapower
        for scale in (0.7, 1.3):
            a = solver.solve(p * scale, pv_kw=pv, out_of_service=oos, closed_ties=closed)
            assert solver.last_method == "fast"
            b = ref.solve(p * scale, pv_kw=pv, out_of_service=oos, closed_ties=closed)
            assert ref.last_method == "pandapower"
            for name in ("ext_grid_kw", "losses_kw", "load_kw", "generation_kw", "vm_min_pu", "vm_max_pu",
                         "unsupplied_kw"):
                assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-7), name
            np.testing.assert_array_equal(a.unsupplied, b.unsupplied)
            np.testing.assert_allclose(a.trafo_loading_pct, b.trafo_loading_pct, rtol=1e-7, atol=1e-9)
            np.testing.assert_allclose(a.line_loading_pct, b.line_loading_pct, rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(a.trafo_vm_pu, b.trafo_vm_pu, rtol=1e-9)
            np.testing.assert_allclose(a.substation_loading_pct, b.substation_loading_pct, rtol=1e-7)
            assert abs(a.ext_grid_kw - (a.load_kw + a.losses_kw - a.generation_kw)) <= 1e-6 * a.ext_grid_kw


def test_every_infeed_out_is_all_dark_not_an_error(small_city, solver):
    subs = [n for n, d in small_city.power.nodes(data=True) if d["kind"] == "substation"]
    p = _design(solver)
    f = solver.solve(p, out_of_service=set(subs))
    assert f.converged and f.unsupplied.all() and f.unsupplied_kw == pytest.approx(p.sum())
    assert f.ext_grid_kw == 0.0 and "no infeed" in f.message
    assert not solver.solve(p).unsupplied.any()
