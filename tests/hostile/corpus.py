"""Hostile but fair inputs (issue 13): scenario files generated in code, one case each.

Each case is ``(name, write)`` where ``write(folder) -> Path`` writes the scenario file (and
anything it refers to) into ``folder``; ``REPAIRED`` names the cases whose documented outcome
is a repair (the run succeeds), every other case must end in one clear error.
:func:`classify` runs a case through the real ``citytwin run`` command in this process and
says which of tried / clear / repaired / traceback / silent / lost it ended in.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.gpkg"

HEAD = f'name = "hostile"\ncity = "{TINY}"\nduration_h = 1\n'

Case = tuple[str, Callable[[Path], Path]]


def _text(body: str, *, head: str = HEAD, name: str = "s.toml") -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        p = folder / name
        p.write_text(head + body, encoding="utf-8")
        return p
    return write


def _bytes(data: bytes, name: str = "s.toml") -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        p = folder / name
        p.write_bytes(data)
        return p
    return write


def _extends_cycle(folder: Path) -> Path:
    (folder / "a.toml").write_text(HEAD + 'extends = "b.toml"\n', encoding="utf-8")
    (folder / "b.toml").write_text('extends = "a.toml"\n', encoding="utf-8")
    return folder / "a.toml"


def _extends_self(folder: Path) -> Path:
    p = folder / "s.toml"
    p.write_text(HEAD + 'extends = "s.toml"\n', encoding="utf-8")
    return p


def _extends_bad_parent(folder: Path) -> Path:
    (folder / "parent.toml").write_text("seed = [1\n", encoding="utf-8")
    p = folder / "s.toml"
    p.write_text(HEAD + 'extends = "parent.toml"\n', encoding="utf-8")
    return p


def _city_is(content: bytes, suffix: str) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        city = folder / f"city{suffix}"
        city.write_bytes(content)
        p = folder / "s.toml"
        p.write_text(f'name = "hostile"\ncity = "{city}"\nduration_h = 1\n', encoding="utf-8")
        return p
    return write


def _city_folder(folder: Path) -> Path:
    (folder / "dir.gpkg").mkdir()
    p = folder / "s.toml"
    p.write_text(f'name = "h"\ncity = "{folder / "dir.gpkg"}"\nduration_h = 1\n')
    return p


def _incident_log(content: str, suffix: str = ".csv") -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        log = folder / f"log{suffix}"
        log.write_text(content, encoding="utf-8")
        p = folder / "s.toml"
        p.write_text(HEAD + f'[emergency]\nincident_log = "{log}"\n', encoding="utf-8")
        return p
    return write


def _data_file(section: str, key: str, content: bytes, name: str) -> Callable[[Path], Path]:
    """A scenario whose ``[section] key`` names a file written with ``content``."""
    def write(folder: Path) -> Path:
        f = folder / name
        f.write_bytes(content)
        p = folder / "s.toml"
        p.write_text(HEAD + f'[{section}]\n{key} = "{f}"\n', encoding="utf-8")
        return p
    return write


SCENARIO_CASES: list[Case] = [
    # syntax and encoding
    ("empty file", _bytes(b"")),
    ("syntax: unclosed array", _text("seed = [1\n")),
    ("syntax: bare word", _text("seed = one\n")),
    ("syntax: duplicate key", _text("seed = 1\nseed = 2\n")),
    ("syntax: unclosed table header", _text("[traffic\n")),
    ("syntax: JSON instead of TOML", _bytes(b'{"name": "x", "city": "a.gpkg"}')),
    ("encoding: UTF-8 BOM", _bytes(b"\xef\xbb\xbf" + HEAD.encode())),
    ("encoding: Latin-1 bytes", _bytes(HEAD.encode() + b'description = "caf\xe9"\n')),
    ("encoding: UTF-16", _bytes(HEAD.encode("utf-16"))),
    ("encoding: NUL bytes", _bytes(HEAD.encode() + b"\x00\x00\n")),
    ("binary: PNG header", _bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))),
    ("binary: gzip", _bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 40)),
    ("huge line", _text("description = '" + "x" * 2_000_000 + "\n")),
    # top-level keys: missing, unknown, wrong types, out of range
    ("missing city", _text("", head='name = "x"\n')),
    ("unknown top-level key", _text("sed = 3\n")),
    ("unknown domain section", _text("[trafic]\nsample = 0.1\n")),
    ("name with slash", _text("", head=f'name = "../evil"\ncity = "{TINY}"\n')),
    ("name empty", _text("", head=f'name = ""\ncity = "{TINY}"\n')),
    ("name is a number", _text("", head=f'name = 3\ncity = "{TINY}"\n')),
    ("seed negative", _text("seed = -1\n")),
    ("seed float", _text("seed = 1.5\n")),
    ("seed string", _text('seed = "one"\n')),
    ("seed beyond int64", _text("seed = 99999999999999999999\n")),
    ("duration zero", _text("", head=f'name = "h"\ncity = "{TINY}"\nduration_h = 0\n')),
    ("duration negative", _text("", head=f'name = "h"\ncity = "{TINY}"\nduration_h = -5\n')),
    ("duration inf", _text("", head=f'name = "h"\ncity = "{TINY}"\nduration_h = inf\n')),
    ("duration nan", _text("", head=f'name = "h"\ncity = "{TINY}"\nduration_h = nan\n')),
    ("duration ten years", _text("", head=f'name = "h"\ncity = "{TINY}"\nduration_h = 87600\n')),
    ("step zero", _text("step_s = 0\n")),
    ("step beyond a day", _text("step_s = 100000\n")),
    ("start not a date", _text('start = "yesterday"\n')),
    ("start impossible date", _text('start = "2024-02-30"\n')),
    ("domain section is a value", _text("traffic = 3\n")),
    ("traffic sample zero", _text("[traffic]\nsample = 0\n")),
    ("traffic sample above one", _text("[traffic]\nsample = 2\n")),
    ("traffic car_share negative", _text("[traffic]\ncar_share = -0.1\n")),
    ("traffic unknown key", _text("[traffic]\nsampel = 0.1\n")),
    ("traffic demand_scale huge", _text("[traffic]\ndemand_scale = 1e9\n")),
    ("traffic demand_scale negative", _text("[traffic]\ndemand_scale = -1\n")),
    ("emergency rate negative", _text("[emergency]\nrate_multiplier = -2\n")),
    ("emergency unknown key", _text("[emergency]\nambulances = 3\n")),
    ("fleet ev_share above one", _text("[fleet]\nev_share = 1.5\n")),
    ("fleet ev_share string", _text('[fleet]\nev_share = "half"\n')),
    ("moved key traffic.ev_share", _text("[traffic]\nev_share = 0.3\n")),
    # interventions
    ("intervention unknown type", _text('[[interventions]]\ntype = "teleport"\n')),
    ("intervention without type", _text("[[interventions]]\nedges = [1]\n")),
    ("interventions not a list", _text('interventions = "close everything"\n')),
    ("close_road both selectors", _text(
        '[traffic]\n[[interventions]]\ntype = "close_road"\nedges = [1]\nstreet = "A"\n')),
    ("close_road no selector", _text('[traffic]\n[[interventions]]\ntype = "close_road"\n')),
    ("close_road negative edge", _text(
        '[traffic]\n[[interventions]]\ntype = "close_road"\nedges = [-3]\n')),
    ("close_road unknown edge", _text(
        '[traffic]\n[[interventions]]\ntype = "close_road"\nedges = [99999999]\n')),
    ("close_road unknown street", _text(
        '[traffic]\n[[interventions]]\ntype = "close_road"\nstreet = "Nowhere Street 404"\n')),
    ("add_station latitude 95", _text(
        '[emergency]\n[[interventions]]\ntype = "add_station"\nkind = "fire"\nname = "X"\n'
        "lon = 24.9\nlat = 95\n")),
    ("add_station unknown kind", _text(
        '[emergency]\n[[interventions]]\ntype = "add_station"\nkind = "spaceport"\n'
        'name = "X"\nlon = 24.9\nlat = 60.1\n')),
    ("add_station far outside city", _text(
        '[emergency]\n[[interventions]]\ntype = "add_station"\nkind = "fire"\nname = "X"\n'
        "lon = 0\nlat = 0\n")),
    # files referred to
    ("extends cycle", _extends_cycle),
    ("extends itself", _extends_self),
    ("extends missing file", _text('extends = "nope.toml"\n')),
    ("extends broken parent", _extends_bad_parent),
    ("extends a number", _text("extends = 3\n")),
    ("city missing file", _text("", head='name = "h"\ncity = "nowhere.gpkg"\n')),
    ("city is a folder", _city_folder),
    ("city is a text file named .gpkg", _city_is(b"not a geopackage\n", ".gpkg")),
    ("city is an empty .gpkg", _city_is(b"", ".gpkg")),
    ("city unknown extension", _city_is(b"x", ".docx")),
    ("city garbage .osm.pbf", _city_is(b"\x00\x01garbage" * 10, ".osm.pbf")),
    ("incident_log missing", _text('[emergency]\nincident_log = "nope.csv"\n')),
    ("incident_log wrong columns", _incident_log("a,b\n1,2\n")),
    ("incident_log empty", _incident_log("")),
    ("incident_log parquet that is text", _incident_log("hello", ".parquet")),
    ("weather missing file", _text('[energy]\nweather = "nope.csv"\n')),
    ("weather file that is a PNG", _data_file("energy", "weather",
                                              b"\x89PNG\r\n\x1a\n\x00\x00", "w.csv")),
    ("weather file with other columns", _data_file("energy", "weather",
                                                   b"username,password_hash\nroot,x\n", "w.csv")),
    ("od_factors missing file", _text('[traffic]\nod_factors = "nope.parquet"\n')),
    ("od_factors a CSV", _data_file("traffic", "od_factors", b"origin,dest\n1,2\n", "od.csv")),
    ("od_factors parquet that is text", _data_file("traffic", "od_factors", b"hello",
                                                   "od.parquet")),
]

#: Cases whose documented outcome is a repair: the run succeeds (docs/ or this module).
REPAIRED = {"encoding: UTF-8 BOM": "a leading UTF-8 byte-order mark is dropped"}


def snapshot(folder: Path) -> dict[str, str]:
    """Content digest of every file under ``folder`` (to detect a lost or changed file)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _build_issues(out: Path) -> list[str]:
    import json

    try:
        man = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return []
    build = man.get("city_build") or {}
    return [str(i) for i in build.get("issues", [])] + [
        str(w) for w in build.get("warnings", [])]


