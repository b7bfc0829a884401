"""Route choice of a day's trips, window by window as the traffic engine routes them (issue 16).

Generates a city's demand as the engine does, then routes the trips departing in each 300 s
window (the engine's ``route_refresh_s``) with ``citytwin.traffic.paths.route_trips`` (one A*
search per trip with landmark bounds) and with the scipy shared-tree version it replaced (one
``csgraph.dijkstra`` tree per distinct origin or destination, trees limited at 1.5 x the previous
window's 95th-percentile route cost, as the engine called it), on three link costs: free flow,
free flow x a seeded random factor 1-3 per link, and free flow x (1 + 3 exp(-(r / R)^2)), a
congested centre (r: distance from the network's centre, R: a quarter of its extent). Prints
CPU medians (``time.process_time``) of the repeats, the ratio, and checks that every route is
connected and costs what the scipy route costs (the Dijkstra distance), reachable or not alike.

    .venv/bin/python benchmarks/routing.py                        # synthetic(100000)
    .venv/bin/python benchmarks/routing.py --city synthetic10000 --repeats 3
    .venv/bin/python benchmarks/routing.py --city helsinki
    .venv/bin/python benchmarks/routing.py --cache /tmp/ctr       # keep arrays + trips in an npz
    .venv/bin/python benchmarks/routing.py --every 6              # every 6th window only

Figures (2026-12-02, the shared 2-core machine under load, CPU s):

    synthetic100000, --every 12 (23 544 trips, 21 windows): scipy trees / A*
      free flow 47.1 / 11.9 (4.0x), ff x U(1,3) 55.3 / 9.1 (6.1x), congested centre 48.2 / 14.0 (3.4x)
    helsinki, whole day (850 trips, 196 windows): free flow 0.43 / 0.19, congested 0.33-0.38 / 0.50-0.54
    synthetic100000 after Clark's density gradient (8 388 trips in the --every 12 windows):
      free flow 19.9 / 3.0 (6.7x), ff x U(1,3) 18.6 / 3.7 (5.1x), congested centre 15.0 / 5.1 (2.9x)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from numba import njit
from scipy.sparse import csgraph

from citytwin.network.routing import RoadArrays
from citytwin.traffic import paths
from citytwin.traffic.params import TrafficParams

WINDOW_S = 300.0


# ------------------------------------------------------------ the scipy shared-tree version
@njit(cache=True)
def _old_edge_between(a, b, out_off, out_edges, edge_to, cost):
    best = -1
    bc = np.inf
    for j in range(out_off[a], out_off[a + 1]):
        e = out_edges[j]
        if edge_to[e] == b and cost[e] < bc:
            bc = cost[e]
            best = e
    return best


@njit(cache=True)
def _old_walk(pred, row, src, dst, reverse, buf):
    n = 0
    if reverse:
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
    for i in range(n // 2):
        tmp = buf[i]
        buf[i] = buf[n - 1 - i]
        buf[n - 1 - i] = tmp
    return n


@njit(cache=True)
def _old_extract(pred, rows, src, dst, reverse, out_off, out_edges, edge_to, cost):
    k = rows.shape[0]
    buf = np.empty(pred.shape[1] + 1, dtype=np.int64)
    lens = np.zeros(k, dtype=np.int64)
    for i in range(k):
        n = _old_walk(pred, rows[i], src[i], dst[i], reverse, buf)
        lens[i] = n - 1 if n > 1 else 0
    off = np.zeros(k + 1, dtype=np.int64)
    for i in range(k):
        off[i + 1] = off[i] + lens[i]
    edges = np.empty(off[k], dtype=np.int64)
    for i in range(k):
        if lens[i] == 0:
            continue
        n = _old_walk(pred, rows[i], src[i], dst[i], reverse, buf)
        for j in range(n - 1):
            edges[off[i] + j] = _old_edge_between(buf[j], buf[j + 1], out_off, out_edges, edge_to,
                                                  cost)
    return off, edges


def scipy_route_trips(arrays: RoadArrays, src, dst, *, cost, batch=256, csr=None, limit=None):
    """``route_trips`` as of cd14dcd: scipy trees shared by origin (or destination)."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    k = src.shape[0]
    if k == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    cost = np.asarray(cost, dtype=float)
    out_off, out_edges = csr if csr is not None else paths.out_csr(arrays)
    mat = arrays.matrix(cost)
    u_src, u_dst = np.unique(src), np.unique(dst)
    reverse = u_dst.shape[0] < u_src.shape[0]
    roots, key = (u_dst, dst) if reverse else (u_src, src)
    if reverse:
        mat = mat.T.tocsr()
    lens = np.zeros(k, dtype=np.int64)
    parts = []
    root_idx = np.searchsorted(roots, key)
    for b0 in range(0, roots.shape[0], batch):
        _, pred = csgraph.dijkstra(mat, directed=True, indices=roots[b0:b0 + batch],
                                   return_predecessors=True,
                                   limit=np.inf if limit is None else float(limit))
        trips = np.flatnonzero((root_idx >= b0) & (root_idx < b0 + batch))
        if trips.shape[0] == 0:
            continue
        off, edges = _old_extract(pred, (root_idx[trips] - b0).astype(np.int64), src[trips],
                                  dst[trips], reverse, out_off, out_edges, arrays.edge_to, cost)
        lens[trips] = np.diff(off)
        parts.append((trips, off, edges))
    if limit is not None:
        miss = np.flatnonzero((lens == 0) & (src != dst))
        if miss.size:
            off, edges = scipy_route_trips(arrays, src[miss], dst[miss], cost=cost, batch=batch,
                                           csr=(out_off, out_edges))
            lens[miss] = np.diff(off)
            parts.append((miss, off, edges))
    offsets = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    out = np.empty(offsets[-1], dtype=np.int64)
    for trips, off, edges in parts:
        ln = np.diff(off)
        out[np.repeat(offsets[trips] - off[:-1], ln) + np.arange(off[-1])] = edges
    return offsets, out


