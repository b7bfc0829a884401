"""The reference test cities (issue 15): each builds with the default build options and runs
all three domains through ``citytwin run``, with its build report in the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from citytwin import examples
from citytwin.cli import main
from citytwin.errors import ScenarioError
from citytwin.scenario import loads_scenario

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.mark.parametrize("name", ["kotka", "welwyn", "dormitory"])
def test_city_builds_with_defaults_and_runs_three_domains(name, tmp_path, monkeypatch,
                                                          capsys) -> None:
    monkeypatch.setenv("CITYTWIN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert main(["run", str(DATA / f"{name}.toml"), "--out", str(out), "--no-progress"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["domains"] == ["traffic", "energy", "emergency"]
    assert set(manifest["city_build"]) == {"notes", "inferred", "issues"}
    text = capsys.readouterr().out
    assert "trips_completed" in text and "energy_served_kwh" in text and "calls_n" in text


def test_welwyn_is_far_from_helsinki_and_has_inferred_jobs(tmp_path) -> None:
    city = examples.welwyn(cache_dir=tmp_path)
    s = city.summary()
    assert s["crs"] == "EPSG:32630" and -0.25 < s["extent_lonlat"][0] < 0  # UTM 30N, Greenwich
    assert s["facilities"] == {} and s["buildings"] == 2
    assert s["jobs"] > 0 and any("POIs" in n for n in s["notes"])


def test_dormitory_has_no_non_residential_building_but_jobs() -> None:
    city = examples.dormitory()
    assert set(city.buildings["use"].astype(str)) == {"residential"}
    assert city.buildings["jobs"].sum() == round(city.buildings["population"].sum() * 0.5)
    assert len(city.facilities) == 0


def test_build_section_reaches_the_city_and_the_cache_key(tmp_path) -> None:
    from citytwin.model import load_city

    base = f'city = "{DATA / "dormitory.gpkg"}"\nname = "b"\n'
    default = loads_scenario(base)
    slow = loads_scenario(base + "[build]\nspeeds_kph = { primary = 35.0 }\n"
                          "max_attach_m = 400\n")
    assert slow.build.max_attach_m == 400
    assert slow.content_hash() != default.content_hash()
    c1 = load_city(default.city, default.build)
    # synth writes maxspeed on every road: class speeds only fill untagged links
    assert c1.options.max_attach_m == 1000
    c2 = load_city(slow.city, slow.build)
    assert c2.options.speeds_kph == {"primary": 35.0} and c2 is not c1
    with pytest.raises(ScenarioError, match=r"build.max_attach_m"):
        loads_scenario(base + "[build]\nmax_attach_m = -5\n")
    with pytest.raises(ScenarioError, match=r"build.max_leveles: unknown key"):
        loads_scenario(base + "[build]\nmax_leveles = 3\n")


@pytest.mark.parametrize(("dx", "ok"), [(300.0, True), (916.0, False), (1300.0, False)])
def test_new_station_far_from_roads_is_an_error(dx, ok) -> None:
    from pyproj import Transformer

    from citytwin import interventions

    city = examples.grid()
    minx, miny, maxx, maxy = city.buildings.total_bounds
    x, y = max(x for x in city.road_arrays.x) + dx, (miny + maxy) / 2  # east of the city
    lon, lat = Transformer.from_crs(city.crs, "EPSG:4326", always_xy=True).transform(x, y)
    s = loads_scenario(f'name = "s"\ncity = "{DATA / "dormitory.gpkg"}"\n[emergency]\n'
                       f'[[interventions]]\ntype = "add_station"\nkind = "fire_station"\n'
                       f'name = "Harbour"\nlon = {lon}\nlat = {lat}\n')
    problems = interventions.check(s, city)
    assert (problems == []) is ok
    if not ok:
        assert "from the nearest road" in problems[0] and "max_station_snap_m" in problems[0]
