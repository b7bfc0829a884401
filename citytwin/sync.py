"""Live replay: feed observations to the twin in time order, keep its state and forecast in step.

``replay(feed, twin)`` walks an observation feed (counts, meter readings, closures, incidents;
see :func:`make_feed`) in steps of ``step_s`` and yields one :class:`SyncState` per step:

* **state updates** — an observed closure closes the road in the twin (its link cost becomes
  infinite, trips are re-assigned around it; a ``reopen`` record or the closure's end opens it
  again); observed loads update a per-meter load scale (exponential smoothing of observed /
  simulated); observed counts update a per-edge demand ratio the same way;
* **simulated** — what the twin says for the same records under its current state: counts from an
  all-or-nothing fastest-path assignment of the twin's trips under the current closures
  (:func:`citytwin.calibrate.count_incidence`), meter loads from the modelled building loads
  summed per meter, incident travel time from the nearest station under the current closures;
* **forecast** — for the next ``horizon_s``: the simulated value of every counted edge and every
  seen meter times its smoothed observed / simulated ratio (a persistence-of-ratio forecast on
  top of the model's own time profile).

The generator is lazy, so an app can draw each state as it arrives::

    for state in replay(feed, twin):
        chart.add(state.time, state.observed, state.simulated)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from citytwin.calibrate import count_incidence, energy_fit, traffic_fit
from citytwin.errors import InputError
from citytwin.observations import Observations

__all__ = ["SyncState", "SyncTwin", "make_feed", "replay", "FEED_COLUMNS"]

log = logging.getLogger(__name__)

FEED_COLUMNS = ("time_s", "kind", "key", "start_s", "end_s", "value")
_KINDS = ("closure", "reopen", "count", "load", "incident")


def make_feed(
    *,
    counts: Observations | pd.DataFrame | None = None,
    meters: Observations | pd.DataFrame | None = None,
    closures: Observations | pd.DataFrame | None = None,
    incidents: Observations | pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One time-ordered feed from validated observation tables.

    Columns: ``time_s`` (when the record becomes known: the end of a count bin or meter interval,
    the start of a closure, the time of an incident), ``kind`` (``count``/``load``/``closure``/
    ``reopen``/``incident``), ``key`` (edge id, meter id, or building id as text), ``start_s``,
    ``end_s``, ``value`` (vehicles/h, kW, response s; NaN for closures).
    """
    parts = []

    def tab(x: Observations | pd.DataFrame | None) -> pd.DataFrame | None:
        return x.table if isinstance(x, Observations) else x

    if (c := tab(counts)) is not None and len(c):
        parts.append(pd.DataFrame({"time_s": c["end_s"], "kind": "count", "key": c["edge_id"].astype(str),
                                   "start_s": c["start_s"], "end_s": c["end_s"], "value": c["flow_vph"]}))
    if (m := tab(meters)) is not None and len(m):
        parts.append(pd.DataFrame({"time_s": m["end_s"], "kind": "load", "key": m["meter"].astype(str),
                                   "start_s": m["start_s"], "end_s": m["end_s"], "value": m["kw"]}))
    if (cl := tab(closures)) is not None and len(cl):
        parts.append(pd.DataFrame({"time_s": cl["start_s"], "kind": "closure",
                                   "key": cl["edge_id"].astype(str), "start_s": cl["start_s"],
                                   "end_s": cl["end_s"], "value": np.nan}))
        ends = cl[np.isfinite(cl["end_s"])]
        parts.append(pd.DataFrame({"time_s": ends["end_s"], "kind": "reopen",
                                   "key": ends["edge_id"].astype(str), "start_s": ends["end_s"],
                                   "end_s": ends["end_s"], "value": np.nan}))
    if (i := tab(incidents)) is not None and len(i):
        parts.append(pd.DataFrame({"time_s": i["time_s"], "kind": "incident",
                                   "key": i["building_id"].astype(str), "start_s": i["time_s"],
                                   "end_s": i["time_s"], "value": i["response_s"]}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float if c != "kind" and c != "key" else object)
                             for c in FEED_COLUMNS})
    feed = pd.concat(parts, ignore_index=True)
    feed["kind_order"] = feed["kind"].map({k: i for i, k in enumerate(_KINDS)})
    feed = feed.sort_values(["time_s", "kind_order", "key", "start_s"], kind="stable")
    return feed.drop(columns="kind_order").reset_index(drop=True)


