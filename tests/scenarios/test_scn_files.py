"""Scenario files: schema, extends, and one clear error listing every problem."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from citytwin.cli import main
from citytwin.errors import ScenarioError
from citytwin.interventions import CloseRoad, EvShare
from citytwin.scenario import (
    Scenario,
    load_scenario,
    loads_scenario,
    scenario_from_dict,
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_scenario_defaults(tmp_path: Path) -> None:
    f = write(tmp_path / "a.toml", 'city = "city.gpkg"\n')
    s = load_scenario(f)
    assert s.name == "a"  # the file stem when no name is given
    assert s.city == (tmp_path / "city.gpkg").resolve()
    assert s.duration_s == 86_400 and s.step_s == 900 and s.seed == 0
    assert s.domains() == ()
    assert s.source == f.resolve()


def test_scenario_is_frozen(tmp_path: Path) -> None:
    s = loads_scenario('name = "x"\ncity = "c.gpkg"\n', base_dir=tmp_path)
    with pytest.raises(ValidationError):
        s.seed = 3  # type: ignore[misc]


def test_interventions_are_typed() -> None:
    s = loads_scenario(
        'name = "x"\ncity = "/c.gpkg"\n'
        '[[interventions]]\ntype = "close_road"\nstreet = "Mannerheimintie"\n'
        '[[interventions]]\ntype = "ev_share"\nshare = 0.4\ncharging = "smart"\n'
        '[[interventions]]\ntype = "close_road"\nedges = [3, 4]\n'
    )
    a, b, c = s.interventions
    assert isinstance(a, CloseRoad) and a.street == "Mannerheimintie" and a.edges == ()
    assert isinstance(b, EvShare) and b.share == 0.4 and b.charging == "smart"
    assert isinstance(c, CloseRoad) and c.edges == (3, 4)


def test_all_problems_at_once_with_key_paths(tmp_path: Path) -> None:
    f = write(tmp_path / "bad.toml", """
name = "bad"
city = "c.gpkg"
duration_h = -5
step_s = "fast"
colour = "red"
[[interventions]]
type = "close_road"
[[interventions]]
type = "teleport"
[[interventions]]
type = "ev_share"
share = 1.5
chargeing = "smart"
""")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(f)
    err = exc.value
    text = str(err)
    assert str(f) in text
    assert len(err.problems) == 7, err.problems
    assert any(p.startswith("duration_h:") and "greater than 0" in p for p in err.problems)
    assert any(p.startswith("step_s:") for p in err.problems)
    assert any(p.startswith("colour: unknown key") and "duration_h" in p for p in err.problems)
    assert any(p.startswith("interventions[0].close_road") and "street" in p
               for p in err.problems)
    assert any("interventions[1]" in p and "'teleport'" in p and "close_road" in p
               for p in err.problems)
    assert any(p.startswith("interventions[2].ev_share.share") for p in err.problems)
    assert any(p.startswith("interventions[2].ev_share.chargeing: unknown key")
               and "charging" in p for p in err.problems)


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    f = write(tmp_path / "syn.toml", 'name = "x"\ncity = "c.gpkg"\nseed = = 3\n')
    with pytest.raises(ScenarioError) as exc:
        load_scenario(f)
    assert "TOML syntax error" in str(exc.value) and "line 3" in str(exc.value)
    assert str(f) in str(exc.value)


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "nope.toml")


def test_extends_deep_merges_and_appends_interventions(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "base.toml", """
name = "base"
description = "the base"
city = "geo/city.gpkg"
seed = 7
duration_h = 6
[[interventions]]
type = "pv_share"
share = 0.2
""")
    child = write(tmp_path / "sub" / "child.toml", """