# ------------------------------------------------------------ set-up
def _load(city_name: str, cache: Path | None):
    """(arrays, o_pos, d_pos, depart_s, demand CPU s or None when cached)."""
    npz = cache / f"routing_{city_name}.npz" if cache else None
    if npz is not None and npz.exists():
        z = np.load(npz, allow_pickle=False)
        a = RoadArrays(node_ids=np.arange(z["x"].shape[0]), x=z["x"], y=z["y"],
                       edge_from=z["ef"], edge_to=z["et"], length_m=z["length"],
                       freeflow_s=z["ff"], lanes=z["lanes"], capacity_vph=z["cap"],
                       edge_keys=())
        return a, z["o"], z["d"], z["dep"], None
    from citytwin import examples
    from citytwin.traffic.demand import generate_demand
    from citytwin.traffic.engine import prepare_trips

    c = time.process_time()
    city = (examples.helsinki() if city_name == "helsinki"
            else examples.synthetic(int(city_name.removeprefix("synthetic"))))
    print(f"city {city_name}: built in {time.process_time() - c:.1f} s CPU")
    a = city.road_arrays
    c = time.process_time()
    # as TrafficEngine.__init__ does (the baseline scenario: sample 0.1, seed 1)
    trips = generate_demand(city, TrafficParams(sample=0.1), seed=1, arrays=a)
    demand_cpu = time.process_time() - c
    t = prepare_trips(trips, a)
    o, d, dep = (t[col].to_numpy() for col in ("o_pos", "d_pos", "depart_s"))
    if npz is not None:
        npz.parent.mkdir(parents=True, exist_ok=True)
        np.savez(npz, x=a.x, y=a.y, ef=a.edge_from, et=a.edge_to, length=a.length_m,
                 ff=a.freeflow_s, lanes=a.lanes, cap=a.capacity_vph, o=o, d=d, dep=dep)
    return a, o, d, dep, demand_cpu


def _costs(a: RoadArrays, seed: int) -> dict[str, np.ndarray]:
    ff = np.maximum(np.where(np.isfinite(a.freeflow_s), a.freeflow_s, 1e9), 1.0)  # engine's ff
    closed = ~np.isfinite(a.freeflow_s)
    rng = np.random.default_rng(seed)
    mx, my = (a.x[a.edge_from] + a.x[a.edge_to]) / 2, (a.y[a.edge_from] + a.y[a.edge_to]) / 2
    cx, cy = np.median(a.x), np.median(a.y)
    R = max(np.ptp(a.x), np.ptp(a.y)) / 4
    out = {"free flow": ff.copy(),
           "ff x U(1,3)": ff * rng.uniform(1, 3, a.n_edges),
           "congested centre": ff * (1 + 3 * np.exp(-((mx - cx) ** 2 + (my - cy) ** 2) / R ** 2))}
    for c in out.values():
        c[closed] = np.inf
    return out


def _windows(dep: np.ndarray, every: int) -> list[np.ndarray]:
    w = np.floor(dep / WINDOW_S).astype(np.int64)
    order = np.argsort(w, kind="stable")
    bounds = np.searchsorted(w[order], np.arange(w.max() + 2))
    return [order[bounds[i]:bounds[i + 1]] for i in range(0, w.max() + 1, every)
            if bounds[i + 1] > bounds[i]]