@dataclass(frozen=True)
class SyncState:
    """The twin after one replay step."""

    time: float  # end of the step, s since the period start
    observed: pd.DataFrame  # the feed records of this step
    simulated: pd.DataFrame  # observed + column ``simulated`` (the twin's value for each record)
    forecast: pd.DataFrame  # kind, key, start_s, end_s, value for the next horizon
    closed_edges: frozenset[int] = frozenset()
    ratios: dict[str, float] = field(default_factory=dict)  # smoothed observed/simulated per key
    fit: dict[str, Any] = field(default_factory=dict)  # running fit metrics over the replay so far


class SyncTwin:
    """The twin's side of a replay: the city plus its modelled trips and building loads.

    ``trips``: modelled car trips (``origin_node``, ``dest_node``, ``depart_s``; e.g. the traffic
    engine's ``trips`` table), scaled by ``trip_scale`` (1 / sample share).
    ``loads_kw``: (buildings x steps) modelled electric load, kW, steps of ``load_step_s`` from
    t = 0, rows in ``city.buildings`` order (e.g. ``BuildingLoads.electric_kw()``).
    """

    def __init__(
        self,
        city: Any,
        *,
        trips: pd.DataFrame | None = None,
        trip_scale: float = 1.0,
        loads_kw: np.ndarray | None = None,
        load_step_s: float = 3600.0,
        bin_s: float = 900.0,
    ) -> None:
        self.city = city
        self.trips = trips
        self.trip_scale = float(trip_scale)
        self.bin_s = float(bin_s)
        self.arrays = city.road_arrays if hasattr(city, "road_arrays") else _arrays(city)
        self.loads_kw = None if loads_kw is None else np.asarray(loads_kw, dtype=float)
        self.load_step_s = float(load_step_s)
        n_b = len(city.buildings)
        if self.loads_kw is not None and self.loads_kw.shape[0] != n_b:
            raise InputError(f"loads_kw has {self.loads_kw.shape[0]} rows, the city {n_b} buildings")
        self._bpos = {int(b): i for i, b in enumerate(city.buildings.index)}
        tr = city.buildings["transformer"].astype(str).to_numpy() if "transformer" in city.buildings else None
        self._transformer_rows = (
            {t: np.flatnonzero(tr == t) for t in np.unique(tr)} if tr is not None else {}
        )
        self._flows: dict[frozenset[int], pd.Series] = {}
        self._edges: np.ndarray = np.zeros(0, dtype=np.int64)

    # ---------------------------------------------------------------------------- traffic
    def watch_edges(self, edges: np.ndarray) -> None:
        """Edges whose flows the twin tracks (the counted ones); resets cached flows."""
        self._edges = np.unique(np.asarray(edges, dtype=np.int64))
        self._flows.clear()

    def link_cost(self, closed: frozenset[int]) -> np.ndarray:
        cost = self.arrays.freeflow_s.astype(float).copy()
        if closed:
            cost[np.fromiter(closed, dtype=np.int64)] = np.inf
        return cost

    def _edge_flows(self, closed: frozenset[int]) -> pd.Series:
        """Vehicles entering each watched edge per bin (index edge_id, bin) under ``closed``."""
        if closed in self._flows:
            return self._flows[closed]
        if self.trips is None or self._edges.size == 0:
            flows = pd.Series(dtype=float)
        else:
            end = float(self.trips["depart_s"].max()) + 4 * 3600.0
            bins = np.arange(0.0, end, self.bin_s)
            grid = pd.DataFrame({"edge_id": np.repeat(self._edges, bins.size),
                                 "start_s": np.tile(bins, self._edges.size)})
            grid["end_s"] = grid["start_s"] + self.bin_s
            A, cells = count_incidence(self.city, self.trips, grid, cost=self.link_cost(closed),
                                       cell_s=self.bin_s)
            vol = np.asarray(A @ cells["trips"].to_numpy(float)).ravel() * self.trip_scale
            flows = pd.Series(vol, index=pd.MultiIndex.from_arrays(
                [grid["edge_id"], (grid["start_s"] // self.bin_s).astype(np.int64)],
                names=["edge_id", "bin"]))
        self._flows[closed] = flows
        return flows

    def flow_vph(self, edge_id: int, start_s: float, end_s: float, closed: frozenset[int]) -> float:
        """Modelled flow (veh/h) on an edge over [start, end) under the closures."""
        flows = self._edge_flows(closed)
        if edge_id in closed:
            return 0.0
        if flows.empty or edge_id not in flows.index.get_level_values(0):
            return float("nan")
        series = flows.loc[edge_id]
        b0, b1 = int(start_s // self.bin_s), int(np.ceil(end_s / self.bin_s))
        total = 0.0
        for b in range(b0, b1):
            lo, hi = max(start_s, b * self.bin_s), min(end_s, (b + 1) * self.bin_s)
            if hi > lo:
                total += float(series.get(b, 0.0)) * (hi - lo) / self.bin_s
        return total * 3600.0 / (end_s - start_s)

    # ---------------------------------------------------------------------------- energy
    def _meter_rows(self, meter: str) -> np.ndarray | None:
        if meter in self._transformer_rows:
            return self._transformer_rows[meter]
        if meter.startswith("b") and meter[1:].isdigit() and int(meter[1:]) in self._bpos:
            return np.array([self._bpos[int(meter[1:])]])
        return None

    def load_kw(self, meter: str, start_s: float, end_s: float) -> float:
        """Modelled mean load (kW) of a meter (``b<building_id>`` or transformer id)."""
        rows = self._meter_rows(meter)
        if self.loads_kw is None or rows is None:
            return float("nan")
        per_step = self.loads_kw[rows].sum(axis=0)
        n = per_step.size
        s0, s1 = int(start_s // self.load_step_s), int(np.ceil(end_s / self.load_step_s))
        total = 0.0
        for s in range(s0, s1):
            lo, hi = max(start_s, s * self.load_step_s), min(end_s, (s + 1) * self.load_step_s)
            if hi > lo:
                total += float(per_step[min(s, n - 1)]) * (hi - lo)
        return total / (end_s - start_s)

    # ---------------------------------------------------------------------------- emergency
    def travel_s(self, building_id: int, closed: frozenset[int]) -> float:
        """Fastest travel time (s) from any station to the building's road node (lower bound of
        the response time: no call handling, no turnout)."""
        fac = getattr(self.city, "facilities", None)
        b = self.city.buildings
        if fac is None or len(fac) == 0 or "road_node" not in fac or building_id not in b.index:
            return float("nan")
        from citytwin.network.routing import travel_times

        pos = self.arrays._pos
        src = [pos[n] for n in fac["road_node"].tolist() if n in pos]
        target = pos.get(b.loc[building_id, "road_node"])
        if not src or target is None:
            return float("nan")
        t = travel_times(self.arrays, [target], cost=self.link_cost(closed), reverse=True)[0]
        return float(np.min(t[src]))


def _arrays(city: Any) -> Any:
    from citytwin.network.routing import road_arrays

    return road_arrays(city.roads)


def replay(
    feed: pd.DataFrame,
    twin: SyncTwin,
    *,
    step_s: float = 900.0,
    horizon_s: float = 3600.0,
    smoothing: float = 0.5,
) -> Iterator[SyncState]:
    """Replay ``feed`` (see :func:`make_feed`) through ``twin``; one :class:`SyncState` per step.

    ``smoothing`` is the weight of the newest observed / simulated ratio in the running ratio of
    each edge or meter (1 = last observation only).
    """
    missing = [c for c in FEED_COLUMNS if c not in feed.columns]
    if missing:
        raise InputError(f"feed: missing columns {missing}; build it with make_feed()")
    if not 0 < smoothing <= 1:
        raise InputError(f"smoothing must be in (0, 1], got {smoothing}")
    feed = feed.sort_values("time_s", kind="stable").reset_index(drop=True)
    twin.watch_edges(feed.loc[feed["kind"].isin(["count", "closure"]), "key"].astype(int).to_numpy())
    closed: set[int] = set()
    ratio: dict[str, float] = {}
    seen_meters: dict[str, None] = {}
    history: list[pd.DataFrame] = []
    if feed.empty:
        return
    t_end = float(feed["time_s"].max())
    t = float(np.ceil(feed["time_s"].min() / step_s) * step_s) - step_s  # windows (t, t + step]
    times = feed["time_s"].to_numpy(dtype=float)
    while t < t_end:
        t_next = t + step_s
        now = feed[(times > t) & (times <= t_next)]
        for _, r in now[now["kind"].isin(["closure", "reopen"])].iterrows():
            (closed.add if r["kind"] == "closure" else closed.discard)(int(r["key"]))
        state_closed = frozenset(closed)
        sim = np.full(len(now), np.nan)
        for j, (_, r) in enumerate(now.iterrows()):
            if r["kind"] == "count":
                sim[j] = twin.flow_vph(int(r["key"]), r["start_s"], r["end_s"], state_closed)
            elif r["kind"] == "load":
                sim[j] = twin.load_kw(str(r["key"]), r["start_s"], r["end_s"])
                seen_meters[str(r["key"])] = None
            elif r["kind"] == "incident":
                sim[j] = twin.travel_s(int(r["key"]), state_closed)
            if r["kind"] in ("count", "load") and np.isfinite(sim[j]) and sim[j] > 0:
                key = f"{r['kind']}:{r['key']}"
                new = float(r["value"]) / sim[j]
                ratio[key] = new if key not in ratio else smoothing * new + (1 - smoothing) * ratio[key]
        simulated = now.assign(simulated=sim)
        history.append(simulated)
        yield SyncState(
            time=t_next,
            observed=now.reset_index(drop=True),
            simulated=simulated.reset_index(drop=True),
            forecast=_forecast(twin, t_next, horizon_s, step_s, state_closed, ratio, seen_meters),
            closed_edges=state_closed,
            ratios=dict(ratio),
            fit=_running_fit(pd.concat(history, ignore_index=True)),
        )
        t = t_next


def _forecast(twin: SyncTwin, t0: float, horizon_s: float, step_s: float, closed: frozenset[int],
              ratio: dict[str, float], meters: dict[str, None]) -> pd.DataFrame:
    rows = []
    starts = np.arange(t0, t0 + horizon_s, step_s)
    for e in twin._edges.tolist():
        k = ratio.get(f"count:{e}", 1.0)
        for s in starts:
            v = twin.flow_vph(int(e), s, s + step_s, closed)
            if np.isfinite(v):
                rows.append(("count", str(e), s, s + step_s, v * k, v))
    for m in meters:
        k = ratio.get(f"load:{m}", 1.0)
        for s in starts:
            v = twin.load_kw(m, s, s + step_s)
            if np.isfinite(v):
                rows.append(("load", m, s, s + step_s, v * k, v))
    return pd.DataFrame(rows, columns=["kind", "key", "start_s", "end_s", "value", "simulated"])


def _running_fit(h: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {}
    c = h[(h["kind"] == "count") & np.isfinite(h["simulated"])]
    if len(c):
        out["traffic"] = traffic_fit(c["simulated"], c["value"])
    ld = h[(h["kind"] == "load") & np.isfinite(h["simulated"])]
    if len(ld) > 1 and ld["value"].mean() > 0:
        out["energy"] = energy_fit(ld["value"], ld["simulated"])
    return out
