"""Scale and robustness of the traffic engine (issue 16).

1. Build and 24 h run (all three domains, the baseline scenario's settings on another city) of
   synthetic cities of 10k (and 100k) buildings: wall time, CPU time and peak RSS, each case in
   its own process so RSS is its own.
2. The share of trips the stuck timer forces through, per test city at its shipped demand and
   sample, and the mean delay of the shipped sample against the full population (sample 1.0).

    .venv/bin/python benchmarks/scale.py                 # forced-through table + 10k
    .venv/bin/python benchmarks/scale.py --sizes 10000 100000
    .venv/bin/python benchmarks/scale.py --sizes         # forced-through table only
    .venv/bin/python benchmarks/scale.py --sizes --seeds 8   # sampled delay over 8 seeds, +- s.e.
    .venv/bin/python benchmarks/scale.py --sizes --seeds 8 --free-flow-routes
                                   # the same with routing taken out (queues alone)
    .venv/bin/python benchmarks/scale.py --sizes --cities synthetic100000 --shipped-only
                                   # any synthetic<N>; shipped sample only (no sample-1.0 run)
    .venv/bin/python benchmarks/scale.py --sizes 100000 --cities --gradient 0
                                   # synthetic cities on the uniform layout (no Clark gradient)

The scale case also prints the synthetic city's residents per km2 (of its buildings' convex
hull, as the build's density check), the CPU of the demand set-up and of ``route_trips``.

Measured (2 cores shared with other work; ``--sizes 100000 --cities``), 100k buildings:

    | | uniform layout (before) | Clark b 0.3/km + demand one tree per home |
    |---|---|---|
    | residents / km2 | 22,500 | 7,800 |
    | build CPU | 41.7 s | 38.7 s |
    | 24 h run CPU (of it set-up) | 296 s (73 s) | 110 s (34 s) |
    | traffic advance CPU | 197 s | 59 s |
    | peak RSS | 1.40 GB | 1.01 GB |
    | trips, forced through (24 h) | 282,764, 11.2 % | 97,536, 0.00 % |
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# city -> (how to get it, its shipped scenario)
CITIES = {
    "helsinki": ("helsinki", ROOT / "scenarios" / "baseline.toml"),
    "kotka": ("kotka", ROOT / "tests" / "data" / "kotka.toml"),
    "welwyn": ("welwyn", ROOT / "tests" / "data" / "welwyn.toml"),
    "synthetic48": ("synthetic:48", ROOT / "scenarios" / "baseline.toml"),
    "synthetic2000": ("synthetic:2000", ROOT / "scenarios" / "baseline.toml"),
    "synthetic10000": ("synthetic:10000", ROOT / "scenarios" / "baseline.toml"),
}


def _fixed(x: float, digits: int) -> str:
    """``x`` to ``digits`` decimals, a float-noise negative (a free-flow trip's -1e-13 s of
    delay) as 0 rather than "-0.00"; a real negative still shows."""
    return f"{round(x, digits) + 0.0:.{digits}f}"


def _city(how: str, gradient: float | None = None):
    """A test city; a synthetic one with Clark's ``gradient`` (None: the library default)."""
    from citytwin import examples

    if how.startswith("synthetic:"):
        n = int(how.split(":")[1])
        if gradient is None:
            return examples.synthetic(n)
        from citytwin.city import City
        from citytwin.synth import synthetic_layers

        return City.from_layers(synthetic_layers(n, seed=3, density_gradient_per_km=gradient),
                                name=f"synthetic{n}")
    return getattr(examples, how)()


def _per_km2(city) -> float:
    """Residents per km2 of the buildings' convex hull (as the build's density check)."""
    import shapely

    hull = shapely.convex_hull(shapely.union_all(city.buildings.geometry.values))
    return float(city.buildings["population"].sum()) / (float(shapely.area(hull)) / 1e6)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timing(module, name: str, acc: dict[str, float]) -> None:
    """Wrap ``module.name`` to add its CPU seconds and calls to ``acc``."""
    fn = getattr(module, name)

    def timed(*a, **kw):
        c0 = time.process_time()
        try:
            return fn(*a, **kw)
        finally:
            acc[f"{name}_cpu_s"] = acc.get(f"{name}_cpu_s", 0.0) + time.process_time() - c0
            acc[f"{name}_calls"] = acc.get(f"{name}_calls", 0) + 1

    setattr(module, name, timed)


