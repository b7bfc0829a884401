"""The traffic engine: trips, routes and link queues in arrays; vehicles as Mesa agents.

``TrafficEngine(model, params)`` follows the domain-engine protocol of ``docs/contracts.md``:
``advance(until_s)``, ``tables()``, ``kpis()``, plus the coupling points ``link_travel_times()`` and
``ev_arrivals(since_s, until_s)``. The network loading itself is the compiled kernel in
:mod:`citytwin.traffic._kernel`; this module routes trips by goal-directed shortest-path searches
(:func:`citytwin.traffic.paths.route_trips`, refreshed every ``route_refresh_s`` on the current
link times, half of each refresh's trips on a near-equal alternative where one exists),
re-routes a share of the vehicles en route, records per-link time series and calls
the ``Vehicle`` agents at their decisions.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from scipy import sparse

from citytwin.engine import Host, StandaloneModel
from citytwin.errors import InputError
from citytwin.fleet import Fleet
from citytwin.network.routing import RoadArrays, road_arrays
from citytwin.rng import stream
from citytwin.traffic import _kernel as K
from citytwin.traffic.agents import Vehicle
from citytwin.traffic.params import TrafficParams
from citytwin.traffic.paths import out_csr, route_trips

if TYPE_CHECKING:
    from citytwin.city import City

__all__ = ["TrafficEngine", "run_traffic", "prepare_trips"]

log = logging.getLogger(__name__)

_TRIP_COLUMNS = ("origin_node", "dest_node", "depart_s")


def prepare_trips(trips: pd.DataFrame, arrays: RoadArrays, *, source: str = "trips") -> pd.DataFrame:
    """Validate a trips table and add node positions; collects every problem before raising.

    Required columns: ``origin_node``, ``dest_node`` (road graph node ids), ``depart_s``. Optional:
    ``vehicle_id`` (trips of one vehicle form a chain in departure order), ``purpose``,
    ``origin_building``, ``dest_building``.
    """
    problems: list[str] = []
    missing = [c for c in _TRIP_COLUMNS if c not in trips.columns]
    if missing:
        raise InputError([f"missing column {c!r} (expected {list(_TRIP_COLUMNS)})" for c in missing],
                         source=source)
    t = trips.reset_index(drop=True).copy()
    pos = arrays._pos
    o = t["origin_node"].map(pos)
    d = t["dest_node"].map(pos)
    for col, mapped in (("origin_node", o), ("dest_node", d)):
        bad = np.flatnonzero(mapped.isna().to_numpy())
        if bad.size:
            rows = ", ".join(f"row {i} ({t[col].iloc[i]!r})" for i in bad[:5])
            more = f" and {bad.size - 5} more" if bad.size > 5 else ""
            problems.append(f"column {col!r}: node not in the road graph at {rows}{more}")
    dep = pd.to_numeric(t["depart_s"], errors="coerce")
    bad = np.flatnonzero(~np.isfinite(dep.to_numpy(dtype=float)) | (dep.to_numpy(dtype=float) < 0))
    if bad.size:
        problems.append(f"column 'depart_s': expected a finite number >= 0 at rows {bad[:5].tolist()}"
                        + (f" and {bad.size - 5} more" if bad.size > 5 else ""))
    if problems:
        raise InputError(problems, source=source)
    t["depart_s"] = dep.astype(float)
    t["o_pos"] = o.astype(np.int64)
    t["d_pos"] = d.astype(np.int64)
    if "vehicle_id" not in t.columns:
        t["vehicle_id"] = np.arange(len(t), dtype=np.int64)
    for col, default in (("purpose", "other"), ("origin_building", -1), ("dest_building", -1)):
        if col not in t.columns:
            t[col] = default
    t = t.sort_values(["vehicle_id", "depart_s"], kind="stable").reset_index(drop=True)
    t["trip_id"] = np.arange(len(t), dtype=np.int64)
    return t


_UTIL_TAU_S = 1800.0  # time constant of the links' utilisation estimate


def sample_burst(rho: np.ndarray, sample: float | np.ndarray) -> np.ndarray:
    """Extra sampled vehicles a link may pass at once at utilisation ``rho`` and ``sample``:
    ``(1 - sqrt(sample)) (1 + 0.6 g / sqrt(sample))`` with ``x = rho / (1 - rho)`` and
    ``g = x ** 1.1`` below utilisation 0.5, ``x ** 1.25`` above; 0 at sample 1.

    The depth at which a sampled run has the full population's mean delay at a deterministic
    server fed by Poisson arrivals. At low utilisation a sampled car waits only if another comes
    within (1 - B) of a sampled service time, for (1 - B) of it at most: its mean wait
    rho (1 - B)^2 / (2 sample mu) equals the full population's rho / (2 mu) at
    B = 1 - sqrt(sample). The growth with rho / (1 - rho) is fitted in the engine, with the
    utilisation it estimates (a 30-minute average whose noise the law, convex in rho, turns into
    depth), on the single bottleneck of ``tests/traffic/test_sampling.py`` at samples 0.1 and
    0.2 against M/D/1 (8 seeds x 30 h per point, utilisation 0.1-0.85): sample 0.2 0.97-1.12x,
    sample 0.1 0.87-1.35x; the earlier ``x ** 0.9``, fitted on a constant depth per utilisation,
    gave 0.85-1.63x and 0.62-2.5x. ``benchmarks/scale.py`` prints how sampled and full runs
    compare on each test city."""
    r = np.clip(rho, 0.0, _RHO_MAX)
    root = np.sqrt(sample)
    x = r / (1.0 - r)
    g = np.where(x < 1.0, x ** 1.1, x ** 1.25)
    return (1.0 - root) * (1.0 + _BURST_K * g / root)


_RHO_MAX = 0.95
_BURST_K = 0.6
_QNA_PASSES = 8  # fixed-point passes per update (see _update_variability)
_QNA_EVERY_S = 900.0  # simulated time between updates of the arrival variability
_PHI_MIN = 0.1  # floor of a link's arrival variability as the burst reads it


class TrafficEngine:
    """Mesoscopic queue simulation of car trips on ``model.city.roads``."""

    domain: ClassVar[str] = "traffic"

    def __init__(self, model: Host, params: TrafficParams | None = None, *,
                 trips: pd.DataFrame | None = None,
                 routes: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.model = model
        self.params = params = params or TrafficParams()
        self.fleet: Fleet = getattr(model, "fleet", None) or Fleet()
        city = model.city
        self.arrays: RoadArrays = getattr(city, "road_arrays", None) or road_arrays(city.roads)
        seed = int(model.seed)
        self.seed = seed
        if trips is None:
            from citytwin.traffic.demand import generate_demand

            trips = generate_demand(city, params, seed=seed, arrays=self.arrays)
        self.trips = prepare_trips(trips, self.arrays)
        self._init_network()
        self._init_trips()
        if routes is not None:  # prescribed routes (offsets, edge ids) in trips-table order
            off, edges = (np.asarray(r, dtype=np.int64) for r in routes)
            if off.shape[0] != self.n_trips + 1:
                raise InputError(f"routes: expected {self.n_trips + 1} offsets, got {off.shape[0]}",
                                 source="routes")
            self._store_routes(np.arange(self.n_trips), off, edges)
            self.routed[:] = True
        self.t = 0.0
        self._next_refresh = 0.0
        self._next_record = params.record_interval_s
        self._records: list[pd.DataFrame] = []
        self._arrived_seen = np.zeros(self.n_trips, dtype=bool)
        self._departed_seen = np.zeros(self.n_trips, dtype=bool)
        self._rng_route = stream(seed, "routing")
        self._len_csum = np.zeros(1)  # running sum of link lengths over route_edges (ev_arrivals)
        self._create_agents()

    # ------------------------------------------------------------------ setup
    def _init_network(self) -> None:
        p, a = self.params, self.arrays
        m = a.n_edges
        dt = p.step_s
        # closed links (infinite travel time) are never routed; keep their arrays finite
        self.closed = ~np.isfinite(a.freeflow_s)
        self.ff = np.maximum(np.where(self.closed, 1e9, a.freeflow_s), dt)
        cap_s = np.where(self.closed, 0.0, a.capacity_vph) * p.capacity_factor * p.sample / 3600.0
        self.cap_step = cap_s * dt
        # sampling: how many sampled vehicles a link may pass at once after a lull (see _update_burst)
        self.rho_out = np.zeros(m)
        self.rho_in = np.zeros(m)
        self.burst = sample_burst(self.rho_out, p.sample)  # idle links' depth from the start
        self.burst_in = self.burst.copy()
        # variability of each link's arrivals (squared coefficient of variation, 1 = Poisson)
        # from the routed flows (see _update_variability), and the decayed counts it reads
        self._scv = np.ones(m)
        # the SCV is updated every _QNA_EVERY_S from t = 0 in sampled runs (a full population's
        # burst is 0 whatever its SCV: never)
        self._next_var = 0.0 if p.sample < 1.0 else math.inf
        self._turns: sparse.csr_matrix | None = None
        self._dep_cnt = np.zeros(m)
        self._turn_t = 0.0
        self._used_seen = (np.zeros(m, dtype=np.int64), np.zeros(m, dtype=np.int64))
        self._burst_t = 0.0
        # storage in sampled vehicles: sample ** 0.5, not sample. A sampled car stands for 1/sample
        # cars, so a link of a few cars' storage (most urban links at sample 0.1) would hold a
        # fraction of one and block whenever two sampled cars meet on it, while the full population
        # flows freely; sampled runs need a storage factor above the flow factor (Llorca & Moeckel
        # 2019, "Effects of scaling down the population for agent-based traffic simulations").
        cars = a.length_m * np.maximum(a.lanes, 1) / p.jam_spacing_m  # the full population's
        storage = cars * p.sample ** 0.5
        w = p.wave_speed_kph / 3.6
        self.hole_delay = a.length_m / w if w > 0 else np.zeros(m)
        # as in MATSim: a link must hold what flows in while a car crosses it and its freed space
        # travels back (else the configured capacity is unreachable), and at least one car
        need = np.where(self.closed, 0.0, cap_s * (self.ff + self.hole_delay + 2 * dt))
        self.storage = np.maximum(np.maximum(storage, need), 1.0)
        if p.sample < 1.0:
            # and two sampled cars where the full population's link holds two (what it holds:
            # ceil of its storage, see the space check in _kernel). A random queue has as many
            # sampled cars as the full population's has cars (M/D/1's queue length depends on
            # the utilisation only), each waiting 1/sample times longer, so two sampled cars
            # meeting on a short street blocked its entrance where the full population's pair
            # fitted: waits for space were 16-28x the full population's on Kotka's 800-1,200
            # veh/h streets (0.22 s of its 1.9 s mean delay at sample 0.2, 0.01 s in full)
            full = np.maximum(np.maximum(cars, need / p.sample), 1.0)
            self.storage = np.maximum(self.storage, np.minimum(2.0, np.ceil(full - 1e-9)))
        self.hole_size = np.where(self.hole_delay > 0,
                                  np.ceil(cap_s * self.hole_delay + 2).astype(np.int64), 0)
        self.hole_size = np.minimum(self.hole_size, np.ceil(self.storage).astype(np.int64) + 2)
        self.hole_size[self.hole_delay <= 0] = 0
        self.hole_off = np.zeros(m, dtype=np.int64)
        self.hole_off[1:] = np.cumsum(self.hole_size)[:-1]
        self.hole_t = np.zeros(int(self.hole_size.sum()) + 1)
        self.hole_start = np.zeros(m, dtype=np.int64)
        self.hole_n = np.zeros(m, dtype=np.int64)
        self.head = np.full(m, -1, dtype=np.int64)
        self.tail = np.full(m, -1, dtype=np.int64)
        self.count = np.zeros(m, dtype=np.int64)
        self.acc = np.ones(m)
        self.acc_in = np.ones(m)
        self.acc_last = np.zeros(m, dtype=np.int64)
        self.acc_in_last = np.zeros(m, dtype=np.int64)
        self.acc_step = np.zeros(1, dtype=np.int64)
        self.blocked_since = np.full(m, np.inf)
        self.wrr = np.zeros(m)  # fair-queuing tags per link
        self.vclock = np.zeros(a.n_nodes)  # fair-queuing virtual clock per node
        self.wait_head = np.full(m, -1, dtype=np.int64)
        self.wait_tail = np.full(m, -1, dtype=np.int64)
        order = np.argsort(a.edge_to, kind="stable")
        in_off = np.zeros(a.n_nodes + 1, dtype=np.int64)
        np.add.at(in_off, a.edge_to + 1, 1)
        self.in_off = np.cumsum(in_off)
        self.in_links = order.astype(np.int64)
        self.rec_entries = np.zeros(m, dtype=np.int64)
        self.rec_exits = np.zeros(m, dtype=np.int64)
        self.rec_tt_sum = np.zeros(m)
        self.csr = out_csr(a)
        self.dep_tag = np.zeros(m)  # fair-queuing tags of the departure queues (one per link)
        self.node_wait = np.zeros(a.n_nodes, dtype=np.int64)  # departed, waiting, per node
        # vehicles that used each link's outflow / departure inflow capacity (cumulative)
        self.used_out = np.zeros(m, dtype=np.int64)
        self.used_in = np.zeros(m, dtype=np.int64)

    def _init_trips(self) -> None:
        tr = self.trips
        n = self.n_trips = len(tr)
        self.depart_plan = tr["depart_s"].to_numpy(dtype=float).copy()
        self.order = np.argsort(self.depart_plan, kind="stable").astype(np.int64)
        self.ptr = np.zeros(1, dtype=np.int64)
        veh = tr["vehicle_id"].to_numpy()
        same = np.zeros(n, dtype=bool)
        same[1:] = veh[1:] == veh[:-1]
        self.prev_trip = np.where(same, np.arange(n) - 1, -1).astype(np.int64)
        self.next_trip = np.full(n, -1, dtype=np.int64)
        self.next_trip[:-1] = np.where(same[1:], np.arange(1, n), -1)
        self.state = np.zeros(n, dtype=np.int64)
        self.nxt = np.full(n, -1, dtype=np.int64)
        self.route_off = np.zeros(n, dtype=np.int64)
        self.route_len = np.zeros(n, dtype=np.int64)
        self.route_edges = np.zeros(max(16, n * 8), dtype=np.int64)
        self._route_used = 0
        self.routed = np.zeros(n, dtype=bool)
        self.ridx = np.zeros(n, dtype=np.int64)
        self.cur_link = np.full(n, -1, dtype=np.int64)
        self.enter_t = np.zeros(n)
        self.ready_t = np.zeros(n)
        self.depart_t = np.full(n, np.nan)
        self.arrive_t = np.full(n, np.nan)
        self.forced = np.zeros(n, dtype=np.int64)
        self.counters = np.zeros(4, dtype=np.int64)
        self.rerouted = np.zeros(n, dtype=np.int64)
        self.o_pos = tr["o_pos"].to_numpy(dtype=np.int64)
        self.d_pos = tr["d_pos"].to_numpy(dtype=np.int64)
        # one vehicle type per vehicle, seeded
        uveh, inv = np.unique(veh, return_inverse=True)
        draws = stream(self.seed, "traffic_vehicle_type").random(uveh.shape[0])
        is_ev: np.ndarray = np.asarray(draws < self.fleet.ev_share)
        self.is_ev: np.ndarray = is_ev[inv]

    def _create_agents(self) -> None:
        tr = self.trips
        self.vehicles: dict[Any, Vehicle] = {}
        starts = np.flatnonzero(self.prev_trip < 0)
        ends = np.append(starts[1:], self.n_trips) if starts.size else starts
        vids = tr["vehicle_id"].to_numpy()
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            vid = vids[s]
            self.vehicles[vid] = Vehicle(
                self.model, vehicle_id=vid, trip_ids=range(s, e), engine=self,
                vehicle_type="ev" if self.is_ev[s] else "ice",
            )
        self._trip_vehicle = vids

    # ------------------------------------------------------------------ routing
    def _store_routes(self, trips: np.ndarray, off: np.ndarray, edges: np.ndarray,
                      keep_prefix: np.ndarray | None = None) -> None:
        """Write routes for ``trips``; with ``keep_prefix`` the first edges of the old route stay."""
        lens = np.diff(off)
        if keep_prefix is not None:
            lens = lens + keep_prefix
        need = self._route_used + int(lens.sum())
        if need > self.route_edges.shape[0]:
            grown = np.zeros(max(need, 2 * self.route_edges.shape[0]), dtype=np.int64)
            grown[: self._route_used] = self.route_edges[: self._route_used]
            self.route_edges = grown
        starts = self._route_used + np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
        kp = np.zeros(trips.shape[0], dtype=np.int64) if keep_prefix is None else keep_prefix
        if kp.sum() > 0:  # copy the kept prefixes (the links already driven) to the new slots
            n_kp = int(kp.sum())
            within = np.arange(n_kp) - np.repeat(np.cumsum(kp) - kp, kp)
            self.route_edges[np.repeat(starts, kp) + within] = \
                self.route_edges[np.repeat(self.route_off[trips], kp) + within]
        idx = np.repeat(starts + kp - off[:-1], np.diff(off)) + np.arange(off[-1])
        self.route_edges[idx] = edges
        self.route_off[trips] = starts
        self.route_len[trips] = lens
        self._route_used = need

    def _refresh_routes(self, horizon_s: float) -> None:
        """Route trips departing before ``horizon_s`` and re-route a share of the cars en route,
        all on the current link times."""
        cost = self.link_travel_times()
        todo = np.flatnonzero(~self.routed & (self.depart_plan < horizon_s))
        pick = np.zeros(0, dtype=np.int64)
        share = self.params.reroute_share
        if share > 0 and self.t > 0:
            on = np.flatnonzero(self.state == K.ON_LINK)
            on = on[self.ridx[on] < self.route_len[on] - 1]  # not already on their last link
            pick = on[self._rng_route.random(on.shape[0]) < share]
        if todo.size + pick.size == 0:
            return
        src = np.concatenate([self.o_pos[todo], self.arrays.edge_to[self.cur_link[pick]]])
        dst = np.concatenate([self.d_pos[todo], self.d_pos[pick]])
        off, edges = route_trips(self.arrays, src, dst, cost=cost, csr=self.csr)
        nt = todo.size
        if nt:
            o1, e1 = off[: nt + 1], edges[: off[nt]]
            if self.params.route_spread > 0 and nt > 1:
                o1, e1 = self._spread(src[:nt], dst[:nt], o1, e1, cost)
            self._store_routes(todo, o1, e1)
            self.routed[todo] = True
            if self.params.sample < 1.0:
                self._add_turns(o1, e1)
        if pick.size:
            o2 = off[nt:] - off[nt]
            e2 = edges[off[nt]:]
            lens = np.diff(o2)
            ok = lens > 0
            if not ok.all():  # keep the old route where no new one exists
                e2 = e2[np.repeat(ok, lens)]
                o2 = np.concatenate([[0], np.cumsum(lens[ok])]).astype(np.int64)
                pick = pick[ok]
            self._store_routes(pick, o2, e2, keep_prefix=self.ridx[pick] + 1)
            self.rerouted[pick] += 1

    def _spread(self, src: np.ndarray, dst: np.ndarray, off: np.ndarray, edges: np.ndarray,
                cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Half the trips of a refresh, drawn at random, take an alternative path where one
        costs nearly as much as their best (the link-penalty method of route-set generation,
        de la Barra, Perez & Anez 1993): searched with the links of the refresh's best paths
        ``1 + route_spread`` times dearer, kept where it costs at most ``1 + route_spread / 2``
        times the best path on the current link times.

        All-or-nothing routing per refresh sends every departure of a window down the one
        path a snapshot shows free. Through a FIFO diverge that makes runs of same-path cars,
        each discharging at one branch's capacity: two equal 800 veh/h paths behind one
        feeder passed 830 veh/h of a 960 veh/h demand (mean delay 1,190 s; the fluid FIFO
        diverge passes 1,600 veh/h), and windows herd (test_default_routing_does_not_herd)."""
        a = self.params.route_spread
        used = np.zeros(self.arrays.n_edges, dtype=bool)
        used[edges] = True
        off2, edges2 = route_trips(self.arrays, src, dst, cost=np.where(used, cost * (1.0 + a), cost),
                                   csr=self.csr)

        def total(o: np.ndarray, e: np.ndarray) -> np.ndarray:
            cs = np.concatenate([[0.0], np.cumsum(cost[e])])
            return cs[o[1:]] - cs[o[:-1]]

        best, alt = total(off, edges), total(off2, edges2)
        ok = (np.diff(off2) > 0) & (alt <= best * (1.0 + a / 2.0))
        take = ok & (self._rng_route.random(src.shape[0]) < 0.5)
        if not take.any():
            return off, edges
        lens1, lens2 = np.diff(off), np.diff(off2)
        keep1 = np.repeat(~take, lens1)
        keep2 = np.repeat(take, lens2)
        # merge the two CSR sets trip by trip: each trip's edges from the set it takes
        lens = np.where(take, lens2, lens1)
        new_off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        out = np.empty(int(new_off[-1]), dtype=edges.dtype)
        pos1 = np.repeat(new_off[:-1] - off[:-1], lens1) + np.arange(edges.shape[0])
        pos2 = np.repeat(new_off[:-1] - off2[:-1], lens2) + np.arange(edges2.shape[0])
        out[pos1[keep1]] = edges[keep1]
        out[pos2[keep2]] = edges2[keep2]
        return new_off, out

    # ------------------------------------------------------------------ protocol
    def advance(self, until_s: float) -> None:
        """Simulate up to ``until_s`` (seconds since the period start)."""
        p = self.params
        while self.t < until_s - 1e-9:
            if self.t >= self._next_refresh - 1e-9:
                self._next_refresh += p.route_refresh_s
                self._refresh_routes(self._next_refresh)
            if self.t >= self._next_var - 1e-9:
                # on its own clock, after the refresh that routed this instant's trips: with
                # routes searched once (a long route_refresh_s) it was solved only at t = 0,
                # with every link idle, and stayed Poisson (1) all day
                self._next_var += _QNA_EVERY_S
                self._update_variability()
            stop = min(until_s, self._next_refresh, self._next_record, self._next_var)
            steps = max(1, math.ceil((stop - self.t) / p.step_s - 1e-9))
            self._update_burst()
            self.t = K.run_steps(
                self.t, self.t + steps * p.step_s, p.step_s, p.stuck_s / p.sample,
                self.ff, self.arrays.length_m, self.cap_step, self.burst, self.burst_in, self.storage, self.hole_delay,
                self.head, self.tail, self.count, self.acc, self.acc_in, self.acc_last,
                self.acc_in_last, self.acc_step, self.blocked_since,
                self.wrr, self.vclock, self.wait_head, self.wait_tail, self.hole_t, self.hole_off,
                self.hole_size, self.hole_start, self.hole_n, self.in_off, self.in_links,
                self.csr[0], self.csr[1], self.arrays.edge_from, self.dep_tag, self.node_wait, self.used_out, self.used_in,
                self.order, self.ptr, self.depart_plan, self.prev_trip, self.next_trip,
                self.state, self.nxt, self.route_off, self.route_len, self.route_edges,
                self.ridx, self.cur_link, self.enter_t, self.ready_t, self.depart_t,
                self.arrive_t, self.forced, self.rec_entries, self.rec_exits, self.rec_tt_sum,
                self.counters,
            )
            if self.t >= self._next_record - 1e-9:
                self._record()
                self._next_record += p.record_interval_s
            self._notify_arrivals()

    def _add_turns(self, off: np.ndarray, edges: np.ndarray) -> None:
        """Fold newly routed trips (CSR ``off``/``edges``) into the decayed counts of departures
        per link and of turns (link -> next link) that :meth:`_update_variability` reads.

        The counts decay with the utilisation estimate's time constant, so they follow the
        demand of the last half hour or so as the utilisation does."""
        m = self.arrays.n_edges
        decay = math.exp(-(self.t - self._turn_t) / _UTIL_TAU_S)
        self._turn_t = self.t
        lens = np.diff(off)
        first = off[:-1][lens > 0]
        dep = np.bincount(edges[first], minlength=m).astype(float)
        # consecutive entries are a turn unless the second one starts a route
        pair = np.ones(max(edges.shape[0] - 1, 0), dtype=bool)
        pair[first[first > 0] - 1] = False
        new = sparse.csr_matrix((np.ones(int(pair.sum())), (edges[:-1][pair], edges[1:][pair])),
                                shape=(m, m))
        new.sum_duplicates()
        self._turns = new if self._turns is None else self._turns * decay + new
        self._dep_cnt = self._dep_cnt * decay + dep

    def _update_variability(self) -> None:
        """Squared coefficient of variation (SCV) of each link's arrivals in the full
        population, by the Queueing Network Analyzer's approximations (Whitt 1983, "The queueing
        network analyzer", Bell System Technical Journal 62(9)) on the routed flows.

        Departures onto a link are Poisson (SCV 1). A link's exit is a deterministic server: its
        output keeps (1 - rho^2) of its input's SCV. Splitting a stream into a turn with
        probability p leaves p SCV + 1 - p; a link's arrivals are the flow-weighted mean of the
        streams merging into it. The linear system is solved by fixed-point passes (its rows
        sum to at most 1, less wherever departures join, a stream splits or a server is busy),
        a few every 15 simulated minutes from the last solution: the flows change slowly, and
        40 passes from 1 at every route refresh were a fifth of a sampled 10k city's traffic
        CPU. Where the SCV is below 1 the full population's stream is smoother than Poisson, so
        its queues are shorter than the M/D/1 ones the burst law was fitted on;
        :meth:`_update_burst` reads that as a smaller sample. Re-routed cars' new tails are not
        counted (the counts are of trips as first routed)."""
        T = self._turns
        if T is None:
            return
        inflow = self._dep_cnt + np.asarray(T.sum(axis=0)).ravel()
        rows = np.repeat(np.arange(T.shape[0]), np.diff(T.indptr))
        # the share of a link's arrivals taking each turn (what leaves it: its inflow)
        with np.errstate(divide="ignore", invalid="ignore"):
            p_turn = np.where(inflow[rows] > 0, T.data / inflow[rows], 0.0)
        # into each link: flow of each turn x its split's p, and the Poisson part (1 - p)
        kept = sparse.csr_matrix((T.data * p_turn, T.indices, T.indptr), shape=T.shape).T.tocsr()
        fresh = self._dep_cnt + np.bincount(T.indices, weights=T.data * (1.0 - p_turn),
                                            minlength=T.shape[0])
        r = np.clip(self.rho_out, 0.0, _RHO_MAX)
        smooth = 1.0 - r * r
        inv = np.where(inflow > 0, 1.0 / np.maximum(inflow, 1e-300), 0.0)
        c2 = self._scv
        for _ in range(_QNA_PASSES):
            c2 = (fresh + kept @ (smooth * c2)) * inv
        self._scv = np.where(inflow > 0, c2, 1.0)

    @property
    def phi(self) -> np.ndarray:
        """Each link's arrival SCV as the burst reads it: within [0.1, 1] (1 where no flow)."""
        return np.clip(self._scv, _PHI_MIN, 1.0)

    def _update_burst(self) -> None:
        """Token-bucket depth of each link's outflow and departure inflow from its utilisation.

        A sampled vehicle stands for ``1/sample`` vehicles, so a capacity check per sampled vehicle
        works on a time grain ``1/sample`` times coarser than the real one: at utilisation rho the
        random queue of a sampled run is that of the full population in sampled vehicles, and
        each is served ``1/sample`` times slower, so its mean delay is ``1/sample`` times the full
        population's (the M/D/1 mean wait rho / (2 mu (1 - rho)) with mu scaled by the sample).
        A link may therefore pass ``burst`` sampled vehicles beyond one step's capacity after a
        lull, which takes the sampling noise out of short random clusters while a sustained
        overload still queues at exactly the capacity (the bucket is empty then). ``burst`` grows
        with utilisation as the random queues do; its law is :func:`sample_burst`. At sample 1
        it is 0: the plain per-vehicle rule.

        The law was fitted on Poisson arrivals. A link whose full-population arrivals are
        smoother (SCV ``phi`` < 1, :meth:`_update_variability`: downstream of busy links) is
        given the law at the sample ``sample * sqrt(phi)``, a deeper burst. The square root is
        fitted on a corridor of merges (phi itself overshot: 0.70x the full population's delay
        at utilisation 0.6; the square root 0.88-1.02x where the plain law gave 1.37-1.52x, and
        0.92x on the test's seeds with the law refitted with the utilisation estimate in the
        loop)."""
        p = self.params
        if p.sample >= 1.0:
            return
        span = self.t - self._burst_t
        if span <= 0:
            return
        cap_s = self.cap_step / p.step_s
        w = 1.0 - math.exp(-span / _UTIL_TAU_S)
        for used, seen, rho in ((self.used_out, self._used_seen[0], self.rho_out),
                                (self.used_in, self._used_seen[1], self.rho_in)):
            with np.errstate(divide="ignore", invalid="ignore"):
                now = np.where(cap_s > 0, (used - seen) / (np.maximum(cap_s, 1e-12) * span), 0.0)
            # not clipped per span: a span of 1 s with one vehicle reads as far above capacity,
            # so a clip here would make the estimate depend on how often advance is called
            # (sample_burst clips the filtered value)
            rho += w * (now - rho)
            seen[:] = used
        # smoother arrivals than Poisson read as a smaller sample: a deeper burst
        q = p.sample * np.sqrt(self.phi)
        self.burst[:] = sample_burst(self.rho_out, q)
        self.burst_in[:] = sample_burst(self.rho_in, q)
        self._burst_t = self.t

    def _notify_arrivals(self) -> None:
        dep = np.flatnonzero((self.state >= K.WAITING) & ~self._departed_seen)
        if dep.size:
            self._departed_seen[dep] = True
            for k, vid in zip(dep.tolist(), self._trip_vehicle[dep].tolist(), strict=True):
                self.vehicles[vid].on_departure(k, float(self.depart_t[k]))
        new = np.flatnonzero((self.state == K.ARRIVED) & ~self._arrived_seen)
        if new.size == 0:
            return
        self._arrived_seen[new] = True
        vids = self._trip_vehicle[new]
        for k, vid in zip(new.tolist(), vids.tolist(), strict=True):
            self.vehicles[vid].on_arrival(k, float(self.arrive_t[k]))

    def _record(self) -> None:
        q = K.queue_lengths(self.t, self.head, self.nxt, self.ready_t)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_tt = np.where(self.rec_exits > 0, self.rec_tt_sum / np.maximum(self.rec_exits, 1),
                               np.nan)
            speed = self.arrays.length_m / mean_tt * 3.6
        speed = np.where(np.isfinite(speed), speed, self.arrays.length_m / self.ff * 3.6)
        # a link that only emptied in the interval (exits, no entries, none left) has a speed
        # and a delay too: selected by entries or count alone, a draining queue's last
        # interval was missing (a third of a bottleneck's delay)
        busy = np.flatnonzero((self.rec_entries > 0) | (self.rec_exits > 0) | (self.count > 0))
        self._records.append(pd.DataFrame({
            "edge_id": busy.astype(np.int64),
            "time_s": float(self.t),
            "volume": self.rec_entries[busy] / self.params.sample,
            "speed_kph": speed[busy],
            "queue": q[busy] / self.params.sample,
            # the delay of the cars that left the link in the interval: their time on it beyond
            # its free-flow time (waiting at its exit included, at their departure not)
            "delay_h": (self.rec_tt_sum[busy] - self.rec_exits[busy] * self.ff[busy])
            / 3600.0 / self.params.sample,
        }))
        self.rec_entries[:] = 0
        self.rec_exits[:] = 0
        self.rec_tt_sum[:] = 0.0

    def link_travel_times(self) -> np.ndarray:
        """Current travel time per edge_id (s) for a car entering now: the free-flow time, or the
        time the cars already on the link, less those its outflow bucket lets go at once, need to
        discharge at its capacity, or the time the head car has already spent (a link blocked
        downstream), whichever is largest. Closed: inf.

        (An average of recent traversals lagged behind growing and shrinking queues; this
        estimate made dynamic routing on the congested 100k grid ~10 % faster.)"""
        hw = K.head_wait(self.t, self.head, self.enter_t, self.ff)
        cap_s = np.maximum(self.cap_step / self.params.step_s, 1e-9)
        # the cars on the link beyond what its outflow bucket lets go at once, at its capacity:
        # one sampled car on a short link otherwise read as 1 / (sample x capacity), 22 s at
        # sample 0.2 on a 800 veh/h street of 1 s free flow. (The sampling burst is left out of
        # the bucket here: counted, sampled runs' dynamic routing cut their delay more than the
        # full population's, 0.74x its delay on the 10k synthetic city against 0.80x without.)
        tokens = np.minimum(self.acc + self.cap_step * (self.acc_step[0] - self.acc_last),
                            self.cap_step + 1.0)
        ahead = np.maximum(self.count - tokens, 0.0)
        out = np.maximum(np.maximum(self.ff, ahead / cap_s), hw)
        out[self.closed] = np.inf
        return out

    # ------------------------------------------------------------------ results
    def routes(self) -> tuple[np.ndarray, np.ndarray]:
        """Current routes of all trips as (offsets, edge ids), trips-table order."""
        off = np.zeros(self.n_trips + 1, dtype=np.int64)
        np.cumsum(self.route_len, out=off[1:])
        idx = np.repeat(self.route_off - off[:-1], self.route_len) + np.arange(off[-1])
        return off, self.route_edges[idx].copy()

    def trips_table(self) -> pd.DataFrame:
        from citytwin.traffic.outputs import trips_table

        return trips_table(self)

    def tables(self) -> dict[str, pd.DataFrame]:
        from citytwin.traffic.outputs import links_table

        return {"trips": self.trips_table(), "links": links_table(self)}

    def kpis(self) -> dict[str, float]:
        from citytwin.traffic.outputs import kpis

        return kpis(self)

    def ev_arrivals(self, since_s: float, until_s: float) -> pd.DataFrame:
        """EV trips whose arrival was handled by a step in ``[since_s, until_s)`` (``arrive_s``
        is the fractional arrival time; it may lie up to one step before the step that handled
        it): vehicle_id, building_id, arrive_s,
        distance_km, purpose, and duration_s (departure to arrival: the energy engine's EV
        consumption depends on the trip's mean speed)."""
        # selected by the step that handled the arrival (steps are multiples of step_s; an
        # arrival at a fractional time t was handled by the step at ceil(t / step_s)), so an
        # arrival handled after advance(until_s) returned is never dated into a window that
        # was already read, and windows that tile the day count every arrival exactly once
        dt = self.params.step_s
        with np.errstate(invalid="ignore"):
            handled = np.ceil(self.arrive_t / dt - 1e-9) * dt
        sel = np.flatnonzero(self.is_ev & (self.state == K.ARRIVED) & (handled >= since_s - 1e-9)
                             & (handled < until_s - 1e-9))
        # route lengths as outputs.route_lengths (differences of the running sum of link lengths
        # over route_edges), that sum extended only over the entries written since the last
        # call: written entries never change, and cumsum([last, *new]) adds in the same order
        # as one cumsum over all (same bits; the full recomputation cost ~0.2 s per call at 100k)
        used = self._route_used
        done = self._len_csum.shape[0] - 1
        if used > done:
            ext = np.cumsum(np.concatenate([self._len_csum[-1:],
                                            self.arrays.length_m[self.route_edges[done:used]]]))
            self._len_csum = np.concatenate([self._len_csum, ext[1:]])
        csum = self._len_csum
        dist_m = csum[self.route_off[sel] + self.route_len[sel]] - csum[self.route_off[sel]]
        return pd.DataFrame({
            "vehicle_id": self.trips["vehicle_id"].to_numpy()[sel],
            "building_id": self.trips["dest_building"].to_numpy()[sel].astype(np.int64),
            "arrive_s": self.arrive_t[sel],
            "distance_km": dist_m / 1000.0,
            "purpose": self.trips["purpose"].to_numpy()[sel],
            "duration_s": self.arrive_t[sel] - self.depart_t[sel],
        })

    def check_conservation(self) -> None:
        """Invariants: departed = arrived + en route; each en-route vehicle in exactly one queue."""
        dep = int(np.count_nonzero(self.state >= K.WAITING))
        arr = int(np.count_nonzero(self.state == K.ARRIVED))
        seen = np.zeros(self.n_trips, dtype=np.int64)
        for heads in (self.head, self.wait_head):
            for e in np.flatnonzero(heads >= 0).tolist():
                h = int(heads[e])
                while h >= 0:
                    seen[h] += 1
                    h = int(self.nxt[h])
        en_route = int(np.count_nonzero(self.state == K.ON_LINK) + np.count_nonzero(
            self.state == K.WAITING))
        problems = []
        if dep != arr + en_route or dep != int(self.counters[0]):
            problems.append(f"departed {dep} != arrived {arr} + en route {en_route}")
        if seen.max(initial=0) > 1:
            problems.append(f"{int((seen > 1).sum())} vehicles are in two queues")
        if int(seen.sum()) != en_route:
            problems.append(f"queues hold {int(seen.sum())} vehicles, en route {en_route}")
        if int(self.count.sum()) != int(np.count_nonzero(self.state == K.ON_LINK)):
            problems.append("link counts disagree with vehicles on links")
        if problems:
            raise AssertionError("; ".join(problems))


def run_traffic(city: City, params: TrafficParams | None = None, *, seed: int,
                trips: pd.DataFrame | None = None, duration_s: float | None = None,
                routes: tuple[np.ndarray, np.ndarray] | None = None,
                fleet: Fleet | None = None, start: Any = None) -> TrafficEngine:
    """Simulate ``trips`` (or the city's generated demand) until every trip has ended or
    ``duration_s`` (default: last departure + 4 h) has passed; returns the finished engine."""
    model = StandaloneModel(city, seed=seed, start=start, duration_s=duration_s or 0.0,
                            fleet=fleet)
    engine = TrafficEngine(model, params, trips=trips, routes=routes)
    model.traffic = engine
    end = duration_s if duration_s is not None else float(engine.depart_plan.max(initial=0) + 4 * 3600)
    model.duration_s = end
    step = 900.0
    while engine.t < end:
        engine.advance(min(end, engine.t + step))
        if engine.ptr[0] >= engine.n_trips and not np.any(
            (engine.state == K.WAITING) | (engine.state == K.ON_LINK)
        ):
            break
    return engine
