"""Emergency response: stations and units, incidents, dispatch, KPIs, coverage and siting."""

from __future__ import annotations

from citytwin.emergency.coverage import coverage_map, coverage_summary, coverage_times
from citytwin.emergency.engine import EmergencyEngine, requirements_for, run_emergency
from citytwin.emergency.incidents import building_rates, generate_incidents, read_incidents
from citytwin.emergency.kpis import emergency_kpis
from citytwin.emergency.params import INCIDENT_TYPES, UNIT_TYPES, EmergencyParams, StationSpec
from citytwin.emergency.queueing import erlang_b, erlang_c, hypercube
from citytwin.emergency.stations import UNIT_STATES, EmergencyUnit, build_stations

__all__ = [
    "EmergencyParams",
    "StationSpec",
    "EmergencyEngine",
    "EmergencyUnit",
    "run_emergency",
    "requirements_for",
    "build_stations",
    "generate_incidents",
    "read_incidents",
    "building_rates",
    "emergency_kpis",
    "coverage_map",
    "coverage_summary",
    "coverage_times",
    "site_stations",
    "SitingResult",
    "erlang_b",
    "erlang_c",
    "hypercube",
    "UNIT_TYPES",
    "UNIT_STATES",
    "INCIDENT_TYPES",
]


def __getattr__(name: str) -> object:
    # siting pulls in spopt (seconds to import): load it only when asked for, so engines,
    # batch workers and the app start fast
    if name in ("SitingResult", "site_stations"):
        from citytwin.emergency import siting

        return getattr(siting, name)
    raise AttributeError(f"module 'citytwin.emergency' has no attribute {name!r}")
