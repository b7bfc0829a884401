"""Scenarios page: pick a shipped scenario, edit it, validate, run in the background, cancel."""

from __future__ import annotations

import html
import json
import time
from typing import Any, cast

import solara

from citytwin.app.canvasmap import Map
from citytwin.app.config import safe_join
from citytwin.app.data import city_layers_cached, load_city, load_map_data
from citytwin.app.diffmaps import intervention_traces
from citytwin.app.levers import (
    LEVERS,
    MULTI,
    item_label,
    lever_fields,
    lever_items,
    lever_values,
    remove_item,
    remove_lever,
    set_lever,
    street_names,
    to_toml,
)
from citytwin.app.mapedit import MODES, click_lever
from citytwin.app.maps import LAYERS
from citytwin.app.scenario_form import draft_text, load_shipped, shipped_scenarios, validate_draft
from citytwin.app.session import RunRecord
from citytwin.app.state import AppState, use_app
from citytwin.app.widgets import Heading, Para
from citytwin.errors import CitytwinError

__all__ = ["Page", "RunsPanel", "LeversPanel", "ScenarioMap", "edited_name"]


@solara.component
def RunRow(rec: RunRecord, on_cancel):
    with solara.Card(classes=["citytwin-run", f"citytwin-run-{rec.status}"],
                     style={"margin-bottom": "6px"}):
        with solara.Row(style={"align-items": "center"}):
            solara.Text(f"{rec.run_id}", style={"font-weight": "bold"})
            solara.Text(f"· {rec.status}", classes=["citytwin-run-status"])
            elapsed = (rec.finished or time.time()) - rec.started
            solara.Text(f"· {elapsed:.0f} s · {rec.message}")
            if rec.active:
                solara.Button("Cancel", color="error", text=True,
                              on_click=lambda: on_cancel(rec.run_id),
                              classes=["citytwin-cancel"])
        if rec.active:
            solara.ProgressLinear(value=max(1.0, 100.0 * rec.progress))
        if rec.error:
            solara.Error(rec.error)


@solara.component
def RunsPanel():
    app = use_app()
    _ = app.runs_version.value  # re-render whenever a run changes
    runs = app.session.runs()
    if not runs:
        solara.Info("No runs in this workspace yet.")
        return
    for rec in reversed(runs):
        RunRow(rec, on_cancel=app.session.cancel)


def _toml_of(text: str, city: str) -> str:
    try:
        return to_toml(json.loads(text), city=city)
    except (json.JSONDecodeError, CitytwinError) as exc:
        return f"# the scenario editor text is not valid: {exc}\n"