def classify(write: Callable[[Path], Path], folder: Path, *, repaired: bool) -> tuple[str, str]:
    """Run one case through ``citytwin run``: (outcome, message) with outcome one of
    clear / repaired / traceback / silent / lost."""
    from citytwin.cli import main

    folder.mkdir(parents=True, exist_ok=True)
    path = write(folder)
    before = snapshot(folder)
    err = io.StringIO()
    out = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(["run", str(path), "--out", str(folder / "out"), "--no-progress"])
    except SystemExit as exc:  # argparse
        rc = int(exc.code or 0)
    except BaseException as exc:  # noqa: BLE001 - this is what we are looking for
        return "traceback", f"{type(exc).__name__}: {exc}"[:300]
    msg = err.getvalue().strip()
    after = snapshot(folder)
    if any(after.get(k) != v for k, v in before.items()):
        return "lost", "a file of the case changed or vanished"
    if "Traceback" in msg or "internal error" in msg:
        return "traceback", msg[:300]
    if rc == 0:
        issues = _build_issues(folder / "out")
        if issues:  # repaired or dropped, with rows, in the manifest's build report
            return "repaired", "; ".join(issues)[:300]
        return ("repaired" if repaired else "silent"), out.getvalue()[:200]
    errors = [ln for ln in msg.splitlines() if ln.startswith("error:")]
    if rc == 2 and errors:  # (library warnings may come before it)
        return "clear", "\n".join(msg.splitlines()[msg.splitlines().index(errors[0]):])[:300]
    return "traceback", f"exit {rc}: {msg[:300]}"


