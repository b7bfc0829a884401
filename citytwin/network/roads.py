"""Road layer → osmnx-compatible ``nx.MultiDiGraph`` (largest strongly connected component).

Nodes are the links' end points (snapped to 1 cm), numbered in (x, y) order (ids of nodes
outside the largest strongly connected part are skipped), with ``x``, ``y`` (metres, city CRS),
``lon``, ``lat`` and osmnx's ``street_count``. Each two-way feature becomes two edges (the
reverse one with reversed geometry); one-way features one edge. Edge attributes follow the
contract: ``edge_id`` (0..m-1), ``osmid``, ``name``, ``highway``, ``oneway``, ``length`` (m),
``speed_kph``, ``travel_time`` (s), ``lanes`` (per direction, ≥ 1), ``capacity_vph``
(lanes × per-lane capacity), ``geometry``.

Missing tags are filled per highway class from :data:`HIGHWAY_DEFAULTS` (free-flow speed,
lanes per direction, capacity per lane in veh/h — HCM-style values for urban streets).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from scipy import sparse
from scipy.sparse import csgraph

from citytwin.errors import GeodataError

if TYPE_CHECKING:
    from citytwin.layers import LoadReport

__all__ = ["HIGHWAY_DEFAULTS", "build_road_graph", "parse_maxspeed", "parse_oneway"]

log = logging.getLogger(__name__)

# highway class -> (speed km/h, lanes per direction, capacity per lane veh/h)
HIGHWAY_DEFAULTS: dict[str, tuple[float, int, float]] = {
    "motorway": (100.0, 2, 2000.0),
    "motorway_link": (60.0, 1, 1600.0),
    "trunk": (80.0, 2, 1900.0),
    "trunk_link": (50.0, 1, 1500.0),
    "primary": (50.0, 2, 1600.0),
    "primary_link": (40.0, 1, 1400.0),
    "secondary": (40.0, 1, 1400.0),
    "secondary_link": (40.0, 1, 1200.0),
    "tertiary": (40.0, 1, 1200.0),
    "tertiary_link": (30.0, 1, 1000.0),
    "unclassified": (30.0, 1, 900.0),
    "residential": (30.0, 1, 800.0),
    "living_street": (20.0, 1, 600.0),
    "service": (20.0, 1, 600.0),
    "road": (30.0, 1, 800.0),
}
_FALLBACK = "unclassified"
_SNAP = 100.0  # 1/_SNAP metres: end points closer than 1 cm are the same node


def parse_maxspeed(values: pd.Series) -> np.ndarray:
    """OSM ``maxspeed`` (number or text such as ``"50"``, ``"30 mph"``) → km/h; NaN if absent."""
    if pd.api.types.is_numeric_dtype(values):
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    s = values.astype(object).where(values.notna(), "").astype(str)
    num = pd.to_numeric(s.str.extract(r"^\s*(-?\d+(?:\.\d+)?)", expand=False), errors="coerce")
    mph = s.str.contains("mph", case=False, regex=False)
    return np.where(mph, num * 1.609344, num).astype(float)


def parse_oneway(values: pd.Series) -> np.ndarray:
    """OSM ``oneway`` → +1 (digitised direction), -1 (reverse), 0 (two-way)."""
    if pd.api.types.is_bool_dtype(values):
        return values.to_numpy().astype(np.int8)
    s = values.astype(object).where(values.notna(), "").astype(str).str.strip().str.lower()
    out = np.zeros(len(s), dtype=np.int8)
    out[s.isin(["yes", "true", "1", "t"]).to_numpy()] = 1
    out[s.isin(["-1", "reverse"]).to_numpy()] = -1
    return out


_MAXSPEED_WORDS = ("none", "signals", "walk", "variable", "national", "implicit", "no",
                   "unposted", "urban", "rural")


class _NullReport:
    def issue(self, *args: object, **kwargs: object) -> None:
        pass


def _report_rows(report: LoadReport | _NullReport, action: str, reason: str, row: np.ndarray,
                 mask: np.ndarray, ids: np.ndarray) -> None:
    """Report each source row once (a feature split at junctions has several links)."""
    if not mask.any():
        return
    r, first = np.unique(row[mask], return_index=True)
    report.issue("roads", action, reason, r, np.asarray(ids)[mask][first])


def _rows(rows: np.ndarray, limit: int = 10) -> str:
    r = [int(x) for x in rows]
    return ", ".join(map(str, r[:limit])) + (f", ... ({len(r)} in all)" if len(r) > limit else "")


def split_at_junctions(geom: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Split LineStrings at interior vertices that are junctions: a vertex (snapped to 1 cm)
    that is an end point of any line or lies on two or more lines.

    Returns (new lines, source index per new line, number of features split, number of
    distinct junction vertices used). Lines that meet only where they cross *without* a
    shared vertex are not split (that is a bridge or tunnel, as in OSM).
    """
    geom = shapely.remove_repeated_points(geom)
    coords, fidx = shapely.get_coordinates(geom, return_index=True)
    nv = len(coords)
    _, vid = np.unique(np.rint(coords * _SNAP).astype(np.int64), axis=0, return_inverse=True)
    vid = vid.reshape(-1)
    is_first = np.ones(nv, dtype=bool)
    is_first[1:] = fidx[1:] != fidx[:-1]
    is_last = np.ones(nv, dtype=bool)
    is_last[:-1] = fidx[1:] != fidx[:-1]
    is_end = is_first | is_last
    node = np.zeros(int(vid.max()) + 1, dtype=bool)
    node[vid[is_end]] = True
    pairs = np.unique(np.stack([vid, fidx], axis=1), axis=0)
    node |= np.bincount(pairs[:, 0], minlength=len(node)) >= 2
    brk = node[vid] & ~is_end
    if not brk.any():
        return geom, np.arange(len(geom)), 0, 0
    rep = 1 + brk.astype(np.int64)
    new_coords = np.repeat(coords, rep, axis=0)
    new_f = np.repeat(fidx, rep)
    # segment starts: each feature's first vertex and the second copy of every break vertex
    start = np.repeat(is_first, rep)
    second = np.zeros(len(new_f), dtype=bool)
    pos = np.cumsum(rep) - 1  # index of the last copy of each original vertex
    second[pos[brk]] = True
    seg = np.cumsum(start | second) - 1
    lines = shapely.linestrings(new_coords, indices=seg)
    src = new_f[start | second]
    return lines, src, int(np.unique(fidx[brk]).size), int(np.unique(vid[brk]).size)


