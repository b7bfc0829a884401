"""Live page: a live twin's results folder (``citytwin live --out``) as it fills — observed vs
twin for a chosen transformer, the forecast bands, the demand multiplier with its band, the
alerts with their recommendations and the maintenance ranking. The folders are the
subfolders of ``<results>/live``; the page polls the chosen one every second and redraws when
a message was journaled or a forecast written."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import solara

from citytwin.app.plotview import Plot
from citytwin.app.state import use_app
from citytwin.app.widgets import Heading, KeyValueTable, Para
from citytwin.twin.live import read_parts

__all__ = ["Page", "LiveView", "live_folders", "load_live", "signature", "sensor_figure",
           "multiplier_figure", "state_map"]

POLL_S = 1.0


def live_folders(results_dir: Path) -> list[str]:
    """Names of the live results folders under ``results_dir/live`` (those with a journal)."""
    root = Path(results_dir) / "live"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "journal").is_dir())


def signature(folder: Path) -> tuple[int, int]:
    """(journal bytes, forecast parts): changes whenever the twin applied or forecast."""
    j = folder / "journal" / "observations.jsonl"
    size = j.stat().st_size if j.exists() else 0
    return size, len(list((folder / "forecast").glob("issue-*.parquet")))


@dataclass
class LiveView:
    observed: pd.DataFrame  # kind, key, t, result
    quarantined: int
    state: pd.DataFrame = field(default_factory=pd.DataFrame)
    forecast: pd.DataFrame = field(default_factory=pd.DataFrame)  # the latest issue
    nowcast: pd.DataFrame = field(default_factory=pd.DataFrame)  # each issue's first 2 h
    alerts: pd.DataFrame = field(default_factory=pd.DataFrame)  # every issue
    ranking: pd.DataFrame = field(default_factory=pd.DataFrame)  # the latest issue

    @property
    def issues(self) -> list[float]:
        return sorted(self.state["issue_s"].unique()) if len(self.state) else []

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"observations applied": len(self.observed),
                               "quarantined": self.quarantined,
                               "forecasts": len(self.issues)}
        if len(self.observed):
            out["city time of the last observation"] = _clock(float(self.observed["t"].max()))
        if len(self.state):
            last = self.state[self.state["issue_s"] == self.state["issue_s"].max()].iloc[0]
            out["last forecast issued at"] = _clock(float(last["issue_s"]))
            out["demand multiplier (95 %)"] = (f"{last['demand_multiplier']:.3f} "
                                               f"({last['demand_multiplier_lo']:.3f}–"
                                               f"{last['demand_multiplier_hi']:.3f})")
            if "forecast_wall_s" in last:
                out["forecast compute"] = f"{last['forecast_wall_s']:.2f} s"
        return out

    def assets(self) -> list[str]:
        keys = self.observed.loc[self.observed["kind"].isin(["loading", "top_oil"]), "key"]
        order = list(self.ranking["asset_id"]) if len(self.ranking) else []
        rest = sorted(set(keys) - set(order))
        return [a for a in order if a in set(keys)] + rest


def _kernel_context() -> Any:
    try:
        from solara.server import kernel_context

        return kernel_context.get_current_context() if kernel_context.has_current_context() \
            else None
    except Exception:  # noqa: BLE001 - outside a server
        return None


def _clock(t_s: float) -> str:
    d, s = divmod(int(round(t_s)), 86_400)
    return f"day {d + 1} {s // 3600:02d}:{s % 3600 // 60:02d}"


def load_live(folder: Path) -> LiveView:
    """Everything the page shows, read from the folder (journal lines, Parquet parts)."""
    j = folder / "journal" / "observations.jsonl"
    rows = []
    if j.exists():
        for line in j.read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(line)
            except ValueError:  # a line being written
                continue
            if isinstance(r.get("result"), int | float):
                rows.append((r["kind"], r["key"], float(r["t"]), float(r["result"])))
    obs = pd.DataFrame(rows, columns=["kind", "key", "t", "result"])
    q = folder / "journal" / "quarantine.jsonl"
    nq = sum(1 for x in q.read_text(encoding="utf-8").splitlines() if x.strip()) if q.exists() else 0
    state, fc = read_parts(folder, "state"), pd.DataFrame()
    allfc = read_parts(folder, "forecast")
    now = (allfc[allfc["time_s"] <= allfc["issue_s"] + 7200.0] if len(allfc) else allfc)
    alerts, ranking = read_parts(folder, "alerts"), pd.DataFrame()
    if len(state):
        last = state["issue_s"].max()
        tag = f"issue-{int(last):08d}.parquet"
        if (folder / "forecast" / tag).exists():
            fc = pd.read_parquet(folder / "forecast" / tag)
        if (folder / "maintenance" / tag).exists():
            ranking = pd.read_parquet(folder / "maintenance" / tag)
    return LiveView(obs, nq, state, fc, now, alerts, ranking)


def sensor_figure(view: LiveView, asset: str, kind: str) -> go.Figure:
    """Observed readings of ``asset`` (loading or top oil) and the twin's latest forecast
    band (loading, or the hot spot for top oil) with its median."""
    obs = view.observed[(view.observed["key"] == asset) & (view.observed["kind"] == kind)]
    fig = go.Figure()
    y = obs["result"]
    if kind == "loading" and len(view.state):  # against the effective rating, as forecast
        last = view.state[view.state["issue_s"] == view.state["issue_s"].max()]
        g = last.loc[last["asset_id"] == asset, "rating_factor_g"]
        y = y * (float(g.iloc[0]) if len(g) else 1.0)
    fig.add_trace(go.Scatter(x=obs["t"] / 3600.0, y=y, mode="markers",
                             name="observed", marker={"size": 4, "color": "#333"}))
    col = "loading_pct" if kind == "loading" else "hot_spot_c"
    if len(view.nowcast):
        n = view.nowcast[view.nowcast["asset_id"] == asset].sort_values(["issue_s", "time_s"])
        n = n.drop_duplicates("time_s", keep="last")
        fig.add_trace(go.Scatter(x=n["time_s"] / 3600.0, y=n[f"{col}_p50"], mode="lines",
                                 line={"color": "#ff7f0e", "width": 1.5},
                                 name="twin (first 2 h of each forecast)"))
    if len(view.forecast):
        f = view.forecast[view.forecast["asset_id"] == asset]
        x = f["time_s"] / 3600.0
        fig.add_trace(go.Scatter(x=x, y=f[f"{col}_p95"], mode="lines", line={"width": 0},
                                 showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=x, y=f[f"{col}_p05"], mode="lines", fill="tonexty",
                                 line={"width": 0},
                                 fillcolor="rgba(31,119,180,0.25)", name="twin forecast 5–95 %"))
        fig.add_trace(go.Scatter(x=x, y=f[f"{col}_p50"], line={"color": "#1f77b4"},
                                 name="twin forecast median"))
    limit = 100.0 if kind == "loading" else 120.0
    fig.add_hline(y=limit, line={"dash": "dot", "color": "#d62728"})
    unit = "% of the effective rating" if kind == "loading" else "°C"
    name = "loading" if kind == "loading" else "observed top oil, twin hot spot"
    fig.update_layout(height=300, margin={"l": 50, "r": 10, "t": 30, "b": 40},
                      title=f"{asset}: {name}", xaxis_title="hour of the day",
                      yaxis_title=unit, legend={"orientation": "h"})
    return fig


def multiplier_figure(view: LiveView) -> go.Figure:
    s = view.state.groupby("issue_s")[["demand_multiplier", "demand_multiplier_lo",
                                       "demand_multiplier_hi"]].first().reset_index()
    x = s["issue_s"] / 3600.0
    fig = go.Figure([
        go.Scatter(x=x, y=s["demand_multiplier_hi"], mode="lines", line={"width": 0},
                   showlegend=False),
        go.Scatter(x=x, y=s["demand_multiplier_lo"], mode="lines", fill="tonexty",
                   line={"width": 0},
                   fillcolor="rgba(44,160,44,0.25)", name="95 % band"),
        go.Scatter(x=x, y=s["demand_multiplier"], line={"color": "#2ca02c"}, name="estimate")])
    fig.update_layout(height=250, margin={"l": 50, "r": 10, "t": 30, "b": 40},
                      title="demand multiplier", xaxis_title="hour of the day",
                      legend={"orientation": "h"})
    return fig


def state_map(view: LiveView) -> go.Figure | None:
    """The transformers where they are, coloured by the forecast's maximum loading (median,
    % of the effective rating), larger when at risk; the alerted ones outlined."""
    r = view.ranking
    if not len(r) or "x" not in r:
        return None
    alerted = set(view.alerts.loc[view.alerts["issue_s"] == r["issue_s"].iloc[0], "asset_id"]) \
        if len(view.alerts) else set()
    text = [f"{a}: forecast max {lo:.0f} %, g {g:.2f}, loss of life {lol:.3g} h"
            for a, lo, g, lol in zip(r["asset_id"], r["forecast_max_loading_pct_p50"],
                                     r["rating_factor_g"], r["loss_of_life_h"], strict=True)]
    fig = go.Figure(go.Scatter(
        x=r["x"], y=r["y"], mode="markers", text=text, hoverinfo="text", name="transformers",
        marker={"size": 8 + 14 * r["risk"], "color": r["forecast_max_loading_pct_p50"],
                "colorscale": "RdYlGn_r", "cmin": 0, "cmax": 120,
                "colorbar": {"title": "max loading %"},
                "line": {"width": [3 if a in alerted else 0.5 for a in r["asset_id"]],
                         "color": "#000"}}))
    fig.update_layout(height=420, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      title="transformers: forecast max loading (outlined: alert)",
                      xaxis={"visible": False}, yaxis={"visible": False, "scaleanchor": "x"})
    return fig


def _table(df: pd.DataFrame, cols: list[str], classes: str) -> str:
    from html import escape

    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(
        f"<td>{escape(f'{v:.3g}' if isinstance(v, float) else str(v))}</td>" for v in r) + "</tr>"
        for r in df[cols].itertuples(index=False))
    return f"<table class='{classes}' style='font-size:13px'><tr>{head}</tr>{body}</table>"


@solara.component
def Page():
    app = use_app()
    results = Path(app.config.results_dir)
    tick = solara.use_reactive(0)
    folders = live_folders(results)
    chosen = solara.use_reactive(folders[-1] if folders else "")
    asset = solara.use_reactive("")
    folder = results / "live" / chosen.value if chosen.value else None

    ctx = solara.use_memo(_kernel_context, [])

    def poll(cancel: threading.Event) -> None:
        last = None
        while folder is not None and not cancel.wait(POLL_S):
            sig = signature(folder)
            if sig != last:
                last = sig
                if ctx is not None:
                    with ctx:
                        tick.value += 1
                else:
                    tick.value += 1

    solara.use_thread(poll, dependencies=[chosen.value], intrusive_cancel=False)
    view = solara.use_memo(lambda: load_live(folder) if folder is not None else None,
                           [chosen.value, tick.value])
    Heading("Live twin")
    if not folders or view is None:
        Para(f"No live results folder under {results / 'live'}: run `citytwin live SCENARIO "
             f"--out {results / 'live' / 'NAME'} ...`.")
        return
    solara.Select("live folder", values=folders, value=chosen, classes=["citytwin-live-folder"])
    with solara.Div(classes=["citytwin-live-summary"]):
        KeyValueTable(view.summary())
    smap = state_map(view)
    if smap is not None:
        with solara.Div(classes=["citytwin-live-map"]):
            Plot(smap)
    assets = view.assets()
    pick = asset.value if asset.value in assets else (assets[0] if assets else "")
    if assets:
        solara.Select("transformer", values=assets, value=pick, on_value=asset.set,
                      classes=["citytwin-live-asset"])
        Plot(sensor_figure(view, pick, "loading"))
        Plot(sensor_figure(view, pick, "top_oil"))
    if len(view.state):
        Plot(multiplier_figure(view))
    Heading("Alerts", level=4)
    if len(view.alerts):
        first = view.alerts.sort_values("issue_s").groupby(["asset_id", "kind"]).head(1)
        latest = view.alerts[view.alerts["issue_s"] == view.alerts["issue_s"].max()]
        Para(f"{len(latest)} active at the last forecast; first raised:")
        shown = first.assign(issued=first["issue_s"].map(_clock),
                             predicted=first["first_s"].map(_clock))
        solara.HTML(unsafe_innerHTML=_table(shown, ["asset_id", "kind", "issued", "predicted",
                                                    "peak", "recommendation"],
                                            "citytwin-live-alerts"))
    else:
        Para("No alert.")
    Heading("Maintenance ranking (last forecast)", level=4)
    if len(view.ranking):
        solara.HTML(unsafe_innerHTML=_table(view.ranking.head(10), [
            "rank", "asset_id", "risk", "rating_factor_g", "loss_of_life_h",
            "forecast_max_loading_pct_p50", "forecast_max_hot_spot_c_p95", "remaining_life_y"],
            "citytwin-live-ranking"))
