"""Build policies (issue 15) and plausibility checks (issue 13 item 4): each bad row is
repaired or dropped and reported with its rows, or the build fails with a clear GeodataError."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from citytwin.city import City
from citytwin.errors import GeodataError
from citytwin.layers import BuildOptions
from citytwin.osm import write_gpkg
from citytwin.synth import synthetic_layers


@pytest.fixture()
def layers() -> dict[str, gpd.GeoDataFrame]:
    return synthetic_layers(400, seed=1)


def _issues(city: City, text: str) -> list[dict]:
    return [i for i in city.report.issues if text in str(i["reason"])]


def test_far_buildings_dropped_and_reported_not_a_failed_build(layers) -> None:
    b = layers["buildings"]
    far = [5, 17, 301]
    b.loc[far, "geometry"] = b.loc[far, "geometry"].translate(xoff=8000)
    city = City.from_layers(layers, name="far")
    assert len(city.buildings) == 397
    (issue,) = _issues(city, "max_attach_m")
    assert issue["action"] == "dropped" and issue["rows"] == far and issue["count"] == 3
    assert issue["ids"] == b.loc[far, "osm_id"].tolist()
    assert city.summary()["dropped"] == {f"buildings: {issue['reason']}": 3}


def test_too_many_dropped_is_refused_with_the_share(layers) -> None:
    b = layers["buildings"]
    b.loc[:39, "geometry"] = b.loc[:39, "geometry"].translate(xoff=8000)  # 10 %
    with pytest.raises(GeodataError, match=r"40 of 400 buildings dropped \(10.0%\)"):
        City.from_layers(layers, name="far")
    city = City.from_layers(layers, name="far", options=BuildOptions(max_dropped_share=0.2))
    assert len(city.buildings) == 360


def test_lanes_zero_and_maxspeed_text_repaired_with_rows(layers) -> None:
    r = layers["roads"]
    r["lanes"] = r["lanes"].astype(object)
    r["maxspeed"] = r["maxspeed"].astype(object)
    r.loc[[3, 8], "lanes"] = 0
    r.loc[4, "maxspeed"] = "fast"
    r.loc[6, "maxspeed"] = "signals"  # an OSM word, not an error
    city = City.from_layers(layers, name="tags")
    (lanes,) = _issues(city, "lanes <= 0")
    assert lanes["action"] == "repaired" and lanes["rows"] == [3, 8]
    (speed,) = _issues(city, "maxspeed is not a number")
    assert speed["rows"] == [4]
    e = {d["osmid"]: d for _, _, d in city.roads.edges(data=True)}
    assert e[3]["lanes"] == 1 and e[4]["speed_kph"] == 30.0


def test_every_building_twice_dropped_population_unchanged(layers) -> None:
    once = City.from_layers(synthetic_layers(400, seed=1), name="once")
    b = layers["buildings"]
    layers["buildings"] = pd.concat([b, b], ignore_index=True)
    twice = City.from_layers(layers, name="twice", options=BuildOptions(max_dropped_share=0.6))
    (dup,) = _issues(twice, "duplicate geometry")
    assert dup["count"] == 400 and dup["rows"][:2] == [400, 401]
    assert twice.buildings["population"].sum() == once.buildings["population"].sum()


def test_storeys_beyond_bound_repaired_and_building_levels_column_read(layers) -> None:
    b = layers["buildings"].drop(columns=["levels"])
    b["building:levels"] = 3.0
    b.loc[7, "building:levels"] = 10000
    layers["buildings"] = b
    city = City.from_layers(layers, name="levels")
    (issue,) = _issues(city, "levels above 200")
    assert issue["rows"] == [7]
    lv = city.buildings["levels"].to_numpy()
    assert (np.delete(lv, 7) == 3.0).all() and lv[7] < 200


def test_population_density_beyond_bound_is_an_error(layers) -> None:
    layers["buildings"]["building"] = "residential"
    layers["buildings"]["levels"] = 150.0
    with pytest.raises(GeodataError, match="per km2, above the bound"):
        City.from_layers(layers, name="dense")


def test_station_far_from_roads_warned_and_outside_dropped(layers) -> None:
    f = layers["facilities"]
    x0, y0 = layers["roads"].total_bounds[:2]
    harbour = gpd.GeoDataFrame({"kind": ["fire_station", "hospital"], "name": ["h", "o"],
                                "osm_id": [901, 902]},
                               geometry=[shapely.Point(x0 - 700, y0 - 600),
                                         shapely.Point(x0 - 1300, y0 - 1300)], crs=f.crs)
    layers["facilities"] = pd.concat([f, harbour], ignore_index=True)
    city = City.from_layers(layers, name="stations")
    n = len(f)
    (warn,) = _issues(city, "snapped farther than 500 m")
    assert warn["action"] == "warning" and warn["rows"] == [n] and warn["ids"] == [901]
    (drop,) = [i for i in city.report.issues if i["layer"] == "facilities"
               and i["action"] == "dropped"]
    assert drop["rows"] == [n + 1]
    assert len(city.facilities) == n + 1


def test_facility_without_geometry_noted(layers) -> None:
    f = layers["facilities"]
    f.loc[0, "geometry"] = None
    city = City.from_layers(layers, name="nogeom")
    (issue,) = _issues(city, "no geometry")
    assert issue["layer"] == "facilities" and issue["rows"] == [0]


def test_residential_only_city_gets_jobs_from_road_hierarchy(layers) -> None:
    layers["buildings"]["building"] = "residential"
    city = City.from_layers(layers, name="dormitory")
    pop, jobs = city.buildings["population"].sum(), city.buildings["jobs"].sum()
    assert jobs == round(pop * 0.5) > 0
    assert any("no non-residential building" in n and "street class" in n
               for n in city.report.notes)
    # buildings on the primary arterials get more jobs per m2 than those on side streets
    per_m2 = city.buildings["jobs"] / city.buildings["floor_area_m2"]
    assert per_m2.max() > 2 * per_m2[per_m2 > 0].min()


def test_polar_city_projected_with_local_equal_area(layers) -> None:
    for name, gdf in layers.items():  # move the synthetic city to 86 deg N
        ll = gdf.to_crs(4326)
        ll = ll.set_geometry(ll.geometry.translate(xoff=-24.0, yoff=86.0 - 60.0))
        layers[name] = ll
    city = City.from_layers(layers, name="polar")
    assert "Lambert Azimuthal" in city.crs.coordinate_operation.method_name
    assert len(city.buildings) > 300


def test_southern_hemisphere_city_uses_its_utm_zone(layers) -> None:
    for name, gdf in layers.items():
        ll = gdf.to_crs(4326)
        layers[name] = ll.set_geometry(ll.geometry.translate(xoff=126.4, yoff=-93.9))
    city = City.from_layers(layers, name="south")
    assert city.crs.to_epsg() == 32756  # UTM 56 S (Sydney)


def test_metres_labelled_as_degrees_is_an_error(layers) -> None:
    for gdf in layers.values():
        gdf.set_crs(4326, allow_override=True, inplace=True)
    with pytest.raises(GeodataError, match="look like metres"):
        City.from_layers(layers, name="mislabelled")


@pytest.mark.parametrize(("kw", "match"), [
    ({"crs": "EPSG:99999"}, "unknown coordinate reference system 'EPSG:99999'"),
    ({"max_attach_m": -5}, "build.max_attach_m: Input should be greater than 0"),
    ({"crs": "EPSG:4326"}, "is not projected"),
])
def test_bad_build_options_are_geodata_errors(layers, kw, match) -> None:
    with pytest.raises(GeodataError, match=match):
        City.from_layers(layers, name="opts", **kw)


def test_unknown_speed_class(layers) -> None:
    with pytest.raises(GeodataError, match="unknown highway class 'autobahn'"):
        City.from_layers(layers, name="s", options=BuildOptions(speeds_kph={"autobahn": 130}))
    city = City.from_layers(layers, name="s", options=BuildOptions(speeds_kph={"primary": 60}))
    assert {d["speed_kph"] for _, _, d in city.roads.edges(data=True)
            if d["highway"] == "primary"} == {50.0}  # tagged maxspeed wins
    layers["roads"] = layers["roads"].drop(columns=["maxspeed"])
    city = City.from_layers(layers, name="s", options=BuildOptions(speeds_kph={"primary": 60}))
    assert {d["speed_kph"] for _, _, d in city.roads.edges(data=True)
            if d["highway"] == "primary"} == {60.0}


def test_garbage_pbf_and_non_utf8_text(tmp_path: Path, layers) -> None:
    junk = tmp_path / "junk.osm.pbf"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(GeodataError, match="not a readable OpenStreetMap"):
        City.from_path(junk, use_cache=False)
    d = tmp_path / "city"
    d.mkdir()
    for name in ("roads", "facilities"):
        layers[name].to_file(d / f"{name}.geojson", driver="GeoJSON")
    b = layers["buildings"].copy()
    b["name"] = "Kauppatori"
    text = b.to_json().replace('"Kauppatori"', '"K\u00e4upp\u00e4"', 1)
    (d / "buildings.geojson").write_bytes(text.encode("utf-8").replace(
        "K\u00e4upp\u00e4".encode(), "K\u00e4upp\u00e4".encode("latin-1")))
    city = City.from_path(d, use_cache=False)
    assert len(city.buildings) == 400
    assert any("not valid UTF-8" in n for n in city.report.notes)


def test_cli_info_shows_repairs_and_exit_2_on_bad_options(tmp_path: Path, layers, capsys) -> None:
    from citytwin.cli import main

    layers["roads"]["lanes"] = layers["roads"]["lanes"].astype(object)
    layers["roads"].loc[3, "lanes"] = 0
    path = write_gpkg(layers, tmp_path / "c.gpkg")
    assert main(["info", str(path), "--json", "--cache-dir", str(tmp_path / "cache")]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["repaired"] == {"roads: lanes <= 0 (expected a positive number of lanes); 1 lane": 1}
    assert s["issues"][0]["rows"] == [3]
    assert main(["build", str(path), "--no-cache", "--max-attach-m", "-5"]) == 2
    assert "max_attach_m" in capsys.readouterr().err


def test_too_many_duplicate_roads_refused(layers) -> None:
    r = layers["roads"]
    layers["roads"] = pd.concat([r, r.iloc[:20]], ignore_index=True)
    with pytest.raises(GeodataError, match=r"layer 'roads': 20 of \d+ roads dropped"):
        City.from_layers(layers, name="dup")
