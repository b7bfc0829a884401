"""Traffic: demand from buildings, vehicle agents, a mesoscopic queue engine, equilibrium."""

from __future__ import annotations

from typing import TYPE_CHECKING

from citytwin._lazy import lazy_exports

if TYPE_CHECKING:
    from citytwin.traffic.agents import Vehicle
    from citytwin.traffic.assignment import (
        read_tntp_flow,
        read_tntp_net,
        read_tntp_trips,
        static_ue,
    )
    from citytwin.traffic.demand import generate_demand, trips_from_od
    from citytwin.traffic.engine import TrafficEngine, prepare_trips, run_traffic
    from citytwin.traffic.grid import chain_roads, grid_roads
    from citytwin.traffic.params import TrafficParams
    from citytwin.traffic.paths import route_trips
    from citytwin.traffic.replanning import day_to_day

# Lazy (PEP 562): ``citytwin.traffic.tntp``/``assignment`` (``citytwin traffic ue``) must not
# import mesa and the queue engine just because they live in this package.
_LAZY = {
    "Vehicle": "agents", "read_tntp_flow": "assignment", "read_tntp_net": "assignment",
    "read_tntp_trips": "assignment", "static_ue": "assignment", "generate_demand": "demand",
    "trips_from_od": "demand", "TrafficEngine": "engine", "prepare_trips": "engine",
    "run_traffic": "engine", "chain_roads": "grid", "grid_roads": "grid",
    "TrafficParams": "params", "route_trips": "paths", "day_to_day": "replanning",
}


__getattr__, __dir__ = lazy_exports(__name__, {k: f"citytwin.traffic.{v}" for k, v in _LAZY.items()},
                                     globals())


__all__ = [
    "TrafficEngine",
    "TrafficParams",
    "Vehicle",
    "chain_roads",
    "day_to_day",
    "generate_demand",
    "grid_roads",
    "prepare_trips",
    "read_tntp_flow",
    "read_tntp_net",
    "read_tntp_trips",
    "route_trips",
    "run_traffic",
    "static_ue",
    "trips_from_od",
]