# ---- geodata: mutations of the committed tiny city, written as a real GeoPackage each

def _tiny_layers() -> dict[str, object]:
    import geopandas as gpd
    import pyogrio

    return {n: gpd.read_file(TINY, layer=n) for n, _ in pyogrio.list_layers(TINY)}


_LAYERS: dict[str, object] = {}


def _gpkg(mutate: Callable[[dict], None]) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        if not _LAYERS:
            _LAYERS.update(_tiny_layers())
        layers = {n: g.copy() for n, g in _LAYERS.items()}  # type: ignore[attr-defined]
        mutate(layers)
        city = folder / "city.gpkg"
        with warnings.catch_warnings():  # "crs was not provided": that is the case
            warnings.simplefilter("ignore")
            for n, g in layers.items():
                g.to_file(city, layer=n, driver="GPKG")
        return _scenario_for(folder, city)
    return write


def _scenario_for(folder: Path, city: Path, extra: str = "") -> Path:
    p = folder / "s.toml"
    p.write_text(f'name = "hostile"\ncity = "{city}"\nduration_h = 1\n{extra}', encoding="utf-8")
    return p


def _col(layer: str, col: str, value: object, rows: slice | int = 0) -> Callable[[dict], None]:
    def m(L: dict) -> None:
        g = L[layer]
        g[col] = g[col].astype(object)
        idx = g.index[rows] if isinstance(rows, slice) else [g.index[rows]]
        for i in idx:
            g.at[i, col] = value
    return m


