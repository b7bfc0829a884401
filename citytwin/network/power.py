"""Power graph: the city's distribution grid as an ``nx.Graph``, and its pandapower export.

Where the city has no (or only a partial) power layer, a radial distribution grid is synthesized
the way the field does it (pylovo, ding0):

1. **Design load per building: the energy engine's own load model.** Each building's peak
   electricity over the shipped typical year (base electricity by its BDEW profile + cooling,
   no heat pumps; :func:`citytwin.energy.loads.design_peak_kw`) — the same numbers the energy
   engine runs, so a grid the twin designed is not overloaded by the city's own base load.
   Those load profiles are already the *coincident* load of a large group (a standard load
   profile is the average of many consumers), so the installed power behind them is
   ``P_inst = P_peak / f`` with ``f`` the coincidence factor of the building's class below.
2. **Coincident load** of ``N`` consumers of one class: ``P = P_inst·[f + (1−f)·N^(−3/4)]``
   (Kerber 2011, *Aufnahmefähigkeit von Niederspannungsverteilnetzen ...*, TU München; the same
   formula pylovo uses), which tends to the load model's ``Σ P_peak`` for large ``N`` and adds
   the diversity a small group has on top. ``N`` counts dwellings (one per 75 m² of
   residential floor area) or 1 per non-residential building. ``f`` (the coincidence factor
   as N → ∞) is 0.07 for households (Kerber's value for households without electric heating)
   and :data:`COINCIDENCE_F` for the other classes (assumed). An area's load is the sum over
   classes. The planning margin is :data:`RESERVE` (20 %) of each transformer's rating.
3. **Transformer areas**: buildings are split recursively (weighted median along the principal
   axis of their coordinates) until every area's coincident load fits a 630 kVA transformer
   with a 20 % reserve and its radius is under :data:`MAX_AREA_RADIUS_M`. A building that alone
   exceeds the largest size gets its own station with parallel 800 kVA units.
4. **Transformer size**: the smallest standard size (250/400/630/800 kVA) with
   ``size·(1 − reserve) ≥ P / cos φ``.
5. **Substations**: the city's own (power layer rows with ``power == "substation"`` that are
   not ``minor_distribution``), else one per ~10k buildings at load-weighted centres (weighted
   k-means with a deterministic start). Each transformer is fed from its nearest substation.
6. **MV feeders along streets**: a substation's transformers are split into feeders by bearing
   from the substation (angular sweep), each feeder closed before its design load exceeds 60 % of
   one NA2XS2Y 1x240 cable's rating (≈ 8.8 MVA at 20 kV). Each feeder is a Steiner tree over the
   (undirected) road graph spanning the substation's road node and its transformers' road nodes
   (Mehlhorn's 2-approximation: the MST of the metric closure restricted to Voronoi-adjacent
   terminals, expanded to road paths, pruned). Chains of road nodes without a branch or a
   transformer are contracted into one ``mv_line`` edge whose ``length_m`` is the sum of the road
   lengths. Feeders of one substation may run along the same street (separate cables).
7. **Tie switches**: a few normally-open ``tie`` edges between feeder ends that are close in
   space (≤ 1.5 km × 1.3 detour) but far apart along the radial grid (≥ 3× the tie and 300 m
   more, or under different substations), for restoration after a fault.
8. **LV**: one ``service`` edge from every building to its transformer (LV aggregated per
   transformer area: the LV feeder itself is not modelled; ``lv_line`` edges are not used).
   Building nodes carry ``customers`` (dwellings, or 1), ``p_inst_kw`` and ``design_kw`` (their
   share of the area's coincident load).

OSM transformer stations (``power=substation`` + ``substation=minor_distribution`` or
``power=transformer``) are used as transformer sites where present: an area takes the OSM site
nearest to its load centre if it is within the area radius. OSM line geometries are not used
(distribution cables are rarely mapped; feeders are laid along streets instead).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse import csgraph
from scipy.spatial import cKDTree

from citytwin.energy.loads import design_peak_kw
from citytwin.energy.weather import typical_year
from citytwin.errors import GeodataError

if TYPE_CHECKING:  # pragma: no cover
    from citytwin.city import City

__all__ = [
    "TRANSFORMER_SIZES_KVA",
    "COINCIDENCE_F",
    "installed_kw",
    "coincident_kw",
    "transformer_size_kva",
    "build_power_graph",
    "building_transformers",
    "to_pandapower",
]

log = logging.getLogger(__name__)

TRANSFORMER_SIZES_KVA: tuple[int, ...] = (250, 400, 630, 800)
SUBSTATION_SIZES_MVA: tuple[int, ...] = (25, 40, 63)
COS_PHI = 0.95
RESERVE = 0.2
AREA_LIMIT_KVA = 630 * (1 - RESERVE)
MAX_AREA_RADIUS_M = 350.0
BUILDINGS_PER_SUBSTATION = 10_000
M2_PER_DWELLING = 75.0
KERBER_F_HOUSEHOLD = 0.07
# Coincidence factor f (N → ∞) per consumer class: households after Kerber (2011); the others assumed.
COINCIDENCE_F: dict[str, float] = {"residential": KERBER_F_HOUSEHOLD, "commercial": 0.5,
                                   "public": 0.6, "industrial": 0.6}
_USE_CLASS: dict[str, str] = {
    "residential": "residential",
    "office": "commercial",
    "retail": "commercial",
    "hospitality": "commercial",
    "other": "commercial",
    "education": "public",
    "health": "public",
    "public": "public",
    "industrial": "industrial",
}
_CLASSES: tuple[str, ...] = ("residential", "commercial", "public", "industrial")
# Thermal limit of one MV cable system (NA2XS2Y 1x240 RM/25, 0.421 kA) at 20 kV, kVA; used at 60 %.
_CABLE_KVA_20KV = math.sqrt(3) * 20.0 * 421.0
_CABLE_UTILISATION = 0.6
_STUB_M = 10.0
_TIE_DETOUR = 1.3
_TIE_MAX_M = 1500.0


# --------------------------------------------------------------------------- loads and sizes


def installed_kw(use: Iterable[str], floor_area_m2: Iterable[float],
                 vintage: Iterable[str] | None = None, *,
                 temperature_c: pd.Series | None = None) -> np.ndarray:
    """Installed (non-coincident) power per building, kW: the energy load model's peak over
    ``temperature_c`` (default: the shipped typical year) ÷ the coincidence factor ``f`` of
    the building's class (module doc, steps 1–2)."""
    use_a = np.asarray(list(use), dtype=object)
    area = np.asarray(list(floor_area_m2), dtype=float)
    vin = None if vintage is None else np.asarray(list(vintage), dtype=object)
    temp = typical_year() if temperature_c is None else temperature_c
    peak = design_peak_kw(use_a, area, vin, temp)
    f = np.array([COINCIDENCE_F[_USE_CLASS[u]] for u in use_a], dtype=float)
    return peak / f


