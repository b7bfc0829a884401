"""The scenario editor validates with the same ScenarioError as the CLI and never names files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from citytwin.app.config import AppConfig
from citytwin.app.scenario_form import draft_text, load_shipped, shipped_scenarios, validate_draft
from citytwin.errors import InputError, ScenarioError
from citytwin.scenario import Scenario


def test_valid_draft_gets_app_city_seed_and_closures(config: AppConfig) -> None:
    spec, data = validate_draft(draft_text({"name": "mine", "duration_h": 2}), config=config,
                                city="tiny.gpkg", closed_edges=[3, 1, 3], seed=7)
    assert isinstance(spec, Scenario)
    assert spec.seed == 7 and spec.duration_h == 2
    assert Path(spec.city) == Path(config.data_dir).resolve() / "tiny.gpkg"
    closes = [iv for iv in spec.interventions if iv.type == "close_road"]
    assert len(closes) == 1 and closes[0].edges == (1, 3)
    assert "city" not in data and data["seed"] == 7


def test_every_problem_is_reported(config: AppConfig) -> None:
    text = json.dumps({"name": "bad name!", "duration_h": -1, "colour": "red"})
    with pytest.raises(ScenarioError) as err:
        validate_draft(text, config=config, city="tiny.gpkg")
    msg = str(err.value)
    assert len(err.value.problems) >= 3
    assert "colour" in msg and "duration_h" in msg and "name" in msg


def test_json_syntax_error_names_line(config: AppConfig) -> None:
    with pytest.raises(ScenarioError, match="line 2"):
        validate_draft('{"name": "x",\n "seed": }', config=config, city="tiny.gpkg")
    with pytest.raises(ScenarioError, match="JSON object"):
        validate_draft("[1, 2]", config=config, city="tiny.gpkg")


def test_draft_cannot_read_other_files(config: AppConfig) -> None:
    text = json.dumps({"name": "x", "extends": "../../etc/passwd", "city": "/etc/passwd"})
    with pytest.raises(ScenarioError) as err:
        validate_draft(text, config=config, city="tiny.gpkg")
    assert len(err.value.problems) == 2
    with pytest.raises(InputError):
        validate_draft(json.dumps({"name": "x"}), config=config, city="../tiny.gpkg")


def test_shipped_scenarios_by_plain_name(config: AppConfig, tmp_path: Path) -> None:
    sdir = tmp_path / "scen"
    sdir.mkdir()
    (sdir / "base.toml").write_text('name = "base"\ncity = "x.gpkg"\nduration_h = 3\n')
    (sdir / "child.toml").write_text('extends = "base.toml"\nseed = 4\n')
    cfg = AppConfig(data_dir=config.data_dir, results_dir=config.results_dir,
                    city="tiny.gpkg", scenarios_dir=sdir)
    assert shipped_scenarios(cfg) == ["base", "child"]
    child = load_shipped(cfg, "child")
    assert child["duration_h"] == 3 and child["seed"] == 4 and "city" not in child
    with pytest.raises(InputError):
        load_shipped(cfg, "../base")
    with pytest.raises(ScenarioError, match="no shipped scenario"):
        load_shipped(cfg, "nothere")
