"""Live replay: feed observations to the twin in time order, keep its state and forecast in step.

``replay(feed, twin)`` walks an observation feed (counts, meter readings, closures, incidents;
see :func:`make_feed`) in steps of ``step_s`` and yields one :class:`SyncState` per step:

* **state updates** — an observed closure closes the road in the twin (its link cost becomes
  infinite, trips are re-assigned around it; a ``reopen`` record or the closure's end opens it
  again); observed loads update a per-meter load scale (exponential smoothing of observed /
  simulated); observed counts update a per-edge demand ratio the same way;
* **simulated** — what the twin says for the same records under its current state: counts from an
  all-or-nothing fastest-path assignment of the twin's trips under the current closures
  (:func:`citytwin.twin.calibrate.count_incidence`), meter loads from the modelled building loads
  summed per meter, incident travel time from the nearest station under the current closures;
* **forecast** — for the next ``horizon_s``: the simulated value of every counted edge and every
  seen meter times its smoothed observed / simulated ratio (a persistence-of-ratio forecast on
  top of the model's own time profile).

The generator is lazy, so an app can draw each state as it arrives::

    for state in replay(feed, twin):
        chart.add(state.time, state.observed, state.simulated)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import tomli_w

from citytwin import interventions
from citytwin.city import City
from citytwin.emergency.engine import run_emergency
from citytwin.emergency.incidents import YEAR_S, building_rates
from citytwin.emergency.params import COMMUTE_PROFILE, EMS_PROFILE
from citytwin.energy.engine import EnergyParams, compute_building_loads
from citytwin.errors import InputError
from citytwin.interventions import Setup
from citytwin.model import load_city
from citytwin.network.routing import road_arrays, travel_times
from citytwin.scenario import Scenario, load_scenario
from citytwin.traffic.demand import generate_demand
from citytwin.traffic.engine import run_traffic
from citytwin.twin import calibrate as cal
from citytwin.twin import observations as ob
from citytwin.twin.calibrate import count_incidence, energy_fit, traffic_fit
from citytwin.twin.observations import Observations, OnBad

if TYPE_CHECKING:
    from citytwin.city import City

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
        city: City,
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
        self._flows: dict[frozenset[int], np.ndarray] = {}
        self._edges: np.ndarray = np.zeros(0, dtype=np.int64)
        self._edge_row: dict[int, int] = {}

    # ---------------------------------------------------------------------------- traffic
    def watch_edges(self, edges: np.ndarray) -> None:
        """Edges whose flows the twin tracks (the counted ones); resets cached flows."""
        self._edges = np.unique(np.asarray(edges, dtype=np.int64))
        self._edge_row = {int(e): i for i, e in enumerate(self._edges)}
        self._flows.clear()

    def link_cost(self, closed: frozenset[int]) -> np.ndarray:
        cost = self.arrays.freeflow_s.astype(float).copy()
        if closed:
            cost[np.fromiter(closed, dtype=np.int64)] = np.inf
        return cost

    def _edge_flows(self, closed: frozenset[int]) -> np.ndarray:
        """Vehicles entering each watched edge per bin, (watched edges x bins), under ``closed``."""
        if closed in self._flows:
            return self._flows[closed]
        if self.trips is None or self._edges.size == 0:
            flows = np.zeros((self._edges.size, 0))
        else:
            end = float(self.trips["depart_s"].max()) + 4 * 3600.0
            bins = np.arange(0.0, end, self.bin_s)
            grid = pd.DataFrame({"edge_id": np.repeat(self._edges, bins.size),
                                 "start_s": np.tile(bins, self._edges.size)})
            grid["end_s"] = grid["start_s"] + self.bin_s
            A, cells = count_incidence(self.city, self.trips, grid, cost=self.link_cost(closed),
                                       cell_s=self.bin_s)
            vol = np.asarray(A @ cells["trips"].to_numpy(float)).ravel() * self.trip_scale
            flows = vol.reshape(self._edges.size, bins.size)
        self._flows[closed] = flows
        return flows

    def flow_vph(self, edge_id: int, start_s: float, end_s: float, closed: frozenset[int]) -> float:
        """Modelled flow (veh/h) on an edge over [start, end) under the closures (NaN if the
        twin has no trips or does not watch the edge)."""
        if edge_id in closed:
            return 0.0
        flows = self._edge_flows(closed)
        row = self._edge_row.get(int(edge_id))
        if row is None or self.trips is None:
            return float("nan")
        series = flows[row]
        b0, b1 = int(start_s // self.bin_s), int(np.ceil(end_s / self.bin_s))
        total = 0.0
        for b in range(max(b0, 0), min(b1, series.size)):
            lo, hi = max(start_s, b * self.bin_s), min(end_s, (b + 1) * self.bin_s)
            if hi > lo:
                total += float(series[b]) * (hi - lo) / self.bin_s
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

    def building_load_scale(self, ratios: dict[str, float]) -> np.ndarray:
        """Per-building load scale (``city.buildings`` order) from a state's smoothed ratios:
        a transformer meter's ratio applies to every building it feeds, a building meter's to
        its building (it wins over its transformer); unmetered buildings keep 1. Multiply the
        modelled loads by it, e.g. before ``GridSolver.solve``, to put the observed loads into
        the power-flow state."""
        scale = np.ones(len(self.city.buildings))
        for key, r in sorted(ratios.items()):
            kind, _, meter = key.partition(":")
            if kind == "load" and meter in self._transformer_rows:
                scale[self._transformer_rows[meter]] = r
        for key, r in sorted(ratios.items()):
            kind, _, meter = key.partition(":")
            if kind == "load" and meter not in self._transformer_rows:
                rows = self._meter_rows(meter)
                if rows is not None:
                    scale[rows] = r
        return scale

    # ---------------------------------------------------------------------------- emergency
    def travel_s(self, building_id: int, closed: frozenset[int]) -> float:
        """Fastest travel time (s) from any station to the building's road node (lower bound of
        the response time: no call handling, no turnout)."""
        fac = getattr(self.city, "facilities", None)
        b = self.city.buildings
        if fac is None or len(fac) == 0 or "road_node" not in fac or building_id not in b.index:
            return float("nan")
        pos = self.arrays._pos
        src = [pos[n] for n in fac["road_node"].tolist() if n in pos]
        target = pos.get(b.loc[building_id, "road_node"])
        if not src or target is None:
            return float("nan")
        t = travel_times(self.arrays, [target], cost=self.link_cost(closed), reverse=True)[0]
        return float(np.min(t[src]))


def _arrays(city: City) -> Any:
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


# --------------------------------------------------------------------------------------------
# scenario level: observation folders, the scenario's twin, calibrate a scenario
# --------------------------------------------------------------------------------------------

OBSERVATION_FILES = ("counts", "meters", "incidents", "closures")


def load_observations(
    folder: str | Path, city: City, *, start: pd.Timestamp | None = None,
    duration_s: float | None = None, on_bad: OnBad = "reject",
) -> dict[str, Observations]:
    """Read ``counts``, ``meters``, ``incidents``, ``closures`` (``.csv`` or ``.parquet``) found in
    ``folder``; at least one must exist. Record problems become counted rejections by default."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"observations folder not found: {folder}")
    readers = {"counts": ob.read_counts, "meters": ob.read_meters,
               "incidents": ob.read_incidents, "closures": ob.read_closures}
    out: dict[str, Observations] = {}
    for kind in OBSERVATION_FILES:
        found = [folder / f"{kind}{ext}" for ext in (".csv", ".parquet")
                 if (folder / f"{kind}{ext}").exists()]
        if len(found) > 1:
            raise InputError(f"both {found[0].name} and {found[1].name}: keep one", source=str(folder))
        if found:
            out[kind] = readers[kind](found[0], city, start=start, duration_s=duration_s,
                                      on_bad=on_bad)
    if not out:
        raise InputError(f"no observation files: expected one of "
                         f"{', '.join(k + '.csv|.parquet' for k in OBSERVATION_FILES)}",
                         source=str(folder))
    return out


