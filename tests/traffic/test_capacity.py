"""A link discharges exactly its configured capacity at any step length and sample (issue 16)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from citytwin.traffic import TrafficParams, run_traffic
from citytwin.traffic.grid import chain_roads


@pytest.mark.parametrize("step_s,sample", [(1.0, 1.0), (2.0, 1.0), (5.0, 1.0), (1.0, 0.1)])
def test_bottleneck_discharges_capacity_within_one_percent(city_of, step_s, sample):
    for cap in (900.0, 1600.0, 2250.0, 2650.0, 3200.0, 4000.0):
        # wide feeder and exit, a one-lane bottleneck of capacity ``cap``, demand 1.5 x capacity
        G = chain_roads([(2000.0, 72.0, 4, 4 * cap), (300.0, 54.0, 1, cap),
                         (500.0, 54.0, 4, 4 * cap)])
        n = 600
        rate = 1.5 * cap * sample / 3600.0
        trips = pd.DataFrame({"origin_node": 0, "dest_node": 3,
                              "depart_s": np.round(np.arange(n) / rate, 3)})
        eng = run_traffic(city_of(G), TrafficParams(step_s=step_s, sample=sample, stuck_s=1e9),
                          seed=0, trips=trips)
        arr = np.sort(eng.arrive_t)
        assert np.isfinite(arr).all()
        mid = arr[n // 10: n - n // 10]  # the saturated part of the platoon
        got = (mid.shape[0] - 1) / (mid[-1] - mid[0]) * 3600.0 / sample
        assert got == pytest.approx(cap, rel=0.01), (cap, step_s, sample, got)


def test_city_without_trips_runs_and_reports_zeros(small_city):
    for p in (TrafficParams(demand_scale=0.0), TrafficParams(car_share=0.0)):
        eng = run_traffic(small_city, p, seed=0)
        k = eng.kpis()
        assert eng.n_trips == 0 and len(eng.vehicles) == 0
        for name in ("trips_planned", "trips_completed", "trips_forced_through",
                     "vehicle_hours_h", "vehicle_km_km", "co2_total_t"):
            assert k[name] == 0.0, name
        assert len(eng.trips_table()) == 0
        assert len(eng.ev_arrivals(0, 1e9)) == 0
