"""A full day of the default city's car demand through the traffic engine.

Prints wall time split into demand generation, engine set-up (agents) and simulation, with the
day's KPIs, at 100 % sample and at higher demand scales.

    .venv/bin/python benchmarks/traffic_city.py            # demand_scale 1, 2, 4
    .venv/bin/python benchmarks/traffic_city.py --quick    # demand_scale 1 only
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from citytwin.city import City
from citytwin.engine import StandaloneModel as _StandaloneModel
from citytwin.traffic import TrafficParams
from citytwin.traffic.demand import generate_demand
from citytwin.traffic.engine import TrafficEngine

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--city", default=str(ROOT / "geodata" / "helsinki.gpkg"))
    args = ap.parse_args()
    city = City.from_path(args.city)
    print(f"city {city.name}: {city.roads.number_of_nodes()} nodes, "
          f"{city.roads.number_of_edges()} links, {len(city.buildings)} buildings")
    # warm the compiled kernels
    small = TrafficParams(sample=0.05)
    m = _StandaloneModel(city, seed=0, duration_s=86400)
    TrafficEngine(m, small).advance(3600)
    for scale in [1.0] if args.quick else [1.0, 2.0, 4.0]:
        p = TrafficParams(demand_scale=scale)
        t0 = time.perf_counter()
        trips = generate_demand(city, p, seed=1)
        t1 = time.perf_counter()
        model = _StandaloneModel(city, seed=1, duration_s=86400 + 4 * 3600)
        eng = TrafficEngine(model, p, trips=trips)
        t2, c2 = time.perf_counter(), time.process_time()
        eng.advance(86400 + 4 * 3600)
        t3, c3 = time.perf_counter(), time.process_time()
        k = eng.kpis()
        print(f"\n== demand_scale {scale}: {len(trips)} trips, {len(eng.vehicles)} vehicle agents")
        print(f"  wall s: demand {t1 - t0:.2f}, engine+agents {t2 - t1:.2f}, "
              f"simulate 28 h {t3 - t2:.2f} (CPU {c3 - c2:.2f}), total {t3 - t0:.2f}")
        print(f"  completed {k['trips_completed']:.0f}/{k['trips_planned']:.0f}, forced "
              f"{k['trips_forced_through']:.0f}, mean trip {k['mean_trip_time_s']:.0f} s, p95 "
              f"{k['p95_trip_time_s']:.0f} s, mean delay {k['mean_delay_s']:.1f} s, "
              f"veh-h {k['vehicle_hours_h']:.0f}, veh-km {k['vehicle_km_km']:.0f}, "
              f"CO2 {k['co2_total_t']:.2f} t")
        peak = eng.tables()["links"].groupby("time_s")["queue"].sum()
        print(f"  peak total queue {peak.max():.0f} vehicles at {peak.idxmax() / 3600:.2f} h; "
              f"max link volume/15 min {eng.tables()['links']['volume'].max():.0f}; "
              f"rerouted trips {int(np.count_nonzero(eng.rerouted))}")


if __name__ == "__main__":
    main()
