"""Emergency KPIs from the incident and unit tables (NFPA 1710 shares, percentiles, utilisation).

NFPA 1710 targets used: turnout 60 s (EMS) / 80 s (fire); travel 240 s for the first engine
(fire calls) and the first EMS unit (BLS level, any EMS call), 480 s for ALS on P1 medical calls;
each to be met on 90 % of incidents. EMS call-to-arrival within 8:59 (539 s).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from citytwin.emergency.params import EmergencyParams

__all__ = ["emergency_kpis", "NFPA_TURNOUT_S"]

NFPA_TURNOUT_S = {"ems": 60.0, "fire": 80.0}
_EMS_TYPES = ("medical", "traffic")


def _stats(x: np.ndarray) -> tuple[float, float, float]:
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (float("nan"),) * 3
    return float(x.mean()), float(np.percentile(x, 50)), float(np.percentile(x, 90))


def _share(ok: np.ndarray) -> float:
    return float(ok.mean()) if ok.size else float("nan")


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
    }
    for name, col in (("response", "response_s"), ("travel", "travel_s"),
                      ("turnout", "turnout_s"), ("queued", "queued_s")):
        mean, p50, p90 = _stats(served[col].to_numpy(dtype=float))
        k[f"{name}_mean_s"], k[f"{name}_p50_s"], k[f"{name}_p90_s"] = mean, p50, p90
    ems = served[served["type"].isin(_EMS_TYPES)]
    fire = served[served["type"] == "fire"]
    k["nfpa_turnout_ems_share"] = _share(ems["turnout_s"].to_numpy() <= NFPA_TURNOUT_S["ems"])
    k["nfpa_turnout_fire_share"] = _share(fire["turnout_s"].to_numpy() <= NFPA_TURNOUT_S["fire"])
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
    k["nfpa_met"] = float(all(
        not (v < 0.9) for key, v in k.items() if key.startswith("nfpa_") and np.isfinite(v)))
    all_ems = inc[inc["type"].isin(_EMS_TYPES)]
    k["ems_within_539s_share"] = _share(
        np.nan_to_num(all_ems["response_s"].to_numpy(dtype=float), nan=np.inf)
        <= params.ems_target_s)
    if len(units):
        k["utilisation_mean_share"] = float(units["utilisation"].mean())
        k["utilisation_max_share"] = float(units["utilisation"].max())
    else:
        k["utilisation_mean_share"] = k["utilisation_max_share"] = float("nan")
    k["units_n"] = float(len(units))
    return k
