"""Every GeodataError case: one bad input each, and all problems of one input listed at once."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from citytwin.city import City
from citytwin.errors import GeodataError
from citytwin.osm import write_gpkg

ROOT = Path(__file__).resolve().parents[2]
X0, Y0 = 385_000.0, 6_672_000.0


def _build(layers: dict[str, gpd.GeoDataFrame], tmp_path: Path, **kw) -> City:
    path = write_gpkg(layers, tmp_path / "city.gpkg")
    return City.from_path(path, use_cache=False, **kw)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GeodataError, match="file not found") as exc:
        City.from_path(tmp_path / "nope.gpkg", use_cache=False)
    assert isinstance(exc.value, ValueError)


def test_unsupported_format(tmp_path: Path) -> None:
    p = tmp_path / "city.csv"
    p.write_text("a,b\n")
    with pytest.raises(GeodataError, match="unsupported format '.csv'"):
        City.from_path(p, use_cache=False)


def test_missing_layer(tiny_layers, tmp_path: Path) -> None:
    del tiny_layers["buildings"]
    with pytest.raises(GeodataError, match="missing layer 'buildings'"):
        _build(tiny_layers, tmp_path)


def test_missing_layer_file_in_directory(tiny_layers, tmp_path: Path) -> None:
    tiny_layers["roads"].to_parquet(tmp_path / "roads.parquet")
    with pytest.raises(GeodataError, match=r"missing layer file 'buildings"):
        City.from_path(tmp_path, use_cache=False)


def test_no_crs(tiny_layers, tmp_path: Path) -> None:
    tiny_layers["roads"] = tiny_layers["roads"].set_crs(None, allow_override=True)
    for name, gdf in tiny_layers.items():
        gdf.to_parquet(tmp_path / f"{name}.parquet")
    with pytest.raises(GeodataError, match="layer 'roads': no CRS"):
        City.from_path(tmp_path, use_cache=False)


def test_empty_layer(tiny_layers, tmp_path: Path) -> None:
    tiny_layers["buildings"] = tiny_layers["buildings"].iloc[:0]
    with pytest.raises(GeodataError, match="layer 'buildings': is empty"):
        _build(tiny_layers, tmp_path)


def test_missing_required_column(tiny_layers, tmp_path: Path) -> None:
    tiny_layers["roads"] = tiny_layers["roads"].drop(columns=["highway"])
    with pytest.raises(GeodataError, match="layer 'roads': missing required column 'highway'"):
        _build(tiny_layers, tmp_path)


def test_wrong_geometry_type(tiny_layers, tmp_path: Path) -> None:
    b = tiny_layers["buildings"]
    b.loc[2, "geometry"] = shapely.Point(X0 + 30, Y0 + 30)
    with pytest.raises(GeodataError, match=r"layer 'buildings': rows 2 have geometry \['Point'\]"):
        City.from_path(_dir(tiny_layers, tmp_path), use_cache=False)


def _dir(layers: dict[str, gpd.GeoDataFrame], tmp_path: Path) -> Path:
    d = tmp_path / "layers"
    d.mkdir()
    for name, gdf in layers.items():
        gdf.to_parquet(d / f"{name}.parquet")
    return d


def test_invalid_geometry_is_repaired_with_a_note(tiny_layers, tmp_path: Path) -> None:
    b = tiny_layers["buildings"]
    # a bow-tie footprint (self-intersecting): make_valid turns it into two triangles
    b.loc[6, "geometry"] = shapely.Polygon(
        [(X0 + 120, Y0 + 60), (X0 + 130, Y0 + 70), (X0 + 130, Y0 + 60), (X0 + 120, Y0 + 70)])
    city = _build(tiny_layers, tmp_path)
    rep = [i for i in city.report.issues if "make_valid" in str(i["reason"])]
    assert [(i["layer"], i["action"], i["rows"]) for i in rep] == [("buildings", "repaired", [6])]
    assert "Self-intersection" in str(rep[0]["reason"])
    g = city.buildings.geometry.iloc[6]
    assert g.is_valid and g.area == pytest.approx(50.0)


def test_unrepairable_geometry(tiny_layers, tmp_path: Path) -> None:
    b = tiny_layers["buildings"]
    b.loc[5, "geometry"] = shapely.Polygon([(X0 + 60, Y0 + 160), (X0 + 70, Y0 + 160),
                                            (X0 + 65, Y0 + 160), (X0 + 60, Y0 + 160)])
    with pytest.raises(GeodataError, match="rows 5 have invalid geometry that make_valid cannot"):
        City.from_path(_dir(tiny_layers, tmp_path), use_cache=False)


def test_zero_length_road_dropped_speed_and_lanes_repaired(tiny_layers, tmp_path: Path) -> None:
    r = tiny_layers["roads"]
    r.loc[0, "maxspeed"] = "0"
    r.loc[1, "lanes"] = "-2"
    r.loc[2, "geometry"] = shapely.LineString([(X0 + 5, Y0 + 5), (X0 + 5, Y0 + 5)])
    from citytwin.layers import BuildOptions

    city = City.from_path(_dir(tiny_layers, tmp_path), use_cache=False,
                          options=BuildOptions(max_dropped_share=0.2))  # 1 of the tiny roads
    got = {(i["action"], i["reason"].split(" ")[0], tuple(i["rows"])) for i in city.report.issues}
    assert got == {("repaired", "maxspeed", (0,)), ("repaired", "lanes", (1,)),
                   ("dropped", "length", (2,))}


def test_non_positive_levels_repaired(tiny_layers, tmp_path: Path) -> None:
    tiny_layers["buildings"].loc[0, "levels"] = 0
    city = _build(tiny_layers, tmp_path)
    (issue,) = [i for i in city.report.issues if "levels <= 0" in i["reason"]]
    assert issue["action"] == "repaired" and issue["rows"] == [0]
    assert city.buildings.loc[0, "levels"] > 0


def test_no_connected_part(tiny_layers, tmp_path: Path) -> None:
    r = tiny_layers["roads"]
    r["oneway"] = "yes"
    # only links running east or north: a DAG, no two nodes reach each other both ways
    with pytest.raises(GeodataError, match="no strongly connected part"):
        _build(tiny_layers, tmp_path)


def test_unreachable_buildings_dropped_or_refused_by_share(tiny_layers, tmp_path: Path) -> None:
    b = tiny_layers["buildings"]
    b.loc[3, "geometry"] = shapely.box(X0 + 5000, Y0 + 5000, X0 + 5010, Y0 + 5010)
    # 1 of 7 is more than the default 5 % share: refused, with the reason
    with pytest.raises(GeodataError, match=r"1 of 7 buildings dropped .*within 500 m"):
        _build(tiny_layers, tmp_path, max_attach_m=500)
    from citytwin.layers import BuildOptions

    city = City.from_path(write_gpkg(tiny_layers, tmp_path / "c2.gpkg"), use_cache=False,
                          options=BuildOptions(max_attach_m=500, max_dropped_share=0.2))
    assert len(city.buildings) == 6
    (issue,) = [i for i in city.report.issues if i["action"] == "dropped"]
    assert issue["layer"] == "buildings" and issue["rows"] == [3] and issue["count"] == 1


def test_bad_facility_kind_and_several_layers_at_once(tiny_layers, tmp_path: Path) -> None:
    tiny_layers["facilities"].loc[1, "kind"] = "spaceport"
    tiny_layers["roads"] = tiny_layers["roads"].drop(columns=["highway"])
    with pytest.raises(GeodataError) as exc:
        _build(tiny_layers, tmp_path)
    msg = str(exc.value)
    assert "kind ['spaceport']" in msg and "missing required column 'highway'" in msg
    assert str(tmp_path / "city.gpkg") in msg


def test_real_city_with_lon_lat_swapped_is_an_error_saying_so() -> None:
    """Helsinki's own layers written y/x: within ±90/±180, so only the footprint corners tell
    (74 % right angles read swapped back, 3 % as written)."""
    from citytwin.layers import read_layers

    raw = read_layers(ROOT / "geodata" / "helsinki.gpkg")
    swapped = {n: g.set_geometry(shapely.transform(g.geometry.values, lambda c: c[:, ::-1]))
               for n, g in raw.items()}
    with pytest.raises(GeodataError, match="latitude/longitude in the wrong order"):
        City.from_layers(swapped, name="helsinki-swapped")
