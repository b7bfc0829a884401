"""Comparison tables for the Compare and Experiments pages (pure pandas, no UI).

The statistics are :func:`citytwin.comparison.compare` (the same as ``citytwin compare``): mean
and 95 % t interval over replications (seeds), difference to the first group with a paired
or Welch interval. This module adds the app's grouping (per results folder or per scenario)
and the per-link / per-transformer / per-incident values the result maps show.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from citytwin.errors import InputError

__all__ = ["kpi_table", "series_table", "derived_series", "link_congestion", "transformer_loading",
           "response_points", "COMPARE_COLUMNS"]

COMPARE_COLUMNS = ["domain", "kpi", "unit", "scenario", "n", "mean", "ci_low", "ci_high",
                   "diff", "diff_ci_low", "diff_ci_high", "diff_pct", "method"]


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
    """KPI comparison via :func:`citytwin.comparison.compare`, one row per (domain, kpi, group).

    ``results`` maps a display label to loaded results (see :func:`citytwin.app.data.load_results`).
    ``group_by="label"`` treats every results folder as its own group; ``"scenario"`` pools
    folders of the same scenario name as replications (paired by seed against the first
    group when the seeds match, else Welch). The first group is the baseline of ``diff``.
    The ``scenario`` column of the returned table holds the group.
    """
    from citytwin.comparison import compare

    if group_by not in ("label", "scenario"):
        raise InputError(f"group_by must be 'label' or 'scenario', got {group_by!r}")
    if not 0 < level < 1:
        raise InputError(f"level: expected a probability in (0, 1), got {level}")
    df = _label_kpis(results)
    if group_by == "label":
        df["scenario"] = df["label"]
    df = df.drop(columns=["label"])
    fast = _compare_single_runs(df)
    return fast if fast is not None else compare(df, level=level)


def _compare_single_runs(kpis: pd.DataFrame) -> pd.DataFrame | None:
    """:func:`citytwin.comparison.compare` for the common case of one run (one seed) per
    group, without its per-KPI pandas loop (3 results x 87 KPIs: 0.5-2.9 s there, a few ms
    here; the Compare page recomputes it on every change of the chosen results). With one
    seed there is no interval: the same numbers as ``compare`` (tested). None when some group
    has several seeds (or none): then ``compare`` computes the intervals."""
    if kpis.empty or "seed" not in kpis:
        return None
    df = kpis.assign(scenario=kpis["scenario"].astype(str))
    keys3 = ["domain", "kpi", "scenario"]
    if (df.groupby(keys3, sort=False)["seed"].nunique() != 1).any():
        return None
    scenarios = list(dict.fromkeys(df["scenario"]))
    base = scenarios[0]
    units = df.groupby(["domain", "kpi"], sort=False)["unit"].first().to_dict()
    values = df.groupby(keys3, sort=False)["value"].mean().to_dict()
    nan = float("nan")
    rows = []
    for domain, kpi in units:
        has_base = (domain, kpi, base) in values
        bmean = float(values[(domain, kpi, base)]) if has_base else nan
        for sc in scenarios:
            if (domain, kpi, sc) not in values:
                continue
            mean = float(values[(domain, kpi, sc)])
            if sc == base:
                diff, dhalf, method = 0.0, 0.0, "baseline"
            elif has_base:
                diff, dhalf, method = mean - bmean, nan, "none"
            else:
                diff, dhalf, method = nan, nan, "no baseline"
            rows.append((domain, kpi, units[(domain, kpi)], sc, 1, mean, nan, nan, diff,
                         diff - dhalf, diff + dhalf,
                         100.0 * diff / bmean if bmean != 0.0 and np.isfinite(bmean) else nan,
                         method))
    return pd.DataFrame(rows, columns=COMPARE_COLUMNS)


def derived_series(res: Mapping[str, Any]) -> pd.DataFrame:
    """Series the result tables imply: network speed and volume per time step (links),
    peak transformer loading per time step (assets), mean response time per hour (incidents).
    """
    parts = []
    links = res.get("links")
    if links is not None and len(links):
        g = links.assign(w=links["volume"].clip(lower=0) * links["speed_kph"]).groupby("time_s")
        vol = g["volume"].sum()
        speed = (g["w"].sum() / vol).where(vol > 0, g["speed_kph"].mean())
        parts.append(_series("traffic", "network mean speed (km/h, volume-weighted)", speed))
        parts.append(_series("traffic", "network volume (veh on links)", vol))
    assets = res.get("assets")
    if assets is not None and len(assets):
        tr = assets[assets["kind"].astype(str).str.contains("trafo|transformer")]
        if len(tr):
            parts.append(_series("energy", "peak transformer loading (% of rating)",
                                 tr.groupby("time_s")["loading_pct"].max()))
    inc = res.get("incidents")
    if inc is not None and len(inc) and "response_s" in inc:
        hour = (inc["time_s"] // 3600) * 3600
        parts.append(_series("emergency", "mean response time by hour (min)",
                             inc.groupby(hour)["response_s"].mean() / 60.0))
    if not parts:
        return pd.DataFrame(columns=["domain", "series", "time_s", "value"])
    return pd.concat(parts, ignore_index=True)


def _series(domain: str, name: str, s: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"domain": domain, "series": name, "time_s": s.index.to_numpy(float),
                         "value": s.to_numpy(float)})


def series_table(results: Mapping[str, Mapping[str, Any]], *,
                 only: tuple[str, str] | None = None) -> pd.DataFrame:
    """All time series of all results (recorded and derived) with a ``label`` column; only
    the series ``only = (domain, series)`` when given (filtered before joining: the Compare
    page draws one series at a time)."""
    parts = []
    for label, res in results.items():
        derived = res.get("_derived")
        if derived is None:
            derived = derived_series(res)
        for ts in (res.get("timeseries"), derived):
            if ts is not None and len(ts):
                if only is not None:
                    ts = ts[(ts["domain"] == only[0]) & (ts["series"] == only[1])]
                    if not len(ts):
                        continue
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