def case_scale(n: int, gradient: float | None = None) -> dict:
    """Build a synthetic city of ``n`` buildings and run the baseline scenario's 24 h on it."""
    from citytwin.model import CityModel
    from citytwin.scenario import load_scenario
    from citytwin.traffic import demand
    from citytwin.traffic import engine as traffic_engine

    t, c = time.perf_counter(), time.process_time()
    city = _city(f"synthetic:{n}", gradient)
    out = {"case": f"synthetic{n}", "buildings": len(city.buildings),
           "road_edges": city.roads.number_of_edges(),
           "build_wall_s": time.perf_counter() - t, "build_cpu_s": time.process_time() - c,
           "build_rss_mb": _rss_mb(), "residents_per_km2": _per_km2(city)}
    spec = load_scenario(ROOT / "scenarios" / "baseline.toml")
    calls: dict[str, float] = {}
    _timing(demand, "generate_demand", calls)
    _timing(traffic_engine, "route_trips", calls)
    t, c = time.perf_counter(), time.process_time()
    model = CityModel(spec, city=city)
    out["setup_wall_s"] = time.perf_counter() - t
    out["setup_cpu_s"] = time.process_time() - c
    cpu: dict[str, float] = {}
    for name, engine in model.engines.items():  # CPU per domain: each engine's advance timed
        def timed(until_s, _adv=engine.advance, _name=name):
            c0 = time.process_time()
            _adv(until_s)
            cpu[_name] = cpu.get(_name, 0.0) + time.process_time() - c0
        engine.advance = timed  # type: ignore[method-assign]  # timing wrapper
    model.run()
    out["cpu_by_domain"] = cpu
    out["run_wall_s"] = time.perf_counter() - t
    out["run_cpu_s"] = time.process_time() - c
    out["rss_mb"] = _rss_mb()
    assert model.traffic is not None
    k = model.traffic.kpis()
    out["trips"] = int(model.traffic.n_trips)
    out["forced_share"] = k["trips_forced_through"] / max(k["trips_departed"], 1.0)
    out["completed_share"] = k["trips_completed"] / max(k["trips_planned"], 1.0)
    out["mean_delay_s"] = k["mean_delay_s"]
    out |= calls
    return out


def case_forced(name: str, shipped_only: bool = False, gradient: float | None = None,
                seeds: int = 1, free_flow_routes: bool = False) -> dict:
    """Traffic alone on one test city at its shipped settings over ``seeds`` seeds, and at
    sample 1.0 over up to two (the full population's delay varies far less between seeds).
    Forced-through share: the worst seed's; mean delay: the mean over seeds.

    ``free_flow_routes``: every trip keeps the route it gets at the start, on free-flow times
    (one route refresh, no re-routing), so the comparison is of the queues alone."""
    from citytwin import interventions
    from citytwin.scenario import load_scenario
    from citytwin.traffic import run_traffic

    how, toml = CITIES.get(name) or (f"synthetic:{name.removeprefix('synthetic')}",
                                     ROOT / "scenarios" / "baseline.toml")
    city = _city(how, gradient)
    spec = load_scenario(toml)
    setup = interventions.apply(spec, city)
    params = setup.traffic
    assert params is not None
    if free_flow_routes:
        params = params.model_copy(update={"route_refresh_s": 1e9, "reroute_share": 0.0})
    out: dict = {"case": name, "buildings": len(city.buildings), "sample": params.sample}
    runs = [("shipped", params, seeds), ("full", params.model_copy(update={"sample": 1.0}),
                                          min(seeds, 2))]
    for label, p, n_seeds in runs[: 1 if shipped_only else 2]:
        delays, forced, completed = [], [], []
        c = time.process_time()
        for k in range(n_seeds):
            eng = run_traffic(setup.city, p, seed=int(spec.seed) + k, fleet=setup.fleet,
                              duration_s=spec.duration_s + 4 * 3600)
            kp = eng.kpis()
            delays.append(kp["mean_delay_s"])
            forced.append(kp["trips_forced_through"] / max(kp["trips_departed"], 1.0))
            completed.append(kp["trips_completed"] / max(kp["trips_planned"], 1.0))
        out[f"{label}_trips"] = int(eng.n_trips)
        out[f"{label}_forced_share"] = max(forced)
        out[f"{label}_completed_share"] = min(completed)
        out[f"{label}_mean_delay_s"] = float(np.mean(delays))
        # standard error of the mean over seeds (0 for one seed)
        out[f"{label}_delay_se_s"] = float(np.std(delays) / np.sqrt(len(delays)))
        out[f"{label}_cpu_s"] = time.process_time() - c
    return out


