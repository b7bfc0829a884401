"""Power grid: build time, power-flow time per step, outage and aging cost.

    .venv/bin/python benchmarks/power.py            # default city and a 100k-building synthetic city
    .venv/bin/python benchmarks/power.py --quick    # default city and a 10k synthetic city

Per city it prints: the power graph's size and build time (``build_power_graph`` on the City's
layers), pandapower export time, the first solve (numba JIT + full Newton-Raphson), the mean time
of a warm ``GridSolver.solve`` step over a 24 h day at 15 min (96 steps, loads = design load × a
daily shape), and — as the peer, same network, same process — a plain ``pandapower.runpp`` per step
(no recycling). Then one outage of the most loaded feeder cable (topology, then capacity-checked
restoration through ties with sectionalizing, then a power flow of the restored grid) and 96 steps
of transformer aging. Figures depend on the machine's load; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CITY = ROOT / "geodata" / "helsinki.gpkg"


def _shape(n: int = 96) -> np.ndarray:
    """A plain daily shape (night 0.45, day 0.8, evening peak 1.0) — only to vary the loads."""
    h = np.arange(n) * 24 / n
    return 0.45 + 0.35 * (np.clip(np.sin((h - 6) / 12 * np.pi), 0, None)) + 0.2 * np.exp(-((h - 19) ** 2) / 4)


def bench(city, label: str, *, peer_steps: int = 8) -> dict:
    import pandapower as pp

    from citytwin.energy.aging import TransformerAging
    from citytwin.energy.grid import GridSolver, to_pandapower
    from citytwin.energy.outages import restoration_plan, unsupplied_buildings
    from citytwin.network.power import build_power_graph

    out: dict = {"city": label, "buildings": len(city.buildings)}
    t = time.perf_counter()
    G = build_power_graph(city.buildings, city.roads, city.layers.get("power"), crs=city.crs)
    out["build_power_graph_s"] = time.perf_counter() - t
    kinds: dict[str, int] = {}
    for _, d in G.nodes(data=True):
        kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    out["substations"] = kinds.get("substation", 0)
    out["transformers"] = kinds.get("transformer", 0)
    out["mv_nodes"] = kinds.get("mv_node", 0)
    out["ties"] = sum(1 for *_, d in G.edges(data=True) if d["kind"] == "tie")
    t = time.perf_counter()
    to_pandapower(G)
    out["to_pandapower_s"] = time.perf_counter() - t
    t = time.perf_counter()
    solver = GridSolver(city)
    out["solver_init_s"] = time.perf_counter() - t
    design = np.array([G.nodes[f"b{b}"]["design_kw"] for b in solver.building_ids])
    shape = _shape()
    t = time.perf_counter()
    f = solver.solve(design * shape[0])
    out["first_solve_s"] = time.perf_counter() - t
    flows = []
    t = time.perf_counter()
    for s in shape:
        flows.append(solver.solve(design * s))
    day = time.perf_counter() - t
    out["day_96_steps_s"] = day
    out["step_ms"] = day / len(shape) * 1000
    out["all_converged"] = all(fl.converged for fl in flows)
    peak = max(flows, key=lambda fl: fl.ext_grid_kw)
    out["peak_ext_grid_mw"] = peak.ext_grid_kw / 1000
    out["peak_max_trafo_loading_pct"] = peak.max_trafo_loading_pct
    out["peak_vm_min_pu"] = peak.vm_min_pu
    out["max_balance_rel_err"] = max(abs(fl.ext_grid_kw - (fl.load_kw + fl.losses_kw - fl.generation_kw))
                                     / abs(fl.ext_grid_kw) for fl in flows)
    # peer: plain runpp on the same (aggregated) network, no recycling
    net = solver.net
    base_p, base_q = net.load.p_mw.to_numpy().copy(), net.load.q_mvar.to_numpy().copy()
    pp.runpp(net, numba=True, calculate_voltage_angles=False)
    t = time.perf_counter()
    for s in shape[:peer_steps]:
        net.load["p_mw"] = base_p * s / shape[-1]
        net.load["q_mvar"] = base_q * s / shape[-1]
        pp.runpp(net, numba=True, calculate_voltage_angles=False)
    out["peer_runpp_step_ms"] = (time.perf_counter() - t) / peer_steps * 1000
    out["speedup_vs_runpp"] = out["peer_runpp_step_ms"] / out["step_ms"]
    solver._warm = False  # the peer runs replaced the recycled internals
    # outage: the MV line below the substation busbar carrying most load
    lines = [(d.get("design_kva", 0.0), d["element_id"]) for u, v, d in G.edges(data=True)
             if d["kind"] == "mv_line" and {G.nodes[u]["kind"], G.nodes[v]["kind"]} == {"mv_node"}]
    el = max(lines)[1]
    t = time.perf_counter()
    dark = unsupplied_buildings(G, [el])
    plan = restoration_plan(G, [el])
    out["outage_topology_s"] = time.perf_counter() - t
    out["outage_dark_buildings"] = int(dark.sum())
    out["outage_ties_closed"] = len(plan.closed_ties)
    out["outage_lines_opened"] = len(plan.opened_lines)
    failed = {el, *plan.opened_lines}
    out["outage_after_restoration_dark"] = int(unsupplied_buildings(
        G, failed, closed_ties=plan.closed_ties).sum())
    t = time.perf_counter()
    f = solver.solve(design, out_of_service=failed, closed_ties=plan.closed_ties)
    out["outage_solve_s"] = time.perf_counter() - t
    out["outage_converged"] = f.converged
    out["outage_max_line_loading_pct"] = f.max_line_loading_pct
    aging = TransformerAging(list(flows[0].trafo_loading_pct.index))
    t = time.perf_counter()
    for fl in flows:
        aging.update(fl.trafo_loading_pct.to_numpy(), 20.0, 900.0)
    out["aging_96_steps_s"] = time.perf_counter() - t
    out["max_f_eqa"] = float(aging.table().f_eqa.max())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="default city and a 10k synthetic city only")
    args = ap.parse_args(argv)
    from citytwin.city import City
    from citytwin.synth import write_synthetic_city

    rows = [bench(City.from_path(DEFAULT_CITY), "helsinki")]
    n = 10_000 if args.quick else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        path = write_synthetic_city(Path(tmp) / f"synth-{n}.gpkg", n_buildings=n, seed=0)
        city = City.from_path(path, cache_dir=Path(tmp) / "cache")
        print(f"synth-{n}: write + City build {time.perf_counter() - t:.1f} s", file=sys.stderr)
        rows.append(bench(city, f"synth-{n}"))
    keys = list(rows[0])
    width = max(len(k) for k in keys)
    print(f"{'':{width}}  " + "  ".join(f"{r['city']:>14}" for r in rows))
    for k in keys[1:]:
        cells = []
        for r in rows:
            v = r[k]
            cells.append(f"{v:>14.3f}" if isinstance(v, float) else f"{v!s:>14}")
        print(f"{k:{width}}  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