def _geom(layer: str, wkt: str | None, row: int = 0) -> Callable[[dict], None]:
    def m(L: dict) -> None:
        from shapely import wkt as W

        g = L[layer]
        geoms = list(g.geometry)
        geoms[row] = None if wkt is None else W.loads(wkt)
        L[layer] = g.set_geometry(type(g.geometry)(geoms, crs=g.crs))
    return m


def _shift(layer: str, dx: float, dy: float = 0.0, row: int | None = None) -> Callable[[dict], None]:
    def m(L: dict) -> None:
        g = L[layer]
        moved = g.geometry.translate(dx, dy)
        if row is not None:
            moved = g.geometry.where(g.index != g.index[row], moved)
        L[layer] = g.set_geometry(moved)
    return m


def _dup(layer: str, all_rows: bool = True) -> Callable[[dict], None]:
    def m(L: dict) -> None:
        import pandas as pd

        g = L[layer]
        L[layer] = pd.concat([g, g if all_rows else g.iloc[:1]], ignore_index=True)
    return m


def _empty(layer: str) -> Callable[[dict], None]:
    def m(L: dict) -> None:
        L[layer] = L[layer].iloc[:0]
    return m


def _drop(layer: str) -> Callable[[dict], None]:
    def m(L: dict) -> None:
        del L[layer]
    return m


def _crs(crs: str | None, layers: tuple[str, ...] | None = None) -> Callable[[dict], None]:
    def m(L: dict) -> None:
        for n in layers or tuple(L):
            L[n] = L[n].set_crs(crs, allow_override=True) if crs else L[n].set_crs(
                None, allow_override=True)
    return m


def _swap_to_lonlat_swapped(L: dict) -> None:
    import shapely

    for n, g in L.items():
        g = g.to_crs(4326)
        L[n] = g.set_geometry(shapely.transform(g.geometry.values, lambda c: c[:, ::-1]))


def _swap_lonlat_far_east(L: dict) -> None:
    """The tiny city moved to 140° E (Japan), then written as lat/lon: y beyond ±90."""
    import shapely

    for n, g in L.items():
        g = g.to_crs(4326)
        L[n] = g.set_geometry(shapely.transform(g.geometry.values,
                                                lambda c: c[:, ::-1] + [0.0, 115.0]))


def _raw_city(data: bytes, suffix: str = ".gpkg") -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        city = folder / f"city{suffix}"
        city.write_bytes(data)
        return _scenario_for(folder, city)
    return write


