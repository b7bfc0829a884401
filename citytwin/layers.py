"""Reading, checking and projecting a city's GIS layers, and inferring what OSM leaves out.

Input formats
-------------
* **GeoPackage** (``.gpkg``): one file, one layer per name below.
* **Directory** of one file per layer, named ``<layer>.<ext>`` with ext one of ``.parquet``
  (GeoParquet), ``.geojson``/``.json`` (GeoJSON), ``.shp`` (Shapefile), ``.gpkg``.
* **OpenStreetMap** extract (``.osm.pbf``): converted in memory by :mod:`citytwin.osm`
  (the same conversion ``citytwin import-osm`` writes to a GeoPackage).

Layer schema
------------
Every layer must have a CRS. Layers are projected once, at load, to the local UTM zone
(``estimate_utm_crs``; a local Lambert azimuthal equal-area CRS beyond 80° S/84° N); lengths are
then metres. Columns not listed are ignored. Implausible rows are repaired or dropped and
reported under :class:`BuildOptions` (``docs/layers.md``, "Build options and policies").

``roads`` (required) — LineString/MultiLineString; one directed or two-way road each. Lines
are split at every vertex that is an end point of another line or is shared by two or more lines
(T- and X-junctions); lines crossing without a shared vertex are bridges/tunnels, not junctions.

=============  ========  =========  ====================================================
column         required  type       meaning
=============  ========  =========  ====================================================
highway        yes       str        OSM highway class (``primary``, ``residential``, ...)
osmid          no        int        source id (kept on edges)
name           no        str        street name
oneway         no        str/bool   ``yes``/``true``/``1`` = digitised direction only,
                                    ``-1`` = reverse only; else two-way
maxspeed       no        km/h       number or OSM text (``"50"``, ``"30 mph"``); > 0
lanes          no        int        total lanes (both directions for two-way roads); > 0
=============  ========  =========  ====================================================

``buildings`` (required) — Polygon/MultiPolygon footprints.

=============  ========  =========  ====================================================
building       no        str        OSM building tag, or a citytwin use name directly
levels         no        float      storeys above ground; > 0 (else ``building:levels``)
height         no        m          used for levels (height / 3 m) when levels is missing
amenity/shop/  no        str        OSM tags on the footprint itself
office
year_built     no        int        construction year (else from ``start_date``)
start_date     no        str        OSM start_date, first 4 digits used as the year
osm_id         no        int        source id
name           no        str
=============  ========  =========  ====================================================

``facilities`` (optional) — Point (polygons are reduced to a representative point); column
``kind`` (required) in ``fire_station``, ``ambulance_station``, ``hospital``, ``police``;
optional ``name``, ``osm_id``.

``landuse`` (optional) — Polygon; column ``landuse`` (OSM landuse value). Used to infer the use
of buildings whose building tag says nothing (``yes``).

``pois`` (optional) — Point; columns ``amenity``, ``shop``, ``office``. Points inside a footprint
inform its use when neither the building tag nor landuse did.

``power`` (optional) — any geometry; column ``power`` (OSM power value: ``substation``,
``transformer``, ``line``, ``minor_line``, ``cable``, ...); passed to the power graph builder.

Inference
---------
Building use: building tag → landuse polygon containing the footprint → amenity/shop/office
(own tags, then POIs inside) → default (``residential`` for a generic building); an inferred
residential footprint under 40 m² is an outbuilding (``other``). Levels: tag, then height / 3 m,
then a default by use (residential footprints under 160 m² and house tags: 2). Floor area = footprint × levels. Population =
residential floor area / 40 m² (gross; Helsinki's average *dwelling* floor area is ~35 m² per
person, Statistics Finland, *Dwellings and housing conditions* 2022, and gross area adds walls
and common space). Jobs = non-residential floor area / m² per job by use (:data:`M2_PER_JOB`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pydantic import BaseModel, ConfigDict, Field
from pyproj import CRS
from pyproj.exceptions import CRSError

from citytwin.errors import GeodataError

__all__ = [
    "LAYERS",
    "USES",
    "VINTAGES",
    "M2_PER_JOB",
    "M2_PER_PERSON",
    "LoadReport",
    "BuildOptions",
    "local_crs",
    "parse_crs",
    "read_layers",
    "prepare_layers",
    "infer_buildings",
    "file_hash_inputs",
]

log = logging.getLogger(__name__)

LAYERS = ("roads", "buildings", "facilities", "landuse", "pois", "power")
REQUIRED_LAYERS = ("roads", "buildings")
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "roads": ("highway",),
    "buildings": (),
    "facilities": ("kind",),
    "landuse": ("landuse",),
    "pois": (),
    "power": ("power",),
}
GEOM_TYPES: dict[str, tuple[str, ...]] = {
    "roads": ("LineString", "MultiLineString"),
    "buildings": ("Polygon", "MultiPolygon"),
    "facilities": ("Point", "MultiPoint", "Polygon", "MultiPolygon"),
    "landuse": ("Polygon", "MultiPolygon"),
    "pois": ("Point", "MultiPoint", "Polygon", "MultiPolygon"),
    "power": (),  # anything
}
FACILITY_KINDS = ("fire_station", "ambulance_station", "hospital", "police")
USES = (
    "residential",
    "office",
    "retail",
    "industrial",
    "education",
    "health",
    "public",
    "hospitality",
    "other",
)
VINTAGES = ("pre1960", "1960_1990", "1990_2010", "post2010")
DEFAULT_VINTAGE = "1960_1990"
YEAR_RANGE = (1000, 2100)  # construction years outside are typos: vintage by default
M2_PER_PERSON = 40.0
OUTBUILDING_M2 = 40.0  # inferred-residential footprints below this are sheds/garages/saunas
HOUSE_M2 = 160.0  # residential footprints below this default to 2 storeys (a house)
M2_PER_JOB: dict[str, float] = {
    "office": 25.0,
    "retail": 40.0,
    "industrial": 100.0,
    "education": 30.0,
    "health": 30.0,
    "public": 40.0,
    "hospitality": 40.0,
}
DEFAULT_LEVELS: dict[str, float] = {
    "residential": 4,
    "office": 5,
    "retail": 2,
    "industrial": 1,
    "education": 3,
    "health": 4,
    "public": 3,
    "hospitality": 5,
    "other": 1,
}
_EXT = {".parquet": "parquet", ".geoparquet": "parquet", ".geojson": "ogr", ".json": "ogr",
        ".shp": "ogr", ".gpkg": "ogr"}

# OSM building tag -> use ("yes"/"building" say nothing and fall through)
_BUILDING_TAG: dict[str, str] = {}
for _use, _tags in {
    "residential": "residential apartments house detached semidetached_house terrace dormitory "
    "bungalow cabin farm houseboat static_caravan",
    "office": "office commercial",
    "retail": "retail supermarket kiosk shop mall",
    "industrial": "industrial warehouse manufacture factory hangar storage_tank",
    "education": "school university college kindergarten",
    "health": "hospital clinic",
    "public": "public civic government church cathedral chapel mosque synagogue temple "
    "religious train_station transportation fire_station museum sports_hall stadium",
    "hospitality": "hotel",
    "other": "roof shed utility tower service entrance underpass_entrance pavilion ship "
    "glasshouse greenhouse garage garages carport parking hut barn ruins bunker "
    "construction atrium block transformer_tower toilets bridge",
}.items():
    for _t in _tags.split():
        _BUILDING_TAG[_t] = _use
for _u in USES:
    _BUILDING_TAG[_u] = _u

_LANDUSE: dict[str, str] = {
    "residential": "residential",
    "commercial": "office",
    "retail": "retail",
    "industrial": "industrial",
    "education": "education",
    "institutional": "public",
    "civil": "public",
    "religious": "public",
    "military": "public",
}
_AMENITY: dict[str, str] = {}
for _use, _tags in {
    "education": "school university college kindergarten library childcare",
    "health": "hospital clinic doctors dentist pharmacy",
    "public": "townhall police fire_station courthouse place_of_worship theatre cinema "
    "community_centre post_office embassy arts_centre",
    "hospitality": "restaurant cafe bar pub fast_food nightclub hotel food_court",
    "office": "bank",
}.items():
    for _t in _tags.split():
        _AMENITY[_t] = _use
_USE_ORDER = {u: i for i, u in enumerate(USES)}


class BuildOptions(BaseModel):
    """How a city is built: every option of ``City.from_path`` (the scenario's ``[build]``).

    Rows that break a bound are repaired or dropped and reported (``City.report``); a build
    fails only when more than ``max_dropped_share`` of a required layer is dropped.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    crs: str | None = Field(default=None, description="projected CRS to build in (default: "
                            "the local UTM zone, or a local equal-area CRS near the poles)")
    max_attach_m: float = Field(default=1000.0, gt=0, le=100_000, description="farthest a "
                                "building or facility may be from the road network (m); "
                                "farther ones are dropped and reported")
    max_dropped_share: float = Field(default=0.05, ge=0, le=1, description="largest share of "
                                     "buildings (or roads) that may be dropped before the build "
                                     "is refused")
    speeds_kph: dict[str, float] = Field(default_factory=dict, description="free-flow speed per "
                                         "highway class (km/h), overriding the defaults")
    max_levels: float = Field(default=200.0, gt=0, description="storeys above this are "
                              "implausible: repaired to the default for the use and reported")
    max_speed_kph: float = Field(default=160.0, gt=0, le=1000, description="a road maxspeed "
                                 "above this (km/h) is implausible: repaired to the speed of "
                                 "its highway class and reported")
    max_lanes: float = Field(default=20.0, gt=0, le=1000, description="a road lanes value "
                             "above this (both directions) is implausible: repaired to the "
                             "lanes of its highway class and reported")
    max_density_per_km2: float = Field(default=100_000.0, gt=0, description="residents per km2 "
                                       "of built-up area above which the build is refused")
    max_station_snap_m: float = Field(default=500.0, gt=0, description="a facility snapped "
                                      "farther than this to its road node is reported (warning)")
    jobs_per_resident: float = Field(default=0.5, ge=0, le=10, description="jobs inferred per "
                                     "resident when the city has no non-residential building")

    def cache_key(self) -> str:
        return self.model_dump_json()


class LoadReport:
    """What happened while loading: repairs, inferences, drops (shown by ``citytwin info``).

    ``issues`` are the row-level actions: one dict per (layer, action, reason) with ``count``,
    ``rows`` (positions in the layer as read, first 20) and ``ids`` (source ids, first 20);
    ``action`` is ``repaired``, ``dropped`` or ``warning``.
    """

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.inferred: dict[str, int] = {}
        self.issues: list[dict[str, object]] = []

    def note(self, msg: str) -> None:
        log.info(msg)
        self.notes.append(msg)

    def count(self, key: str, n: int) -> None:
        if n:
            self.inferred[key] = self.inferred.get(key, 0) + int(n)

    def issue(self, layer: str, action: str, reason: str, rows: np.ndarray | list[int],
              ids: np.ndarray | list[object] | None = None) -> None:
        """Record that ``rows`` of ``layer`` were repaired/dropped/warned about for ``reason``."""
        rows = [int(r) for r in rows]
        if not rows:
            return
        id_list = [v.item() if hasattr(v, "item") else v for v in
                   (list(ids) if ids is not None else rows)]
        self.issues.append({"layer": layer, "action": action, "reason": reason,
                            "count": len(rows), "rows": rows[:20], "ids": id_list[:20]})
        self.note(f"layer '{layer}': {action} {len(rows)} row(s): {reason} (rows {_rows(rows)})")

    def as_dict(self) -> dict[str, object]:
        return {"notes": list(self.notes), "inferred": dict(self.inferred),
                "issues": [dict(i) for i in self.issues]}

    def __setstate__(self, state: dict[str, object]) -> None:  # caches of older builds
        self.__dict__.update(state)
        self.__dict__.setdefault("issues", [])


def _layer_files(path: Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in sorted(path.iterdir()):
        name, ext = p.stem, p.suffix.lower()
        if name in LAYERS and ext in _EXT and name not in out:
            out[name] = p
    return out


def file_hash_inputs(path: str | Path) -> list[Path]:
    """The files whose bytes define a city built from ``path`` (for the cache key)."""
    path = Path(path)
    if path.is_dir():
        files = []
        for p in _layer_files(path).values():
            files.append(p)
            if p.suffix.lower() == ".shp":
                files += [q for q in sorted(path.glob(p.stem + ".*")) if q != p]
        return files
    return [path]


def read_layers(path: str | Path) -> dict[str, gpd.GeoDataFrame]:
    """Read the raw layers of a city (any supported format), without checks or projection."""
    path = Path(path)
    if not path.exists():
        raise GeodataError([f"file not found: {path}"], source=str(path))
    name = path.name.lower()
    if name.endswith(".osm.pbf") or name.endswith(".pbf"):
        from citytwin.osm import osm_layers

        return osm_layers(path)
    layers: dict[str, gpd.GeoDataFrame] = {}
    if path.is_dir():
        files = _layer_files(path)
        missing = [n for n in REQUIRED_LAYERS if n not in files]
        if missing:
            raise GeodataError(
                [f"missing layer file '{n}.<parquet|geojson|shp|gpkg>'" for n in missing],
                source=str(path),
            )
        for lname, f in files.items():
            if f.suffix.lower() in (".parquet", ".geoparquet"):
                try:
                    layers[lname] = gpd.read_parquet(f)
                except Exception as exc:  # noqa: BLE001 - pyarrow raises many types
                    raise GeodataError([f"layer '{lname}': cannot read {f.name} as GeoParquet "
                                        f"({type(exc).__name__}: {exc})"],
                                       source=str(path)) from exc
            else:
                layers[lname] = _read_ogr(f, None, lname)
        return layers
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".geoparquet", ".geojson", ".json", ".shp"):
        raise GeodataError(
            [f"a single {suffix} file holds one layer; put roads{suffix} and "
             f"buildings{suffix} (and optional layers) in one directory and pass the directory"],
            source=str(path),
        )
    if suffix != ".gpkg":
        raise GeodataError(
            [f"unsupported format '{suffix}': expected .gpkg, .osm.pbf or a directory of layers"],
            source=str(path),
        )
    import pyogrio  # only when reading files: a run from the city cache never does (~0.05 s)

    try:
        available = [str(r[0]) for r in pyogrio.list_layers(path)]
    except Exception as exc:  # noqa: BLE001 - pyogrio raises several types for unreadable files
        raise GeodataError([f"cannot read as GeoPackage: {exc}"], source=str(path)) from exc
    missing = [n for n in REQUIRED_LAYERS if n not in available]
    if missing:
        raise GeodataError(
            [f"missing layer '{n}' (layers present: {available})" for n in missing],
            source=str(path),
        )
    for lname in LAYERS:
        if lname in available:
            layers[lname] = _read_ogr(path, lname, lname)
    return layers


def _read_ogr(path: Path, layer: str | None, lname: str) -> gpd.GeoDataFrame:
    """Read one OGR layer; text that is not UTF-8 is decoded as Latin-1 (every byte is a
    character there), and anything unreadable is a GeodataError naming the layer."""
    import pyogrio

    try:
        return pyogrio.read_dataframe(path, layer=layer, use_arrow=True)
    except Exception as exc:  # noqa: BLE001 - Arrow/GDAL raise many types for bad bytes
        first = exc
    try:
        gdf = pyogrio.read_dataframe(path, layer=layer, use_arrow=False, encoding="latin-1")
    except Exception as exc:  # noqa: BLE001
        raise GeodataError([f"layer '{lname}': cannot read ({type(first).__name__}: {first}; "
                            f"{type(exc).__name__}: {exc})"], source=str(path)) from exc
    log.warning("%s layer %s: text is not valid UTF-8 (%s); read as Latin-1", path, lname, first)
    gdf.attrs["citytwin_note"] = (f"text is not valid UTF-8 ({type(first).__name__}); "
                                  "decoded as Latin-1 (check the names of these rows)")
    return gdf


def _check_layer(
    name: str, gdf: gpd.GeoDataFrame, problems: list[str], report: LoadReport
) -> gpd.GeoDataFrame:
    """Check CRS, emptiness, columns and geometries of one layer; repair what make_valid can."""
    if gdf.crs is None:
        problems.append(f"layer '{name}': no CRS (set one, e.g. EPSG:4326)")
    if len(gdf) == 0:
        if name in REQUIRED_LAYERS:
            problems.append(f"layer '{name}': is empty (need at least one feature)")
        return gdf
    for col in REQUIRED_COLUMNS[name]:
        if col not in gdf.columns:
            problems.append(
                f"layer '{name}': missing required column '{col}' "
                f"(columns present: {[c for c in gdf.columns if c != 'geometry']})"
            )
    geom = gdf.geometry.values
    empty = shapely.is_missing(geom) | shapely.is_empty(geom)
    if empty.any():
        rows = np.flatnonzero(empty)
        if name in REQUIRED_LAYERS:
            problems.append(
                f"layer '{name}': {len(rows)} feature(s) without geometry, rows {_rows(rows)}"
            )
        else:
            report.issue(name, "dropped", "no geometry", rows, _ids(gdf, rows))
        gdf = gdf.loc[~empty]
        geom = gdf.geometry.values
    allowed = GEOM_TYPES[name]
    if allowed:
        types = shapely.get_type_id(geom)
        names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                          "MultiLineString", "MultiPolygon", "GeometryCollection"])[types]
        wrong = ~np.isin(names, allowed)
        if wrong.any():
            rows = np.flatnonzero(wrong)
            problems.append(
                f"layer '{name}': rows {_rows(rows)} have geometry "
                f"{sorted(set(names[wrong].tolist()))}, expected one of {list(allowed)}"
            )
    invalid = ~shapely.is_valid(geom)
    if name == "roads":  # a zero-length line is the road builder's to drop (and report)
        invalid &= shapely.length(geom) > 0
    if invalid.any() and name in ("buildings", "landuse", "roads"):
        rows = np.flatnonzero(invalid)
        fixed = shapely.make_valid(geom[invalid])
        if name in ("buildings", "landuse"):
            fixed = np.array([_polygonal(g) for g in fixed], dtype=object)
        ok = ~(shapely.is_missing(fixed) | shapely.is_empty(fixed))
        new = geom.copy()
        new[invalid] = fixed
        gdf = gdf.set_geometry(gpd.GeoSeries(new, index=gdf.index, crs=gdf.crs))
        as_read = gdf.index.to_numpy()[rows]
        reason = shapely.is_valid_reason(geom[invalid][ok])
        kinds = sorted({str(r).split("[")[0].strip() for r in reason})
        report.issue(name, "repaired", f"invalid geometry ({', '.join(kinds[:3])}, e.g. a "
                     "'bow-tie' ring crossing itself); repaired with make_valid",
                     as_read[ok], _ids(gdf, rows[ok]))
        if (~ok).any():
            problems.append(
                f"layer '{name}': rows {_rows(as_read[~ok])} have invalid geometry that "
                "make_valid cannot turn into a usable shape"
            )
    if name in ("buildings", "roads") and len(gdf):
        gdf = _drop_duplicates(name, gdf, report)
    return gdf


