"""Outages: failed substations, lines or transformers → who is dark, for how long, at what cost.

Topology decides supply: a building is supplied when its transformer is connected to an in-service
substation over in-service MV lines and *closed* ties (ties are normally open). When an element
fails, everything below it in the radial grid goes dark. Restoration then closes normally-open tie
switches that connect a dark part to a live one, one at a time, greedily, and only when the live
side can carry the extra load: the dark part's demand (kVA) must fit in the headroom of every MV
cable on the path from the live substation to the tie, of the tie cable, and of the substation
(``rated_mva``), each at 95 % of its rating (margin for losses and voltage drop); when a whole dark area does not fit, the part nearest the tie is picked up and the
lines at its edge are opened (sectionalizing, as operators do at ring main units). Tie switching takes ``switching_time_s`` (default 30 min, manual switching — an
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
from pydantic import BaseModel, ConfigDict, Field

from citytwin.energy.grid import COS_PHI, power_graph_of
from citytwin.errors import InputError

__all__ = [
    "Failure",
    "FailureSpec",
    "OutageState",
    "OutageSchedule",
    "asset_ids",
    "supplied_transformers",
    "unsupplied_buildings",
    "restoration",
    "restoration_plan",
    "RestorationPlan",
    "outage_kpis",
    "simulate_outages",
]

_CABLE_A = 421.0  # NA2XS2Y 1x240 thermal limit, A (see citytwin.network.power)
_MARGIN = 0.95


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


class FailureSpec(BaseModel):
    """A power asset out of service: ``asset`` (a substation or transformer node id, or a
    line/tie ``element_id`` — the keys of :func:`asset_ids`) fails ``at_h`` hours after the
    period start for ``duration_h`` hours."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    asset: str = Field(min_length=1, description="substation/transformer id or line element_id")
    at_h: float = Field(ge=0, description="hours after the period start")
    duration_h: float = Field(default=4.0, gt=0, description="hours out of service")

    def failure(self) -> Failure:
        return Failure(self.asset, self.at_h * 3600.0, self.duration_h * 3600.0)


def unknown_assets(G: nx.Graph | None, specs: Iterable[FailureSpec]) -> list[str]:
    """One problem per spec whose asset is not a failable asset of ``G`` (the same check for
    the scenario and the engine)."""
    known = set(asset_ids(G)) if G is not None else set()
    out = []
    for spec in specs:
        if spec.asset not in known:
            some = sorted(known)[:6]
            out.append(f"no power asset {spec.asset!r} in the city grid (expected a substation "
                       f"or transformer node id or a line/tie element_id, e.g. {some})")
    return out


@dataclass(frozen=True)
class OutageState:
    """Grid state at one time: what to pass to ``GridSolver.solve`` and who is dark.

    ``out_of_service`` = the failed elements plus any lines opened to sectionalize.
    """

    out_of_service: frozenset[str]
    closed_ties: frozenset[str]
    unsupplied: np.ndarray  # bool per building, in the schedule's building order


def asset_ids(G: nx.Graph) -> dict[str, str]:
    """Every asset that can fail → its kind (``substation``, ``transformer``, ``mv_line``, ``tie``)."""
    out = {str(n): d["kind"] for n, d in G.nodes(data=True) if d["kind"] in ("substation", "transformer")}
    out.update({d["element_id"]: d["kind"] for *_, d in G.edges(data=True)
                if d["kind"] in ("mv_line", "tie", "lv_line")})
    return out


def _check_ids(G: nx.Graph, ids: Iterable[str], what: str, known: dict[str, str] | None = None) -> None:
    known = asset_ids(G) if known is None else known
    problems = [f"{what}: unknown asset id {a!r} (expected a substation, transformer or line id "
                "of the power graph, e.g. 'sub0', 't3', 'line12')" for a in ids if a not in known]
    if problems:
        raise InputError(problems, source="outages")


