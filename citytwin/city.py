"""The built twin: road graph, power graph, buildings and facilities, cached on disk.

``City.from_path(path)`` reads the layers (any format of :mod:`citytwin.layers`), checks and
projects them, builds the road graph (:mod:`citytwin.network.roads`) and the power graph
(:mod:`citytwin.network.power`), infers building attributes and attaches every building and
facility to its nearest road node. The result is pickled into a cache keyed by the input files'
bytes (and the build options and code version), written atomically; a second build of the same
input reads the cache. The cache is a cache, not a file format: delete it at will.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import os
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from citytwin.errors import GeodataError
from citytwin.layers import (
    BuildOptions,
    LoadReport,
    file_hash_inputs,
    infer_buildings,
    parse_crs,
    prepare_layers,
    read_layers,
)
from citytwin.network.roads import build_road_graph
from citytwin.network.routing import RoadArrays, road_arrays

__all__ = ["City", "default_cache_dir", "attach_to_roads", "CACHE_VERSION"]

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the build changes what a City holds
DEFAULT_MAX_ATTACH_M = 1000.0


def default_cache_dir() -> Path:
    """``$CITYTWIN_CACHE``, else ``.citytwin-cache/`` in the project root (or the cwd)."""
    env = os.environ.get("CITYTWIN_CACHE")
    if env:
        return Path(env)
    root = Path(__file__).resolve().parents[1]
    if (root / "pyproject.toml").exists():
        return root / ".citytwin-cache"
    return Path.cwd() / ".citytwin-cache"


def attach_to_roads(
    geoms: np.ndarray,
    G: nx.MultiDiGraph,
    *,
    max_distance_m: float = DEFAULT_MAX_ATTACH_M,
    nodes: list[Any] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest road node (id) and distance (m) per geometry (STRtree over node points).

    ``nodes`` restricts the candidates (default: every node of ``G``, which the build makes one
    strongly connected component, so the nearest node is the nearest reachable one).
    Geometries farther than ``max_distance_m`` from every candidate get node -1, distance inf.
    """
    cand = list(G.nodes) if nodes is None else list(nodes)
    node_ids = np.asarray(cand, dtype=np.int64)
    xs = np.fromiter((G.nodes[n]["x"] for n in cand), dtype=float, count=len(cand))
    ys = np.fromiter((G.nodes[n]["y"] for n in cand), dtype=float, count=len(cand))
    tree = shapely.STRtree(shapely.points(xs, ys))
    targets = shapely.point_on_surface(geoms)
    max_d = None if not np.isfinite(max_distance_m) else max_distance_m
    (q, idx), dist = tree.query_nearest(targets, max_distance=max_d, return_distance=True,
                                        all_matches=False)
    node = np.full(len(geoms), -1, dtype=np.int64)
    d = np.full(len(geoms), np.inf)
    node[q] = node_ids[idx]
    d[q] = dist
    return node, d


