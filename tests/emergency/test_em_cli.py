"""The emergency CLI on the shipped default city (one fire station, no ambulance station)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from citytwin.cli import main

CITY = Path(__file__).resolve().parents[2] / "geodata" / "helsinki.gpkg"
pytestmark = pytest.mark.skipif(not CITY.exists(), reason="default city not shipped yet")


def test_coverage_cli(tmp_path, capsys) -> None:
    out = tmp_path / "cov.parquet"
    assert main(["coverage", str(CITY), "--json", "-o", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    cov = pd.read_parquet(out)
    assert summary["buildings_n"] == len(cov) > 0
    assert 0 < summary["travel_p50_s"] <= summary["travel_p90_s"] <= summary["travel_max_s"]


def test_site_stations_cli(capsys) -> None:
    assert main(["site-stations", str(CITY), "--new", "2", "--radius", "90", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["proposed"]) == 2
    assert res["covered_after_share"] > res["covered_before_share"]


def test_emergency_cli_and_bad_log(tmp_path, capsys) -> None:
    assert main(["emergency", str(CITY), "--hours", "6", "--seed", "2", "-o",
                 str(tmp_path / "run")]) == 0
    assert (tmp_path / "run" / "incidents.parquet").exists()
    bad = tmp_path / "log.csv"
    pd.DataFrame({"time_s": [5.0], "type": ["alien"], "building_id": [0], "who": [1]}).to_csv(
        bad, index=False)
    assert main(["emergency", str(CITY), "--incidents", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown column(s) ['who']" in err


def test_site_stations_toml_loads_as_scenario_interventions(tmp_path, capsys) -> None:
    from citytwin import scenario as scenario_mod

    assert main(["site-stations", str(CITY), "--new", "1", "--radius", "90", "--toml"]) == 0
    snippet = capsys.readouterr().out
    toml = tmp_path / "s.toml"
    toml.write_text(f'name = "s"\ncity = "{CITY}"\n[emergency]\n\n{snippet}', encoding="utf-8")
    spec = scenario_mod.load_scenario(toml)
    assert [iv.type for iv in spec.interventions] == ["add_station"]
    assert 24.9 < spec.interventions[0].lon < 25.0 and 60.1 < spec.interventions[0].lat < 60.2
