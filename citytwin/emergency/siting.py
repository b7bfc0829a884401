"""Station siting with spopt: MCLP (maximal covering) and LSCP (set covering) on travel time.

Demand = building weights (population + jobs by default) gathered on a grid of cells, each cell
represented by the road node of its heaviest building; candidates = road nodes thinned on a grid
(or given). Coverage: free-flow (or given) travel time *from* the candidate to the demand node
within ``radius_s``. Existing stations of the kind stay open (spopt predefined facilities), so the
answer is where to put the *new* ones.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pulp
from spopt.locate import LSCP, MCLP

from citytwin.emergency.coverage import _arrays, coverage_times
from citytwin.emergency.params import StationSpec
from citytwin.errors import InputError

if TYPE_CHECKING:
    from citytwin.city import City

__all__ = ["SitingResult", "site_stations", "solve_mclp", "solve_lscp",
           "brute_force_mclp", "brute_force_lscp"]

log = logging.getLogger(__name__)


def _solver() -> pulp.LpSolver:
    return pulp.PULP_CBC_CMD(msg=False)


def _chosen(model: Any) -> list[int]:
    return [j for j, v in enumerate(model.fac_vars) if (v.value() or 0) > 0.5]


def solve_mclp(cost: np.ndarray, weights: np.ndarray, *, radius: float, p: int,
               predefined: Sequence[int] = ()) -> list[int]:
    """Facility columns chosen by spopt's MCLP; ``cost`` is (clients, facilities)."""
    pre = None
    if predefined:
        pre = np.zeros(cost.shape[1], dtype=int)
        pre[list(predefined)] = 1
    with warnings.catch_warnings():  # PuLP 3.x deprecation notices about its 4.0 API
        warnings.simplefilter("ignore", DeprecationWarning)
        m = MCLP.from_cost_matrix(np.asarray(cost, float), np.asarray(weights, float),
                                  service_radius=radius, p_facilities=p,
                                  predefined_facilities_arr=pre)
        m.solve(_solver())
    return _chosen(m)


def solve_lscp(cost: np.ndarray, *, radius: float, predefined: Sequence[int] = ()) -> list[int]:
    """Facility columns of spopt's LSCP (fewest facilities covering every client)."""
    pre = None
    if predefined:
        pre = np.zeros(cost.shape[1], dtype=int)
        pre[list(predefined)] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        m = LSCP.from_cost_matrix(np.asarray(cost, float), service_radius=radius,
                                  predefined_facilities_arr=pre)
        m.solve(_solver())
    return _chosen(m)


def brute_force_mclp(cost: np.ndarray, weights: np.ndarray, *, radius: float, p: int
                     ) -> tuple[float, list[tuple[int, ...]]]:
    """Best covered weight over every p-subset, and every subset reaching it."""
    a = np.asarray(cost) <= radius
    w = np.asarray(weights, float)
    best, arg = -1.0, []
    for combo in itertools.combinations(range(a.shape[1]), p):
        v = float(w[a[:, list(combo)].any(axis=1)].sum())
        if v > best + 1e-9:
            best, arg = v, [combo]
        elif abs(v - best) <= 1e-9:
            arg.append(combo)
    return best, arg


def brute_force_lscp(cost: np.ndarray, *, radius: float) -> tuple[int, list[tuple[int, ...]]]:
    """Smallest number of facilities covering every client, and every such subset."""
    a = np.asarray(cost) <= radius
    for k in range(1, a.shape[1] + 1):
        sols = [c for c in itertools.combinations(range(a.shape[1]), k)
                if a[:, list(c)].any(axis=1).all()]
        if sols:
            return k, sols
    raise ValueError("brute_force_lscp: some client is not coverable")


