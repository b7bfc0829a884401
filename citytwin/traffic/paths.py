"""Route choice by one-to-one goal-directed search (A* with landmark lower bounds, "ALT").

Every trip ``src -> dst`` gets its own compiled A* search. Its lower bound of the remaining cost
comes from a few landmarks: with free-flow distances ``d`` to and from a landmark ``L``, the
triangle inequality gives ``d(v, t) >= d(v, L) - d(t, L)`` and ``d(v, t) >= d(L, t) - d(L, v)``.
Sixteen landmark tables are computed once per :class:`RoadArrays` (scipy Dijkstra on the
free-flow times, cached on the arrays); they stay valid under any cost that is nowhere below the
free-flow time (the engine's link times never are), and a cost that is lower somewhere scales
them down by its smallest cost / free-flow ratio, so the search stays exact whatever the cost.
A call on congested costs adds tables of ``cost`` itself for four of the landmarks (eight whole
trees, compiled), which bound tightly where the congestion is; a search uses the six landmarks
that bound best at its origin.

Gravity trips span the city, so a search stopped at its target alone saves little (tried and
reverted: c28d1d6); the landmark bound steers the search towards the target and settles a small
share of the network per trip (on the 100k synthetic city's engine costs ~740 of 12.8k nodes;
equal-length blocks make many near-ties, which bound the gain). See ``benchmarks/routing.py``.

Each route is a shortest one under ``cost`` (its cost equals ``scipy.sparse.csgraph.dijkstra``'s
distance within float rounding; the cheapest of parallel links) and depends only on its own
``(src, dst)`` and ``cost``: not on the other trips of the call, on ``batch`` or on ``limit``.
Among exactly tied routes the search order decides (deterministically: heap entries ordered by
bound, then by cost so far, larger first, then by node position).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import ArrayLike
from scipy.sparse import csgraph

from citytwin.errors import InputError
from citytwin.network.routing import RoadArrays, travel_times

__all__ = ["route_trips", "out_csr", "landmarks"]

N_LANDMARKS = 16  # landmark tables: 2 x 16 x n float64 (3.3 MB for the 100k city's 12.8k nodes)
N_ACTIVE = 6  # landmarks a search uses: the best ones at its origin
N_COST_LANDMARKS = 4  # landmarks with tables of a congested call's own cost
CONGESTED = 1.03  # total cost / total free-flow time above which a call computes them
_FAR = 1e30  # "unreachable" in the landmark tables (finite, so that FAR - FAR = 0)
_MIN_COST = 1e-9  # as RoadArrays.matrix: a cost of 0 counts as 1e-9 s


def out_csr(arrays: RoadArrays) -> tuple[np.ndarray, np.ndarray]:
    """Outgoing edge ids grouped by from-node: (offsets (n+1,), edge ids (m,))."""
    order = np.argsort(arrays.edge_from, kind="stable")
    off = np.zeros(arrays.n_nodes + 1, dtype=np.int64)
    np.add.at(off, arrays.edge_from + 1, 1)
    return np.cumsum(off), order.astype(np.int64)


def landmarks(arrays: RoadArrays, k: int = N_LANDMARKS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Landmark node positions and their free-flow distance tables, cached on ``arrays``:
    ``(nodes (k,), from_l (n, k), to_l (n, k))`` with ``from_l[v, j]`` the time from landmark
    ``j`` to ``v`` and ``to_l[v, j]`` the time from ``v`` to it (unreachable: 1e30).

    Landmarks are picked farthest-first: each is the node whose round trip to the nearest
    landmark chosen so far is the longest (the first: the farthest from node 0), so they spread
    over the edges of the network, where they bound best. Closed links (non-finite free-flow
    time) are not part of the tables' graph."""
    hit = arrays.__dict__.get("_landmark_cache")
    if hit is not None and hit[0].shape[0] == min(k, arrays.n_nodes):
        return hit
    n = arrays.n_nodes
    k = min(k, n)
    ff = np.maximum(np.asarray(arrays.freeflow_s, dtype=float), _MIN_COST)
    mat = arrays.matrix(ff)
    matT = mat.T.tocsr()
    from_l = np.empty((n, k))
    to_l = np.empty((n, k))
    nodes = np.empty(k, dtype=np.int64)
    d0 = travel_times(arrays, [0], cost=ff)[0]
    nxt = int(np.argmax(np.where(np.isfinite(d0), d0, -1.0)))
    score = np.full(n, np.inf)
    for j in range(k):
        nodes[j] = nxt
        f = csgraph.dijkstra(mat, directed=True, indices=nxt)
        t = csgraph.dijkstra(matT, directed=True, indices=nxt)
        from_l[:, j] = np.where(np.isfinite(f), f, _FAR)
        to_l[:, j] = np.where(np.isfinite(t), t, _FAR)
        rt = f + t
        score = np.minimum(score, np.where(np.isfinite(rt), rt, -1.0))
        score[nodes[: j + 1]] = -1.0
        nxt = int(np.argmax(score))
    out = (nodes, np.ascontiguousarray(from_l), np.ascontiguousarray(to_l))
    object.__setattr__(arrays, "_landmark_cache", out)
    return out