def build_road_graph(
    roads: gpd.GeoDataFrame,
    *,
    report: LoadReport | None = None,
    source: str = "",
    speeds_kph: dict[str, float] | None = None,
) -> nx.MultiDiGraph:
    """Build the road graph from a projected ``roads`` layer (see :mod:`citytwin.layers`).

    Keeps the largest strongly connected component and notes what was dropped in ``report``.
    A ``maxspeed`` that is not a number (``"fast"``) or not positive is repaired to the class
    speed, and ``lanes`` <= 0 to one lane; both are recorded in ``report`` with their rows.
    ``speeds_kph`` overrides the free-flow speed of highway classes (untagged links).
    Zero-length lines are dropped (reported). Raises :class:`GeodataError` for an unknown class
    in ``speeds_kph`` and a network without any strongly connected part of two or more nodes.
    """
    crs = CRS.from_user_input(roads.crs)
    problems: list[str] = []
    row = (roads["_row"].to_numpy(dtype=np.int64) if "_row" in roads.columns
           else np.arange(len(roads)))
    geom = roads.geometry.values
    multi = shapely.get_type_id(geom) == 5
    if multi.any():
        parts, idx = shapely.get_parts(geom, return_index=True)
        row = row[idx]
        geom = parts
        roads = roads.iloc[idx]
        if report is not None:
            report.note(f"roads: split {int(multi.sum())} MultiLineString(s) into their parts")
    roads = roads.reset_index(drop=True)
    length = shapely.length(geom)
    bad = ~(length > 0)
    if bad.any():  # a point-like line joins nothing: dropped and reported
        ids = roads["osmid"].to_numpy() if "osmid" in roads.columns else row
        _report_rows(report if report is not None else _NullReport(), "dropped",
                     "length 0 m (all vertices at one point)", row, bad, ids)
        keep = ~bad
        geom, row, roads = geom[keep], row[keep], roads.loc[keep].reset_index(drop=True)
        if len(geom) == 0:
            raise GeodataError(["layer 'roads': every line has length 0 m"], source=source)
    geom, idx, nsplit, nj = split_at_junctions(geom)
    if nsplit:
        row, roads = row[idx], roads.iloc[idx].reset_index(drop=True)
        if report is not None:
            report.note(f"roads: split {nsplit} feature(s) at {nj} interior junction(s) "
                        "(vertices shared with other links)")
    length = shapely.length(geom)
    highway = roads["highway"].astype(object).where(roads["highway"].notna(), "")
    highway = highway.astype(str).str.strip().str.lower().to_numpy(dtype=object)
    known = np.isin(highway, list(HIGHWAY_DEFAULTS))
    hw_key = np.where(known, highway, _FALLBACK)
    class_speed = {h: v[0] for h, v in HIGHWAY_DEFAULTS.items()}
    for h, v in (speeds_kph or {}).items():
        if h not in HIGHWAY_DEFAULTS:
            problems.append(f"build.speeds_kph: unknown highway class {h!r} (expected one of "
                            f"{', '.join(HIGHWAY_DEFAULTS)})")
        elif not (0 < float(v) <= 200):
            problems.append(f"build.speeds_kph.{h}: {v} km/h (expected 0 < speed <= 200)")
        else:
            class_speed[h] = float(v)
    dspeed = np.array([class_speed[h] for h in hw_key])
    dlanes = np.array([HIGHWAY_DEFAULTS[h][1] for h in hw_key], dtype=float)
    cap_lane = np.array([HIGHWAY_DEFAULTS[h][2] for h in hw_key])

    speed = (parse_maxspeed(roads["maxspeed"]) if "maxspeed" in roads.columns
             else np.full(len(roads), np.nan))
    rep = report if report is not None else _NullReport()
    osm_ids = (roads["osmid"].to_numpy() if "osmid" in roads.columns else row)
    if "maxspeed" in roads.columns:
        raw = roads["maxspeed"]
        given = raw.notna().to_numpy() & (raw.astype(str).str.strip() != "").to_numpy()
        text = raw.astype(str).str.strip().str.lower().to_numpy()
        # OSM's own words for "no number": signals, none, walk ... are not errors
        unparsed = (given & np.isnan(speed) & ~np.isin(text, list(_MAXSPEED_WORDS))
                    & ~pd.Series(text).str.contains(":", regex=False).to_numpy())
        _report_rows(rep, "repaired", "maxspeed is not a number of km/h or mph (e.g. 'fast'); "
                     "speed of the highway class", row, unparsed, osm_ids)
    bad = speed <= 0
    _report_rows(rep, "repaired", "maxspeed <= 0 (expected km/h > 0); speed of the highway class",
                 row, bad, osm_ids)
    speed[bad] = np.nan
    lanes_tag = (pd.to_numeric(roads["lanes"].astype(object).astype(str).str.extract(
        r"^\s*(-?\d+(?:\.\d+)?)", expand=False), errors="coerce").to_numpy(dtype=float)
        if "lanes" in roads.columns else np.full(len(roads), np.nan))
    bad = lanes_tag <= 0
    _report_rows(rep, "repaired", "lanes <= 0 (expected a positive number of lanes); 1 lane",
                 row, bad, osm_ids)
    lanes_tag[bad] = 1.0
    if problems:
        raise GeodataError(problems, source=source)

    oneway = (parse_oneway(roads["oneway"]) if "oneway" in roads.columns
              else np.zeros(len(roads), dtype=np.int8))
    if "junction" in roads.columns:
        rb = roads["junction"].astype(str).str.lower().isin(["roundabout", "circular"]).to_numpy()
        oneway[rb & (oneway == 0)] = 1
    oneway[np.isin(highway, ["motorway"]) & (oneway == 0)] = 1

    if report is not None:
        report.count("road class unknown (treated as unclassified)", int((~known).sum()))
        report.count("road speed from highway class", int(np.isnan(speed).sum()))
        report.count("road lanes from highway class", int(np.isnan(lanes_tag).sum()))
    speed = np.where(np.isnan(speed), dspeed, speed)
    # OSM lanes count both directions of a two-way road
    lanes_dir = np.where(oneway != 0, lanes_tag, np.floor(lanes_tag / 2))
    lanes = np.where(np.isnan(lanes_tag), dlanes, np.maximum(1.0, lanes_dir)).astype(np.int64)

    # nodes from end points
    start = shapely.get_coordinates(shapely.get_point(geom, 0))
    end = shapely.get_coordinates(shapely.get_point(geom, -1))
    pts = np.rint(np.vstack([start, end]) * _SNAP).astype(np.int64)
    uniq, inv = np.unique(pts, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    nf = len(roads)
    u0, v0 = inv[:nf], inv[nf:]

    # directed edges: forward for oneway in (0, 1), backward for oneway in (0, -1)
    fwd = np.flatnonzero(oneway >= 0)
    bwd = np.flatnonzero(oneway <= 0)
    feat = np.concatenate([fwd, bwd])
    eu = np.concatenate([u0[fwd], v0[bwd]])
    ev = np.concatenate([v0[fwd], u0[bwd]])
    rev = np.concatenate([np.zeros(len(fwd), bool), np.ones(len(bwd), bool)])
    order = np.lexsort((rev, feat))
    feat, eu, ev, rev = feat[order], eu[order], ev[order], rev[order]

    n = len(uniq)
    adj = sparse.csr_matrix((np.ones(len(eu)), (eu, ev)), shape=(n, n))
    ncomp, labels = csgraph.connected_components(adj, directed=True, connection="strong")
    sizes = np.bincount(labels, minlength=ncomp)
    big = int(np.argmax(sizes))
    if sizes[big] < 2:
        raise GeodataError(
            ["layer 'roads': the network has no strongly connected part (no two intersections "
             "can reach each other in both directions; check oneway tags and that links meet "
             "at shared end points)"],
            source=source,
        )
    keep_node = labels == big
    keep_edge = keep_node[eu] & keep_node[ev]
    if report is not None and (~keep_node).any():
        report.note(
            f"roads: kept the largest strongly connected part ({int(keep_node.sum())} of {n} "
            f"nodes, {int(keep_edge.sum())} of {len(eu)} directed links); dropped "
            f"{int((~keep_node).sum())} nodes in {ncomp - 1} smaller part(s)"
        )
    feat, eu, ev, rev = feat[keep_edge], eu[keep_edge], ev[keep_edge], rev[keep_edge]

    xy = uniq.astype(float) / _SNAP
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(xy[:, 0], xy[:, 1])
    G = nx.MultiDiGraph(crs=crs.to_string())
    G.graph["simplified"] = False
    nodes = np.flatnonzero(keep_node)
    kf = np.unique(feat)  # osmnx street_count: physical street segments meeting at a node
    streets = np.bincount(np.concatenate([u0[kf], v0[kf]]), minlength=n)
    G.add_nodes_from(
        (int(i), {"x": float(xy[i, 0]), "y": float(xy[i, 1]),
                  "lon": float(lon[i]), "lat": float(lat[i]), "street_count": int(streets[i])})
        for i in nodes
    )
    egeom = geom[feat].copy()
    egeom[rev] = shapely.reverse(egeom[rev])
    osmid = (pd.to_numeric(roads["osmid"], errors="coerce").fillna(-1).astype(np.int64).to_numpy()
             if "osmid" in roads.columns else row.astype(np.int64))
    name = (roads["name"].astype(object).where(roads["name"].notna(), "").astype(str).to_numpy()
            if "name" in roads.columns else np.full(len(roads), "", dtype=object))
    spd = speed[feat]
    ln = length[feat]
    la = lanes[feat]
    G.add_edges_from(
        (int(eu[i]), int(ev[i]), {
            "edge_id": i,
            "osmid": int(osmid[f]),
            "name": str(name[f]),
            "highway": str(highway[f]),
            "oneway": bool(oneway[f] != 0),
            "reversed": bool(rev[i]),
            "length": float(ln[i]),
            "speed_kph": float(spd[i]),
            "travel_time": float(ln[i] / (spd[i] / 3.6)),
            "lanes": int(la[i]),
            "capacity_vph": float(la[i] * cap_lane[f]),
            "geometry": egeom[i],
        })
        for i, f in enumerate(feat.tolist())
    )
    log.info("road graph: %d nodes, %d edges", G.number_of_nodes(), G.number_of_edges())
    return G
