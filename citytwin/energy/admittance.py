"""The city grid's network model without pandapower: element layout, branch data and admittances.

:func:`grid_layout` assigns the element indices :func:`citytwin.energy.grid.to_pandapower` uses
(buses, external grids, transformers, lines, tie switches, one load and one PV generator per
transformer area), so both sides name the same element by the same number.
:func:`build_admittance` builds the bus admittance matrix of the normal (no outage, ties open)
topology from the same equipment data and the same equivalent circuits as pandapower's power flow
(``calculate_voltage_angles=False``, transformer ``"t"`` model):

- lines: π model, ``r = r'·l / n``, ``x = x'·l / n``, ``b = 2πf·c'·l·n`` in per unit of
  ``V_base² / S_base``;
- two-winding transformers: short-circuit impedance from ``vk``/``vkr``, magnetising admittance
  from ``i0``/``pfe``, the T circuit (leakage split half/half) turned into its π equivalent
  (the star-delta transform); nominal ratio, so the off-nominal tap is 1;
- a normally open tie: the line stays energised from its closed end and ends in an auxiliary bus
  at the open switch (it contributes its charging), as pandapower models an open line switch.

A run that stays in the normal topology — every step of a scenario without outages — then
never imports pandapower (about 1.4 s of CPU per process, measured): :class:`GridSolver` solves
it with the Z-bus iteration of ``_FastPF`` on these matrices. ``tests/energy/test_admittance.py``
holds the matrices and the solution equal to pandapower's own (Ybus to 1e-12, voltages and
loadings to 1e-7) on three cities. Outages and closed ties are solved by pandapower itself.

Equipment data (per km, per unit) are pandapower's standard types ``NA2XS2Y 1x240 RM/25`` and
``0.25/0.4/0.63 MVA 20/0.4 kV`` / ``10/0.4 kV`` (the same values, checked against pandapower's
library in the tests); the 800 kVA unit is scaled from the 630 kVA data (vk 6 %, vkr ∝ S^-1/4,
pfe ∝ S^3/4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp

__all__ = ["Admittance", "GridLayout", "grid_layout", "build_admittance", "LINE_TYPES", "TRAFO_TYPES", "trafo_type"]

F_HZ = 50.0
S_BASE_MVA = 1.0  # pandapower's default net.sn_mva
LV_KV = 0.4

# name -> (r ohm/km, x ohm/km, c nF/km, max_i kA)
LINE_TYPES: dict[str, tuple[float, float, float, float]] = {
    "NA2XS2Y 1x240 RM/25 12/20 kV": (0.122, 0.112, 304.0, 0.421),
    "NA2XS2Y 1x240 RM/25 6/10 kV": (0.122, 0.105, 456.0, 0.416),
}
MV_CABLE = {20.0: "NA2XS2Y 1x240 RM/25 12/20 kV", 10.0: "NA2XS2Y 1x240 RM/25 6/10 kV"}

# name -> (sn MVA, vn_hv kV, vk %, vkr %, pfe kW, i0 %)
TRAFO_TYPES: dict[str, tuple[float, float, float, float, float, float]] = {
    "0.25 MVA 20/0.4 kV": (0.25, 20.0, 6.0, 1.44, 0.8, 0.32),
    "0.4 MVA 20/0.4 kV": (0.4, 20.0, 6.0, 1.425, 1.35, 0.3375),
    "0.63 MVA 20/0.4 kV": (0.63, 20.0, 6.0, 1.206, 1.65, 0.2619),
    "0.25 MVA 10/0.4 kV": (0.25, 10.0, 4.0, 1.2, 0.6, 0.24),
    "0.4 MVA 10/0.4 kV": (0.4, 10.0, 4.0, 1.325, 0.95, 0.2375),
    "0.63 MVA 10/0.4 kV": (0.63, 10.0, 4.0, 1.0794, 1.18, 0.1873),
}


def trafo_type(rated_kva: int, mv_kv: float) -> tuple[str, tuple[float, float, float, float, float, float]]:
    """Standard-type name and data of a ``rated_kva`` unit; sizes without a standard type are scaled
    from the 630 kVA unit (vkr ∝ (S/630)^-1/4, pfe ∝ (S/630)^3/4, the rest as 630 kVA)."""
    name = f"{rated_kva / 1000:g} MVA {mv_kv:g}/0.4 kV"
    if name in TRAFO_TYPES:
        return name, TRAFO_TYPES[name]
    _, _, vk, vkr, pfe, i0 = TRAFO_TYPES[f"0.63 MVA {mv_kv:g}/0.4 kV"]
    scale = rated_kva / 630.0
    return name, (rated_kva / 1000.0, mv_kv, vk, vkr / scale ** 0.25, pfe * scale ** 0.75, i0)


@dataclass
class GridLayout:
    """Element order shared by the pandapower export and the own admittance model."""

    mv_kv: float
    bus_names: list[str] = field(default_factory=list)
    bus_kv: list[float] = field(default_factory=list)
    bus_xy: list[tuple[float, float] | None] = field(default_factory=list)
    bus: dict[str, int] = field(default_factory=dict)  # MV node id -> bus
    lv_bus: dict[str, int] = field(default_factory=dict)  # transformer id -> LV bus
    ext_grid: dict[str, int] = field(default_factory=dict)  # substation id -> ext grid index
    ext_bus: list[int] = field(default_factory=list)
    trafo: dict[str, int] = field(default_factory=dict)
    trafo_rows: list[tuple[str, str, int]] = field(default_factory=list)  # (id, std type, parallel)
    trafo_types: dict[str, tuple[float, float, float, float, float, float]] = field(default_factory=dict)
    line: dict[str, int] = field(default_factory=dict)
    line_rows: list[tuple[str, int, int, float, int]] = field(default_factory=list)  # id, from, to, km, n
    switch: dict[str, int] = field(default_factory=dict)  # tie id -> switch index (open, at `from`)
    transformers: list[str] = field(default_factory=list)  # load/sgen order: one per transformer
    buildings: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)

    @property
    def cable(self) -> str:
        return MV_CABLE[self.mv_kv]


def grid_layout(G: nx.Graph) -> GridLayout:
    """Element indices of the power graph ``G`` (see the module docstring)."""
    mv_kv = float(G.graph.get("mv_kv", 20.0))
    lay = GridLayout(mv_kv=mv_kv)
    nodes = sorted(G.nodes(data=True), key=lambda nd: (nd[1]["kind"], str(nd[0])))
    mv_nodes = [(n, d) for n, d in nodes if d["kind"] in ("substation", "mv_node", "transformer")]
    for n, d in mv_nodes:
        lay.bus[n] = len(lay.bus_names)
        lay.bus_names.append(str(n))
        lay.bus_kv.append(mv_kv)
        lay.bus_xy.append((d["x"], d["y"]))
    trs = [(n, d) for n, d in nodes if d["kind"] == "transformer"]
    for n, _ in trs:
        lay.lv_bus[n] = len(lay.bus_names)
        lay.bus_names.append(f"{n}:lv")
        lay.bus_kv.append(LV_KV)
        lay.bus_xy.append(None)
    for n, d in nodes:
        if d["kind"] == "substation":
            lay.ext_grid[n] = len(lay.ext_bus)
            lay.ext_bus.append(lay.bus[n])
    by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for n, d in trs:
        name, data = trafo_type(int(d["rated_kva"]), mv_kv)
        lay.trafo_types[name] = data
        by_type.setdefault(name, []).append((n, d))
    for std, group in sorted(by_type.items()):
        for n, d in group:
            lay.trafo[n] = len(lay.trafo_rows)
            lay.trafo_rows.append((n, std, int(d.get("parallel", 1))))
    edges = sorted(((u, v, d) for u, v, d in G.edges(data=True) if d["kind"] in ("mv_line", "tie")),
                   key=lambda e: e[2]["element_id"])
    for u, v, d in edges:
        lay.line[d["element_id"]] = len(lay.line_rows)
        lay.line_rows.append((d["element_id"], lay.bus[u], lay.bus[v], d["length_m"] / 1000.0,
                              int(d.get("n_cables", 1))))
    for _, _, d in edges:
        if d["kind"] == "tie":
            lay.switch[d["element_id"]] = len(lay.switch)
    lay.transformers = [n for n, _ in trs]
    lay.buildings = sorted((d["building_id"], d) for _, d in G.nodes(data=True) if d["kind"] == "building")
    return lay


@dataclass
class Admittance:
    """Per-unit bus/branch admittances of the normal topology (lines first, then transformers)."""

    Ybus: sp.csr_matrix
    Yf: sp.csr_matrix
    Yt: sp.csr_matrix
    f: np.ndarray
    t: np.ndarray
    base_kv: np.ndarray
    n_bus: int  # buses incl. the auxiliary buses of open ties (after the layout's buses)
    ref: np.ndarray  # slack buses (one per external grid)
    i_max_ka: np.ndarray  # per line
    vn_trafo: np.ndarray  # (n_trafo, 2) kV
    sn_trafo: np.ndarray  # MVA x parallel


def build_admittance(lay: GridLayout) -> Admittance:
    """Bus and branch admittance matrices of ``lay``'s normal topology (ties open)."""
    base_kv = list(lay.bus_kv)
    r_km, x_km, c_km, i_max = LINE_TYPES[lay.cable]
    base_r = lay.mv_kv ** 2 / S_BASE_MVA
    nl, nt = len(lay.line_rows), len(lay.trafo_rows)
    f = np.zeros(nl + nt, dtype=np.int64)
    t = np.zeros(nl + nt, dtype=np.int64)
    ys = np.zeros(nl + nt, dtype=complex)  # series admittance
    ysh_f = np.zeros(nl + nt, dtype=complex)  # shunt at from / to end
    ysh_t = np.zeros(nl + nt, dtype=complex)
    open_end = {lay.line[e] for e in lay.switch}
    for k, (_, fb, tb, km, n) in enumerate(lay.line_rows):
        if k in open_end:  # open switch at the from end: the line ends in its own auxiliary bus
            fb = len(base_kv)
            base_kv.append(lay.mv_kv)
        f[k], t[k] = fb, tb
        ys[k] = 1.0 / complex(r_km * km / base_r / n, x_km * km / base_r / n)
        b = 2 * F_HZ * math.pi * c_km * 1e-9 * base_r * km * n
        ysh_f[k] = ysh_t[k] = 0.5j * b
    vn_trafo = np.zeros((nt, 2))
    sn_trafo = np.zeros(nt)
    for j, (tid, std, par) in enumerate(lay.trafo_rows):
        k = nl + j
        sn, vn_hv, vk, vkr, pfe_kw, i0 = lay.trafo_types[std]
        f[k], t[k] = lay.bus[tid], lay.lv_bus[tid]
        vn_trafo[j] = (vn_hv, LV_KV)
        sn_trafo[j] = sn * par
        z = vk / 100.0 / sn * S_BASE_MVA
        r = vkr / 100.0 / sn * S_BASE_MVA
        x = math.sqrt(z * z - r * r)
        r, x = r / par, x / par
        base_z_lv = LV_KV ** 2 / S_BASE_MVA
        pfe = pfe_kw * 1e-3
        bm = -math.sqrt(max((i0 / 100.0 * sn) ** 2 - pfe ** 2, 0.0))
        ym = complex(pfe, bm) / LV_KV ** 2 * base_z_lv * par  # magnetising admittance, pu
        # T circuit (half the leakage each side, magnetising branch in the middle) -> π
        za = zb = complex(r, x) / 2
        zc = 1.0 / ym
        zsum = za * zb + za * zc + zb * zc
        ys[k] = zc / zsum  # 1 / z_ab
        ysh_f[k] = zb / zsum  # 1 / z_ac
        ysh_t[k] = za / zsum  # 1 / z_bc
    nb = len(base_kv)
    rows = np.arange(nl + nt)
    i2 = np.concatenate([rows, rows])
    j2 = np.concatenate([f, t])
    Yf = sp.csr_matrix((np.concatenate([ys + ysh_f, -ys]), (i2, j2)), shape=(nl + nt, nb))
    Yt = sp.csr_matrix((np.concatenate([-ys, ys + ysh_t]), (i2, j2)), shape=(nl + nt, nb))
    Cf = sp.csr_matrix((np.ones(nl + nt), (rows, f)), shape=(nl + nt, nb))
    Ct = sp.csr_matrix((np.ones(nl + nt), (rows, t)), shape=(nl + nt, nb))
    Ybus = (Cf.T @ Yf + Ct.T @ Yt).tocsr()
    for Y in (Ybus, Yf, Yt):
        Y.eliminate_zeros()
        Y.sum_duplicates()
        Y.sort_indices()
    return Admittance(Ybus=Ybus, Yf=Yf, Yt=Yt, f=f, t=t, base_kv=np.asarray(base_kv), n_bus=nb,
                      ref=np.asarray(lay.ext_bus, dtype=np.int64),
                      i_max_ka=np.array([i_max * n for *_, n in lay.line_rows], dtype=float),
                      vn_trafo=vn_trafo, sn_trafo=sn_trafo)