@njit(cache=True)
def _less(a, b, fk, g):
    """Search order of nodes ``a``, ``b``: smaller bound first, then larger cost so far (nearer
    the target: among tied bounds this goes straight on), then smaller position."""
    if fk[a] != fk[b]:
        return fk[a] < fk[b]
    if g[a] != g[b]:
        return g[a] > g[b]
    return a < b


@njit(cache=True)
def _up(heap, hpos, i, fk, g):
    v = heap[i]
    while i > 0:
        p = (i - 1) >> 2
        u = heap[p]
        if not _less(v, u, fk, g):
            break
        heap[i] = u
        hpos[u] = i
        i = p
    heap[i] = v
    hpos[v] = i


@njit(cache=True)
def _down(heap, hpos, i, size, fk, g):
    v = heap[i]
    while True:
        c = 4 * i + 1
        if c >= size:
            break
        best = c
        for j in range(c + 1, min(c + 4, size)):
            if _less(heap[j], heap[best], fk, g):
                best = j
        u = heap[best]
        if not _less(u, v, fk, g):
            break
        heap[i] = u
        hpos[u] = i
        i = best
    heap[i] = v
    hpos[v] = i


@njit(cache=True)
def _bound(v, act, na, from_l, to_l, ft, tt):
    h = 0.0
    for a in range(na):
        j = act[a]
        x = to_l[v, j] - tt[a]
        if x > h:
            h = x
        x = ft[a] - from_l[v, j]
        if x > h:
            h = x
    return h


@njit(cache=True)
def _search_all(n, off, nbr, eid, w, src, dst, from_l, to_l, n_active, lens):
    """A* for every pair ``src[i] -> dst[i]`` on the CSR (``off``, ``nbr``: head node, ``eid``:
    edge id, ``w``: cost; inf = not passable). Writes route lengths into ``lens`` and returns the
    edge ids of all routes, pair after pair."""
    k = src.shape[0]
    nl = from_l.shape[1]
    na = min(n_active, nl)
    g = np.empty(n)
    fk = np.empty(n)
    hv = np.empty(n)
    pred = np.empty(n, dtype=np.int64)
    seen = np.zeros(n, dtype=np.int64)  # == q + 1: g/fk/hv/pred valid for search q
    done = np.zeros(n, dtype=np.int64)  # == q + 1: settled in search q
    heap = np.empty(n, dtype=np.int64)  # 4-ary heap of node positions, ordered by _less
    hpos = np.full(n, -1, dtype=np.int64)  # position in heap, -1: not in it
    act = np.empty(nl, dtype=np.int64)
    score = np.empty(nl)
    ft = np.empty(nl)
    tt = np.empty(nl)
    out = np.empty(max(16, 16 * k), dtype=np.int64)
    used = 0
    unreachable = 0.25 * _FAR
    for q in range(k):
        s = src[q]
        t = dst[q]
        lens[q] = 0
        if s == t:
            continue
        mark = q + 1
        # the landmarks bounding best at the origin
        for j in range(nl):
            a1 = to_l[s, j] - to_l[t, j]
            a2 = from_l[t, j] - from_l[s, j]
            score[j] = a1 if a1 > a2 else a2
        order = np.argsort(-score, kind="mergesort")
        for a in range(na):
            act[a] = order[a]
            ft[a] = from_l[t, order[a]]
            tt[a] = to_l[t, order[a]]
        h0 = _bound(s, act, na, from_l, to_l, ft, tt)
        if h0 >= unreachable:
            continue
        seen[s] = mark
        g[s] = 0.0
        hv[s] = h0
        fk[s] = h0
        pred[s] = -1
        heap[0] = s
        hpos[s] = 0
        size = 1
        found = False
        while size > 0:
            v = heap[0]
            hpos[v] = -1
            size -= 1
            if size > 0:
                heap[0] = heap[size]
                _down(heap, hpos, 0, size, fk, g)
            done[v] = mark
            if v == t:
                found = True
                break
            gv = g[v]
            for p in range(off[v], off[v + 1]):
                c = w[p]
                if not c < np.inf:
                    continue
                u = nbr[p]
                nd = gv + c
                if seen[u] == mark:
                    if not nd < g[u]:
                        continue
                    if done[u] == mark:
                        done[u] = 0  # reopened (only if the float bound is a hair inconsistent)
                else:
                    seen[u] = mark
                    hv[u] = _bound(u, act, na, from_l, to_l, ft, tt)
                    if hv[u] >= unreachable:  # u cannot reach t even on free-flow links
                        g[u] = -1.0  # never improved on
                        continue
                g[u] = nd
                fk[u] = nd + hv[u]
                pred[u] = p
                i = hpos[u]
                if i < 0:
                    i = size
                    heap[i] = u
                    size += 1
                _up(heap, hpos, i, fk, g)
        for i in range(size):
            hpos[heap[i]] = -1
        if not found:
            continue
        m = 0
        cur = t
        while cur != s:
            m += 1
            cur = _tail(pred[cur], off, n)
        if used + m > out.shape[0]:
            grown = np.empty(max(2 * out.shape[0], used + m), dtype=np.int64)
            grown[:used] = out[:used]
            out = grown
        cur = t
        for i in range(m - 1, -1, -1):
            p = pred[cur]
            out[used + i] = eid[p]
            cur = _tail(p, off, n)
        lens[q] = m
        used += m
    return out[:used]