class _Topology:
    """The static MV structure of a power graph (built once, copied per operating state)."""

    def __init__(self, G: nx.Graph) -> None:
        self.G = G
        self.known = asset_ids(G)
        base = nx.Graph()
        base.add_nodes_from(n for n, d in G.nodes(data=True) if d["kind"] != "building")
        self.ties: dict[str, tuple[str, str, int]] = {}
        for u, v, d in G.edges(data=True):
            if d["kind"] == "tie":
                self.ties[d["element_id"]] = (u, v, int(d.get("n_cables", 1)))
            elif d["kind"] != "service" and u in base and v in base:
                base.add_edge(u, v, element_id=d["element_id"], n_cables=int(d.get("n_cables", 1)))
        self.base = base
        self.subs = sorted(n for n, d in G.nodes(data=True) if d["kind"] == "substation")
        self.design_kva = {n: float(d.get("design_kva", 0.0)) for n, d in G.nodes(data=True)
                           if d["kind"] == "transformer"}
        mv_kv = float(G.graph.get("mv_kv", 20.0))
        # usable rating: 95 % of thermal, a margin for losses and the voltage drop under load
        self.cable_kva = math.sqrt(3) * mv_kv * _CABLE_A * _MARGIN

    def operating(self, failed: frozenset[str], closed_ties: frozenset[str] = frozenset()) -> nx.Graph:
        H = self.base.copy()
        H.remove_nodes_from([a for a in failed if a in H])
        gone = [(u, v) for u, v, eid in H.edges(data="element_id") if eid in failed]
        H.remove_edges_from(gone)
        for t in closed_ties:
            u, v, n = self.ties[t]
            if t not in failed and u in H and v in H:
                H.add_edge(u, v, element_id=t, n_cables=n)
        return H

    def live(self, H: nx.Graph) -> set[str]:
        out: set[str] = set()
        for s in self.subs:
            if s in H and s not in out:
                out |= nx.node_connected_component(H, s)
        return out


def supplied_transformers(G: nx.Graph, failed: Iterable[str] = (), *,
                          closed_ties: Iterable[str] = (), _topo: _Topology | None = None) -> set[str]:
    """Transformers connected to a live substation with ``failed`` elements out (and lines in
    ``failed`` open) and ``closed_ties`` closed."""
    failed_f, ties_f = frozenset(failed), frozenset(closed_ties)
    topo = _topo or _Topology(G)
    bad = [a for a in sorted(failed_f | ties_f) if a not in topo.known]
    bad += [t for t in sorted(ties_f) if t in topo.known and t not in topo.ties]
    if bad:
        raise InputError([f"unknown asset id {a!r} (expected a substation, transformer or line id of "
                          "the power graph, e.g. 'sub0', 't3', 'line12'; ties for closed_ties)"
                          for a in bad], source="outages")
    live = topo.live(topo.operating(failed_f, ties_f))
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


def _tree_flows(topo: _Topology, H: nx.Graph, load_kva: dict[str, float]) -> tuple[dict, dict, dict]:
    """BFS parents, flow (kVA) on each edge child→parent, and the feeding substation of each node."""
    parent: dict[str, str] = {}
    root: dict[str, str] = {}
    flow: dict[str, float] = {}
    for s in topo.subs:
        if s not in H or s in root:
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


@dataclass(frozen=True)
class RestorationPlan:
    """Tie switches to close and lines to open (sectionalizing) after a failure."""

    closed_ties: frozenset[str]
    opened_lines: frozenset[str]


