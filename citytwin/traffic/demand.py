"""Car trips from the city itself: people in residential buildings, jobs and services elsewhere.

* drivers per building ~ Poisson(population x car_share x demand_scale x sample);
* a share ``employment_rate`` of them commute: home -> work (AM peak) -> home (PM peak);
* every driver makes Poisson(``other_trips_per_person``) home -> other -> home tours (shops,
  services, schools: retail, hospitality, health, education, public buildings) — after work for
  commuters, around midday otherwise;
* destinations by a gravity model on free-flow travel times: P(building k | home node i)
  proportional to attraction_k x exp(-beta x t_ik / 60) (jobs for work, jobs/floor area of service
  buildings for other);
* departure times from normal AM/PM peak distributions (parameters in ``TrafficParams``).

Trips can also come from a table (:func:`citytwin.traffic.engine.prepare_trips`) or a TNTP OD
matrix (:func:`trips_from_od`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numba import njit
from scipy import sparse
from scipy.sparse import csgraph

from citytwin.errors import InputError
from citytwin.network.routing import RoadArrays, road_arrays, travel_times
from citytwin.rng import stream
from citytwin.traffic.params import TrafficParams

if TYPE_CHECKING:
    from citytwin.city import City

__all__ = ["generate_demand", "trips_from_od"]

log = logging.getLogger(__name__)

_SERVICE_USES = ("retail", "hospitality", "health", "education", "public")
_H = 3600.0


def _check_buildings(b: pd.DataFrame, arrays: RoadArrays) -> None:
    problems = [f"buildings: missing column {c!r}" for c in ("population", "jobs", "road_node", "use")
                if c not in b.columns]
    if problems:
        raise InputError(problems, source="city.buildings")
    unknown = ~b["road_node"].isin(arrays._pos.keys())
    if unknown.any():
        rows = b.index[unknown.to_numpy()][:5].tolist()
        problems.append(f"buildings: road_node not in the road graph at building_id {rows}"
                        + (f" and {int(unknown.sum()) - 5} more" if unknown.sum() > 5 else ""))
    for c in ("population", "jobs"):
        bad = ~(pd.to_numeric(b[c], errors="coerce") >= 0)
        if bad.any():
            problems.append(f"buildings: column {c!r} must be >= 0, bad at building_id "
                            f"{b.index[bad.to_numpy()][:5].tolist()}")
    if problems:
        raise InputError(problems, source="city.buildings")


@njit(cache=True)
def _gravity_totals(E, attraction, dest_pos):
    """Per row r: sum_j attraction[j] * E[r, dest_pos[j]], added in building order."""
    out = np.empty(E.shape[0])
    for r in range(E.shape[0]):
        s = 0.0
        for j in range(dest_pos.shape[0]):
            s += attraction[j] * E[r, dest_pos[j]]
        out[r] = s
    return out


@njit(cache=True)
def _gravity_pick(E, attraction, dest_pos, rows, x_off, x, out):
    """For row ``rows[q]`` and each draw ``x[x_off[q]:x_off[q+1]]``: the first building whose
    running weight sum exceeds the draw (``searchsorted(cumsum, x, side="right")``, clipped)."""
    nb = dest_pos.shape[0]
    for q in range(rows.shape[0]):
        r = rows[q]
        lo, hi = x_off[q], x_off[q + 1]
        order = np.argsort(x[lo:hi], kind="mergesort")
        k = 0
        s = 0.0
        j = 0
        while k < hi - lo:
            xv = x[lo + order[k]]
            while j < nb:
                ns = s + attraction[j] * E[r, dest_pos[j]]
                if ns > xv:
                    break
                s = ns
                j += 1
            out[lo + order[k]] = min(j, nb - 1)
            k += 1


def _choose(rng: np.random.Generator, origins: np.ndarray, attraction: np.ndarray,
            dest_pos: np.ndarray, arrays: RoadArrays, beta_per_min: float,
            batch: int = 128) -> np.ndarray:
    """For every entry of ``origins`` (node positions) pick a building index by gravity.

    The weight of building k from node i is ``attraction_k exp(-beta t(i, node_k) / 60)``; the
    exponential is taken once per road node rather than per building, and the running sums over
    the buildings (in their order, as ``numpy.cumsum`` adds them) are walked by a compiled loop
    instead of being stored, so no (origins x buildings) array exists."""
    out = np.full(origins.shape[0], -1, dtype=np.int64)
    if attraction.sum() <= 0 or origins.size == 0:
        return out
    attraction = np.ascontiguousarray(attraction, dtype=float)
    dest_pos = np.ascontiguousarray(dest_pos, dtype=np.int64)
    u, inv = np.unique(origins, return_inverse=True)
    by_root = np.argsort(inv, kind="stable")  # entries of each origin node, in input order
    bounds = np.searchsorted(inv[by_root], np.arange(u.shape[0] + 1))
    for b0 in range(0, u.shape[0], batch):
        roots = u[b0: b0 + batch]
        T = travel_times(arrays, roots)  # (roots, nodes)
        E = np.exp(-beta_per_min * np.where(np.isfinite(T), T, np.inf) / 60.0)
        total = _gravity_totals(E, attraction, dest_pos)
        counts = np.diff(bounds[b0: b0 + roots.shape[0] + 1])
        rows = np.flatnonzero((counts > 0) & (total > 0))
        if rows.size == 0:
            continue
        # one draw per entry, root by root in order (the same stream as one call per root)
        x = rng.random(int(counts[rows].sum())) * np.repeat(total[rows], counts[rows])
        x_off = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(counts[rows], out=x_off[1:])
        picked = np.empty(x.shape[0], dtype=np.int64)
        _gravity_pick(E, attraction, dest_pos, rows.astype(np.int64), x_off, x, picked)
        who = np.concatenate([by_root[bounds[b0 + r]: bounds[b0 + r + 1]] for r in rows])
        out[who] = picked
    return out


class _Unpredicted(Exception):
    """The reachability prediction of :func:`_reaching` missed a root's gravity total (it is 0
    although an attraction is reachable, as when ``exp`` underflows)."""


def _reaching(arrays: RoadArrays, attraction: np.ndarray, dest_pos: np.ndarray) -> np.ndarray:
    """Per node position: can it reach a building of positive attraction on the free-flow
    graph (the graph of :func:`travel_times`)? One search from a super node over the reversed
    links, so ``_choose`` knows which roots draw before it builds their trees."""
    n = arrays.n_nodes
    coo = arrays.matrix(arrays.freeflow_s).tocoo()
    targets = np.unique(dest_pos[attraction > 0])
    rows = np.concatenate([coo.col, np.full(targets.shape[0], n)])
    cols = np.concatenate([coo.row, targets])
    rev = sparse.csr_matrix((np.ones(rows.shape[0]), (rows, cols)), shape=(n + 1, n + 1))
    seen = np.zeros(n + 1, dtype=bool)
    seen[csgraph.breadth_first_order(rev, n, directed=True, return_predecessors=False)] = True
    return seen[:n]


class _Choice:
    """One gravity choice of :func:`_choose_all`: its entries' origins (node positions), the
    attraction per building and the uniforms drawn for the entries whose origin reaches an
    attraction, in ``_choose``'s order (origin by origin, entries in input order)."""

    def __init__(self, rng: np.random.Generator, origins: np.ndarray, attraction: np.ndarray,
                 reach: np.ndarray) -> None:
        self.origins = origins
        self.attraction = np.ascontiguousarray(attraction, dtype=float)
        self.active = bool(self.attraction.sum() > 0 and origins.size > 0)
        self.out = np.full(origins.shape[0], -1, dtype=np.int64)
        self.by_root = np.argsort(origins, kind="stable")
        self.drawn = reach[origins[self.by_root]] if self.active else np.zeros(0, dtype=bool)
        self.u = rng.random(int(self.drawn.sum())) if self.active else np.zeros(0)