def _ids(gdf: gpd.GeoDataFrame, rows: np.ndarray | list[int]) -> list[object]:
    """Source ids (osm_id/osmid column, else the row) of positional ``rows``."""
    for col in ("osm_id", "osmid", "id"):
        if col in gdf.columns:
            vals = gdf[col].iloc[list(rows)]
            return [None if pd.isna(v) else v for v in vals.tolist()]
    return [int(r) for r in rows]


def _drop_duplicates(name: str, gdf: gpd.GeoDataFrame, report: LoadReport) -> gpd.GeoDataFrame:
    """Drop features whose geometry repeats an earlier one exactly (after normalising vertex
    order): a doubled import would double the population or the road capacity."""
    key = pd.Series(shapely.to_wkb(shapely.normalize(gdf.geometry.values)), index=gdf.index)
    dup = key.duplicated(keep="first").to_numpy()
    if dup.any():
        pos = np.flatnonzero(dup)
        report.issue(name, "dropped", "duplicate geometry (same shape as an earlier row)",
                     gdf.index.to_numpy()[pos], _ids(gdf, pos))
        gdf = gdf.loc[~dup]
    return gdf


def _polygonal(g: shapely.Geometry) -> shapely.Geometry | None:
    if g is None:
        return None
    if g.geom_type in ("Polygon", "MultiPolygon"):
        return g
    polys = [p for p in getattr(g, "geoms", []) if p.geom_type in ("Polygon", "MultiPolygon")]
    if not polys:
        return None
    return shapely.union_all(polys)