def _consumers(use: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Number of consumers per building (dwellings for residential, 1 otherwise)."""
    n = np.ones(area.shape, dtype=float)
    res = use == "residential"
    n[res] = np.maximum(1.0, np.round(area[res] / M2_PER_DWELLING))
    return n


def coincident_kw(p_inst_kw: np.ndarray, n_consumers: np.ndarray, cls: np.ndarray) -> float:
    """Coincident load of a group: Σ_class P_inst·[f + (1−f)·N^(−3/4)] (Kerber 2011)."""
    total = 0.0
    for c in _CLASSES:
        m = cls == c
        if not m.any():
            continue
        n = float(n_consumers[m].sum())
        f = COINCIDENCE_F[c]
        total += float(p_inst_kw[m].sum()) * (f + (1.0 - f) * n ** -0.75)
    return total


_F_BY_CODE = np.array([COINCIDENCE_F[c] for c in _CLASSES])


def _coincident_codes(p_inst_kw: np.ndarray, n_consumers: np.ndarray, code: np.ndarray) -> float:
    """:func:`coincident_kw` with integer class codes (index into ``_CLASSES``), vectorized."""
    p = np.bincount(code, weights=p_inst_kw, minlength=len(_CLASSES))
    n = np.bincount(code, weights=n_consumers, minlength=len(_CLASSES))
    ok = n > 0
    f = _F_BY_CODE[ok]
    return float(np.sum(p[ok] * (f + (1.0 - f) * n[ok] ** -0.75)))


def transformer_size_kva(load_kva: float, *, reserve: float = RESERVE) -> tuple[int, int]:
    """(rated_kva, parallel units): the smallest standard size with size·(1−reserve) ≥ load."""
    for s in TRANSFORMER_SIZES_KVA:
        if s * (1.0 - reserve) >= load_kva:
            return s, 1
    top = TRANSFORMER_SIZES_KVA[-1]
    return top, int(math.ceil(load_kva / (top * (1.0 - reserve))))


# --------------------------------------------------------------------------- input checks


def _check_inputs(buildings: gpd.GeoDataFrame, roads: nx.MultiDiGraph) -> None:
    problems: list[str] = []
    for col in ("use", "floor_area_m2", "road_node", "geometry"):
        if col not in buildings.columns:
            problems.append(f"buildings: missing column {col!r}")
    if len(buildings) == 0:
        problems.append("buildings: empty layer (need at least one building)")
    if roads.number_of_nodes() == 0:
        problems.append("roads: empty graph")
    if problems:
        raise GeodataError(problems, source="build_power_graph")
    area = pd.to_numeric(buildings["floor_area_m2"], errors="coerce")
    for bid in buildings.index[~np.isfinite(area.to_numpy()) | (area.to_numpy() < 0)][:20]:
        problems.append(f"buildings row {bid}: floor_area_m2={buildings.at[bid, 'floor_area_m2']!r}, "
                        "expected a finite number >= 0")
    bad_use = ~buildings["use"].isin(list(_USE_CLASS))
    for bid in buildings.index[bad_use.to_numpy()][:20]:
        problems.append(f"buildings row {bid}: use={buildings.at[bid, 'use']!r}, expected one of "
                        f"{sorted(_USE_CLASS)}")
    missing = ~buildings["road_node"].isin(list(roads.nodes))
    for bid in buildings.index[missing.to_numpy()][:20]:
        problems.append(f"buildings row {bid}: road_node={buildings.at[bid, 'road_node']!r} is not "
                        "a node of the road graph")
    for u, d in roads.nodes(data=True):
        if "x" not in d or "y" not in d:
            problems.append(f"roads node {u}: missing x/y")
            break
    if problems:
        raise GeodataError(problems, source="build_power_graph")


# --------------------------------------------------------------------------- road graph arrays


@dataclass
class _Roads:
    ids: np.ndarray
    pos: dict[Any, int]
    xy: np.ndarray
    mat: sparse.csr_matrix  # undirected, min length over parallel/opposite edges
    coo_row: np.ndarray
    coo_col: np.ndarray
    coo_w: np.ndarray


def _road_arrays(roads: nx.MultiDiGraph) -> _Roads:
    ids = np.array(list(roads.nodes), dtype=object)
    pos = {n: i for i, n in enumerate(ids.tolist())}
    xy = np.array([[roads.nodes[n]["x"], roads.nodes[n]["y"]] for n in ids], dtype=float)
    rows, cols, w = [], [], []
    for u, v, d in roads.edges(data=True):
        if u == v:
            continue
        length = d.get("length")
        if length is None or not np.isfinite(length) or length <= 0:
            length = float(np.hypot(*(xy[pos[u]] - xy[pos[v]]))) or 0.1
        a, b = pos[u], pos[v]
        rows += [a, b]
        cols += [b, a]
        w += [float(length), float(length)]
    n = len(ids)
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    ww = np.asarray(w, dtype=float)
    if len(ww):  # keep the shortest of parallel / opposite edges (coo -> csr would sum them)
        order = np.lexsort((ww, c, r))
        r, c, ww = r[order], c[order], ww[order]
        first = np.ones(len(r), dtype=bool)
        first[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
        r, c, ww = r[first], c[first], ww[first]
    mat = sparse.csr_matrix((ww, (r, c)), shape=(n, n))
    coo = mat.tocoo()
    return _Roads(ids=ids, pos=pos, xy=xy, mat=mat, coo_row=coo.row.astype(np.int64),
                  coo_col=coo.col.astype(np.int64), coo_w=coo.data)


# --------------------------------------------------------------------------- clustering


def _split(idx: np.ndarray, xy: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split ``idx`` at the weighted median along the principal axis of its points."""
    pts = xy[idx]
    c = pts - pts.mean(axis=0)
    cov = c.T @ c
    vals, vecs = np.linalg.eigh(cov)
    axis = vecs[:, int(np.argmax(vals))]
    proj = c @ axis
    order = np.argsort(proj, kind="stable")
    cw = np.cumsum(w[idx][order] + 1e-9)
    k = int(np.searchsorted(cw, cw[-1] / 2.0))
    k = min(max(k, 1), len(idx) - 1)
    return idx[order[:k]], idx[order[k:]]


def _areas(xy: np.ndarray, p_inst: np.ndarray, n_cons: np.ndarray, code: np.ndarray) -> list[np.ndarray]:
    """Recursive bisection into transformer areas (load and radius limits)."""
    done: list[np.ndarray] = []
    todo = [np.arange(len(xy))]
    while todo:
        idx = todo.pop()
        load = _coincident_codes(p_inst[idx], n_cons[idx], code[idx]) / COS_PHI
        if len(idx) == 1:
            done.append(idx)
            continue
        ctr = xy[idx].mean(axis=0)
        radius = float(np.max(np.hypot(*(xy[idx] - ctr).T)))
        if load <= AREA_LIMIT_KVA and radius <= MAX_AREA_RADIUS_M:
            done.append(idx)
            continue
        a, b = _split(idx, xy, p_inst)
        todo += [b, a]
    done.sort(key=lambda a: int(a.min()))
    return done


def _weighted_kmeans(xy: np.ndarray, w: np.ndarray, k: int, *, iters: int = 20) -> np.ndarray:
    """Deterministic weighted k-means: start from a bisection into k groups, then Lloyd steps."""
    groups = [np.arange(len(xy))]
    while len(groups) < k:
        groups.sort(key=lambda g: -float(w[g].sum()))
        g = groups.pop(0)
        if len(g) < 2:
            groups.append(g)
            break
        groups += list(_split(g, xy, w))
    centres = np.array([np.average(xy[g], axis=0, weights=w[g] + 1e-9) for g in groups])
    for _ in range(iters):
        lab = cKDTree(centres).query(xy)[1]
        new = centres.copy()
        for j in range(len(centres)):
            m = lab == j
            if m.any():
                new[j] = np.average(xy[m], axis=0, weights=w[m] + 1e-9)
        if np.allclose(new, centres):
            break
        centres = new
    return centres


# --------------------------------------------------------------------------- power layer


def _layer_sites(power_layer: gpd.GeoDataFrame | None, crs: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(substations, transformer sites) from an OSM-style power layer: columns x, y, osm_id, name."""
    empty = pd.DataFrame(columns=["x", "y", "osm_id", "name"])
    if power_layer is None or len(power_layer) == 0:
        return empty, empty
    if "power" not in power_layer.columns:
        raise GeodataError(["power layer: missing column 'power' (OSM power=* tag value)"],
                           source="build_power_graph")
    gdf = power_layer
    if gdf.crs is not None and crs is not None and gdf.crs != crs:
        gdf = gdf.to_crs(crs)
    kind = gdf["power"].astype(str).str.lower()

    def _tag(col: str) -> pd.Series:
        if col in gdf.columns:
            return gdf[col].astype(str).str.lower()
        if "tags" in gdf.columns:
            return gdf["tags"].astype(str).str.lower().str.extract(
                rf'"?{col}"?\s*[:=]\s*"?([a-z_]+)', expand=False).fillna("")
        return pd.Series("", index=gdf.index)

    minor = _tag("substation").str.contains("minor_distribution")
    is_sub = (kind == "substation") & ~minor
    is_tr = ((kind == "substation") & minor) | (kind == "transformer")
    pts = gdf.geometry.representative_point()

    def _frame(mask: pd.Series) -> pd.DataFrame:
        sel = gdf[mask.to_numpy()]
        p = pts[mask.to_numpy()]
        return pd.DataFrame({
            "x": p.x.to_numpy(), "y": p.y.to_numpy(),
            "osm_id": sel["id"].astype(str).to_numpy() if "id" in sel else
            (sel["osm_id"].astype(str).to_numpy() if "osm_id" in sel else ""),
            "name": sel["name"].fillna("").astype(str).to_numpy() if "name" in sel else "",
        })

    return _frame(is_sub), _frame(is_tr)


# --------------------------------------------------------------------------- Steiner feeders


def _steiner_edges(R: _Roads, terminals: np.ndarray, *, limit: float = np.inf
                   ) -> list[tuple[int, int, float]]:
    """Mehlhorn's Steiner tree on the road graph: (u, v, length) road-position edges.

    ``limit`` bounds the multi-source search (metres); if the terminals' regions do not all meet
    within it, the search is repeated without a bound.
    """
    terminals = np.unique(terminals)
    if len(terminals) < 2:
        return []
    dist, pred, src = csgraph.dijkstra(R.mat, directed=True, indices=terminals,
                                       min_only=True, return_predecessors=True, limit=limit)
    i, j, w = R.coo_row, R.coo_col, R.coo_w
    m = (src[i] != src[j]) & (src[i] >= 0) & (src[j] >= 0) & (i < j)
    i, j, w = i[m], j[m], w[m]
    d = dist[i] + w + dist[j]
    tmap = np.full(len(R.ids), -1, dtype=np.int64)
    tmap[terminals] = np.arange(len(terminals))
    a, b = tmap[src[i]], tmap[src[j]]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((d, hi, lo))
    lo, hi, d, i, j, w = lo[order], hi[order], d[order], i[order], j[order], w[order]
    first = np.ones(len(lo), dtype=bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    lo, hi, d, i, j, w = lo[first], hi[first], d[first], i[first], j[first], w[first]
    k = len(terminals)
    closure = sparse.csr_matrix((d + 1e-9, (lo, hi)), shape=(k, k))
    mst = csgraph.minimum_spanning_tree(closure).tocoo()
    if mst.nnz < k - 1:
        if np.isfinite(limit):
            return _steiner_edges(R, terminals)
        raise GeodataError([f"roads: {k} feeder terminals are not connected by the road graph"],
                           source="build_power_graph")
    pick = {(int(r), int(c)): n for n, (r, c) in enumerate(zip(lo.tolist(), hi.tolist(), strict=True))}
    used: dict[tuple[int, int], float] = {}

    def _walk(node: int) -> None:
        while True:
            p = int(pred[node])
            if p < 0:
                return
            key = (min(p, node), max(p, node))
            if key in used:
                return
            used[key] = float(R.mat[p, node])
            node = p

    for r, c in zip(mst.row.tolist(), mst.col.tolist(), strict=True):
        n = pick[(min(r, c), max(r, c))]
        u, v = int(i[n]), int(j[n])
        used[(min(u, v), max(u, v))] = float(w[n])
        _walk(u)
        _walk(v)
    # MST of the union, then prune non-terminal leaves (Mehlhorn's last steps)
    H = nx.Graph()
    H.add_weighted_edges_from((u, v, ln) for (u, v), ln in used.items())
    T = nx.minimum_spanning_tree(H)
    term = set(terminals.tolist())
    leaves = [n for n in T.nodes if T.degree(n) == 1 and n not in term]
    while leaves:
        nxt = []
        for n in leaves:
            nbrs = list(T.neighbors(n))
            T.remove_node(n)
            for q in nbrs:
                if T.degree(q) == 1 and q not in term:
                    nxt.append(q)
        leaves = nxt
    return [(int(u), int(v), float(dd["weight"])) for u, v, dd in T.edges(data=True)]


def _feeder_groups(rel_xy: np.ndarray, load_kva: np.ndarray, *, limit_kva: float) -> list[np.ndarray]:
    """Split a substation's transformers into feeders: sweep by bearing from the substation
    (starting after the widest empty sector) and close a feeder before it exceeds ``limit_kva``."""
    n = len(load_kva)
    if n == 0:
        return []
    ang = np.arctan2(rel_xy[:, 1], rel_xy[:, 0])
    order = np.lexsort((np.hypot(rel_xy[:, 0], rel_xy[:, 1]), ang))
    a = ang[order]
    gaps = np.diff(np.r_[a, a[0] + 2 * np.pi])
    start = (int(np.argmax(gaps)) + 1) % n
    order = np.roll(order, -start)
    groups: list[list[int]] = [[]]
    acc = 0.0
    for i in order.tolist():
        if groups[-1] and acc + load_kva[i] > limit_kva:
            groups.append([])
            acc = 0.0
        groups[-1].append(i)
        acc += float(load_kva[i])
    return [np.array(g, dtype=np.int64) for g in groups]


def _contract(tree_edges: list[tuple[int, int, float]], root: int, keep: set[int]
              ) -> list[tuple[int, int, float]]:
    """Contract chains of degree-2 nodes not in ``keep`` into single edges (parent, child, length)."""
    T = nx.Graph()
    T.add_node(root)
    T.add_weighted_edges_from(tree_edges)
    kept = {n for n in T.nodes if n in keep or n == root or T.degree(n) != 2}
    out: list[tuple[int, int, float]] = []
    stack = [root]
    seen = {root}
    while stack:
        a = stack.pop()
        for nb in sorted(T.neighbors(a)):
            if nb in seen:
                continue
            length = T[a][nb]["weight"]
            prev, cur = a, nb
            seen.add(cur)
            while cur not in kept:
                nxt = [q for q in T.neighbors(cur) if q != prev][0]
                length += T[cur][nxt]["weight"]
                prev, cur = cur, nxt
                seen.add(cur)
            out.append((a, cur, float(length)))
            stack.append(cur)
    return out


# --------------------------------------------------------------------------- the builder


def build_power_graph(
    buildings: gpd.GeoDataFrame,
    roads: nx.MultiDiGraph,
    power_layer: gpd.GeoDataFrame | None = None,
    *,
    crs: Any,
    mv_kv: float = 20.0,
    hv_kv: float = 110.0,
) -> nx.Graph:
    """Build the city's distribution grid (see the module docstring for the recipe).

    ``buildings`` needs ``use``, ``floor_area_m2``, ``road_node`` and a geometry (index =
    building_id); ``roads`` node attributes ``x``/``y`` and edge ``length``; ``power_layer`` is an
    optional OSM-style layer with a ``power`` column (``substation``, ``transformer``, ...).
    Raises :class:`~citytwin.errors.GeodataError` listing every problem of the inputs.
    """
    _check_inputs(buildings, roads)
    R = _road_arrays(roads)
    rtree = cKDTree(R.xy)
    bids = buildings.index.to_numpy()
    pts = buildings.geometry.representative_point()
    bxy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
    use = buildings["use"].to_numpy(dtype=object)
    area = pd.to_numeric(buildings["floor_area_m2"]).to_numpy(dtype=float)
    p_inst = installed_kw(use, area, buildings["vintage"] if "vintage" in buildings else None)
    n_cons = _consumers(use, area)
    cls = np.array([_USE_CLASS[u] for u in use], dtype=object)
    bnode = np.array([R.pos[n] for n in buildings["road_node"].tolist()], dtype=np.int64)

    subs_osm, tr_osm = _layer_sites(power_layer, crs)
    tr_tree = cKDTree(tr_osm[["x", "y"]].to_numpy(float)) if len(tr_osm) else None
    tr_used: set[int] = set()

    # 1-4: transformer areas, sites, sizes
    code = pd.Index(_CLASSES).get_indexer(cls).astype(np.int64)
    areas = _areas(bxy, p_inst, n_cons, code)
    trafos: list[dict[str, Any]] = []
    b_trafo = np.empty(len(bids), dtype=np.int64)
    design_kw = np.zeros(len(bids))
    for k, idx in enumerate(areas):
        p_kw = _coincident_codes(p_inst[idx], n_cons[idx], code[idx])
        s_kva = p_kw / COS_PHI
        rated, parallel = transformer_size_kva(s_kva)
        ctr = np.average(bxy[idx], axis=0, weights=p_inst[idx] + 1e-9)
        osm_id = ""
        site = None
        if tr_tree is not None:
            dd, jj = tr_tree.query(ctr, k=min(4, len(tr_osm)))
            for dist_j, j in zip(np.atleast_1d(dd), np.atleast_1d(jj), strict=True):
                if dist_j <= MAX_AREA_RADIUS_M and int(j) not in tr_used:
                    tr_used.add(int(j))
                    site = tr_osm[["x", "y"]].to_numpy(float)[int(j)]
                    osm_id = str(tr_osm["osm_id"].iloc[int(j)])
                    break
        if site is not None:
            rpos = int(rtree.query(site)[1])
        else:
            cand = np.unique(bnode[idx])
            rpos = int(cand[np.argmin(np.hypot(*(R.xy[cand] - ctr).T))])
        tx, ty = R.xy[rpos]
        trafos.append(dict(id=f"t{k}", x=float(tx), y=float(ty), rpos=rpos, rated_kva=rated,
                           parallel=parallel, design_kva=s_kva, n_buildings=len(idx), osm_id=osm_id))
        b_trafo[idx] = k
        inst = p_inst[idx].sum()
        design_kw[idx] = p_inst[idx] * (p_kw / inst if inst > 0 else 0.0)
    t_rpos = np.array([t["rpos"] for t in trafos], dtype=np.int64)
    t_load = np.array([t["design_kva"] for t in trafos])

    # 5: substations
    ext = np.array([R.xy.min(0) - 2000.0, R.xy.max(0) + 2000.0])
    if len(subs_osm):
        sxy = subs_osm[["x", "y"]].to_numpy(float)
        inside = np.all((sxy >= ext[0]) & (sxy <= ext[1]), axis=1)
        subs = subs_osm[inside].reset_index(drop=True)
    else:
        subs = subs_osm
    synthesized_subs = len(subs) == 0
    if synthesized_subs:
        n_sub = max(1, math.ceil(len(bids) / BUILDINGS_PER_SUBSTATION))
        n_sub = min(n_sub, len(trafos))
        centres = _weighted_kmeans(R.xy[t_rpos], t_load, n_sub)
        subs = pd.DataFrame({"x": centres[:, 0], "y": centres[:, 1], "osm_id": "", "name": ""})
    s_rpos = rtree.query(subs[["x", "y"]].to_numpy(float))[1].astype(np.int64)
    # each transformer to its nearest substation along the roads
    _, _, src = csgraph.dijkstra(R.mat, directed=True, indices=np.unique(s_rpos), min_only=True,
                                 return_predecessors=True)
    first_sub = {int(p): s for s, p in reversed(list(enumerate(s_rpos.tolist())))}
    t_sub = np.array([first_sub[int(src[p])] for p in t_rpos], dtype=np.int64)

    G = nx.Graph(crs=str(crs), mv_kv=float(mv_kv), hv_kv=float(hv_kv),
                 synthesized=True, substations_from_layer=not synthesized_subs,
                 osm_transformer_sites=len(tr_used))
    line_no = 0
    feeder_kva = math.sqrt(3) * mv_kv * 421.0 * _CABLE_UTILISATION
    leaf_trafos: list[int] = []
    for s in range(len(subs)):
        members = np.flatnonzero(t_sub == s)
        if len(members) == 0:
            log.info("substation %s feeds no transformer; left out", subs["osm_id"].iloc[s] or s)
            continue
        sid = f"sub{s}"
        load_kva = float(t_load[members].sum())
        units = max(1, math.ceil(load_kva / 1000.0 / (SUBSTATION_SIZES_MVA[-1] * (1 - RESERVE))))
        rated_mva = next((m for m in SUBSTATION_SIZES_MVA if m * (1 - RESERVE) * 1000 >= load_kva / units),
                         SUBSTATION_SIZES_MVA[-1])
        root = int(s_rpos[s])
        G.add_node(sid, kind="substation", x=float(subs["x"].iloc[s]), y=float(subs["y"].iloc[s]),
                   vn_kv=float(mv_kv), vn_hv_kv=float(hv_kv), rated_mva=float(rated_mva * units),
                   units=units, road_node=R.ids[root], osm_id=str(subs["osm_id"].iloc[s]),
                   name=str(subs["name"].iloc[s]))
        # 6: feeders — angular sectors around the substation, each within one cable's rating,
        # each laid as its own Steiner tree along the streets
        sxy = subs[["x", "y"]].to_numpy(float)[s]
        for f, group in enumerate(_feeder_groups(R.xy[t_rpos[members]] - R.xy[root], t_load[members],
                                                 limit_kva=feeder_kva)):
            fm = members[group]
            fid = f"{sid}/f{f}"
            terms = np.concatenate([[root], t_rpos[fm]])
            txy = R.xy[np.unique(terms)]
            gap = float(cKDTree(txy).query(txy, k=2)[0][:, 1].max()) if len(txy) > 1 else 0.0
            tree = _contract(_steiner_edges(R, terms, limit=3.0 * gap + 500.0), root,
                             set(t_rpos[fm].tolist()))

            def mv(p: int, _s: int = s, _f: int = f) -> str:
                return f"m{_s}_{_f}_{R.ids[p]}"

            G.add_node(mv(root), kind="mv_node", x=float(R.xy[root, 0]), y=float(R.xy[root, 1]),
                       road_node=R.ids[root], vn_kv=float(mv_kv), substation=sid, feeder=fid)
            stub = max(_STUB_M, float(np.hypot(*(R.xy[root] - sxy))))
            G.add_edge(sid, mv(root), kind="mv_line", length_m=stub, element_id=f"line{line_no}",
                       feeder=fid)
            line_no += 1
            children: dict[int, list[int]] = {}
            for a, b, ln in tree:
                G.add_node(mv(b), kind="mv_node", x=float(R.xy[b, 0]), y=float(R.xy[b, 1]),
                           road_node=R.ids[b], vn_kv=float(mv_kv), substation=sid, feeder=fid)
                G.add_edge(mv(a), mv(b), kind="mv_line", length_m=max(ln, 1.0),
                           element_id=f"line{line_no}", feeder=fid)
                line_no += 1
                children.setdefault(a, []).append(b)
            for t in fm.tolist():
                tr = trafos[t]
                G.add_node(tr["id"], kind="transformer", x=tr["x"], y=tr["y"],
                           rated_kva=int(tr["rated_kva"]), parallel=int(tr["parallel"]),
                           vn_hv_kv=float(mv_kv), vn_lv_kv=0.4, road_node=R.ids[tr["rpos"]],
                           substation=sid, feeder=fid, design_kva=float(tr["design_kva"]),
                           n_buildings=int(tr["n_buildings"]), osm_id=tr["osm_id"])
                G.add_edge(mv(tr["rpos"]), tr["id"], kind="mv_line", length_m=_STUB_M,
                           element_id=f"line{line_no}", feeder=fid)
                line_no += 1
                if not children.get(tr["rpos"]):
                    leaf_trafos.append(t)
    # cable systems per MV edge from the design load below it (rooted at each substation)
    cable_kva = math.sqrt(3) * mv_kv * 421.0 * _CABLE_UTILISATION
    depth: dict[str, float] = {}
    radial = nx.DiGraph()
    for sid in [n for n, d in G.nodes(data=True) if d["kind"] == "substation"]:
        below: dict[str, float] = {}
        order = list(nx.dfs_postorder_nodes(G, sid))
        parent = {v: u for u, v in nx.bfs_edges(G, sid)}
        depth[sid] = 0.0
        radial.add_edge("__root__", sid)
        for u, v in nx.bfs_edges(G, sid):
            depth[v] = depth[u] + G[u][v]["length_m"]
            radial.add_edge(u, v)
        for n in order:
            d = G.nodes[n]
            below[n] = below.get(n, 0.0) + (d.get("design_kva", 0.0) if d["kind"] == "transformer" else 0.0)
            if n in parent:
                p = parent[n]
                below[p] = below.get(p, 0.0) + below[n]
                G[p][n]["n_cables"] = max(1, math.ceil(below[n] / cable_kva))
                G[p][n]["design_kva"] = below[n]
    # 7: tie switches between feeder ends that are close in space but far apart along the tree
    tie_no = _add_ties(G, [trafos[t]["id"] for t in leaf_trafos], depth, radial)
    # 8: building service connections
    for i, bid in enumerate(bids.tolist()):
        tr = trafos[int(b_trafo[i])]
        node = f"b{bid}"
        G.add_node(node, kind="building", x=float(bxy[i, 0]), y=float(bxy[i, 1]), building_id=bid,
                   transformer=tr["id"], p_inst_kw=float(p_inst[i]), design_kw=float(design_kw[i]),
                   customers=int(n_cons[i]))
        G.add_edge(tr["id"], node, kind="service",
                   length_m=max(1.0, float(np.hypot(bxy[i, 0] - tr["x"], bxy[i, 1] - tr["y"]))),
                   element_id=f"svc{bid}")
    log.info("power graph: %d substations, %d transformers, %d MV lines, %d ties, %d buildings",
             sum(1 for _, d in G.nodes(data=True) if d["kind"] == "substation"), len(trafos),
             line_no, tie_no, len(bids))
    return G


def _add_ties(G: nx.Graph, leaves: list[str], depth: dict[str, float], radial: nx.DiGraph) -> int:
    """Add normally-open ties between leaf transformers' MV nodes; returns how many.

    A pair of feeder ends qualifies when the tie (straight line × detour) is under
    :data:`_TIE_MAX_M` and the path between them along the radial tree is at least three times the
    tie and 300 m longer (or they hang under different substations). Greedy by that ratio, each end
    used once: first until every feeder has a tie where a candidate exists, then up to
    ``max(2, leaves / 8)`` ties in all.
    """
    if len(leaves) < 2:
        return 0
    xy = np.array([[G.nodes[t]["x"], G.nodes[t]["y"]] for t in leaves])
    dd, jj = cKDTree(xy).query(xy, k=min(17, len(leaves)))
    cand = {(min(a, int(b)), max(a, int(b))): float(d) for a in range(len(leaves))
            for d, b in zip(dd[a][1:], jj[a][1:], strict=True) if d * _TIE_DETOUR <= _TIE_MAX_M}
    pairs = sorted(cand)
    lca = dict(nx.tree_all_pairs_lowest_common_ancestor(
        radial, root="__root__", pairs=[(leaves[a], leaves[b]) for a, b in pairs]))
    scored = []
    for a, b in pairs:
        ta, tb = leaves[a], leaves[b]
        tie_len = max(cand[(a, b)] * _TIE_DETOUR, _STUB_M)
        anc = lca.get((ta, tb), lca.get((tb, ta)))
        tree = math.inf if anc in (None, "__root__") else depth[ta] + depth[tb] - 2 * depth[str(anc)]
        if tree >= 3 * tie_len and tree - tie_len >= 300.0:
            scored.append((-min(tree / tie_len, 1e9), tie_len, a, b))
    scored.sort()
    feeder = {i: G.nodes[t].get("feeder", "") for i, t in enumerate(leaves)}
    has_tie: set[str] = set()
    used: set[int] = set()
    n = 0

    def add(a: int, b: int, tie_len: float) -> bool:
        nonlocal n
        ma = next(x for x in G.neighbors(leaves[a]) if G.nodes[x]["kind"] == "mv_node")
        mb = next(x for x in G.neighbors(leaves[b]) if G.nodes[x]["kind"] == "mv_node")
        if ma == mb or G.has_edge(ma, mb):
            return False
        used.update((a, b))
        has_tie.update((feeder[a], feeder[b]))
        G.add_edge(ma, mb, kind="tie", length_m=tie_len, element_id=f"tie{n}", normally_open=True,
                   n_cables=1)
        n += 1
        return True

    # first every feeder gets a tie where it can (an open ring, as urban MV grids are run) ...
    for _, tie_len, a, b in scored:
        if a not in used and b not in used and (feeder[a] not in has_tie or feeder[b] not in has_tie):
            add(a, b, tie_len)
    # ... then a few more where they shorten restoration paths most
    cap = max(2, len(leaves) // 8, n)
    for _, tie_len, a, b in scored:
        if n >= cap:
            break
        if a not in used and b not in used:
            add(a, b, tie_len)
    return n


def building_transformers(G: nx.Graph) -> pd.Series:
    """building_id → transformer node id (for ``City.buildings["transformer"]``)."""
    rows = [(d["building_id"], d["transformer"]) for _, d in G.nodes(data=True) if d["kind"] == "building"]
    s = pd.Series([t for _, t in rows], index=[b for b, _ in rows], name="transformer", dtype=object)
    return s.sort_index()


def to_pandapower(city: City | nx.Graph, **options: Any) -> tuple[Any, Any]:
    """Export to pandapower: ``(net, PowerMap)``. Implemented in :func:`citytwin.energy.grid.to_pandapower`
    (kept there so importing the graph builder does not import pandapower)."""
    from citytwin.energy.grid import to_pandapower as _to_pandapower

    return _to_pandapower(city, **options)


def __getattr__(name: str) -> Any:
    if name == "PowerMap":
        from citytwin.energy.grid import PowerMap

        return PowerMap
    raise AttributeError(name)