def _run(fn, a, o, d, windows, cost, csr, use_limit):
    """Route every window; returns (CPU s, list of (offsets, edges) per window). ``use_limit``:
    trees limited as the engine limited the scipy version (route_trips has no limit)."""
    out = []
    limit = None
    c = time.process_time()
    for sel in windows:
        kw = {"limit": limit} if use_limit else {}
        off, edges = fn(a, o[sel], d[sel], cost=cost, csr=csr, **kw)
        out.append((off, edges))
        if use_limit:  # as the engine's _refresh_routes
            found = np.diff(off) > 0
            if found.any():
                rc = np.add.reduceat(cost[edges], off[:-1][found])
                limit = max(600.0, 1.5 * float(np.percentile(rc, 95)))
    return time.process_time() - c, out


def _check(a, o, d, windows, cost, new, old) -> tuple[int, int]:
    """Asserts connected routes costing the scipy routes' costs; returns (trips, same routes)."""
    n_same = n_all = 0
    for sel, (no, ne), (oo, oe) in zip(windows, new, old, strict=True):
        ln, lo = np.diff(no), np.diff(oo)
        assert ((ln > 0) == (lo > 0)).all(), "reachable differently"
        for i in np.flatnonzero(ln > 0):
            r = ne[no[i]:no[i + 1]]
            assert a.edge_from[r[0]] == o[sel[i]] and a.edge_to[r[-1]] == d[sel[i]]
            assert (a.edge_to[r[:-1]] == a.edge_from[r[1:]]).all(), "not connected"
        cn = np.add.reduceat(cost[ne], no[:-1][ln > 0]) if ne.size else np.zeros(0)
        co = np.add.reduceat(cost[oe], oo[:-1][lo > 0]) if oe.size else np.zeros(0)
        assert np.allclose(cn, co, rtol=1e-9, atol=1e-6), f"not shortest: {np.abs(cn - co).max()}"
        n_all += sel.shape[0]
        n_same += int(sum(np.array_equal(ne[no[i]:no[i + 1]], oe[oo[i]:oo[i + 1]])
                          for i in range(sel.shape[0])))
    return n_all, n_same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--city", default="synthetic100000",
                    help="synthetic<N> or helsinki (default synthetic100000)")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the new search (median)")
    ap.add_argument("--old-repeats", type=int, default=1, help="repeats of the scipy trees")
    ap.add_argument("--every", type=int, default=1, help="route every k-th window only")
    ap.add_argument("--cache", type=Path, help="directory for the city's arrays and trips")
    ap.add_argument("--seed", type=int, default=7, help="seed of the random congestion")
    args = ap.parse_args()
    a, o, d, dep, demand_cpu = _load(args.city, args.cache)
    if demand_cpu is not None:
        print(f"demand: {o.shape[0]} trips in {demand_cpu:.1f} s CPU")
    windows = _windows(dep, args.every)
    n = sum(w.shape[0] for w in windows)
    print(f"{a.n_nodes} nodes, {a.n_edges} edges; {n} trips in {len(windows)} windows of "
          f"{WINDOW_S:.0f} s")
    csr = paths.out_csr(a)
    c = time.process_time()
    paths.landmarks(a)
    print(f"landmark tables: {time.process_time() - c:.2f} s CPU (once per road network)")
    # compile both
    for fn in (paths.route_trips, scipy_route_trips):
        fn(a, o[:2], d[:2], cost=a.freeflow_s, csr=csr)
    print("| cost | scipy trees CPU s | A* CPU s | ratio | trips | same routes |")
    print("|---|---|---|---|---|---|")
    for name, cost in _costs(a, args.seed).items():
        olds = [_run(scipy_route_trips, a, o, d, windows, cost, csr, True)
                for _ in range(args.old_repeats)]
        news = [_run(paths.route_trips, a, o, d, windows, cost, csr, False)
                for _ in range(args.repeats)]
        t_old = statistics.median(t for t, _ in olds)
        t_new = statistics.median(t for t, _ in news)
        for _, r in news[1:]:  # repeats: identical routes
            assert all(np.array_equal(x[1], y[1]) for x, y in zip(r, news[0][1], strict=True))
        n_all, n_same = _check(a, o, d, windows, cost, news[0][1], olds[0][1])
        print(f"| {name} | {t_old:.2f} | {t_new:.2f} | {t_old / max(t_new, 1e-9):.1f}x "
              f"| {n_all} | {n_same / max(n_all, 1):.1%} |", flush=True)


if __name__ == "__main__":
    main()