def _rows(rows: np.ndarray | list[int], limit: int = 10) -> str:
    rows = [int(r) for r in rows]
    head = ", ".join(str(r) for r in rows[:limit])
    return head + (f", ... ({len(rows)} in all)" if len(rows) > limit else "")


def prepare_layers(
    layers: dict[str, gpd.GeoDataFrame], *, source: str, crs: CRS | str | None = None,
    options: BuildOptions | None = None,
) -> tuple[dict[str, gpd.GeoDataFrame], CRS, LoadReport]:
    """Check every layer (collecting all problems), repair geometries, project to metric UTM.

    Implausible road tags (maxspeed, lanes, highway, oneway) and unknown power values are
    repaired or dropped and reported (:func:`_check_road_tags`, :func:`_check_power_kinds`);
    layers in different CRSs are reprojected with a warning, and an error when they then lie
    far apart (a mislabelled CRS); lon/lat written in the wrong order is an error.
    Returns the projected layers (0..n-1 index), the CRS and a :class:`LoadReport`.
    Raises :class:`GeodataError` listing every problem found.
    """
    options = options if options is not None else BuildOptions()
    report = LoadReport()
    problems: list[str] = []
    for name in REQUIRED_LAYERS:
        if name not in layers:
            problems.append(f"missing layer '{name}'")
    checked: dict[str, gpd.GeoDataFrame] = {}
    for name in LAYERS:
        if name in layers:
            checked[name] = _check_layer(name, layers[name], problems, report)
    if "facilities" in checked and "kind" in checked["facilities"].columns:
        kinds = checked["facilities"]["kind"].astype(str)
        bad = ~kinds.isin(FACILITY_KINDS)
        if bad.any():
            problems.append(
                f"layer 'facilities': rows {_rows(np.flatnonzero(bad.to_numpy()))} have kind "
                f"{sorted(set(kinds[bad]))}, expected one of {list(FACILITY_KINDS)}"
            )
    if "roads" in checked and len(checked["roads"]):
        checked["roads"] = _check_road_tags(checked["roads"], report, options)
    if "power" in checked and len(checked["power"]) and "power" in checked["power"].columns:
        checked["power"] = _check_power_kinds(checked["power"], report)
    for name, gdf in checked.items():
        if gdf.crs is not None and len(gdf):
            _check_degrees(name, gdf, problems)
        msg = layers[name].attrs.get("citytwin_note") if name in layers else None
        if msg:
            report.issue(name, "repaired", str(msg), _non_ascii_rows(gdf), None)
    if not problems:
        _check_axis_order(checked, problems)
    if problems:
        raise GeodataError(problems, source=source)
    src_crs = _crs_labels(checked, report)
    crs = local_crs(checked["roads"]) if crs is None else parse_crs(crs, source=source)
    if not crs.is_projected:
        raise GeodataError([f"target CRS {crs.to_string()} is not projected (metres)"], source=source)
    out: dict[str, gpd.GeoDataFrame] = {}
    for name, gdf in checked.items():
        if len(gdf) and not CRS.from_user_input(gdf.crs).equals(crs):
            src = CRS.from_user_input(gdf.crs)
            gdf = gdf.to_crs(crs)
            xy, part = shapely.get_coordinates(gdf.geometry.values, return_index=True)
            lost = np.unique(part[~np.isfinite(xy).all(axis=1)])
            if len(lost):
                problems.append(
                    f"layer '{name}': rows {_rows(gdf.index.to_numpy()[lost])} cannot be "
                    f"projected from {src.to_string()} to {crs.to_string()} (coordinates "
                    "outside the area of the layer's CRS: is that CRS label right?)")
                continue
        else:
            gdf = gdf.set_crs(crs, allow_override=True)
        gdf = gdf.copy()
        gdf["_row"] = np.asarray(gdf.index, dtype=np.int64)  # row as read, for reports
        out[name] = gdf.reset_index(drop=True)
    _check_crs_mix(out, src_crs, problems)
    if problems:
        raise GeodataError(problems, source=source)
    return out, crs, report


