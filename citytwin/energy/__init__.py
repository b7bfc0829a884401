"""Energy: building loads, PV, EV charging, power flow, outages and transformer aging.

Public face of the energy-demand side; the grid side lives in :mod:`citytwin.energy.grid`,
:mod:`citytwin.energy.outages` and :mod:`citytwin.energy.aging`.

The names below are imported on first use, the same way as ``citytwin``'s own: the engine
imports mesa, and the load model (which the grid designer in ``citytwin.network.power``
uses) must not pay for it.
"""

from __future__ import annotations

from citytwin._lazy import lazy_exports

_LAZY = {
    "EnergyEngine": "citytwin.energy.engine",
    "EnergyParams": "citytwin.energy.engine",
    "building_agent_class": "citytwin.energy.engine",
    "compute_building_loads": "citytwin.energy.engine",
    "run_energy": "citytwin.energy.engine",
    "ChargingState": "citytwin.energy.ev",
    "EVAssumptions": "citytwin.energy.ev",
    "synthetic_ev_arrivals": "citytwin.energy.ev",
    "BuildingLoads": "citytwin.energy.loads",
    "compute_loads": "citytwin.energy.loads",
    "design_peak_kw": "citytwin.energy.loads",
    "FailureSpec": "citytwin.energy.outages",
    "PVFleet": "citytwin.energy.pv",
    "clear_sky_kw_per_kwp": "citytwin.energy.pv",
    "kw_per_kwp": "citytwin.energy.pv",
    "pv_fleet": "citytwin.energy.pv",
    "TemperatureShift": "citytwin.energy.weather",
    "apply_heat_wave": "citytwin.energy.weather",
    "read_weather": "citytwin.energy.weather",
    "read_weather_csv": "citytwin.energy.weather",
    "typical_year": "citytwin.energy.weather",
}
__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
