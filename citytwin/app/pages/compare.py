"""Compare page: 2-4 results side by side — KPI table with CIs, overlaid series, maps."""

from __future__ import annotations

import html
import io
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import solara

from citytwin.app.compare_view import (
    kpi_table,
    link_congestion,
    response_points,
    series_table,
    transformer_loading,
)
from citytwin.app.config import safe_join
from citytwin.app.data import load_city, load_map_data, load_results, results_cached
from citytwin.app.diffmaps import (
    DIFF_KINDS,
    difference_figure,
    difference_values,
    intervention_traces,
)
from citytwin.app.glossary import SMALL_N, caveats, delta_colour, kpi_info
from citytwin.app.maps import CityMapData, link_figure, point_value_figure
from citytwin.app.plotview import Plot
from citytwin.app.state import AppState, use_app
from citytwin.app.widgets import Heading
from citytwin.errors import CitytwinError

__all__ = ["Page", "comparison_figures", "series_names", "format_kpi_table", "result_maps",
           "limit_choice", "map_columns", "kpi_table_html"]

MAX_COMPARE = 4
_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
_CONGESTION_COLORS = ["#d73027", "#fc8d59", "#fee08b", "#91cf60", "#1a9850"]


def _by_kpi(table: pd.DataFrame) -> dict[tuple[Any, Any, Any], list[dict[str, Any]]]:
    """The comparison's rows grouped by (domain, kpi, unit), in order (plain dicts: the
    page formats ~90 KPIs on every change of the chosen results, pandas row access per
    cell took 0.3-0.6 s of it)."""
    groups: dict[tuple[Any, Any, Any], list[dict[str, Any]]] = {}
    for r in table.to_dict("records"):
        groups.setdefault((r["domain"], r["kpi"], r["unit"]), []).append(r)
    return groups


def format_kpi_table(table: pd.DataFrame) -> pd.DataFrame:
    """The KPI comparison as shown: one row per KPI (readable name, unit, which way is
    better), value [CI] and Δ per result; an interval from fewer than 5 runs is flagged ⚠."""
    return pd.DataFrame([row for row, _ in _formatted(table)])


def _formatted(table: pd.DataFrame) -> list[tuple[dict[str, Any], dict[str, tuple[float, ...]]]]:
    """Per KPI: the shown row and, per compared result, its (diff, diff_ci_low, diff_ci_high)."""
    out = []
    for (domain, kpi, unit), sub in _by_kpi(table).items():
        info = kpi_info(str(kpi), str(unit))
        row: dict[str, Any] = {"domain": domain, "KPI": info.name, "unit": info.unit,
                               "better": {"higher": "higher ↑", "lower": "lower ↓"}.get(
                                   info.better or "", "–"), "_kpi": kpi}
        diffs: dict[str, tuple[float, ...]] = {}
        for i, r in enumerate(sub):
            val = _fmt(r["mean"])
            if pd.notna(r["ci_low"]):
                val += f" [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            if 1 < int(r["n"]) < SMALL_N:
                val += f" ⚠ n={int(r['n'])}"
            row[str(r["scenario"])] = val
            if i > 0:
                d = _fmt(r["diff"], signed=True)
                if pd.notna(r["diff_ci_low"]):
                    d += (f" [{_fmt(r['diff_ci_low'], signed=True)}, "
                          f"{_fmt(r['diff_ci_high'], signed=True)}]")
                if pd.notna(r["diff_pct"]):
                    d += f" ({r['diff_pct']:+.1f} %)"
                row[f"Δ {r['scenario']}"] = d
                diffs[str(r["scenario"])] = (r["diff"], r["diff_ci_low"], r["diff_ci_high"])
        out.append((row, diffs))
    for row, _ in out:
        row.pop("_kpi")
    return out