def _sub(args: list[str], extra: list[str]) -> dict:
    res = subprocess.run([sys.executable, __file__, *extra, "--_case", *args], capture_output=True,
                         text=True, cwd=ROOT)
    if res.returncode:
        return {"case": " ".join(args), "error": res.stderr.strip().splitlines()[-1:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000])
    ap.add_argument("--cities", nargs="*", default=list(CITIES))
    ap.add_argument("--shipped-only", action="store_true",
                    help="forced-through table: skip the sample-1.0 run (slow at 100k)")
    ap.add_argument("--gradient", type=float, default=None,
                    help="synthetic cities: Clark's density gradient per km (0: uniform layout; "
                         "default: the library's)")
    ap.add_argument("--seeds", type=int, default=1,
                    help="forced-through table: seeds per sampled run (a 10 %% sample's mean "
                         "delay varies ~10 %% between seeds on a real city: use 8 to compare)")
    ap.add_argument("--free-flow-routes", action="store_true",
                    help="forced-through table: route every trip once on free-flow times (no "
                         "dynamic routing), to compare sampled and full queues alone")
    ap.add_argument("--_case", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._case:
        kind, arg = args._case[:2]
        print(json.dumps(case_scale(int(arg), args.gradient) if kind == "scale"
                         else case_forced(arg, shipped_only="shipped" in args._case[2:],
                                          gradient=args.gradient, seeds=args.seeds,
                                          free_flow_routes=args.free_flow_routes)))
        return
    grad = [] if args.gradient is None else ["--gradient", str(args.gradient)]
    grad += ["--seeds", str(args.seeds)] + (["--free-flow-routes"] if args.free_flow_routes else [])
    if args.cities:
        print("| city | buildings | sample | trips | forced through | completed | mean delay s "
              "| full: trips | forced | mean delay s | delay sampled/full (+- s.e.) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for name in args.cities:
            r = _sub(["forced", name, *(["shipped"] if args.shipped_only else [])], grad)
            if "error" in r:
                print(f"| {name} | error: {r['error']} |")
                continue
            for k in ("trips", "forced_share", "mean_delay_s"):
                r.setdefault(f"full_{k}", float("nan"))
            full = max(r["full_mean_delay_s"], 1e-9)
            ratio = r["shipped_mean_delay_s"] / full
            se = math.hypot(r["shipped_delay_se_s"] / full,
                            ratio * r.get("full_delay_se_s", 0.0) / full)
            print(f"| {name} | {r['buildings']} | {r['sample']:g} | {r['shipped_trips']} | "
                  f"{100 * r['shipped_forced_share']:.2f} % | "
                  f"{100 * r['shipped_completed_share']:.1f} % | "
                  f"{_fixed(r['shipped_mean_delay_s'], 2)} | {r['full_trips']:.0f} | "
                  f"{100 * r['full_forced_share']:.2f} % | {_fixed(r['full_mean_delay_s'], 2)} | "
                  f"{ratio:.3f} +- {se:.3f} |", flush=True)
    for n in args.sizes:
        r = _sub(["scale", str(n)], grad)
        if "error" in r:
            print(f"\nsynthetic {n}: error {r['error']}")
            continue
        print(f"\n== synthetic city, {r['buildings']} buildings, {r['road_edges']} road links, "
              f"{r['residents_per_km2']:,.0f} residents/km2")
        print(f"  build      wall {r['build_wall_s']:7.1f} s  CPU {r['build_cpu_s']:7.1f} s  "
              f"peak RSS {r['build_rss_mb']:7.0f} MB")
        print(f"  24 h run   wall {r['run_wall_s']:7.1f} s  CPU {r['run_cpu_s']:7.1f} s  "
              f"peak RSS {r['rss_mb']:7.0f} MB (three domains, baseline settings; set-up "
              f"{r['setup_wall_s']:.1f} s, CPU {r['setup_cpu_s']:.1f} s)")
        print("  CPU by domain (advance) " + ", ".join(
            f"{k} {v:.1f} s" for k, v in r["cpu_by_domain"].items()))
        print(f"  traffic    {r['trips']} trips, forced through {100 * r['forced_share']:.2f} %, "
              f"completed {100 * r['completed_share']:.1f} %, mean delay "
              f"{_fixed(r['mean_delay_s'], 1)} s")
        print(f"  demand set-up CPU {r.get('generate_demand_cpu_s', 0.0):.1f} s; route_trips "
              f"{r.get('route_trips_calls', 0)} calls, CPU {r.get('route_trips_cpu_s', 0.0):.1f} s",
              flush=True)


if __name__ == "__main__":
    main()