def _truncated_gpkg(folder: Path) -> Path:
    city = folder / "city.gpkg"
    city.write_bytes(TINY.read_bytes()[:4096])
    return _scenario_for(folder, city)


def _sqlite_not_gpkg(folder: Path) -> Path:
    import sqlite3

    city = folder / "city.gpkg"
    with contextlib.closing(sqlite3.connect(city)) as con:
        con.execute("create table roads (a int)")
        con.commit()
    return _scenario_for(folder, city)


def _layer_dir(files: dict[str, bytes]) -> Callable[[Path], Path]:
    def write(folder: Path) -> Path:
        d = folder / "city"
        d.mkdir()
        for name, data in files.items():
            (d / name).write_bytes(data)
        return _scenario_for(folder, d)
    return write


def _geojson(features: list[str]) -> bytes:
    return ('{"type": "FeatureCollection", "features": [' + ",".join(features) + "]}").encode()


_ROAD = ('{{"type": "Feature", "properties": {{"highway": "residential", "name": "{n}"}}, '
         '"geometry": {{"type": "LineString", "coordinates": [[24.90, 60.10], [24.91, 60.10]]}}}}')
_BLD = ('{"type": "Feature", "properties": {"building": "yes"}, "geometry": {"type": "Polygon", '
        '"coordinates": [[[24.9001, 60.1001], [24.9002, 60.1001], [24.9002, 60.1002], '
        '[24.9001, 60.1001]]]}}')

