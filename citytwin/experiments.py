"""Policy experiments: levers × uncertainties over a base scenario.

In EMA Workbench's vocabulary: *levers* are what the city controls (EV charging policy, a
new station, lanes), *uncertainties* what it does not (demand growth, heat), *outcomes* the
KPIs. A design (full factorial, or a Latin hypercube from ``scipy.stats.qmc``) gives design
points; every point runs ``replications`` times through :func:`citytwin.batch.run_batch`
(so it is parallel and resumable); the outcomes table has one row per run, and the
sensitivity summary gives standardized regression coefficients (SRC), R² and main effects.

Experiment TOML::

    name = "ev_policy"
    scenario = "baseline.toml"          # relative to this file
    design = "latin_hypercube"          # or "full_factorial"
    samples = 8                         # Latin hypercube only
    replications = 2
    seed = 1                            # seeds the design sampling
    outcomes = ["peak_load_kw"]         # default: every KPI

    [[levers]]
    name = "ev_share"
    key = "interventions.ev_share.share"   # an intervention field (added when absent) ...
    values = [0.1, 0.4]

    [[uncertainties]]
    name = "growth"
    key = "interventions.demand_growth.factor"   # ... or a dotted scenario key
    low = 0.9
    high = 1.2
"""

from __future__ import annotations

import copy
import itertools
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy.stats import qmc

from citytwin.batch import BatchProgress, BatchReport, run_batch, run_dir_name
from citytwin.errors import ScenarioError
from citytwin.rng import stream
from citytwin.scenario import Scenario, load_scenario, scenario_from_dict

__all__ = [
    "Factor",
    "Experiment",
    "ExperimentResult",
    "load_experiment",
    "design_points",
    "run_experiment",
    "sensitivity",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Factor(BaseModel):
    """A lever or an uncertainty: a scenario key and its values (a list, or low..high)."""

    model_config = _FROZEN
    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    key: str = Field(min_length=1, description="dotted scenario key, e.g. "
                     "'interventions.ev_share.share' or 'duration_h'")
    values: tuple[float | int | str | bool, ...] | None = None
    low: float | None = None
    high: float | None = None
    integer: bool = False
    levels: int = Field(default=3, ge=2, le=50, description="grid points in a full factorial")

    @model_validator(mode="after")
    def _range_or_values(self) -> Factor:
        has_range = self.low is not None or self.high is not None
        if (self.values is not None) == has_range:
            raise ValueError("give either 'values' or both 'low' and 'high'")
        if self.values is not None and len(self.values) == 0:
            raise ValueError("'values' must not be empty")
        if has_range:
            if self.low is None or self.high is None:
                raise ValueError("give both 'low' and 'high'")
            if not self.low < self.high:
                raise ValueError(f"'low' ({self.low}) must be below 'high' ({self.high})")
        return self

    def from_unit(self, u: float) -> Any:
        """Map u in [0, 1) to a value of this factor."""
        if self.values is not None:
            return self.values[min(int(u * len(self.values)), len(self.values) - 1)]
        assert self.low is not None and self.high is not None
        x = self.low + u * (self.high - self.low)
        return int(round(x)) if self.integer else float(x)

    def grid(self) -> list[Any]:
        if self.values is not None:
            return list(self.values)
        assert self.low is not None and self.high is not None
        pts = np.linspace(self.low, self.high, self.levels)
        return [int(round(p)) for p in pts] if self.integer else [float(p) for p in pts]


class Experiment(BaseModel):
    """An experiment file, validated."""

    model_config = _FROZEN
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    scenario: Path
    design: Literal["full_factorial", "latin_hypercube"] = "full_factorial"
    samples: int = Field(default=8, ge=1, le=10_000)
    replications: int = Field(default=1, ge=1, le=1000)
    seed: int = Field(default=0, ge=0)
    levers: tuple[Factor, ...] = ()
    uncertainties: tuple[Factor, ...] = ()
    outcomes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _factors(self) -> Experiment:
        names = [f.name for f in (*self.levers, *self.uncertainties)]
        if not names:
            raise ValueError("give at least one lever or uncertainty")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"factor names must be unique; repeated: {dup}")
        return self

    @property
    def factors(self) -> tuple[Factor, ...]:
        return (*self.levers, *self.uncertainties)