def parse_crs(crs: CRS | str, *, source: str = "") -> CRS:
    """``crs`` as a pyproj CRS; a GeodataError (not a CRSError) when it is unknown."""
    try:
        return CRS.from_user_input(crs)
    except (CRSError, TypeError, ValueError) as exc:
        raise GeodataError([f"crs: unknown coordinate reference system {str(crs)!r:.60} "
                            f"(expected e.g. 'EPSG:32635' or a PROJ string; {exc})"],
                           source=source or None) from exc


def local_crs(gdf: gpd.GeoDataFrame) -> CRS:
    """The metric CRS a city is built in: its UTM zone where UTM is defined (80° S to 84° N),
    else a Lambert azimuthal equal-area CRS centred on the layer (polar cities)."""
    lonlat = gdf.to_crs(4326) if not CRS.from_user_input(gdf.crs).equals(CRS(4326)) else gdf
    minx, miny, maxx, maxy = lonlat.total_bounds
    lon, lat = (minx + maxx) / 2.0, (miny + maxy) / 2.0
    if -80.0 <= miny and maxy <= 84.0:
        try:
            return CRS.from_user_input(lonlat.estimate_utm_crs())
        except RuntimeError:  # pyproj found no zone: fall through to a local projection
            pass
    return CRS.from_proj4(f"+proj=laea +lat_0={lat:.6f} +lon_0={lon:.6f} +x_0=0 +y_0=0 "
                          "+datum=WGS84 +units=m +no_defs")


