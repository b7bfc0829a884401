"""KPI glossary and caveats: what a number means, its unit, which way is better, and what
the model or the data leave out (no station, no hospital, few replications, sampled traffic).

Names not in :data:`GLOSSARY` get a readable name from their snake_case and the unit from
their suffix (:func:`citytwin.results.unit_of`), with "better" unknown (the Δ is then grey).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

__all__ = ["KpiInfo", "GLOSSARY", "kpi_info", "delta_colour", "caveats", "SMALL_N"]

Better = Literal["higher", "lower"] | None
SMALL_N = 5  # a t interval from fewer replications is flagged


@dataclass(frozen=True)
class KpiInfo:
    name: str
    unit: str
    better: Better
    definition: str


def _k(name: str, unit: str, better: Better, definition: str) -> KpiInfo:
    return KpiInfo(name, unit, better, definition)


GLOSSARY: dict[str, KpiInfo] = {
    # traffic
    "mean_trip_time_s": _k("Mean trip time", "s", "lower", "average door-to-door time of the "
                           "completed car trips"),
    "p95_trip_time_s": _k("95th-percentile trip time", "s", "lower", "95 % of completed trips "
                          "took at most this long"),
    "mean_delay_s": _k("Mean delay per trip", "s", "lower", "trip time minus the free-flow "
                       "time of the same route, averaged over completed trips"),
    "total_delay_h": _k("Total delay", "h", "lower", "sum of all trips' delays over free flow"),
    "vehicle_hours_h": _k("Vehicle hours travelled", "h", "lower", "time all cars spent on the "
                          "network"),
    "vehicle_km_km": _k("Vehicle kilometres", "km", None, "distance all cars drove"),
    "vehicle_km_ev_km": _k("EV kilometres", "km", None, "distance driven by electric cars"),
    "trips_planned": _k("Trips planned", "trips", None, "car trips in the demand"),
    "trips_completed": _k("Trips completed", "trips", "higher", "trips that reached their "
                          "destination within the period"),
    "trips_no_route": _k("Trips without a route", "trips", "lower", "trips whose destination "
                         "could not be reached (closed roads, islands)"),
    "co2_total_t": _k("CO₂ from cars", "t", "lower", "tailpipe CO₂ of combustion cars plus "
                      "grid CO₂ of EV driving"),
    # energy
    "peak_demand_kw": _k("Peak electricity demand", "kW", "lower", "highest total building "
                         "and charging load in any step"),
    "peak_net_demand_kw": _k("Peak net demand", "kW", "lower", "peak demand minus rooftop PV"),
    "peak_transformer_loading_pct": _k("Peak transformer loading", "% of rating", "lower",
                                       "highest loading of any distribution transformer; over "
                                       "100 % is an overload"),
    "max_trafo_loading_pct": _k("Peak transformer loading (power flow)", "% of rating",
                                "lower", "highest transformer loading from the power flow"),
    "max_line_loading_pct": _k("Peak line loading", "% of rating", "lower", "highest cable "
                               "loading from the power flow"),
    "min_voltage_pu": _k("Lowest voltage", "p.u.", "higher", "lowest bus voltage; below 0.95 "
                         "p.u. is outside the usual band"),
    "min_vm_pu": _k("Lowest voltage", "p.u.", "higher", "lowest bus voltage magnitude"),
    "energy_not_served_kwh": _k("Unsupplied energy", "kWh", "lower", "demand not delivered "
                                "because of outages"),
    "transformer_overload_hours_h": _k("Transformer overload hours", "h", "lower", "hours any "
                                       "transformer ran above its rating"),
    "saidi_min": _k("SAIDI", "min per customer", "lower", "average interruption duration per "
                    "customer"),
    "saifi_count": _k("SAIFI", "interruptions per customer", "lower", "average number of "
                      "interruptions per customer"),
    "ev_energy_kwh": _k("EV charging energy", "kWh", None, "energy delivered to electric cars"),
    "ev_unmet_kwh": _k("EV charging not met", "kWh", "lower", "charging the EVs wanted but did "
                       "not get"),
    "pv_generation_kwh": _k("PV generation", "kWh", "higher", "rooftop PV energy produced"),
    "grid_import_kwh": _k("Grid import", "kWh", "lower", "energy drawn from the substations"),
    "losses_kwh": _k("Grid losses", "kWh", "lower", "energy lost in lines and transformers"),
    "co2_t": _k("CO₂ from electricity", "t", "lower", "grid import × the emission factor"),
    # emergency
    "calls_n": _k("Calls", "calls", None, "incidents generated in the period"),
    "calls_served_n": _k("Calls served", "calls", "higher", "incidents a unit reached"),
    "calls_unreachable_n": _k("Calls unreachable", "calls", "lower", "incidents no unit could "
                              "reach (closed links, road islands)"),
    "calls_lost_n": _k("Calls lost", "calls", "lower", "incidents dropped after waiting too "
                       "long for a unit"),
    "response_mean_s": _k("Mean response time", "s", "lower", "call to first unit on scene, "
                          "averaged over served calls"),
    "coverage_p90_s": _k("90th-percentile travel time to a building", "s", "lower", "90 % of "
                         "buildings are reached from the nearest station within this time"),
    "coverage_within_240s_share": _k("Buildings within 4 min", "share", "higher", "share of "
                                     "buildings a unit reaches in 240 s driving"),
    "ems_within_539s_share": _k("EMS calls answered within 8:59", "share", "higher", "share of "
                                "medical calls with a unit on scene within 539 s"),
    "nfpa_met": _k("NFPA 1710 targets met", "share", "higher", "share of the NFPA 1710 "
                   "turnout and travel targets met"),
    "utilisation_mean_share": _k("Mean unit utilisation", "share", None, "share of time units "
                                 "were busy"),
    "stations_n": _k("Stations", "stations", None, "fire and ambulance stations in use"),
    "units_n": _k("Units", "units", None, "vehicles available"),
}

_UNIT_WORDS = {"1": "count", "": ""}


def kpi_info(kpi: str, unit: str = "") -> KpiInfo:
    """The glossary entry of ``kpi``; a readable fallback for names not in it."""
    if kpi in GLOSSARY:
        return GLOSSARY[kpi]
    from citytwin.results import unit_of

    u = unit or unit_of(kpi)
    if u == "1":
        u = "share" if kpi.endswith(("_share", "_ratio")) else "count"
    words = kpi
    for suffix in ("_share", "_count", "_pct", "_kwh", "_kw", "_min", "_n", "_s", "_h", "_t",
                   "_km", "_c", "_pu"):
        if words.endswith(suffix):
            words = words[: -len(suffix)]
            break
    name = words.replace("_", " ").strip().capitalize() or kpi
    return KpiInfo(name, u, None, f"{kpi} as reported by the model")


def delta_colour(kpi: str, diff: float, lo: float | None = None,
                 hi: float | None = None) -> str:
    """CSS colour of a Δ: green when better, red when worse, grey when unknown, zero or when
    its interval contains zero."""
    better = kpi_info(kpi).better
    if better is None or pd.isna(diff) or diff == 0:
        return "#757575"
    if lo is not None and hi is not None and pd.notna(lo) and pd.notna(hi) and lo <= 0 <= hi:
        return "#757575"
    good = (diff > 0) == (better == "higher")
    return "#2e7d32" if good else "#c62828"


def caveats(results: Mapping[str, Mapping[str, Any]], *, facilities: pd.DataFrame | None = None,
            n_by_group: Mapping[str, int] | None = None) -> dict[str, list[str]]:
    """Caveats by domain (``"all"`` for the comparison as a whole), from the results'
    manifests (KPI notes, traffic sample), the city's facilities and the replication counts."""
    out: dict[str, list[str]] = {}

    def add(domain: str, text: str) -> None:
        lst = out.setdefault(domain, [])
        if text not in lst:
            lst.append(text)

    if facilities is not None:
        kinds = set(facilities["kind"].astype(str)) if "kind" in facilities else set()
        if "ambulance_station" not in kinds:
            add("emergency", "the city has no ambulance station: medical calls are answered "
                "by fire units only")
        if "hospital" not in kinds:
            add("emergency", "the city has no hospital: transport to hospital is not modelled")
        if not kinds & {"fire_station", "ambulance_station"}:
            add("emergency", "the city has no station at all: no call can be served")
    for label, res in results.items():
        man = res.get("manifest") or {}
        for domain, notes in (man.get("kpi_notes") or {}).items():
            for kpi, why in notes.items():
                add(domain, f"{kpi_info(kpi).name} ({label}): {why}")
        sample = ((man.get("spec") or {}).get("traffic") or {}).get("sample")
        if sample is not None and float(sample) < 1:
            add("traffic", f"{label}: traffic simulated on a {float(sample):.0%} sample of the "
                "population (capacities scaled); small streets are noisier")
    for group, n in (n_by_group or {}).items():
        if n < SMALL_N:
            add("all", f"{group}: {n} replication(s); intervals from fewer than {SMALL_N} are "
                "wide and flagged ⚠" + ("; no interval from one run" if n == 1 else ""))
    return out