def load_experiment(path: str | Path) -> Experiment:
    """Load an experiment TOML file; the scenario path is made relative to it."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"TOML syntax error: {exc}", source=str(path)) from None
    if isinstance(data.get("scenario"), str):
        sc = Path(data["scenario"])
        data["scenario"] = str(sc if sc.is_absolute() else (path.parent / sc).resolve())
    data.setdefault("name", path.stem)
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        from citytwin.scenario import problems_from_validation

        raise ScenarioError(problems_from_validation(exc), source=str(path)) from None


def design_points(exp: Experiment) -> pd.DataFrame:
    """The design: one row per point (``point`` 0..P-1) and one column per factor."""
    factors = exp.factors
    if exp.design == "full_factorial":
        combos = list(itertools.product(*(f.grid() for f in factors)))
    else:
        rng = stream(exp.seed, "experiment")
        sampler = qmc.LatinHypercube(d=len(factors), rng=rng)
        u = sampler.random(exp.samples)
        combos = [tuple(f.from_unit(float(u[i, j])) for j, f in enumerate(factors))
                  for i in range(exp.samples)]
    df = pd.DataFrame(combos, columns=[f.name for f in factors])
    df.insert(0, "point", range(len(df)))
    return df


def _set_key(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if parts[0] == "interventions":
        if len(parts) != 3:
            raise ValueError(f"key {key!r}: expected 'interventions.<type>.<field>'")
        ivs = [dict(iv) for iv in data.get("interventions", [])]
        for iv in ivs:
            if iv.get("type") == parts[1]:
                iv[parts[2]] = value
                break
        else:
            ivs.append({"type": parts[1], parts[2]: value})
        data["interventions"] = ivs
        return
    node = data
    for p in parts[:-1]:
        nxt = node.get(p)
        if nxt is None:
            nxt = {}
        elif not isinstance(nxt, dict):
            raise ValueError(f"key {key!r}: {p!r} is not a table")
        else:
            nxt = dict(nxt)
        node[p] = nxt
        node = nxt
    node[parts[-1]] = value


def point_scenarios(exp: Experiment, design: pd.DataFrame | None = None) -> list[Scenario]:
    """One validated scenario per design point (all problems of all points at once)."""
    base = load_scenario(exp.scenario)
    design = design_points(exp) if design is None else design
    base_data = base.model_dump(mode="json")
    out: list[Scenario] = []
    problems: list[str] = []
    for row in design.itertuples(index=False):
        values = row._asdict()
        point = int(values.pop("point"))
        data = copy.deepcopy(base_data)
        data["name"] = f"{exp.name}__p{point:03d}"
        data["description"] = f"{exp.name} point {point}: " + ", ".join(
            f"{k}={v}" for k, v in values.items())
        try:
            for f in exp.factors:
                v = values[f.name]
                _set_key(data, f.key, v.item() if isinstance(v, np.generic) else v)
            out.append(scenario_from_dict(data, source=f"{exp.name} point {point}"))
        except (ValueError, ScenarioError) as exc:
            problems.append(f"point {point} ({values}): {exc}")
    if problems:
        raise ScenarioError(problems, source=f"experiment {exp.name}")
    return out


@dataclass
class ExperimentResult:
    """Outcomes (one row per run), the sensitivity summary and the batch report."""

    outcomes: pd.DataFrame
    sensitivity: pd.DataFrame
    batch: BatchReport


def run_experiment(
    experiment: Experiment | str | Path,
    *,
    out: str | Path,
    workers: int = 1,
    scheduler: Any = None,
    progress: BatchProgress | None = None,
) -> ExperimentResult:
    """Run every design point × replication; write ``outcomes.parquet`` and
    ``sensitivity.parquet`` into ``out`` (runs go to ``out/runs``)."""
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    out = Path(out)
    design = design_points(exp)
    scenarios = point_scenarios(exp, design)
    report = run_batch(scenarios, out=out / "runs", replications=exp.replications,
                       workers=workers, scheduler=scheduler, progress=progress)
    rows = []
    for sc, (_, point) in zip(scenarios, design.iterrows(), strict=True):
        for r in range(exp.replications):
            seed = sc.seed + r
            path = out / "runs" / run_dir_name(sc, seed)
            if not (path / "kpis.parquet").is_file():
                continue
            k = pd.read_parquet(path / "kpis.parquet")
            row: dict[str, Any] = {"experiment": exp.name, "point": int(point["point"]),
                                   "replication": r, "seed": seed, "scenario": sc.name}
            row.update({f.name: point[f.name] for f in exp.factors})
            row.update(_outcome_values(k, exp.outcomes))
            rows.append(row)
    outcomes = pd.DataFrame(rows)
    outcome_cols = [c for c in outcomes.columns
                    if c not in {"experiment", "point", "replication", "seed", "scenario"}
                    and c not in {f.name for f in exp.factors}]
    sens = sensitivity(outcomes, factors=exp.factors, outcomes=outcome_cols,
                       levers=[f.name for f in exp.levers])
    out.mkdir(parents=True, exist_ok=True)
    _atomic_parquet(outcomes, out / "outcomes.parquet")
    _atomic_parquet(sens, out / "sensitivity.parquet")
    return ExperimentResult(outcomes, sens, report)


def _atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)


def _outcome_values(kpis: pd.DataFrame, wanted: Sequence[str]) -> dict[str, float]:
    names = kpis["kpi"].astype(str)
    ambiguous = set(names[names.duplicated()])
    vals = {}
    for domain, kpi, value in zip(kpis["domain"], names, kpis["value"], strict=True):
        col = f"{domain}.{kpi}" if kpi in ambiguous else kpi
        if wanted and col not in wanted and f"{domain}.{kpi}" not in wanted:
            continue
        vals[col] = float(value)
    return vals


def _main_effect(table: pd.DataFrame, name: str, y: np.ndarray) -> float:
    """Range of the outcome's mean over the factor's levels, each mean taken over the other
    factors' settings.

    A level must average over at least two design points, otherwise its "mean" is one point's
    outcome and the range is the overall max - min for every factor. Factorial designs (each
    level repeated over the other factors) group by level; space-filling designs (Latin
    hypercube: every point its own level) group numeric factors into quantile bins of at least
    two points each (at most 4 bins).
    """
    x = table[name]
    yy = pd.Series(y, index=x.index)
    points = table["point"] if "point" in table else pd.Series(np.arange(len(x)), index=x.index)
    numeric = pd.api.types.is_numeric_dtype(x) and x.dtype != bool
    per_level = points.groupby(x, observed=True).nunique()
    if numeric and (per_level < 2).any():
        n_points = int(points.nunique())
        bins = min(4, n_points // 2)
        if bins < 2:
            return float("nan")
        # bins over distinct values (replications of one point stay in one bin)
        x = pd.qcut(x.astype(float).rank(method="dense"), bins, labels=False,
                    duplicates="drop")
    means = yy.groupby(x, observed=True).mean()
    return float(means.max() - means.min()) if len(means) > 1 else float("nan")


def sensitivity(
    table: pd.DataFrame,
    *,
    factors: Sequence[Factor],
    outcomes: Sequence[str],
    levers: Sequence[str] = (),
) -> pd.DataFrame:
    """Per (outcome, factor): standardized regression coefficient, the regression's R² and the
    main effect (range of the outcome's mean over the factor's levels, or over quantile bins
    for space-filling designs; see :func:`_main_effect`).

    SRCs come from one least-squares fit of the standardized outcome on all numeric factors
    (booleans count as 0/1; text factors get only a main effect).
    """
    cols = ["outcome", "factor", "kind", "src", "r2", "main_effect", "n"]
    if table.empty:
        return pd.DataFrame(columns=cols)
    kinds = {f.name: ("lever" if f.name in levers else "uncertainty") for f in factors}
    rows = []
    numeric = []
    for f in factors:
        col = table[f.name]
        if col.dtype == bool or pd.api.types.is_numeric_dtype(col):
            numeric.append(f.name)
    for y_name in outcomes:
        y = pd.to_numeric(table[y_name], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(y)
        src: dict[str, float] = {}
        r2 = float("nan")
        if numeric and ok.sum() > len(numeric) + 1 and np.std(y[ok]) > 0:
            X = table.loc[ok, numeric].astype(float).to_numpy()
            sd = X.std(axis=0, ddof=1)
            use = sd > 0
            if use.any():
                Z = (X[:, use] - X[:, use].mean(axis=0)) / sd[use]
                yz = (y[ok] - y[ok].mean()) / y[ok].std(ddof=1)
                A = np.column_stack([np.ones(len(yz)), Z])
                beta, *_ = np.linalg.lstsq(A, yz, rcond=None)
                resid = yz - A @ beta
                r2 = float(1.0 - (resid @ resid) / (yz @ yz))
                for name, b in zip(np.asarray(numeric)[use], beta[1:], strict=True):
                    src[str(name)] = float(b)
        for f in factors:
            effect = _main_effect(table.loc[ok], f.name, y[ok])
            rows.append({"outcome": y_name, "factor": f.name, "kind": kinds[f.name],
                         "src": src.get(f.name, float("nan")), "r2": r2,
                         "main_effect": effect, "n": int(ok.sum())})
    return pd.DataFrame(rows, columns=cols)
