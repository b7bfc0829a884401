"""Levers are generated from the intervention classes, stay in sync with the JSON view and
save a TOML the CLI loads unchanged; the app's traps (closures, reload, picker, clipped maps)."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from citytwin import interventions
from citytwin.app.config import AppConfig
from citytwin.app.data import load_city
from citytwin.app.levers import (
    LEVERS,
    lever_fields,
    lever_values,
    remove_lever,
    set_lever,
    street_names,
    to_toml,
)
from citytwin.app.pages.compare import MAX_COMPARE, limit_choice, map_columns
from citytwin.app.scenario_form import draft_text, validate_draft
from citytwin.app.session import Session
from citytwin.app.state import new_workspace, with_workspace, workspace_from_query
from citytwin.errors import InputError, ScenarioError
from citytwin.scenario import load_scenario

from ._apphelpers import write_results


def test_fields_come_from_the_intervention_classes() -> None:
    fleet = {f.name: f for f in lever_fields("fleet")}
    assert fleet["charging"].kind == "choice"
    assert set(fleet["charging"].choices) == {"uncontrolled", "delayed", "smart"}
    assert (fleet["ev_share"].ge, fleet["ev_share"].le) == (0.0, 1.0)
    growth = {f.name: f for f in lever_fields("demand_growth")}["factor"]
    assert growth.le == 5.0 and growth.default is None  # required: no made-up default
    heat = [f.name for f in lever_fields("heat_wave")]
    assert heat == [n for n in interventions.REGISTRY["heat_wave"].model_fields if n != "type"]
    street = [f.name for f in lever_fields("close_road")]
    assert street == ["street"]  # edge ids are picked on the map, not typed
    for lever in LEVERS:
        assert lever == "fleet" or lever in interventions.REGISTRY


def test_levers_write_the_json_and_validate(config: AppConfig) -> None:
    data = {"name": "mine", "duration_h": 2, "traffic": {}, "energy": {}}
    data = set_lever(data, "fleet", {"ev_share": 0.4, "charging": "smart"})
    data = set_lever(data, "heat_wave", {"delta_c": 6.0, "start_h": 0.0, "duration_h": 2.0})
    data = set_lever(data, "demand_growth", {"factor": 1.2})
    data = set_lever(data, "demand_growth", {"factor": 1.5})  # replaces, not appends
    assert lever_values(data, "demand_growth") == {"factor": 1.5}
    assert lever_values(data, "fleet") == {"ev_share": 0.4, "charging": "smart"}
    with pytest.raises(ScenarioError, match="Heat wave.*delta_c > 0"):
        set_lever(data, "heat_wave", {"delta_c": -3.0})
    with pytest.raises(ScenarioError, match="Demand scale: factor"):
        set_lever(data, "demand_growth", {"factor": 9.0})
    spec, _ = validate_draft(draft_text(data), config=config, city="tiny.gpkg")
    assert spec.fleet.ev_share == 0.4 and spec.fleet.charging == "smart"
    assert [iv.type for iv in spec.interventions] == ["heat_wave", "demand_growth"]
    assert lever_values(remove_lever(data, "heat_wave"), "heat_wave") is None


def test_street_by_name_and_toml_the_cli_loads(config: AppConfig, tmp_path: Path) -> None:
    city = load_city(Path(config.data_dir) / "tiny.gpkg")
    streets = street_names(city)
    assert streets and streets == sorted(set(streets))
    data = {"name": "closed", "duration_h": 1, "traffic": {}}
    data = set_lever(data, "close_road", {"street": streets[0]})
    data = set_lever(data, "close_road", {"street": streets[0]})  # same street once
    data = set_lever(data, "close_road", {"street": streets[-1]})
    assert [i["street"] for i in data["interventions"]] == [streets[0], streets[-1]]
    data = remove_lever(data, "close_road", street=streets[-1])
    path = tmp_path / "closed.toml"
    path.write_text(to_toml(data, city=str(Path(config.data_dir) / "tiny.gpkg")))
    assert tomllib.loads(path.read_text())["interventions"] == [
        {"type": "close_road", "street": streets[0]}]
    spec = load_scenario(path)  # what `citytwin run closed.toml` reads
    assert interventions.check(spec, city) == []
    setup = interventions.apply(spec, city)
    closed = [d for *_, d in setup.city.roads.edges(data=True) if d.get("name") == streets[0]]
    assert closed and all(d.get("closed") is True for d in closed)


def test_closures_rename_the_run(config: AppConfig) -> None:
    text = draft_text({"name": "baseline", "duration_h": 1})
    plain, _ = validate_draft(text, config=config, city="tiny.gpkg")
    assert plain.name == "baseline"
    closed, _ = validate_draft(text, config=config, city="tiny.gpkg", closed_edges=[1])
    assert closed.name == "baseline-with-closures"


def test_runs_persist_per_workspace(config: AppConfig) -> None:
    a = Session(config, session_id="planning")
    write_results(a.root, "mine-s0-1", scenario="mine", seed=0, kpis={"traffic": {"x": 1.0}})
    again = Session(config, session_id="planning")  # the page reloaded / the app restarted
    assert [r.run_id for r in again.runs()] == ["mine-s0-1"]
    assert again.get("mine-s0-1").status == "done"
    assert "mine-s0-1" in again.results()
    other = Session(config, session_id="other")
    assert other.runs() == [] and "mine-s0-1" not in other.results()
    assert workspace_from_query("?workspace=planning") == "planning"
    assert workspace_from_query("") is None  # no shared default: the page makes a private one
    a_id, b_id = new_workspace(), new_workspace()
    assert a_id != b_id and workspace_from_query(f"?workspace={a_id}") == a_id
    assert with_workspace("/compare", "?x=1&workspace=old", a_id) == f"/compare?x=1&workspace={a_id}"
    with pytest.raises(InputError, match="workspace"):
        workspace_from_query("?workspace=../x")


def test_picker_refuses_a_fifth_and_four_maps_fit() -> None:
    kept, msg = limit_choice(["a", "b", "c", "d", "e"])
    assert kept == ["a", "b", "c", "d"] and len(kept) == MAX_COMPARE and "e" in msg
    assert limit_choice(["a", "b"]) == (["a", "b"], "")
    assert map_columns(4) * 2 == 12  # two per row: a 2 x 2 grid of whole-city maps
    assert map_columns(1) == 12


def test_an_edited_shipped_scenario_is_renamed() -> None:
    from citytwin.app.pages.scenarios import edited_name

    shipped = {"name": "baseline", "seed": 1, "duration_h": 24}
    same = draft_text(shipped)
    assert edited_name(same, shipped) == same  # run as shipped: keeps its name
    changed = draft_text(set_lever(shipped, "demand_growth", {"factor": 1.2}))
    assert json.loads(edited_name(changed, shipped))["name"] == "baseline-edited"
    renamed = draft_text({**json.loads(changed), "name": "mine"})
    assert json.loads(edited_name(renamed, shipped))["name"] == "mine"  # the planner's name


def test_remove_one_station_of_several_keeps_the_others() -> None:
    from citytwin.app.levers import item_label, lever_items, remove_item

    data: dict = {"name": "two", "interventions": [{"type": "heat_wave", "delta_c": 3.0}]}
    for n, lon in ((1, 24.94), (2, 24.95), (3, 24.96)):
        data = set_lever(data, "add_station", {"kind": "fire_station", "name": f"s{n}",
                                               "lon": lon, "lat": 60.17})
    items = lever_items(data, "add_station")
    assert [i["name"] for _, i in items] == ["s1", "s2", "s3"]
    assert "s2" in item_label(items[1][1]) and "60.17000 N" in item_label(items[1][1])
    out = remove_item(data, items[1][0])  # the middle station only
    assert [i["name"] for _, i in lever_items(out, "add_station")] == ["s1", "s3"]
    assert lever_values(out, "heat_wave") == {"delta_c": 3.0}
    assert len(data["interventions"]) == 4  # the draft passed in is not changed
    with pytest.raises(ScenarioError):
        remove_item(data, 9)
