"""Compare scenarios (``citytwin.compare`` is :func:`compare` of this module): every KPI side by side, difference to a baseline, 95 % CIs.

Inputs are results directories (one run each) or folders of them (a batch output). Runs are
grouped by scenario name; replications are the seeds. The confidence interval of a mean uses
Student's t with n - 1 degrees of freedom. The difference to the baseline (the first
scenario) is paired by seed when both scenarios ran the same seeds (common random numbers),
otherwise Welch's interval is used.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from citytwin.errors import InputError
from citytwin.results import Results

__all__ = ["compare", "collect_kpis", "find_runs", "mean_ci", "to_wide"]


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Results directories among ``paths``: each one itself, or its complete subfolders."""
    found: list[Path] = []
    problems: list[str] = []
    for p in map(Path, paths):
        if Results.is_complete(p):
            found.append(p)
        elif p.is_dir():
            subs = sorted(d for d in p.iterdir() if d.is_dir() and Results.is_complete(d))
            if not subs:
                problems.append(f"{p}: no results directories (no manifest.json) inside")
            found.extend(subs)
        else:
            problems.append(f"{p}: not found")
    if problems:
        raise InputError(problems)
    return found


def collect_kpis(paths: Iterable[str | Path]) -> pd.DataFrame:
    """All KPI rows of the given results (directories or batch folders), one table."""
    frames = [pd.read_parquet(p / "kpis.parquet") for p in find_runs(paths)]
    if not frames:
        raise InputError("no results to compare")
    return pd.concat(frames, ignore_index=True)


def mean_ci(values: Sequence[float] | np.ndarray, *, level: float = 0.95) -> tuple[float, float]:
    """Mean and the half-width of its t confidence interval (``scipy.stats.ttest_1samp``;
    NaN half-width when n < 2, 0 when every value is the same)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return float("nan"), float("nan")
    mean = float(x.mean())
    if n < 2:
        return mean, float("nan")
    if np.ptp(x) == 0:
        return mean, 0.0
    ci = stats.ttest_1samp(x, 0.0).confidence_interval(level)
    return mean, float(ci.high - ci.low) / 2.0


def _diff_ci(a: pd.Series, b: pd.Series, *, level: float) -> tuple[float, float, str]:
    """Difference b - a (indexed by seed): paired (``ttest_rel``) when the seeds match, else
    Welch (``ttest_ind(equal_var=False)``)."""
    if len(a) and set(a.index) == set(b.index) and len(a) >= 2:
        d = (b - a.reindex(b.index)).to_numpy()
        mean, half = mean_ci(d, level=level)
        return mean, half, "paired"
    diff = float(b.mean() - a.mean())
    if len(a) < 2 or len(b) < 2:
        return diff, float("nan"), "none"
    if np.ptp(a.to_numpy()) == 0 and np.ptp(b.to_numpy()) == 0:
        return diff, 0.0, "welch"
    ci = stats.ttest_ind(b.to_numpy(float), a.to_numpy(float),
                         equal_var=False).confidence_interval(level)
    return diff, float(ci.high - ci.low) / 2.0, "welch"


def compare(
    results: Iterable[str | Path] | pd.DataFrame,
    *,
    baseline: str | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Every KPI of every scenario with mean, CI and the difference to the baseline.

    ``results``: results directories / batch folders, or a KPI table (``collect_kpis``).
    The baseline is the first scenario met unless named. Returns one row per
    (domain, kpi, scenario): ``n, mean, ci_low, ci_high, diff, diff_ci_low, diff_ci_high,
    diff_pct, method``.
    """
    if not 0 < level < 1:
        raise InputError(f"level: expected a probability in (0, 1), got {level}")
    kpis = results if isinstance(results, pd.DataFrame) else collect_kpis(results)
    scenarios = list(dict.fromkeys(kpis["scenario"].astype(str)))
    base = scenarios[0] if baseline is None else baseline
    if base not in scenarios:
        raise InputError(f"baseline: unknown scenario {base!r} (have {scenarios})")
    order = [base] + [s for s in scenarios if s != base]
    units = kpis.groupby(["domain", "kpi"], sort=False)["unit"].first()
    rows = []
    for (domain, kpi), group in kpis.groupby(["domain", "kpi"], sort=False):
        by = {s: g.groupby("seed")["value"].mean() for s, g in group.groupby("scenario")}
        base_vals = by.get(base, pd.Series(dtype=float))
        for sc in order:
            if sc not in by:
                continue
            vals = by[sc]
            mean, half = mean_ci(vals.to_numpy(), level=level)
            if sc == base:
                diff, dhalf, method = 0.0, 0.0, "baseline"
            elif len(base_vals):
                diff, dhalf, method = _diff_ci(base_vals, vals, level=level)
            else:
                diff, dhalf, method = float("nan"), float("nan"), "no baseline"
            bmean = float(base_vals.mean()) if len(base_vals) else float("nan")
            rows.append({
                "domain": domain, "kpi": kpi, "unit": units[(domain, kpi)], "scenario": sc,
                "n": len(vals), "mean": mean, "ci_low": mean - half, "ci_high": mean + half,
                "diff": diff, "diff_ci_low": diff - dhalf, "diff_ci_high": diff + dhalf,
                "diff_pct": (100.0 * diff / bmean) if bmean not in (0.0,) and np.isfinite(bmean)
                else float("nan"),
                "method": method,
            })
    cols = ["domain", "kpi", "unit", "scenario", "n", "mean", "ci_low", "ci_high", "diff",
            "diff_ci_low", "diff_ci_high", "diff_pct", "method"]
    return pd.DataFrame(rows, columns=cols)


def _fmt(mean: float, low: float, high: float) -> str:
    if not np.isfinite(mean):
        return "-"
    half = (high - low) / 2
    if np.isfinite(half) and half > 0:
        return f"{mean:.4g} ± {half:.2g}"
    return f"{mean:.4g}"


def to_wide(table: pd.DataFrame) -> pd.DataFrame:
    """One row per KPI, per scenario a "mean ± ci" column and (non-baseline) a "Δ" column."""
    if table.empty:
        return pd.DataFrame()
    scenarios = list(dict.fromkeys(table["scenario"]))
    base = scenarios[0]
    out: dict[str, list[str]] = {"domain": [], "kpi": [], "unit": []}
    for sc in scenarios:
        out[sc] = []
        if sc != base:
            out[f"Δ {sc}"] = []
    for (domain, kpi), g in table.groupby(["domain", "kpi"], sort=False):
        out["domain"].append(domain)
        out["kpi"].append(kpi)
        out["unit"].append(str(g["unit"].iloc[0]))
        for sc in scenarios:
            row = g[g["scenario"] == sc]
            if row.empty:
                out[sc].append("-")
                if sc != base:
                    out[f"Δ {sc}"].append("-")
                continue
            r = row.iloc[0]
            out[sc].append(_fmt(r["mean"], r["ci_low"], r["ci_high"]))
            if sc != base:
                out[f"Δ {sc}"].append(_fmt(r["diff"], r["diff_ci_low"], r["diff_ci_high"]))
    return pd.DataFrame(out)