def _choose_all(choices: list[_Choice], dest_pos: np.ndarray, arrays: RoadArrays,
                beta_per_min: float, batch: int = 128) -> None:
    """:func:`_choose` for several choices at once, one tree per origin node for all of them,
    on uniforms drawn beforehand (:class:`_Choice`); writes each choice's ``out``. The picks are
    ``_choose``'s: the same weights, totals and draws per origin (raises :class:`_Unpredicted`
    where a draw was predicted wrongly)."""
    live = [c for c in choices if c.active]
    if not live:
        return
    dest_pos = np.ascontiguousarray(dest_pos, dtype=np.int64)
    mat = arrays.matrix(arrays.freeflow_s)
    u = np.unique(np.concatenate([c.origins for c in live]))
    # per choice: entries per root of ``u`` (in by_root order) and where its draws start
    bounds, draw_off = [], []
    for c in live:
        b = np.searchsorted(c.origins[c.by_root], np.concatenate([u, [arrays.n_nodes]]))
        bounds.append(b)
        d = np.zeros(c.origins.shape[0] + 1, dtype=np.int64)
        np.cumsum(c.drawn, out=d[1:])
        draw_off.append(d)
    for b0 in range(0, u.shape[0], batch):
        roots = u[b0: b0 + batch]
        T = csgraph.dijkstra(mat, directed=True, indices=roots)
        E = np.exp(-beta_per_min * np.where(np.isfinite(T), T, np.inf) / 60.0)
        for c, b, d in zip(live, bounds, draw_off, strict=True):
            lo, hi = b[b0: b0 + roots.shape[0]], b[b0 + 1: b0 + roots.shape[0] + 1]
            counts = hi - lo
            if not counts.any():
                continue
            total = _gravity_totals(E, c.attraction, dest_pos)
            rows = np.flatnonzero(counts > 0)
            ok = total[rows] > 0
            if not np.array_equal(ok, c.drawn[lo[rows]]):
                raise _Unpredicted
            rows = rows[ok]
            if rows.size == 0:
                continue
            cnt = counts[rows]
            first = np.repeat(lo[rows], cnt) + np.arange(int(cnt.sum())) - np.repeat(
                np.cumsum(cnt) - cnt, cnt)  # by_root positions of the rows' entries
            x = c.u[d[first]] * np.repeat(total[rows], cnt)
            x_off = np.zeros(rows.size + 1, dtype=np.int64)
            np.cumsum(cnt, out=x_off[1:])
            picked = np.empty(x.shape[0], dtype=np.int64)
            _gravity_pick(E, c.attraction, dest_pos, rows.astype(np.int64), x_off, x, picked)
            c.out[c.by_root[first]] = picked


