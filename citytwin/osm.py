"""OpenStreetMap extracts (``.osm.pbf``) → citytwin layers, via pyrosm.

:func:`osm_layers` returns the layers in memory (WGS84, as OSM stores them); :func:`import_osm`
writes them to a GeoPackage (``citytwin import-osm``), which is how ``geodata/helsinki.gpkg``
is made. The layer schema is documented in :mod:`citytwin.layers`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from citytwin.errors import GeodataError
from citytwin.layers import POWER_VALUES

__all__ = ["osm_layers", "import_osm"]

log = logging.getLogger(__name__)

_ROAD_COLS = ["osmid", "name", "highway", "oneway", "maxspeed", "lanes", "junction"]
#: The ``power=*`` values read from an extract: the layer check's list, so what is read is
#: exactly what the power layer keeps (one list, in :mod:`citytwin.layers`).
_POWER_VALUES = list(POWER_VALUES)


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    if name in df.columns:
        return df[name]
    return pd.Series([None] * len(df), index=df.index, dtype=object)


def _tag(df: pd.DataFrame, key: str) -> pd.Series:
    """Value of ``key`` from a pyrosm frame: its own column, else the JSON ``tags`` column."""
    col = _col(df, key).astype(object)
    if "tags" in df.columns:
        miss = col.isna()
        if miss.any():
            def get(t: object) -> object:
                if not isinstance(t, str) or not t:
                    return None
                try:
                    return json.loads(t).get(key)
                except ValueError:
                    return None

            col = col.copy()
            col[miss] = df.loc[miss, "tags"].map(get)
    return col


def _str(s: pd.Series) -> pd.Series:
    return s.where(s.notna(), None).astype(object)


def _usable(geoms: np.ndarray, layer: str, path: Path) -> np.ndarray:
    """False for degenerate polygons (zero area after make_valid, e.g. ways cut at the extract
    boundary): they are no footprint at all and are left out of the layer, with a log line."""
    fixed = shapely.make_valid(geoms)
    ok = shapely.area(fixed) > 0
    if (~ok).any():
        log.warning("%s: left out %d degenerate %s polygon(s) of zero area (OSM ids cut at the "
                    "extract boundary or broken ways)", path.name, int((~ok).sum()), layer)
    return ok


def osm_layers(path: str | Path) -> dict[str, gpd.GeoDataFrame]:
    """Read an ``.osm.pbf`` extract into the citytwin layers (EPSG:4326)."""
    with warnings.catch_warnings():  # pyrosm warns "Could not find any OSM data" per empty layer
        warnings.filterwarnings("ignore", message="Could not find any OSM data",
                                category=UserWarning)
        return _osm_layers(path)


def _osm_layers(path: str | Path) -> dict[str, gpd.GeoDataFrame]:
    import pyrosm

    path = Path(path)
    if not path.exists():
        raise GeodataError([f"file not found: {path}"], source=str(path))
    try:
        osm = pyrosm.OSM(str(path))
        got = osm.get_network(network_type="driving", nodes=True)  # nodes=True: split at junctions
    except Exception as exc:  # noqa: BLE001 - pyrosm raises its own and low-level errors
        raise GeodataError([f"not a readable OpenStreetMap .osm.pbf file "
                            f"({type(exc).__name__}: {str(exc)[:200]})"],
                           source=str(path)) from exc
    layers: dict[str, gpd.GeoDataFrame] = {}

    net = got[1] if isinstance(got, tuple) else got
    if net is None or len(net) == 0:
        raise GeodataError(["no drivable roads (highway=*) in the extract"], source=str(path))
    net = net[net.geometry.notna()]
    roads = gpd.GeoDataFrame(
        {
            "osmid": pd.to_numeric(net["id"], errors="coerce").astype("Int64"),
            "name": _str(_col(net, "name")),
            "highway": _str(_col(net, "highway")),
            "oneway": _str(_col(net, "oneway")),
            "maxspeed": _str(_col(net, "maxspeed")),
            "lanes": _str(_col(net, "lanes")),
            "junction": _str(_tag(net, "junction")),
        },
        geometry=net.geometry.values,
        crs="EPSG:4326",
    )
    layers["roads"] = roads.explode(index_parts=False).reset_index(drop=True)

    b = osm.get_buildings()
    if b is None or len(b) == 0:
        raise GeodataError(["no buildings (building=*) in the extract"], source=str(path))
    poly = shapely.get_type_id(b.geometry.values) >= 0
    poly &= np.isin(b.geometry.geom_type.to_numpy(), ["Polygon", "MultiPolygon"])
    b = b[poly & _usable(b.geometry.values, "buildings", path)]
    layers["buildings"] = gpd.GeoDataFrame(
        {
            "osm_id": pd.to_numeric(b["id"], errors="coerce").astype("Int64"),
            "name": _str(_col(b, "name")),
            "building": _str(_col(b, "building")),
            "levels": pd.to_numeric(_tag(b, "building:levels"), errors="coerce"),
            "height": pd.to_numeric(
                _str(_col(b, "height")).astype(str).str.extract(r"(\d+(?:\.\d+)?)", expand=False),
                errors="coerce",
            ),
            "amenity": _str(_col(b, "amenity")),
            "shop": _str(_col(b, "shop")),
            "office": _str(_col(b, "office")),
            "start_date": _str(_col(b, "start_date")),
        },
        geometry=b.geometry.values,
        crs="EPSG:4326",
    ).reset_index(drop=True)

    lu = osm.get_landuse()
    if lu is not None and len(lu):
        lu = lu[np.isin(lu.geometry.geom_type.to_numpy(), ["Polygon", "MultiPolygon"])]
        lu = lu[_usable(lu.geometry.values, "landuse", path)]
        layers["landuse"] = gpd.GeoDataFrame(
            {"osm_id": pd.to_numeric(lu["id"], errors="coerce").astype("Int64"),
             "landuse": _str(_col(lu, "landuse"))},
            geometry=lu.geometry.values, crs="EPSG:4326",
        ).reset_index(drop=True)

    pois = osm.get_pois(custom_filter={"amenity": True, "shop": True, "office": True,
                                       "emergency": ["ambulance_station"]})
    if pois is not None and len(pois):
        pois = pois[pois.geometry.notna()]
        amen = _str(_col(pois, "amenity"))
        emerg = _str(_tag(pois, "emergency"))
        kind = pd.Series(None, index=pois.index, dtype=object)
        kind[amen.isin(["fire_station", "hospital", "police"])] = amen
        kind[emerg == "ambulance_station"] = "ambulance_station"
        fac = pois[kind.notna()]
        if len(fac):
            layers["facilities"] = gpd.GeoDataFrame(
                {"kind": kind[kind.notna()].to_numpy(),
                 "name": _str(_col(fac, "name")).fillna("").to_numpy(),
                 "osm_id": pd.to_numeric(fac["id"], errors="coerce").astype("Int64").to_numpy()},
                geometry=shapely.point_on_surface(fac.geometry.values), crs="EPSG:4326",
            ).reset_index(drop=True)
        layers["pois"] = gpd.GeoDataFrame(
            {"osm_id": pd.to_numeric(pois["id"], errors="coerce").astype("Int64").to_numpy(),
             "amenity": amen.to_numpy(),
             "shop": _str(_col(pois, "shop")).to_numpy(),
             "office": _str(_col(pois, "office")).to_numpy()},
            geometry=shapely.point_on_surface(pois.geometry.values), crs="EPSG:4326",
        ).reset_index(drop=True)

    pw = osm.get_data_by_custom_criteria(
        custom_filter={"power": _POWER_VALUES}, filter_type="keep",
        keep_nodes=True, keep_ways=True, keep_relations=True,
    )
    if pw is not None and len(pw):
        pw = pw[pw.geometry.notna()]
        layers["power"] = gpd.GeoDataFrame(
            {"osm_id": pd.to_numeric(pw["id"], errors="coerce").astype("Int64").to_numpy(),
             "power": _str(_col(pw, "power")).to_numpy(),
             "name": _str(_tag(pw, "name")).to_numpy(),
             "voltage": _str(_tag(pw, "voltage")).to_numpy()},
            geometry=pw.geometry.values, crs="EPSG:4326",
        ).reset_index(drop=True)
    for name, gdf in layers.items():
        log.info("%s: %d features from %s", name, len(gdf), path.name)
    return layers


def write_gpkg(layers: dict[str, gpd.GeoDataFrame], out: str | Path) -> Path:
    """Write layers to a GeoPackage atomically (temp file in the same folder, then rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".gpkg", dir=out.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        for name, gdf in layers.items():
            types = set(gdf.geom_type.dropna())
            gtype = "Unknown" if len(types) > 1 else None
            pyogrio.write_dataframe(
                gdf, tmp, layer=name, driver="GPKG", geometry_type=gtype,
                promote_to_multi=False,
            )
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def import_osm(pbf: str | Path, out: str | Path) -> Path:
    """Convert an OSM extract to a citytwin GeoPackage (layers roads, buildings, facilities,
    landuse, pois, power), in WGS84 as OSM stores it. Returns ``out``."""
    return write_gpkg(osm_layers(pbf), out)
