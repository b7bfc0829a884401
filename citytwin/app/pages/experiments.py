"""Experiments page: outcomes of many runs (a batch or policy experiment) with uncertainty.

Results folders are grouped by scenario (the lever setting); seeds are replications. For the
chosen KPI each scenario gets its mean with a 95 % confidence interval as an error bar, and
each replication is drawn as a point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pandas as pd
import plotly.graph_objects as go
import solara

from citytwin.app.compare_view import kpi_table
from citytwin.app.data import load_results
from citytwin.app.plotview import Plot
from citytwin.app.state import use_app
from citytwin.app.widgets import Heading, Para
from citytwin.errors import CitytwinError

__all__ = ["Page", "outcome_figure", "find_experiments", "lever_figure", "load_experiment_output"]

_RUN_COLUMNS = {"experiment", "point", "replication", "seed", "scenario"}


def find_experiments(root: Path, *, max_depth: int = 2) -> dict[str, Path]:
    """Experiment output folders (holding ``outcomes.parquet``) under the results folder."""
    root = Path(root).resolve()
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found

    def walk(d: Path, depth: int) -> None:
        for p in sorted(d.iterdir()):
            if not p.is_dir() or p.is_symlink() or p.name.startswith(".") or p.name == "sessions":
                continue
            if (p / "outcomes.parquet").is_file():
                found[p.relative_to(root).as_posix()] = p
            elif depth + 1 < max_depth:
                walk(p, depth + 1)

    walk(root, 0)
    return found


def load_experiment_output(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """``(outcomes, sensitivity, factors, outcome_names)`` of an experiment output folder."""
    outcomes = pd.read_parquet(path / "outcomes.parquet")
    sens_path = path / "sensitivity.parquet"
    sens = pd.read_parquet(sens_path) if sens_path.is_file() else pd.DataFrame()
    if len(sens) and "factor" in sens:
        factors = [f for f in dict.fromkeys(sens["factor"]) if f in outcomes.columns]
        names = [o for o in dict.fromkeys(sens["outcome"]) if o in outcomes.columns]
    else:
        factors, names = [], [c for c in outcomes.columns if c not in _RUN_COLUMNS]
    return outcomes, sens, factors, names


def lever_figure(outcomes: pd.DataFrame, lever: str, outcome: str) -> go.Figure:
    """Outcome vs one lever: every run as a dot, mean with a 95 % t interval per lever value."""
    from citytwin.comparison import mean_ci
    from citytwin.errors import InputError

    missing = [c for c in (lever, outcome) if c not in outcomes.columns]
    if missing:
        raise InputError(f"experiment outcomes have no column(s) {missing}")
    df = outcomes[[lever, outcome]].dropna()
    stats_rows = []
    for x, g in df.groupby(lever, sort=True):
        mean, half = mean_ci(g[outcome].to_numpy(float))
        stats_rows.append((x, mean, 0.0 if pd.isna(half) else half, len(g)))
    st = pd.DataFrame(stats_rows, columns=["x", "mean", "half", "n"])
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=df[lever], y=df[outcome], mode="markers", name="runs",
                             marker=dict(color="#9e9e9e", size=7, opacity=0.7)))
    fig.add_trace(go.Scatter(x=st["x"], y=st["mean"], mode="markers+lines",
                             name="mean [95 % CI]", marker=dict(size=11, color="#1f77b4"),
                             error_y=dict(type="data", array=st["half"], visible=True)))
    fig.update_layout(title=f"{outcome} vs {lever}", xaxis_title=lever, yaxis_title=outcome,
                      template="none", height=420, margin=dict(l=60, r=10, t=40, b=50))
    return fig


def outcome_figure(results: dict[str, dict[str, Any]], kpi: str) -> go.Figure:
    """Mean ± 95 % CI of ``kpi`` per scenario, with every replication as a dot."""
    table = kpi_table(results, group_by="scenario")
    sub = table[table["kpi"] == kpi]
    raw = pd.concat([r["kpis"] for r in results.values()], ignore_index=True)
    raw = raw[raw["kpi"] == kpi]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=raw["scenario"], y=raw["value"], mode="markers",
                             name="replications", marker=dict(color="#9e9e9e", size=7)))
    err_hi = (sub["ci_high"] - sub["mean"]).fillna(0)
    err_lo = (sub["mean"] - sub["ci_low"]).fillna(0)
    fig.add_trace(go.Scatter(
        x=sub["scenario"], y=sub["mean"], mode="markers+lines", name="mean [95 % CI]",
        marker=dict(size=11, color="#1f77b4"),
        error_y=dict(type="data", symmetric=False, array=err_hi, arrayminus=err_lo)))
    unit = str(sub["unit"].iloc[0]) if len(sub) else ""
    fig.update_layout(title=f"{kpi} by scenario", template="none", yaxis_title=f"{kpi} [{unit}]", height=420,
                      margin=dict(l=50, r=10, t=40, b=60))
    return fig


@solara.component
def ExperimentOutputs():
    """Outputs of ``citytwin experiment`` (outcomes.parquet) found in the results folder."""
    app = use_app()
    exps = solara.use_memo(lambda: find_experiments(app.config.results_dir), [])
    chosen = solara.use_reactive(next(iter(exps), None))
    lever = solara.use_reactive(cast(str | None, None))
    outcome = solara.use_reactive(cast(str | None, None))
    path = exps.get(chosen.value) if chosen.value else None
    loaded = solara.use_memo(lambda: load_experiment_output(path) if path else None, [path])
    if not exps:
        return
    Heading("Policy experiments")
    solara.Select("Experiment", values=list(exps), value=chosen, style={"max-width": "360px"})
    if loaded is None:
        return
    outcomes, sens, factors, names = loaded
    if not factors or not names:
        solara.Warning("this experiment has no factors or outcomes to plot")
        return
    lv: str = lever.value if lever.value in factors and lever.value else factors[0]
    oc: str = outcome.value if outcome.value in names and outcome.value else names[0]
    with solara.Row():
        solara.Select("Lever / uncertainty", values=factors, value=lv, on_value=lever.set)
        solara.Select("Outcome", values=names, value=oc, on_value=outcome.set)
    Plot(lever_figure(outcomes, lv, oc))
    if len(sens):
        solara.DataFrame(sens[sens["outcome"] == oc].reset_index(drop=True), items_per_page=20)


@solara.component
def DefineExperiment():
    """Define a factorial experiment (2 × 2 and up) on a shipped scenario, run it, watch its
    progress, cancel it."""
    from citytwin.app.experiment_runner import (
        FACTOR_KEYS,
        ExperimentRun,
        cancel_experiment,
        experiment_progress,
        parse_values,
        start_factorial,
    )
    from citytwin.app.scenario_form import load_shipped, shipped_scenarios

    app = use_app()
    _ = app.runs_version.value
    names = solara.use_memo(lambda: shipped_scenarios(app.config), [])
    base = solara.use_reactive(names[0] if names else None)
    keys = list(FACTOR_KEYS)
    k1 = solara.use_reactive(keys[0])
    v1 = solara.use_reactive("0.15, 0.4")
    k2 = solara.use_reactive(keys[1])
    v2 = solara.use_reactive("uncontrolled, smart")
    exp_name = solara.use_reactive("ui_experiment")
    running = solara.use_reactive(cast(ExperimentRun | None, None))
    message = solara.use_reactive("")

    def run() -> None:
        try:
            if base.value is None:
                raise CitytwinError("no shipped scenario to start from")
            data = load_shipped(app.config, base.value)
            factors = [(k1.value, parse_values(v1.value, what=FACTOR_KEYS[k1.value])),
                       (k2.value, parse_values(v2.value, what=FACTOR_KEYS[k2.value]))]
            running.value = start_factorial(app.session, app.config, name=exp_name.value,
                                            city=app.city.value, base=data, factors=factors,
                                            seed=int(data.get("seed", 0)))
            message.value = ""
        except CitytwinError as exc:
            message.value = str(exc)

    with solara.Card("Define and run an experiment", classes=["citytwin-define-experiment"]):
        with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
            solara.Select("Base scenario", values=names, value=base, style={"max-width": "220px"})
            solara.InputText("Name", value=exp_name, style={"max-width": "180px"},
                             classes=["citytwin-experiment-name"])
        for key, vals, n in ((k1, v1, 1), (k2, v2, 2)):
            with solara.Row(style={"align-items": "center"}):
                solara.Select(f"Factor {n}", values=keys, value=key,
                              style={"max-width": "320px"})
                solara.InputText("levels (comma-separated)", value=vals,
                                 classes=[f"citytwin-levels-{n}"])
        with solara.Row():
            solara.Button("Run experiment", on_click=run, color="primary",
                          classes=["citytwin-run-experiment"])
            if running.value is not None:
                solara.Button("Cancel experiment", color="error", text=True,
                              on_click=lambda: cancel_experiment(app.session, running.value),
                              classes=["citytwin-cancel-experiment"])
        if message.value:
            solara.Error(message.value)
        if running.value is not None:
            frac, counts = experiment_progress(app.session, running.value)
            state = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            solara.Text(f"{running.value.name}: {len(running.value.run_ids)} runs · {state}",
                        classes=["citytwin-experiment-status"])
            solara.ProgressLinear(value=100.0 * frac)


@solara.component
def Page():
    app = use_app()
    _ = app.runs_version.value
    available = app.session.results()
    chosen = solara.use_reactive(list(available)[:8])
    kpi = solara.use_reactive(None)
    error = ""
    results: dict[str, dict[str, Any]] = {}
    for name in chosen.value:
        if name in available:
            try:
                results[name] = load_results(app.session.resolve_result(name))
            except (CitytwinError, OSError) as exc:  # e.g. a folder removed meanwhile
                error = f"{name}: {exc}"
    kpis = sorted({k for r in results.values() for k in r["kpis"]["kpi"]})
    current = kpi.value if kpi.value in kpis else (kpis[0] if kpis else None)
    fig = solara.use_memo(lambda: outcome_figure(results, current) if current else None,
                          [tuple(results), current])

    solara.Title("citytwin · Experiments")
    DefineExperiment()
    ExperimentOutputs()
    Para("Outcome versus lever (scenario), seeds pooled as replications.")
    solara.SelectMultiple("Results", values=[c for c in chosen.value if c in available],
                          all_values=sorted(available), on_value=chosen.set)
    if error:
        solara.Error(error)
    if not kpis:
        solara.Info("Run scenarios (several seeds each) or pick results folders of a batch.")
        return
    solara.Select("Outcome (KPI)", values=kpis, value=current, on_value=kpi.set,
                  style={"max-width": "420px"})
    Plot(fig)
