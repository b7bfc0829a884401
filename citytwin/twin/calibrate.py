"""Fit metrics and calibration: does the twin match the observations, and what makes it match?

Metrics (the profession's criteria):

* traffic — GEH per count on hourly flows, ``GEH = sqrt(2 (M - C)^2 / (M + C))`` with M the
  modelled and C the counted flow (veh/h); the UK DMRB (TAG M3.1) criterion asks for GEH < 5 on
  more than 85 % of counts;
* energy — ASHRAE Guideline 14-2014 CV(RMSE) and NMBE with ``n - p`` degrees of freedom,
  ``CV(RMSE) = 100 sqrt(sum (y_i - ŷ_i)^2 / (n - p)) / ȳ`` and
  ``NMBE = 100 sum (y_i - ŷ_i) / ((n - p) ȳ)``, y measured, ŷ modelled (positive NMBE = the model
  under-predicts); ``p = 1`` by default (the Guideline's value for calibrated simulation); hourly
  criteria CV(RMSE) ≤ 30 %, |NMBE| ≤ 10 %;
* emergency — response-time quantiles of log and model and the two-sample Kolmogorov-Smirnov
  distance (``scipy.stats.ks_2samp``).

Calibration estimators (all closed-form or convex, so results are reproducible):

* demand scale — least squares through the origin of counted on modelled flows;
* OD adjustment — generalised least squares on the link-trip incidence (Cascetta 1984): adjusted
  demand g ≥ 0 minimises ``sum_k (A g - c)_k^2 / max(m_k, 1) + lam sum_j (g_j - d_j)^2 / d_j``
  with m = A g (iteratively reweighted: Poisson variance);
* load intensities per building use — non-negative least squares of meter readings on the
  modelled per-use loads behind each meter (one multiplier per use);
* incident rates — Poisson maximum likelihood, one multiplier per type = observed / expected count.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, optimize, sparse, stats

from citytwin.errors import InputError
from citytwin.network.routing import RoadArrays

__all__ = [
    "GEH_LIMIT",
    "GEH_SHARE",
    "CVRMSE_HOURLY",
    "NMBE_HOURLY",
    "geh",
    "traffic_fit",
    "cv_rmse",
    "nmbe",
    "energy_fit",
    "response_fit",
    "fit_scale",
    "fit_scale_se",
    "adjust_od",
    "fit_use_multipliers",
    "fit_incident_rates",
    "ODAdjustment",
]

log = logging.getLogger(__name__)

GEH_LIMIT = 5.0
GEH_SHARE = 0.85
CVRMSE_HOURLY = 30.0
NMBE_HOURLY = 10.0


def _pair(modelled: object, observed: object, what: str) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(modelled, dtype=float).ravel()
    c = np.asarray(observed, dtype=float).ravel()
    problems = []
    if m.shape != c.shape:
        problems.append(f"{what}: modelled has {m.size} values, observed {c.size}")
    elif m.size == 0:
        problems.append(f"{what}: no values to compare")
    else:
        if not np.isfinite(m).all():
            problems.append(f"{what}: modelled values contain NaN/inf at {np.flatnonzero(~np.isfinite(m))[:10].tolist()}")
        if not np.isfinite(c).all():
            problems.append(f"{what}: observed values contain NaN/inf at {np.flatnonzero(~np.isfinite(c))[:10].tolist()}")
    if problems:
        raise InputError(problems)
    return m, c


# --------------------------------------------------------------------------------------------
# traffic
# --------------------------------------------------------------------------------------------


def geh(modelled: object, observed: object) -> np.ndarray:
    """GEH statistic per pair of hourly flows (veh/h); 0 where both are 0."""
    m, c = _pair(modelled, observed, "geh")
    if (m < 0).any() or (c < 0).any():
        raise InputError("geh: flows must be ≥ 0")
    s = m + c
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.sqrt(np.where(s > 0, 2.0 * (m - c) ** 2 / np.where(s > 0, s, 1.0), 0.0))
    return out


def traffic_fit(modelled_vph: object, observed_vph: object) -> dict[str, float | int | bool]:
    """GEH summary: ``n``, ``geh_mean``, ``geh_max``, ``share_geh_lt5``, ``meets_dmrb``
    (share > 85 %), plus ``total_ratio`` (sum modelled / sum observed) and ``r2``."""
    m, c = _pair(modelled_vph, observed_vph, "traffic_fit")
    g = geh(m, c)
    share = float(np.mean(g < GEH_LIMIT))
    ss_tot = float(np.sum((c - c.mean()) ** 2))
    r2 = 1.0 - float(np.sum((c - m) ** 2)) / ss_tot if ss_tot > 0 else float("nan")
    return {
        "n": int(m.size),
        "geh_mean": float(g.mean()),
        "geh_max": float(g.max()),
        "share_geh_lt5": share,
        "meets_dmrb": bool(share > GEH_SHARE),
        "total_ratio": float(m.sum() / c.sum()) if c.sum() > 0 else float("nan"),
        "r2": r2,
    }


# --------------------------------------------------------------------------------------------
# energy
# --------------------------------------------------------------------------------------------


def _dof(n: int, p: int) -> int:
    if p < 0 or n - p <= 0:
        raise InputError(f"ASHRAE G14 metrics need n > p (got n={n}, p={p})")
    return n - p


def cv_rmse(measured: object, modelled: object, *, p: int = 1) -> float:
    """ASHRAE Guideline 14 CV(RMSE) in percent with ``n - p`` degrees of freedom."""
    yhat, y = _pair(modelled, measured, "cv_rmse")
    ybar = y.mean()
    if ybar == 0:
        raise InputError("cv_rmse: the measured mean is 0")
    return float(100.0 * np.sqrt(np.sum((y - yhat) ** 2) / _dof(y.size, p)) / ybar)


def nmbe(measured: object, modelled: object, *, p: int = 1) -> float:
    """ASHRAE Guideline 14 NMBE in percent, ``sum(y - ŷ) / ((n - p) ȳ)`` (positive = model low)."""
    yhat, y = _pair(modelled, measured, "nmbe")
    ybar = y.mean()
    if ybar == 0:
        raise InputError("nmbe: the measured mean is 0")
    return float(100.0 * np.sum(y - yhat) / (_dof(y.size, p) * ybar))


def energy_fit(measured: object, modelled: object, *, p: int = 1) -> dict[str, float | int | bool]:
    """CV(RMSE), NMBE (percent), ``n``, ``p`` and ``meets_ashrae14`` (hourly criteria)."""
    cv = cv_rmse(measured, modelled, p=p)
    nm = nmbe(measured, modelled, p=p)
    return {
        "n": int(np.asarray(measured).size),
        "p": int(p),
        "cv_rmse_pct": cv,
        "nmbe_pct": nm,
        "meets_ashrae14": bool(cv <= CVRMSE_HOURLY and abs(nm) <= NMBE_HOURLY),
    }


# --------------------------------------------------------------------------------------------
# emergency
# --------------------------------------------------------------------------------------------


def response_fit(
    observed_s: object, modelled_s: object, *, quantiles: Sequence[float] = (0.5, 0.9)
) -> dict[str, float | int]:
    """Response-time quantiles of log and model, their differences, and the KS distance."""
    o = np.asarray(observed_s, dtype=float).ravel()
    s = np.asarray(modelled_s, dtype=float).ravel()
    o, s = o[np.isfinite(o)], s[np.isfinite(s)]
    if o.size == 0 or s.size == 0:
        raise InputError(
            f"response_fit: need response times on both sides (observed {o.size}, modelled {s.size})"
        )
    ks = stats.ks_2samp(o, s)
    out: dict[str, float | int] = {
        "n_observed": int(o.size),
        "n_modelled": int(s.size),
        "ks_distance": float(ks.statistic),
        "ks_pvalue": float(ks.pvalue),
    }
    for q in quantiles:
        tag = f"p{round(q * 100):02d}"
        qo, qs = float(np.quantile(o, q)), float(np.quantile(s, q))
        out[f"{tag}_observed_s"] = qo
        out[f"{tag}_modelled_s"] = qs
        out[f"{tag}_diff_s"] = qs - qo
    return out


# --------------------------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------------------------


def fit_scale(modelled: object, observed: object) -> float:
    """Demand scale ``s`` = total counted / total modelled (the ratio of totals).

    This is the Poisson maximum-likelihood scale (counts ~ Poisson(s m)). Least squares through
    the origin (``m.c / m.m``) weights each link by m², so the few busiest links decide it; the
    free-flow assignment over-loads exactly those (congestion spreads real traffic onto parallel
    streets), which biased it low (1.080 for a truth of 1.15 on the shipped city, the ratio of
    totals 1.147). The ratio of totals only needs the total counted traffic to be right.
    """
    return fit_scale_se(modelled, observed)[0]


def fit_scale_se(modelled: object, observed: object) -> tuple[float, float]:
    """(ratio-of-totals scale, its standard error).

    The standard error is the ratio estimator's sandwich (heteroscedasticity-robust) form,
    ``sqrt(n / (n - 1) * sum (c - s m)^2) / sum m``: it grows with the residual scatter, so
    route errors as well as count noise widen it (NaN with fewer than 2 counts).
    """
    m, c = _pair(modelled, observed, "fit_scale")
    total = float(m.sum())
    if total <= 0:
        raise InputError("fit_scale: the modelled values are all zero: nothing to scale")
    s = float(c.sum() / total)
    n = m.size
    if n < 2:
        return s, float("nan")
    r = c - s * m
    return s, float(np.sqrt(n / (n - 1) * float(r @ r)) / total)


@dataclass(frozen=True)
class ODAdjustment:
    """Result of :func:`adjust_od`: adjusted demand per OD cell and the fit it achieves."""

    demand: np.ndarray  # adjusted demand g per cell (same units as the prior)
    factor: np.ndarray  # g / prior (1 where the prior is 0)
    modelled: np.ndarray  # A g, per count
    iterations: int
    status: str


def adjust_od(
    prior: object,
    incidence: sparse.spmatrix | np.ndarray,
    observed: object,
    *,
    weight: float = 1.0,
    bounds: tuple[float, float] = (0.0, 10.0),
    iterations: int = 5,
) -> ODAdjustment:
    """Generalised least squares OD adjustment from counts.

    ``incidence`` is (counts x cells): the share of one unit of cell demand passing each count
    (e.g. 1 where the cell's route crosses the counted link in that bin). Minimises
    ``sum_k (A g - c)_k^2 / max(m_k, 1) + weight * sum_j (g_j - d_j)^2 / d_j``
    subject to ``bounds[0] d_j ≤ g_j ≤ bounds[1] d_j`` (cells with d_j = 0 stay 0). The first
    term is Poisson-like, the variance of a count being its modelled value m = A g (iteratively
    reweighted, ``iterations`` passes; weighting by the observed count instead biases low
    counts downwards); the second keeps cells nobody counts at their prior.
    """
    d = np.asarray(prior, dtype=float).ravel()
    c = np.asarray(observed, dtype=float).ravel()
    A = sparse.csr_matrix(incidence, dtype=float)
    problems = []
    if A.shape != (c.size, d.size):
        problems.append(f"adjust_od: incidence is {A.shape}, expected ({c.size}, {d.size})")
    if (d < 0).any() or not np.isfinite(d).all():
        problems.append("adjust_od: prior demand must be finite and ≥ 0")
    if (c < 0).any() or not np.isfinite(c).all():
        problems.append("adjust_od: counts must be finite and ≥ 0")
    if weight <= 0:
        problems.append("adjust_od: weight must be > 0")
    if problems:
        raise InputError(problems)
    live = d > 0
    Al = A[:, live]
    dl = d[live]
    wd = np.sqrt(weight / dl)
    lo, hi = bounds[0] * dl, bounds[1] * dl
    x = dl.copy()
    nit = 0
    for _ in range(iterations):  # IRLS: count variance = the current modelled count (Poisson)
        wc = 1.0 / np.sqrt(np.maximum(np.asarray(Al @ x).ravel(), 1.0))
        M = sparse.vstack([sparse.diags(wc) @ Al, sparse.diags(wd)]).tocsr()
        rhs = np.concatenate([wc * c, wd * dl])
        new, message = None, "normal equations (no bound active)"
        if M.shape[1] <= 3000:  # the regularised normal equations are positive definite
            MtM = (M.T @ M).toarray()
            Mtb = np.asarray(M.T @ rhs).ravel()
            cand = np.linalg.solve(MtM, Mtb)
            if np.all(cand >= lo - 1e-9) and np.all(cand <= hi + 1e-9):
                new = cand
            else:  # same objective on the n x n Cholesky factor: a small dense bounded problem
                L = np.linalg.cholesky(MtM)
                z = linalg.solve_triangular(L, Mtb, lower=True)
                res = optimize.lsq_linear(L.T, z, bounds=(lo, np.maximum(hi, lo + 1e-12)),
                                          method="bvls")
                new, message = res.x, str(res.message)
                nit += int(res.nit)
        if new is None:
            res = optimize.lsq_linear(M, rhs, bounds=(lo, np.maximum(hi, lo + 1e-12)),
                                      lsmr_tol="auto", method="trf", max_iter=500)
            new, message = res.x, str(res.message)
            nit += int(res.nit)
        step = float(np.max(np.abs(new - x) / np.maximum(dl, 1e-9)))
        x = new
        if step < 1e-4:
            break
    g = np.zeros_like(d)
    g[live] = x
    factor = np.ones_like(d)
    factor[live] = x / dl
    return ODAdjustment(demand=g, factor=factor, modelled=np.asarray(A @ g).ravel(),
                        iterations=nit, status=message)


def fit_use_multipliers(
    per_use: pd.DataFrame | np.ndarray,
    observed: object,
    *,
    uses: Sequence[str] | None = None,
    bounds: tuple[float, float] = (0.0, 20.0),
    relative: bool = True,
) -> dict[str, float]:
    """One load multiplier per building use by bounded least squares.

    ``per_use`` has one row per reading and one column per use: the modelled load (kW) of the
    buildings of that use behind the reading's meter during its interval. Returns
    ``{use: multiplier}`` minimising ``sum w_i (per_use_i @ k - observed_i)^2``; a use that no
    meter sees keeps 1.0. ``relative`` weights each reading by ``1 / observed^2`` (relative
    errors: a transformer and a single building meter count alike), else ``w = 1``.
    """
    if isinstance(per_use, pd.DataFrame):
        uses = [str(u) for u in per_use.columns]
        X = per_use.to_numpy(dtype=float)
    else:
        X = np.asarray(per_use, dtype=float)
        if uses is None or len(uses) != X.shape[1]:
            raise InputError("fit_use_multipliers: give one name per column in uses=")
    y = np.asarray(observed, dtype=float).ravel()
    if X.shape[0] != y.size:
        raise InputError(f"fit_use_multipliers: {X.shape[0]} rows of loads, {y.size} readings")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise InputError("fit_use_multipliers: loads and readings must be finite")
    seen = X.sum(axis=0) > 0
    out = {u: 1.0 for u in uses}
    if not seen.any():
        raise InputError("fit_use_multipliers: no modelled load behind any meter")
    Xs = X[:, seen]
    if relative:
        w = 1.0 / np.maximum(y, 1e-6 * max(float(y.max()), 1e-12))
        Xs, y = Xs * w[:, None], y * w
    scale = np.sqrt((Xs**2).sum(axis=0))  # column scaling for conditioning
    scale[scale == 0] = 1.0
    res = optimize.lsq_linear(Xs / scale, y, bounds=(bounds[0] * scale, bounds[1] * scale))
    for u, k in zip(np.asarray(uses)[seen], res.x / scale, strict=True):
        out[str(u)] = float(k)
    return out


def fit_incident_rates(
    observed: Mapping[str, int], expected: Mapping[str, float]
) -> dict[str, float]:
    """Poisson MLE rate multiplier per type: observed count / modelled expected count.

    A type with observations but zero expected count cannot be scaled: ``InputError``.
    """
    problems = []
    out: dict[str, float] = {}
    for t in sorted(set(observed) | set(expected)):
        o = float(observed.get(t, 0))
        e = float(expected.get(t, 0.0))
        if o < 0 or e < 0:
            problems.append(f"type {t!r}: counts must be ≥ 0 (observed {o}, expected {e})")
        elif e == 0 and o > 0:
            problems.append(f"type {t!r}: {o:g} observed incidents but the model expects none")
        elif e > 0:
            out[t] = o / e
    if problems:
        raise InputError(problems)
    return out


# --------------------------------------------------------------------------------------------
# traffic: link-trip incidence from a free-flow all-or-nothing assignment
# --------------------------------------------------------------------------------------------


def count_incidence(
    city: object,
    trips: pd.DataFrame,
    counts: pd.DataFrame,
    *,
    cell_s: float = 3600.0,
    cost: np.ndarray | None = None,
    zones: Mapping[object, object] | None = None,
) -> tuple[sparse.csr_matrix, pd.DataFrame]:
    """Incidence of OD cells on counts under a fastest-path (all-or-nothing) assignment.

    ``trips`` has the contract columns ``origin_node``, ``dest_node`` (road graph node ids) and
    ``depart_s``; cells group trips by (origin zone, destination zone, departure bin of
    ``cell_s``), where ``zones`` maps road node -> zone (default: every node its own zone).
    ``counts`` is :func:`citytwin.twin.observations.read_counts`'s table (``edge_id``, ``start_s``,
    ``end_s``). A trip passes count k when its route enters the counted edge within the bin,
    entry time = departure + free-flow time (or ``cost``) of the edges before it.
    Returns (A, cells): A (counts x cells) is the share of a cell's trips passing each count (so
    ``A @ cells.trips`` are the modelled counts) and ``cells`` = origin, dest (zones),
    depart_bin, trips.
    """
    arrays: RoadArrays = (city.road_arrays if hasattr(city, "road_arrays")
                          else _road_arrays(city))
    missing = [c for c in ("origin_node", "dest_node", "depart_s") if c not in trips.columns]
    if missing:
        raise InputError(f"trips: missing columns {missing}")
    c = np.asarray(arrays.freeflow_s if cost is None else cost, dtype=float)
    pos = arrays._pos
    unknown = sorted({n for n in pd.unique(trips[["origin_node", "dest_node"]].to_numpy().ravel())
                      if n not in pos})
    if unknown:
        raise InputError(f"trips: {len(unknown)} nodes are not in the road graph, e.g. {unknown[:5]}")
    o = np.array([pos[n] for n in trips["origin_node"].tolist()], dtype=np.int64)
    d = np.array([pos[n] for n in trips["dest_node"].tolist()], dtype=np.int64)
    dep = trips["depart_s"].to_numpy(dtype=float)
    cell_keys = _cell_keys(trips, cell_s=cell_s, zones=zones)
    cells = cell_keys.groupby(list(cell_keys.columns), sort=True).size().rename("trips").reset_index()
    cell_of = cell_keys.merge(cells.reset_index(), on=list(cell_keys.columns), how="left")["index"].to_numpy()
    # every trip's fastest route
    from citytwin.traffic.paths import route_trips

    off, route = route_trips(arrays, o, d, cost=c)
    lens = np.diff(off)
    trip_of = np.repeat(np.arange(o.size), lens)
    ce = c[route]
    before = np.cumsum(ce) - ce  # time before each route position, from the trip's start
    base = np.zeros(o.size)
    has = lens > 0
    base[has] = before[off[:-1][has]]
    enter = dep[trip_of] + before - base[trip_of]
    # route positions on counted edges, matched to the count bins that contain the entry time
    cnt = pd.DataFrame({"k": np.arange(len(counts)),
                        "edge": counts["edge_id"].to_numpy(dtype=np.int64),
                        "s": counts["start_s"].to_numpy(dtype=float),
                        "e": counts["end_s"].to_numpy(dtype=float)})
    counted = np.zeros(arrays.n_edges, dtype=bool)
    counted[cnt["edge"].to_numpy()] = True
    hit = np.flatnonzero(counted[route])
    hits = pd.DataFrame({"edge": route[hit], "t": enter[hit], "cell": cell_of[trip_of[hit]]})
    srt = cnt.sort_values(["edge", "s"], kind="stable")
    same = srt["edge"].to_numpy()[1:] == srt["edge"].to_numpy()[:-1]
    overlapping = bool(np.any(same & (srt["s"].to_numpy()[1:] < srt["e"].to_numpy()[:-1])))
    if overlapping:  # bins of one edge overlap: match every pair (edge-wise join)
        m = hits.merge(cnt, on="edge")
        m = m[(m["s"] <= m["t"]) & (m["t"] < m["e"])]
        rows, cols = m["k"].to_numpy(), m["cell"].to_numpy()
    else:  # disjoint bins per edge: the bin starting last at or before t
        span = float(max(srt["e"].max(), hits["t"].max() if len(hits) else 0.0)) + 1.0
        key = srt["edge"].to_numpy() * span + srt["s"].to_numpy()
        pos = np.searchsorted(key, hits["edge"].to_numpy() * span + hits["t"].to_numpy(),
                              side="right") - 1
        ok = pos >= 0
        pos_ok = np.where(ok, pos, 0)
        ok &= (srt["edge"].to_numpy()[pos_ok] == hits["edge"].to_numpy()) & (
            hits["t"].to_numpy() < srt["e"].to_numpy()[pos_ok])
        rows = srt["k"].to_numpy()[pos_ok[ok]]
        cols = hits["cell"].to_numpy()[ok]
    n_cell = cells["trips"].to_numpy(dtype=float)
    cols_a = np.asarray(cols, dtype=np.int64)
    A = sparse.csr_matrix((1.0 / n_cell[cols_a], (np.asarray(rows, dtype=np.int64), cols_a)),
                          shape=(len(counts), len(cells)))
    A.sum_duplicates()
    return A, cells


def _cell_keys(trips: pd.DataFrame, *, cell_s: float, zones: Mapping[object, object] | None
               ) -> pd.DataFrame:
    o, d = trips["origin_node"], trips["dest_node"]
    if zones is not None:
        missing = sorted({n for n in pd.unique(pd.concat([o, d])) if n not in zones})
        if missing:
            raise InputError(f"zones: {len(missing)} trip nodes have no zone, e.g. {missing[:5]}")
        o, d = o.map(zones), d.map(zones)
    return pd.DataFrame({"origin": o.to_numpy(), "dest": d.to_numpy(),
                         "depart_bin": np.floor(trips["depart_s"].to_numpy(float) / cell_s).astype(np.int64)})


def _road_arrays(city: object) -> RoadArrays:
    from citytwin.network.routing import road_arrays

    return road_arrays(city.roads)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TrafficCalibration:
    """Demand scale and OD adjustment fitted to counts, with before/after GEH."""

    scale: float
    cells: pd.DataFrame  # origin, dest (zones), depart_bin, trips, factor (incl. scale)
    counts: pd.DataFrame  # count rows + modelled_before_vph, modelled_after_vph, geh_*
    before: dict[str, float | int | bool]
    after_scale: dict[str, float | int | bool]
    after: dict[str, float | int | bool]

    cell_s: float = 3600.0
    zones: Mapping[object, object] | None = None
    scale_se: float = float("nan")  # standard error of ``scale`` (see fit_scale_se)

    def trip_factors(self, trips: pd.DataFrame) -> np.ndarray:
        """Per-trip demand factor (its cell's factor; unknown cells get the global scale)."""
        key = _cell_keys(trips, cell_s=self.cell_s, zones=self.zones)
        f = key.merge(self.cells, on=["origin", "dest", "depart_bin"], how="left")["factor"]
        return f.fillna(self.scale).to_numpy(dtype=float)


def calibrate_traffic(
    city: object,
    trips: pd.DataFrame,
    counts: pd.DataFrame,
    *,
    od: bool = True,
    weight: float = 0.05,
    cell_s: float = 3600.0,
    zones: Mapping[object, object] | None = None,
    sample: float = 1.0,
) -> TrafficCalibration:
    """Fit a global demand scale (ratio of totals, with its standard error) and then, if ``od``, adjust OD cells (GLS).

    ``trips`` are the modelled trips (contract columns); ``sample`` is the share of the
    population they represent (counts are compared with trips / sample).
    """
    if len(counts) == 0:
        raise InputError("calibrate_traffic: no counts")
    A, cells = count_incidence(city, trips, counts, cell_s=cell_s, zones=zones)
    width_h = (counts["end_s"].to_numpy(float) - counts["start_s"].to_numpy(float)) / 3600.0
    obs = counts["count"].to_numpy(dtype=float)
    prior = cells["trips"].to_numpy(dtype=float) / sample
    m0 = np.asarray(A @ prior).ravel()
    before = traffic_fit(m0 / width_h, obs / width_h)
    scale, scale_se = fit_scale_se(m0, obs)
    m1 = scale * m0
    after_scale = traffic_fit(m1 / width_h, obs / width_h)
    factor = np.full(len(cells), scale)
    m2 = m1
    if od:
        res = adjust_od(scale * prior, A, obs, weight=weight)
        factor = scale * res.factor
        m2 = res.modelled
    after = traffic_fit(m2 / width_h, obs / width_h)
    out_counts = counts.copy()
    out_counts["modelled_before_vph"] = m0 / width_h
    out_counts["modelled_after_vph"] = m2 / width_h
    out_counts["geh_before"] = geh(m0 / width_h, obs / width_h)
    out_counts["geh_after"] = geh(m2 / width_h, obs / width_h)
    log.info("traffic calibration: scale %.3f, GEH<5 share %.2f -> %.2f", scale,
             before["share_geh_lt5"], after["share_geh_lt5"])
    return TrafficCalibration(scale=scale, cells=cells.assign(factor=factor), counts=out_counts,
                              before=before, after_scale=after_scale, after=after,
                              cell_s=cell_s, zones=zones, scale_se=scale_se)


def reweight_trips(trips: pd.DataFrame, factor: np.ndarray, *, seed: int) -> pd.DataFrame:
    """Trips resampled to per-trip ``factor``: each trip kept floor(f) times plus once more with
    probability frac(f) (stream ``"calibration"``); copies get new ``trip_id``s."""
    from citytwin.rng import stream

    f = np.asarray(factor, dtype=float)
    if f.shape != (len(trips),) or (f < 0).any() or not np.isfinite(f).all():
        raise InputError(f"reweight_trips: need {len(trips)} finite factors ≥ 0")
    u = stream(seed, "calibration").random(len(trips))
    reps = np.floor(f).astype(np.int64) + (u < f - np.floor(f))
    out = trips.loc[trips.index.repeat(reps)].reset_index(drop=True)
    if "trip_id" in out:
        out["trip_id"] = np.arange(len(out))
    return out


# --------------------------------------------------------------------------------------------
# energy: load multipliers per building use from meter readings
# --------------------------------------------------------------------------------------------


def meter_use_loads(
    city: object, meters: pd.DataFrame, loads_kw: np.ndarray, *, step_s: float
) -> pd.DataFrame:
    """Modelled mean load (kW) per building use behind each reading: readings x uses.

    ``meters`` is :func:`citytwin.twin.observations.read_meters`'s table; ``loads_kw`` is
    (buildings x steps) in ``city.buildings`` row order, steps of ``step_s`` from t = 0. A
    transformer meter sees every building whose ``transformer`` is that id.
    """
    b = city.buildings  # type: ignore[attr-defined]
    L = np.asarray(loads_kw, dtype=float)
    if L.ndim != 2 or L.shape[0] != len(b):
        raise InputError(f"loads_kw must be (buildings={len(b)}, steps), got {L.shape}")
    uses = sorted(b["use"].astype(str).unique())
    use_code = pd.Categorical(b["use"].astype(str), categories=uses).codes
    pos = {int(i): k for k, i in enumerate(b.index)}
    tr = b["transformer"].astype(str).to_numpy() if "transformer" in b else np.array([""] * len(b))
    n_t = L.shape[1]
    out = np.zeros((len(meters), len(uses)))
    starts = meters["start_s"].to_numpy(float)
    ends = meters["end_s"].to_numpy(float)
    edges = np.arange(n_t + 1) * step_s
    # overlap weights of each reading with each step (readings x steps), mean over the interval
    lo = np.maximum(starts[:, None], edges[None, :-1])
    hi = np.minimum(ends[:, None], edges[None, 1:])
    W = np.clip(hi - lo, 0.0, None) / (ends - starts)[:, None]
    covered = W.sum(axis=1)
    if (covered < 1 - 1e-9).any():
        bad = np.flatnonzero(covered < 1 - 1e-9)
        raise InputError(f"meter readings {(bad[:10] + 1).tolist()} extend past the modelled "
                         f"loads ({n_t} steps of {step_s:g} s)")
    target = meters["target"].to_numpy()
    keys = np.where(target == "transformer", meters["transformer"].astype(str),
                    meters["building_id"].astype(str))
    for key in pd.unique(keys):
        sel = np.flatnonzero(keys == key)
        rows = (np.flatnonzero(tr == key) if target[sel[0]] == "transformer"
                else np.array([pos[int(key)]]))
        per_use = np.zeros((len(uses), n_t))
        np.add.at(per_use, use_code[rows], L[rows])
        out[sel] = W[sel] @ per_use.T
    return pd.DataFrame(out, columns=uses, index=meters.index)


@dataclass(frozen=True)
class EnergyCalibration:
    multipliers: dict[str, float]
    readings: pd.DataFrame  # meter rows + modelled_before_kw, modelled_after_kw
    before: dict[str, float | int | bool]
    after: dict[str, float | int | bool]


def calibrate_energy(
    city: object, meters: pd.DataFrame, loads_kw: np.ndarray, *, step_s: float
) -> EnergyCalibration:
    """Per-use load multipliers from meter readings; ASHRAE G14 metrics before (p = 1) and after
    (p = number of fitted multipliers)."""
    if len(meters) == 0:
        raise InputError("calibrate_energy: no meter readings")
    X = meter_use_loads(city, meters, loads_kw, step_s=step_s)
    y = meters["kw"].to_numpy(float)
    before_kw = X.sum(axis=1).to_numpy()
    k = fit_use_multipliers(X, y)
    after_kw = X.to_numpy() @ np.array([k[u] for u in X.columns])
    n_fit = int((X.sum(axis=0) > 0).sum())
    readings = meters.assign(modelled_before_kw=before_kw, modelled_after_kw=after_kw)
    return EnergyCalibration(multipliers=k, readings=readings, before=energy_fit(y, before_kw, p=1),
                             after=energy_fit(y, after_kw, p=n_fit))


# --------------------------------------------------------------------------------------------
# emergency: incident rates per type
# --------------------------------------------------------------------------------------------

#: EmergencyParams fields scaled by each incident type's multiplier
INCIDENT_RATE_FIELDS: dict[str, tuple[str, ...]] = {
    "medical": ("medical_per_resident_year", "medical_per_job_year"),
    "fire": ("fire_per_resident_year", "fire_per_job_year"),
    "traffic": ("traffic_per_person_year",),
}


@dataclass(frozen=True)
class IncidentCalibration:
    multipliers: dict[str, float]
    counts: pd.DataFrame  # type, observed, expected_before, expected_after
    response: dict[str, float | int] | None  # response_fit(log, model) when modelled times given


def calibrate_incidents(
    incidents: pd.DataFrame,
    expected: Mapping[str, float],
    *,
    modelled_response_s: object | None = None,
) -> IncidentCalibration:
    """Poisson MLE rate multiplier per incident type (observed / expected count over the
    observed period) and, given the model's response times, the response-time fit."""
    observed = incidents["type"].astype(str).value_counts().to_dict()
    k = fit_incident_rates(observed, expected)
    types = sorted(set(observed) | set(expected))
    counts = pd.DataFrame({
        "type": types,
        "observed": [int(observed.get(t, 0)) for t in types],
        "expected_before": [float(expected.get(t, 0.0)) for t in types],
    })
    counts["expected_after"] = [float(expected.get(t, 0.0)) * k.get(t, 1.0) for t in types]
    resp = None
    if modelled_response_s is not None:
        resp = response_fit(incidents["response_s"].to_numpy(float), modelled_response_s)
    return IncidentCalibration(multipliers=k, counts=counts, response=resp)


def incident_param_updates(params: object, multipliers: Mapping[str, float]) -> dict[str, float]:
    """New values of the EmergencyParams rate fields for the fitted type multipliers."""
    out: dict[str, float] = {}
    for t, k in sorted(multipliers.items()):
        for name in INCIDENT_RATE_FIELDS.get(t, ()):
            if hasattr(params, name):
                out[name] = float(getattr(params, name)) * float(k)
    return out


def counts_from_links(links: pd.DataFrame, counts: pd.DataFrame, *, interval_s: float
                      ) -> np.ndarray:
    """Modelled flow (veh/h) per count from a traffic ``links`` table (``edge_id``, ``time_s`` =
    end of a recording interval of ``interval_s``, ``volume`` = vehicles that entered in it;
    absent rows are zero), pro rata where an interval straddles a count bin."""
    k = pd.DataFrame({"k": np.arange(len(counts)), "edge_id": counts["edge_id"].to_numpy(),
                      "s": counts["start_s"].to_numpy(float), "e": counts["end_s"].to_numpy(float)})
    lk = links.loc[links["edge_id"].isin(k["edge_id"]), ["edge_id", "time_s", "volume"]]
    m = k.merge(lk, on="edge_id")
    lo = np.maximum(m["s"].to_numpy(), m["time_s"].to_numpy() - interval_s)
    hi = np.minimum(m["e"].to_numpy(), m["time_s"].to_numpy())
    share = np.clip(hi - lo, 0.0, None) / interval_s
    vol = np.zeros(len(counts))
    np.add.at(vol, m["k"].to_numpy(), m["volume"].to_numpy(float) * share)
    return vol * 3600.0 / (k["e"] - k["s"]).to_numpy()
