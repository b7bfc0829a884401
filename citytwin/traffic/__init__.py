"""Traffic: demand from buildings, vehicle agents, a mesoscopic queue engine, equilibrium."""

from __future__ import annotations

from citytwin.traffic.agents import Vehicle
from citytwin.traffic.engine import TrafficEngine, prepare_trips, run_traffic
from citytwin.traffic.params import TrafficParams

__all__ = ["TrafficEngine", "TrafficParams", "Vehicle", "prepare_trips", "run_traffic"]