def _data_of(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


@solara.component
def LeverForm(lever: str, text: solara.Reactive[str], streets: list[str]):
    """One lever's form; Apply writes it into the scenario text, Remove takes it out."""
    data = _data_of(text.value)
    current = lever_values(data, lever) or {}
    fields = lever_fields(lever)
    values = solara.use_reactive({f.name: current.get(f.name, f.default) for f in fields})
    error = solara.use_reactive("")
    current_key = json.dumps(current, sort_keys=True, default=str)

    def follow_draft() -> None:  # a map click or a JSON edit changed this lever
        values.set({f.name: current.get(f.name, f.default) for f in fields})

    solara.use_effect(follow_draft, [current_key])

    def setv(name: str, v: Any) -> None:
        values.value = {**values.value, name: v}

    def apply() -> None:
        try:
            text.value = draft_text(set_lever(_data_of(text.value), lever, values.value))
            error.value = ""
        except CitytwinError as exc:
            error.value = str(exc)

    def remove() -> None:
        street = values.value.get("street") if lever == "close_road" else None
        text.value = draft_text(remove_lever(_data_of(text.value), lever, street=street))

    def remove_at(index: int) -> None:
        try:
            text.value = draft_text(remove_item(_data_of(text.value), index))
        except CitytwinError as exc:
            error.value = str(exc)

    active = lever_values(data, lever) is not None
    with solara.Card(classes=["citytwin-lever", f"citytwin-lever-{lever}"],
                     style={"margin-bottom": "6px", "padding": "6px"}):
        solara.Text(LEVERS[lever] + (" · set" if active else ""),
                    style={"font-weight": "bold"})
        with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
            for f in fields:
                label = f.name.replace("_", " ")
                v = values.value.get(f.name)
                if f.kind == "choice":
                    solara.Select(label, values=list(f.choices), value=v or f.choices[0],
                                  on_value=lambda x, n=f.name: setv(n, x),
                                  style={"max-width": "180px"})
                elif lever == "close_road" and f.name == "street":
                    def on_street(x: Any, n: str = f.name) -> None:
                        setv(n, x)

                    solara.v.Autocomplete(label="street name", items=streets, v_model=v,
                                          on_v_model=on_street,
                                          class_="citytwin-street", style_="min-width: 260px")
                elif f.kind in ("float", "int"):
                    hint = "" if f.ge is None and f.le is None else \
                        f" ({'' if f.ge is None else f'{f.ge:g}'}…{'' if f.le is None else f'{f.le:g}'})"
                    solara.InputFloat(label + hint, value=v, optional=True,
                                      on_value=lambda x, n=f.name: setv(n, x),
                                      style={"max-width": "170px"})
                else:
                    solara.InputText(label, value=v or "",
                                     on_value=lambda x, n=f.name: setv(n, x))
            solara.Button("Apply", on_click=apply, text=True, color="primary",
                          classes=[f"citytwin-apply-{lever}"])
            if active and lever not in MULTI:
                solara.Button("Remove", on_click=remove, text=True)
        if lever in MULTI:
            for index, item in lever_items(data, lever):  # each closure / station / failure
                with solara.Row(style={"align-items": "center"},
                                classes=["citytwin-lever-item"]):
                    solara.Text(item_label(item), style={"font-size": "13px"})
                    solara.Button("Remove", text=True, small=True,
                                  on_click=lambda i=index: remove_at(i),
                                  classes=["citytwin-remove-item"])
        if error.value:
            solara.Error(error.value)


@solara.component
def ScenarioMap(text: solara.Reactive[str]):
    """The city with the draft's interventions drawn on top; a click closes a street,
    places a station or fails an asset, written into the draft (forms, JSON and TOML)."""
    app = use_app()
    mode = solara.use_reactive("close_road")
    kind = solara.use_reactive("fire_station")
    fail_at = solara.use_reactive(8.0)
    note = solara.use_reactive(("info", "Click the map: the chosen action goes into the "
                                        "scenario draft."))
    path = safe_join(app.config.data_dir, app.city.value, what="city file")
    data = _data_of(text.value)
    overlay_key = json.dumps(data.get("interventions") or [], sort_keys=True, default=str)
    # only the interventions change with the draft: they are sent alone, on top of the city

    base = city_layers_cached(path, layers=LAYERS)  # shared by every page

    def build() -> list[Any]:
        try:
            return intervention_traces(data, load_city(path), load_map_data(path))
        except (KeyError, TypeError, ValueError):  # a half-typed JSON draft: draw the city
            return []

    over = solara.use_memo(build, [str(path), overlay_key])

    def on_click(x: float, y: float, m_per_px: float) -> None:
        if mode.value == "inspect":
            return
        current = _data_of(text.value)
        n = sum(1 for i in current.get("interventions") or [] if i.get("type") == "add_station")
        try:
            edit = click_lever(mode.value, load_city(path), load_map_data(path), x, y,
                               m_per_px=m_per_px, station_kind=kind.value,
                               station_name=f"new station {n + 1}",
                               fail_at_h=float(fail_at.value or 0.0))
            text.value = draft_text(set_lever(current, edit.lever, edit.values))
            note.value = ("success", edit.message[0].upper() + edit.message[1:] + ".")
        except CitytwinError as exc:
            note.value = ("error", str(exc))

    with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
        solara.ToggleButtonsSingle(value=MODES[mode.value], values=list(MODES.values()),
                                   on_value=lambda label: mode.set(
                                       next(k for k, v in MODES.items() if v == label)),
                                   classes=["citytwin-map-mode"])
        if mode.value == "add_station":
            solara.Select("station", values=["fire_station", "ambulance_station"], value=kind,
                          style={"max-width": "200px"})
        if mode.value == "asset_failure":
            solara.InputFloat("fails at hour", value=fail_at, style={"max-width": "140px"})
    kind_, msg = note.value
    {"error": solara.Error, "success": solara.Success}.get(kind_, solara.Info)(
        msg, dense=True, classes=["citytwin-map-note"])
    with solara.Div(classes=["citytwin-scenario-map"]):
        Map(base, on_click=on_click, overlays=over)


@solara.component
def LeversPanel(text: solara.Reactive[str]):
    app = use_app()
    streets = solara.use_memo(lambda: _streets(app), [app.city.value])
    Heading("Levers")
    for lever in LEVERS:
        LeverForm(lever, text, streets)


def edited_name(text: str, shipped: dict[str, Any] | None) -> str:
    """The draft text, renamed ``<name>-edited`` when it differs from the shipped scenario it
    was loaded from but still carries its name (an edited "baseline" is not the baseline)."""
    data = _data_of(text)
    if (shipped is None or not data or data.get("name") != shipped.get("name")
            or data == _data_of(draft_text(shipped))):
        return text
    return draft_text({**data, "name": f"{data['name']}-edited"})


def _city_path(app: AppState) -> str:
    """The city file's full path: a saved TOML names it so it runs from any folder."""
    return str(safe_join(app.config.data_dir, app.city.value, what="city file"))


def _streets(app: AppState) -> list[str]:
    from citytwin.app.config import safe_join
    from citytwin.app.data import load_city

    try:
        return street_names(load_city(safe_join(app.config.data_dir, app.city.value,
                                                 what="city file")))
    except CitytwinError:
        return []


@solara.component
def Page():
    app = use_app()
    names = solara.use_memo(lambda: shipped_scenarios(app.config), [])
    chosen = solara.use_reactive(names[0] if names else None)
    text = solara.use_reactive("")
    seed = solara.use_reactive(0)
    use_closures = solara.use_reactive(False)
    shipped = solara.use_reactive(cast("dict[str, Any] | None", None))
    message = solara.use_reactive(("info", "Pick a scenario, edit it if you like, then Run."))

    def load(name: str | None) -> None:
        if not name:
            return
        try:
            data = load_shipped(app.config, name)
            seed.value = int(data.get("seed", 0))
            shipped.value = data
            text.value = draft_text(data)
            use_closures.value = False  # a shipped scenario is run as shipped unless re-ticked
            message.value = ("info", f"Loaded shipped scenario {name!r}.")
        except CitytwinError as exc:
            message.value = ("error", str(exc))

    solara.use_effect(lambda: load(chosen.value), [chosen.value])

    def validate():
        closures = app.closed_edges.value if use_closures.value else []
        return validate_draft(edited_name(text.value, shipped.value), config=app.config,
                              city=app.city.value,
                              closed_edges=closures, seed=seed.value)

    def on_validate() -> None:
        try:
            spec, _ = validate()
            message.value = ("success", f"Scenario {spec.name!r} is valid: domains "
                             f"{', '.join(spec.domains()) or 'none'}, "
                             f"{len(spec.interventions)} intervention(s).")
        except CitytwinError as exc:
            message.value = ("error", str(exc))

    def on_run() -> None:
        try:
            spec, data = validate()
            run_id = app.session.start(data, seed=seed.value, label=spec.name,
                                       city=app.city.value)
            message.value = ("success", f"Started run {run_id}.")
        except CitytwinError as exc:
            message.value = ("error", str(exc))

    solara.Title("citytwin · Scenarios")
    with solara.Columns([3, 2]):
        with solara.Column():
            with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
                solara.Select("Shipped scenario", values=names, value=chosen,
                              style={"max-width": "280px"}, classes=["citytwin-scenario-select"])
                solara.InputInt("Seed", value=seed, style={"max-width": "120px"})
                n = len(app.closed_edges.value)
                solara.Checkbox(label=f"add my {n} road closure(s) from the City page",
                                value=use_closures, disabled=n == 0)
            Para(f"{app.city.value} (change it on the City page)", bold_prefix="City: ")
            LeversPanel(text)
            with solara.Details("Expert view: the scenario as JSON (in sync with the levers)"):
                solara.InputTextArea("Scenario (JSON; same keys as a scenario TOML file)",
                                     value=text, rows=18, auto_grow=False,
                                     continuous_update=True)
            with solara.Details("The scenario as TOML (what Save as TOML writes; "
                                "`citytwin run FILE` runs it unchanged)"):
                solara.HTML(tag="pre", unsafe_innerHTML=html.escape(
                    _toml_of(text.value, _city_path(app))), classes=["citytwin-toml"],
                    style="font-size: 12px; max-height: 420px; overflow: auto")
            kind, msg = message.value
            {"error": solara.Error, "success": solara.Success}.get(kind, solara.Info)(
                msg, classes=["citytwin-message"])
            with solara.Row():
                solara.FileDownload(lambda: _toml_of(text.value, _city_path(app)),
                                    filename=f"{chosen.value or 'scenario'}.toml",
                                    label="Save as TOML", mime_type="application/toml")
                solara.Button("Validate", on_click=on_validate, outlined=True)
                solara.Button("Run", on_click=on_run, color="primary",
                              classes=["citytwin-run-button"])
        with solara.Column():
            Heading("Scenario map")
            ScenarioMap(text)
            Heading("Runs in this workspace")
            RunsPanel()