def _apply_od_factors(t: pd.DataFrame, p: TrafficParams, arrays: RoadArrays,
                      rng: np.random.Generator) -> pd.DataFrame:
    """Reweight whole cars by calibrated zone OD factors: a car's factor is the mean of its
    trips' (origin zone, destination zone[, departure bin]) factors (unknown cells: 1); it is kept
    floor(f) times plus once more with probability frac(f), copies as new vehicles (chains stay
    whole). Zones are ``zone_m`` squares of the city CRS, as ``citytwin calibrate`` wrote them."""
    from pathlib import Path

    path = Path(str(p.od_factors))
    if not path.is_file():
        raise InputError([f"od_factors: file not found: {path}"], source="TrafficParams")
    try:
        f = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # not Parquet (pyarrow's ArrowInvalid is a ValueError)
        raise InputError([f"od_factors: {path.name}: cannot read as Parquet ({exc}); expected "
                          "the od_factors.parquet citytwin calibrate writes"],
                         source="TrafficParams") from None
    need = [c for c in ("origin", "dest", "od_factor") if c not in f.columns]
    if need:
        raise InputError([f"od_factors: {path.name}: missing columns {need} (expected origin, "
                          "dest, od_factor and optionally depart_bin)"], source="TrafficParams")
    on = ["origin", "dest"] + (["depart_bin"] if "depart_bin" in f.columns else [])
    pos = arrays._pos
    zx = np.floor(arrays.x / p.zone_m).astype(np.int64)
    zy = np.floor(arrays.y / p.zone_m).astype(np.int64)
    o = np.array([pos[n] for n in t["origin_node"]], dtype=np.int64)
    d = np.array([pos[n] for n in t["dest_node"]], dtype=np.int64)
    key = pd.DataFrame({
        "origin": [f"({a}, {b})" for a, b in zip(zx[o], zy[o], strict=True)],
        "dest": [f"({a}, {b})" for a, b in zip(zx[d], zy[d], strict=True)],
        "depart_bin": np.floor(t["depart_s"].to_numpy(float) / p.od_cell_s).astype(np.int64)})
    table = f[[*on, "od_factor"]].astype(
        {"origin": str, "dest": str, "od_factor": float}
        | ({"depart_bin": np.int64} if "depart_bin" in on else {}))
    fac = key[on].merge(table, on=on, how="left")["od_factor"]
    per_car = pd.Series(fac.fillna(1.0).to_numpy(), index=t.index).groupby(
        t["vehicle_id"].to_numpy()).mean()
    cars = per_car.index.to_numpy()
    w = per_car.to_numpy(dtype=float)
    reps = np.floor(w).astype(np.int64) + (rng.random(w.size) < w - np.floor(w))
    rep_trip = pd.Series(reps, index=cars).reindex(t["vehicle_id"].to_numpy()).to_numpy()
    out = t.loc[t.index.repeat(rep_trip)].copy()
    copy_k = out.groupby(level=0).cumcount().to_numpy()  # 0: the car itself, k: its k-th copy
    vid = out["vehicle_id"].to_numpy(dtype=np.int64)
    extra = copy_k > 0
    if extra.any():  # copy k of car v becomes a new vehicle (same id for all its trips)
        pairs = pd.MultiIndex.from_arrays([vid[extra], copy_k[extra]])
        codes, _ = pd.factorize(pairs)
        vid = vid.copy()
        vid[extra] = int(t["vehicle_id"].max()) + 1 + codes
    out["vehicle_id"] = vid
    return out.sort_values(["vehicle_id", "depart_s"], kind="stable").reset_index(drop=True)