extends = "../base.toml"
duration_h = 3
[[interventions]]
type = "demand_growth"
factor = 1.1
""")
    s = load_scenario(child)
    assert s.name == "child"  # names are not inherited
    assert s.description == "the base" and s.seed == 7 and s.duration_h == 3
    assert s.city == (tmp_path / "geo" / "city.gpkg").resolve()  # relative to base.toml
    assert [iv.type for iv in s.interventions] == ["pv_share", "demand_growth"]


def test_extends_list_and_problems(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", 'city = "c.gpkg"\nseed = 1\n')
    write(tmp_path / "b.toml", 'extends = "a.toml"\nseed = 2\nduration_h = 2\n')
    s = load_scenario(write(tmp_path / "c.toml", 'extends = ["a.toml", "b.toml"]\n'))
    assert s.seed == 2 and s.duration_h == 2
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(tmp_path / "d.toml", 'extends = "missing.toml"\nfoo = 1\n'))
    problems = exc.value.problems
    assert any("extends" in p and "missing.toml" in p and "not found" in p for p in problems)
    assert any(p.startswith("foo: unknown key") for p in problems)
    write(tmp_path / "x.toml", 'extends = "y.toml"\ncity = "c.gpkg"\n')
    write(tmp_path / "y.toml", 'extends = "x.toml"\n')
    with pytest.raises(ScenarioError, match="circular"):
        load_scenario(tmp_path / "x.toml")
    write(tmp_path / "broken.toml", "city = \n")
    with pytest.raises(ScenarioError) as exc:
        load_scenario(write(tmp_path / "e.toml", 'extends = "broken.toml"\n'))
    assert "broken.toml" in str(exc.value) and "TOML syntax error" in str(exc.value)


@pytest.mark.parametrize("data", [
    {"name": "n", "city": "a\x00b"},
    {"name": "n", "city": "c.gpkg", "extends": "x\x00"},
    {"name": "n", "city": "c.gpkg", "extends": ["a" * 5000]},
    {"name": "n", "city": "c.gpkg", "extends": 3},
])
def test_unusable_paths_are_scenario_errors(data: dict) -> None:
    with pytest.raises(ScenarioError) as exc:
        scenario_from_dict(data, base_dir="/nonexistent")
    assert len(exc.value.problems) == 1
    assert exc.value.problems[0].startswith(("city:", "extends:"))


def test_content_hash_ignores_location_and_seed(tmp_path: Path) -> None:
    a = scenario_from_dict({"name": "s", "city": "/x/c.gpkg", "seed": 1})
    b = scenario_from_dict({"name": "s", "city": "/y/c.gpkg", "seed": 2})
    c = scenario_from_dict({"name": "s", "city": "/y/c.gpkg", "duration_h": 2})
    assert a.content_hash() == b.content_hash() != c.content_hash()


def test_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "interventions" in schema["properties"]
    assert schema["additionalProperties"] is False
    assert "close_road" in json.dumps(schema)
    assert main(["schema", "--experiment"]) == 0
    assert "levers" in json.loads(capsys.readouterr().out)["properties"]


def test_cli_reports_scenario_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write(tmp_path / "bad.toml", 'city = "c.gpkg"\nseed = -1\n')
    assert main(["run", str(f)]) == 2
    assert "seed" in capsys.readouterr().err


# ---------------------------------------------------------------- fuzzing the loader

_keys = st.sampled_from(["name", "city", "seed", "start", "duration_h", "step_s", "extends",
                         "description", "interventions", "type", "share", "street", "edges",
                         "traffic", "energy", "emergency", "factor", "x"])
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                     st.floats(allow_nan=True), st.text(max_size=12),
                     st.sampled_from(["\x00", "a" * 300, "../" * 40, "baseline.toml", "."]))
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_keys, _values, max_size=8))
def test_fuzz_dicts_only_raise_scenario_error(data: dict) -> None:
    try:
        s = scenario_from_dict(data, base_dir="/nonexistent")
    except ScenarioError:
        return
    assert isinstance(s, Scenario)


_toml_chars = string.ascii_letters + string.digits + ' =[]{}"\'.,#\n-_:'


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=_toml_chars, max_size=80))
def test_fuzz_text_only_raises_scenario_error(text: str) -> None:
    try:
        loads_scenario('city = "c.gpkg"\n' + text, base_dir="/nonexistent")
    except ScenarioError:
        pass


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    p = tmp_path / "bom.toml"
    p.write_bytes(b"\xef\xbb\xbf" + b'name = "bom"\ncity = "x.gpkg"\nseed = 4\n')
    assert load_scenario(p).seed == 4  # was "Invalid statement (at line 1, column 1)"


def test_huge_demand_scale_needs_n_gb_before_allocating(tmp_path: Path) -> None:
    from citytwin.scenario import check_resources, resource_estimate

    sc = loads_scenario('name = "big"\ncity = "x.gpkg"\n[traffic]\ndemand_scale = 1e9\n')
    assert resource_estimate(sc, 5000) > 1e15
    with pytest.raises(ScenarioError, match=r"needs ~[\d,.]+ GB.*traffic.demand_scale"):
        check_resources(sc, 5000, available=16 * 2**30)
    check_resources(sc.with_updates(traffic={"demand_scale": 1.0}), 5000,
                    available=16 * 2**30)