def _check_degrees(name: str, gdf: gpd.GeoDataFrame, problems: list[str]) -> None:
    """A geographic layer whose numbers are not degrees (metres labelled EPSG:4326)."""
    crs = CRS.from_user_input(gdf.crs)
    if not crs.is_geographic:
        return
    x, y = shapely.get_coordinates(gdf.geometry.values).T
    bad = (np.abs(x) > 180.0) | (np.abs(y) > 90.0)
    if bad.any() and np.abs(x).max() <= 90.0 and np.abs(y).max() <= 180.0:
        problems.append(
            f"layer '{name}': the CRS says {crs.to_string()} (degrees) but y reaches "
            f"{float(np.max(np.abs(y))):.4f}, beyond ±90, while x stays within ±90: these look "
            "like latitude/longitude in the wrong order; write x = longitude, y = latitude "
            "(e.g. GDAL OGR_CT_FORCE_TRADITIONAL_GIS_ORDER=YES, or swap the axes in your GIS)")
    elif bad.any():
        problems.append(
            f"layer '{name}': the CRS says {crs.to_string()} (degrees) but coordinates reach "
            f"x = {float(np.max(np.abs(x))):.0f}, y = {float(np.max(np.abs(y))):.0f}, outside "
            "±180/±90: these look like metres; set the layer's real CRS (e.g. its UTM zone)"
        )


#: OSM ``oneway`` values (https://wiki.openstreetmap.org/wiki/Key:oneway); anything else is
#: reported and read as two-way. ``reversible``/``alternating`` (time-dependent) are two-way.
_ONEWAY_VALUES = ("", "yes", "true", "1", "t", "-1", "reverse", "no", "false", "0", "f",
                  "reversible", "alternating")
#: OSM ``power=*`` values (https://wiki.openstreetmap.org/wiki/Key:power); other rows are dropped.
POWER_VALUES = ("substation", "sub_station", "transformer", "line", "minor_line", "cable",
                "tower", "pole", "portal", "catenary_mast", "insulator", "terminal", "busbar",
                "bay", "switch", "switchgear", "compensator", "converter", "connection",
                "cable_distribution_cabinet", "box", "plant", "generator", "heliostat")
_NUMBER = r"^\s*(-?\d+(?:\.\d+)?)"


def _given(gdf: gpd.GeoDataFrame, col: str) -> np.ndarray:
    """Rows where ``col`` holds a value (not null, not blank, not the text 'nan'/'none')."""
    t = _text(gdf, col)
    return (t != "") & ~np.isin(t, ["nan", "none", "null", "<na>"])


def _leading_number(gdf: gpd.GeoDataFrame, col: str) -> np.ndarray:
    s = gdf[col]
    if pd.api.types.is_numeric_dtype(s):
        return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    return pd.to_numeric(s.astype(object).where(s.notna(), "").astype(str).str.extract(
        _NUMBER, expand=False), errors="coerce").to_numpy(dtype=float)


def _values(v: np.ndarray, limit: int = 3) -> str:
    u = sorted({str(x) for x in v})
    return ", ".join(repr(x[:30]) for x in u[:limit]) + (", ..." if len(u) > limit else "")


def _blank(gdf: gpd.GeoDataFrame, col: str, mask: np.ndarray) -> gpd.GeoDataFrame:
    """``col`` emptied (null) on ``mask``, so the builder falls back to its default."""
    if not mask.any():
        return gdf
    gdf = gdf.copy()
    if pd.api.types.is_numeric_dtype(gdf[col]):
        gdf[col] = gdf[col].astype(float)
        gdf.loc[mask, col] = np.nan
    else:
        gdf[col] = gdf[col].astype(object)
        gdf.loc[mask, col] = None
    return gdf


def _check_road_tags(gdf: gpd.GeoDataFrame, report: LoadReport,
                     options: BuildOptions) -> gpd.GeoDataFrame:
    """Repair (and report with rows) road tags a GIS user would not believe: a missing or unknown
    ``highway`` class, ``maxspeed`` above ``options.max_speed_kph``, ``lanes`` that is not a
    number or above ``options.max_lanes``, a ``oneway`` value OSM does not define. The road
    builder then uses its class defaults (:data:`citytwin.network.roads.HIGHWAY_DEFAULTS`)."""
    from citytwin.network.roads import HIGHWAY_DEFAULTS, parse_maxspeed

    rows = gdf.index.to_numpy()

    def issue(mask: np.ndarray, reason: str) -> None:
        report.issue("roads", "repaired", reason, rows[mask], _ids(gdf, np.flatnonzero(mask)))

    if "highway" in gdf.columns:
        missing = ~_given(gdf, "highway")
        if missing.any():
            issue(missing, "highway missing (expected an OSM highway class such as 'residential');"
                  " treated as 'unclassified'")
            gdf = gdf.copy()
            gdf["highway"] = gdf["highway"].astype(object)
            gdf.loc[missing, "highway"] = "unclassified"
        hw = _text(gdf, "highway")
        unknown = ~np.isin(hw, list(HIGHWAY_DEFAULTS))
        if unknown.any():
            issue(unknown, f"highway class {_values(hw[unknown])} unknown (expected an OSM "
                  "class such as 'primary' or 'residential'); speed, lanes and capacity of "
                  "'unclassified'")
    if "maxspeed" in gdf.columns:
        speed = parse_maxspeed(gdf["maxspeed"])
        high = speed > options.max_speed_kph
        if high.any():
            issue(high, f"maxspeed above {options.max_speed_kph:g} km/h (implausible, up to "
                  f"{float(np.nanmax(speed[high])):g}; [build] max_speed_kph); speed of the "
                  "highway class")
            gdf = _blank(gdf, "maxspeed", high)
    if "lanes" in gdf.columns:
        lanes = _leading_number(gdf, "lanes")
        text = _text(gdf, "lanes")
        unparsed = _given(gdf, "lanes") & np.isnan(lanes)
        if unparsed.any():
            issue(unparsed, f"lanes {_values(text[unparsed])} is not a number of lanes; "
                  "lanes of the highway class")
        high = lanes > options.max_lanes
        if high.any():
            issue(high, f"lanes above {options.max_lanes:g} (implausible, up to "
                  f"{float(np.nanmax(lanes[high])):g}; [build] max_lanes); lanes of the "
                  "highway class")
        gdf = _blank(gdf, "lanes", unparsed | high)
    if "oneway" in gdf.columns and not pd.api.types.is_bool_dtype(gdf["oneway"]):
        ow = _text(gdf, "oneway")
        odd = _given(gdf, "oneway") & ~np.isin(ow, _ONEWAY_VALUES)
        if odd.any():
            issue(odd, f"oneway {_values(ow[odd])} is not an OSM oneway value (yes, no, -1, "
                  "reversible); two-way")
            gdf = _blank(gdf, "oneway", odd)
    return gdf


