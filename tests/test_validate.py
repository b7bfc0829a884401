"""The cross-domain validation suite runs on reference cities, writes its report and fails
checks honestly (a broken invariant is a FAIL, a check that cannot run is an ERROR)."""

from __future__ import annotations

import json

import pytest

from citytwin import examples
from citytwin.cli import main
from citytwin.validate import CHECKS, Check, ValidationReport, validate


@pytest.fixture(scope="module")
def grid_report() -> ValidationReport:
    return validate(examples.grid(), days=1)


def test_every_check_runs_on_a_synthetic_city(grid_report: ValidationReport) -> None:
    assert [c.name for c in grid_report.checks] == list(CHECKS)
    errors = [(c.name, c.detail) for c in grid_report.checks if c.passed is None]
    assert not errors  # each check measured something (pass or fail)
    by = {c.name: c for c in grid_report.checks}
    # the invariants this engineer's domains own hold
    assert by["response_ge_turnout_plus_path"].passed
    assert by["queue_erlang_b"].passed
    assert by["energy_balance"].passed


def test_checks_are_not_tautologies() -> None:
    # a report with a failing check is not ok, and the table says FAIL
    r = ValidationReport(city="x", checks=[Check("a", "energy", True, 1.0, "1"),
                                           Check("b", "energy", False, 2.0, "1")])
    assert not r.ok
    assert "FAIL" in r.table() and "1/2 checks passed" in r.table()


def test_cli_writes_markdown_and_json(tmp_path, capsys) -> None:
    city = tmp_path / "city.gpkg"
    from citytwin.synth import write_synthetic_city

    write_synthetic_city(city, n_buildings=40, seed=2)
    out = tmp_path / "val"
    rc = main(["validate", str(city), "--days", "1", "--out", str(out),
               "--only", "response_ge_turnout_plus_path", "--only", "queue_erlang_b"])
    printed = capsys.readouterr().out
    assert "response_ge_turnout_plus_path" in printed and "PASS" in printed
    rep = json.loads((out / "validation.json").read_text())
    assert [c["name"] for c in rep["checks"]] == ["response_ge_turnout_plus_path",
                                                  "queue_erlang_b"]
    assert rc == (0 if rep["ok"] else 1)
    assert (out / "validation.md").read_text().startswith("# Validation")


def test_unknown_check_is_a_clear_error() -> None:
    from citytwin.errors import InputError

    with pytest.raises(InputError, match="unknown check 'nope'"):
        validate(examples.grid(), only=["nope"])


def test_scenario_target_compares_its_sample_with_the_full_population(tmp_path) -> None:
    from citytwin.synth import write_synthetic_city

    write_synthetic_city(tmp_path / "city.gpkg", n_buildings=24, seed=2)
    (tmp_path / "s.toml").write_text('name = "s"\ncity = "city.gpkg"\nseed = 3\n'
                                     "[traffic]\nsample = 0.1\n", encoding="utf-8")
    r = validate(tmp_path / "s.toml", days=1, only=["sampled_vs_full"])
    assert r.runs.keys() == {"coupled", "sampled"}
    assert r.checks[0].detail.startswith("samples 1 / 0.1:")


def test_city_without_stations_skips_emergency_checks_with_the_reason() -> None:
    from citytwin.city import City
    from citytwin.synth import synthetic_layers

    layers = synthetic_layers(40, seed=2)
    fac = layers["facilities"]
    layers["facilities"] = fac[~fac["kind"].isin(["fire_station", "ambulance_station"])]
    city = City.from_layers(layers, name="nostations")
    r = validate(city, days=1, only=["response_ge_turnout_plus_path", "queue_erlang_b"])
    assert [c.status for c in r.checks] == ["SKIP", "SKIP"]
    assert all("no stations" in c.detail for c in r.checks)
    assert r.ok


def test_runs_on_a_city_far_from_helsinki() -> None:
    # the synthetic town in Santiago de Chile (UTM 19S): another latitude, hemisphere and
    # time zone; every check measures something there (PASS or FAIL, never a crash), except
    # the PV yield, whose documented range is Helsinki's (skipped, saying so)
    from citytwin import examples

    city = examples.synthetic(48, site=(-33.45, -70.66))
    r = validate(city, days=1)
    by = {c.name: c for c in r.checks}
    assert [c.name for c in r.checks if c.status in ("ERROR", "SKIP")] == ["pv_yield"]
    assert "Helsinki" in by["pv_yield"].detail and "km away" in by["pv_yield"].detail
    pv = by["pv_peak_local_time"]
    assert "-33." in pv.detail and "America/Santiago" in pv.detail  # the city's site and clock
    assert pv.status == "PASS"
