"""Emergency engine timings: coverage map, a 24 h day with incidents, with traffic, siting.

    .venv/bin/python benchmarks/emergency.py            # + a 10k-node grid and a 10k-building synth
    .venv/bin/python benchmarks/emergency.py --quick    # default city only, fewer repeats
    .venv/bin/python benchmarks/emergency.py --kpis     # the shipped scenarios' emergency KPIs

Prints one line per case (wall seconds, median of repeats where it says so) and ratios against
a peer measured in the same process: the coverage map against one plain single-source
``scipy.sparse.csgraph.dijkstra`` on the same graph, and emergency-with-traffic against the
traffic engine alone. Targets (issue 5): coverage for every building of the default city < 1 s;
the default city 24 h with traffic and incidents: seconds.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import mesa
import numpy as np
import pandas as pd
from scipy.sparse import csgraph

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from citytwin.city import City  # noqa: E402
from citytwin.emergency import (  # noqa: E402
    EmergencyEngine,
    EmergencyParams,
    coverage_map,
    coverage_summary,
    run_emergency,
    site_stations,
)

DEFAULT_CITY = ROOT / "geodata" / "helsinki.gpkg"


def _median_time(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


class _Model(mesa.Model):
    """Traffic + emergency on one clock (the CityModel pattern), synced every ``step_s``."""

    def __init__(self, city, *, seed: int, duration_s: float) -> None:
        super().__init__(rng=seed)
        self.city, self.seed, self.duration_s = city, seed, duration_s
        self.start = pd.Timestamp("2026-01-05")
        self.traffic = self.energy = self.emergency = None


def _with_traffic(city, params, *, seed: int, duration_s: float, emergency: bool,
                  demand_scale: float) -> tuple[float, float, object]:
    from citytwin.traffic.engine import TrafficEngine
    from citytwin.traffic.params import TrafficParams

    model = _Model(city, seed=seed, duration_s=duration_s)
    model.traffic = TrafficEngine(model, TrafficParams(demand_scale=demand_scale))
    if emergency:
        model.emergency = EmergencyEngine(model, params)
    t_tr = t_em = 0.0
    for t in np.arange(900.0, duration_s + 1, 900.0):
        a = time.perf_counter()
        model.traffic.advance(float(t))
        b = time.perf_counter()
        if model.emergency is not None:
            model.emergency.advance(float(t))
        t_tr += b - a
        t_em += time.perf_counter() - b
    return t_tr, t_em, model


def bench_city(label: str, city, *, repeats: int, traffic: bool) -> None:
    arr = city.road_arrays
    print(f"\n== {label}: {len(city.buildings)} buildings, {arr.n_nodes} road nodes, "
          f"{arr.n_edges} links, stations "
          f"{city.facilities['kind'].value_counts().to_dict()}")
    mat = arr.matrix(arr.freeflow_s)
    peer, _ = _median_time(lambda: csgraph.dijkstra(mat, indices=0), repeats)
    t_cov, cov = _median_time(lambda: coverage_map(city), repeats)
    s = coverage_summary(cov, city.buildings)
    print(f"coverage map (every building, incl. matrix build)  {t_cov:8.4f} s  "
          f"= {t_cov / peer:5.1f} x one bare Dijkstra ({peer:.4f} s); "
          f"p50 {s['travel_p50_s']:.0f} s, p90 {s['travel_p90_s']:.0f} s, "
          f"within 240 s {s['within_target_share']:.3f}")
    for mult in (1.0, 10.0):
        p = EmergencyParams(rate_multiplier=mult)
        t_run, eng = _median_time(lambda p=p: run_emergency(city, p, seed=1), repeats)
        k = eng.kpis()
        print(f"24 h emergency only, rates x{mult:<4g}                {t_run:8.4f} s  "
              f"{int(k['calls_n'])} calls ({k['calls_n'] / max(t_run, 1e-9):,.0f} calls/s); "
              f"response p50 {k['response_p50_s']:.0f} s p90 {k['response_p90_s']:.0f} s; "
              f"EMS <= 8:59 {k['ems_within_539s_share']:.2f}; util mean "
              f"{k['utilisation_mean_share']:.3f}; queued {int(k['calls_queued_n'])}")
    t_site, res = _median_time(lambda: site_stations(city, new=2, radius_s=120.0), 1)
    print(f"site 2 stations (MCLP, 120 s)                     {t_site:8.4f} s  "
          f"{res.candidates} candidates x {res.demand_points} demand cells; coverage "
          f"{res.covered_before_share:.3f} -> {res.covered_after_share:.3f}")
    # what-if: one ambulance station where MCLP (EMS 240 s) puts it, 7 days, same seed
    amb = site_stations(city, new=1, kind="ambulance_station", radius_s=240.0)
    week = 7 * 86400.0
    base = run_emergency(city, EmergencyParams(), seed=2, duration_s=week).kpis()
    t_w, plus = _median_time(lambda: run_emergency(city, EmergencyParams(
        extra_stations=amb.station_specs("ambulance_station")), seed=2, duration_s=week), 1)
    k = plus.kpis()
    print(f"7 days, + 1 ambulance station (MCLP site)          {t_w:8.4f} s  EMS <= 8:59 "
          f"{base['ems_within_539s_share']:.2f} -> {k['ems_within_539s_share']:.2f}; response "
          f"p90 {base['response_p90_s']:.0f} -> {k['response_p90_s']:.0f} s; queued "
          f"{int(base['calls_queued_n'])} -> {int(k['calls_queued_n'])} of "
          f"{int(k['calls_n'])} calls")
    if traffic:
        logging.getLogger("citytwin").setLevel(logging.ERROR)
        p = EmergencyParams()
        # numba JIT warm-up (compile once per process) on a short run
        _with_traffic(city, p, seed=1, duration_s=1800.0, emergency=False, demand_scale=1.0)
        w0 = time.perf_counter()
        t_tr, _, _ = _with_traffic(city, p, seed=1, duration_s=86400.0, emergency=False,
                                   demand_scale=1.0)
        wall_tr = time.perf_counter() - w0
        w0 = time.perf_counter()
        t_tr2, t_em, model = _with_traffic(city, p, seed=1, duration_s=86400.0, emergency=True,
                                           demand_scale=1.0)
        wall = time.perf_counter() - w0
        k = model.emergency.kpis()
        free = run_emergency(city, p, seed=1).kpis()
        print(f"24 h traffic alone (wall incl. demand)             {wall_tr:8.4f} s  "
              f"(advance {t_tr:.3f} s, {model.traffic.n_trips} trips)")
        print(f"24 h traffic + emergency (wall)                    {wall:8.4f} s  "
              f"emergency advance {t_em:.4f} s = {t_em / max(t_tr2, 1e-9):.3f} x traffic "
              f"advance; {int(k['calls_n'])} calls; travel mean {k['travel_mean_s']:.1f} s "
              f"(free-flow run: {free['travel_mean_s']:.1f} s)")


def kpi_truth() -> None:
    """The shipped scenarios' emergency KPIs (emergency alone): what a planner compares."""
    from citytwin.model import CityModel
    from citytwin.scenario import load_scenario

    keys = ("calls_n", "calls_served_n", "calls_unreachable_n", "nfpa_turnout_ems_share",
            "dispatch_en_route_share", "ems_within_539s_share", "nfpa_met", "coverage_p90_s")
    print("scenario".ljust(24) + " ".join(k[:14].rjust(14) for k in keys))
    for name in ("baseline", "new_fire_station", "close_mannerheimintie"):
        spec = load_scenario(ROOT / "scenarios" / f"{name}.toml").with_updates(
            traffic=None, energy=None)
        m = CityModel(spec)
        m.run()
        k = m.emergency.kpis()
        print(name.ljust(24) + " ".join(f"{k[x]:14.3f}" for x in keys))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="default city only, 1 repeat")
    ap.add_argument("--no-traffic", action="store_true", help="skip the traffic-coupled day")
    ap.add_argument("--kpis", action="store_true",
                    help="only print the shipped scenarios' emergency KPIs")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.kpis:
        kpi_truth()
        return 0
    repeats = 1 if args.quick else 5
    t = time.perf_counter()
    city = City.from_path(DEFAULT_CITY)
    print(f"default city loaded in {time.perf_counter() - t:.3f} s")
    bench_city("default city (helsinki.gpkg)", city, repeats=repeats,
               traffic=not args.no_traffic)
    if not args.quick:
        from citytwin.emergency._grid import grid_city
        from citytwin.synth import write_synthetic_city

        big_grid = grid_city(100, spacing_m=150.0, buildings_per_node=1, stations={
            "fire_station": [1010, 1090, 5050, 9010, 9090],
            "ambulance_station": [3030, 3070, 7030, 7070], "hospital": [5055]})
        bench_city("grid 100x100 (10k nodes, 10k buildings, ~650k people)", big_grid,
                   repeats=1, traffic=False)

        with tempfile.TemporaryDirectory() as tmp:
            path = write_synthetic_city(Path(tmp) / "synth10k.gpkg", n_buildings=10_000, seed=0)
            big = City.from_path(path, cache_dir=tmp)
            bench_city("synthetic 10k buildings", big, repeats=3, traffic=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
