"""Traffic: demand from buildings, vehicle agents, a mesoscopic queue engine, equilibrium."""

from __future__ import annotations

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
