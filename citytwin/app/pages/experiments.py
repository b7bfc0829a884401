"""Experiments page: outcomes of many runs (a batch or policy experiment) with uncertainty.

Results folders are grouped by scenario (the lever setting); seeds are replications. For the
chosen KPI each scenario gets its mean with a 95 % confidence interval as an error bar, and
each replication is drawn as a point.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import solara

from citytwin.app.compare_view import kpi_table
from citytwin.app.data import load_results
from citytwin.app.state import use_app
from citytwin.app.widgets import Para
from citytwin.errors import CitytwinError

__all__ = ["Page", "outcome_figure"]


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
def Page():
    app = use_app()
    _ = app.runs_version.value
    available = app.session.results()
    chosen = solara.use_reactive(list(available)[:8])
    kpi = solara.use_reactive(None)
    error = ""
    results: dict[str, dict[str, Any]] = {}
    try:
        for name in chosen.value:
            if name in available:
                results[name] = load_results(app.session.resolve_result(name))
    except CitytwinError as exc:
        error = str(exc)
    kpis = sorted({k for r in results.values() for k in r["kpis"]["kpi"]})
    current = kpi.value if kpi.value in kpis else (kpis[0] if kpis else None)
    fig = solara.use_memo(lambda: outcome_figure(results, current) if current else None,
                          [tuple(results), current])

    solara.Title("citytwin · Experiments")
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
    solara.FigurePlotly(fig)