def scenario_setup(scenario: Scenario, city: City) -> Setup:
    """The scenario's interventions applied to ``city``: what the model builds its engines
    from (the twin never assembles a model of its own)."""
    return interventions.apply(scenario, city)


def scenario_trips(scenario: Scenario, city: City) -> pd.DataFrame:
    """The scenario's modelled car trips: the traffic engine's demand model with the
    scenario's traffic parameters after its interventions, on the city after them."""
    setup = scenario_setup(scenario, city)
    if setup.traffic is None:
        raise InputError("the scenario has no [traffic] section: no modelled trips to compare "
                         "with counts", source=scenario.name)
    return generate_demand(setup.city, setup.traffic, seed=int(scenario.seed))


def scenario_loads(scenario: Scenario, city: City, *, step_s: float = 3600.0) -> np.ndarray:
    """Modelled electric load (kW, buildings x steps of ``step_s``) over the scenario's period:
    the energy engine's own load builder (its weather file, temperature shifts, heat-pump
    share and per-use factors), averaged to ``step_s``."""
    setup = scenario_setup(scenario, city)
    params = setup.energy if setup.energy is not None else EnergyParams()
    loads = compute_building_loads(setup.city, params, seed=int(scenario.seed),
                                   start=pd.Timestamp(scenario.start),
                                   duration_s=scenario.duration_s)
    kw = np.asarray(loads.electric_kw(), dtype=float)
    per = step_s / (params.step_minutes * 60.0)
    k = int(round(per))
    if k < 1 or abs(per - k) > 1e-9:
        raise InputError(f"step_s={step_s:g} must be a whole multiple of the energy step "
                         f"({params.step_minutes} min)", source=scenario.name)
    n = int(np.ceil(kw.shape[1] / k))
    pad = n * k - kw.shape[1]
    if pad:
        kw = np.concatenate([kw, np.repeat(kw[:, -1:], pad, axis=1)], axis=1)
    return kw.reshape(kw.shape[0], n, k).mean(axis=2)


