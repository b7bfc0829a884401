"""Result tables and KPIs of a traffic run (trips, links, vehicle-hours, CO2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from citytwin.traffic import _kernel as K

if TYPE_CHECKING:
    from citytwin.traffic.engine import TrafficEngine

__all__ = ["trips_table", "links_table", "kpis", "route_lengths"]


def _route_sum(eng: TrafficEngine, per_edge: np.ndarray) -> np.ndarray:
    csum = np.concatenate([[0.0], np.cumsum(per_edge[eng.route_edges[: eng._route_used]])])
    return csum[eng.route_off + eng.route_len] - csum[eng.route_off]


def route_lengths(eng: TrafficEngine) -> np.ndarray:
    """Length (m) of each trip's current route."""
    return _route_sum(eng, eng.arrays.length_m)


def trips_table(eng: TrafficEngine) -> pd.DataFrame:
    """One row per trip (contract ``trips.parquet`` columns plus purpose and buildings)."""
    tr = eng.trips
    state = eng.state
    status = np.array(["planned", "waiting", "en_route", "arrived"], dtype=object)[state]
    status[(eng.route_len == 0) & eng.routed] = "no_route"
    status[(state == K.ARRIVED) & (eng.forced > 0)] = "arrived_forced"
    freeflow = _route_sum(eng, eng.ff)
    travel = eng.arrive_t - eng.depart_t
    return pd.DataFrame({
        "trip_id": tr["trip_id"].to_numpy(),
        "vehicle_id": tr["vehicle_id"].to_numpy(),
        "origin_node": tr["origin_node"].to_numpy(),
        "dest_node": tr["dest_node"].to_numpy(),
        "depart_s": eng.depart_t,
        "arrive_s": eng.arrive_t,
        "route_length_m": route_lengths(eng),
        "freeflow_s": freeflow,
        "delay_s": travel - freeflow,
        "vehicle_type": np.where(eng.is_ev, "ev", "ice"),
        "status": status,
        "planned_depart_s": eng.depart_plan,
        "purpose": tr["purpose"].to_numpy(),
        "dest_building": tr["dest_building"].to_numpy(),
        "rerouted": eng.rerouted,
    })


def links_table(eng: TrafficEngine) -> pd.DataFrame:
    """Per-link time series: ``edge_id``, ``time_s`` (end of interval), ``volume`` (vehicles that
    entered, scaled to the full population), ``speed_kph``, ``queue`` (at the interval end),
    ``delay_h`` (vehicle-hours the cars that left the link in the interval spent on it beyond
    its free-flow time, scaled to the full population; once every trip has arrived, these and
    the waits at departure add up to the trips' ``total_delay_h``)."""
    if not eng._records:
        return pd.DataFrame({"edge_id": pd.Series(dtype=np.int64), "time_s": pd.Series(dtype=float),
                             "volume": pd.Series(dtype=float), "speed_kph": pd.Series(dtype=float),
                             "queue": pd.Series(dtype=float), "delay_h": pd.Series(dtype=float)})
    return pd.concat(eng._records, ignore_index=True)


def kpis(eng: TrafficEngine) -> dict[str, float]:
    """Flat KPIs, units in the names, scaled to the full population (divided by ``sample``)."""
    p = eng.params
    scale = 1.0 / p.sample
    t = eng.t
    arrived = eng.state == K.ARRIVED
    moving = (eng.state == K.ON_LINK) | (eng.state == K.WAITING)
    tt = np.where(arrived, eng.arrive_t - eng.depart_t, 0.0)
    tt_open = np.where(moving, t - eng.depart_t, 0.0)
    length = route_lengths(eng)
    # distance driven: whole route for arrived trips, the links already left for those en route
    done_len = _done_length(eng)
    km = np.where(arrived, length, np.where(moving, done_len, 0.0)) / 1000.0
    ff = _route_sum(eng, eng.ff)
    tt_arr = tt[arrived]
    co2 = np.where(eng.is_ev, p.co2_ev_g_per_km, p.co2_ice_g_per_km) * km
    return {
        "trips_planned": float(eng.n_trips * scale),
        "trips_departed": float(np.count_nonzero(eng.state >= K.WAITING) * scale),
        "trips_completed": float(np.count_nonzero(arrived) * scale),
        "trips_en_route": float(np.count_nonzero(moving) * scale),
        "trips_forced_through": float(np.count_nonzero(arrived & (eng.forced > 0)) * scale),
        "trips_no_route": float(np.count_nonzero((eng.route_len == 0) & eng.routed) * scale),
        "vehicle_hours_h": float((tt.sum() + tt_open.sum()) / 3600.0 * scale),
        "vehicle_km_km": float(km.sum() * scale),
        "mean_trip_time_s": float(tt_arr.mean()) if tt_arr.size else float("nan"),
        "p95_trip_time_s": float(np.percentile(tt_arr, 95)) if tt_arr.size else float("nan"),
        "mean_delay_s": float((tt_arr - ff[arrived]).mean()) if tt_arr.size else float("nan"),
        "total_delay_h": float((tt_arr - ff[arrived]).sum() / 3600.0 * scale),
        "co2_ice_t": float(co2[~eng.is_ev].sum() / 1e6 * scale),
        "co2_ev_t": float(co2[eng.is_ev].sum() / 1e6 * scale),
        "co2_total_t": float(co2.sum() / 1e6 * scale),
        "vehicle_km_ev_km": float(km[eng.is_ev].sum() * scale),
    }


def _done_length(eng: TrafficEngine) -> np.ndarray:
    csum = np.concatenate([[0.0], np.cumsum(eng.arrays.length_m[eng.route_edges[: eng._route_used]])])
    return csum[eng.route_off + np.minimum(eng.ridx, eng.route_len)] - csum[eng.route_off]
