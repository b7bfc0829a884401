"""Scenarios page: pick a shipped scenario, edit it, validate, run in the background, cancel."""

from __future__ import annotations

import time

import solara

from citytwin.app.scenario_form import draft_text, load_shipped, shipped_scenarios, validate_draft
from citytwin.app.session import RunRecord
from citytwin.app.state import use_app
from citytwin.app.widgets import Heading, Para
from citytwin.errors import CitytwinError

__all__ = ["Page", "RunsPanel"]


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
        solara.Info("No runs in this session yet.")
        return
    for rec in reversed(runs):
        RunRow(rec, on_cancel=app.session.cancel)


@solara.component
def Page():
    app = use_app()
    names = solara.use_memo(lambda: shipped_scenarios(app.config), [])
    chosen = solara.use_reactive(names[0] if names else None)
    text = solara.use_reactive("")
    seed = solara.use_reactive(0)
    use_closures = solara.use_reactive(True)
    message = solara.use_reactive(("info", "Pick a scenario, edit it if you like, then Run."))

    def load(name: str | None) -> None:
        if not name:
            return
        try:
            data = load_shipped(app.config, name)
            seed.value = int(data.get("seed", 0))
            text.value = draft_text(data)
            message.value = ("info", f"Loaded shipped scenario {name!r}.")
        except CitytwinError as exc:
            message.value = ("error", str(exc))

    solara.use_effect(lambda: load(chosen.value), [chosen.value])

    def validate():
        closures = app.closed_edges.value if use_closures.value else []
        return validate_draft(text.value, config=app.config, city=app.city.value,
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
            solara.InputTextArea("Scenario (JSON; same keys as a scenario TOML file)",
                                 value=text, rows=18, auto_grow=False, continuous_update=True)
            kind, msg = message.value
            {"error": solara.Error, "success": solara.Success}.get(kind, solara.Info)(
                msg, classes=["citytwin-message"])
            with solara.Row():
                solara.Button("Validate", on_click=on_validate, outlined=True)
                solara.Button("Run", on_click=on_run, color="primary",
                              classes=["citytwin-run-button"])
        with solara.Column():
            Heading("Runs in this session")
            RunsPanel()
