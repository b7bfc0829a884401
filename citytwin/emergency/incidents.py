"""Incidents: Poisson generation per building (by type, use, population, hour) and log replay.

Generated incidents are *candidates* drawn at the highest rate the run can reach (outage
multiplier included) and thinned when the engine reaches them (Lewis-Shedler thinning): a candidate
at a building without power is kept with probability ``m / max(1, m)``, elsewhere ``1 / max(1, m)``.
So the stream does not depend on how often the model syncs, and outage coupling needs no re-draw.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from citytwin.emergency.params import COMMUTE_PROFILE, EMS_PROFILE, INCIDENT_TYPES, EmergencyParams
from citytwin.errors import InputError
from citytwin.rng import stream

__all__ = ["building_rates", "generate_incidents", "read_incidents", "INCIDENT_COLUMNS"]

log = logging.getLogger(__name__)

YEAR_S = 365.0 * 86400.0
#: columns of the engine's incident table (generated or replayed)
INCIDENT_COLUMNS = ["incident_id", "time_s", "type", "priority", "building_id", "node", "keep_u"]
_ALLOWED_INPUT = {"incident_id", "time_s", "time", "type", "priority", "building_id",
                  "x", "y", "lon", "lat"}


def _col(buildings: pd.DataFrame, name: str) -> np.ndarray:
    if name not in buildings.columns:
        return np.zeros(len(buildings))
    return np.nan_to_num(buildings[name].to_numpy(dtype=float), nan=0.0)


def building_rates(buildings: pd.DataFrame, params: EmergencyParams) -> pd.DataFrame:
    """Expected incidents per building per year, one column per incident type."""
    pop = _col(buildings, "population")
    jobs = _col(buildings, "jobs")
    use = buildings["use"].astype(str) if "use" in buildings.columns else pd.Series(
        "other", index=buildings.index)
    med_f = use.map(params.medical_use_factor).fillna(1.0).to_numpy(dtype=float)
    fire_f = use.map(params.fire_use_factor).fillna(1.0).to_numpy(dtype=float)
    m = params.rate_multiplier
    return pd.DataFrame(
        {
            "medical": m * med_f * (pop * params.medical_per_resident_year
                                    + jobs * params.medical_per_job_year),
            "fire": m * fire_f * (pop * params.fire_per_resident_year
                                  + jobs * params.fire_per_job_year),
            "traffic": m * (pop + jobs) * params.traffic_per_person_year,
        },
        index=buildings.index,
    )


def generate_incidents(
    buildings: pd.DataFrame,
    params: EmergencyParams,
    *,
    seed: int,
    duration_s: float,
    node_pos: dict[Any, int],
) -> pd.DataFrame:
    """Candidate incidents over ``[0, duration_s)`` (see the module note on thinning)."""
    rng = stream(seed, "incidents")
    rates = building_rates(buildings, params)
    boost = max(1.0, params.outage_rate_multiplier)
    bid = buildings.index.to_numpy()
    if "road_node" in buildings.columns:
        nodes = np.array([node_pos.get(n, -1) for n in buildings["road_node"].tolist()])
    else:
        nodes = np.full(len(buildings), -1)
    levels = _col(buildings, "levels")
    frames: list[tuple[np.ndarray, ...]] = []
    n_hours = int(np.ceil(duration_s / 3600.0))
    for kind in INCIDENT_TYPES:
        w = rates[kind].to_numpy()
        total = float(w.sum())
        if total <= 0:
            continue
        cdf = np.cumsum(w / total)
        cdf[-1] = 1.0
        profile = COMMUTE_PROFILE if kind == "traffic" else EMS_PROFILE
        for h in range(n_hours):
            t0 = h * 3600.0
            span = min(3600.0, duration_s - t0)
            lam = total * boost * profile[h % 24] * span / YEAR_S
            n = int(rng.poisson(lam))
            if n == 0:
                continue
            idx = np.searchsorted(cdf, rng.uniform(size=n), side="right")
            times = t0 + rng.uniform(0.0, span, size=n)
            if kind == "medical":
                prio = np.where(rng.uniform(size=n) < params.medical_p1_share, 1, 2)
            elif kind == "fire":
                prio = np.ones(n, dtype=int)
            else:
                prio = np.full(n, 2)
            frames.append((times, np.full(n, kind, dtype=object), prio, idx,
                           rng.uniform(size=n)))
    if not frames:
        out = pd.DataFrame({c: pd.Series(dtype=float) for c in INCIDENT_COLUMNS + ["levels"]})
        out["type"] = out["type"].astype(object)
        return out
    idx = np.concatenate([f[3] for f in frames])
    out = pd.DataFrame({
        "time_s": np.concatenate([f[0] for f in frames]),
        "type": np.concatenate([f[1] for f in frames]),
        "priority": np.concatenate([f[2] for f in frames]).astype(np.int64),
        "building_id": bid[idx], "node": nodes[idx],
        "keep_u": np.concatenate([f[4] for f in frames]), "levels": levels[idx],
    }).sort_values(["time_s", "building_id"], kind="stable")
    out.insert(0, "incident_id", np.arange(len(out)))
    out = out.reset_index(drop=True)
    unplaced = int((out["node"] < 0).sum())
    if unplaced:
        raise InputError(
            [f"buildings: {unplaced} incidents fell on buildings whose road_node is not in the "
             "road graph"], source="buildings")
    log.info("generated %d candidate incidents over %.0f h", len(out), duration_s / 3600)
    return out


def read_incidents(
    table: pd.DataFrame,
    *,
    buildings: pd.DataFrame,
    node_xy: tuple[np.ndarray, np.ndarray],
    node_pos: dict[Any, int],
    crs: Any,
    duration_s: float,
    start: pd.Timestamp | None = None,
    max_snap_m: float = 500.0,
    source: str = "incident table",
) -> pd.DataFrame:
    """Validate an incident log and place each record on the road network.

    Columns: ``time_s`` (s since the period start) or ``time`` (timestamps, needs ``start``);
    ``type`` in :data:`INCIDENT_TYPES`; location as ``building_id``, or ``x``/``y`` (city CRS, m),
    or ``lon``/``lat``; optional ``priority`` (1/2) and ``incident_id``. Every problem is collected
    and raised as one :class:`InputError` naming the rows. Records outside ``[0, duration_s)`` are
    dropped and counted in the log.
    """
    problems: list[str] = []
    unknown = sorted(set(table.columns) - _ALLOWED_INPUT)
    if unknown:
        problems.append(f"unknown column(s) {unknown}; expected some of {sorted(_ALLOWED_INPUT)}")
    if "type" not in table.columns:
        problems.append("missing column 'type'")
    if "time_s" not in table.columns and "time" not in table.columns:
        problems.append("missing column 'time_s' (or 'time' with a start timestamp)")
    has_b = "building_id" in table.columns
    has_xy = {"x", "y"} <= set(table.columns)
    has_ll = {"lon", "lat"} <= set(table.columns)
    if not (has_b or has_xy or has_ll):
        problems.append("no location: give 'building_id', or 'x' and 'y', or 'lon' and 'lat'")
    if problems:
        raise InputError(problems, source=source)

    df = table.reset_index(drop=True)
    n = len(df)
    if "time_s" in df.columns:
        t = pd.to_numeric(df["time_s"], errors="coerce").to_numpy(dtype=float)
    else:
        if start is None:
            raise InputError(["column 'time' needs the run's start timestamp"], source=source)
        ts = pd.to_datetime(df["time"], errors="coerce")
        t = ((ts - start).dt.total_seconds()).to_numpy(dtype=float)
    bad_t = np.flatnonzero(~np.isfinite(t))
    if bad_t.size:
        problems.append(f"rows {_rows(bad_t)}: time is missing or not a number/timestamp")
    kinds = df["type"].astype(str).to_numpy()
    bad_k = np.flatnonzero(~np.isin(kinds, INCIDENT_TYPES))
    if bad_k.size:
        problems.append(f"rows {_rows(bad_k)}: type {sorted(set(kinds[bad_k]))} not one of "
                        f"{list(INCIDENT_TYPES)}")
    if "priority" in df.columns:
        prio = pd.to_numeric(df["priority"], errors="coerce").to_numpy(dtype=float)
        bad_p = np.flatnonzero(~np.isin(prio, [1.0, 2.0]))
        if bad_p.size:
            problems.append(f"rows {_rows(bad_p)}: priority must be 1 or 2")
    else:
        prio = np.where(kinds == "traffic", 2.0, 1.0)

    node = np.full(n, -1, dtype=np.int64)
    bid = np.full(n, -1, dtype=np.int64)
    located = np.zeros(n, dtype=bool)
    if has_b:
        b = pd.to_numeric(df["building_id"], errors="coerce").to_numpy(dtype=float)
        given = np.isfinite(b)
        known = given & np.isin(b, buildings.index.to_numpy())
        bad_b = np.flatnonzero(given & ~known)
        if bad_b.size:
            problems.append(f"rows {_rows(bad_b)}: building_id not in the city's buildings")
        ki = np.flatnonzero(known)
        bid[ki] = b[ki].astype(np.int64)
        node[ki] = [node_pos[n] for n in buildings["road_node"].reindex(bid[ki]).tolist()]
        located |= given
    x = np.full(n, np.nan)
    y = np.full(n, np.nan)
    if has_xy:
        x = pd.to_numeric(df["x"], errors="coerce").to_numpy(dtype=float)
        y = pd.to_numeric(df["y"], errors="coerce").to_numpy(dtype=float)
    if has_ll:
        from pyproj import Transformer

        lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(dtype=float)
        use_ll = ~np.isfinite(x) & np.isfinite(lon) & np.isfinite(lat)
        if use_ll.any():
            tr = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
            x[use_ll], y[use_ll] = tr.transform(lon[use_ll], lat[use_ll])
    pt = ~located & np.isfinite(x) & np.isfinite(y)
    if pt.any():
        nx_, ny_ = node_xy
        dist, near = cKDTree(np.column_stack([nx_, ny_])).query(np.column_stack([x[pt], y[pt]]))
        rows_pt = np.flatnonzero(pt)
        far = dist > max_snap_m
        if far.any():
            problems.append(
                f"rows {_rows(rows_pt[far])}: location is more than {max_snap_m:.0f} m from the "
                "city's road network (outside the city?)")
        node[rows_pt[~far]] = near[~far]
        located |= pt
    no_loc = np.flatnonzero(~located)
    if no_loc.size:
        problems.append(f"rows {_rows(no_loc)}: no usable location (building_id, x/y or lon/lat)")
    if problems:
        raise InputError(problems, source=source)

    out = pd.DataFrame({
        "incident_id": (df["incident_id"].to_numpy() if "incident_id" in df.columns
                        else np.arange(n)),
        "time_s": t, "type": kinds, "priority": prio.astype(int), "building_id": bid,
        "node": node, "keep_u": np.zeros(n),  # a logged incident happened: never thinned
        "levels": (buildings["levels"].reindex(bid).fillna(0).to_numpy(dtype=float)
                   if "levels" in buildings.columns else np.zeros(n)),
    })
    inside = (out["time_s"] >= 0) & (out["time_s"] < duration_s)
    if (~inside).any():
        log.warning("%s: %d of %d incidents lie outside the simulated period [0, %.0f s) and "
                    "are not replayed", source, int((~inside).sum()), n, duration_s)
    out = out[inside].sort_values("time_s", kind="stable").reset_index(drop=True)
    return out


def _rows(idx: np.ndarray, limit: int = 20) -> str:
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return f"[{shown}{', ...' if len(idx) > limit else ''}] ({len(idx)} rows)"