GEODATA_CASES: list[Case] = [
    # roads: values
    ("roads maxspeed 'fast'", _gpkg(_col("roads", "maxspeed", "fast", slice(None)))),
    ("roads maxspeed negative", _gpkg(_col("roads", "maxspeed", "-30"))),
    ("roads maxspeed 9999", _gpkg(_col("roads", "maxspeed", "9999"))),
    ("roads lanes 'many'", _gpkg(_col("roads", "lanes", "many"))),
    ("roads lanes -2", _gpkg(_col("roads", "lanes", "-2"))),
    ("roads lanes 1000", _gpkg(_col("roads", "lanes", "1000"))),
    ("roads highway unknown", _gpkg(_col("roads", "highway", "spaceway", slice(None)))),
    ("roads highway missing", _gpkg(_col("roads", "highway", None, slice(None)))),
    ("roads oneway 'maybe'", _gpkg(_col("roads", "oneway", "maybe"))),
    # roads: geometry and layer
    ("roads geometry missing", _gpkg(_geom("roads", None))),
    ("roads geometry a point", _gpkg(_geom("roads", "POINT (385000 6672000)"))),
    ("roads geometry zero length", _gpkg(_geom(
        "roads", "LINESTRING (385000 6672000, 385000 6672000)"))),
    ("roads all geometries missing", _gpkg(lambda L: [_geom("roads", None, i)(L)
                                                      for i in range(len(L["roads"]))])),
    ("roads layer empty", _gpkg(_empty("roads"))),
    ("roads layer missing", _gpkg(_drop("roads"))),
    ("roads 1000 km from buildings", _gpkg(_shift("roads", 1e6))),
    ("roads duplicated", _gpkg(_dup("roads"))),
    # buildings: values
    ("buildings all duplicated", _gpkg(_dup("buildings"))),
    ("buildings one duplicated", _gpkg(_dup("buildings", all_rows=False))),
    ("buildings levels 10000", _gpkg(_col("buildings", "levels", 10000.0, slice(None)))),
    ("buildings levels negative", _gpkg(_col("buildings", "levels", -3.0))),
    ("buildings levels 'ten'", _gpkg(_col("buildings", "levels", "ten"))),
    ("buildings height 1e6", _gpkg(_col("buildings", "height", 1e6, slice(None)))),
    ("buildings height negative", _gpkg(_col("buildings", "height", -20.0))),
    ("buildings start_date 'tomorrow'", _gpkg(_col("buildings", "start_date", "tomorrow"))),
    ("buildings osm_id duplicated", _gpkg(_col("buildings", "osm_id", 1000, slice(None)))),
    ("buildings tag 'spaceship'", _gpkg(_col("buildings", "building", "spaceship",
                                             slice(None)))),
    # buildings: geometry and layer
    ("buildings geometry missing", _gpkg(_geom("buildings", None))),
    ("buildings geometry a line", _gpkg(_geom(
        "buildings", "LINESTRING (385105 6672105, 385110 6672110)"))),
    ("buildings bow-tie polygon", _gpkg(_geom(
        "buildings", "POLYGON ((385100 6672100, 385110 6672110, 385110 6672100, "
        "385100 6672110, 385100 6672100))"))),
    ("buildings 10 km2 footprint", _gpkg(_geom(
        "buildings", "POLYGON ((383000 6670000, 386000 6670000, 386000 6673500, "
        "383000 6673500, 383000 6670000))"))),
    ("buildings zero area", _gpkg(_geom(
        "buildings", "POLYGON ((385100 6672100, 385110 6672100, 385120 6672100, "
        "385100 6672100))"))),
    ("buildings layer empty", _gpkg(_empty("buildings"))),
    ("buildings layer missing", _gpkg(_drop("buildings"))),
    ("buildings one 50 km away", _gpkg(_shift("buildings", 5e4, row=0))),
    ("buildings all 50 km away", _gpkg(_shift("buildings", 5e4))),
    # facilities, power, landuse, pois
    ("facility geometry missing", _gpkg(_geom("facilities", None))),
    ("facility kind unknown", _gpkg(_col("facilities", "kind", "spaceport"))),
    ("facility 100 km away", _gpkg(_shift("facilities", 1e5, row=0))),
    ("power substation 100 km away", _gpkg(_shift("power", 1e5))),
    ("power kind unknown", _gpkg(_col("power", "power", "flux_capacitor"))),
    ("landuse geometry missing", _gpkg(_geom("landuse", None))),
    ("pois geometry missing", _gpkg(_geom("pois", None))),
    # CRS
    ("crs missing", _gpkg(_crs(None))),
    ("crs geographic on metre coordinates", _gpkg(_crs("EPSG:4326"))),
    ("crs lon/lat swapped", _gpkg(_swap_to_lonlat_swapped)),
    ("crs differs between layers (mislabelled)", _gpkg(_crs("EPSG:3067", ("roads",)))),
    ("crs lon/lat swapped, longitude beyond 90", _gpkg(_swap_lonlat_far_east)),
    ("crs one layer mislabelled, outside its CRS", _gpkg(_crs("EPSG:3879", ("buildings",)))),
    ("crs one layer labelled with the next UTM zone", _gpkg(_crs("EPSG:32634", ("buildings",)))),
    # files that are not what they claim
    ("gpkg truncated", _truncated_gpkg),
    ("gpkg that is a zip", _raw_city(b"PK\x03\x04" + b"\x00" * 100)),
    ("gpkg that is a PNG", _raw_city(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)),
    ("gpkg that is plain sqlite", _sqlite_not_gpkg),
    ("osm.pbf that is text", _raw_city(b"hello world\n" * 10, ".osm.pbf")),
    ("osm.pbf empty", _raw_city(b"", ".osm.pbf")),
    ("layer dir empty", _layer_dir({})),
    ("layer dir invalid JSON", _layer_dir({"roads.geojson": b"{not json",
                                           "buildings.geojson": _geojson([_BLD])})),
    ("layer dir non-UTF-8 name", _layer_dir({
        "roads.geojson": _geojson([_ROAD.format(n="cafXX")]).replace(b"XX", b"\xe9"),
        "buildings.geojson": _geojson([_BLD])})),
    ("layer dir no features", _layer_dir({"roads.geojson": _geojson([]),
                                          "buildings.geojson": _geojson([])})),
]


#: Geodata cases that still end silently or in a traceback: skipped by the tests, counted
#: honestly by benchmarks/bad_input.py (empty since the plausibility checks of issue 13).
GEODATA_OPEN: set[str] = set()