def _check_power_kinds(gdf: gpd.GeoDataFrame, report: LoadReport) -> gpd.GeoDataFrame:
    """Drop (and report) power rows whose ``power`` value is not an OSM power=* value."""
    kind = _text(gdf, "power")
    bad = ~np.isin(kind, POWER_VALUES)
    if bad.any():
        report.issue("power", "dropped", f"power {_values(kind[bad])} is not an OSM power=* "
                     f"value (expected e.g. substation, transformer, line, cable)",
                     gdf.index.to_numpy()[bad], _ids(gdf, np.flatnonzero(bad)))
        gdf = gdf.loc[~bad]
    return gdf


def _non_ascii_rows(gdf: gpd.GeoDataFrame) -> list[int]:
    """Rows (as read) with a non-ASCII character in a text column (after a Latin-1 decode)."""
    hit = np.zeros(len(gdf), dtype=bool)
    for col in gdf.columns:
        if col == gdf.geometry.name or gdf[col].dtype != object:
            continue
        s = gdf[col]
        hit |= s.where(s.notna(), "").astype(str).str.contains(r"[^\x00-\x7f]").to_numpy()
    rows = gdf.index.to_numpy()
    return [int(r) for r in (rows[hit] if hit.any() else rows)]


def _right_angle_share(geoms: np.ndarray, tol_deg: float = 2.0) -> tuple[float, int]:
    """Share of polygon corners within ``tol_deg`` of 90° (straight-through vertices not
    counted) and the number of corners; angles are only meaningful in a conformal CRS."""
    rings = shapely.get_exterior_ring(shapely.get_parts(geoms))
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    if len(xy) < 4:
        return 0.0, 0
    same = ring[1:] == ring[:-1]
    edges = (xy[1:] - xy[:-1])[same]
    eid = ring[1:][same]
    keep = np.hypot(edges[:, 0], edges[:, 1]) > 0
    edges, eid = edges[keep], eid[keep]
    if len(edges) < 2:
        return 0.0, 0
    # each edge with the next edge of its ring (the last with the first: rings are closed)
    start = np.r_[0, np.flatnonzero(eid[1:] != eid[:-1]) + 1]
    nxt = np.arange(1, len(edges) + 1)
    ends = np.r_[start[1:], len(edges)] - 1
    nxt[ends] = start
    a, b = edges, edges[nxt]
    cos = np.abs((a * b).sum(axis=1)) / (np.hypot(a[:, 0], a[:, 1]) * np.hypot(b[:, 0], b[:, 1]))
    corner = cos < np.cos(np.radians(15.0))  # a real turn, not a vertex on a straight side
    n = int(corner.sum())
    if n == 0:
        return 0.0, 0
    right = cos[corner] < np.sin(np.radians(tol_deg))
    return float(right.sum()) / n, n


def _check_axis_order(checked: dict[str, gpd.GeoDataFrame], problems: list[str]) -> None:
    """Latitude/longitude written as x/y in the wrong order: building corners, which are mostly
    right angles in a true (conformal) projection, stop being right angles when lon and lat are
    swapped (the swap stretches one axis by ~1/cos(latitude)). An error when the swapped reading
    makes far more corners right angles than the reading as given."""
    b = checked.get("buildings")
    if b is None or not len(b) or b.crs is None or not CRS.from_user_input(b.crs).is_geographic:
        return
    geoms = b.geometry.values
    if len(geoms) > 2000:  # an even, deterministic sample is plenty
        geoms = geoms[np.linspace(0, len(geoms) - 1, 2000).astype(np.int64)]
    x, y = shapely.get_coordinates(geoms).T
    if not len(x) or np.abs(x).max() > 90.0:  # x is beyond any latitude: cannot be swapped
        return
    def conformal(g: np.ndarray) -> np.ndarray:  # a transverse Mercator on the data (cheap)
        lon, lat = np.median(shapely.get_coordinates(g), axis=0)
        tm = CRS.from_proj4(f"+proj=tmerc +lat_0={lat:.6f} +lon_0={lon:.6f} +k=1 +x_0=0 "
                            "+y_0=0 +datum=WGS84 +units=m +no_defs")
        return gpd.GeoSeries(g, crs=b.crs).to_crs(tm).values

    as_given, n = _right_angle_share(conformal(geoms))
    as_swapped, _ = _right_angle_share(conformal(shapely.transform(geoms, lambda c: c[:, ::-1])))
    if n >= 8 and as_swapped >= 0.5 and as_given <= as_swapped / 4:
        problems.append(
            f"layer 'buildings': coordinates look like latitude/longitude in the wrong order "
            f"(x = {float(np.median(x)):.4f}, y = {float(np.median(y)):.4f} read as lon/lat): with "
            f"x and y swapped {as_swapped:.0%} of the footprint corners are right angles, as "
            f"given only {as_given:.0%}; write x = longitude, y = latitude (e.g. GDAL "
            "OGR_CT_FORCE_TRADITIONAL_GIS_ORDER=YES, or swap the axes in your GIS)")


def _crs_labels(checked: dict[str, gpd.GeoDataFrame], report: LoadReport) -> dict[str, CRS]:
    """The CRS each layer says it is in; a warning for every layer whose CRS differs from the
    one most layers share (they are reprojected, but a mix is often a mislabelled layer)."""
    labels = {n: CRS.from_user_input(g.crs) for n, g in checked.items()
              if g.crs is not None and len(g)}
    groups: list[list[str]] = []
    for n, c in labels.items():
        for grp in groups:
            if labels[grp[0]].equals(c):
                grp.append(n)
                break
        else:
            groups.append([n])
    if len(groups) > 1:
        main = max(groups, key=lambda grp: (len(grp), "roads" in grp))
        ref = labels[main[0]]
        for grp in groups:
            if grp is main:
                continue
            for n in grp:
                report.issue(n, "warning", f"CRS {labels[n].to_string()} differs from "
                             f"{ref.to_string()} of layers {main}; reprojected (check the "
                             "labels if the layers do not line up)", checked[n].index.to_numpy(),
                             None)
    return labels


