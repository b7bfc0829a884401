"""Observation tables in: traffic counts, meter readings, incident logs, road closures.

Each reader takes a CSV/Parquet path (or a DataFrame) and the twin (a :class:`~citytwin.city.City`
or anything with ``roads``, ``buildings``, ``power`` and ``crs``), validates every row, snaps
point locations to the twin and returns an :class:`Observations`: the canonical ``table`` plus a
``rejected`` table (original columns, ``row`` and ``reason``). Formats: ``docs/observations.md``.

Two kinds of problem:

* **file problems** (missing columns, unparseable numbers or times, mixed units) always raise one
  :class:`~citytwin.errors.ObservationError` listing every problem with its file, row and column;
* **record problems** (unknown ids, times outside the simulated period, negative values, a point
  farther than ``snap_tolerance_m`` from the twin) raise too with ``on_bad="raise"`` (default),
  or with ``on_bad="reject"`` the record goes to ``rejected`` with its reason and is counted.

Rows are numbered from 1 (the first data row, header excluded). Times are either numbers
(seconds since the period start) or timestamps (then ``start=`` is the period's t = 0).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from citytwin.errors import ObservationError

if TYPE_CHECKING:
    from citytwin.city import City

__all__ = [
    "Observations",
    "TwinIndex",
    "read_counts",
    "read_meters",
    "read_incidents",
    "read_closures",
    "read_table",
]

log = logging.getLogger(__name__)

OnBad = Literal["raise", "reject"]
_UNITS = {"kwh": "kWh", "kw": "kW"}


@dataclass(frozen=True)
class Observations:
    """One validated observation table: accepted records plus counted rejections."""

    kind: str  # "counts" | "meters" | "incidents" | "closures"
    table: pd.DataFrame
    rejected: pd.DataFrame
    source: str
    n_read: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Counts of read / accepted / rejected records and rejections by reason."""
        reasons: dict[str, int] = {}
        if len(self.rejected):
            short = self.rejected["reason"].str.split(":").str[0]
            reasons = {str(k): int(v) for k, v in short.value_counts().sort_index().items()}
        return {
            "kind": self.kind,
            "source": self.source,
            "read": int(self.n_read),
            "accepted": len(self.table),
            "rejected": len(self.rejected),
            "rejected_by_reason": reasons,
        }


# --------------------------------------------------------------------------------------------
# the twin side: spatial indices for snapping
# --------------------------------------------------------------------------------------------


