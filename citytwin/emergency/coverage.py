"""Coverage: travel time from the nearest station to every building (one multi-source Dijkstra)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.sparse import csgraph

from citytwin.errors import InputError
from citytwin.network.routing import RoadArrays, road_arrays

if TYPE_CHECKING:  # pragma: no cover
    from citytwin.city import City

__all__ = ["coverage_map", "coverage_times", "coverage_summary"]

log = logging.getLogger(__name__)


def coverage_times(
    arrays: RoadArrays, sources: np.ndarray, targets: np.ndarray, *, cost: np.ndarray | None = None
) -> np.ndarray:
    """Travel time (s) from each source position to each target position: (sources, targets)."""
    mat = arrays.matrix(arrays.freeflow_s if cost is None else cost)
    d = csgraph.dijkstra(mat, directed=True, indices=np.asarray(sources, dtype=np.int64))
    return np.atleast_2d(d)[:, np.asarray(targets, dtype=np.int64)]


def _arrays(city: City) -> RoadArrays:
    a = getattr(city, "road_arrays", None)
    return a if a is not None else road_arrays(city.roads)


def coverage_map(
    city: City,
    *,
    kinds: Sequence[str] = ("fire_station",),
    cost: np.ndarray | None = None,
    extra_nodes: Sequence[int] = (),
    closed: Sequence[int] = (),
) -> pd.DataFrame:
    """Per building: the nearest station (by travel time *from* the station) and that time.

    One multi-source forward Dijkstra from all stations of ``kinds`` (plus ``extra_nodes``, road
    node ids of proposed stations, reported with station_id -1, -2, ...); ``closed`` facility ids are
    left out. ``cost`` is a link-time array per edge_id (default free flow). Index = building_id;
    columns ``station_id``, ``travel_s`` (inf when unreachable).
    """
    arrays = _arrays(city)
    pos = {n: i for i, n in enumerate(arrays.node_ids.tolist())}
    fac = city.facilities
    rows = fac[fac["kind"].isin(list(kinds)) & ~fac.index.isin(list(closed))]
    problems = [
        f"facility {fid} ({r['kind']} {r.get('name', '')!r}): road_node {r['road_node']!r} is not "
        "a node of the road network" for fid, r in rows.iterrows() if r["road_node"] not in pos]
    problems += [f"extra station {k}: road_node {n!r} is not a node of the road network"
                 for k, n in enumerate(extra_nodes) if n not in pos]
    if problems:
        raise InputError(problems, source="facilities")
    src_pos = [pos[n] for n in rows["road_node"]] + [pos[n] for n in extra_nodes]
    src_id = list(rows.index.astype(int)) + [-(k + 1) for k in range(len(extra_nodes))]
    bpos = np.array([pos[n] for n in city.buildings["road_node"]], dtype=np.int64)
    if not src_pos:
        log.warning("coverage: no station of kinds %s", list(kinds))
        return pd.DataFrame({"station_id": -10**9, "travel_s": np.inf}, index=city.buildings.index)
    mat = arrays.matrix(arrays.freeflow_s if cost is None else cost)
    dist, _, src = csgraph.dijkstra(mat, directed=True, indices=np.array(src_pos), min_only=True,
                                    return_predecessors=True)
    first: dict[int, int] = {}
    for p, sid in zip(src_pos, src_id, strict=True):
        first.setdefault(p, sid)  # two stations on one node: the first id reports
    s = src[bpos]
    sid = np.array([first.get(int(p), -10**9) for p in s], dtype=np.int64)
    out = pd.DataFrame({"station_id": sid, "travel_s": dist[bpos]}, index=city.buildings.index)
    out.index.name = city.buildings.index.name or "building_id"
    return out


def coverage_summary(cov: pd.DataFrame, buildings: pd.DataFrame, *,
                     target_s: float = 240.0) -> dict[str, float]:
    """Building- and population-weighted shares within ``target_s`` and time percentiles."""
    t = cov["travel_s"].to_numpy(dtype=float)
    pop = (buildings["population"].to_numpy(dtype=float) if "population" in buildings.columns
           else np.ones(len(t)))
    within = t <= target_s
    finite = t[np.isfinite(t)]
    return {
        "buildings_n": float(len(t)),
        "within_target_share": float(within.mean()) if len(t) else float("nan"),
        "population_within_target_share": float(pop[within].sum() / pop.sum())
        if pop.sum() > 0 else float("nan"),
        "travel_p50_s": float(np.percentile(finite, 50)) if finite.size else float("nan"),
        "travel_p90_s": float(np.percentile(finite, 90)) if finite.size else float("nan"),
        "travel_max_s": float(finite.max()) if finite.size else float("nan"),
        "unreachable_n": float((~np.isfinite(t)).sum()),
    }