def _check_crs_mix(out: dict[str, gpd.GeoDataFrame], labels: dict[str, CRS],
                   problems: list[str], far_m: float = 10_000.0) -> None:
    """A layer labelled with another CRS than the roads that lies far from them once both are
    reprojected: one of the two labels is wrong (the numbers match some other CRS)."""
    if "roads" not in labels or "roads" not in out or not len(out["roads"]):
        return
    rb = shapely.box(*out["roads"].total_bounds)
    for n, g in out.items():
        if n == "roads" or n not in labels or labels[n].equals(labels["roads"]) or not len(g):
            continue
        d = float(shapely.distance(rb, shapely.box(*g.total_bounds)))
        if d > far_m:
            problems.append(
                f"layer '{n}' (CRS {labels[n].to_string()}) lies {d / 1000:.0f} km from layer "
                f"'roads' (CRS {labels['roads'].to_string()}) once both are reprojected: one of "
                "the two CRS labels is probably wrong; set the CRS the coordinates are really in")


def _text(gdf: gpd.GeoDataFrame, col: str) -> np.ndarray:
    if col not in gdf.columns:
        return np.full(len(gdf), "", dtype=object)
    s = gdf[col]
    return s.where(s.notna(), "").astype(str).str.strip().str.lower().to_numpy(dtype=object)


def _number(gdf: gpd.GeoDataFrame, col: str) -> np.ndarray:
    if col not in gdf.columns:
        return np.full(len(gdf), np.nan)
    s = gdf[col]
    if s.dtype == object or pd.api.types.is_string_dtype(s):
        s = s.astype(str).str.extract(r"(-?\d+(?:\.\d+)?)", expand=False)
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)


def _category_from_points(
    polys: gpd.GeoDataFrame, pois: gpd.GeoDataFrame | None, need: np.ndarray
) -> np.ndarray:
    """Use per polygon from amenity/shop/office POIs inside it (most frequent, ties by USES order)."""
    out = np.full(len(polys), "", dtype=object)
    if pois is None or len(pois) == 0 or not need.any():
        return out
    cat = np.full(len(pois), "", dtype=object)
    office, shop, amen = _text(pois, "office"), _text(pois, "shop"), _text(pois, "amenity")
    cat[office != ""] = "office"
    cat[shop != ""] = "retail"
    mapped = np.array([_AMENITY.get(a, "") for a in amen], dtype=object)
    cat[mapped != ""] = mapped[mapped != ""]
    keep = cat != ""
    if not keep.any():
        return out
    pts = shapely.point_on_surface(pois.geometry.values[keep])
    cat = cat[keep]
    idx = np.flatnonzero(need)
    tree = shapely.STRtree(pts)
    pi, bi = tree.query(polys.geometry.values[idx], predicate="contains")
    if len(pi) == 0:
        return out
    df = pd.DataFrame({"b": idx[pi], "c": cat[bi]})
    df["o"] = df["c"].map(_USE_ORDER)
    counts = df.groupby(["b", "c", "o"]).size().reset_index(name="n")
    counts = counts.sort_values(["b", "n", "o"], ascending=[True, False, True])
    first = counts.drop_duplicates("b")
    out[first["b"].to_numpy()] = first["c"].to_numpy()
    return out