def expected_incidents(scenario: Scenario, city: City, *, duration_s: float | None = None
                       ) -> dict[str, float]:
    """Expected incident count per type over the period under the scenario's emergency rates
    (building rates x the hourly profile, as the emergency model generates them)."""
    setup = scenario_setup(scenario, city)
    params = setup.emergency
    if params is None:
        raise InputError("the scenario has no [emergency] section: no modelled incidents to "
                         "compare with the log", source=scenario.name)
    dur = float(scenario.duration_s if duration_s is None else duration_s)
    rates = building_rates(setup.city.buildings, params).sum(axis=0)
    hours = np.arange(int(np.ceil(dur / 3600.0)))
    span = np.minimum(3600.0, dur - hours * 3600.0)
    out = {}
    for kind, total in rates.items():
        prof = np.asarray(COMMUTE_PROFILE if kind == "traffic" else EMS_PROFILE)[hours % 24]
        out[str(kind)] = float(total * np.sum(prof * span) / YEAR_S)
    return out


@dataclass(frozen=True)
class CalibrationReport:
    """What ``citytwin calibrate`` found and wrote."""

    scenario: str
    observations: dict[str, dict[str, Any]]  # summary per table (read/accepted/rejected)
    traffic: dict[str, Any] | None
    energy: dict[str, Any] | None
    emergency: dict[str, Any] | None
    updates: dict[str, dict[str, Any]]  # scenario section -> key -> new value
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("scenario", "observations", "traffic", "energy",
                                              "emergency", "updates", "files")}