def kpi_table_html(table: pd.DataFrame) -> str:
    """The KPI table as HTML: a tooltip with the definition on every name, the Δ coloured
    green (better) / red (worse) / grey (unknown direction or interval across zero)."""
    keys = list(_by_kpi(table))
    shown = _formatted(table)
    cols: list[str] = list(dict.fromkeys(c for row, _ in shown for c in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = []
    nan = float("nan")
    for (_d, k, u), (row, diffs) in zip(keys, shown, strict=True):
        info = kpi_info(str(k), str(u))
        cells = []
        for c in cols:
            raw = row.get(c)
            v = html.escape(str(raw)) if raw is not None and pd.notna(raw) else ""
            if c == "KPI":
                tip = html.escape(f"{info.definition} ({k})")
                cells.append(f'<td title="{tip}" class="citytwin-kpi-name" '
                             f'style="text-decoration: underline dotted">{v}</td>')
            elif c.startswith("Δ "):
                diff, lo, hi = diffs.get(c[2:], (nan, nan, nan))
                colour = delta_colour(str(k), diff, lo, hi)
                cells.append(f'<td class="citytwin-delta" style="color: {colour}">{v}</td>')
            else:
                cells.append(f"<td>{v}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="citytwin-kpis" border="0"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _fmt(v: float, *, signed: bool = False) -> str:
    if pd.isna(v):
        return "–"
    a = abs(v)
    s = f"{v:+.3g}" if signed else f"{v:.3g}"
    if a >= 1000:
        s = f"{v:+,.0f}" if signed else f"{v:,.0f}"
    return s


def series_names(results: dict[str, dict[str, Any]]) -> list[str]:
    """``"domain: series"`` names of every series in any of the results."""
    pairs: set[tuple[str, str]] = set()
    for res in results.values():
        for ts in (res.get("timeseries"), res.get("_derived")):
            if ts is not None and len(ts):
                pairs.update(zip(ts["domain"].astype(str), ts["series"].astype(str),
                                 strict=True))
        if res.get("_derived") is None:
            ts = series_table({"x": res})
            pairs.update(zip(ts["domain"].astype(str), ts["series"].astype(str), strict=True))
    return [f"{d}: {s}" for d, s in sorted(pairs)]


def comparison_figures(results: dict[str, dict[str, Any]],
                       only: str | None = None) -> list[go.Figure]:
    """One overlaid line chart per (domain, series) present in any of the results
    (only the series named ``only``, ``"domain: series"``, when given)."""
    pick = None
    if only is not None and ": " in only:
        d, _, name = only.partition(": ")
        pick = (d, name)
    ts = series_table(results, only=pick)
    figs: list[Any] = []
    if ts.empty:
        return figs
    for (domain, series), sub in ts.groupby(["domain", "series"], sort=True):
        if only is not None and f"{domain}: {series}" != only:
            continue
        fig = go.Figure()
        for i, (label, part) in enumerate(sub.groupby("label", sort=False)):
            part = part.groupby("time_s", as_index=False)["value"].mean()
            fig.add_trace(go.Scatter(x=part["time_s"] / 3600.0, y=part["value"], mode="lines",
                                     name=str(label), line=dict(color=_COLORS[i % 4])))
        fig.update_layout(title=f"{domain}: {series}", height=300, xaxis_title="hour",
                          template="none",
                          margin=dict(l=40, r=10, t=40, b=40),
                          legend=dict(orientation="h", y=-0.3))
        figs.append(fig)
    return figs


def result_maps(results: dict[str, dict[str, Any]],
                mapdata: CityMapData) -> dict[str, list[go.Figure]]:
    ff = mapdata.road_mid.set_index("edge_id")["speed_kph"]
    pos = mapdata.power_nodes.set_index("node")[["x", "y"]]
    out: dict[str, list[go.Figure]] = {"congestion": [], "transformers": [], "response": []}
    for label, res in results.items():
        cong = link_congestion(res.get("links"), ff)
        if len(cong):
            out["congestion"].append(link_figure(
                mapdata, cong, title=f"{label}: lowest speed / free flow",
                bins=[0, 0.25, 0.5, 0.75, 0.9, 1.01],
                labels=["< 25 %", "25-50 %", "50-75 %", "75-90 %", "≥ 90 %"],
                colors=_CONGESTION_COLORS))
        load = transformer_loading(res.get("assets"))
        if len(load):
            pts = pos.reindex(load.index.astype(str)).assign(value=load.to_numpy()).dropna()
            out["transformers"].append(point_value_figure(
                pts, background=mapdata, title=f"{label}: peak transformer loading",
                value_label="loading %", cmax=120.0))
        resp = response_points(res.get("incidents"), mapdata.buildings)
        if len(resp):
            out["response"].append(point_value_figure(
                resp, background=mapdata, title=f"{label}: response time",
                value_label="minutes", cmax=20.0))
    return out


@solara.component
def Page():
    app = use_app()
    _ = app.runs_version.value
    available = app.session.results()
    chosen = [c for c in app.compare.value if c in available]
    group = solara.use_reactive("label")
    series = solara.use_reactive("")
    map_kind = solara.use_reactive("none")
    error = ""
    results: dict[str, dict[str, Any]] = {}
    paths: dict[str, Any] = {}
    try:
        paths = {name: app.session.resolve_result(name) for name in chosen[:MAX_COMPARE]}
    except CitytwinError as exc:
        error = str(exc)
    # results already in memory are shown at once; reading new ones from disk runs in a
    # thread while a spinner says so (a first comparison of large runs takes seconds)
    uncached = tuple(str(p) for p in paths.values() if not results_cached(p))
    loading = solara.use_thread(lambda: [load_results(Path(p)) for p in uncached],
                                dependencies=[uncached])
    if not uncached or loading.state == solara.ResultState.FINISHED:
        for name, p in paths.items():
            try:
                results[name] = load_results(p)
            except CitytwinError as exc:
                error = str(exc)
    elif loading.state == solara.ResultState.ERROR:
        error = str(loading.error)

    key = tuple(results)
    table = solara.use_memo(
        lambda: _shared(("kpis", group.value), results,
                        lambda: kpi_table(results, group_by=group.value))
        if len(results) >= 1 else None,
        [key, group.value])
    table_html = solara.use_memo(
        lambda: _shared(("html", group.value), results, lambda: kpi_table_html(table))
        if table is not None else "", [key, group.value])
    names = solara.use_memo(lambda: _shared(("names",), results,
                                            lambda: series_names(results)), [key])
    current = series.value if series.value in names else (_default_series(names) if names else "")
    figs = solara.use_memo(
        lambda: _shared(("series", current), results,
                        lambda: comparison_figures(results, only=current)) if current else [],
        [key, current])

    solara.Title("citytwin · Compare")
    refused = solara.use_reactive("")

    def pick(values: list[str]) -> None:
        kept, msg = limit_choice(values)
        refused.value = msg
        app.compare.set(kept)

    solara.SelectMultiple(f"Results to compare (2-{MAX_COMPARE})", values=chosen,
                          all_values=sorted(available), on_value=pick,
                          classes=["citytwin-compare-select"])
    if refused.value:
        solara.Warning(refused.value, classes=["citytwin-compare-refused"])
    solara.ToggleButtonsSingle(value=group, values=["label", "scenario"])
    if error:
        solara.Error(error)
    if len(chosen) > MAX_COMPARE:
        solara.Warning(f"showing the first {MAX_COMPARE} of {len(chosen)} results")
    if uncached and loading.state == solara.ResultState.RUNNING:
        with solara.Row(classes=["citytwin-loading"], style={"align-items": "center"}):
            solara.SpinnerSolara(size="40px")
            solara.Text(f"reading {len(uncached)} result folder(s)…")
        return
    if len(results) < 2:
        solara.Info("Pick two to four results (runs of this session or results folders).")
        if not results:
            return
    with solara.Div(classes=["citytwin-kpi-table"]):
        Heading("KPIs (mean [95 % CI]; Δ vs the first)")
        solara.HTML(tag="div", unsafe_innerHTML=table_html,
                    style="max-height: 520px; overflow: auto; font-size: 13px")
        CaveatsPanel(results, table, app)
    with solara.Row():
        solara.FileDownload(lambda: table.to_csv(index=False) if table is not None else "",
                            filename="comparison.csv",
                            label="Download CSV", mime_type="text/csv")
        solara.FileDownload(lambda: _parquet_bytes(table), filename="comparison.parquet",
                            label="Download Parquet")
    Heading("Time series (overlaid)")
    if figs:
        solara.Select("Series", values=names, value=current, on_value=series.set,
                      classes=["citytwin-series-select"], style={"max-width": "520px"})
        with solara.Div(classes=["citytwin-charts"]):
            Plot(figs[0])
    if len(results) >= 2:
        Heading("Difference maps (B − A; red worse, blue better)")
        DifferencePanel(results, app)
    Heading("Maps side by side")
    kinds = [k for k in MAP_KINDS if k == "none" or maps_available(results, k)]
    solara.ToggleButtonsSingle(value=map_kind.value if map_kind.value in kinds else "none",
                               values=kinds, on_value=map_kind.set,
                               classes=["citytwin-map-kind"])
    if map_kind.value != "none" and map_kind.value in kinds:
        figs_m = result_maps(results, load_map_data(
            safe_join(app.config.data_dir, app.city.value, what="city file")))[map_kind.value]
        with solara.Div(classes=["citytwin-result-maps"]):
            with solara.ColumnsResponsive(map_columns(len(figs_m))):
                for fig in figs_m:
                    Plot(fig)


@solara.component
def CaveatsPanel(results: dict[str, dict[str, Any]], table: pd.DataFrame, app: AppState):
    """What the numbers above leave out, next to them (by domain)."""
    path = safe_join(app.config.data_dir, app.city.value, what="city file")
    facilities = solara.use_memo(lambda: load_city(path).facilities, [str(path)])
    n_by = {str(g): int(n) for g, n in table.groupby("scenario", sort=False)["n"].max().items()}
    notes = caveats(results, facilities=facilities, n_by_group=n_by)
    if not notes:
        return
    with solara.Div(classes=["citytwin-caveats"]):
        for domain, lines in notes.items():
            solara.Warning(f"{'All' if domain == 'all' else domain.capitalize()}: "
                           + "; ".join(lines), dense=True)


_shared_lock = threading.Lock()
_shared_cache: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = OrderedDict()


def _shared(what: tuple[Any, ...], results: dict[str, dict[str, Any]],
            build: Callable[[], Any]) -> Any:
    """``build()`` for these results, shared by every page of the process (the last 64):
    the tables and figures of a comparison depend only on the results (cached per folder by
    ``data.load_results``, so the same objects) and their labels; switching back to a
    comparison seen before is then a lookup. Keyed by the labels and the results objects'
    identities; the objects are kept with the entry so an identity is never reused."""
    objs = tuple(results.values())
    key = (*what, tuple(results), tuple(id(o) for o in objs))
    with _shared_lock:
        hit = _shared_cache.get(key)
        if hit is not None and all(a is b for a, b in zip(hit[0], objs, strict=True)):
            _shared_cache.move_to_end(key)
            return hit[1]
    value = build()
    with _shared_lock:
        _shared_cache[key] = (objs, value)
        while len(_shared_cache) > 64:
            _shared_cache.popitem(last=False)
    return value


def limit_choice(values: list[str]) -> tuple[list[str], str]:
    """The picked results kept (at most :data:`MAX_COMPARE`) and a message when some were
    refused: the picker says 2-4 and takes no fifth."""
    values = list(dict.fromkeys(values))
    if len(values) <= MAX_COMPARE:
        return values, ""
    extra = values[MAX_COMPARE:]
    return values[:MAX_COMPARE], (f"at most {MAX_COMPARE} results side by side; not added: "
                                  f"{', '.join(extra)}")


def map_columns(n: int) -> int:
    """Grid width (of 12) per map: one or two maps per row, so four maps are a 2 × 2 grid
    and each shows the whole city (four in a row were clipped to half the city)."""
    return 12 if n <= 1 else 6


@solara.component
def DifferencePanel(results: dict[str, dict[str, Any]], app: AppState):
    """B − A maps of two chosen results, interventions of B on top."""
    labels = list(results)
    a = solara.use_reactive(labels[0])
    b = solara.use_reactive(labels[1])
    kind = solara.use_reactive("none")  # nothing is computed until a map is asked for
    if a.value not in labels:
        a.value = labels[0]
    if b.value not in labels:
        b.value = labels[1]
    kinds = ["none"] + [k for k in DIFF_KINDS
                        if maps_available({"x": results[b.value]}, _KIND_MAP[k])]
    with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
        solara.Select("A (reference)", values=labels, value=a, style={"max-width": "260px"})
        solara.Select("B", values=labels, value=b, style={"max-width": "260px"})
        solara.ToggleButtonsSingle(value=kind.value if kind.value in kinds else "none",
                                   values=kinds, on_value=kind.set,
                                   classes=["citytwin-diff-kind"])
    k = kind.value if kind.value in kinds and kind.value != "none" else ""
    path = safe_join(app.config.data_dir, app.city.value, what="city file")

    def build():
        if not k:
            return None
        mapdata = load_map_data(path)
        diff = difference_values(results[a.value], results[b.value], k, mapdata)
        spec = (results[b.value].get("manifest") or {}).get("spec") or {}
        over = intervention_traces(spec, load_city(path), mapdata)
        label, unit, _ = DIFF_KINDS[k]
        return difference_figure(mapdata, diff, k, overlays=over,
                                 title=f"{b.value} − {a.value}: {label} ({unit})")

    fig = solara.use_memo(build, [a.value, b.value, k, str(path)])
    if fig is None:
        if len(kinds) == 1:
            solara.Info("These results have no links, assets or incidents tables to "
                        "difference.")
        return
    with solara.Div(classes=["citytwin-diff-map"]):
        Plot(fig)


_KIND_MAP = {"congestion": "congestion", "transformers": "transformers", "response": "response"}


def _default_series(names: list[str]) -> str:
    for prefer in ("traffic: network mean speed", "energy:", "emergency:"):
        for n in names:
            if n.startswith(prefer):
                return n
    return names[0]


MAP_KINDS = ("none", "congestion", "transformers", "response")


def maps_available(results: dict[str, dict[str, Any]], kind: str) -> bool:
    """Whether any of the results has the table the map ``kind`` needs."""
    table = {"congestion": "links", "transformers": "assets", "response": "incidents"}[kind]
    return any(r.get(table) is not None and len(r[table]) for r in results.values())


def _parquet_bytes(table: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return buf.getvalue()
