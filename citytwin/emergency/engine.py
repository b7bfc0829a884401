"""The emergency engine: incidents, dispatch, unit movement on the road network, KPIs.

A discrete-event simulation on the model's clock. ``advance(t)`` processes calls and unit events
up to ``t`` using the link costs current at that call (traffic and closures), so congestion and
closures lengthen responses. Units are Mesa agents (:class:`EmergencyUnit`); their routes are
shortest paths on the road arrays; dispatch runs one reverse Dijkstra per call (times from every
node to the incident), so "closest available unit by current travel time" is exact.
"""

from __future__ import annotations

import heapq
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import mesa
import numpy as np
import pandas as pd
from scipy.sparse import csgraph

from citytwin.emergency.coverage import coverage_times
from citytwin.emergency.incidents import generate_incidents, read_incidents
from citytwin.emergency.kpis import emergency_kpi_notes, emergency_kpis
from citytwin.emergency.params import UNIT_TYPES, EmergencyParams
from citytwin.emergency.stations import EmergencyUnit, build_stations, hospitals
from citytwin.engine import Host, StandaloneModel
from citytwin.errors import InputError
from citytwin.network.routing import RoadArrays, road_arrays
from citytwin.rng import stream

if TYPE_CHECKING:  # pragma: no cover
    from citytwin.city import City
    pass

__all__ = ["EmergencyEngine", "run_emergency", "requirements_for"]

log = logging.getLogger(__name__)
_EMS = ("bls", "als")


def requirements_for(kind: str, priority: int, levels: float, params: EmergencyParams
                     ) -> list[tuple[str, ...]]:
    """Unit types each dispatch of one incident accepts, preferred first."""
    if kind == "fire":
        reqs: list[tuple[str, ...]] = [("engine",)]
        if levels >= params.ladder_min_levels:
            reqs.append(("ladder",))
        return reqs
    if kind == "medical" and priority == 1:
        return [("als", "bls")]
    return [("bls", "als")]


def _gamma(rng: np.random.Generator, cv: float, size: int) -> np.ndarray:
    """Multipliers with mean 1 and coefficient of variation ``cv`` (cv 0: all ones)."""
    if cv <= 0:
        return np.ones(size)
    k = 1.0 / cv**2
    return rng.gamma(k, 1.0 / k, size=size)


def _read_log(path: str) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise InputError([f"incident_log: file not found: {p}"], source="EmergencyParams")
    try:  # an empty, truncated or mislabelled file is bad input, not a crash
        if p.suffix.lower() == ".csv":
            return pd.read_csv(p)
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
    except (ValueError, OSError) as exc:  # EmptyDataError, ParserError, ArrowInvalid
        raise InputError([f"incident_log: {p}: cannot read as {p.suffix.lstrip('.')} "
                          f"({type(exc).__name__}: {str(exc)[:200]})"],
                         source="EmergencyParams") from None
    raise InputError([f"incident_log: {p.name}: expected a .csv or .parquet file"],
                     source="EmergencyParams")


