"""Power flow on the city's grid with pandapower: export, and a solver for repeated steps.

:func:`to_pandapower` turns the power graph (see :mod:`citytwin.network.power`) into a pandapower
network:

- one MV bus per substation busbar, ``mv_node`` and transformer HV side; the external grid sits at
  each substation's MV busbar (``vm_pu`` = 1.02, the set point of the substation's on-load tap
  changer; the HV/MV transformer itself is not modelled — substation loading is
  ``|S_ext| / rated_mva``);
- MV cables ``NA2XS2Y 1x240 RM/25 12/20 kV`` (``6/10 kV`` at 10 kV) with ``parallel`` =
  ``n_cables`` of the graph edge; tie edges are lines with a normally-open line switch;
- MV/LV transformers with pandapower standard types ``"0.25/0.4/0.63 MVA 20/0.4 kV"``; 800 kVA
  units use a project type ``"0.8 MVA 20/0.4 kV"`` scaled from the 630 kVA data (vk 6 %);
- **LV aggregated per transformer area**: one 0.4 kV bus per transformer with the loads (one per
  building, or one per bus with ``aggregate_loads=True``) and PV ``sgen``\\ s on it. LV feeder
  voltage drop is not modelled.

:class:`GridSolver` keeps one network and, per step, writes the loads in place and runs the
power flow: pandapower (Newton-Raphson, numba) for the first step of each topology, then a
captured Z-bus fixed-point solve on pandapower's own admittance matrices (tested equal to
pandapower to 1e-7) for the following steps.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np
import pandas as pd
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

from citytwin.energy.admittance import MV_CABLE, GridLayout, build_admittance, grid_layout
from citytwin.errors import InputError

if TYPE_CHECKING:
    from citytwin.city import City

__all__ = ["PowerMap", "StepFlow", "GridSolver", "to_pandapower", "power_graph_of"]

log = logging.getLogger(__name__)

COS_PHI = 0.95
EXT_GRID_VM_PU = 1.02
V_MIN_PU, V_MAX_PU = 0.95, 1.05
# Reuse Ybus and the internal arrays between steps of one topology; only loads/PV change.
_RECYCLE = {"bus_pq": True, "trafo": False, "gen": False}


@dataclass
class PowerMap:
    """Graph ids ↔ pandapower table indices."""

    bus: dict[str, int] = field(default_factory=dict)  # node id -> bus (transformer: HV side)
    lv_bus: dict[str, int] = field(default_factory=dict)  # transformer id -> LV bus
    load: dict[Any, int] = field(default_factory=dict)  # building_id -> load index
    sgen: dict[Any, int] = field(default_factory=dict)  # building_id -> sgen index
    trafo: dict[str, int] = field(default_factory=dict)  # transformer node id -> trafo index
    line: dict[str, int] = field(default_factory=dict)  # element_id (mv_line, tie) -> line index
    switch: dict[str, int] = field(default_factory=dict)  # tie element_id -> switch index
    ext_grid: dict[str, int] = field(default_factory=dict)  # substation id -> ext_grid index
    building_transformer: dict[Any, str] = field(default_factory=dict)

    def element(self, asset_id: str) -> tuple[str, int]:
        """(pandapower table, index) of a substation, transformer, line or tie id."""
        for table, m in (("ext_grid", self.ext_grid), ("trafo", self.trafo), ("line", self.line)):
            if asset_id in m:
                return table, m[asset_id]
        raise KeyError(asset_id)


def power_graph_of(city_or_graph: City | nx.Graph) -> nx.Graph:
    """The power graph of a ``City`` (its ``.power``) or the graph itself."""
    if isinstance(city_or_graph, nx.Graph):
        return city_or_graph
    G = getattr(city_or_graph, "power", None)
    if not isinstance(G, nx.Graph):
        raise InputError([f"expected a City with a .power graph or an nx.Graph, got {type(city_or_graph).__name__}"])
    return G


def _ensure_trafo_type(net: Any, name: str, data: tuple[float, float, float, float, float, float]) -> None:
    import pandapower as pp

    if pp.std_type_exists(net, name, element="trafo"):
        return
    sn, vn_hv, vk, vkr, pfe, i0 = data
    base = pp.load_std_type(net, f"0.63 MVA {vn_hv:g}/0.4 kV", element="trafo")
    spec = {k: v for k, v in dict(base).items() if not (isinstance(v, float) and math.isnan(v))}
    spec.update(sn_mva=sn, vn_hv_kv=vn_hv, vn_lv_kv=0.4, vk_percent=vk, vkr_percent=vkr, pfe_kw=pfe,
                i0_percent=i0)
    pp.create_std_type(net, spec, name, element="trafo")


def to_pandapower(
    city: City | nx.Graph, *, aggregate_loads: bool = False, pv: bool = True, ext_vm_pu: float = EXT_GRID_VM_PU,
    cos_phi: float = COS_PHI,
) -> tuple[Any, PowerMap]:
    """Export the power graph of ``city`` (a City or the graph) to a pandapower network.

    Element indices follow :func:`citytwin.energy.admittance.grid_layout`. Loads start at each
    building's design (coincident) load ``design_kw`` with ``cos_phi``; PV sgens at 0. With
    ``aggregate_loads`` there is one load per transformer LV bus and ``PowerMap.load`` maps every
    building to its bus's load.
    """
    import pandapower as pp

    G = power_graph_of(city)
    mv_kv = float(G.graph.get("mv_kv", 20.0))
    if mv_kv not in MV_CABLE:
        raise InputError([f"power graph: mv_kv={mv_kv} not supported, expected one of {sorted(MV_CABLE)}"])
    lay = grid_layout(G)
    net = pp.create_empty_network(name=str(G.graph.get("name", "citytwin")))
    pm = _power_map(lay, aggregate_loads=aggregate_loads, pv=pv)
    tan = math.tan(math.acos(cos_phi))
    n_mv = len(lay.bus)
    pp.create_buses(net, n_mv, vn_kv=mv_kv, name=lay.bus_names[:n_mv], type="b",
                    geodata=lay.bus_xy[:n_mv])
    pp.create_buses(net, len(lay.lv_bus), vn_kv=0.4, name=lay.bus_names[n_mv:], type="b")
    for sub, _ in sorted(lay.ext_grid.items(), key=lambda kv: kv[1]):
        pp.create_ext_grid(net, lay.bus[sub], vm_pu=ext_vm_pu, name=str(sub))
    for name, data in sorted(lay.trafo_types.items()):
        _ensure_trafo_type(net, name, data)
    # one call per standard type, in layout order (the layout groups its rows by type)
    for std, rows in itertools.groupby(lay.trafo_rows, key=lambda r: r[1]):
        group = list(rows)
        pp.create_transformers(net, [lay.bus[r[0]] for r in group], [lay.lv_bus[r[0]] for r in group],
                               std_type=std, name=[str(r[0]) for r in group],
                               parallel=[r[2] for r in group])
    if lay.line_rows:
        pp.create_lines(net, [r[1] for r in lay.line_rows], [r[2] for r in lay.line_rows],
                        length_km=[r[3] for r in lay.line_rows], std_type=lay.cable,
                        name=[r[0] for r in lay.line_rows], parallel=[r[4] for r in lay.line_rows])
        if lay.switch:
            ties = sorted(lay.switch, key=lay.switch.__getitem__)
            pp.create_switches(net, [lay.line_rows[lay.line[e]][1] for e in ties], [lay.line[e] for e in ties],
                               et="l", closed=False, name=ties)
    blds = lay.buildings
    if aggregate_loads:
        p_tr: dict[str, float] = {}
        for _, d in blds:
            p_tr[d["transformer"]] = p_tr.get(d["transformer"], 0.0) + d.get("design_kw", 0.0)
        tr_ids = lay.transformers
        p = np.array([p_tr.get(t, 0.0) for t in tr_ids]) / 1000.0
        pp.create_loads(net, [lay.lv_bus[t] for t in tr_ids], p_mw=p, q_mvar=p * tan, name=tr_ids)
        if pv:
            pp.create_sgens(net, [lay.lv_bus[t] for t in tr_ids], p_mw=0.0, q_mvar=0.0, name=tr_ids)
    elif blds:
        buses = [lay.lv_bus[d["transformer"]] for _, d in blds]
        p = np.array([d.get("design_kw", 0.0) for _, d in blds]) / 1000.0
        pp.create_loads(net, buses, p_mw=p, q_mvar=p * tan, name=[f"b{b}" for b, _ in blds])
        if pv:
            pp.create_sgens(net, buses, p_mw=0.0, q_mvar=0.0, name=[f"b{b}" for b, _ in blds])
    return net, pm


def _power_map(lay: GridLayout, *, aggregate_loads: bool, pv: bool) -> PowerMap:
    """The graph id -> element index maps of ``lay`` (the same for the export and the own model)."""
    pm = PowerMap(bus=dict(lay.bus), lv_bus=dict(lay.lv_bus), trafo=dict(lay.trafo), line=dict(lay.line),
                  switch=dict(lay.switch), ext_grid=dict(lay.ext_grid))
    pm.building_transformer = {b: d["transformer"] for b, d in lay.buildings}
    if aggregate_loads:
        of = {t: i for i, t in enumerate(lay.transformers)}
        pm.load = {b: of[d["transformer"]] for b, d in lay.buildings}
        if pv:
            pm.sgen = dict(pm.load)
    else:
        pm.load = {b: i for i, (b, _) in enumerate(lay.buildings)}
        if pv:
            pm.sgen = dict(pm.load)
    return pm


@dataclass(frozen=True)
class StepFlow:
    """Result of one power flow step (kW, %, pu). Series are indexed by asset id."""

    converged: bool
    vm_min_pu: float
    vm_max_pu: float
    max_line_loading_pct: float
    max_trafo_loading_pct: float
    losses_kw: float
    ext_grid_kw: float
    load_kw: float  # load actually served (pandapower result)
    generation_kw: float  # PV actually fed in
    unsupplied_kw: float  # demand of buildings without supply this step
    n_voltage_violations: int  # buses outside [0.95, 1.05] pu
    n_overloads: int  # lines + transformers above 100 %
    trafo_loading_pct: pd.Series
    trafo_vm_pu: pd.Series  # LV bus voltage per transformer
    line_loading_pct: pd.Series
    substation_loading_pct: pd.Series
    unsupplied: np.ndarray  # bool per building (solver order)
    message: str = ""

    def assets(self) -> pd.DataFrame:
        """Tidy per-asset table: ``asset_id``, ``kind``, ``loading_pct``, ``vm_pu``."""
        parts = [
            pd.DataFrame({"asset_id": self.trafo_loading_pct.index, "kind": "transformer",
                          "loading_pct": self.trafo_loading_pct.to_numpy(),
                          "vm_pu": self.trafo_vm_pu.reindex(self.trafo_loading_pct.index).to_numpy()}),
            pd.DataFrame({"asset_id": self.line_loading_pct.index, "kind": "line",
                          "loading_pct": self.line_loading_pct.to_numpy(), "vm_pu": np.nan}),
            pd.DataFrame({"asset_id": self.substation_loading_pct.index, "kind": "substation",
                          "loading_pct": self.substation_loading_pct.to_numpy(), "vm_pu": np.nan}),
        ]
        return pd.concat(parts, ignore_index=True)


class _FastPF:
    """Warm steps on a fixed topology without pandapower's per-call overhead.

    Captured from a converged pandapower run (its Ybus, Yf, Yt and bus/branch order), it solves
    the same equations by the implicit Z-bus (fixed-point current injection) method with a
    factorized ``Y_pq,pq`` — the classic distribution-grid solver — and computes losses, ext grid
    power and loadings exactly as pandapower's result functions do. It declines (returns None)
    when the topology has isolated buses or PV buses, or when it does not converge; the caller
    then runs pandapower.
    """

    pq: np.ndarray
    ref: np.ndarray
    Y: Any
    lu: Any
    Yqr: Any
    Yf: Any
    Yt: Any
    V: np.ndarray
    base: float
    f: np.ndarray
    t: np.ndarray
    base_kv: np.ndarray
    nb: int
    load_bus: np.ndarray
    sgen_bus: np.ndarray
    load_live: np.ndarray
    sgen_live: np.ndarray
    ext_live: np.ndarray
    ext_bus: np.ndarray
    br_pos: np.ndarray
    lines: tuple[int, int]
    trafos: tuple[int, int]
    i_max: np.ndarray
    vn_t: np.ndarray
    sn_t: np.ndarray
    lv_live: np.ndarray
    lv_bus: np.ndarray

    @classmethod
    def capture(cls, net: Any) -> _FastPF | None:
        from pandapower.pypower.idx_brch import F_BUS, T_BUS
        from pandapower.pypower.idx_bus import BASE_KV

        ppc = net["_ppc"]
        if ppc is None or "internal" not in ppc:
            return None
        ppci = ppc["internal"]
        if ("Ybus" not in ppci or "branch_is" not in ppci or "pv" not in ppci or len(ppci["pv"])
                or not np.array_equal(ppci["bus"][:, 0].real, np.arange(ppci["bus"].shape[0]))):
            return None
        self = cls()
        # after the run, the lookup maps pandapower buses to the reordered ppc: in-service buses
        # first (= the ppci buses 0..n-1), isolated / out-of-service ones after them
        lookup = np.asarray(net._pd2ppc_lookups["bus"], dtype=np.int64)
        self.nb = ppci["bus"].shape[0]
        Y = ppci["Ybus"].tocsc()
        self.pq = np.asarray(ppci["pq"], dtype=np.int64)
        self.ref = np.asarray(ppci["ref"], dtype=np.int64)
        self.Y = ppci["Ybus"].tocsr()
        self.lu = splu(Y[self.pq][:, self.pq].tocsc())
        self.Yqr = Y[self.pq][:, self.ref].tocsr()
        self.V = np.asarray(ppci["V"], dtype=complex).copy()
        self.base = float(ppci["baseMVA"])
        self.Yf, self.Yt = ppci["Yf"].tocsr(), ppci["Yt"].tocsr()
        self.f = ppci["branch"][:, F_BUS].real.astype(np.int64)
        self.t = ppci["branch"][:, T_BUS].real.astype(np.int64)
        self.base_kv = ppci["bus"][:, BASE_KV].real
        self.load_bus = lookup[net.load["bus"].to_numpy()]
        self.sgen_bus = lookup[net.sgen["bus"].to_numpy()]
        self.load_live = self.load_bus < self.nb
        self.sgen_live = self.sgen_bus < self.nb
        eg_bus = lookup[net.ext_grid["bus"].to_numpy()]
        self.ext_live = (eg_bus < self.nb) & net.ext_grid["in_service"].to_numpy(bool)
        self.ext_bus = np.where(self.ext_live, eg_bus, 0)
        # ppc branch rows -> ppci rows (-1: out of service or isolated)
        b_is = np.asarray(ppci["branch_is"], dtype=bool)
        self.br_pos = np.where(b_is, np.cumsum(b_is) - 1, -1)
        br = net._pd2ppc_lookups["branch"]
        self.lines = br.get("line", (0, 0))
        self.trafos = br.get("trafo", (0, 0))
        ln, tr = net.line, net.trafo
        self.i_max = (ln["max_i_ka"] * ln["df"] * ln["parallel"]).to_numpy()
        self.vn_t = np.column_stack([tr["vn_hv_kv"].to_numpy(), tr["vn_lv_kv"].to_numpy()])
        self.sn_t = (tr["sn_mva"] * tr["parallel"] * tr["df"]).to_numpy()
        lv = lookup[tr["lv_bus"].to_numpy()]
        self.lv_live = lv < self.nb
        self.lv_bus = np.where(self.lv_live, lv, 0)
        return self

    @classmethod
    def from_layout(cls, lay: GridLayout, *, ext_vm_pu: float) -> _FastPF | None:
        """The normal topology (no outage, ties open) built by :mod:`citytwin.energy.admittance`,
        without pandapower; the start is flat (``ext_vm_pu`` everywhere). None for a grid the
        Z-bus iteration cannot take (no infeed, or a bus without a path to one)."""
        adm = build_admittance(lay)
        nb = adm.n_bus
        if not len(adm.ref) or not nb:
            return None
        _, comp = connected_components(adm.Ybus, directed=False)
        if not np.all(np.isin(comp, comp[adm.ref])):
            return None
        self = cls()
        self.nb = nb
        is_ref = np.zeros(nb, dtype=bool)
        is_ref[adm.ref] = True
        self.ref = np.flatnonzero(is_ref)
        self.pq = np.flatnonzero(~is_ref)
        Y = adm.Ybus.tocsc()
        self.Y = adm.Ybus
        self.lu = splu(Y[self.pq][:, self.pq].tocsc())
        self.Yqr = Y[self.pq][:, self.ref].tocsr()
        self.V = np.full(nb, complex(ext_vm_pu))
        self.base = 1.0
        self.Yf, self.Yt = adm.Yf, adm.Yt
        self.f, self.t = adm.f, adm.t
        self.base_kv = adm.base_kv
        lv = np.array([lay.lv_bus[t] for t in lay.transformers], dtype=np.int64)
        self.load_bus = self.sgen_bus = lv
        self.load_live = self.sgen_live = np.ones(len(lv), dtype=bool)
        self.ext_bus = np.asarray(lay.ext_bus, dtype=np.int64)
        self.ext_live = np.ones(len(self.ext_bus), dtype=bool)
        nl, nt = len(lay.line_rows), len(lay.trafo_rows)
        self.br_pos = np.arange(nl + nt)
        self.lines, self.trafos = (0, nl), (nl, nl + nt)
        self.i_max = adm.i_max_ka
        self.vn_t = adm.vn_trafo
        self.sn_t = adm.sn_trafo
        self.lv_bus = np.array([lay.lv_bus[t] for t, _, _ in lay.trafo_rows], dtype=np.int64)
        self.lv_live = np.ones(nt, dtype=bool)
        return self

    def solve(self, p_mw: np.ndarray, q_mvar: np.ndarray, sgen_mw: np.ndarray, *, tol: float = 1e-11,
              max_iter: int = 60) -> dict[str, Any] | None:
        lb, gb = self.load_bus[self.load_live], self.sgen_bus[self.sgen_live]
        s = (np.bincount(gb, weights=sgen_mw[self.sgen_live], minlength=self.nb)
             - np.bincount(lb, weights=p_mw[self.load_live], minlength=self.nb)
             - 1j * np.bincount(lb, weights=q_mvar[self.load_live], minlength=self.nb)) / self.base
        V = self.V.copy()
        sq = s[self.pq]
        rhs_ref = self.Yqr @ V[self.ref]
        for _ in range(max_iter):
            vq = self.lu.solve(np.conj(sq / V[self.pq]) - rhs_ref)
            step = float(np.max(np.abs(vq - V[self.pq]))) if len(vq) else 0.0
            V[self.pq] = vq
            if not np.isfinite(step):
                return None
            if step < tol:
                break
        else:
            return None
        self.V = V
        vm = np.abs(V)
        sf = V[self.f] * np.conj(self.Yf @ V) * self.base
        st = V[self.t] * np.conj(self.Yt @ V) * self.base
        i_f = np.abs(sf) / (vm[self.f] * self.base_kv[self.f]) / np.sqrt(3)
        i_t = np.abs(st) / (vm[self.t] * self.base_kv[self.t]) / np.sqrt(3)
        a, b = self.lines
        c, d = self.trafos
        s_bus = V * np.conj(self.Y @ V) * self.base
        s_ext = np.where(self.ext_live, s_bus[self.ext_bus], 0.0)

        def per_ppc(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
            pos = self.br_pos[lo:hi]
            return np.where(pos >= 0, x[np.maximum(pos, 0)], np.nan)

        ifl, itl = per_ppc(i_f, a, b), per_ppc(i_t, a, b)
        ift, itt = per_ppc(i_f, c, d), per_ppc(i_t, c, d)
        line_pct = np.maximum(ifl, itl) / self.i_max * 100.0
        tr_pct = np.maximum(ift * self.vn_t[:, 0], itt * self.vn_t[:, 1]) * np.sqrt(3) / self.sn_t * 100
        return {"vm": vm, "line_pct": line_pct, "trafo_pct": tr_pct, "losses_mw": float((sf + st).real.sum()),
                "s_ext": s_ext, "lv_vm": np.where(self.lv_live, vm[self.lv_bus], np.nan),
                "load_live": self.load_live, "load_mw": float(p_mw[self.load_live].sum()),
                "sgen_mw": float(sgen_mw[self.sgen_live].sum())}


class GridSolver:
    """Repeated power flows on one grid (loads aggregated per transformer).

    ``solve(p_kw)`` takes one value per building in ``self.building_ids`` order (the City's
    building index order, or sorted building ids when built from a bare graph).

    The normal topology (no outage, ties open) is solved by :class:`_FastPF` on the admittance
    matrices of :mod:`citytwin.energy.admittance` — the same equivalent circuits as pandapower,
    built without importing it — by the Z-bus fixed point (~1 ms a step). Any other topology starts
    with a pandapower Newton-Raphson run (the network is exported on first need, ``self.net``);
    its later steps use a ``_FastPF`` captured from that run. ``fast=False`` runs pandapower for
    every step (the reference in the tests); ``last_method`` says which ran. ``net.res_*`` tables
    are only refreshed by pandapower runs. Since pandapower then runs at most once per topology,
    ``numba`` defaults to False: its JIT costs 3-4 s per process (measured), more than it saves.
    """

    def __init__(self, city: City | nx.Graph, *, ext_vm_pu: float = EXT_GRID_VM_PU, cos_phi: float = COS_PHI,
                 numba: bool = False, fast: bool = True) -> None:
        G = power_graph_of(city)
        self.graph = G
        mv_kv = float(G.graph.get("mv_kv", 20.0))
        if mv_kv not in MV_CABLE:
            raise InputError([f"power graph: mv_kv={mv_kv} not supported, expected one of {sorted(MV_CABLE)}"])
        lay = grid_layout(G)
        self.map = _power_map(lay, aggregate_loads=True, pv=True)
        self._ext_vm_pu, self._cos_phi = ext_vm_pu, cos_phi
        self._net: Any = None
        b = getattr(city, "buildings", None)
        ids = list(b.index) if b is not None else sorted(self.map.load)
        missing = [i for i in ids if i not in self.map.load]
        if missing:
            raise InputError([f"building {i} has no node in the power graph" for i in missing[:20]])
        self.building_ids = np.asarray(ids)
        self._tan = math.tan(math.acos(cos_phi))
        self._numba = numba
        self._b_load = np.array([self.map.load[i] for i in ids], dtype=np.int64)
        self._b_sgen = np.array([self.map.sgen[i] for i in ids], dtype=np.int64)
        self._n_load = self._n_sgen = len(lay.transformers)
        self._load_tr = np.array(lay.transformers, dtype=object)  # transformer id per aggregated load
        self._trafo_ids = np.array(list(self.map.trafo), dtype=object)
        self._trafo_idx = np.array([self.map.trafo[t] for t in self._trafo_ids], dtype=np.int64)
        self._trafo_lv = np.array([self.map.lv_bus[t] for t in self._trafo_ids], dtype=np.int64)
        self._line_ids = np.array(list(self.map.line), dtype=object)
        self._line_idx = np.array([self.map.line[e] for e in self._line_ids], dtype=np.int64)
        self._sub_ids = np.array(list(self.map.ext_grid), dtype=object)
        self._sub_rated = np.array([G.nodes[s]["rated_mva"] for s in self._sub_ids], dtype=float)
        # the result Series' indexes, built once (an Index per Series per step cost ~0.5 ms)
        self._trafo_index = pd.Index(self._trafo_ids)
        self._line_index = pd.Index(self._line_ids)
        self._sub_index = pd.Index(self._sub_ids)
        self._trafo_sn = np.array([lay.trafo_types[std][0] * par for _, std, par in lay.trafo_rows])
        self._load_bus = np.array([lay.lv_bus[t] for t in lay.transformers], dtype=np.int64)
        self._topology: tuple[frozenset[str], frozenset[str]] | None = None
        self._warm = False
        self._use_fast = fast
        self._fast: _FastPF | None = None
        self._normal = _FastPF.from_layout(lay, ext_vm_pu=ext_vm_pu) if fast else None
        self.last_runtime_s = 0.0
        self.last_method = ""

    @property
    def net(self) -> Any:
        """The pandapower network (exported on first use, with the current topology applied)."""
        if self._net is None:
            self._net, pm = to_pandapower(self.graph, aggregate_loads=True, pv=True,
                                          ext_vm_pu=self._ext_vm_pu, cos_phi=self._cos_phi)
            if pm.trafo != self.map.trafo or pm.line != self.map.line or pm.load != self.map.load:
                raise RuntimeError("pandapower export and grid layout disagree")  # a bug, not input
            if self._topology is not None:
                self._apply_topology(self._net, *self._topology)
        return self._net

    # -- topology -------------------------------------------------------------------------
    def _set_topology(self, out_of_service: frozenset[str], closed_ties: frozenset[str]) -> None:
        problems = []
        for a in sorted(out_of_service):
            try:
                self.map.element(a)
            except KeyError:
                problems.append(f"out_of_service: unknown asset id {a!r} (expected a substation, "
                                "transformer, line or tie id of the power graph)")
        for t in sorted(closed_ties):
            if t not in self.map.switch:
                problems.append(f"closed_ties: unknown tie id {t!r}")
        if problems:
            raise InputError(problems, source="GridSolver.solve")
        if self._net is not None:
            self._apply_topology(self._net, out_of_service, closed_ties)

    def _apply_topology(self, net: Any, out_of_service: frozenset[str], closed_ties: frozenset[str]) -> None:
        net.line["in_service"] = True
        net.trafo["in_service"] = True
        net.ext_grid["in_service"] = True
        net.switch["closed"] = False
        for a in out_of_service:
            table, i = self.map.element(a)
            net[table].at[i, "in_service"] = False
        for t in closed_ties:
            net.switch.at[self.map.switch[t], "closed"] = True

    # -- one step -------------------------------------------------------------------------
    def solve(self, p_kw: np.ndarray, *, q_kvar: np.ndarray | None = None, pv_kw: np.ndarray | None = None,
              out_of_service: frozenset[str] | set[str] = frozenset(),
              closed_ties: frozenset[str] | set[str] = frozenset()) -> StepFlow:
        """Power flow for one step. ``p_kw``/``q_kvar``/``pv_kw``: one value per building.

        ``out_of_service``: ids of failed substations, transformers or lines; ``closed_ties``:
        tie switches closed for restoration. Non-convergence is reported (``converged=False``,
        loadings estimated from the demand), not raised.
        """
        n = len(self.building_ids)
        problems = []
        arrays = {"p_kw": p_kw, "q_kvar": q_kvar, "pv_kw": pv_kw}
        for name, a in arrays.items():
            if a is None:
                continue
            a = np.asarray(a, dtype=float)
            if a.shape != (n,):
                problems.append(f"{name}: shape {a.shape}, expected ({n},) — one value per building")
            elif not np.all(np.isfinite(a)):
                problems.append(f"{name}: non-finite value at building position {int(np.flatnonzero(~np.isfinite(a))[0])}")
        if problems:
            raise InputError(problems, source="GridSolver.solve")
        p = np.asarray(p_kw, dtype=float)
        q = p * self._tan if q_kvar is None else np.asarray(q_kvar, dtype=float)
        topo = (frozenset(out_of_service), frozenset(closed_ties))
        if topo != self._topology:
            self._set_topology(*topo)
            self._topology = topo
            self._warm = False
        p_load = np.bincount(self._b_load, weights=p, minlength=self._n_load) / 1000.0
        q_load = np.bincount(self._b_load, weights=q, minlength=self._n_load) / 1000.0
        sgen = (np.zeros(self._n_sgen) if pv_kw is None else
                np.bincount(self._b_sgen, weights=np.asarray(pv_kw, float), minlength=self._n_sgen) / 1000.0)
        t0 = time.perf_counter()
        own = self._normal is not None and not topo[0] and not topo[1]
        fast = self._normal if own else (self._fast if self._warm else None)
        if fast is not None:
            res = fast.solve(p_load, q_load, sgen)
            if res is not None:
                self.last_runtime_s = time.perf_counter() - t0
                self.last_method = "fast"
                return self._collect_fast(res, p, sgen)
            if own:  # the Z-bus iteration declined: pandapower from here on (it captures its own)
                self._normal = None
                self._warm = False
        if set(self._sub_ids) <= topo[0]:  # every infeed failed: the whole grid is dark
            self.last_runtime_s = time.perf_counter() - t0
            self.last_method = "none"
            self._warm = False
            return self._collect_dark(p, sgen)
        import pandapower as pp

        net = self.net
        net.load["p_mw"] = p_load
        net.load["q_mvar"] = q_load
        net.sgen["p_mw"] = sgen
        converged, message = True, ""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if not self._warm:  # new topology or after a failure: full rebuild, flat start
                    net["_ppc"] = None
                pp.runpp(net, init="results" if self._warm else "auto", numba=self._numba,
                         calculate_voltage_angles=False, recycle=_RECYCLE)
        except pp.powerflow.LoadflowNotConverged as exc:
            converged, message = False, f"power flow did not converge: {exc}"
            log.warning(message)
        except (UserWarning, ValueError, np.linalg.LinAlgError) as exc:  # e.g. a singular island
            converged, message = False, f"power flow failed: {type(exc).__name__}: {exc}"
            log.warning(message)
        self.last_runtime_s = time.perf_counter() - t0
        self.last_method = "pandapower"
        self._warm = converged
        self._fast = _FastPF.capture(net) if (converged and self._use_fast) else None
        return self._collect(converged, message, p, pv_kw)

    def _collect_dark(self, p: np.ndarray, sgen_mw: np.ndarray) -> StepFlow:
        nan = float("nan")
        return StepFlow(
            converged=True, vm_min_pu=nan, vm_max_pu=nan, max_line_loading_pct=nan,
            max_trafo_loading_pct=nan, losses_kw=0.0, ext_grid_kw=0.0, load_kw=0.0, generation_kw=0.0,
            unsupplied_kw=float(p.sum()), n_voltage_violations=0, n_overloads=0,
            trafo_loading_pct=pd.Series(nan, index=self._trafo_index, name="loading_pct"),
            trafo_vm_pu=pd.Series(nan, index=self._trafo_index, name="vm_pu"),
            line_loading_pct=pd.Series(nan, index=self._line_index, name="loading_pct"),
            substation_loading_pct=pd.Series(nan, index=self._sub_index, name="loading_pct"),
            unsupplied=np.ones(len(self.building_ids), dtype=bool),
            message="no infeed in service: every building unsupplied",
        )

    def _collect_fast(self, r: dict[str, Any], p: np.ndarray, sgen_mw: np.ndarray) -> StepFlow:
        tl = r["trafo_pct"][self._trafo_idx]
        ll = r["line_pct"][self._line_idx]
        vm = r["vm"]
        s_ext = r["s_ext"]
        load = r["load_mw"] * 1000
        gen = r["sgen_mw"] * 1000
        unsupplied = ~r["load_live"][self._b_load]
        return StepFlow(
            converged=True, vm_min_pu=float(vm.min()), vm_max_pu=float(vm.max()),
            max_line_loading_pct=float(ll.max()) if len(ll) else float("nan"),
            max_trafo_loading_pct=float(tl.max()) if len(tl) else float("nan"),
            losses_kw=r["losses_mw"] * 1000, ext_grid_kw=float(s_ext.real.sum()) * 1000,
            load_kw=load, generation_kw=gen, unsupplied_kw=float(p[unsupplied].sum()),
            n_voltage_violations=int(np.sum((vm < V_MIN_PU) | (vm > V_MAX_PU))),
            n_overloads=int(np.sum(tl > 100.0) + np.sum(ll > 100.0)),
            trafo_loading_pct=pd.Series(tl, index=self._trafo_index, name="loading_pct"),
            trafo_vm_pu=pd.Series(r["lv_vm"][self._trafo_idx], index=self._trafo_index, name="vm_pu"),
            line_loading_pct=pd.Series(ll, index=self._line_index, name="loading_pct"),
            substation_loading_pct=pd.Series(np.abs(s_ext) / self._sub_rated * 100.0, index=self._sub_index,
                                             name="loading_pct"),
            unsupplied=unsupplied,
        )

    def _collect(self, converged: bool, message: str, p: np.ndarray, pv_kw: np.ndarray | None) -> StepFlow:
        net = self.net
        nan = float("nan")
        if converged:
            vm_bus = net.res_bus["vm_pu"].to_numpy()
            supplied_bus = np.isfinite(vm_bus)
            tl = net.res_trafo["loading_percent"].to_numpy()[self._trafo_idx]
            ll = net.res_line["loading_percent"].to_numpy()[self._line_idx]
            eg = net.res_ext_grid.reindex(range(len(self._sub_ids)))
            s_ext = np.hypot(eg["p_mw"].to_numpy(), eg["q_mvar"].to_numpy())
            sub = s_ext / self._sub_rated * 100.0
            losses = float(np.nansum(net.res_line["pl_mw"]) + np.nansum(net.res_trafo["pl_mw"])) * 1000
            ext = float(np.nansum(net.res_ext_grid["p_mw"])) * 1000
            load = float(np.nansum(net.res_load["p_mw"])) * 1000
            gen = float(np.nansum(net.res_sgen["p_mw"])) * 1000
            vm_ok = vm_bus[supplied_bus]
            vmin = float(vm_ok.min()) if len(vm_ok) else nan
            vmax = float(vm_ok.max()) if len(vm_ok) else nan
            nviol = int(np.sum((vm_ok < V_MIN_PU) | (vm_ok > V_MAX_PU)))
            tvm = vm_bus[self._trafo_lv]
        else:
            supplied_bus = np.ones(len(net.bus), dtype=bool)
            s_tr = np.hypot(net.load["p_mw"], net.load["q_mvar"]).to_numpy() - 0.0
            s_by_tr = pd.Series(s_tr, index=self._load_tr).groupby(level=0).sum()
            tl = (s_by_tr.reindex(self._trafo_ids).to_numpy() / self._trafo_sn[self._trafo_idx]) * 100
            ll = np.full(len(self._line_idx), nan)
            sub = np.full(len(self._sub_ids), nan)
            losses = ext = nan
            load = float(net.load["p_mw"].sum()) * 1000
            gen = float(net.sgen["p_mw"].sum()) * 1000
            vmin = vmax = nan
            nviol = 0
            tvm = np.full(len(self._trafo_idx), nan)
        unsup_load = ~supplied_bus[self._load_bus]
        unsupplied = unsup_load[self._b_load]
        tls = pd.Series(tl, index=self._trafo_index, name="loading_pct")
        lls = pd.Series(ll, index=self._line_index, name="loading_pct")
        return StepFlow(
            converged=converged, vm_min_pu=vmin, vm_max_pu=vmax,
            max_line_loading_pct=float(np.nanmax(ll)) if np.isfinite(ll).any() else nan,
            max_trafo_loading_pct=float(np.nanmax(tl)) if np.isfinite(tl).any() else nan,
            losses_kw=losses, ext_grid_kw=ext, load_kw=load, generation_kw=gen,
            unsupplied_kw=float(p[unsupplied].sum()),
            n_voltage_violations=nviol,
            n_overloads=int(np.sum(np.nan_to_num(tl) > 100.0) + np.sum(np.nan_to_num(ll) > 100.0)),
            trafo_loading_pct=tls, trafo_vm_pu=pd.Series(tvm, index=self._trafo_index, name="vm_pu"),
            line_loading_pct=lls,
            substation_loading_pct=pd.Series(sub, index=self._sub_index, name="loading_pct"),
            unsupplied=unsupplied, message=message,
        )