def infer_buildings(
    buildings: gpd.GeoDataFrame,
    *,
    landuse: gpd.GeoDataFrame | None = None,
    pois: gpd.GeoDataFrame | None = None,
    report: LoadReport | None = None,
    source: str = "",
    options: BuildOptions | None = None,
) -> gpd.GeoDataFrame:
    """Contract columns for buildings (projected CRS): use, levels, floor area, people, jobs.

    Storeys that are not positive or above ``options.max_levels`` are repaired to the default
    for the use (and reported with their rows); a residential density above
    ``options.max_density_per_km2`` of built-up area is a GeodataError.
    """
    report = report if report is not None else LoadReport()
    options = options if options is not None else BuildOptions()
    n = len(buildings)
    problems: list[str] = []
    tag = _text(buildings, "building")
    use = np.array([_BUILDING_TAG.get(t, "") for t in tag], dtype=object)
    src = np.where(use != "", "building_tag", "").astype(object)
    report.count("use from building tag", int((use != "").sum()))

    need = use == ""
    if need.any() and landuse is not None and len(landuse):
        lu = np.array([_LANDUSE.get(v, "") for v in _text(landuse, "landuse")], dtype=object)
        ok = lu != ""
        if ok.any():
            lpoly = landuse.geometry.values[ok]
            larea = shapely.area(lpoly)
            lu = lu[ok]
            pts = shapely.point_on_surface(buildings.geometry.values[need])
            pi, li = shapely.STRtree(lpoly).query(pts, predicate="within")
            if len(pi):
                df = pd.DataFrame({"p": pi, "l": li, "a": larea[li]}).sort_values(["p", "a", "l"])
                df = df.drop_duplicates("p")  # smallest containing polygon wins
                idx = np.flatnonzero(need)[df["p"].to_numpy()]
                use[idx] = lu[df["l"].to_numpy()]
                src[idx] = "landuse"
                report.count("use from landuse", len(idx))

    need = use == ""
    if need.any():
        own = np.full(n, "", dtype=object)
        office, shop, amen = (_text(buildings, c) for c in ("office", "shop", "amenity"))
        own[office != ""] = "office"
        own[shop != ""] = "retail"
        mapped = np.array([_AMENITY.get(a, "") for a in amen], dtype=object)
        own[mapped != ""] = mapped[mapped != ""]
        own[~need] = ""
        from_pts = _category_from_points(buildings, pois, need & (own == ""))
        own = np.where(own != "", own, from_pts)
        got = need & (own != "")
        use[got] = own[got]
        src[got] = "amenity"
        report.count("use from amenity/shop/office", int(got.sum()))

    need = use == ""
    use[need] = "residential"
    src[need] = "default"
    report.count("use by default (residential)", int(need.sum()))

    footprint = shapely.area(buildings.geometry.values)
    # an untagged footprint smaller than a dwelling is an outbuilding (shed, garage, sauna)
    small = (use == "residential") & (src != "building_tag") & (footprint < OUTBUILDING_M2)
    use[small] = "other"
    report.count(f"outbuilding (inferred residential, footprint < {OUTBUILDING_M2:g} m2) -> other",
                 int(small.sum()))
    rows_in = (buildings["_row"].to_numpy() if "_row" in buildings.columns
               else np.arange(n))

    def issue(mask: np.ndarray, reason: str, action: str = "repaired") -> None:
        report.issue("buildings", action, reason, rows_in[mask],
                     _ids(buildings, np.flatnonzero(mask)))

    known_tag = np.isin(tag, list(_BUILDING_TAG)) | np.isin(tag, ["", "yes", "building",
                                                                  "nan", "none"])
    if (~known_tag).any():
        issue(~known_tag, f"building tag {_values(tag[~known_tag])} is not an OSM building "
              "value citytwin knows; use from landuse, amenity/shop/office or the default")
    levels = _number(buildings, "levels")
    for col in ("levels", "building:levels", "height", "year_built"):
        if col in buildings.columns:
            unparsed = _given(buildings, col) & np.isnan(_number(buildings, col))
            if unparsed.any():
                then = ("vintage by default" if col == "year_built" else
                        "from height or the default for the use" if col != "height" else
                        "not used")
                issue(unparsed, f"{col} {_values(_text(buildings, col)[unparsed])} is not a "
                      f"number; {then}")
    if "building:levels" in buildings.columns:  # the OSM key, as osmnx/ogr2ogr exports name it
        osm_levels = _number(buildings, "building:levels")
        levels = np.where(np.isnan(levels), osm_levels, levels)
        report.count("levels from building:levels", int((~np.isnan(osm_levels)).sum()))
    bad = levels <= 0
    if bad.any():
        report.issue("buildings", "repaired", "levels <= 0 (expected a positive number of "
                     "storeys); default for the use", rows_in[bad], _ids(buildings, np.flatnonzero(bad)))
        levels[bad] = np.nan
    bad = levels > options.max_levels
    if bad.any():
        report.issue("buildings", "repaired", f"levels above {options.max_levels:g} "
                     "(implausible); default for the use", rows_in[bad],
                     _ids(buildings, np.flatnonzero(bad)))
        levels[bad] = np.nan
    miss = np.isnan(levels)
    height = _number(buildings, "height")
    bad = height <= 0
    if bad.any():
        issue(bad, "height <= 0 m (expected metres above ground); not used")
        height[bad] = np.nan
    bad = miss & (height / 3.0 > options.max_levels)
    if bad.any():
        issue(bad, f"height above {3 * options.max_levels:g} m (height / 3 m gives more than "
              f"{options.max_levels:g} storeys, [build] max_levels); default for the use")
        height[bad] = np.nan
    from_h = miss & (height > 0)
    levels[from_h] = np.maximum(1.0, np.round(height[from_h] / 3.0))
    report.count("levels from height", int(from_h.sum()))
    miss = np.isnan(levels)
    house = np.isin(tag, ["house", "detached", "semidetached_house", "terrace", "bungalow"])
    defaults = np.array([DEFAULT_LEVELS[u] for u in use], dtype=float)
    defaults[house] = 2.0
    defaults[(use == "residential") & (footprint < HOUSE_M2)] = 2.0
    levels[miss] = defaults[miss]
    report.count("levels by default for use", int(miss.sum()))

    year = _number(buildings, "year_built")
    if "start_date" in buildings.columns:
        sd = buildings["start_date"].astype(str).str.extract(r"(\d{4})", expand=False)
        sd = pd.to_numeric(sd, errors="coerce").to_numpy(dtype=float)
        no_year = np.isnan(year) & _given(buildings, "start_date") & np.isnan(sd)
        if no_year.any():
            issue(no_year, f"start_date {_values(_text(buildings, 'start_date')[no_year])} has "
                  f"no 4-digit year; vintage by default ({DEFAULT_VINTAGE})")
        year = np.where(np.isnan(year), sd, year)
    odd = (year < YEAR_RANGE[0]) | (year > YEAR_RANGE[1])
    if odd.any():
        issue(odd, f"construction year outside {YEAR_RANGE[0]}..{YEAR_RANGE[1]} (up to "
              f"{float(np.nanmax(np.abs(year[odd]))):g}); vintage by default ({DEFAULT_VINTAGE})")
        year[odd] = np.nan
    vintage = np.full(n, DEFAULT_VINTAGE, dtype=object)
    known = ~np.isnan(year)
    vintage[known & (year < 1960)] = "pre1960"
    vintage[known & (year >= 1960) & (year < 1990)] = "1960_1990"
    vintage[known & (year >= 1990) & (year < 2010)] = "1990_2010"
    vintage[known & (year >= 2010)] = "post2010"
    report.count(f"vintage by default ({DEFAULT_VINTAGE})", int((~known).sum()))
    if problems:
        raise GeodataError(problems, source=source)

    floor = footprint * levels
    res = use == "residential"
    population = np.where(res, np.rint(floor / M2_PER_PERSON), 0).astype(np.int64)
    if n and population.sum():
        hull = shapely.convex_hull(shapely.union_all(buildings.geometry.values))
        area_km2 = max(float(shapely.area(hull)), float(footprint.sum())) / 1e6
        density = float(population.sum()) / area_km2
        if density > options.max_density_per_km2:
            top = np.argsort(-population, kind="stable")[:10]
            problems.append(
                f"layer 'buildings': {int(population.sum())} residents on {area_km2:.3f} km2 of "
                f"built-up area is {density:,.0f} per km2, above the bound of "
                f"{options.max_density_per_km2:,.0f} ([build] max_density_per_km2); check levels "
                f"and footprints of the most populous rows {_rows(rows_in[top])}"
            )
            raise GeodataError(problems, source=source)
    per_job = np.array([M2_PER_JOB.get(u, np.inf) for u in use])
    jobs = np.rint(np.where(res, 0.0, floor / per_job)).astype(np.int64)

    osm_id = buildings["osm_id"] if "osm_id" in buildings.columns else pd.Series(
        np.arange(n), index=buildings.index)
    num_id = pd.to_numeric(osm_id, errors="coerce")
    dup = (num_id.notna() & num_id.duplicated(keep="first")).to_numpy()
    if dup.any():
        issue(dup, "osm_id repeats an earlier row's (ids are not unique; the rows are kept, "
              "each with its own building_id)", action="warning")
    name = _text_raw(buildings, "name")
    out = gpd.GeoDataFrame(
        {
            "osm_id": pd.to_numeric(osm_id, errors="coerce").fillna(-1).astype(np.int64).to_numpy(),
            "name": name,
            "use": pd.Categorical(use, categories=USES),
            "use_source": _use_source_cat(src),
            "levels": levels,
            "footprint_m2": footprint,
            "floor_area_m2": floor,
            "year_built": year,
            "vintage": pd.Categorical(vintage, categories=VINTAGES),
            "population": population,
            "jobs": jobs,
        },
        geometry=buildings.geometry.values,
        crs=buildings.crs,
    )
    out.index = pd.RangeIndex(n, name="building_id")
    return out


def _use_source_cat(src: np.ndarray) -> pd.Categorical:
    return pd.Categorical(src, categories=["building_tag", "landuse", "amenity", "default"])


def _text_raw(gdf: gpd.GeoDataFrame, col: str) -> np.ndarray:
    if col not in gdf.columns:
        return np.full(len(gdf), "", dtype=object)
    s = gdf[col]
    return s.where(s.notna(), "").astype(str).to_numpy(dtype=object)