class EmergencyEngine:
    """Engine protocol: ``advance(until_s)``, ``tables()``, ``kpis()``.

    ``model`` needs ``city``, ``seed``, ``duration_s`` and may have ``start``, ``traffic`` and
    ``energy`` (None when off). If ``model`` is not a ``mesa.Model`` the unit agents live in a
    private one. ``incidents``: an incident log to replay instead of generated incidents.
    """

    domain: ClassVar[str] = "emergency"

    def __init__(self, model: Host, params: EmergencyParams, *,
                 incidents: pd.DataFrame | None = None,
                 link_times: np.ndarray | None = None) -> None:
        city = model.city
        self.model = model
        self.params = params
        self.seed = int(model.seed)
        self.duration_s = float(model.duration_s)
        arrays = getattr(city, "road_arrays", None)
        self.arrays: RoadArrays = arrays if arrays is not None else road_arrays(city.roads)
        self.node_pos = {n: i for i, n in enumerate(self.arrays.node_ids.tolist())}
        self.buildings = city.buildings
        self.stations, specs = build_stations(city.facilities, params, node_pos=self.node_pos)
        self.station_by_id = {s.station_id: s for s in self.stations}
        self.hospital_pos = hospitals(city.facilities, node_pos=self.node_pos)
        bad = [e for e in params.closed_edges if not 0 <= e < self.arrays.n_edges]
        if bad:
            raise InputError([f"closed_edges: edge ids {bad} not in 0..{self.arrays.n_edges - 1}"],
                             source="EmergencyParams")
        self._fixed_link_times = None if link_times is None else np.asarray(link_times, float)
        host = model if isinstance(model, mesa.Model) else mesa.Model(rng=self.seed)
        self.units = [EmergencyUnit(host, s, home_pos=self.station_by_id[s.station_id].pos)
                      for s in specs]
        self.types_present = {u.unit_type for u in self.units}
        # incidents (candidates when generated; a replayed log is never thinned)
        source = "incident table"
        if incidents is None and params.incident_log is not None:
            incidents, source = _read_log(params.incident_log), params.incident_log
        if incidents is not None:
            inc = read_incidents(
                incidents, buildings=city.buildings, node_xy=(self.arrays.x, self.arrays.y),
                node_pos=self.node_pos, crs=getattr(city, "crs", None),
                duration_s=self.duration_s, start=getattr(model, "start", None), source=source)
            inc["keep_u"] = -1.0
        elif params.generate_incidents:
            inc = generate_incidents(city.buildings, params, seed=self.seed,
                                     duration_s=self.duration_s, node_pos=self.node_pos)
        else:
            inc = generate_incidents(city.buildings.iloc[:0], params, seed=self.seed,
                                     duration_s=self.duration_s, node_pos=self.node_pos)
        self.inc = inc.reset_index(drop=True)
        n = len(self.inc)
        # plain arrays: the event loop must not pay pandas indexing per call
        self._iid = self.inc["incident_id"].to_numpy()
        self._time = self.inc["time_s"].to_numpy(dtype=float)
        self._kind = self.inc["type"].astype(str).to_numpy()
        self._prio = self.inc["priority"].to_numpy(dtype=np.int64)
        self._bid = self.inc["building_id"].to_numpy(dtype=np.int64)
        # row of each incident's building in city.buildings (-1: a replayed point, no building)
        self._brow = np.asarray(city.buildings.index.get_indexer(self._bid), dtype=np.int64)
        self._node = self.inc["node"].to_numpy(dtype=np.int64)
        self._levels = self.inc["levels"].to_numpy(dtype=float)
        self._keep_u = self.inc["keep_u"].to_numpy(dtype=float)
        rng = stream(self.seed, "units")
        self._turnout_g = _gamma(rng, params.turnout_cv, 2 * n).reshape(n, 2) if n else np.ones(
            (0, 2))
        scene_mean = self.inc["type"].map(params.on_scene_mean_s).to_numpy(dtype=float)
        self._on_scene = scene_mean * _gamma(rng, params.on_scene_cv, n)
        p_tr = np.where(self.inc["priority"].to_numpy() == 1, params.transport_prob.get("p1", 0.0),
                        params.transport_prob.get("p2", 0.0))
        self._transport = (self.inc["type"].to_numpy() == "medical") & (rng.uniform(size=n) < p_tr)
        # state
        self.now = 0.0
        self._next = 0
        self._heap: list[tuple[float, int, str, int, int]] = []
        self._seq = 0
        self._queue: list[tuple[int, int, int, float]] = []  # (priority, incident, req, since)
        self._records: dict[int, dict[str, Any]] = {}
        self._dispatches: list[dict[str, Any]] = []
        self._advanced = 0  # advance calls so far: tables() is rebuilt only after one
        self._tables: tuple[int, dict[str, pd.DataFrame]] | None = None
        self._cost: np.ndarray | None = None
        self._mat: Any = None
        self._mat_rev: Any = None
        self._ff_mat = self.arrays.matrix(self.arrays.freeflow_s)
        self._ff_rev = self._ff_mat.T.tocsr()
        self._from_trees: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._ff_from: dict[int, np.ndarray] = {}
        self._tree_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._station_trees: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._post_positions = {s.pos for s in self.stations}
        self._hospital_tree: tuple[np.ndarray, np.ndarray] | None = None
        self._zone_cache: dict[str, np.ndarray] = {}
        self._cover: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.n_thinned = 0
        self._series: list[tuple[float, float, float]] = []
        self.n_moveups = 0
        self.n_unreachable = 0
        self.n_stranded = 0
        if self.inc["type"].isin(["medical", "traffic"]).any() and not (
                self.types_present & set(_EMS)):
            log.warning("no ambulance (bls/als) in the city: medical and traffic calls go unserved")

    # ----------------------------------------------------------------- link costs, trees
    def _refresh_cost(self) -> None:
        ff = self.arrays.freeflow_s
        lt = self._fixed_link_times
        traffic = getattr(self.model, "traffic", None)
        if lt is None and traffic is not None:
            lt = np.asarray(traffic.link_travel_times(), dtype=float)
        if lt is None:
            cost = ff.copy()
        else:
            # closed links (inf free-flow or experienced time) stay closed; no inf - inf arithmetic
            ok = np.isfinite(lt) & np.isfinite(ff)
            cost = np.full_like(ff, np.inf)
            cost[ok] = ff[ok] + self.params.congestion_share * np.maximum(lt[ok] - ff[ok], 0.0)
        if self.params.closed_edges:
            cost[list(self.params.closed_edges)] = np.inf
        if self._cost is not None and np.array_equal(cost, self._cost):
            return
        self._cost = cost
        self._cost_is_freeflow = bool(np.array_equal(cost, ff))
        # the matrices are built when a search needs them: most steps have no call to route
        self._mat = self._mat_rev = None
        self._tree_cache.clear()
        self._station_trees.clear()
        self._from_trees.clear()
        self._hospital_tree = None

    def _matrix(self) -> Any:
        """CSR road matrix under the current link costs (built once per cost change)."""
        if self._cost is None:
            self._refresh_cost()
        if self._mat is None:
            assert self._cost is not None  # set by _refresh_cost
            self._mat = self.arrays.matrix(self._cost)
        return self._mat

    def _matrix_rev(self) -> Any:
        """The transposed matrix (searches towards a node)."""
        if self._mat_rev is None:
            self._mat_rev = self._matrix().T.tocsr()
        return self._mat_rev

    def _tree_to(self, pos: int) -> tuple[np.ndarray, np.ndarray]:
        """(time to ``pos`` from every node, next-hop predecessors) under the current cost.

        Trees to station posts are kept until the link costs change; trees to incidents in a
        small most-recent cache (a call, its queue checks and its route reuse one tree).
        """
        hit = self._station_trees.get(pos)
        if hit is not None:
            return hit
        hit = self._tree_cache.pop(pos, None)
        if hit is None:
            d, p = csgraph.dijkstra(self._matrix_rev(), directed=True, indices=pos,
                                    return_predecessors=True)
            hit = (d, p)
        if pos in self._post_positions:
            self._station_trees[pos] = hit
            return hit
        self._tree_cache[pos] = hit  # re-inserted: most recent last
        while len(self._tree_cache) > 16:
            self._tree_cache.pop(next(iter(self._tree_cache)))
        return hit

    def _to_hospital(self) -> tuple[np.ndarray, np.ndarray]:
        """(time to the nearest hospital from every node, next hop): one multi-source tree."""
        if self._hospital_tree is None:
            d, p, _ = csgraph.dijkstra(self._matrix_rev(), directed=True, indices=self.hospital_pos,
                                       min_only=True, return_predecessors=True)
            self._hospital_tree = (d, p)
        return self._hospital_tree

    def _route_to(self, start: int, target: int, depart: float
                  ) -> tuple[np.ndarray, np.ndarray] | None:
        """Node route and passing times from ``start`` to ``target``; None when the target
        cannot be reached under the current link costs (closed links, an island)."""
        dist, pred = self._tree_to(target)
        if not np.isfinite(dist[start]):
            return None
        nodes = [start]
        while nodes[-1] != target:
            nodes.append(int(pred[nodes[-1]]))
        arr = np.array(nodes, dtype=np.int64)
        return arr, depart + (dist[start] - dist[arr])

    # ----------------------------------------------------------------- events
    def _push(self, t: float, kind: str, unit: int, token: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, kind, unit, token))

    def advance(self, until_s: float) -> None:
        """Simulate calls and unit movements up to ``until_s`` (s since the period start)."""
        self._advanced += 1
        self._refresh_cost()
        energy = getattr(self.model, "energy", None)
        unsupplied = None if energy is None else np.asarray(energy.unsupplied_buildings(), bool)
        times = self._time
        while True:
            t_call = times[self._next] if self._next < len(times) else np.inf
            t_ev = self._heap[0][0] if self._heap else np.inf
            t = min(t_call, t_ev)
            if t >= until_s or not np.isfinite(t):
                break
            self.now = t
            if t_ev <= t_call:
                _, _, kind, u, token = heapq.heappop(self._heap)
                unit = self.units[u]
                if token == unit.token:
                    getattr(self, f"_on_{kind}")(unit)
            else:
                i = self._next
                self._next += 1
                if self._keep(i, unsupplied):
                    self._on_call(i)
                else:
                    self.n_thinned += 1
        self.now = max(self.now, float(until_s))
        busy = sum(u.state != "available" for u in self.units)
        self._series.append((self.now, float(busy), float(len(self._queue))))

    def _keep(self, i: int, unsupplied: np.ndarray | None) -> bool:
        u = float(self._keep_u[i])
        if u < 0:
            return True
        m = self.params.outage_rate_multiplier
        out = False
        if unsupplied is not None:
            b = int(self._brow[i])
            out = 0 <= b < unsupplied.shape[0] and bool(unsupplied[b])
        return u < (m if out else 1.0) / max(1.0, m)

    # ----------------------------------------------------------------- calls and dispatch
    def _on_call(self, i: int) -> None:
        reqs = requirements_for(self._kind[i], int(self._prio[i]), float(self._levels[i]),
                                self.params)
        rec = {"incident_id": self._iid[i], "time_s": float(self._time[i]),
               "type": self._kind[i], "priority": int(self._prio[i]),
               "building_id": int(self._bid[i]), "node": int(self._node[i]),
               "unit_id": -1, "unit_type": "", "turnout_s": np.nan, "travel_s": np.nan,
               "response_s": np.nan, "queued_s": np.nan, "status": "open", "n_units": len(reqs)}
        self._records[i] = rec
        for r, types in enumerate(reqs):
            if not self.types_present & set(types):
                rec["status"] = "unserved" if r == 0 else rec["status"]
                continue
            unit = self._choose(i, types, r)
            if unit is not None:
                self._dispatch(unit, i, r, queued_s=0.0)
            elif not self._reachable(i, types):
                # no unit of these types can reach the incident from its post or where it is
                # now (closed links, an island): a counted outcome, never queued forever
                if r == 0:
                    rec["status"] = "unreachable"
                    self.n_unreachable += 1
            elif self.params.queue_calls:
                self._queue.append((rec["priority"], i, r, self.now))
            elif r == 0:
                rec["status"] = "lost"

    def _reachable(self, i: int, types: tuple[str, ...]) -> bool:
        node = int(self._node[i])
        for u in self.units:
            if u.unit_type not in types:
                continue
            if np.isfinite(self._travel(u.post_pos, node)):
                return True
            if np.isfinite(self._travel(u.position_at(self.now)[0], node)):
                return True
        return False

    def _tree_from(self, pos: int) -> tuple[np.ndarray, np.ndarray]:
        """Forward tree (times, predecessors) from a station post, kept per cost version."""
        hit = self._from_trees.get(pos)
        if hit is None:
            d, p = csgraph.dijkstra(self._matrix(), directed=True, indices=pos,
                                    return_predecessors=True)
            hit = self._from_trees[pos] = (d, p)
        return hit

    def _travel(self, pos: int, node: int) -> float:
        """Current travel time from ``pos`` to ``node``: a station's own forward tree when
        ``pos`` is a post (no search per call), else the incident's reverse tree."""
        if pos in self._post_positions:
            return float(self._tree_from(pos)[0][node])
        return float(self._tree_to(node)[0][pos])

    def _freeflow(self, pos: int, node: int) -> float:
        if self._cost_is_freeflow:
            return self._travel(pos, node)
        if pos in self._post_positions:
            d = self._ff_from.get(pos)
            if d is None:
                d = self._ff_from[pos] = csgraph.dijkstra(self._ff_mat, directed=True, indices=pos)
            return float(d[node])
        return float(csgraph.dijkstra(self._ff_rev, directed=True, indices=node)[pos])

    def _route_between(self, pos: int, node: int, depart: float
                       ) -> tuple[np.ndarray, np.ndarray] | None:
        if pos not in self._post_positions:
            return self._route_to(pos, node, depart)
        dist, pred = self._tree_from(pos)
        if not np.isfinite(dist[node]):
            return None
        nodes = [node]
        while nodes[-1] != pos:
            nodes.append(int(pred[nodes[-1]]))
        arr = np.array(nodes[::-1], dtype=np.int64)
        return arr, depart + dist[arr]

    def _eta(self, unit: EmergencyUnit, i: int, r: int) -> tuple[float, int]:
        pos, offset = unit.position_at(self.now)
        turnout = 0.0
        if unit.state == "available" and unit.route is None:
            turnout = self._turnout(unit, i, r)
        return offset + turnout + self._travel(pos, int(self._node[i])), pos

    def _turnout(self, unit: EmergencyUnit, i: int, r: int) -> float:
        if self.params.stationary_units:
            return 0.0
        cls = UNIT_TYPES[unit.unit_type][0]
        return float(self.params.turnout_mean_s.get(cls, 0.0) * self._turnout_g[i, min(r, 1)])

    def _choose(self, i: int, types: tuple[str, ...], r: int) -> EmergencyUnit | None:
        node = int(self._node[i])
        for t in types:  # preferred type first, alternatives only if none is free
            free = [u for u in self.units
                    if u.unit_type == t and u.state in ("available", "returning")]
            if not free:
                continue
            if self.params.dispatch == "zones":
                zone = self._zone_station(t)[node]
                first_due = [u for u in free if u.post_station == zone]
                if first_due:
                    free = first_due
            best = min(free, key=lambda u: (self._eta(u, i, r)[0], u.unit_id))
            if np.isfinite(self._eta(best, i, r)[0]):
                return best
        return None

    def _zone_station(self, unit_type: str) -> np.ndarray:
        """First-due area: for every node, the id of the nearest station hosting ``unit_type``."""
        z = self._zone_cache.get(unit_type)
        if z is None:
            hosts = [s for s in self.stations if s.units.get(unit_type, 0) > 0]
            z = np.full(self.arrays.n_nodes, -10**9, dtype=np.int64)
            if hosts:
                ff = self.arrays.matrix(self.arrays.freeflow_s)
                _, _, src = csgraph.dijkstra(ff, directed=True, indices=[s.pos for s in hosts],
                                             min_only=True, return_predecessors=True)
                ids = {s.pos: s.station_id for s in hosts}
                ok = src >= 0
                z[ok] = [ids[int(p)] for p in src[ok]]
            self._zone_cache[unit_type] = z
        return z

    def _dispatch(self, unit: EmergencyUnit, i: int, r: int, *, queued_s: float) -> None:
        node = int(self._node[i])
        eta, pos = self._eta(unit, i, r)
        was_home = unit.state == "available" and unit.route is None
        turnout = self._turnout(unit, i, r) if was_home else 0.0
        offset = eta - turnout - self._travel(pos, node)
        if self.params.stationary_units:
            travel, turnout, offset = 0.0, 0.0, 0.0
            unit.route = None
        else:
            travel = eta - turnout
            unit.route = self._route_between(pos, node, self.now + turnout + offset)
            assert unit.route is not None, "dispatch of a unit that cannot reach the incident"
        unit.token += 1
        unit.incident = i
        unit.set_state("dispatched", self.now)
        arrive = self.now + turnout + travel
        unit.dispatch_idx = len(self._dispatches)
        self._dispatches.append({
            "incident_id": self._iid[i], "unit_id": unit.unit_id,
            "unit_type": unit.unit_type, "requirement": r, "dispatch_s": self.now,
            "origin_node": self.arrays.node_ids[pos], "turnout_s": turnout, "travel_s": travel,
            "freeflow_s": offset + self._freeflow(pos, node), "arrive_s": arrive,
            "queued_s": queued_s, "from_quarters": bool(was_home),
        })
        self._push(arrive, "arrive_scene", unit.unit_id, unit.token)
        if self.params.move_up and was_home:
            self._move_up(unit)

    # ----------------------------------------------------------------- unit events
    def _on_arrive_scene(self, unit: EmergencyUnit) -> None:
        i = unit.incident
        assert i is not None
        unit.route = None
        if not self.params.stationary_units:
            unit.pos_node = int(self._node[i])
        unit.set_state("on_scene", self.now)
        rec = self._records[i]
        d = self._dispatches[unit.dispatch_idx]
        if rec["unit_id"] < 0:  # first arriving unit defines the response
            rec.update(unit_id=unit.unit_id, unit_type=unit.unit_type, turnout_s=d["turnout_s"],
                       travel_s=d["travel_s"], queued_s=d["queued_s"],
                       response_s=self.now - rec["time_s"], status="served")
        self._push(self.now + float(self._on_scene[i]), "leave_scene", unit.unit_id, unit.token)

    def _on_leave_scene(self, unit: EmergencyUnit) -> None:
        i = unit.incident
        assert i is not None
        if self.params.stationary_units:
            unit.incident = None
            unit.set_state("available", self.now)
            self._serve_queue(unit)
            return
        if (unit.unit_type in _EMS and self._transport[i] and self.hospital_pos.size
                and not self._already_transported(i)):
            d, pred = self._to_hospital()
            start = unit.pos_node
            if np.isfinite(d[start]):
                nodes = [start]
                while pred[nodes[-1]] >= 0:  # follow next hops until a hospital (a tree root)
                    nodes.append(int(pred[nodes[-1]]))
                arr = np.array(nodes, dtype=np.int64)
                unit.route = (arr, self.now + (d[start] - d[arr]))
                unit.set_state("transporting", self.now)
                self._records[i]["transported"] = True
                self._push(self.now + float(d[start]) + self.params.handover_s, "handover",
                           unit.unit_id, unit.token)
                return
        self._return(unit)

    def _already_transported(self, i: int) -> bool:
        return bool(self._records[i].get("transported", False))

    def _on_handover(self, unit: EmergencyUnit) -> None:
        unit.pos_node = int(unit.route[0][-1]) if unit.route is not None else unit.pos_node
        unit.route = None
        self._return(unit)

    def _return(self, unit: EmergencyUnit) -> None:
        unit.incident = None
        unit.token += 1
        unit.set_state("returning", self.now)
        self._serve_queue(unit)
        if unit.state != "returning":
            return
        unit.route = self._route_to(unit.pos_node, unit.post_pos, self.now)
        if unit.route is None:  # cut off from its station: stays where it is
            self.n_stranded += 1
            arrive = self.now
        else:
            arrive = float(unit.route[1][-1])
        self._push(arrive, "arrive_home", unit.unit_id, unit.token)

    def _on_arrive_home(self, unit: EmergencyUnit) -> None:
        unit.route = None
        unit.pos_node = unit.post_pos
        unit.set_state("available", self.now)
        if self.params.move_up and unit.post_station == unit.home_station:
            for v in self.units:  # the home unit is back: moved-up guests go home
                if (v is not unit and v.post_station == unit.home_station
                        and v.home_station != v.post_station and v.unit_type == unit.unit_type
                        and v.state == "available"):
                    self._relocate(v, v.home_station)
        self._serve_queue(unit)

    def _on_arrive_post(self, unit: EmergencyUnit) -> None:
        unit.route = None
        unit.pos_node = unit.post_pos

    def _serve_queue(self, unit: EmergencyUnit) -> None:
        if not self._queue:
            return
        self._queue.sort(key=lambda q: (q[0], q[3], q[1], q[2]))
        for k, (_, i, r, since) in enumerate(self._queue):
            rec = self._records[i]
            types = requirements_for(rec["type"], rec["priority"],
                                     float(self._levels[i]), self.params)[r]
            if unit.unit_type in types:
                if not np.isfinite(self._eta(unit, i, r)[0]):
                    continue
                del self._queue[k]
                self._dispatch(unit, i, r, queued_s=self.now - since)
                return

    # ----------------------------------------------------------------- move-up
    def _coverage_rows(self, unit_type: str) -> tuple[np.ndarray, np.ndarray]:
        """(station positions hosting the type, covered[station, building-node] booleans)."""
        hit = self._cover.get(unit_type)
        if hit is None:
            hosts = sorted({s.pos for s in self.stations})
            bpos = np.array([self.node_pos[n] for n in self.buildings["road_node"]])
            t = coverage_times(self.arrays, np.array(hosts), bpos)
            hit = (np.array(hosts), t <= UNIT_TYPES[unit_type][1])
            self._cover[unit_type] = hit
        return hit

    def _move_up(self, leaving: EmergencyUnit) -> None:
        t = leaving.unit_type
        post = leaving.post_station
        if any(u.post_station == post and u.unit_type == t and u.state == "available"
               for u in self.units):
            return
        hosts, cov = self._coverage_rows(t)
        w = (self.buildings.get("population", 0) + self.buildings.get("jobs", 0))
        w = np.asarray(w, dtype=float) + 1e-3
        row = {int(p): k for k, p in enumerate(hosts)}
        idle = [u for u in self.units
                if u.unit_type == t and u.state == "available" and u.route is None]
        if not idle:
            return
        def covered(posts: list[int]) -> float:
            if not posts:
                return 0.0
            return float(w[cov[[row[p] for p in posts]].any(axis=0)].sum())
        base_posts = [u.post_pos for u in idle]
        base = covered(base_posts)
        target = self.station_by_id[post].pos
        best, gain = None, 1e-9
        for k, u in enumerate(idle):
            g = covered(base_posts[:k] + base_posts[k + 1:] + [target]) - base
            if g > gain:
                best, gain = u, g
        if best is not None:
            self.n_moveups += 1
            self._relocate(best, post)

    def _relocate(self, unit: EmergencyUnit, station_id: int) -> None:
        st = self.station_by_id[station_id]
        pos, offset = unit.position_at(self.now)
        unit.post_station, unit.post_pos = station_id, st.pos
        unit.token += 1
        unit.route = self._route_to(pos, st.pos, self.now + offset)
        if unit.route is None:  # the new post cannot be reached: the unit stays put
            unit.pos_node = pos
            return
        arrive = float(unit.route[1][-1])
        self._push(arrive, "arrive_post", unit.unit_id, unit.token)

    # ----------------------------------------------------------------- results
    def tables(self) -> dict[str, pd.DataFrame]:
        """``incidents`` (contract columns + status, unit_type, node), ``dispatches``, ``units``
        and ``timeseries`` (series ``units_busy_n`` and ``queue_n`` at every ``advance``).

        Built once per state (``kpis``, ``kpi_notes`` and the model's results all read them);
        each call returns copies."""
        if self._tables is None or self._tables[0] != self._advanced:
            self._tables = (self._advanced, self._build_tables())
        return {name: df.copy() for name, df in self._tables[1].items()}

    def _build_tables(self) -> dict[str, pd.DataFrame]:
        recs = [self._records[i] for i in sorted(self._records)]
        cols = ["incident_id", "time_s", "type", "priority", "building_id", "unit_id",
                "turnout_s", "travel_s", "response_s", "queued_s", "status", "unit_type",
                "node", "n_units"]
        incidents = pd.DataFrame(recs, columns=cols)
        if not incidents.empty:
            incidents["node"] = self.arrays.node_ids[incidents["node"].to_numpy(dtype=int)]
        queued = {q[1] for q in self._queue}
        if queued:
            mask = np.isin(np.array(sorted(self._records)), list(queued))
            incidents.loc[mask & (incidents["status"] == "open"), "status"] = "queued"
        dispatches = pd.DataFrame(self._dispatches, columns=[
            "incident_id", "unit_id", "unit_type", "requirement", "dispatch_s", "origin_node",
            "turnout_s", "travel_s", "freeflow_s", "arrive_s", "queued_s", "from_quarters"])
        elapsed = max(self.now, 1e-9)
        units = pd.DataFrame([{
            "unit_id": u.unit_id, "unit_type": u.unit_type, "home_station": u.home_station,
            "station_kind": self.station_by_id[u.home_station].kind,
            "state": u.state,
            "busy_s": u.busy_s + (self.now - u.busy_since if u.state != "available" else 0.0),
            "calls": int((dispatches["unit_id"] == u.unit_id).sum()),
        } for u in self.units], columns=["unit_id", "unit_type", "home_station", "station_kind",
                                         "state", "busy_s", "calls"])
        units["utilisation"] = units["busy_s"] / elapsed
        ts = pd.DataFrame(self._series, columns=["time_s", "units_busy_n", "queue_n"])
        timeseries = ts.melt(id_vars="time_s", var_name="series", value_name="value")[
            ["series", "time_s", "value"]]
        return {"incidents": incidents, "dispatches": dispatches, "units": units,
                "timeseries": timeseries}

    def positions(self) -> pd.DataFrame:
        """Where every unit is now: unit_id, unit_type, state, node, x, y (city CRS, m).

        A driving unit is reported at the next road node it reaches (positions are per node).
        """
        rows = []
        for u in self.units:
            pos, _ = u.position_at(self.now)
            rows.append((u.unit_id, u.unit_type, u.state, self.arrays.node_ids[pos],
                         float(self.arrays.x[pos]), float(self.arrays.y[pos])))
        return pd.DataFrame(rows, columns=["unit_id", "unit_type", "state", "node", "x", "y"])

    def coverage(self) -> np.ndarray:
        """Travel time (s) from the nearest open station to every building, current link costs."""
        bpos = np.array([self.node_pos[n] for n in self.buildings["road_node"]], dtype=np.int64)
        if not self.stations:
            return np.full(bpos.shape[0], np.inf)
        src = np.array(sorted({s.pos for s in self.stations}))
        d = csgraph.dijkstra(self._matrix(), directed=True, indices=src, min_only=True)
        return d[bpos]

    def kpi_notes(self) -> dict[str, str]:
        """Why a KPI is NaN (KPI name -> reason), for the manifest and the app."""
        t = self.tables()
        return emergency_kpi_notes(t["incidents"], t["units"], t["dispatches"])

    def kpis(self) -> dict[str, float]:
        t = self.tables()
        k = emergency_kpis(t["incidents"], t["units"], t["dispatches"], params=self.params)
        k["candidates_thinned_n"] = float(self.n_thinned)
        k["moveups_n"] = float(self.n_moveups)
        k["units_stranded_n"] = float(self.n_stranded)
        cov = self.coverage()
        if not self.stations or not cov.size:  # no stations: NaN (see kpi_notes), not inf/0
            k["coverage_p90_s"] = k["coverage_within_240s_share"] = float("nan")
        else:
            k["coverage_p90_s"] = float(np.percentile(cov, 90))
            k["coverage_within_240s_share"] = float((cov <= 240.0).mean())
        return k


def run_emergency(
    city: City,
    params: EmergencyParams | None = None,
    *,
    seed: int,
    duration_s: float = 86400.0,
    incidents: pd.DataFrame | None = None,
    link_times: np.ndarray | None = None,
    start: Any = None,
    step_s: float = 3600.0,
) -> EmergencyEngine:
    """Run the emergency engine alone over ``duration_s``; returns the finished engine.

    ``link_times``: fixed experienced link times (s per edge_id) standing in for traffic.
    """
    params = params or EmergencyParams()
    model = StandaloneModel(city, seed=seed, duration_s=duration_s, start=start)
    engine = EmergencyEngine(model, params, incidents=incidents, link_times=link_times)
    model.emergency = engine
    t = 0.0
    while t < duration_s:
        t = min(duration_s, t + step_s)
        engine.advance(t)
    return engine
