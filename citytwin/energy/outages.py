"""Outages: failed substations, lines or transformers → who is dark, for how long, at what cost.

Topology decides supply: a building is supplied when its transformer is connected to an in-service
substation over in-service MV lines and *closed* ties (ties are normally open). When an element
fails, everything below it in the radial grid goes dark. Restoration then closes normally-open tie
switches that connect a dark part to a live one, one at a time, greedily, and only when the live
side can carry the extra load: the dark part's demand (kVA) must fit in the headroom of every MV
cable on the path from the live substation to the tie, of the tie cable, and of the substation
(``rated_mva``). Tie switching takes ``switching_time_s`` (default 30 min, manual switching — an
assumption); the failed element itself is back after the failure's duration.

KPIs follow IEEE 1366 (SAIDI-style): customer-minutes of interruption, SAIDI = customer-minutes
/ customers served, SAIFI = customers interrupted / customers served, and energy not served
(kWh, the demand of dark buildings integrated over the steps). Customers per building are the
power graph's ``customers`` (dwellings of a residential building, 1 otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandas as pd

from citytwin.energy.grid import COS_PHI, power_graph_of
from citytwin.errors import InputError

__all__ = [
    "Failure",
    "OutageState",
    "OutageSchedule",
    "asset_ids",
    "supplied_transformers",
    "unsupplied_buildings",
    "restoration",
    "outage_kpis",
    "simulate_outages",
]

_CABLE_A = 421.0  # NA2XS2Y 1x240 thermal limit, A (see citytwin.network.power)


@dataclass(frozen=True)
class Failure:
    """``asset_id`` (substation, transformer or line/tie ``element_id``) fails at ``start_s`` for
    ``duration_s`` seconds."""

    asset_id: str
    start_s: float
    duration_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(frozen=True)
class OutageState:
    """Grid state at one time: what to pass to ``GridSolver.solve`` and who is dark."""

    out_of_service: frozenset[str]
    closed_ties: frozenset[str]
    unsupplied: np.ndarray  # bool per building, in the schedule's building order


def asset_ids(G: nx.Graph) -> dict[str, str]:
    """Every asset that can fail → its kind (``substation``, ``transformer``, ``mv_line``, ``tie``)."""
    out = {str(n): d["kind"] for n, d in G.nodes(data=True) if d["kind"] in ("substation", "transformer")}
    out.update({d["element_id"]: d["kind"] for *_, d in G.edges(data=True)
                if d["kind"] in ("mv_line", "tie", "lv_line")})
    return out


def _check_ids(G: nx.Graph, ids: Iterable[str], what: str) -> None:
    known = asset_ids(G)
    problems = [f"{what}: unknown asset id {a!r} (expected a substation, transformer or line id "
                "of the power graph, e.g. 'sub0', 't3', 'line12')" for a in ids if a not in known]
    if problems:
        raise InputError(problems, source="outages")


def _mv_graph(G: nx.Graph, failed: frozenset[str], closed_ties: frozenset[str]) -> nx.Graph:
    """MV operating graph: substations, MV nodes, transformers; failed items and open ties removed."""
    H = nx.Graph()
    H.add_nodes_from(n for n, d in G.nodes(data=True)
                     if d["kind"] != "building" and n not in failed)
    for u, v, d in G.edges(data=True):
        k = d["kind"]
        if k in ("service",) or d["element_id"] in failed:
            continue
        if k == "tie" and d["element_id"] not in closed_ties:
            continue
        if u in H and v in H:
            H.add_edge(u, v)
    return H


def supplied_transformers(G: nx.Graph, failed: Iterable[str] = (), *,
                          closed_ties: Iterable[str] = ()) -> set[str]:
    """Transformers connected to a live substation with ``failed`` elements out."""
    failed_f, ties_f = frozenset(failed), frozenset(closed_ties)
    _check_ids(G, failed_f | ties_f, "failed/closed_ties")
    H = _mv_graph(G, failed_f, ties_f)
    subs = [n for n, d in G.nodes(data=True) if d["kind"] == "substation" and n in H]
    live: set[str] = set()
    for s in subs:
        if s not in live:
            live |= nx.node_connected_component(H, s)
    return {n for n in live if G.nodes[n]["kind"] == "transformer"}


def _building_order(G: nx.Graph, building_ids: Sequence[object] | None) -> tuple[np.ndarray, np.ndarray]:
    rows = sorted((d["building_id"], d["transformer"]) for _, d in G.nodes(data=True) if d["kind"] == "building")
    tr = dict(rows)
    ids = np.asarray([b for b, _ in rows] if building_ids is None else list(building_ids))
    missing = [b for b in ids.tolist() if b not in tr]
    if missing:
        raise InputError([f"building {b} is not in the power graph" for b in missing[:20]], source="outages")
    return ids, np.array([tr[b] for b in ids.tolist()], dtype=object)


def unsupplied_buildings(G: nx.Graph, failed: Iterable[str] = (), *, closed_ties: Iterable[str] = (),
                         building_ids: Sequence[object] | None = None) -> np.ndarray:
    """Bool per building (``building_ids`` order, default sorted ids): no path to a live substation."""
    live = supplied_transformers(G, failed, closed_ties=closed_ties)
    _, tr = _building_order(G, building_ids)
    return np.array([t not in live for t in tr.tolist()], dtype=bool)


def _tree_flows(G: nx.Graph, H: nx.Graph, load_kva: dict[str, float]) -> tuple[dict, dict, dict]:
    """Per live substation: BFS parents, flow (kVA) on every edge child→parent, and root of each node."""
    parent: dict[str, str] = {}
    root: dict[str, str] = {}
    flow: dict[str, float] = {}
    for s in sorted(n for n, d in G.nodes(data=True) if d["kind"] == "substation" and n in H):
        if s in root:
            continue
        order = [s]
        root[s] = s
        for u, v in nx.bfs_edges(H, s):
            parent[v] = u
            root[v] = s
            order.append(v)
        for n in reversed(order):
            flow[n] = flow.get(n, 0.0) + load_kva.get(n, 0.0)
            if n in parent:
                flow[parent[n]] = flow.get(parent[n], 0.0) + flow[n]
    return parent, root, flow


def restoration(G: nx.Graph, failed: Iterable[str], *, load_kw: dict[str, float] | None = None,
                respect_capacity: bool = True, cos_phi: float = COS_PHI) -> frozenset[str]:
    """Tie switches to close after ``failed`` (greedy, capacity-checked): their element ids.

    ``load_kw``: demand per transformer id at the time (default: the transformers' design load).
    """
    failed_f = frozenset(failed)
    _check_ids(G, failed_f, "failed")
    if load_kw is None:
        load_kva = {n: float(d.get("design_kva", 0.0)) for n, d in G.nodes(data=True)
                    if d["kind"] == "transformer"}
    else:
        load_kva = {t: float(p) / cos_phi for t, p in load_kw.items()}
    mv_kv = float(G.graph.get("mv_kv", 20.0))
    cable_kva = math.sqrt(3) * mv_kv * _CABLE_A
    ties = sorted(d["element_id"] for *_, d in G.edges(data=True) if d["kind"] == "tie")
    tie_edge = {d["element_id"]: (u, v, d) for u, v, d in G.edges(data=True) if d["kind"] == "tie"}
    closed: set[str] = set()
    while True:
        H = _mv_graph(G, failed_f, frozenset(closed))
        parent, root, flow = _tree_flows(G, H, load_kva)
        best = None
        for t in ties:
            if t in closed or t in failed_f:
                continue
            u, v, d = tie_edge[t]
            if u not in H or v not in H:
                continue
            if (u in root) == (v in root):
                continue  # both live or both dark
            live_end, dead_end = (u, v) if u in root else (v, u)
            dead = nx.node_connected_component(H, dead_end)
            extra = sum(load_kva.get(n, 0.0) for n in dead)
            if respect_capacity:
                ok = extra <= int(d.get("n_cables", 1)) * cable_kva
                n = live_end
                while ok and n in parent:  # cables up to the substation
                    p = parent[n]
                    cap = int(G[p][n].get("n_cables", 1)) * cable_kva
                    ok = flow[n] + extra <= cap
                    n = p
                s = root[live_end]
                ok = ok and flow[s] + extra <= float(G.nodes[s]["rated_mva"]) * 1000.0
                if not ok:
                    continue
            key = (-extra, t)  # restore the most load first
            if best is None or key < best[0]:
                best = (key, t)
        if best is None:
            return frozenset(closed)
        closed.add(best[1])


class OutageSchedule:
    """Failures over time → the grid state at any time ``t_s``.

    Tie restoration is decided when the set of active failures changes (with the demand then,
    if ``state`` is given ``demand_kw``) and takes effect ``switching_time_s`` later.
    """

    def __init__(self, city: object, failures: Sequence[Failure], *, switching_time_s: float = 1800.0,
                 restore_with_ties: bool = True, respect_capacity: bool = True,
                 building_ids: Sequence[object] | None = None) -> None:
        G = power_graph_of(city)
        problems = []
        known = asset_ids(G)
        for i, f in enumerate(failures):
            if f.asset_id not in known:
                problems.append(f"failure {i}: unknown asset id {f.asset_id!r} (expected a substation, "
                                "transformer or line id of the power graph, e.g. 'sub0', 't3', 'line12')")
            if not (np.isfinite(f.duration_s) and f.duration_s > 0):
                problems.append(f"failure {i} ({f.asset_id}): duration_s={f.duration_s}, expected > 0")
            if not np.isfinite(f.start_s) or f.start_s < 0:
                problems.append(f"failure {i} ({f.asset_id}): start_s={f.start_s}, expected >= 0")
        if switching_time_s < 0:
            problems.append(f"switching_time_s={switching_time_s}, expected >= 0")
        if problems:
            raise InputError(problems, source="OutageSchedule")
        self.graph = G
        self.failures = tuple(failures)
        self.switching_time_s = float(switching_time_s)
        self.restore_with_ties = restore_with_ties
        self.respect_capacity = respect_capacity
        if building_ids is None:
            b = getattr(city, "buildings", None)
            building_ids = list(b.index) if b is not None else None
        self.building_ids, self._b_tr = _building_order(G, building_ids)
        self._b_pos = {b: i for i, b in enumerate(self.building_ids.tolist())}
        self._ties_cache: dict[frozenset[str], frozenset[str]] = {}
        self._live_cache: dict[tuple[frozenset[str], frozenset[str]], np.ndarray] = {}

    def active(self, t_s: float) -> frozenset[str]:
        """Ids of the elements failed at ``t_s``."""
        return frozenset(f.asset_id for f in self.failures if f.start_s <= t_s < f.end_s)

    def _since(self, t_s: float, failed: frozenset[str]) -> float:
        """Time at which the current set of active failures began."""
        events = sorted({f.start_s for f in self.failures} | {f.end_s for f in self.failures})
        last = 0.0
        for e in events:
            if e <= t_s:
                last = e
        return last if failed else t_s

    def state(self, t_s: float, *, demand_kw: np.ndarray | None = None) -> OutageState:
        """Grid state at ``t_s``; ``demand_kw`` (per building) sizes the restoration check."""
        failed = self.active(t_s)
        ties: frozenset[str] = frozenset()
        if failed and self.restore_with_ties and t_s - self._since(t_s, failed) >= self.switching_time_s:
            if failed not in self._ties_cache:
                load = None
                if demand_kw is not None:
                    s = pd.Series(np.asarray(demand_kw, float), index=self._b_tr).groupby(level=0).sum()
                    load = s.to_dict()
                self._ties_cache[failed] = restoration(self.graph, failed, load_kw=load,
                                                       respect_capacity=self.respect_capacity)
            ties = self._ties_cache[failed]
        key = (failed, ties)
        if key not in self._live_cache:
            live = supplied_transformers(self.graph, failed, closed_ties=ties) if failed else None
            self._live_cache[key] = (np.zeros(len(self._b_tr), dtype=bool) if live is None else
                                     np.array([t not in live for t in self._b_tr.tolist()], dtype=bool))
        return OutageState(out_of_service=failed, closed_ties=ties, unsupplied=self._live_cache[key])

    def customers(self) -> np.ndarray:
        """Customers per building (schedule order)."""
        c = {d["building_id"]: int(d.get("customers", 1)) for _, d in self.graph.nodes(data=True)
             if d["kind"] == "building"}
        return np.array([c[b] for b in self.building_ids.tolist()], dtype=float)


def outage_kpis(unsupplied: np.ndarray, demand_kw: np.ndarray, customers: np.ndarray, *, step_s: float
                ) -> dict[str, float]:
    """KPIs from (time × buildings) ``unsupplied`` flags and demand (kW) at a fixed step.

    ``energy_not_served_kwh`` = Σ demand·dt over dark (step, building); ``customer_minutes`` =
    Σ customers·dt/60; ``saidi_min`` = customer-minutes / customers; ``saifi`` = customers
    that saw at least one interruption / customers (an interruption = a dark run of steps).
    """
    u = np.asarray(unsupplied, dtype=bool)
    d = np.asarray(demand_kw, dtype=float)
    c = np.asarray(customers, dtype=float)
    if u.shape != d.shape or u.ndim != 2 or u.shape[1] != c.shape[0]:
        raise InputError([f"shapes: unsupplied {u.shape}, demand_kw {d.shape}, customers {c.shape}; "
                          "expected (time, buildings) twice and (buildings,)"], source="outage_kpis")
    dt_h = step_s / 3600.0
    starts = u.copy()
    starts[1:] &= ~u[:-1]
    interruptions = starts.sum(axis=0)
    total = float(c.sum()) or 1.0
    cmin = float((u * c[None, :]).sum() * step_s / 60.0)
    return {
        "energy_not_served_kwh": float((d * u).sum() * dt_h),
        "customer_minutes": cmin,
        "customers_interrupted": float((c * (interruptions > 0)).sum()),
        "saidi_min": cmin / total,
        "saifi": float((c * interruptions).sum()) / total,
        "buildings_interrupted": float((interruptions > 0).sum()),
    }


def simulate_outages(city: object, failures: Sequence[Failure], demand_kw: np.ndarray, *, step_s: float,
                     start_s: float = 0.0, **options: object) -> tuple[np.ndarray, dict[str, float]]:
    """Topology-only outage run: (unsupplied (time × buildings), KPIs) for a demand matrix.

    ``demand_kw`` is (time × buildings) at ``step_s`` from ``start_s``; ``options`` go to
    :class:`OutageSchedule`.
    """
    sched = OutageSchedule(city, failures, **options)  # type: ignore[arg-type]
    d = np.asarray(demand_kw, dtype=float)
    if d.ndim != 2 or d.shape[1] != len(sched.building_ids):
        raise InputError([f"demand_kw: shape {d.shape}, expected (time, {len(sched.building_ids)})"],
                         source="simulate_outages")
    u = np.zeros(d.shape, dtype=bool)
    for k in range(d.shape[0]):
        u[k] = sched.state(start_s + k * step_s, demand_kw=d[k]).unsupplied
    return u, outage_kpis(u, d, sched.customers(), step_s=step_s)