def restoration_plan(G: nx.Graph, failed: Iterable[str], *, load_kw: dict[str, float] | None = None,
                     respect_capacity: bool = True, sectionalize: bool = True, cos_phi: float = COS_PHI,
                     _topo: _Topology | None = None) -> RestorationPlan:
    """Greedy restoration after ``failed``: close the tie that re-supplies the most load, repeat.

    With ``respect_capacity`` the picked-up load (kVA) must fit the tie cable, every MV cable on
    the live side up to the substation, and the substation. When a whole dark area does not fit and
    ``sectionalize`` is on, only the part nearest to the tie is picked up (breadth-first from the
    tie, while it fits) and the lines at its edge are opened. ``load_kw``: demand per transformer id
    (default: design loads).
    """
    failed_f = frozenset(failed)
    topo = _topo or _Topology(G)
    _check_ids(G, failed_f, "failed", topo.known)
    load_kva = (dict(topo.design_kva) if load_kw is None
                else {t: float(p) / cos_phi for t, p in load_kw.items()})
    H = topo.operating(failed_f)
    closed: set[str] = set()
    opened: set[str] = set()
    while True:
        parent, root, flow = _tree_flows(topo, H, load_kva)
        best: tuple[tuple[float, str], str, set[str], list[tuple[str, str]]] | None = None
        for t in sorted(topo.ties):
            u, v, n_cab = topo.ties[t]
            if t in closed or t in failed_f or u not in H or v not in H or (u in root) == (v in root):
                continue
            live_end, dead_end = (u, v) if u in root else (v, u)
            head = math.inf
            if respect_capacity:
                head = n_cab * topo.cable_kva
                n = live_end
                while n in parent:  # cables up to the substation
                    p = parent[n]
                    head = min(head, H[p][n]["n_cables"] * topo.cable_kva - flow[n])
                    n = p
                s = root[live_end]
                head = min(head, float(G.nodes[s]["rated_mva"]) * 1000.0 * _MARGIN - flow[s])
            dark = nx.node_connected_component(H, dead_end)
            total = sum(load_kva.get(n, 0.0) for n in dark)
            if total <= head:
                pick, cut = dark, []
            elif not sectionalize or head <= 0:
                continue
            else:
                pick, acc, queue = {dead_end}, load_kva.get(dead_end, 0.0), [dead_end]
                if acc > head:
                    continue
                while queue:
                    x = queue.pop(0)
                    for y in sorted(H.neighbors(x), key=str):
                        if y in pick or y not in dark:
                            continue
                        w = load_kva.get(y, 0.0)
                        if acc + w <= head:
                            pick.add(y)
                            acc += w
                            queue.append(y)
                cut = [(x, y) for x in pick for y in H.neighbors(x) if y in dark and y not in pick]
            gain = sum(load_kva.get(n, 0.0) for n in pick)
            if gain <= 0:
                continue
            key = (-gain, t)
            if best is None or key < best[0]:
                best = (key, t, pick, cut)
        if best is None:
            return RestorationPlan(frozenset(closed), frozenset(opened))
        _, t, _, cut = best
        for x, y in cut:
            opened.add(H[x][y]["element_id"])
            H.remove_edge(x, y)
        u, v, n_cab = topo.ties[t]
        H.add_edge(u, v, element_id=t, n_cables=n_cab)
        closed.add(t)


def restoration(G: nx.Graph, failed: Iterable[str], *, load_kw: dict[str, float] | None = None,
                respect_capacity: bool = True, cos_phi: float = COS_PHI) -> frozenset[str]:
    """Tie switches to close after ``failed`` without sectionalizing (see :func:`restoration_plan`)."""
    return restoration_plan(G, failed, load_kw=load_kw, respect_capacity=respect_capacity,
                            sectionalize=False, cos_phi=cos_phi).closed_ties


class OutageSchedule:
    """Failures over time → the grid state at any time ``t_s``.

    Tie restoration is decided when the set of active failures changes (with the demand then,
    if ``state`` is given ``demand_kw``) and takes effect ``switching_time_s`` later.
    """

    def __init__(self, city: object, failures: Sequence[Failure], *, switching_time_s: float = 1800.0,
                 restore_with_ties: bool = True, respect_capacity: bool = True, sectionalize: bool = True,
                 building_ids: Sequence[object] | None = None) -> None:
        G = power_graph_of(city)
        problems = []
        self._topo = _Topology(G)
        known = self._topo.known
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
        self.sectionalize = sectionalize
        if building_ids is None:
            b = getattr(city, "buildings", None)
            building_ids = list(b.index) if b is not None else None
        self.building_ids, self._b_tr = _building_order(G, building_ids)
        self._b_pos = {b: i for i, b in enumerate(self.building_ids.tolist())}
        self._plan_cache: dict[frozenset[str], RestorationPlan] = {}
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
        plan = RestorationPlan(frozenset(), frozenset())
        if failed and self.restore_with_ties and t_s - self._since(t_s, failed) >= self.switching_time_s:
            if failed not in self._plan_cache:
                load = None
                if demand_kw is not None:
                    s = pd.Series(np.asarray(demand_kw, float), index=self._b_tr).groupby(level=0).sum()
                    load = s.to_dict()
                self._plan_cache[failed] = restoration_plan(
                    self.graph, failed, load_kw=load, respect_capacity=self.respect_capacity,
                    sectionalize=self.sectionalize, _topo=self._topo)
            plan = self._plan_cache[failed]
        out = failed | plan.opened_lines
        key = (out, plan.closed_ties)
        if key not in self._live_cache:
            live = (supplied_transformers(self.graph, out, closed_ties=plan.closed_ties, _topo=self._topo)
                    if failed else None)
            self._live_cache[key] = (np.zeros(len(self._b_tr), dtype=bool) if live is None else
                                     np.array([t not in live for t in self._b_tr.tolist()], dtype=bool))
        return OutageState(out_of_service=out, closed_ties=plan.closed_ties, unsupplied=self._live_cache[key])

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
