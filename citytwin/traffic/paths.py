"""Route choice on shared shortest-path trees, searched only as far as their trips need.

One Dijkstra search serves every trip leaving the same origin (or, when there are fewer distinct
destinations, every trip bound for the same destination, searching the reversed graph). Each
search stops as soon as the last of its trips' other ends is settled, so a tree costs what its
longest trip needs rather than the whole network, and routes are read off it (edge by edge, the
cheapest of parallel links) inside the same compiled loop.

Ties are broken canonically: nodes are settled in (distance, node position) order and a node's
tree edge is the first that reaches its final distance in that order (for parallel links, the
first in edge-id order). The tree of a node is therefore the same whether the search stops at
its targets, at a cost ``limit`` or runs over the whole network, and every route is a shortest
one (its cost equals ``scipy.sparse.csgraph.dijkstra``'s distance; tested).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from citytwin.network.routing import RoadArrays

__all__ = ["route_trips", "out_csr", "in_csr"]


def out_csr(arrays: RoadArrays) -> tuple[np.ndarray, np.ndarray]:
    """Outgoing edge ids grouped by from-node: (offsets (n+1,), edge ids (m,))."""
    return _group(arrays.edge_from, arrays.n_nodes)


def in_csr(arrays: RoadArrays) -> tuple[np.ndarray, np.ndarray]:
    """Incoming edge ids grouped by to-node: (offsets (n+1,), edge ids (m,)); cached."""
    hit = arrays.__dict__.get("_in_csr_cache")
    if hit is None:
        hit = _group(arrays.edge_to, arrays.n_nodes)
        object.__setattr__(arrays, "_in_csr_cache", hit)
    return hit


def _group(node_of_edge: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(node_of_edge, kind="stable")
    off = np.zeros(n + 1, dtype=np.int64)
    np.add.at(off, node_of_edge + 1, 1)
    return np.cumsum(off), order.astype(np.int64)


@njit(cache=True)
def _less(hd, hn, i, j):
    return hd[i] < hd[j] or (hd[i] == hd[j] and hn[i] < hn[j])


@njit(cache=True)
def _push(hd, hn, size, d, v):
    i = size
    hd[i] = d
    hn[i] = v
    while i > 0:
        p = (i - 1) >> 1
        if _less(hd, hn, i, p):
            hd[i], hd[p] = hd[p], hd[i]
            hn[i], hn[p] = hn[p], hn[i]
            i = p
        else:
            break
    return size + 1


@njit(cache=True)
def _pop(hd, hn, size):
    """Remove the root (the caller has read it); returns the new size."""
    size -= 1
    hd[0] = hd[size]
    hn[0] = hn[size]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and _less(hd, hn, c + 1, c):
            c += 1
        if _less(hd, hn, c, i):
            hd[i], hd[c] = hd[c], hd[i]
            hn[i], hn[c] = hn[c], hn[i]
            i = c
        else:
            break
    return size


@njit(cache=True)
def _route_all(n, off, edges, nbr, back, weight, roots, trip_order, root_start, ends, reverse,
               limit, lens_out):
    """One search per root (``off``/``edges``: the CSR of the links leaving a node, towards
    ``nbr[e]``); the route of each trip is walked back from its other end along the tree links
    (``back[e]``: the node a link leads back to). Writes each trip's route length into
    ``lens_out`` and returns the edge ids, trips in ``trip_order`` order."""
    hd = np.empty(edges.shape[0] + 1)
    hn = np.empty(edges.shape[0] + 1, dtype=np.int64)
    dist = np.empty(n)
    pred = np.full(n, -1, dtype=np.int64)
    stamp = np.zeros(n, dtype=np.int64)  # == r + 1: dist/pred valid for root r
    done = np.zeros(n, dtype=np.int64)  # == r + 1: settled for root r
    want = np.zeros(n, dtype=np.int64)  # == r + 1: a target of root r
    out = np.empty(max(16, 8 * trip_order.shape[0]), dtype=np.int64)
    used = 0
    for r in range(roots.shape[0]):
        mark = r + 1
        root = roots[r]
        n_want = 0
        for j in range(root_start[r], root_start[r + 1]):
            t = ends[trip_order[j]]
            if t != root and want[t] != mark:
                want[t] = mark
                n_want += 1
        if n_want > 0:
            size = _push(hd, hn, 0, 0.0, root)
            stamp[root] = mark
            dist[root] = 0.0
            pred[root] = -1
            while size > 0:
                d = hd[0]
                v = hn[0]
                size = _pop(hd, hn, size)
                if done[v] == mark or d > dist[v]:
                    continue
                done[v] = mark
                if want[v] == mark:
                    n_want -= 1
                    if n_want == 0:
                        break
                for k in range(off[v], off[v + 1]):
                    w = weight[k]
                    if not w < np.inf:
                        continue
                    u = nbr[edges[k]]
                    nd = d + w
                    if nd > limit or done[u] == mark:
                        continue
                    if stamp[u] != mark or nd < dist[u]:
                        stamp[u] = mark
                        dist[u] = nd
                        pred[u] = edges[k]
                        size = _push(hd, hn, size, nd, u)
        for j in range(root_start[r], root_start[r + 1]):
            i = trip_order[j]
            t = ends[i]
            if t == root or done[t] != mark:
                lens_out[i] = 0
                continue
            k = 0
            cur = t
            while cur != root:
                k += 1
                cur = back[pred[cur]]
            if used + k > out.shape[0]:
                grown = np.empty(max(2 * out.shape[0], used + k), dtype=np.int64)
                grown[:used] = out[:used]
                out = grown
            cur = t
            if reverse:  # the walk from the origin runs forwards along the route
                for q in range(k):
                    e = pred[cur]
                    out[used + q] = e
                    cur = back[e]
            else:  # the walk from the destination runs backwards
                for q in range(k - 1, -1, -1):
                    e = pred[cur]
                    out[used + q] = e
                    cur = back[e]
            lens_out[i] = k
            used += k
    return out[:used]


def route_trips(
    arrays: RoadArrays,
    src: np.ndarray,
    dst: np.ndarray,
    *,
    cost: np.ndarray,
    batch: int = 256,
    csr: tuple[np.ndarray, np.ndarray] | None = None,
    limit: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fastest routes for trips ``src[i] -> dst[i]`` (node positions) under link ``cost`` (s).

    Returns ``(offsets, edges)``: the edge ids of trip ``i`` are ``edges[offsets[i]:offsets[i+1]]``;
    an empty route means unreachable (or ``src == dst``). Links of non-finite cost are never
    used; a cost of 0 counts as 1e-9 s (as in :meth:`RoadArrays.matrix`).

    Each search stops once its trips' other ends are settled; ``limit`` (s) stops it at that
    cost too (trips it leaves without a route are routed again without it, so the result never
    depends on ``limit``: ties are broken canonically, see the module). ``batch`` is kept for
    callers of the earlier batched scipy version and unused (a search holds one tree only).
    """
    del batch
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    k = src.shape[0]
    if k == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    cost = np.asarray(cost, dtype=float)
    u_src = np.unique(src)
    u_dst = np.unique(dst)
    reverse = bool(u_dst.shape[0] < u_src.shape[0])
    if reverse:
        off, edges = in_csr(arrays)
        nbr, back = arrays.edge_from, arrays.edge_to
        roots, key, ends = u_dst, dst, src
    else:
        off, edges = csr if csr is not None else out_csr(arrays)
        nbr, back = arrays.edge_to, arrays.edge_from
        roots, key, ends = u_src, src, dst
    weight = cost[edges]
    weight = np.where(np.isfinite(weight), np.maximum(weight, 1e-9), np.inf)
    lens = np.zeros(k, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray]] = []  # (trips in flat order, flat edge ids)
    todo = np.arange(k)
    for lim in ((np.inf,) if limit is None else (float(limit), np.inf)):
        root_idx = np.searchsorted(roots, key[todo])
        by_root = np.argsort(root_idx, kind="stable")
        order = todo[by_root].astype(np.int64)
        sorted_idx = root_idx[by_root]
        used_roots = np.unique(sorted_idx)
        starts = np.append(np.searchsorted(sorted_idx, used_roots), todo.shape[0]).astype(np.int64)
        flat = _route_all(arrays.n_nodes, off, edges, nbr, back, weight, roots[used_roots],
                          order, starts, ends, reverse, lim, lens)
        parts.append((order, flat))
        todo = np.flatnonzero((lens == 0) & (src != dst))
        todo = todo[np.isin(todo, order)] if lim < np.inf else todo[:0]
        if todo.size == 0:
            break
        parts[-1] = (order[~np.isin(order, todo)], flat)  # routes of the missed trips are empty
    offsets = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    out = np.empty(offsets[-1], dtype=np.int64)
    for trips, flat in parts:  # each part's routes, concatenated in its order, to their slots
        ln = lens[trips]
        flat_start = np.cumsum(ln) - ln
        out[np.repeat(offsets[trips] - flat_start, ln) + np.arange(flat.shape[0])] = flat
    return offsets, out