@njit(cache=True)
def _tail(p, off, n):
    """The from-node of CSR position ``p`` (binary search in ``off``)."""
    lo = 0
    hi = n
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if off[mid] <= p:
            lo = mid
        else:
            hi = mid
    return lo


def route_trips(
    arrays: RoadArrays,
    src: ArrayLike,
    dst: ArrayLike,
    *,
    cost: np.ndarray,
    csr: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fastest routes for trips ``src[i] -> dst[i]`` (node positions) under link ``cost`` (s).

    Returns ``(offsets, edges)``: the edge ids of trip ``i`` are ``edges[offsets[i]:offsets[i+1]]``;
    an empty route means unreachable (or ``src == dst``). Links of non-finite cost are never
    used; a cost below 1e-9 s counts as 1e-9 s (as in :meth:`RoadArrays.matrix`).

    Trips of the same ``(src, dst)`` share one search; a search ends at its target, and its
    route does not depend on the other trips of the call.
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    k = src.shape[0]
    if k == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    n = arrays.n_nodes
    for name, v in (("src", src), ("dst", dst)):
        bad = np.flatnonzero((v < 0) | (v >= n))
        if bad.size:  # the compiled search does not check its indices
            raise InputError(f"{name}: node positions outside 0..{n - 1} at trips "
                             f"{bad[:5].tolist()}", source="route_trips")
    cost = np.maximum(np.asarray(cost, dtype=float), _MIN_COST)
    if cost.shape != (arrays.n_edges,):
        raise InputError(f"cost: expected {arrays.n_edges} values (one per edge_id), got "
                         f"{cost.shape}", source="route_trips")
    out_off, out_edges = csr if csr is not None else _csr_cached(arrays, "out")
    from_l, to_l = _tables(arrays, cost)
    pair, inv = np.unique(src * n + dst, return_inverse=True)
    inv = inv.reshape(-1)
    lens_u = np.zeros(pair.shape[0], dtype=np.int64)
    edges_u = _search_all(
        n, out_off, np.ascontiguousarray(arrays.edge_to[out_edges]), out_edges,
        np.ascontiguousarray(cost[out_edges]), pair // n, pair % n, from_l, to_l, N_ACTIVE, lens_u,
    )
    off_u = np.zeros(pair.shape[0] + 1, dtype=np.int64)
    np.cumsum(lens_u, out=off_u[1:])
    lens = lens_u[inv]
    offsets = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    idx = np.repeat(off_u[inv] - offsets[:-1], lens) + np.arange(offsets[-1])
    return offsets, edges_u[idx]


def _tables(arrays: RoadArrays, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Landmark tables bounding ``cost`` distances: the cached free-flow tables scaled by
    :func:`_bound_scale`, and when ``cost`` is congested (total cost / total free-flow time of
    the passable links above ``CONGESTED``) or below free flow somewhere (the scaled tables bound
    less), tables of ``cost`` itself for the first ``N_COST_LANDMARKS`` landmarks, exact where
    the congestion is. (Near free flow they only crowd out the free-flow landmarks among a
    search's active ones: the 100k city's quiet hours settled ~10 % more nodes with them.)"""
    nodes, from_l, to_l = landmarks(arrays)
    alpha, mean = _bound_scale(arrays, cost)
    if mean <= CONGESTED and alpha >= 0.9:
        return from_l * alpha, to_l * alpha
    n, k0 = from_l.shape
    k = min(N_COST_LANDMARKS, k0)
    f_all = np.empty((n, k0 + k))
    t_all = np.empty((n, k0 + k))
    np.multiply(from_l, alpha, out=f_all[:, :k0])
    np.multiply(to_l, alpha, out=t_all[:, :k0])
    out_off, out_edges = _csr_cached(arrays, "out")
    in_off, in_edges = _csr_cached(arrays, "in")
    _trees(n, out_off, _csr_cached(arrays, "out_nbr"), np.ascontiguousarray(cost[out_edges]),
           nodes[:k], f_all, k0)
    _trees(n, in_off, _csr_cached(arrays, "in_nbr"), np.ascontiguousarray(cost[in_edges]),
           nodes[:k], t_all, k0)
    return f_all, t_all


def _csr_cached(arrays: RoadArrays, which: str):
    cache = arrays.__dict__.get("_paths_csr_cache")
    if cache is None:
        o_off, o_edges = out_csr(arrays)
        order = np.argsort(arrays.edge_to, kind="stable")
        i_off = np.zeros(arrays.n_nodes + 1, dtype=np.int64)
        np.add.at(i_off, arrays.edge_to + 1, 1)
        cache = {"out": (o_off, o_edges), "in": (np.cumsum(i_off), order.astype(np.int64)),
                 "out_nbr": np.ascontiguousarray(arrays.edge_to[o_edges]),
                 "in_nbr": np.ascontiguousarray(arrays.edge_from[order])}
        object.__setattr__(arrays, "_paths_csr_cache", cache)
    return cache[which]


@njit(cache=True)
def _trees(n, off, nbr, w, roots, out, col0):
    """Whole Dijkstra trees from ``roots`` on the CSR: distance x (1 - 1e-9) (unreachable: 1e30)
    into ``out[:, col0 + j]``."""
    g = np.empty(n)
    heap = np.empty(n, dtype=np.int64)
    hpos = np.full(n, -1, dtype=np.int64)
    for j in range(roots.shape[0]):
        g[:] = np.inf
        r = roots[j]
        g[r] = 0.0
        heap[0] = r
        hpos[r] = 0
        size = 1
        while size > 0:
            v = heap[0]
            hpos[v] = -2  # settled
            size -= 1
            if size > 0:
                heap[0] = heap[size]
                _down(heap, hpos, 0, size, g, g)
            gv = g[v]
            for p in range(off[v], off[v + 1]):
                u = nbr[p]
                nd = gv + w[p]
                if nd < g[u]:
                    g[u] = nd
                    i = hpos[u]
                    if i < 0:
                        i = size
                        heap[i] = u
                        size += 1
                    _up(heap, hpos, i, g, g)
        for v in range(n):
            out[v, col0 + j] = g[v] * (1.0 - 1e-9) if g[v] < np.inf else _FAR
            hpos[v] = -1
    return out


def _bound_scale(arrays: RoadArrays, cost: np.ndarray) -> tuple[float, float]:
    """The largest factor by which the free-flow landmark bounds stay below ``cost`` distances:
    the smallest cost / free-flow ratio over the passable links (1 for the engine's link times,
    which are never below free flow; 0 if a closed link is passable), and the total cost over
    the total free-flow time of the passable links."""
    ff = np.maximum(np.asarray(arrays.freeflow_s, dtype=float), _MIN_COST)
    ok = cost < np.inf
    if not ok.any():
        return 0.0, 1.0
    r = cost[ok] / ff[ok]  # ff inf (closed) with a finite cost: 0
    a = float(r.min())
    # a hair below the exact ratio: the tables' own float sums must not make a bound exceed a
    # distance
    # the network-wide slowdown: total cost / total free-flow time, the free-flow times taken as
    # at least 1 s (the engine's link times are never below its 1 s step: half of central
    # Helsinki's links are shorter, and their floor is no congestion)
    both = ok & np.isfinite(ff)
    slow = (float(cost[both].sum() / max(np.maximum(ff[both], 1.0).sum(), _MIN_COST))
            if both.any() else 1.0)
    return max(a * (1.0 - 1e-9), 0.0), slow