def _schedule(rng: np.random.Generator, p: TrafficParams, n: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per driver: AM and PM departures (s) and the number of other tours; per tour: its
    driver and its rank among the driver's tours."""
    am = np.clip(rng.normal(p.am_peak_h, p.peak_sd_h, n) * _H, 4 * _H, 12 * _H)
    pm = np.clip(rng.normal(p.pm_peak_h, p.peak_sd_h, n) * _H, 12 * _H, 23 * _H)
    pm = np.maximum(pm, am + p.min_activity_s + 2 * _H)
    n_other = np.minimum(rng.poisson(p.other_trips_per_person, n), 2)
    tour_v = np.repeat(np.arange(n), n_other)
    k = np.concatenate([np.arange(c) for c in n_other]) if tour_v.size else np.zeros(0, int)
    return am, pm, tour_v, k


def generate_demand(city: City, params: TrafficParams | None = None, *, seed: int,
                    arrays: RoadArrays | None = None) -> pd.DataFrame:
    """One day of car trips: ``vehicle_id``, ``origin_node``, ``dest_node``, ``depart_s``,
    ``purpose`` (work/home/other), ``origin_building``, ``dest_building``."""
    p = params or TrafficParams()
    arrays = arrays or getattr(city, "road_arrays", None) or road_arrays(city.roads)
    b = city.buildings
    _check_buildings(b, arrays)
    rng = stream(seed, "demand")
    bid = b.index.to_numpy()
    node_pos = b["road_node"].map(arrays._pos).to_numpy(dtype=np.int64)
    pop = b["population"].to_numpy(dtype=float)
    jobs = b["jobs"].to_numpy(dtype=float)
    service = np.where(b["use"].isin(_SERVICE_USES).to_numpy(),
                       np.maximum(jobs, b.get("floor_area_m2", pd.Series(0.0, index=b.index))
                                  .to_numpy(dtype=float) / 50.0), 0.0)
    n_drv = rng.poisson(pop * p.car_share * p.demand_scale * p.sample)
    home = np.repeat(np.arange(len(b)), n_drv)
    n = home.shape[0]
    if n == 0:
        return pd.DataFrame(columns=["vehicle_id", "origin_node", "dest_node", "depart_s",
                                     "purpose", "origin_building", "dest_building"])
    worker = rng.random(n) < p.employment_rate
    beta = p.gravity_beta_per_min
    state = rng.bit_generator.state
    try:  # one tree per home node for both choices, the draws in the order of the fallback's
        work = _Choice(rng, node_pos[home[worker]], jobs, _reaching(arrays, jobs, node_pos))
        am, pm, tour_v, k = _schedule(rng, p, n)
        other = _Choice(rng, node_pos[home[tour_v]], service,
                        _reaching(arrays, service, node_pos))
        _choose_all([work, other], node_pos, arrays, beta)
        work_b, other_b = work.out, other.out
    except _Unpredicted:  # a gravity total underflowed: a tree per choice, drawing as it goes
        rng.bit_generator.state = state
        work_b = _choose(rng, node_pos[home[worker]], jobs, node_pos, arrays, beta)
        am, pm, tour_v, k = _schedule(rng, p, n)
        other_b = _choose(rng, node_pos[home[tour_v]], service, node_pos, arrays, beta)
    rows: list[pd.DataFrame] = []
    wv = np.flatnonzero(worker)
    ok = work_b >= 0
    wv, work_b = wv[ok], work_b[ok]
    hb = home[wv]
    rows.append(pd.DataFrame({"vehicle_id": wv, "ob": hb, "db": work_b, "depart_s": am[wv],
                              "purpose": "work"}))
    rows.append(pd.DataFrame({"vehicle_id": wv, "ob": work_b, "db": hb, "depart_s": pm[wv],
                              "purpose": "home"}))
    # other tours
    start = np.where(worker[tour_v], pm[tour_v] + rng.uniform(0.5, 3.0, tour_v.size) * _H,
                     rng.normal(p.other_mean_h, p.other_sd_h, tour_v.size) * _H)
    start = start + k * 2.5 * _H
    start = np.clip(start, 6 * _H, 23 * _H)
    stay = rng.uniform(max(p.min_activity_s, 600.0), max(p.min_activity_s, 600.0) + 1.5 * _H,
                       tour_v.size)
    ok = other_b >= 0
    tv, ob_, st, sy = tour_v[ok], other_b[ok], start[ok], stay[ok]
    rows.append(pd.DataFrame({"vehicle_id": tv, "ob": home[tv], "db": ob_, "depart_s": st,
                              "purpose": "other"}))
    rows.append(pd.DataFrame({"vehicle_id": tv, "ob": ob_, "db": home[tv], "depart_s": st + sy,
                              "purpose": "home"}))
    t = pd.concat(rows, ignore_index=True)
    t["origin_node"] = arrays.node_ids[node_pos[t["ob"].to_numpy()]]
    t["dest_node"] = arrays.node_ids[node_pos[t["db"].to_numpy()]]
    t["origin_building"] = bid[t["ob"].to_numpy()]
    t["dest_building"] = bid[t["db"].to_numpy()]
    t = t[t["origin_node"] != t["dest_node"]].copy()  # same street corner: walked
    t["depart_s"] = np.round(t["depart_s"].to_numpy(), 0)
    t = t.sort_values(["vehicle_id", "depart_s"], kind="stable").reset_index(drop=True)
    if p.od_factors is not None:
        t = _apply_od_factors(t, p, arrays, rng)
    log.info("demand: %d drivers, %d car trips", n, len(t))
    return t[["vehicle_id", "origin_node", "dest_node", "depart_s", "purpose", "origin_building",
              "dest_building"]]


def trips_from_od(od: pd.DataFrame, *, seed: int, start_s: float = 0.0, duration_s: float = 3600.0,
                  scale: float = 1.0) -> pd.DataFrame:
    """Individual trips from an OD matrix (columns ``origin``, ``dest``, ``demand`` as read by
    :func:`citytwin.traffic.assignment.read_tntp_trips`): ``round(demand x scale)`` trips per pair
    (stochastic rounding), departures uniform over ``[start_s, start_s + duration_s)``."""
    missing = [c for c in ("origin", "dest", "demand") if c not in od.columns]
    if missing:
        raise InputError([f"OD table: missing column {c!r}" for c in missing], source="od")
    rng = stream(seed, "demand")
    x = od["demand"].to_numpy(dtype=float) * scale
    n = np.floor(x).astype(np.int64) + (rng.random(x.shape[0]) < x - np.floor(x))
    o = np.repeat(od["origin"].to_numpy(), n)
    d = np.repeat(od["dest"].to_numpy(), n)
    dep = np.round(start_s + rng.random(o.shape[0]) * duration_s)
    return pd.DataFrame({"origin_node": o, "dest_node": d, "depart_s": dep})
