"""Route choice on shared shortest-path trees (``scipy.sparse.csgraph`` + a numba path walker).

One Dijkstra tree serves every trip leaving the same origin (or, when there are fewer distinct
destinations, every trip bound for the same destination, using a tree on the reversed graph).
Trees are computed in batches so memory stays bounded, and the edge sequence of each trip is read
off its tree by a compiled walker that picks the cheapest of parallel edges.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy.sparse import csgraph

from citytwin.network.routing import RoadArrays

__all__ = ["route_trips", "out_csr"]


def out_csr(arrays: RoadArrays) -> tuple[np.ndarray, np.ndarray]:
    """Outgoing edge ids grouped by from-node: (offsets (n+1,), edge ids (m,))."""
    order = np.argsort(arrays.edge_from, kind="stable")
    off = np.zeros(arrays.n_nodes + 1, dtype=np.int64)
    np.add.at(off, arrays.edge_from + 1, 1)
    return np.cumsum(off), order.astype(np.int64)


@njit(cache=True)
def _edge_between(a, b, out_off, out_edges, edge_to, cost):
    best = -1
    bc = np.inf
    for j in range(out_off[a], out_off[a + 1]):
        e = out_edges[j]
        if edge_to[e] == b and cost[e] < bc:
            bc = cost[e]
            best = e
    return best


@njit(cache=True)
def _walk(pred, row, src, dst, reverse, buf):
    """Node sequence src -> dst into ``buf``; returns its length (0 if unreachable)."""
    n = 0
    if reverse:  # tree rooted at dst on the reversed graph: pred[v] is the next node towards dst
        cur = src
        while True:
            buf[n] = cur
            n += 1
            if cur == dst:
                return n
            cur = pred[row, cur]
            if cur < 0 or n >= buf.shape[0]:
                return 0
    cur = dst
    while True:
        buf[n] = cur
        n += 1
        if cur == src:
            break
        cur = pred[row, cur]
        if cur < 0 or n >= buf.shape[0]:
            return 0
    # reverse in place
    for i in range(n // 2):
        tmp = buf[i]
        buf[i] = buf[n - 1 - i]
        buf[n - 1 - i] = tmp
    return n


@njit(cache=True)
def _extract(pred, rows, src, dst, reverse, out_off, out_edges, edge_to, cost):
    k = rows.shape[0]
    nn = pred.shape[1]
    buf = np.empty(nn + 1, dtype=np.int64)
    lens = np.zeros(k, dtype=np.int64)
    for i in range(k):
        n = _walk(pred, rows[i], src[i], dst[i], reverse, buf)
        lens[i] = n - 1 if n > 1 else 0
    off = np.zeros(k + 1, dtype=np.int64)
    for i in range(k):
        off[i + 1] = off[i] + lens[i]
    edges = np.empty(off[k], dtype=np.int64)
    for i in range(k):
        if lens[i] == 0:
            continue
        n = _walk(pred, rows[i], src[i], dst[i], reverse, buf)
        for j in range(n - 1):
            edges[off[i] + j] = _edge_between(buf[j], buf[j + 1], out_off, out_edges, edge_to, cost)
    return off, edges


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
    an empty route means unreachable (or ``src == dst``).

    ``limit`` (s) stops each tree at that cost (Dijkstra settles nodes in cost order, so every
    route found is still the shortest); the trips it leaves without a route are routed again
    with unbounded trees, so the result is the same as without a limit, only faster when most
    trips are shorter than ``limit``.
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    k = src.shape[0]
    if k == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    cost = np.asarray(cost, dtype=float)
    out_off, out_edges = csr if csr is not None else out_csr(arrays)
    mat = arrays.matrix(cost)
    u_src = np.unique(src)
    u_dst = np.unique(dst)
    reverse = u_dst.shape[0] < u_src.shape[0]
    roots, key = (u_dst, dst) if reverse else (u_src, src)
    if reverse:
        mat = mat.T.tocsr()
    lens = np.zeros(k, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    root_idx = np.searchsorted(roots, key)
    for b0 in range(0, roots.shape[0], batch):
        sel_roots = roots[b0 : b0 + batch]
        _, pred = csgraph.dijkstra(mat, directed=True, indices=sel_roots, return_predecessors=True,
                                   limit=np.inf if limit is None else float(limit))
        trips = np.flatnonzero((root_idx >= b0) & (root_idx < b0 + batch))
        if trips.shape[0] == 0:
            continue
        off, edges = _extract(
            pred, (root_idx[trips] - b0).astype(np.int64), src[trips], dst[trips], reverse,
            out_off, out_edges, arrays.edge_to, cost,
        )
        lens[trips] = np.diff(off)
        parts.append((trips, off, edges))
    if limit is not None:  # beyond the limit: again with whole trees
        miss = np.flatnonzero((lens == 0) & (src != dst))
        if miss.size:
            off, edges = route_trips(arrays, src[miss], dst[miss], cost=cost, batch=batch,
                                     csr=(out_off, out_edges))
            lens[miss] = np.diff(off)
            parts.append((miss, off, edges))
    offsets = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    out = np.empty(offsets[-1], dtype=np.int64)
    for trips, off, edges in parts:
        # scatter each batch's routes to their global slots
        starts = offsets[trips]
        ln = np.diff(off)
        idx = np.repeat(starts - off[:-1], ln) + np.arange(off[-1])
        out[idx] = edges
    return offsets, out