@functools.cache
def _code_hash() -> str:
    """Hash of the source of the modules that shape a built City (so a code change
    invalidates the cache without anyone remembering to bump CACHE_VERSION)."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for rel in ("layers.py", "city.py", "osm.py", "network/roads.py", "network/power.py"):
        f = here / rel
        if f.exists():
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _hash_files(files: list[Path], extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:24]


@dataclass(eq=False)
class City:
    """A city twin. See ``docs/contracts.md`` for the columns and graph attributes."""

    name: str
    crs: CRS
    source: Path
    roads: nx.MultiDiGraph
    buildings: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    power: nx.Graph
    layers: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)  # landuse, pois, power
    report: LoadReport = field(default_factory=LoadReport)
    build_s: float = 0.0
    from_cache: bool = False
    options: BuildOptions = field(default_factory=BuildOptions)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_path(
        cls,
        path: str | Path,
        *,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        crs: str | CRS | None = None,
        max_attach_m: float | None = None,
        options: BuildOptions | None = None,
    ) -> City:
        """Build (or read from the cache) the city in ``path`` (GPKG, .osm.pbf or a directory of
        GeoParquet/GeoJSON/Shapefile layers) with build ``options`` (:class:`BuildOptions`, the
        scenario's ``[build]``); ``crs`` and ``max_attach_m`` override those fields."""
        t0 = time.perf_counter()
        path = Path(path)
        opts = _options(options, crs=crs, max_attach_m=max_attach_m, source=str(path))
        if not path.exists():
            raise GeodataError([f"file not found: {path}"], source=str(path))
        cache_file: Path | None = None
        if use_cache:
            from citytwin import __version__

            key = _hash_files(
                file_hash_inputs(path),
                f"v{CACHE_VERSION}|{__version__}|{opts.cache_key()}|{_code_hash()}",
            )
            cdir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
            cache_file = cdir / f"{path.name.split('.')[0]}-{key}.pkl"
            if cache_file.exists():
                try:
                    with open(cache_file, "rb") as fh:
                        city = pickle.load(fh)
                    city.from_cache = True
                    city.source = path.resolve()  # same bytes may live at another path
                    city.build_s = time.perf_counter() - t0
                    log.info("read %s from cache %s", path, cache_file)
                    return city
                except Exception as exc:  # noqa: BLE001 - a broken cache is rebuilt, not fatal
                    log.warning("ignoring unreadable cache %s: %s", cache_file, exc)
        city = cls._build(path, options=opts)
        city.build_s = time.perf_counter() - t0
        if cache_file is not None:
            try:
                _atomic_pickle(city, cache_file)
            except OSError as exc:  # a cache is an optimisation: a read-only disk is no error
                log.warning("could not write cache %s: %s", cache_file, exc)
        return city

    @classmethod
    def _build(cls, path: Path, *, options: BuildOptions) -> City:
        name = path.name.split(".")[0]
        return cls.from_layers(read_layers(path), name=name, source=path, options=options)

    @classmethod
    def from_layers(
        cls,
        raw: dict[str, gpd.GeoDataFrame],
        *,
        name: str,
        source: str | Path | None = None,
        crs: str | CRS | None = None,
        max_attach_m: float | None = None,
        options: BuildOptions | None = None,
    ) -> City:
        """Build a city from raw layers in memory (``roads``, ``buildings`` and optionally
        ``facilities``, ``power``, ``landuse``, ``pois``), through the same checks, projection
        and graph builders as :meth:`from_path` (not cached).

        Buildings and facilities farther than ``max_attach_m`` from the connected road network
        are dropped and reported (``City.report``); the build fails only when more than
        ``max_dropped_share`` of the buildings are dropped.
        """
        path = Path(source) if source is not None else Path(f"<{name}>")
        source = str(path)
        opts = _options(options, crs=crs, max_attach_m=max_attach_m, source=source)
        n_in = len(raw["buildings"]) if "buildings" in raw else 0
        layers, crs_, report = prepare_layers(raw, source=source, crs=opts.crs, options=opts)
        problems: list[str] = []
        G: nx.MultiDiGraph | None = None
        try:
            G = build_road_graph(layers["roads"], report=report, source=source,
                                 speeds_kph=opts.speeds_kph)
        except GeodataError as exc:
            problems += exc.problems
        try:
            buildings = infer_buildings(
                layers["buildings"], landuse=layers.get("landuse"), pois=layers.get("pois"),
                report=report, source=source, options=opts,
            )
        except GeodataError as exc:
            problems += exc.problems
            buildings = None
        if problems or G is None or buildings is None:
            raise GeodataError(problems, source=source)

        rows_in = layers["buildings"]["_row"].to_numpy()
        node, dist = attach_to_roads(buildings.geometry.values, G, max_distance_m=opts.max_attach_m)
        buildings["road_node"] = node
        buildings["road_dist_m"] = dist
        far = node < 0
        if far.any():
            report.issue("buildings", "dropped", f"no node of the connected road network within "
                         f"{opts.max_attach_m:g} m ([build] max_attach_m)", rows_in[far],
                         buildings["osm_id"].to_numpy()[far])
            buildings = buildings.loc[~far].reset_index(drop=True)
            buildings.index.name = "building_id"
        for lname, total, left in (("buildings", n_in, len(buildings)),
                                   ("roads", len(raw["roads"]), 1)):
            dropped = sum(int(i["count"]) for i in report.issues  # type: ignore[call-overload]
                          if i["layer"] == lname and i["action"] == "dropped")
            if total and (dropped / total > opts.max_dropped_share or left == 0):
                reasons = "; ".join(f"{i['count']} {i['reason']}" for i in report.issues
                                    if i["layer"] == lname and i["action"] == "dropped")
                raise GeodataError(
                    [f"layer '{lname}': {dropped} of {total} {lname} dropped "
                     f"({dropped / total:.1%}), more than the {opts.max_dropped_share:.0%} "
                     f"allowed ([build] max_dropped_share): {reasons}"], source=source)
        facilities = _facilities(layers.get("facilities"), crs_)
        if len(facilities):
            frows = layers["facilities"]["_row"].to_numpy()
            fnode, fdist = attach_to_roads(facilities.geometry.values, G,
                                           max_distance_m=opts.max_attach_m)
            ffar = fnode < 0
            if ffar.any():
                report.issue("facilities", "dropped", "no node of the connected road network "
                             f"within {opts.max_attach_m:g} m ([build] max_attach_m)",
                             frows[ffar], facilities["osm_id"].to_numpy()[ffar])
            snap = ~ffar & (fdist > opts.max_station_snap_m)
            if snap.any():
                report.issue("facilities", "warning", "snapped farther than "
                             f"{opts.max_station_snap_m:g} m to the road network "
                             f"(up to {float(fdist[snap].max()):.0f} m; [build] "
                             "max_station_snap_m)", frows[snap],
                             facilities["osm_id"].to_numpy()[snap])
            facilities["road_node"] = fnode
            facilities["road_dist_m"] = fdist
            facilities = facilities.loc[~ffar].reset_index(drop=True)
            facilities.index.name = "facility_id"

        if int(buildings["jobs"].sum()) == 0:
            _infer_jobs(buildings, G, layers, opts, report)

        if "power" in layers and len(layers["power"]):
            layers["power"] = _near_power(layers["power"], G, opts, report)
        power = _build_power(buildings, G, layers.get("power"), crs_, report)
        if power.number_of_nodes():
            buildings["transformer"] = pd.Series(
                _building_transformers(power, len(buildings)), index=buildings.index, dtype=object)
        else:
            buildings["transformer"] = pd.Series([None] * len(buildings), index=buildings.index,
                                                 dtype=object)
        cols = ["osm_id", "name", "use", "use_source", "levels", "footprint_m2", "floor_area_m2",
                "year_built", "vintage", "population", "jobs", "road_node", "road_dist_m",
                "transformer", "geometry"]
        buildings = buildings[cols]
        extra = {k: v.drop(columns="_row", errors="ignore") for k, v in layers.items()
                 if k in ("landuse", "pois", "power")}
        city = cls(name=name, crs=crs_, source=path.resolve(), roads=G, buildings=buildings,
                   facilities=facilities, power=power, layers=extra, report=report)
        city.options = opts
        return city

    # ------------------------------------------------------------------ derived
    @cached_property
    def road_arrays(self) -> RoadArrays:
        """The road graph as CSR-ready arrays (computed once per City)."""
        return road_arrays(self.roads)

    def with_roads(self, G: nx.MultiDiGraph) -> City:
        """A copy of this city with road graph ``G`` (the original is untouched).

        Buildings and facilities whose road node is gone, or no longer in the largest strongly
        connected part of ``G`` (e.g. after closures), are re-attached to the nearest node of
        that part; the others keep their node.
        """
        new = copy.copy(self)
        new.__dict__.pop("road_arrays", None)
        new.roads = G
        core = max(nx.strongly_connected_components(G), key=len) if len(G) else set()
        b = self.buildings.copy()
        f = self.facilities.copy()
        for df in (b, f):
            if not len(df):
                continue
            lost = ~df["road_node"].isin(core).to_numpy()
            if lost.any():
                node, dist = attach_to_roads(df.geometry.values[lost], G,
                                             max_distance_m=np.inf, nodes=sorted(core))
                df.loc[lost, "road_node"] = node
                if "road_dist_m" in df.columns:
                    df.loc[lost, "road_dist_m"] = dist
        new.buildings, new.facilities = b, f
        return new

    def summary(self) -> dict[str, Any]:
        """Counts, extent, CRS, lengths and what was inferred (for ``citytwin info``)."""
        G = self.roads
        length_km = sum(d["length"] for _, _, d in G.edges(data=True)) / 1000.0
        # each street once: the forward edge of two-way streets, the one edge of one-way streets
        street_km = sum(d["length"] for _, _, d in G.edges(data=True)
                        if d["oneway"] or not d.get("reversed", False)) / 1000.0
        minx, miny, maxx, maxy = self.buildings.total_bounds
        uses = self.buildings["use"].value_counts()
        lon_lat = gpd.GeoSeries([shapely.box(minx, miny, maxx, maxy)], crs=self.crs).to_crs(4326)
        return {
            "name": self.name,
            "source": str(self.source),
            "crs": self.crs.to_string(),
            "extent_m": [round(float(v), 1) for v in (minx, miny, maxx, maxy)],
            "extent_lonlat": [round(float(v), 5) for v in lon_lat.total_bounds],
            "road_nodes": G.number_of_nodes(),
            "road_edges": G.number_of_edges(),
            "road_length_km": round(length_km, 2),  # all directed links
            "street_length_km": round(street_km, 2),  # each street once
            "buildings": len(self.buildings),
            "floor_area_m2": round(float(self.buildings["floor_area_m2"].sum()), 0),
            "population": int(self.buildings["population"].sum()),
            "jobs": int(self.buildings["jobs"].sum()),
            "uses": {str(k): int(v) for k, v in uses.items() if v},
            "facilities": {str(k): int(v) for k, v in
                           self.facilities["kind"].value_counts().items() if v},
            "power_nodes": self.power.number_of_nodes(),
            "power_edges": self.power.number_of_edges(),
            "inferred": dict(self.report.inferred),
            "notes": list(self.report.notes),
            "repaired": _issue_counts(self.report, "repaired"),
            "dropped": _issue_counts(self.report, "dropped"),
            "warnings": _issue_counts(self.report, "warning"),
            "issues": [dict(i) for i in self.report.issues],
            "build_s": round(self.build_s, 3),
            "from_cache": self.from_cache,
        }

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("road_arrays", None)
        return state


def _issue_counts(report: LoadReport, action: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in report.issues:
        if i["action"] == action:
            key = f"{i['layer']}: {i['reason']}"
            out[key] = out.get(key, 0) + int(i["count"])  # type: ignore[call-overload]
    return out


def _options(options: BuildOptions | None, *, crs: str | CRS | None,
             max_attach_m: float | None, source: str) -> BuildOptions:
    """``options`` with the keyword overrides applied, validated (GeodataError, not a
    ValueError from pydantic or pyproj)."""
    from pydantic import ValidationError

    opts = options if options is not None else BuildOptions()
    changes: dict[str, Any] = {}
    if crs is not None:
        changes["crs"] = crs.to_string() if isinstance(crs, CRS) else str(crs)
    if max_attach_m is not None:
        changes["max_attach_m"] = max_attach_m
    if changes:
        try:
            opts = BuildOptions.model_validate({**opts.model_dump(), **changes})
        except ValidationError as exc:
            raise GeodataError([f"build.{'.'.join(map(str, e['loc']))}: {e['msg']} "
                                f"(got {e.get('input')!r:.40})" for e in exc.errors()],
                               source=source) from None
    if opts.crs is not None:
        parse_crs(opts.crs, source=source)
    return opts


def _rows(rows: np.ndarray, limit: int = 10) -> str:
    r = [int(x) for x in rows]
    return ", ".join(map(str, r[:limit])) + (f", ... ({len(r)} in all)" if len(r) > limit else "")


def _facilities(fac: gpd.GeoDataFrame | None, crs: CRS) -> gpd.GeoDataFrame:
    if fac is None or len(fac) == 0:
        out = gpd.GeoDataFrame(
            {"kind": pd.Series([], dtype=object), "name": pd.Series([], dtype=object),
             "osm_id": pd.Series([], dtype=np.int64), "road_node": pd.Series([], dtype=np.int64)},
            geometry=gpd.GeoSeries([], crs=crs), crs=crs,
        )
        out.index.name = "facility_id"
        return out
    n = len(fac)
    name = (fac["name"].astype(object).where(fac["name"].notna(), "").astype(str).to_numpy()
            if "name" in fac.columns else np.full(n, "", dtype=object))
    osm_id = (pd.to_numeric(fac["osm_id"], errors="coerce").fillna(-1).astype(np.int64).to_numpy()
              if "osm_id" in fac.columns else np.arange(n, dtype=np.int64))
    out = gpd.GeoDataFrame(
        {"kind": fac["kind"].astype(str).to_numpy(), "name": name, "osm_id": osm_id},
        geometry=shapely.point_on_surface(fac.geometry.values), crs=crs,
    )
    out.index = pd.RangeIndex(n, name="facility_id")
    return out


def _near_power(power: gpd.GeoDataFrame, G: nx.MultiDiGraph, opts: BuildOptions,
                report: LoadReport) -> gpd.GeoDataFrame:
    """The power layer without features farther than ``opts.max_attach_m`` from every node of
    the road network (a substation 100 km away would feed the city over an invented cable);
    dropped rows are reported. A line that crosses the city is near it, wherever it ends."""
    xs = np.fromiter((d["x"] for _, d in G.nodes(data=True)), dtype=float)
    ys = np.fromiter((d["y"] for _, d in G.nodes(data=True)), dtype=float)
    tree = shapely.STRtree(shapely.points(xs, ys))
    geoms = power.geometry.values
    near = np.zeros(len(power), dtype=bool)
    (q, _idx) = tree.query_nearest(geoms, max_distance=opts.max_attach_m, all_matches=False)
    near[q] = True
    if (~near).any():
        far = np.flatnonzero(~near)
        ids = (power["osm_id"].to_numpy()[far] if "osm_id" in power.columns else None)
        report.issue("power", "dropped", f"no node of the road network within "
                     f"{opts.max_attach_m:g} m ([build] max_attach_m)",
                     power["_row"].to_numpy()[far] if "_row" in power.columns else far, ids)
        power = power.loc[near].reset_index(drop=True)
    return power


def _build_power(
    buildings: gpd.GeoDataFrame,
    roads: nx.MultiDiGraph,
    power_layer: gpd.GeoDataFrame | None,
    crs: CRS,
    report: LoadReport,
) -> nx.Graph:
    """The power graph (citytwin.network.power): the city's own power layer where present,
    synthesized along the streets otherwise."""
    from citytwin.network.power import build_power_graph

    G = build_power_graph(buildings, roads, power_layer, crs=crs)
    kinds = pd.Series([d.get("kind") for _, d in G.nodes(data=True)]).value_counts()
    report.note(
        "power: " + ", ".join(f"{int(v)} {k}" for k, v in kinds.items())
        + f" ({'with' if power_layer is not None and len(power_layer) else 'without'} "
        "an OSM power layer)"
    )
    return G


def _building_transformers(power: nx.Graph, n: int) -> list[str | None]:
    from citytwin.network.power import building_transformers

    s = building_transformers(power)
    out: list[str | None] = [None] * n
    for b, t in s.items():
        if 0 <= int(b) < n:
            out[int(b)] = None if t is None else str(t)
    return out


def _atomic_pickle(obj: object, target: Path) -> None:
    """Pickle ``obj`` to ``target`` through a temp file renamed into place; temp files of
    writers killed before (``NAME.tmp-<pid>@<host>-*``: on this host a dead pid, another host's
    untouched for :data:`citytwin.results.FOREIGN_TEMP_AGE_S` — a cache folder shared by a
    cluster) are removed first."""
    from citytwin.results import temp_tag, writer_gone

    target.parent.mkdir(parents=True, exist_ok=True)
    for old in target.parent.glob("*.tmp-*"):
        if old.is_file() and writer_gone(old, ".tmp-"):
            old.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{target.name}.tmp-{temp_tag()}-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


#: weight of a building's street for inferred jobs (busier streets hold more workplaces)
_ROAD_JOB_WEIGHT = {"motorway": 1.0, "trunk": 4.0, "primary": 4.0, "secondary": 3.0,
                    "tertiary": 2.0}
_JOB_LANDUSE = ("commercial", "retail", "industrial", "institutional", "education", "civil",
                "religious", "military")


def _infer_jobs(buildings: gpd.GeoDataFrame, G: nx.MultiDiGraph,
                layers: dict[str, gpd.GeoDataFrame], opts: BuildOptions,
                report: LoadReport) -> None:
    """A city with no non-residential building still has workplaces: place
    ``jobs_per_resident`` x residents in its buildings, weighted by (first that applies)
    amenity/shop/office POIs within 50 m, floor area in non-residential land use, or floor area
    by the class of the building's street (the road hierarchy). Reported in ``report``."""
    total = int(round(float(buildings["population"].sum()) * opts.jobs_per_resident))
    if total <= 0 or len(buildings) == 0:
        return
    pts = shapely.point_on_surface(buildings.geometry.values)
    floor = buildings["floor_area_m2"].to_numpy(dtype=float)
    weight = np.zeros(len(buildings))
    how = ""
    pois = layers.get("pois")
    if pois is not None and len(pois):
        tagged = np.zeros(len(pois), dtype=bool)
        for col in ("amenity", "shop", "office"):
            if col in pois.columns:
                v = pois[col]
                tagged |= (v.notna() & (v.astype(str).str.strip() != "")).to_numpy()
        if tagged.any():
            ppts = shapely.point_on_surface(pois.geometry.values[tagged])
            pi, bi = shapely.STRtree(pts).query(ppts, predicate="dwithin", distance=50.0)
            weight = np.bincount(bi, minlength=len(buildings)).astype(float)
            how = f"{int(tagged.sum())} amenity/shop/office POIs within 50 m"
    lu = layers.get("landuse")
    if not weight.sum() and lu is not None and len(lu) and "landuse" in lu.columns:
        keep = lu["landuse"].astype(str).str.lower().isin(_JOB_LANDUSE).to_numpy()
        if keep.any():
            bi, _ = shapely.STRtree(lu.geometry.values[keep]).query(pts, predicate="within")
            inside = np.zeros(len(buildings), dtype=bool)
            inside[bi] = True
            weight = np.where(inside, floor, 0.0)
            how = "floor area in commercial/retail/industrial/institutional land use"
    if not weight.sum():
        best: dict[int, float] = {}
        for u, v, d in G.edges(data=True):
            w = _ROAD_JOB_WEIGHT.get(str(d.get("highway", "")).removesuffix("_link"), 1.0)
            for n in (u, v):
                if w > best.get(n, 0.0):
                    best[n] = w
        road_w = np.array([best.get(int(n), 1.0) for n in buildings["road_node"]])
        weight = floor * road_w
        how = "floor area weighted by street class (primary 4, secondary 3, tertiary 2, other 1)"
    share = weight / weight.sum() * total
    jobs = np.floor(share).astype(np.int64)
    rest = total - int(jobs.sum())
    if rest > 0:  # largest remainders, ties by building id (deterministic)
        order = np.lexsort((np.arange(len(share)), -(share - jobs)))
        jobs[order[:rest]] += 1
    buildings["jobs"] = jobs
    report.count("jobs inferred (no non-residential building)", total)
    report.note(f"jobs: the city has no non-residential building; inferred {total} jobs "
                f"({opts.jobs_per_resident:g} per resident, [build] jobs_per_resident) from "
                f"{how}, in {int((jobs > 0).sum())} buildings")
