"""Static user-equilibrium assignment with BPR links — the field's standard check.

``static_ue`` has two algorithms on the same numba shortest-path kernel. The default ``"gp"`` is
path-based gradient projection (Jayakrishnan et al. 1994): origin by origin, the current
shortest path joins each OD pair's path set and flow moves from costlier paths to the cheapest
by a Newton step ``(c_p - c_min) / sum of cost derivatives on the links not shared``, link costs
updated as flow moves; it reaches gaps of 1e-10 on Sioux Falls in ~150 iterations. ``"bfw"`` is
the bi-conjugate Frank–Wolfe algorithm (Mitradjieva & Lindberg 2013,
"The stiff is moving — conjugate direction Frank-Wolfe methods with applications to traffic
assignment", Transportation Science 47(2)), the method AequilibraE calls ``bfw``: each iteration
one all-or-nothing load on the shortest-path trees of every origin (numba Dijkstra with an
indexed binary heap, then the tree loaded from its leaves in reverse settle order), a search
direction conjugate to the two previous ones under the Hessian of the Beckmann objective
(``diag t'(x)``), and an exact line search (safeguarded Newton on the directional derivative).
Both clip flows that rounding leaves a hair below zero and evaluate costs on ``max(x, 0)`` (and
slopes a hair above 0), so fractional BPR powers cannot give NaN or infinite derivatives.

Users minimise the TNTP generalized cost ``t(x) + toll_factor * toll + distance_factor *
length``; ``UEResult.tstt`` is the total travel *time*, ``UEResult.total_cost`` the generalized
total. The relative gap is ``1 - sum(demand * shortest cost) / sum(flow * cost)`` in generalized
cost, at the returned flows.

TNTP files are read by :mod:`citytwin.traffic.tntp` (re-exported here).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numba as nb
import numpy as np
import pandas as pd

from citytwin.errors import InputError
from citytwin.traffic.tntp import (
    TntpNetwork,
    check_trips_against_net,
    read_tntp_flow,
    read_tntp_net,
    read_tntp_trips,
)

__all__ = [
    "TntpNetwork",
    "UEResult",
    "read_tntp_net",
    "read_tntp_trips",
    "read_tntp_flow",
    "static_ue",
    "bpr_cost",
    "link_flows_table",
    "check_trips_against_net",
]

log = logging.getLogger(__name__)


def bpr_cost(x: np.ndarray, t0: np.ndarray, cap: np.ndarray, b: np.ndarray,
             power: np.ndarray) -> np.ndarray:
    """BPR link travel time ``t0 * (1 + b (x / cap)^power)`` (negative flows count as 0)."""
    return t0 * (1.0 + b * (np.maximum(x, 0.0) / cap) ** power)


def _bpr_deriv(x: np.ndarray, t0: np.ndarray, cap: np.ndarray, b: np.ndarray,
               power: np.ndarray) -> np.ndarray:
    # at x = 0 a power below 1 has an infinite slope: evaluate a hair above 0 instead
    xs = np.maximum(x, 1e-9 * cap)
    return t0 * b * power * xs ** (power - 1.0) / cap ** power


@dataclass
class UEResult:
    flow: np.ndarray  # per link, in the order of ``network.links``
    cost: np.ndarray  # link travel time at ``flow`` (time units of the net file)
    tstt: float  # total system travel time sum(flow * time)
    # relative gap per iteration: measured at the flows (always the last one; every one for
    # bfw), or for gp between measurements the estimate its path sweep makes on the way,
    # scaled by the ratio of the last measured gap to its estimate
    gaps: list[float] = field(default_factory=list)
    iterations: int = 0
    total_cost: float = 0.0  # sum(flow * generalized cost); equals tstt without toll/distance
    objective: float = 0.0  # Beckmann objective (integral of the generalized cost)
    converged: bool = False

    @property
    def relative_gap(self) -> float:
        return self.gaps[-1] if self.gaps else float("inf")


# --------------------------------------------------------------------------- numba kernels


@nb.njit(cache=True)
def _sssp(src, indptr, nbr_link, nbr_node, cost, blocked, is_dest, stamp, n_dest,
          dist, pred, order, heap, pos):  # pragma: no cover - compiled
    """Dijkstra from ``src`` (indexed binary heap); stops once its ``n_dest`` destinations
    (``is_dest == stamp``) are settled. Returns how many nodes were settled (in ``order``)."""
    n = dist.size
    for i in range(n):
        dist[i] = np.inf
        pred[i] = -1
        pos[i] = -1
    dist[src] = 0.0
    heap[0] = src
    pos[src] = 0
    size = 1
    cnt = 0
    left = n_dest
    while size > 0:
        u = heap[0]
        size -= 1
        pos[u] = -2
        if size > 0:  # move the last item to the root and sift it down
            last = heap[size]
            dl = dist[last]
            i = 0
            while True:
                c = 2 * i + 1
                if c >= size:
                    break
                if c + 1 < size and dist[heap[c + 1]] < dist[heap[c]]:
                    c += 1
                if dist[heap[c]] < dl:
                    heap[i] = heap[c]
                    pos[heap[i]] = i
                    i = c
                else:
                    break
            heap[i] = last
            pos[last] = i
        order[cnt] = u
        cnt += 1
        if is_dest[u] == stamp:
            left -= 1
            if left == 0:
                break
        if u != src and blocked[u]:
            continue  # zones are not passed through
        du = dist[u]
        for k in range(indptr[u], indptr[u + 1]):
            v = nbr_node[k]
            if pos[v] == -2:
                continue
            nd = du + cost[nbr_link[k]]
            if nd < dist[v]:
                dist[v] = nd
                pred[v] = nbr_link[k]
                i = pos[v]
                if i == -1:
                    i = size
                    size += 1
                while i > 0:  # sift up
                    p = (i - 1) // 2
                    if dist[heap[p]] > nd:
                        heap[i] = heap[p]
                        pos[heap[i]] = i
                        i = p
                    else:
                        break
                heap[i] = v
                pos[v] = i
    return cnt


@nb.njit(cache=True)
def _aon(origins, dptr, dnode, ddem, indptr, nbr_link, nbr_node, link_from, cost, blocked,
         flow, unreachable):  # pragma: no cover - compiled
    """All-or-nothing load of every origin's demand on its shortest-path tree into ``flow``.
    Returns sum(demand * shortest cost); flags OD entries without a path in ``unreachable``."""
    n = indptr.size - 1
    dist = np.empty(n)
    pred = np.empty(n, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    heap = np.empty(n, dtype=np.int64)
    pos = np.empty(n, dtype=np.int64)
    acc = np.zeros(n)
    is_dest = np.full(n, -1, dtype=np.int64)
    flow[:] = 0.0
    sptt = 0.0
    for oi in range(origins.size):
        r = origins[oi]
        nd = 0
        for k in range(dptr[oi], dptr[oi + 1]):
            if is_dest[dnode[k]] != oi:
                is_dest[dnode[k]] = oi
                nd += 1
        cnt = _sssp(r, indptr, nbr_link, nbr_node, cost, blocked, is_dest, oi, nd,
                    dist, pred, order, heap, pos)
        for k in range(dptr[oi], dptr[oi + 1]):
            d = dnode[k]
            if dist[d] == np.inf:
                unreachable[k] = True
                continue
            acc[d] += ddem[k]
            sptt += ddem[k] * dist[d]
        for j in range(cnt - 1, 0, -1):
            v = order[j]
            a = acc[v]
            if a != 0.0:
                e = pred[v]
                flow[e] += a
                acc[link_from[e]] += a
                acc[v] = 0.0
        acc[r] = 0.0
    return sptt


@nb.njit(cache=True)
def _pow(r, p):  # pragma: no cover - compiled
    """``r ** p`` by multiplications when ``p`` is a small whole number (BPR's usual 4: a
    libm ``pow`` per link update is most of a sweep's time), else ``pow``."""
    if p == 4.0:
        r2 = r * r
        return r2 * r2
    k = int(p)
    if k == p and 0 <= k <= 16:
        out = 1.0
        for _ in range(k):
            out *= r
        return out
    return r ** p


@nb.njit(cache=True)
def _dir_deriv(tau, x, d, t0, cap, b, pw, fixed):  # pragma: no cover - compiled
    """g(tau) = sum(c(x + tau d) d) and its derivative sum(c'(x + tau d) d^2)."""
    g = 0.0
    h = 0.0
    for i in range(x.size):
        di = d[i]
        if di == 0.0:
            continue
        xi = x[i] + tau * di
        if xi < 0.0:
            xi = 0.0
        r = xi / cap[i]
        g += (t0[i] * (1.0 + b[i] * _pow(r, pw[i])) + fixed[i]) * di
        if b[i] > 0.0:
            rs = max(r, 1e-9)
            h += t0[i] * b[i] * pw[i] * _pow(rs, pw[i] - 1.0) / cap[i] * di * di
    return g, h


@nb.njit(cache=True)
def _line_search(x, d, t0, cap, b, pw, fixed):  # pragma: no cover - compiled
    """Step in [0, 1] minimising the Beckmann objective along ``x + tau d`` (Newton steps kept
    inside a shrinking bracket, bisection when Newton leaves it)."""
    g0, h0 = _dir_deriv(0.0, x, d, t0, cap, b, pw, fixed)
    if g0 >= 0.0:
        return 0.0
    g1, h1 = _dir_deriv(1.0, x, d, t0, cap, b, pw, fixed)
    if g1 <= 0.0:
        return 1.0
    lo, hi = 0.0, 1.0
    tau = g0 / (g0 - g1)  # secant start
    for _ in range(100):
        g, h = _dir_deriv(tau, x, d, t0, cap, b, pw, fixed)
        if g < 0.0:
            lo = tau
        else:
            hi = tau
        if abs(g) <= 1e-13 * abs(g0) or hi - lo <= 1e-15:
            break
        nt = tau - g / h if h > 0.0 else -1.0
        if not (lo < nt < hi):
            nt = 0.5 * (lo + hi)
        tau = nt
    return tau


@nb.njit(cache=True)
def _bpr1(e, xe, t0, cap, b, pw, fixed):  # pragma: no cover - compiled
    """Generalized cost and its derivative of link ``e`` at flow ``xe``."""
    if xe < 0.0:
        xe = 0.0
    r = xe / cap[e]
    rs = max(r, 1e-9)
    d1 = _pow(rs, pw[e] - 1.0)  # (r^(p-1), a hair above 0 at r = 0)
    rp = d1 * r if r >= 1e-9 else _pow(r, pw[e])
    c = t0[e] * (1.0 + b[e] * rp) + fixed[e]
    return c, t0[e] * b[e] * pw[e] * d1 / cap[e]


@nb.njit(cache=True)
def _shift_od(k, q, od_head, plinks, pstart, plen, pflow, pnext, x, cost, der, mark, stamp,
              t0, cap, b, pw, fixed):  # pragma: no cover - compiled
    """Flow of OD pair ``k`` (demand ``q``) from every costlier path of its set to the cheapest
    by the Newton step ``(c_p - c_min) / sum of cost derivatives on the links not shared``;
    link costs and derivatives updated as flow moves, paths left without flow dropped.
    Returns (stamp, sum f_p c_p - q c_min, sum f_p c_p) before the shift."""
    best = -1
    # the cheapest path at the current costs is the target
    cmin = np.inf
    fc = 0.0
    p = od_head[k]
    while p >= 0:
        c = 0.0
        st = pstart[p]
        for j in range(plen[p]):
            c += cost[plinks[st + j]]
        fc += pflow[p] * c
        if c < cmin:
            cmin = c
            best = p
        p = pnext[p]
    stamp += 1
    sb = stamp  # best's links carry sb
    bst = pstart[best]
    for j in range(plen[best]):
        mark[plinks[bst + j]] = sb
    prev = -1
    p = od_head[k]
    while p >= 0:
        nxt = pnext[p]
        if p == best:
            prev = p
            p = nxt
            continue
        st = pstart[p]
        cp = 0.0
        s2 = 0.0
        stamp += 1
        sp = stamp  # shared links get sp
        for j in range(plen[p]):
            e = plinks[st + j]
            cp += cost[e]
            if mark[e] == sb:
                mark[e] = sp
            else:
                s2 += der[e]
        cb = 0.0  # from the current costs (they moved with earlier shifts)
        for j in range(plen[best]):
            e = plinks[bst + j]
            cb += cost[e]
            if mark[e] != sp:
                s2 += der[e]
        f = pflow[p]
        if cp > cb and s2 > 0.0:
            delta = (cp - cb) / s2
            if delta > f:
                delta = f
            for j in range(plen[p]):  # shared links keep their flow: only the others move
                e = plinks[st + j]
                if mark[e] != sp:
                    x[e] -= delta
                    cost[e], der[e] = _bpr1(e, x[e], t0, cap, b, pw, fixed)
            for j in range(plen[best]):
                e = plinks[bst + j]
                if mark[e] != sp:
                    x[e] += delta
                    cost[e], der[e] = _bpr1(e, x[e], t0, cap, b, pw, fixed)
                mark[e] = sb
            pflow[best] += delta
            pflow[p] = f - delta
        else:
            for j in range(plen[best]):
                mark[plinks[bst + j]] = sb
        if pflow[p] <= 0.0:  # drop a path without flow
            if prev < 0:
                od_head[k] = nxt
            else:
                pnext[prev] = nxt
        else:
            prev = p
        p = nxt
    return stamp, fc - q * cmin, fc


@nb.njit(cache=True)
def _gp_sweep(origins, dptr, dnode, ddem, indptr, nbr_link, nbr_node, link_from, blocked,
              t0, cap, b, pw, fixed, x, cost, der, plinks, pstart, plen, pflow, pnext, od_head,
              used, first):  # pragma: no cover - compiled
    """One path-based gradient-projection sweep over all origins (Jayakrishnan et al. 1994).

    Per origin: a shortest-path tree at the current costs; each OD pair's shortest path joins
    its path set, and flow moves from every costlier path to the cheapest by the Newton step
    ``(c_p - c_min) / sum of cost derivatives on the links not shared``; link costs are updated
    as flow moves. ``used`` = [paths used, path links used]; arrays grow by doubling and are
    returned with the sweep's gap estimate ``excess / total`` (each OD pair's excess cost over
    its cheapest path as the sweep reaches it). ``first``: all-or-nothing at the given costs."""
    n = indptr.size - 1
    dist = np.empty(n)
    pred = np.empty(n, dtype=np.int64)
    order = np.empty(n, dtype=np.int64)
    heap = np.empty(n, dtype=np.int64)
    pos = np.empty(n, dtype=np.int64)
    is_dest = np.full(n, -1, dtype=np.int64)
    m = x.size
    mark = np.full(m, -1, dtype=np.int64)
    tmp = np.empty(n, dtype=np.int32)
    stamp = 0
    excess = 0.0  # sum over OD pairs of (sum f_p c_p - q c_min) as the sweep meets them
    total = 0.0
    for oi in range(origins.size):
        r = origins[oi]
        nd = 0
        for k in range(dptr[oi], dptr[oi + 1]):
            if is_dest[dnode[k]] != oi:
                is_dest[dnode[k]] = oi
                nd += 1
        _sssp(r, indptr, nbr_link, nbr_node, cost, blocked, is_dest, oi, nd,
              dist, pred, order, heap, pos)
        for k in range(dptr[oi], dptr[oi + 1]):
            # the tree path to the destination, reversed into tmp[0:L]
            v = dnode[k]
            L = 0
            while pred[v] >= 0:
                tmp[L] = pred[v]
                L += 1
                v = link_from[pred[v]]
            # is it already in the set?
            best = -1
            p = od_head[k]
            while p >= 0:
                if plen[p] == L:
                    same = True
                    st = pstart[p]
                    for j in range(L):
                        if plinks[st + j] != tmp[L - 1 - j]:
                            same = False
                            break
                    if same:
                        best = p
                        break
                p = pnext[p]
            if best < 0:  # a new path, flow 0 (the demand on the first sweep)
                if used[0] >= pflow.size:
                    size = 2 * pflow.size
                    a1 = np.empty(size, dtype=np.int64)
                    a1[:used[0]] = pstart[:used[0]]
                    pstart = a1
                    a2 = np.empty(size, dtype=np.int64)
                    a2[:used[0]] = plen[:used[0]]
                    plen = a2
                    a3 = np.empty(size)
                    a3[:used[0]] = pflow[:used[0]]
                    pflow = a3
                    a4 = np.empty(size, dtype=np.int64)
                    a4[:used[0]] = pnext[:used[0]]
                    pnext = a4
                if used[1] + L > plinks.size:
                    a5 = np.empty(max(2 * plinks.size, used[1] + L), dtype=np.int32)
                    a5[:used[1]] = plinks[:used[1]]
                    plinks = a5
                best = used[0]
                used[0] += 1
                pstart[best] = used[1]
                plen[best] = L
                for j in range(L):
                    plinks[used[1] + j] = tmp[L - 1 - j]
                used[1] += L
                pflow[best] = 0.0
                pnext[best] = od_head[k]
                od_head[k] = best
                if first:
                    pflow[best] = ddem[k]
                    for j in range(L):
                        x[tmp[j]] += ddem[k]
                    continue
            if first:
                continue
            if pnext[od_head[k]] < 0 and od_head[k] == best:  # one path, the shortest
                c = 0.0
                for j in range(plen[best]):
                    c += cost[plinks[pstart[best] + j]]
                total += ddem[k] * c
                continue
            stamp, ex, fc = _shift_od(k, ddem[k], od_head, plinks, pstart, plen, pflow, pnext,
                                      x, cost, der, mark, stamp, t0, cap, b, pw, fixed)
            excess += ex
            total += fc
    return plinks, pstart, plen, pflow, pnext, excess, total


@nb.njit(cache=True)
def _gp_compact(plinks, pstart, plen, pnext, od_head, used):  # pragma: no cover - compiled
    """Pack the live paths' links to the front of ``plinks`` (dropped paths leave holes)."""
    new = np.empty(plinks.size, dtype=np.int32)
    w = 0
    for k in range(od_head.size):
        p = od_head[k]
        while p >= 0:
            st = pstart[p]
            for j in range(plen[p]):
                new[w + j] = plinks[st + j]
            pstart[p] = w
            w += plen[p]
            p = pnext[p]
    used[1] = w
    return new


# --------------------------------------------------------------------------- the algorithm


class _Problem:
    """Arrays of one net + OD (forward star, BPR parameters, origins' destination lists)."""

    def __init__(self, net: TntpNetwork, od: pd.DataFrame) -> None:
        L = net.links
        def col(name: str, dtype: type) -> np.ndarray:  # contiguous: one compiled signature
            return np.ascontiguousarray(L[name].to_numpy(dtype=dtype))

        self.fr = col("init_node", np.int64) - 1
        self.to = col("term_node", np.int64) - 1
        self.t0 = col("free_flow_time", float)
        self.cap = col("capacity", float)
        self.b = col("b", float)
        self.pw = col("power", float)
        self.fixed = np.ascontiguousarray(net.fixed_cost(), dtype=float)
        m = len(L)
        n = max(net.n_nodes, int(max(self.fr.max(), self.to.max())) + 1) if m else net.n_nodes
        if m and min(self.fr.min(), self.to.min()) < 0:
            raise InputError(["link node ids must be >= 1 (TNTP ids are 1-based)"],
                             source=net.source or "static_ue")
        problems = []
        for c in ("origin", "dest"):
            v = od[c].to_numpy()
            bad = (v < 1) | (v > n)
            if bad.any():
                problems.append(f"OD column {c!r}: node ids outside 1..{n}: "
                                f"{sorted(set(v[bad].tolist()))[:5]}")
        dem = od["demand"].to_numpy(dtype=float)
        if not np.isfinite(dem).all() or (dem < 0).any():
            problems.append("OD column 'demand': expected finite numbers >= 0")
        if problems:
            raise InputError(problems, source=od.attrs.get("source") or "static_ue")
        perm = np.argsort(self.fr, kind="stable")
        self.indptr = np.zeros(n + 1, dtype=np.int64)
        np.add.at(self.indptr, self.fr + 1, 1)
        self.indptr = np.cumsum(self.indptr)
        self.nbr_link = perm.astype(np.int64)
        self.nbr_node = self.to[perm]
        self.blocked = np.zeros(n, dtype=np.bool_)
        self.blocked[: max(net.first_thru_node - 1, 0)] = True
        keep = od[(od["demand"] > 0) & (od["origin"] != od["dest"])]
        keep = keep.sort_values(["origin", "dest"], kind="stable")
        o = keep["origin"].to_numpy(dtype=np.int64) - 1
        self.origins, starts = np.unique(o, return_index=True)
        self.dptr = np.append(starts, len(o)).astype(np.int64)
        self.dnode = keep["dest"].to_numpy(dtype=np.int64) - 1
        self.ddem = keep["demand"].to_numpy(dtype=float)
        self.n, self.m = n, m

    def cost(self, x: np.ndarray) -> np.ndarray:
        return bpr_cost(x, self.t0, self.cap, self.b, self.pw) + self.fixed

    def aon(self, cost: np.ndarray, out: np.ndarray) -> float:
        unreachable = np.zeros(self.dnode.size, dtype=np.bool_)
        sptt = _aon(self.origins, self.dptr, self.dnode, self.ddem, self.indptr, self.nbr_link,
                    self.nbr_node, self.fr, cost, self.blocked, out, unreachable)
        if unreachable.any():
            k = np.flatnonzero(unreachable)
            oi = np.searchsorted(self.dptr, k, side="right") - 1
            pairs = [f"{self.origins[a] + 1} -> {self.dnode[c] + 1}"
                     for a, c in zip(oi[:5].tolist(), k[:5].tolist(), strict=True)]
            raise InputError([f"{k.size} OD pairs have no path, e.g. {', '.join(pairs)}"],
                             source="static_ue")
        return float(sptt)

    def objective(self, x: np.ndarray) -> float:
        xs = np.maximum(x, 0.0)
        integ = self.t0 * (xs + self.b * self.cap / (self.pw + 1.0)
                           * (xs / self.cap) ** (self.pw + 1.0))
        return float(integ.sum() + self.fixed @ xs)


ALGORITHMS = ("gp", "bfw")


def static_ue(net: TntpNetwork, od: pd.DataFrame, *, gap: float = 1e-6,
              max_iter: int = 10_000, algorithm: str = "gp") -> UEResult:
    """User equilibrium until the relative gap is at most ``gap`` or ``max_iter`` iterations
    were done (``UEResult.converged`` says which).

    ``algorithm``: ``"gp"`` path-based gradient projection (default; few iterations, each a
    shortest-path sweep to move flow and one to measure the gap) or ``"bfw"`` bi-conjugate
    Frank–Wolfe (one sweep per iteration, many iterations near 1e-6)."""
    if algorithm not in ALGORITHMS:
        raise InputError([f"algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}"],
                         source="static_ue")
    P = _Problem(net, od)
    x = np.zeros(P.m)
    res = UEResult(flow=x, cost=bpr_cost(x, P.t0, P.cap, P.b, P.pw), tstt=0.0)
    if P.ddem.size == 0:
        res.gaps, res.converged = [0.0], True
        return res
    x = _gp(P, res, gap, max_iter) if algorithm == "gp" else _bfw(P, res, gap, max_iter)
    np.maximum(x, 0.0, out=x)
    res.flow = x
    res.cost = bpr_cost(x, P.t0, P.cap, P.b, P.pw)
    res.tstt = float(x @ res.cost)
    res.total_cost = float(x @ (res.cost + P.fixed))
    res.objective = P.objective(x)
    if not res.converged:
        log.warning("static_ue: relative gap %.3e after %d iterations (target %.1e)",
                    res.relative_gap, res.iterations, gap)
    return res


def _record(res: UEResult, it: int, g: float, gap: float) -> bool:
    res.gaps.append(max(g, 0.0))
    res.iterations = it
    log.debug("static_ue iteration %d: relative gap %.3e", it, g)
    res.converged = g <= gap
    return res.converged


def _gp(P: _Problem, res: UEResult, gap: float, max_iter: int) -> np.ndarray:
    K = P.dnode.size
    plinks = np.empty(max(16 * K, 1024), dtype=np.int32)
    pstart = np.empty(2 * K, dtype=np.int64)
    plen = np.empty(2 * K, dtype=np.int64)
    pflow = np.empty(2 * K)
    pnext = np.empty(2 * K, dtype=np.int64)
    od_head = np.full(K, -1, dtype=np.int64)
    used = np.zeros(2, dtype=np.int64)
    x = np.zeros(P.m)
    scratch = np.empty(P.m)
    P.aon(P.cost(x), scratch)  # raises on OD pairs without a path
    estimate = np.inf
    ratio = 1.0  # measured gap / the sweep's own estimate, at the last measurement
    since = 0  # sweeps since the last measurement
    for it in range(max_iter + 1):
        # The exact gap needs a shortest-path sweep of its own (on a large net as dear as the
        # path sweep). The sweep's own estimate (each OD pair's excess as the sweep reaches
        # it) runs low by a factor that changes slowly (others' shifts after an origin's turn),
        # so it is scaled by the last measured ratio; the gap is measured at the start, at
        # the end, after the second sweep (a first ratio), when the scaled estimate nears the
        # target and at least every 10 sweeps.
        predicted = estimate * ratio
        if it in (1, 2) or (it > 2 and (it == max_iter or predicted <= 1.5 * gap or since >= 10)):
            cost = P.cost(x)
            sptt = P.aon(cost, scratch)
            total = float(x @ cost)
            g = 1.0 - sptt / total if total > 0 else 0.0
            if _record(res, it, g, gap) or it == max_iter:
                break
            if estimate > 0 and np.isfinite(estimate):
                ratio = max(g / estimate, 1.0)
            since = 0
        elif it > 1:
            _record(res, it, predicted, 0.0)
            res.converged = False
        since += 1
        cost = P.cost(x)
        der = _bpr_deriv(x, P.t0, P.cap, P.b, P.pw)
        plinks, pstart, plen, pflow, pnext, exc, tot = _gp_sweep(
            P.origins, P.dptr, P.dnode, P.ddem, P.indptr, P.nbr_link, P.nbr_node, P.fr,
            P.blocked, P.t0, P.cap, P.b, P.pw, P.fixed, x, cost, der, plinks, pstart, plen,
            pflow, pnext, od_head, used, it == 0)
        estimate = exc / tot if tot > 0 else 0.0
        np.maximum(x, 0.0, out=x)
        if used[1] > 0.75 * plinks.size:
            plinks = _gp_compact(plinks, pstart, plen, pnext, od_head, used)
    return x


def _bfw(P: _Problem, res: UEResult, gap: float, max_iter: int) -> np.ndarray:
    m = P.m
    x = np.zeros(m)
    P.aon(P.cost(x), x)  # iteration 1: all-or-nothing at free flow
    y = np.empty(m)
    sd = np.empty(m)  # previous search target
    psd = np.empty(m)  # the one before
    tau_prev = 1.0
    phase = 0  # 0: next direction is plain FW, 1: conjugate, 2: bi-conjugate
    for it in range(1, max_iter + 1):
        np.maximum(x, 0.0, out=x)
        cost = P.cost(x)
        sptt = P.aon(cost, y)
        total = float(x @ cost)
        if _record(res, it, 1.0 - sptt / total if total > 0 else 0.0, gap) or it == max_iter:
            break
        if phase == 0 or tau_prev >= 1.0:
            s = y.copy()
            phase = 1
        else:
            H = _bpr_deriv(x, P.t0, P.cap, P.b, P.pw)
            if phase == 1:  # conjugate Frank-Wolfe
                u = sd - x
                num = float(H @ (u * (y - x)))
                den = float(H @ (u * (y - sd)))
                alpha = num / den if den != 0.0 else 0.0
                alpha = min(max(alpha, 0.0), 0.99999)
                s = alpha * sd + (1.0 - alpha) * y
                phase = 2
            else:  # bi-conjugate
                xk = tau_prev * sd + (1.0 - tau_prev) * psd - x
                yk = y - x
                zk = sd - x
                wk = psd - sd
                den_mu = float(H @ (xk * wk))
                mu = max(0.0, -float(H @ (xk * yk)) / den_mu) if den_mu != 0.0 else 0.0
                den_nu = float(H @ (zk * zk))
                nu = max(0.0, -float(H @ (zk * yk)) / den_nu
                         + mu * tau_prev / (1.0 - tau_prev)) if den_nu != 0.0 else 0.0
                b0 = 1.0 / (1.0 + nu + mu)
                s = b0 * y + nu * b0 * sd + mu * b0 * psd
        d = s - x
        tau = _line_search(x, d, P.t0, P.cap, P.b, P.pw, P.fixed)
        if tau <= 0.0 and phase != 1:  # the conjugate direction does not descend: plain FW
            s = y.copy()
            d = s - x
            tau = _line_search(x, d, P.t0, P.cap, P.b, P.pw, P.fixed)
            phase = 1
        if tau <= 0.0:  # a FW step that does not descend: at the solution within rounding
            tau = 1e-2 / it
        psd, sd = sd, s
        x += tau * d
        tau_prev = tau
    return x


def link_flows_table(net: TntpNetwork, res: UEResult) -> pd.DataFrame:
    """One row per link: node ids, flow, travel time, generalized cost, volume/capacity."""
    L = net.links
    return pd.DataFrame({
        "init_node": L["init_node"].to_numpy(), "term_node": L["term_node"].to_numpy(),
        "flow": res.flow, "travel_time": res.cost, "cost": res.cost + net.fixed_cost(),
        "voc": res.flow / L["capacity"].to_numpy(dtype=float)})
