"""Helpers shared by the app tests (results folders in the contract's format)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from citytwin.results import Results


def write_results(root: Path, name: str, *, scenario: str, seed: int,
                  kpis: dict[str, dict[str, float]], series: pd.DataFrame | None = None) -> Path:
    """A results folder in the contract's format, written with citytwin.results.Results."""
    ts = {}
    if series is not None:
        ts = {d: g.drop(columns=["domain"]) for d, g in series.groupby("domain")}
    res = Results.build(scenario=scenario, seed=seed, kpis=kpis, tables={}, timeseries=ts,
                        manifest={"scenario": scenario, "seed": seed})
    return res.write(root / name)


def series_frame(domain: str, name: str, values: np.ndarray, step_s: float = 900.0) -> pd.DataFrame:
    return pd.DataFrame({"domain": domain, "series": name,
                         "time_s": np.arange(len(values)) * step_s, "value": values})
