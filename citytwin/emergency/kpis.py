"""Emergency KPIs from the incident and unit tables (NFPA 1710 shares, percentiles, utilisation).

NFPA 1710 targets used: turnout 60 s (EMS) / 80 s (fire); travel 240 s for the first engine
(fire calls) and the first EMS unit (BLS level, any EMS call), 480 s for ALS on P1 medical calls;
each to be met on 90 % of incidents. EMS call-to-arrival within 8:59 (539 s).

KPIs that cannot lie: turnout compliance is measured over every dispatch of a unit from quarters
(a unit re-assigned while already on the road has no turnout; those dispatches are counted in
``dispatch_en_route_share``, not as compliant); ``nfpa_met`` also requires 90 % of all EMS calls
(queued and unreachable ones included) within 8:59, and is NaN when nothing was served or the city
has no station (:func:`emergency_kpi_notes` says why); an incident no unit can reach is status
``unreachable`` (``calls_unreachable_n``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from citytwin.emergency.params import EmergencyParams

__all__ = ["emergency_kpis", "emergency_kpi_notes", "NFPA_TURNOUT_S"]

NFPA_TURNOUT_S = {"ems": 60.0, "fire": 80.0}
_EMS_TYPES = ("medical", "traffic")


def _stats(x: np.ndarray) -> tuple[float, float, float]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (float("nan"),) * 3
    return float(x.mean()), float(np.percentile(x, 50)), float(np.percentile(x, 90))


def _share(ok: np.ndarray) -> float:
    return float(ok.mean()) if ok.size else float("nan")


_MET_FROM = ("nfpa_turnout_ems_share", "nfpa_turnout_fire_share",
             "nfpa_travel_first_engine_share", "nfpa_travel_first_ems_share",
             "nfpa_travel_als_share", "ems_within_539s_share")


def _nfpa_met(k: dict[str, float], *, n_units: int) -> float:
    """1 when every applicable share is >= 0.9 (queueing included through the 8:59 share of all
    EMS calls); NaN when nothing was served, there is no unit, or no share applies."""
    if n_units == 0 or k["calls_served_n"] == 0:
        return float("nan")
    shares = [k[name] for name in _MET_FROM if np.isfinite(k[name])]
    if not shares:
        return float("nan")
    return float(all(v >= 0.9 for v in shares))


def emergency_kpi_notes(incidents: pd.DataFrame, units: pd.DataFrame,
                        dispatches: pd.DataFrame | None = None) -> dict[str, str]:
    """KPI name -> why it is NaN (or what it leaves out), for the manifest and the app."""
    notes: dict[str, str] = {}
    if len(units) == 0:
        reason = "no stations: the city has no emergency facility, no call can be served"
        for name in (*_MET_FROM, "nfpa_met", "response_mean_s", "coverage_p90_s",
                     "coverage_within_240s_share", "utilisation_mean_share"):
            notes[name] = reason
        return notes
    served = int((incidents["status"] == "served").sum()) if len(incidents) else 0
    if len(incidents) == 0:
        notes["nfpa_met"] = "no calls in the period"
    elif served == 0:
        notes["nfpa_met"] = f"none of the {len(incidents)} calls was served"
    n_unr = int((incidents["status"] == "unreachable").sum()) if len(incidents) else 0
    if n_unr:
        notes["calls_unreachable_n"] = (
            f"{n_unr} incident(s) no unit could reach (closed links or a road island); counted "
            "as misses in ems_within_539s_share")
    return notes


def emergency_kpis(incidents: pd.DataFrame, units: pd.DataFrame,
                   dispatches: pd.DataFrame | None = None, *,
                   params: EmergencyParams) -> dict[str, float]:
    """Flat KPI dict; units are in the names (``_s``, ``_share``, ``_n``)."""
    inc = incidents
    served = inc[inc["status"] == "served"]
    k: dict[str, float] = {
        "calls_n": float(len(inc)),
        "calls_served_n": float(len(served)),
        "calls_queued_n": float((inc["queued_s"] > 0).sum() + (inc["status"] == "queued").sum()),
        "calls_lost_n": float((inc["status"] == "lost").sum()),
        "calls_unserved_n": float((inc["status"] == "unserved").sum()),
        "calls_open_n": float(inc["status"].isin(["open", "queued"]).sum()),
        "calls_unreachable_n": float((inc["status"] == "unreachable").sum()),
    }
    for name, col in (("response", "response_s"), ("travel", "travel_s"),
                      ("turnout", "turnout_s"), ("queued", "queued_s")):
        mean, p50, p90 = _stats(served[col].to_numpy(dtype=float))
        k[f"{name}_mean_s"], k[f"{name}_p50_s"], k[f"{name}_p90_s"] = mean, p50, p90
    ems = served[served["type"].isin(_EMS_TYPES)]
    fire = served[served["type"] == "fire"]
    if dispatches is not None and "from_quarters" in dispatches:
        # every dispatch from quarters has a turnout; en-route re-assignments are reported apart
        home = dispatches[dispatches["from_quarters"].astype(bool)]
        cls = home["unit_type"].map(lambda t: "fire" if t in ("engine", "ladder") else "ems")
        k["nfpa_turnout_ems_share"] = _share(
            home.loc[cls == "ems", "turnout_s"].to_numpy(dtype=float) <= NFPA_TURNOUT_S["ems"])
        k["nfpa_turnout_fire_share"] = _share(
            home.loc[cls == "fire", "turnout_s"].to_numpy(dtype=float) <= NFPA_TURNOUT_S["fire"])
        k["dispatch_en_route_share"] = _share(~dispatches["from_quarters"].to_numpy(dtype=bool))
    else:
        k["nfpa_turnout_ems_share"] = _share(ems["turnout_s"].to_numpy() <= NFPA_TURNOUT_S["ems"])
        k["nfpa_turnout_fire_share"] = _share(
            fire["turnout_s"].to_numpy() <= NFPA_TURNOUT_S["fire"])
        k["dispatch_en_route_share"] = float("nan")
    if dispatches is not None and len(dispatches):
        kind = dict(zip(inc["incident_id"], inc["type"], strict=True))
        prio = dict(zip(inc["incident_id"], inc["priority"], strict=True))
        d = dispatches.assign(type=dispatches["incident_id"].map(kind),
                              priority=dispatches["incident_id"].map(prio))
        engines = d[(d["type"] == "fire") & (d["unit_type"] == "engine")]
        first_engine = engines.sort_values("arrive_s").drop_duplicates("incident_id")["travel_s"]
        als = d[(d["unit_type"] == "als") & (d["type"] == "medical") & (d["priority"] == 1)]
        als_travel = als["travel_s"]
    else:
        first_engine = fire.loc[fire["unit_type"] == "engine", "travel_s"]
        als_travel = ems.loc[(ems["unit_type"] == "als") & (ems["priority"] == 1), "travel_s"]
    k["nfpa_travel_first_engine_share"] = _share(first_engine.to_numpy() <= 240.0)
    k["nfpa_travel_first_ems_share"] = _share(ems["travel_s"].to_numpy() <= 240.0)
    k["nfpa_travel_als_share"] = _share(als_travel.to_numpy() <= 480.0)
    all_ems = inc[inc["type"].isin(_EMS_TYPES)]
    k["ems_within_539s_share"] = _share(
        np.nan_to_num(all_ems["response_s"].to_numpy(dtype=float), nan=np.inf)
        <= params.ems_target_s)
    k["nfpa_met"] = _nfpa_met(k, n_units=len(units))
    if len(units):
        k["utilisation_mean_share"] = float(units["utilisation"].mean())
        k["utilisation_max_share"] = float(units["utilisation"].max())
    else:
        k["utilisation_mean_share"] = k["utilisation_max_share"] = float("nan")
    k["units_n"] = float(len(units))
    k["stations_n"] = float(units["home_station"].nunique()) if "home_station" in units else (
        float("nan"))
    return k