class TwinIndex:
    """Ids and STRtrees of a twin, built once and reused by every reader."""

    def __init__(self, city: City) -> None:
        self.city = city
        G = city.roads
        ids, geoms, bearings = [], [], []
        for u, v, d in G.edges(data=True):
            g = d.get("geometry")
            if g is None:
                g = shapely.LineString(
                    [(G.nodes[u]["x"], G.nodes[u]["y"]), (G.nodes[v]["x"], G.nodes[v]["y"])]
                )
            ids.append(int(d["edge_id"]))
            geoms.append(g)
            dx = G.nodes[v]["x"] - G.nodes[u]["x"]
            dy = G.nodes[v]["y"] - G.nodes[u]["y"]
            bearings.append(float(np.degrees(np.arctan2(dx, dy)) % 360.0))
        order = np.argsort(ids, kind="stable")
        self.edge_ids = np.asarray(ids, dtype=np.int64)[order]
        self.edge_geoms = np.asarray(geoms, dtype=object)[order]
        self.edge_bearing = np.asarray(bearings)[order]
        self.edge_tree = shapely.STRtree(self.edge_geoms)
        b = city.buildings
        self.building_ids = np.asarray(b.index, dtype=np.int64)
        self.building_tree = shapely.STRtree(np.asarray(b.geometry.values, dtype=object))
        self.building_use = dict(zip(self.building_ids.tolist(), b["use"].astype(str), strict=True)) if "use" in b else {}
        power = getattr(city, "power", None)
        self.transformers: set[str] = set()
        if power is not None:
            self.transformers = {
                str(n) for n, d in power.nodes(data=True) if d.get("kind") == "transformer"
            }
        crs = getattr(city, "crs", None)
        self._to_city = (
            Transformer.from_crs("EPSG:4326", crs, always_xy=True) if crs is not None else None
        )

    def lonlat_to_xy(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self._to_city is None:
            raise ObservationError("the twin has no CRS: cannot place lon/lat records")
        x, y = self._to_city.transform(np.asarray(lon, float), np.asarray(lat, float))
        return np.asarray(x), np.asarray(y)

    def snap_edges(
        self, x: np.ndarray, y: np.ndarray, *, tolerance_m: float, heading: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest edge id per point (-1 if none within tolerance) and the distance (m).

        Among edges equally near (the two directions of a street) the one whose bearing is
        closest to ``heading`` (degrees from north) wins; without a heading the lowest edge_id.
        """
        pts = shapely.points(np.asarray(x, float), np.asarray(y, float))
        out = np.full(len(pts), -1, dtype=np.int64)
        dist = np.full(len(pts), np.nan)
        if len(pts) == 0:
            return out, dist
        (pi, ei), d = self.edge_tree.query_nearest(
            pts, max_distance=tolerance_m, return_distance=True, all_matches=True
        )
        for p in np.unique(pi):
            sel = pi == p
            cand = ei[sel]
            if heading is not None and np.isfinite(heading[p]):
                diff = np.abs((self.edge_bearing[cand] - heading[p] + 180.0) % 360.0 - 180.0)
                best = cand[np.lexsort((self.edge_ids[cand], diff))[0]]
            else:
                best = cand[np.argmin(self.edge_ids[cand])]
            out[p] = self.edge_ids[best]
            dist[p] = float(d[sel][0])
        return out, dist

    def snap_buildings(
        self, x: np.ndarray, y: np.ndarray, *, tolerance_m: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Nearest building id per point (-1 if none within tolerance) and the distance (m)."""
        pts = shapely.points(np.asarray(x, float), np.asarray(y, float))
        out = np.full(len(pts), -1, dtype=np.int64)
        dist = np.full(len(pts), np.nan)
        if len(pts) == 0:
            return out, dist
        (pi, bi), d = self.building_tree.query_nearest(
            pts, max_distance=tolerance_m, return_distance=True, all_matches=True
        )
        # first match per point (lowest building position = lowest id on ties)
        first = np.unique(pi, return_index=True)[1]
        out[pi[first]] = self.building_ids[bi[first]]
        dist[pi[first]] = d[first]
        return out, dist


def _index(city: City) -> TwinIndex:
    if isinstance(city, TwinIndex):
        return city
    cached = getattr(city, "_citytwin_obs_index", None)
    if isinstance(cached, TwinIndex):
        return cached
    idx = TwinIndex(city)
    try:
        object.__setattr__(city, "_citytwin_obs_index", idx)
    except (AttributeError, TypeError):  # slotted / frozen objects: just don't cache
        pass
    return idx


# --------------------------------------------------------------------------------------------
# shared reading and validation helpers
# --------------------------------------------------------------------------------------------


def read_table(source: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Read a CSV or Parquet observation table (or take a DataFrame); return (frame, name)."""
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True).copy(), "<DataFrame>"
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"observation file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        df = pd.read_parquet(path)
    elif suffix in {".csv", ".txt"}:
        df = pd.read_csv(path)
    else:
        raise ObservationError(
            f"unsupported file type {suffix!r}: expected .csv or .parquet", source=str(path)
        )
    df.columns = [str(c).strip() for c in df.columns]
    return df.reset_index(drop=True), str(path)


class _Checker:
    """Collects file problems (always fatal) and record problems (fatal or rejections)."""

    def __init__(self, df: pd.DataFrame, name: str, kind: str, on_bad: OnBad) -> None:
        if on_bad not in ("raise", "reject"):
            raise ValueError(f"on_bad must be 'raise' or 'reject', not {on_bad!r}")
        self.df, self.name, self.kind, self.on_bad = df, name, kind, on_bad
        self.fatal: list[str] = []
        self.bad = np.zeros(len(df), dtype=bool)
        self.reason = np.array([""] * len(df), dtype=object)
        self.record_msgs: list[str] = []

    def file(self, msg: str) -> None:
        self.fatal.append(msg)

    def record(self, mask: np.ndarray, reason: str, column: str, detail: str) -> None:
        """Flag rows in ``mask``; ``detail`` is formatted with ``{value}`` of that row."""
        mask = np.asarray(mask, dtype=bool) & ~self.bad
        for i in np.flatnonzero(mask):
            value = self.df[column].iloc[i] if column in self.df else None
            msg = f"{reason}: row {i + 1}, column {column!r}: " + detail.format(value=value)
            self.reason[i] = msg
            self.record_msgs.append(msg)
        self.bad |= mask

    def require(self, *alternatives: tuple[str, ...]) -> tuple[str, ...] | None:
        """The first alternative whose columns are all present; a file problem if none is."""
        for cols in alternatives:
            if all(c in self.df.columns for c in cols):
                return cols
        wanted = " or ".join("(" + ", ".join(a) + ")" for a in alternatives)
        self.file(f"missing columns: expected {wanted}; found {list(self.df.columns)}")
        return None

    def numeric(self, column: str, *, allow_missing: bool = False) -> np.ndarray:
        raw = self.df[column]
        vals = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        broken = np.isnan(vals) & raw.notna().to_numpy()
        if not allow_missing:
            broken |= raw.isna().to_numpy()
        for i in np.flatnonzero(broken)[:20]:
            self.file(f"row {i + 1}, column {column!r}: expected a number, got {raw.iloc[i]!r}")
        if broken.sum() > 20:
            self.file(f"column {column!r}: {int(broken.sum()) - 20} more rows are not numbers")
        return vals

    def times(self, column: str, start: pd.Timestamp | None) -> np.ndarray:
        """Seconds since the period start; numbers pass through, timestamps need ``start``."""
        raw = self.df[column]
        if pd.api.types.is_numeric_dtype(raw):
            return self.numeric(column)
        as_num = pd.to_numeric(raw, errors="coerce")
        if as_num.notna().all():
            return as_num.to_numpy(dtype=float)
        if start is None:
            self.file(
                f"column {column!r} holds timestamps (e.g. {raw.iloc[0]!r}): pass start= "
                "(the simulated period's t = 0) or give seconds since the period start"
            )
            return np.full(len(raw), np.nan)
        ts = pd.to_datetime(raw, errors="coerce", utc=start.tzinfo is not None)
        if ts.dt.tz is not None and start.tzinfo is None:
            ts = ts.dt.tz_convert(None)
        broken = ts.isna().to_numpy()
        for i in np.flatnonzero(broken)[:20]:
            self.file(f"row {i + 1}, column {column!r}: expected a time, got {raw.iloc[i]!r}")
        return ((ts - start).dt.total_seconds()).to_numpy(dtype=float)

    def finish(self, table: pd.DataFrame, n_read: int, extra: dict | None = None) -> Observations:
        if self.fatal or (self.on_bad == "raise" and self.record_msgs):
            problems = self.fatal + sorted(self.record_msgs, key=_row_of)
            raise ObservationError(
                [f"{self.kind}: {p}" for p in problems[:200]]
                + ([f"... and {len(problems) - 200} more"] if len(problems) > 200 else []),
                source=self.name,
            )
        rejected = self.df.loc[self.bad].copy()
        rejected.insert(0, "row", np.flatnonzero(self.bad) + 1)
        rejected["reason"] = self.reason[self.bad].astype(str)
        if len(rejected):
            log.warning("%s: %d of %d %s records rejected", self.name, len(rejected), n_read, self.kind)
        kept = table.loc[~self.bad].reset_index(drop=True)
        return Observations(
            kind=self.kind,
            table=kept,
            rejected=rejected.reset_index(drop=True),
            source=self.name,
            n_read=n_read,
            extra=extra or {},
        )

    def period(self, t: np.ndarray, column: str, duration_s: float | None, *, end: bool = False) -> None:
        if duration_s is None:
            return
        ok = np.isnan(t) | ((t >= 0.0) & (t <= duration_s if end else t < duration_s))
        self.record(
            ~ok,
            "outside period",
            column,
            f"time {{value}} is outside the simulated period [0, {duration_s:g}) s",
        )


def _locate(
    chk: _Checker,
    idx: TwinIndex,
    *,
    target: Literal["edge", "building"],
    id_col: str,
    tolerance_m: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Target ids (edge_id or building_id) from an id column, x/y or lon/lat; snap distances."""
    df = chk.df
    n = len(df)
    ids = np.full(n, -1, dtype=np.int64)
    dist = np.full(n, np.nan)
    known = idx.edge_ids if target == "edge" else idx.building_ids
    has_id = np.zeros(n, dtype=bool)
    if id_col in df:
        raw = pd.to_numeric(df[id_col], errors="coerce")
        has_id = raw.notna().to_numpy()
        bad_num = df[id_col].notna().to_numpy() & ~has_id
        for i in np.flatnonzero(bad_num)[:20]:
            chk.file(f"row {i + 1}, column {id_col!r}: expected an integer id, got {df[id_col].iloc[i]!r}")
        vals = raw.fillna(-1).to_numpy(dtype=np.int64)
        ids[has_id] = vals[has_id]
        dist[has_id] = 0.0
        unknown = has_id & ~np.isin(ids, known)
        chk.record(unknown, "unknown id", id_col, f"{{value}} is not {'an edge' if target == 'edge' else 'a building'} of the twin")
    need = ~has_id
    x = y = None
    if {"x", "y"} <= set(df.columns):
        x = pd.to_numeric(df["x"], errors="coerce").to_numpy(float)
        y = pd.to_numeric(df["y"], errors="coerce").to_numpy(float)
    if {"lon", "lat"} <= set(df.columns):  # per row: x/y first, lon/lat where x/y is empty
        lon = pd.to_numeric(df["lon"], errors="coerce").to_numpy(float)
        lat = pd.to_numeric(df["lat"], errors="coerce").to_numpy(float)
        if x is None or y is None:
            x, y = np.full(n, np.nan), np.full(n, np.nan)
        ok = np.isfinite(lon) & np.isfinite(lat) & ~(np.isfinite(x) & np.isfinite(y))
        if ok.any():
            x[ok], y[ok] = idx.lonlat_to_xy(lon[ok], lat[ok])
    if need.any():
        if x is None or y is None:
            if id_col not in df:
                chk.file(f"missing columns: expected {id_col!r}, (x, y) or (lon, lat)")
            else:
                chk.record(need, "no location", id_col, f"empty {id_col} and no x/y or lon/lat")
            return ids, dist
        loc_ok = need & np.isfinite(x) & np.isfinite(y)
        chk.record(need & ~loc_ok, "no location", id_col if id_col in df else df.columns[0],
                   f"no {id_col} and no finite x/y or lon/lat")
        if loc_ok.any():
            sel = np.flatnonzero(loc_ok)
            if target == "edge":
                heading = None
                if "heading_deg" in df:
                    heading = pd.to_numeric(df["heading_deg"], errors="coerce").to_numpy(float)[sel]
                s_ids, s_d = idx.snap_edges(x[sel], y[sel], tolerance_m=tolerance_m, heading=heading)
            else:
                s_ids, s_d = idx.snap_buildings(x[sel], y[sel], tolerance_m=tolerance_m)
            ids[sel], dist[sel] = s_ids, s_d
            far = np.zeros(n, dtype=bool)
            far[sel[s_ids < 0]] = True
            chk.record(far, "unmatched location", "x" if "x" in df else "lon",
                       f"no {target} within {tolerance_m:g} m of the point")
    return ids, dist


# --------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------


def read_counts(
    source: str | Path | pd.DataFrame,
    city: City,
    *,
    start: pd.Timestamp | str | None = None,
    duration_s: float | None = None,
    snap_tolerance_m: float = 30.0,
    on_bad: OnBad = "raise",
) -> Observations:
    """Traffic counts: ``edge_id`` (or ``x``/``y`` or ``lon``/``lat`` [+ ``heading_deg``]),
    ``start``, ``end`` (time bin), ``count`` (vehicles in the bin); optional ``count_id``.

    Table: ``count_id``, ``edge_id``, ``start_s``, ``end_s``, ``count``, ``flow_vph``
    (count scaled to vehicles per hour), ``snap_m``, ``row``.
    """
    df, name = read_table(source)
    chk = _Checker(df, name, "counts", on_bad)
    t0 = pd.Timestamp(start) if start is not None else None
    if chk.require(("start", "end", "count")) is None:
        return chk.finish(pd.DataFrame(), len(df))
    idx = _index(city)
    s = chk.times("start", t0)
    e = chk.times("end", t0)
    c = chk.numeric("count")
    chk.record(np.isfinite(c) & (c < 0), "negative count", "count", "{value} vehicles (must be ≥ 0)")
    chk.record(np.isfinite(s) & np.isfinite(e) & (e <= s), "empty bin", "end",
               "bin end {value} is not after its start")
    chk.period(s, "start", duration_s)
    chk.period(e, "end", duration_s, end=True)
    edge, snap = _locate(chk, idx, target="edge", id_col="edge_id", tolerance_m=snap_tolerance_m)
    width = np.where(e > s, e - s, np.nan)
    table = pd.DataFrame(
        {
            "count_id": df["count_id"].astype(str) if "count_id" in df else pd.Series(np.arange(len(df)) + 1).astype(str),
            "edge_id": edge,
            "start_s": s,
            "end_s": e,
            "count": c,
            "flow_vph": c * 3600.0 / width,
            "snap_m": snap,
            "row": np.arange(len(df)) + 1,
        }
    )
    return chk.finish(table, len(df))


def read_meters(
    source: str | Path | pd.DataFrame,
    city: City,
    *,
    start: pd.Timestamp | str | None = None,
    duration_s: float | None = None,
    interval_s: float = 3600.0,
    snap_tolerance_m: float = 25.0,
    on_bad: OnBad = "raise",
) -> Observations:
    """Meter readings per building or transformer over an interval.

    Target: ``building_id`` (or ``x``/``y``, ``lon``/``lat`` snapped to a building) or
    ``transformer`` (power node id). Time: ``time`` (interval start) with ``interval_s``
    (column or keyword), or ``start``/``end``. Value: ``value`` + ``unit`` column (``kWh`` energy
    in the interval or ``kW`` mean power), or one column named ``kwh`` or ``kw``. Mixed units in
    one file are an error. Table: ``meter``, ``target`` (``building``/``transformer``),
    ``building_id`` (-1 for transformers), ``transformer``, ``start_s``, ``end_s``, ``kw``
    (mean power), ``kwh``, ``snap_m``, ``row``; ``extra["unit"]`` is the file's unit.
    """
    df, name = read_table(source)
    chk = _Checker(df, name, "meters", on_bad)
    t0 = pd.Timestamp(start) if start is not None else None
    n = len(df)
    lower = {c.lower(): c for c in df.columns}
    # ---- unit ------------------------------------------------------------------------------
    unit = None
    value = np.full(n, np.nan)
    value_col = "value"
    if "value" in df.columns:
        if "unit" not in df.columns:
            chk.file("column 'value' needs a 'unit' column (kWh or kW)")
        else:
            u = df["unit"].astype(str).str.strip().str.lower()
            bad_u = ~u.isin(list(_UNITS))
            for i in np.flatnonzero(bad_u.to_numpy())[:20]:
                chk.file(f"row {i + 1}, column 'unit': expected kWh or kW, got {df['unit'].iloc[i]!r}")
            found = sorted(set(u[~bad_u]))
            if len(found) > 1:
                first = {f: int(np.flatnonzero((u == f).to_numpy())[0]) + 1 for f in found}
                chk.file(
                    "mixed units in column 'unit': "
                    + ", ".join(f"{_UNITS[f]} (first at row {r})" for f, r in first.items())
                    + "; give one unit per file"
                )
            elif found:
                unit = _UNITS[found[0]]
        value = chk.numeric("value")
    else:
        present = [lower[k] for k in ("kwh", "kw") if k in lower]
        if len(present) == 2:
            chk.file(f"mixed units: both {present[0]!r} and {present[1]!r} columns; give one")
        elif len(present) == 1:
            value_col = present[0]
            unit = _UNITS[value_col.lower()]
            value = chk.numeric(value_col)
        else:
            chk.file("missing value: expected 'value' + 'unit', or a 'kwh' or 'kw' column")
    # ---- time ------------------------------------------------------------------------------
    cols = chk.require(("start", "end"), ("time",))
    s = e = np.full(n, np.nan)
    if cols == ("start", "end"):
        s, e = chk.times("start", t0), chk.times("end", t0)
    elif cols == ("time",):
        s = chk.times("time", t0)
        width = chk.numeric("interval_s") if "interval_s" in df else np.full(n, float(interval_s))
        e = s + width
    chk.record(np.isfinite(s) & np.isfinite(e) & (e <= s), "empty interval", cols[0] if cols else "time",
               "interval at {value} has no positive length")
    chk.period(s, cols[0] if cols else "time", duration_s)
    chk.period(e, "end" if cols == ("start", "end") else cols[0] if cols else "time", duration_s, end=True)
    chk.record(np.isfinite(value) & (value < 0), "negative reading", value_col, "{value} (must be ≥ 0)")
    # ---- target ----------------------------------------------------------------------------
    idx = _index(city)
    transformer = np.array([""] * n, dtype=object)
    is_tr = np.zeros(n, dtype=bool)
    if "transformer" in df:
        tr = df["transformer"]
        is_tr = tr.notna().to_numpy() & (tr.astype(str).str.strip() != "").to_numpy()
        transformer[is_tr] = tr[is_tr].astype(str).str.strip().to_numpy()
        unknown = is_tr & ~np.isin(transformer.astype(str), sorted(idx.transformers))
        chk.record(unknown, "unknown id", "transformer", "{value} is not a transformer of the twin")
    bld = np.full(n, -1, dtype=np.int64)
    snap = np.full(n, np.nan)
    if (~is_tr).any():
        sub_idx = np.flatnonzero(~is_tr)
        sub = _Checker(df.iloc[sub_idx].reset_index(drop=True), name, "meters", on_bad)
        b_ids, b_d = _locate(sub, idx, target="building", id_col="building_id",
                             tolerance_m=snap_tolerance_m)
        bld[sub_idx], snap[sub_idx] = b_ids, b_d
        chk.fatal += [m.replace("row ", "row ", 1) for m in _renumber(sub.fatal, sub_idx)]
        for j in np.flatnonzero(sub.bad):
            i = sub_idx[j]
            if not chk.bad[i]:
                chk.bad[i] = True
                chk.reason[i] = _renumber([sub.reason[j]], sub_idx)[0]
                chk.record_msgs.append(chk.reason[i])
    snap[is_tr] = 0.0
    hours = (e - s) / 3600.0
    kw = value / hours if unit == "kWh" else value
    kwh = value if unit == "kWh" else value * hours
    meter = (
        df["meter_id"].astype(str).to_numpy()
        if "meter_id" in df
        else np.where(is_tr, transformer.astype(str), np.char.add("b", bld.astype(str)))
    )
    table = pd.DataFrame(
        {
            "meter": meter,
            "target": np.where(is_tr, "transformer", "building"),
            "building_id": bld,
            "transformer": transformer.astype(str),
            "start_s": s,
            "end_s": e,
            "kw": kw,
            "kwh": kwh,
            "snap_m": snap,
            "row": np.arange(n) + 1,
        }
    )
    return chk.finish(table, n, extra={"unit": unit})


def _row_of(msg: str) -> int:
    import re

    m = re.search(r"row (\d+)", msg)
    return int(m.group(1)) if m else 0


def _renumber(msgs: list[str], positions: np.ndarray) -> list[str]:
    """Map 'row k' of a sub-table back to the row number of the whole file."""
    import re

    def fix(m: str) -> str:
        return re.sub(r"row (\d+)", lambda g: f"row {int(positions[int(g.group(1)) - 1]) + 1}", m, count=1)

    return [fix(m) for m in msgs]


def read_incidents(
    source: str | Path | pd.DataFrame,
    city: City,
    *,
    start: pd.Timestamp | str | None = None,
    duration_s: float | None = None,
    types: set[str] | frozenset[str] | None = None,
    snap_tolerance_m: float = 100.0,
    on_bad: OnBad = "raise",
) -> Observations:
    """Incident log: ``time``, ``type``, ``response_s`` (call to first unit on scene; empty if no
    unit came), location ``building_id`` or ``x``/``y`` or ``lon``/``lat`` (snapped to the
    nearest building); optional ``incident_id``. ``types`` restricts the allowed types.

    Table: ``incident_id``, ``time_s``, ``type``, ``building_id``, ``response_s``, ``snap_m``, ``row``.
    """
    df, name = read_table(source)
    chk = _Checker(df, name, "incidents", on_bad)
    t0 = pd.Timestamp(start) if start is not None else None
    if chk.require(("time", "type", "response_s")) is None:
        return chk.finish(pd.DataFrame(), len(df))
    n = len(df)
    t = chk.times("time", t0)
    resp = chk.numeric("response_s", allow_missing=True)
    chk.record(np.isfinite(resp) & (resp < 0), "negative response", "response_s", "{value} s (must be ≥ 0)")
    typ = df["type"].astype(str).str.strip()
    if types is not None:
        chk.record(~typ.isin(sorted(types)).to_numpy(), "unknown type", "type",
                   "{value!r} is not one of " + ", ".join(sorted(types)))
    chk.period(t, "time", duration_s)
    bld, snap = _locate(chk, _index(city), target="building", id_col="building_id",
                        tolerance_m=snap_tolerance_m)
    table = pd.DataFrame(
        {
            "incident_id": df["incident_id"].astype(str) if "incident_id" in df else pd.Series(np.arange(n) + 1).astype(str),
            "time_s": t,
            "type": typ,
            "building_id": bld,
            "response_s": resp,
            "snap_m": snap,
            "row": np.arange(n) + 1,
        }
    )
    return chk.finish(table, n)


def read_closures(
    source: str | Path | pd.DataFrame,
    city: City,
    *,
    start: pd.Timestamp | str | None = None,
    duration_s: float | None = None,
    snap_tolerance_m: float = 30.0,
    on_bad: OnBad = "raise",
) -> Observations:
    """Observed road closures: ``edge_id`` (or a point), ``start``, optional ``end`` (empty =
    until the end of the period). Table: ``edge_id``, ``start_s``, ``end_s``, ``snap_m``, ``row``.
    """
    df, name = read_table(source)
    chk = _Checker(df, name, "closures", on_bad)
    t0 = pd.Timestamp(start) if start is not None else None
    if chk.require(("start",)) is None:
        return chk.finish(pd.DataFrame(), len(df))
    n = len(df)
    s = chk.times("start", t0)
    if "end" in df and df["end"].notna().any():
        e_raw = df["end"]
        e = np.full(n, np.inf)
        has = e_raw.notna().to_numpy()
        sub = _Checker(df.loc[has].reset_index(drop=True), name, "closures", on_bad)
        e[has] = sub.times("end", t0)
        chk.fatal += _renumber(sub.fatal, np.flatnonzero(has))
    else:
        e = np.full(n, np.inf)
    chk.record(np.isfinite(s) & (e <= s), "empty closure", "end", "closure ends at {value}, not after its start")
    chk.period(s, "start", duration_s)
    edge, snap = _locate(chk, _index(city), target="edge", id_col="edge_id",
                         tolerance_m=snap_tolerance_m)
    table = pd.DataFrame(
        {"edge_id": edge, "start_s": s, "end_s": e, "snap_m": snap, "row": np.arange(n) + 1}
    )
    return chk.finish(table, n)
