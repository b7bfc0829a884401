"""Comparison tables for the Compare and Experiments pages (pure pandas, no UI).

Several results folders are grouped by scenario name; within a scenario the seeds are
replications. For each KPI the table gives the mean, a 95 % confidence interval (Student t
over replications; empty with one replication) and the difference to the first scenario with
a Welch 95 % interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from citytwin.errors import InputError

__all__ = ["kpi_table", "series_table", "link_congestion", "transformer_loading",
           "response_points", "COMPARE_COLUMNS"]

COMPARE_COLUMNS = ["domain", "kpi", "unit", "scenario", "n", "mean", "ci_low", "ci_high",
                   "diff", "diff_ci_low", "diff_ci_high", "diff_pct"]


def _label_kpis(results: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    parts = []
    for label, res in results.items():
        k = res["kpis"].copy()
        k["label"] = label
        parts.append(k)
    if not parts:
        raise InputError("no results to compare (pick at least one results folder)")
    return pd.concat(parts, ignore_index=True)


def kpi_table(results: Mapping[str, Mapping[str, Any]], *, group_by: str = "label",
              level: float = 0.95) -> pd.DataFrame:
    """KPI comparison, one row per (domain, kpi, group).

    ``results`` maps a display label to loaded results (see :func:`citytwin.app.data.load_results`).
    ``group_by="label"`` treats every results folder as its own group; ``"scenario"`` pools
    folders of the same scenario name as replications. The first group is the reference for
    ``diff`` (group mean minus reference mean).
    """
    if group_by not in ("label", "scenario"):
        raise InputError(f"group_by must be 'label' or 'scenario', got {group_by!r}")
    df = _label_kpis(results)
    groups = list(dict.fromkeys(df[group_by]))
    rows = []
    for (domain, kpi), sub in df.groupby(["domain", "kpi"], sort=True):
        unit = str(sub["unit"].iloc[0])
        ref_vals = sub.loc[sub[group_by] == groups[0], "value"].to_numpy(float)
        for g in groups:
            vals = sub.loc[sub[group_by] == g, "value"].to_numpy(float)
            if len(vals) == 0:
                continue
            mean, lo, hi = _mean_ci(vals, level)
            d, dlo, dhi = _diff_ci(vals, ref_vals, level)
            ref_mean = float(np.mean(ref_vals)) if len(ref_vals) else np.nan
            pct = 100.0 * d / abs(ref_mean) if ref_mean not in (0.0,) and np.isfinite(ref_mean) else np.nan
            rows.append((domain, kpi, unit, g, len(vals), mean, lo, hi, d, dlo, dhi, pct))
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def _mean_ci(vals: np.ndarray, level: float) -> tuple[float, float, float]:
    mean = float(np.mean(vals))
    if len(vals) < 2:
        return mean, np.nan, np.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(vals) - 1) * stats.sem(vals))
    return mean, mean - half, mean + half


def _diff_ci(a: np.ndarray, b: np.ndarray, level: float) -> tuple[float, float, float]:
    if len(a) == 0 or len(b) == 0:
        return np.nan, np.nan, np.nan
    d = float(np.mean(a) - np.mean(b))
    if len(a) < 2 or len(b) < 2:
        return d, np.nan, np.nan
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = np.sqrt(va + vb)
    if se == 0:
        return d, d, d
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, dof) * se)
    return d, d - half, d + half


def series_table(results: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """All time series of all results with a ``label`` column (long format)."""
    parts = []
    for label, res in results.items():
        ts = res.get("timeseries")
        if ts is not None and len(ts):
            ts = ts.copy()
            ts["label"] = label
            parts.append(ts)
    if not parts:
        return pd.DataFrame(columns=["scenario", "seed", "domain", "series", "time_s", "value",
                                     "label"])
    return pd.concat(parts, ignore_index=True)


def link_congestion(links: pd.DataFrame, freeflow_kph: pd.Series) -> pd.Series:
    """Per edge_id: lowest observed speed as a fraction of free-flow speed (1 = no congestion)."""
    if links is None or links.empty:
        return pd.Series(dtype=float)
    speed = links.groupby("edge_id")["speed_kph"].min()
    ff = freeflow_kph.reindex(speed.index)
    ratio = (speed / ff).clip(lower=0, upper=1)
    return ratio.dropna()


def transformer_loading(assets: pd.DataFrame) -> pd.Series:
    """Per transformer asset_id: peak loading in % of rating."""
    if assets is None or assets.empty:
        return pd.Series(dtype=float)
    tr = assets[assets["kind"].astype(str).str.contains("trafo|transformer")]
    return tr.groupby("asset_id")["loading_pct"].max()


def response_points(incidents: pd.DataFrame, buildings: pd.DataFrame) -> pd.DataFrame:
    """Incident locations (building centroids) with their response time in minutes."""
    cols = ["x", "y", "value"]
    if incidents is None or incidents.empty:
        return pd.DataFrame(columns=cols)
    inc = incidents.dropna(subset=["response_s"])
    b = buildings.set_index("building_id")[["x", "y"]]
    inc = inc[inc["building_id"].isin(b.index)]
    out = b.loc[inc["building_id"].to_numpy()].reset_index(drop=True)
    out["value"] = inc["response_s"].to_numpy(float) / 60.0
    return out[cols]
