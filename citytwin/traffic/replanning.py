"""Day-to-day replanning towards a dynamic user equilibrium (MATSim-style iterations).

Every iteration simulates the same day. Afterwards the link travel times experienced in each
``record_interval_s`` interval give every trip the cost of its own route and of the best route for
its departure interval; ``relative gap = sum(own - best) / sum(own)``. A seeded share of the
trips then switches to the best route (only if it is better) and the next day is simulated with
these prescribed routes (no within-day re-routing, so the iterations isolate learning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from citytwin.rng import stream
from citytwin.traffic.engine import TrafficEngine, run_traffic
from citytwin.traffic.params import TrafficParams
from citytwin.traffic.paths import route_trips

if TYPE_CHECKING:
    from citytwin.city import City

__all__ = ["day_to_day", "DayToDay", "interval_costs"]


@dataclass
class DayToDay:
    iterations: pd.DataFrame  # iteration, relative_gap, switched, mean_trip_time_s, vehicle_hours_h
    engine: TrafficEngine  # the last simulated day


def interval_costs(eng: TrafficEngine) -> tuple[np.ndarray, float]:
    """(intervals x edges) experienced link travel times (s) and the interval length."""
    width = eng.params.record_interval_s
    links = eng.tables()["links"]
    n_int = int(np.ceil(max(eng.t, width) / width))
    cost = np.tile(eng.ff, (n_int, 1))
    if len(links):
        i = np.clip((links["time_s"].to_numpy() / width).round().astype(int) - 1, 0, n_int - 1)
        tt = eng.arrays.length_m[links["edge_id"].to_numpy()] / (links["speed_kph"].to_numpy() / 3.6)
        cost[i, links["edge_id"].to_numpy()] = np.maximum(tt, eng.ff[links["edge_id"].to_numpy()])
    cost[:, eng.closed] = np.inf
    return cost, width


def _route_cost(off: np.ndarray, edges: np.ndarray, cost_rows: np.ndarray, row_of_trip: np.ndarray,
                ) -> np.ndarray:
    trip_of_edge = np.repeat(np.arange(off.shape[0] - 1), np.diff(off))
    c = cost_rows[row_of_trip[trip_of_edge], edges]
    return np.bincount(trip_of_edge, weights=c, minlength=off.shape[0] - 1)


def day_to_day(city: City, params: TrafficParams | None = None, *, seed: int,
               trips: pd.DataFrame | None = None, iterations: int = 5,
               replan_share: float = 0.1) -> DayToDay:
    """Simulate ``iterations`` days; after each, ``replan_share`` of the trips may switch route."""
    p = params or TrafficParams()
    p = p.model_copy(update={"reroute_share": 0.0})
    rng = stream(seed, "replanning")
    rows = []
    routes = None
    eng = None
    for it in range(iterations):
        eng = run_traffic(city, p, seed=seed, trips=trips if eng is None else eng.trips,
                          routes=routes)
        off, edges = eng.routes()
        cost, width = interval_costs(eng)
        dep = np.nan_to_num(eng.depart_t, nan=0.0)
        row = np.clip((dep // width).astype(int), 0, cost.shape[0] - 1)
        own = _route_cost(off, edges, cost, row)
        best_cost = np.full(eng.n_trips, np.inf)
        new_off_list: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for r in np.unique(row):
            sel = np.flatnonzero((row == r) & (eng.route_len > 0))
            if sel.size == 0:
                continue
            o2, e2 = route_trips(eng.arrays, eng.o_pos[sel], eng.d_pos[sel], cost=cost[r],
                                 csr=eng.csr)
            best_cost[sel] = _route_cost(o2, e2, cost, np.full(sel.size, r))
            new_off_list.append((sel, o2, e2))
        ok = np.isfinite(own) & np.isfinite(best_cost) & (eng.route_len > 0)
        gap = float((own[ok] - best_cost[ok]).sum() / max(own[ok].sum(), 1e-9))
        k = eng.kpis()
        # choose who replans, then build next day's routes
        want = (rng.random(eng.n_trips) < replan_share) & ok & (best_cost < own - 1e-6)
        lens = np.diff(off).copy()
        per_trip: list[np.ndarray] = [edges[off[i]:off[i + 1]] for i in range(eng.n_trips)]
        for sel, o2, e2 in new_off_list:
            for j in np.flatnonzero(want[sel]):
                i = sel[j]
                per_trip[i] = e2[o2[j]:o2[j + 1]]
                lens[i] = o2[j + 1] - o2[j]
        new_off = np.zeros(eng.n_trips + 1, dtype=np.int64)
        np.cumsum(lens, out=new_off[1:])
        new_edges = (np.concatenate(per_trip) if per_trip else np.zeros(0)).astype(np.int64)
        routes = (new_off, new_edges)
        rows.append({"iteration": it, "relative_gap": gap, "switched": int(want.sum()),
                     "mean_trip_time_s": k["mean_trip_time_s"],
                     "vehicle_hours_h": k["vehicle_hours_h"],
                     "trips_completed": k["trips_completed"]})
    assert eng is not None
    return DayToDay(iterations=pd.DataFrame(rows), engine=eng)