def _to_lonlat(city: City, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    crs = getattr(city, "crs", None)
    if crs is None:
        return np.full(len(x), np.nan), np.full(len(x), np.nan)
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


@dataclass(frozen=True)
class SitingResult:
    proposed: pd.DataFrame  # road_node, x, y, covered_weight (by that site alone)
    method: str
    radius_s: float
    covered_before_share: float
    covered_after_share: float
    demand_points: int
    candidates: int

    def interventions_toml(self, kind: str = "fire_station", *, prefix: str = "proposed") -> str:
        """The proposals as scenario ``add_station`` interventions (TOML to paste)."""
        parts = []
        for k, row in enumerate(self.proposed.itertuples()):
            parts.append(
                "[[interventions]]\n"
                'type = "add_station"\n'
                f'kind = "{kind}"\n'
                f'name = "{prefix} {k + 1}"\n'
                f"lon = {row.lon:.6f}\n"
                f"lat = {row.lat:.6f}\n")
        return "\n".join(parts)

    def station_specs(
        self, kind: Literal["fire_station", "ambulance_station"] = "fire_station"
    ) -> tuple[StationSpec, ...]:
        """The proposals as scenario additions (``EmergencyParams.extra_stations``)."""
        return tuple(StationSpec(kind=kind, road_node=int(n), name=f"proposed {k + 1}")
                     for k, n in enumerate(self.proposed["road_node"]))


def _grid_pick(x: np.ndarray, y: np.ndarray, w: np.ndarray, cell: float) -> np.ndarray:
    """Index of the heaviest point per grid cell (ties: the lowest index), sorted."""
    gx = np.floor(x / cell).astype(np.int64)
    gy = np.floor(y / cell).astype(np.int64)
    order = np.lexsort((np.arange(len(w)), -w, gy, gx))
    keys = np.column_stack([gx[order], gy[order]])
    first = np.ones(len(order), dtype=bool)
    first[1:] = (keys[1:] != keys[:-1]).any(axis=1)
    return np.sort(order[first])


def site_stations(
    city: City,
    *,
    new: int,
    kind: str = "fire_station",
    radius_s: float = 240.0,
    method: Literal["mclp", "lscp"] = "mclp",
    candidates: Sequence[int] | None = None,
    candidate_spacing_m: float | None = None,
    demand_cell_m: float | None = None,
    weight: Literal["population", "people", "buildings"] = "people",
    cost: np.ndarray | None = None,
) -> SitingResult:
    """Propose ``new`` stations of ``kind`` (MCLP), or the fewest that cover all demand (LSCP).

    ``candidates``: road node ids to choose from (default: road nodes thinned to one per
    ``candidate_spacing_m`` grid cell; default spacing gives about 150 cells over the road
    network's extent, at least 100 m). ``demand_cell_m`` (default: about 400 cells, >= 100 m).
    ``weight``: ``people`` = population + jobs.
    """
    arrays = _arrays(city)
    area = float(np.ptp(arrays.x) * np.ptp(arrays.y)) if arrays.n_nodes else 0.0
    if candidate_spacing_m is None:
        candidate_spacing_m = max(100.0, float(np.sqrt(area / 150.0)))
    if demand_cell_m is None:
        demand_cell_m = max(100.0, float(np.sqrt(area / 400.0)))
    pos = {n: i for i, n in enumerate(arrays.node_ids.tolist())}
    b = city.buildings
    problems: list[str] = []
    if method == "mclp" and new < 1:
        problems.append(f"new = {new}: expected at least 1 station to site")
    if candidates is not None:
        bad = [c for c in candidates if c not in pos]
        if bad:
            problems.append(f"candidates {bad[:10]} are not road nodes")
    if problems:
        raise InputError(problems, source="site_stations")
    if weight == "buildings":
        w = np.ones(len(b))
    else:
        w = b["population"].to_numpy(dtype=float) if "population" in b.columns else np.zeros(len(b))
        if weight == "people" and "jobs" in b.columns:
            w = w + b["jobs"].to_numpy(dtype=float)
    bpos = np.array([pos[n] for n in b["road_node"]], dtype=np.int64)
    node_w = np.bincount(bpos, weights=np.nan_to_num(w), minlength=arrays.n_nodes)
    dem_nodes = np.flatnonzero(node_w > 0)
    pick = _grid_pick(arrays.x[dem_nodes], arrays.y[dem_nodes], node_w[dem_nodes], demand_cell_m)
    # each demand node's weight goes to its cell's representative
    gx = np.floor(arrays.x[dem_nodes] / demand_cell_m).astype(np.int64)
    gy = np.floor(arrays.y[dem_nodes] / demand_cell_m).astype(np.int64)
    cell_of = {(int(gx[i]), int(gy[i])): k for k, i in enumerate(pick)}
    dem_w = np.zeros(len(pick))
    for i in range(len(dem_nodes)):
        dem_w[cell_of[(int(gx[i]), int(gy[i]))]] += node_w[dem_nodes[i]]
    dem_pos = dem_nodes[pick]

    fac = city.facilities
    existing = [pos[n] for n in fac.loc[fac["kind"] == kind, "road_node"] if n in pos]
    if candidates is None:
        cand = _grid_pick(arrays.x, arrays.y, np.zeros(arrays.n_nodes), candidate_spacing_m)
    else:
        cand = np.array([pos[c] for c in candidates], dtype=np.int64)
    cand = np.array([c for c in cand if c not in set(existing)], dtype=np.int64)
    fac_pos = np.concatenate([np.array(existing, dtype=np.int64), cand])
    t = coverage_times(arrays, fac_pos, dem_pos, cost=cost).T  # (clients, facilities)
    pre = list(range(len(existing)))
    total = dem_w.sum()
    before = float(dem_w[(t[:, pre] <= radius_s).any(axis=1)].sum() / total) if pre else 0.0
    if method == "mclp":
        chosen = solve_mclp(t, dem_w, radius=radius_s, p=len(existing) + new, predefined=pre)
    else:
        ok = np.asarray((t <= radius_s).any(axis=1))
        if (~ok).any():
            log.warning("site_stations: %d of %d demand cells cannot be reached within %.0f s "
                        "from any candidate; LSCP covers the rest", int((~ok).sum()), len(ok),
                        radius_s)
        chosen = solve_lscp(t[ok], radius=radius_s, predefined=pre)
    new_cols = [j for j in chosen if j >= len(existing)]
    after = float(dem_w[(t[:, chosen] <= radius_s).any(axis=1)].sum() / total)
    px, py = arrays.x[fac_pos[new_cols]], arrays.y[fac_pos[new_cols]]
    lon, lat = _to_lonlat(city, px, py)
    proposed = pd.DataFrame({
        "road_node": arrays.node_ids[fac_pos[new_cols]],
        "x": px, "y": py, "lon": lon, "lat": lat,
        "covered_weight": [float(dem_w[t[:, j] <= radius_s].sum()) for j in new_cols],
    })
    log.info("site_stations: %s over %d candidates, %d demand cells: coverage %.3f -> %.3f",
             method, len(cand), len(dem_pos), before, after)
    return SitingResult(proposed, method, radius_s, before, after, len(dem_pos), len(cand))
