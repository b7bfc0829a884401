"""Energy: building loads, PV, EV charging, power flow, outages and transformer aging.

Public face of the energy-demand side; the grid side lives in :mod:`citytwin.energy.grid`,
:mod:`citytwin.energy.outages` and :mod:`citytwin.energy.aging`.
"""

from citytwin.energy.engine import (
    EnergyEngine,
    EnergyParams,
    building_agent_class,
    compute_building_loads,
    run_energy,
)
from citytwin.energy.ev import ChargingState, EVAssumptions, synthetic_ev_arrivals
from citytwin.energy.loads import BuildingLoads, compute_loads
from citytwin.energy.outages import FailureSpec
from citytwin.energy.pv import PVFleet, clear_sky_kw_per_kwp, pv_fleet
from citytwin.energy.weather import (
    TemperatureShift,
    apply_heat_wave,
    read_weather_csv,
    typical_year,
)

__all__ = [
    "BuildingLoads",
    "ChargingState",
    "EVAssumptions",
    "EnergyEngine",
    "EnergyParams",
    "FailureSpec",
    "PVFleet",
    "TemperatureShift",
    "apply_heat_wave",
    "building_agent_class",
    "compute_building_loads",
    "clear_sky_kw_per_kwp",
    "compute_loads",
    "pv_fleet",
    "read_weather_csv",
    "run_energy",
    "synthetic_ev_arrivals",
    "typical_year",
]