def _grid_zones(city: City, zone_m: float) -> dict[Any, tuple[int, int]]:
    G = city.roads
    return {n: (int(d["x"] // zone_m), int(d["y"] // zone_m)) for n, d in G.nodes(data=True)}


def calibrate_scenario(
    scenario: Any,
    observations: str | Path | dict[str, Observations],
    *,
    out: str | Path,
    city: City | None = None,
    od: bool = True,
    zone_m: float = 1000.0,
    response: bool = True,
    verify: bool = False,
    engine_iterations: int = 0,
) -> CalibrationReport:
    """Calibrate a scenario (object or TOML path) to an observation folder; write to ``out``:
    ``<name>_calibrated.toml`` (``extends`` the original, overriding the fitted parameters),
    ``report.json``, ``report.md`` and the per-record fit tables (``counts_fit.parquet``,
    ``meters_fit.parquet``, ``od_factors.parquet``, ``rejected_<kind>.parquet``).
    ``verify`` also runs the traffic engine (queues, congestion) on the modelled and on the
    calibrated trips and reports the GEH of its link volumes (``engine_before``/``engine_after``);
    ``engine_iterations`` > 0 then rescales the demand that many times so the engine's volumes
    match the counts in total (congestion and re-routing move traffic off the counted links).
    """
    spec = load_scenario(scenario) if isinstance(scenario, str | Path) else scenario
    city = city if city is not None else load_city(spec.city)
    start = pd.Timestamp(spec.start)
    obs = (observations if isinstance(observations, dict)
           else load_observations(observations, city, start=start, duration_s=spec.duration_s))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    updates: dict[str, dict[str, Any]] = {}
    traffic: dict[str, Any] | None = None
    energy: dict[str, Any] | None = None
    emergency: dict[str, Any] | None = None
    setup = scenario_setup(spec, city)
    city0 = city  # as loaded: the written scenario's rerun applies its interventions itself
    city = setup.city  # the city the scenario's engines run on (after its interventions)
    if "counts" in obs and len(obs["counts"].table):
        params = setup.traffic
        if params is None:
            raise InputError("the scenario has no [traffic] section: no modelled trips to "
                             "compare with counts", source=spec.name)
        trips = scenario_trips(spec, city0)
        t = cal.calibrate_traffic(city, trips, obs["counts"].table, od=od,
                                  zones=_grid_zones(city, zone_m), sample=params.sample)
        trep: dict[str, Any] = {"scale": t.scale, "scale_se": t.scale_se, "before": t.before, "after_scale": t.after_scale,
                   "after": t.after, "od": od, "zone_m": zone_m, "n_trips": len(trips),
                   "model": "fastest-path (free-flow) assignment of the scenario's trips"}
        scale = t.scale
        if verify or engine_iterations:
            trep.update(_verify_traffic(spec, city, params, trips, t, obs["counts"].table,
                                           iterations=engine_iterations))
            scale *= trep["engine_scale"]
            if engine_iterations:
                t.cells["factor"] *= trep["engine_scale"]
        updates["traffic"] = {"demand_scale": float(spec.traffic.demand_scale * scale)}  # type: ignore[union-attr]
        traffic = trep
        t.counts.to_parquet(out / "counts_fit.parquet")
        # od_factor: the cell's factor beyond the global scale (demand_scale carries that)
        t.cells.assign(origin=t.cells["origin"].astype(str), dest=t.cells["dest"].astype(str),
                       od_factor=t.cells["factor"] / scale if scale > 0 else 1.0
                       ).to_parquet(out / "od_factors.parquet")
        if od:  # the written scenario carries the OD factors, read by the demand model
            pair = _transferable_od(t.cells, scale)
            pair.to_parquet(out / "demand_od_factors.parquet")
            files["demand_od_factors"] = "demand_od_factors.parquet"
            updates["traffic"].update(
                od_factors=str((out / "demand_od_factors.parquet").resolve()),
                zone_m=float(zone_m))
        files.update(counts_fit="counts_fit.parquet", od_factors="od_factors.parquet")
    if "meters" in obs and len(obs["meters"].table):
        loads = scenario_loads(spec, city0)
        e = cal.calibrate_energy(city, obs["meters"].table, loads, step_s=3600.0)
        energy = {"multipliers_by_use": e.multipliers, "before": e.before, "after": e.after,
                  "model": "the energy engine's building loads (BDEW shapes, the scenario's "
                           "weather and temperature shifts, heat-pump share), hourly"}
        prior: dict[str, float] = (dict(setup.energy.use_load_factors)
                                   if setup.energy is not None else {})
        factors = {u: float(prior.get(u, 1.0) * k) for u, k in e.multipliers.items()}
        updates["energy"] = {"use_load_factors": factors}
        e.readings.to_parquet(out / "meters_fit.parquet")
        files["meters_fit"] = "meters_fit.parquet"
    if "incidents" in obs and len(obs["incidents"].table):
        log_ = obs["incidents"].table
        expected = expected_incidents(spec, city0)
        modelled = None
        if response:
            eng = run_emergency(city, setup.emergency, seed=int(spec.seed),
                                duration_s=spec.duration_s, start=start)
            modelled = eng.tables()["incidents"]["response_s"].to_numpy(float)
            if not np.isfinite(modelled).any():
                modelled = None
        i = cal.calibrate_incidents(log_, expected, modelled_response_s=modelled)
        updates["emergency"] = cal.incident_param_updates(setup.emergency,
                                                          i.multipliers)
        emergency = {"multipliers_by_type": i.multipliers,
                     "counts": i.counts.to_dict(orient="records"), "response": i.response}
    for kind, o in obs.items():
        if len(o.rejected):
            o.rejected.astype({c: str for c in o.rejected.columns if o.rejected[c].dtype == object}
                              ).to_parquet(out / f"rejected_{kind}.parquet")
            files[f"rejected_{kind}"] = f"rejected_{kind}.parquet"
    report = CalibrationReport(
        scenario=spec.name, observations={k: o.summary() for k, o in obs.items()},
        traffic=traffic, energy=energy, emergency=emergency, updates=updates, files=files)
    toml_path = out / f"{spec.name}_calibrated.toml"
    toml_path.write_text(_calibrated_toml(spec, report, toml_path), encoding="utf-8")
    written = load_scenario(toml_path)  # the file we wrote must load and validate
    if traffic is not None:
        # the report's fit is the written scenario's: its trips regenerated by the demand model
        # (demand_scale and OD factors as written) and assigned like the modelled ones
        traffic["rerun"] = _rerun_traffic_fit(written, city0, obs["counts"].table)
        log.info("calibrated scenario rerun: GEH<5 share %.3f (in-memory fit %.3f)",
                 traffic["rerun"]["share_geh_lt5"], traffic["after"]["share_geh_lt5"])
    files["scenario"] = toml_path.name
    files.update(report_json="report.json", report_md="report.md")
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2, default=_jsonable),
                                     encoding="utf-8")
    (out / "report.md").write_text(_markdown(report), encoding="utf-8")
    return report


#: trips of prior weight pulling a zone pair's OD factor towards 1 (regenerated demand draws
#: other trips than the fitted ones: a factor fitted on 2 trips does not transfer)
OD_SHRINK_TRIPS = 10.0


def _transferable_od(cells: pd.DataFrame, scale: float) -> pd.DataFrame:
    """Per zone pair (all departure bins): the trip-weighted OD factor beyond the global scale,
    shrunk towards 1 by :data:`OD_SHRINK_TRIPS`. Cell factors (zone pair x hour) fit the
    realised trips; the demand model regenerates trips, so only pair-level factors carry over
    (cell-level factors made the rerun worse than the scale alone)."""
    rel = cells["factor"].to_numpy(float) / scale if scale > 0 else np.ones(len(cells))
    df = pd.DataFrame({"origin": cells["origin"].astype(str), "dest": cells["dest"].astype(str),
                       "trips": cells["trips"].to_numpy(float)})
    df["w"] = df["trips"] * rel
    g = df.groupby(["origin", "dest"], as_index=False)[["trips", "w"]].sum()
    g["od_factor"] = (g["w"] + OD_SHRINK_TRIPS) / (g["trips"] + OD_SHRINK_TRIPS)
    return g[["origin", "dest", "trips", "od_factor"]]


def _rerun_traffic_fit(written: Any, city: City, counts: pd.DataFrame) -> dict[str, Any]:
    """Fit (GEH etc.) of the written scenario's own trips against the counts."""
    setup = scenario_setup(written, city)
    trips = scenario_trips(written, city)
    A, cells = cal.count_incidence(setup.city, trips, counts)
    width_h = (counts["end_s"].to_numpy(float) - counts["start_s"].to_numpy(float)) / 3600.0
    sample = setup.traffic.sample if setup.traffic is not None else 1.0
    m = np.asarray(A @ cells["trips"].to_numpy(float)).ravel() / sample
    fit = dict(cal.traffic_fit(m / width_h, counts["count"].to_numpy(float) / width_h))
    fit["n_trips"] = len(trips)
    return fit


def _verify_traffic(spec: Any, city: City, params: Any, trips: pd.DataFrame, t: Any,
                    counts: pd.DataFrame, *, iterations: int = 0) -> dict[str, Any]:
    """GEH of the traffic engine's link volumes before / after calibration; with
    ``iterations`` > 0 the demand factors are rescaled that many times by the Poisson maximum
    likelihood scale (total counted / total modelled) of the engine's volumes (engine in the
    loop)."""
    obs = counts["flow_vph"].to_numpy(float)

    def engine_fit(tr: pd.DataFrame) -> tuple[np.ndarray, dict[str, Any]]:
        eng = run_traffic(city, params, seed=int(spec.seed), trips=tr.reset_index(drop=True),
                          duration_s=spec.duration_s)
        mod = cal.counts_from_links(eng.tables()["links"], counts,
                                    interval_s=params.record_interval_s)
        return mod, cal.traffic_fit(mod, obs)

    out: dict[str, Any] = {"engine_before": engine_fit(trips)[1]}
    factors = t.trip_factors(trips)
    engine_scale = 1.0
    for it in range(iterations + 1):
        mod, fit = engine_fit(cal.reweight_trips(trips, factors, seed=int(spec.seed)))
        if it == iterations:
            break
        k = float(obs.sum() / mod.sum()) if mod.sum() > 0 else 1.0  # Poisson MLE of a scale
        factors, engine_scale = factors * k, engine_scale * k
    out["engine_after"] = fit
    out["engine_scale"] = engine_scale
    out["engine_iterations"] = iterations
    return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    return str(x)


def _calibrated_toml(spec: Scenario, report: CalibrationReport, target: Path) -> str:
    """The calibrated scenario: ``extends`` the original and overrides every fitted
    parameter (written with ``tomli_w``)."""
    src = spec.source
    if src is None:  # built in Python: nothing to extend
        raise InputError("calibrate_scenario needs a scenario loaded from a TOML file (extends)")
    doc: dict[str, Any] = {"name": spec.name + "_calibrated",
                           "extends": os.path.relpath(src, target.parent)}
    for section, values in report.updates.items():
        if values:
            doc[section] = {k: (v if isinstance(v, dict | str) else float(v))
                            for k, v in sorted(values.items())}
    head = ("# Calibrated by `citytwin calibrate` from observations; see report.md beside this "
            "file.\n")
    return head + tomli_w.dumps(doc)


def _fmt_fit(d: dict[str, Any] | None, keys: tuple[str, ...]) -> str:
    if not d:
        return "—"
    return ", ".join(f"{k} {d[k]:.3g}" if isinstance(d[k], float) else f"{k} {d[k]}" for k in keys
                     if k in d)


def _markdown(r: CalibrationReport) -> str:
    out = [f"# Calibration of `{r.scenario}`", "", "## Observations", "",
           "| table | read | accepted | rejected | by reason |", "|---|---|---|---|---|"]
    for k, s in r.observations.items():
        out.append(f"| {k} | {s['read']} | {s['accepted']} | {s['rejected']} | "
                   f"{s['rejected_by_reason'] or ''} |")
    if r.traffic:
        t = r.traffic
        keys = ("n", "share_geh_lt5", "meets_dmrb", "geh_mean", "total_ratio")
        out += ["", "## Traffic (GEH < 5 on > 85 % of hourly counts)", "",
                f"Model: {t['model']}; {t['n_trips']} trips. Demand scale x{t['scale']:.3f}"
                f" (± {t.get('scale_se', float('nan')):.3f} s.e., ratio of totals)"
                f"{'; OD adjusted on ' + format(t['zone_m'], 'g') + ' m zones' if t['od'] else ''}.",
                "", f"- before: {_fmt_fit(t['before'], keys)}",
                f"- after scale: {_fmt_fit(t['after_scale'], keys)}",
                f"- after (in memory): {_fmt_fit(t['after'], keys)}",
                f"- **written scenario rerun** (its own trips, the fit that counts): "
                f"{_fmt_fit(t.get('rerun'), keys)}"]
        if "engine_after" in t:
            out += ["", "Check with the traffic engine (queues and congestion):", "",
                    f"- engine before: {_fmt_fit(t['engine_before'], keys)}",
                    f"- engine after: {_fmt_fit(t['engine_after'], keys)}"]
    if r.energy:
        e = r.energy
        keys = ("n", "p", "cv_rmse_pct", "nmbe_pct", "meets_ashrae14")
        out += ["", "## Energy (ASHRAE Guideline 14 hourly: CV(RMSE) ≤ 30 %, |NMBE| ≤ 10 %)", "",
                f"Model: {e['model']}.", "",
                "Multipliers: " + ", ".join(f"{u} {k:.3f}" for u, k in
                                            sorted(e["multipliers_by_use"].items())), "",
                f"- before: {_fmt_fit(e['before'], keys)}", f"- after: {_fmt_fit(e['after'], keys)}"]
    if r.emergency:
        m = r.emergency
        out += ["", "## Emergency", "", "| type | observed | expected before | expected after |",
                "|---|---|---|---|"]
        out += [f"| {c['type']} | {c['observed']} | {c['expected_before']:.2f} | "
                f"{c['expected_after']:.2f} |" for c in m["counts"]]
        if m["response"]:
            out += ["", "Response times (log vs model): " + _fmt_fit(
                m["response"], ("n_observed", "n_modelled", "p50_observed_s", "p50_modelled_s",
                                "p90_observed_s", "p90_modelled_s", "ks_distance", "ks_pvalue"))]
    out += ["", "## Scenario updates", ""]
    out += [f"- `[{s}] {k} = {v!r}`" if isinstance(v, str) else
            f"- `[{s}] {k} = {v:.6g}`" if not isinstance(v, dict) else
            f"- `[{s}.{k}]` " + ", ".join(f"{u} = {x:.4g}" for u, x in sorted(v.items()))
            for s, vals in r.updates.items() for k, v in vals.items()]
    out += ["", "Files: " + ", ".join(f"`{v}`" for v in r.files.values()), ""]
    return "\n".join(out)


def scenario_twin(scenario: Any, city: City, *, traffic: bool = True, loads: bool = True,
                  bin_s: float = 900.0) -> SyncTwin:
    """A :class:`SyncTwin` of a scenario: its modelled trips (if it has traffic and ``traffic``)
    and its modelled building loads (if ``loads``)."""
    trips, scale = None, 1.0
    params = scenario_setup(scenario, city).traffic
    if traffic and params is not None:
        trips = scenario_trips(scenario, city)
        scale = 1.0 / params.sample
    load_kw = scenario_loads(scenario, city) if loads else None
    return SyncTwin(city, trips=trips, trip_scale=scale, loads_kw=load_kw, load_step_s=3600.0,
                    bin_s=bin_s)


def states_table(states: list[SyncState]) -> pd.DataFrame:
    """Replay states as one long table: ``state_time``, ``role`` (``observed``/``forecast``),
    ``kind``, ``key``, ``start_s``, ``end_s``, ``value``, ``simulated`` (what the app plots)."""
    parts = []
    for s in states:
        if len(s.simulated):
            parts.append(s.simulated[["kind", "key", "start_s", "end_s", "value", "simulated"]]
                         .assign(state_time=s.time, role="observed"))
        if len(s.forecast):
            parts.append(s.forecast.assign(state_time=s.time, role="forecast"))
    cols = ["state_time", "role", "kind", "key", "start_s", "end_s", "value", "simulated"]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True)[cols]
