"""Energy demand and the energy engine: how long loads and a simulated day take.

    .venv/bin/python benchmarks/energy.py            # full: 100k × 8,760 loads, default city, 100k synthetic city
    .venv/bin/python benchmarks/energy.py --quick    # 20k × 8,760 loads, default city, 10k synthetic city

Prints, per case, wall seconds and process CPU seconds (on a shared, loaded machine the CPU
time is the steadier figure; BLAS threads add up in it) and, for the loads, a ratio against a
peer measured in the same process:

1. **loads alone** — ``compute_loads`` + ``electric_kw()`` for N buildings × 8,760 h (float32,
   N × 8,760 array). Peer: the same numbers computed the plain NumPy way (gather the profile
   rows, scale, add the heat-pump and cooling terms — one pass each) on the same buildings.
2. **default city, 24 h at 15 min with power flow** (``geodata/helsinki.gpkg``): the first run
   in the process (includes pandapower's numba JIT) and a second, warm run; and the same day
   without power flow (aggregate transformer loading) — the difference is the power-flow cost.
3. **synthetic city, 24 h at 15 min with power flow** (``citytwin.synth``): city build time
   separately, then the energy run (EVs at 30 %, PV at 20 %, heat pumps at 20 %).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CITY = ROOT / "geodata" / "helsinki.gpkg"


def _synthetic_buildings(n: int, seed: int = 0) -> pd.DataFrame:
    from citytwin.energy.loads import USES, VINTAGES
    from citytwin.rng import stream

    rng = stream(seed, "synth")
    return pd.DataFrame({
        "use": rng.choice(USES, n, p=[0.6, 0.1, 0.06, 0.06, 0.04, 0.03, 0.04, 0.03, 0.04]),
        "floor_area_m2": rng.lognormal(np.log(800), 0.9, n),
        "vintage": rng.choice(VINTAGES, n),
    })


def bench_loads(n: int) -> dict:
    from citytwin.energy.loads import compute_loads
    from citytwin.energy.weather import temperature_at, typical_year

    b = _synthetic_buildings(n)
    idx = pd.date_range("2026-01-01", periods=8760, freq="h")
    hp = np.zeros(n, bool)
    hp[: n // 5] = True
    t, c = time.perf_counter(), time.process_time()
    temp = temperature_at(typical_year(year=2026), idx)
    loads = compute_loads(b, temp, index=idx, step_minutes=60, heat_pump=hp)
    arr = loads.electric_kw()
    ours, ours_cpu = time.perf_counter() - t, time.process_time() - c
    total = float(arr.sum(dtype=np.float64))
    del arr
    # second call: same work on a warm allocator / BLAS (the first pays page faults on a
    # fresh N × 8,760 array and the BLAS thread start-up)
    t, c = time.perf_counter(), time.process_time()
    arr = loads.electric_kw()
    warm, warm_cpu = time.perf_counter() - t, time.process_time() - c
    del arr
    # peer: plain NumPy passes on the same factors
    t, c = time.perf_counter(), time.process_time()
    shp = loads.shapes_kw_per_kwh.astype(np.float32)
    peer = shp[loads.profile_idx]
    peer *= loads.annual_elec_kwh.astype(np.float32)[:, None]
    hp_f = (loads.heat_dh_k / loads.cop).astype(np.float32)
    dhw_f = (1.0 / loads.cop).astype(np.float32)
    cool_f = (loads.cool_dh_k / 3.0).astype(np.float32)
    rows = np.flatnonzero(loads.heat_pump)
    peer[rows] += (loads.ua_w_per_k[rows, None] / 1000.0).astype(np.float32) * hp_f
    peer[rows] += loads.dhw_kw[rows, None].astype(np.float32) * dhw_f
    rows = np.flatnonzero(loads.cooled)
    peer[rows] += (loads.ua_w_per_k[rows, None] / 1000.0).astype(np.float32) * cool_f
    peer_s, peer_cpu = time.perf_counter() - t, time.process_time() - c
    peer_total = float(peer.sum(dtype=np.float64))
    del peer
    return {"case": f"loads {n:,} × 8,760 h", "seconds": ours, "cpu_s": ours_cpu,
            "warm_seconds": warm, "warm_cpu_s": warm_cpu,
            "peer_seconds": peer_s, "peer_cpu_s": peer_cpu,
            "ratio_peer_over_ours": peer_s / ours, "total_gwh": total / 1e6,
            "agrees_with_peer": abs(total - peer_total) <= 1e-5 * abs(total)}


def bench_city(city, label: str, params, fleet=None) -> dict:
    from citytwin.energy import run_energy

    t, c = time.perf_counter(), time.process_time()
    e = run_energy(city, params, seed=0, start="2026-01-20", fleet=fleet)
    s, cpu = time.perf_counter() - t, time.process_time() - c
    k = e.kpis()
    solve = getattr(e.solver, "last_runtime_s", float("nan"))
    return {"case": label, "seconds": s, "cpu_s": cpu, "buildings": len(city.buildings),
            "transformers": int(e.trafo_ids.size), "peak_demand_mw": k["peak_demand_kw"] / 1000,
            "peak_trafo_loading_pct": k["peak_transformer_loading_pct"],
            "min_voltage_pu": k["min_voltage_pu"], "last_pf_step_s": solve}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a minute or two)")
    ap.add_argument("--skip-synth", action="store_true", help="skip the synthetic city")
    args = ap.parse_args()
    n_loads = 20_000 if args.quick else 100_000
    n_synth = 10_000 if args.quick else 100_000
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")
    rows = [bench_loads(n_loads)]
    print(rows[-1], flush=True)

    from citytwin.city import City
    from citytwin.energy import EnergyParams

    if DEFAULT_CITY.exists():
        city = City.from_path(DEFAULT_CITY)
        pf = EnergyParams()
        rows.append(bench_city(city, "default city 24 h @15 min, power flow (1st, JIT)", pf))
        print(rows[-1], flush=True)
        rows.append(bench_city(city, "default city 24 h @15 min, power flow (warm)", pf))
        print(rows[-1], flush=True)
        rows.append(bench_city(city, "default city 24 h @15 min, no power flow",
                               EnergyParams(power_flow=False)))
        print(rows[-1], flush=True)
    else:
        print(f"skipping the default city: {DEFAULT_CITY} not found")

    if not args.skip_synth:
        from citytwin.synth import write_synthetic_city

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"synth{n_synth}.gpkg"
            t = time.perf_counter()
            write_synthetic_city(path, n_buildings=n_synth, seed=0)
            city = City.from_path(path, use_cache=False)
            build = time.perf_counter() - t
            print({"case": f"synthetic city {n_synth:,}: write + build", "seconds": build},
                  flush=True)
            from citytwin.fleet import Fleet

            fleet = Fleet(ev_share=0.3)  # the EV share lives in the fleet, not EnergyParams
            p = EnergyParams(pv_share=0.2, heat_pump_share=0.2)
            rows.append(bench_city(city, f"synthetic {n_synth:,} 24 h @15 min, power flow", p,
                                   fleet))
            print(rows[-1], flush=True)
            rows.append(bench_city(city, f"synthetic {n_synth:,} 24 h @15 min, no power flow",
                                   p.model_copy(update={"power_flow": False}), fleet))
            print(rows[-1], flush=True)
    print()
    print(pd.DataFrame(rows).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
