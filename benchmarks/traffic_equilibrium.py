"""Static user equilibrium: citytwin's ``static_ue`` side by side with AequilibraE's ``bfw``.

Same links, same BPR parameters, same OD matrix, same relative-gap definition
(``1 - sum(demand * shortest cost) / sum(flow * cost)``), on:

- Sioux Falls (TNTP, with the best-known solution: TSTT and link flows compared);
- a ~1,000-node grid (32 x 32, two-way links, 100 zones, gravity OD);
- the road graph of ``citytwin.examples.synthetic(n)`` (>= 10k nodes at the default
  n = 80,000 buildings) with zones on a 500 m grid and a gravity OD from the buildings'
  population and jobs.

Demand on the generated nets is scaled so that the free-flow all-or-nothing load puts 10 % of the
loaded links above capacity. Figures are CPU-time medians over ``--repeat`` runs (process time of
this process; AequilibraE is run with one core so its threads do not inflate or hide CPU time).

    .venv/bin/python benchmarks/traffic_equilibrium.py [--quick] [--nets sf,grid,city]
        [--gaps 1e-4,1e-6] [--repeat 3] [--n-buildings 80000] [--ours gp,bfw] [--no-aequilibrae]
        [--aeq-max-iter 2000] [--fresh-aequilibrae]

AequilibraE is run once per net, to the smallest gap, and the CPU time at which it first reaches
each gap is read from its iteration log (bfw's iterates do not depend on the target). Its
result is cached in the temp folder (keyed by net, demand, target and cap) because at 1e-6 on the
city it takes most of an hour; a cached result is printed with its date and load average.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from citytwin.traffic.assignment import static_ue
from citytwin.traffic.tntp import TntpNetwork, read_tntp_flow, read_tntp_net, read_tntp_trips

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tntp" / "SiouxFalls"
BEST = 7_480_225.34
CACHE = Path(tempfile.gettempdir()) / "citytwin-bench-ue"


# ----------------------------------------------------------------------------- networks

def _net(fr, to, cap, t0, length, n_nodes, n_zones) -> TntpNetwork:
    m = len(fr)
    links = pd.DataFrame({"init_node": np.asarray(fr, dtype=np.int64),
                          "term_node": np.asarray(to, dtype=np.int64),
                          "capacity": np.asarray(cap, float), "length": np.asarray(length, float),
                          "free_flow_time": np.asarray(t0, float), "b": np.full(m, 0.15),
                          "power": np.full(m, 4.0), "speed": 0.0, "toll": 0.0, "link_type": 1})
    return TntpNetwork(links=links, n_nodes=n_nodes, n_zones=n_zones, first_thru_node=1)


def _gravity(xy: np.ndarray, prod: np.ndarray, attr: np.ndarray, scale_m: float) -> np.ndarray:
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    w = attr[None, :] * np.exp(-d / scale_m)
    np.fill_diagonal(w, 0.0)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
    return prod[:, None] * w


def _scaled(net: TntpNetwork, M: np.ndarray) -> pd.DataFrame:
    """OD table from matrix M scaled so that 10 % of loaded links exceed capacity at free flow."""
    o, d = np.nonzero(M > 0)
    od = pd.DataFrame({"origin": o + 1, "dest": d + 1, "demand": M[o, d]})
    x = static_ue(net, od, gap=1.0, max_iter=1).flow  # the free-flow all-or-nothing load
    voc = x / net.links["capacity"].to_numpy()
    k = float(np.quantile(voc[voc > 0], 0.9))
    od["demand"] /= k
    return od


def grid_net(side: int = 32, zones_side: int = 10, seed: int = 1) -> tuple[TntpNetwork, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ij = np.array([(i, j) for i in range(side) for j in range(side)])
    # zones first (TNTP: zones are nodes 1..Z): a zones_side x zones_side lattice of nodes
    zi = np.linspace(0, side - 1, zones_side).round().astype(int)
    zone_nodes = [i * side + j for i in zi for j in zi]
    order = zone_nodes + [k for k in range(side * side) if k not in set(zone_nodes)]
    new_id = np.empty(side * side, dtype=np.int64)
    new_id[order] = np.arange(1, side * side + 1)
    fr, to = [], []
    for i in range(side):
        for j in range(side):
            a = i * side + j
            for di, dj in ((0, 1), (1, 0)):
                if i + di < side and j + dj < side:
                    b = (i + di) * side + j + dj
                    fr += [new_id[a], new_id[b]]
                    to += [new_id[b], new_id[a]]
    m = len(fr)
    arterial = rng.random(m // 2).repeat(2) < 0.25
    cap = np.where(arterial, 3600.0, 1200.0) * rng.uniform(0.8, 1.2, m)
    length = np.full(m, 0.2)
    t0 = length / np.where(arterial, 60.0, 40.0) * 60.0  # minutes
    net = _net(fr, to, cap, t0, length, side * side, len(zone_nodes))
    xy = ij[np.asarray(zone_nodes)] * 200.0
    pop = rng.lognormal(0.0, 0.5, len(zone_nodes))
    return net, _scaled(net, _gravity(xy, pop, rng.lognormal(0.0, 0.5, len(zone_nodes)), 2000.0))


def city_net(n_buildings: int) -> tuple[TntpNetwork, pd.DataFrame]:
    """The synthetic city's road graph, zones on a 500 m grid (cached in the temp folder)."""
    CACHE.mkdir(exist_ok=True)
    cell = 500.0
    tag = f"city{n_buildings}_{cell:.0f}m"
    f_links, f_od = CACHE / f"{tag}_links.parquet", CACHE / f"{tag}_od.parquet"
    if f_links.exists() and f_od.exists():
        links, od = pd.read_parquet(f_links), pd.read_parquet(f_od)
        meta = links.attrs
        n_nodes = int(max(links["init_node"].max(), links["term_node"].max()))
        nz = int(od[["origin", "dest"]].to_numpy().max()) if "n_zones" not in meta else meta["n_zones"]
        # (zones are nodes 1..Z; a zone without trips would only shrink Z: harmless for both)
        return TntpNetwork(links=links, n_nodes=n_nodes, n_zones=nz, first_thru_node=1), od
    from citytwin import examples

    city = examples.synthetic(n_buildings)
    G = city.roads
    nodes = np.array(list(G.nodes))
    x = np.array([G.nodes[v]["x"] for v in nodes])
    y = np.array([G.nodes[v]["y"] for v in nodes])
    b = city.buildings
    key_n = (np.floor((x - x.min()) / cell) * 1e6 + np.floor((y - y.min()) / cell)).astype(np.int64)
    pos = {v: k for k, v in enumerate(nodes)}
    bn = np.array([pos[v] for v in b["road_node"].to_numpy()])
    pop = np.bincount(bn, weights=b["population"].to_numpy(float), minlength=len(nodes))
    jobs = np.bincount(bn, weights=b["jobs"].to_numpy(float), minlength=len(nodes))
    # per cell, the zone is the node with the most population + jobs attached
    score = pop + jobs
    df = pd.DataFrame({"cell": key_n, "score": score, "k": np.arange(len(nodes))})
    df = df[df["score"] > 0].sort_values(["cell", "score", "k"], ascending=[True, False, True])
    zones = df.groupby("cell", sort=True)["k"].first().to_numpy()
    zcell = key_n[zones]
    cell_of = pd.Series(np.arange(len(zones)), index=zcell)
    zone_of_node = cell_of.reindex(key_n).to_numpy()
    has = ~np.isnan(zone_of_node)
    zpop = np.bincount(zone_of_node[has].astype(int), weights=pop[has], minlength=len(zones))
    zjobs = np.bincount(zone_of_node[has].astype(int), weights=jobs[has], minlength=len(zones))
    order = list(zones) + [k for k in range(len(nodes)) if k not in set(zones.tolist())]
    new_id = np.empty(len(nodes), dtype=np.int64)
    new_id[order] = np.arange(1, len(nodes) + 1)
    fr, to, cap, t0, length = [], [], [], [], []
    for u, v, d in G.edges(data=True):
        fr.append(new_id[pos[u]])
        to.append(new_id[pos[v]])
        cap.append(float(d["capacity_vph"]))
        t0.append(float(d["travel_time"]) / 60.0)  # minutes
        length.append(float(d["length"]) / 1000.0)
    net = _net(fr, to, cap, t0, length, len(nodes), len(zones))
    xy = np.column_stack([x[zones], y[zones]])
    od = _scaled(net, _gravity(xy, zpop, zjobs, 3000.0))
    net.links.to_parquet(f_links)
    od.to_parquet(f_od)
    return net, od


# ----------------------------------------------------------------------------- solvers

def run_citytwin(net: TntpNetwork, od: pd.DataFrame, gap: float, max_iter: int,
                 algorithm: str = "gp"):
    t = time.process_time()
    r = static_ue(net, od, gap=gap, max_iter=max_iter, algorithm=algorithm)
    return time.process_time() - t, r.iterations, r.relative_gap, r.tstt, r.flow


def run_aequilibrae(net: TntpNetwork, od: pd.DataFrame, gaps: list[float], max_iter: int,
                    cache: Path | None = None) -> dict:
    """AequilibraE bfw run once to the smallest gap (bfw's iterates do not depend on the
    target): per gap the CPU seconds and iteration at which the gap is first reached (None
    when not reached; then the gap reached and CPU of the whole run are the comparison).
    With ``cache``, a result of the same net, demand, target and iteration cap is reused
    (long runs at 1e-6 on the city take most of an hour) and printed with its own date and
    load average."""
    key = _aeq_key(net, od, min(gaps), max_iter)
    if cache is not None:
        f_json, f_flow = cache / f"aeq_{key}.json", cache / f"aeq_{key}_flow.npy"
        if f_json.exists() and f_flow.exists():
            out = json.loads(f_json.read_text())
            out["flow"], out["cached"] = np.load(f_flow), str(f_json)
            return out
    la0 = os.getloadavg()
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null), \
            contextlib.redirect_stderr(null):
        out = _run_aequilibrae(net, od, min(gaps), max_iter)
    out["load_start"], out["load_end"] = la0, os.getloadavg()
    out["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    traj = out["trajectory"]  # (CPU s, iteration, gap) after each iteration
    out["at_gap"] = {f"{g:.0e}": next(([c, it, r] for c, it, r in traj if r <= g), None)
                     for g in gaps}
    if cache is not None:
        flow = out.pop("flow")
        f_json.write_text(json.dumps(out))
        np.save(f_flow, flow)
        out["flow"] = flow
    return out


def _aeq_key(net: TntpNetwork, od: pd.DataFrame, gap: float, max_iter: int) -> str:
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(net.links[["init_node", "term_node", "capacity",
                                             "free_flow_time", "b", "power"]].to_numpy(float)))
    h.update(np.ascontiguousarray(od[["origin", "dest", "demand"]].to_numpy(float)))
    return f"{h.hexdigest()[:12]}_{gap:.0e}_{max_iter}"


def _run_aequilibrae(net: TntpNetwork, od: pd.DataFrame, gap: float, max_iter: int) -> dict:
    from aequilibrae.matrix import AequilibraeMatrix
    from aequilibrae.paths import Graph, TrafficAssignment, TrafficClass

    t = time.process_time()
    traj: list[tuple[float, int, float]] = []

    class _Iterations(logging.Handler):  # bfw logs "iteration,rgap,stepsize" after each one
        def emit(self, record: logging.LogRecord) -> None:
            parts = record.getMessage().split(",")
            if len(parts) == 3 and parts[0].isdigit():
                traj.append((time.process_time() - t, int(parts[0]), float(parts[1])))

    handler = _Iterations()
    logging.getLogger("aequilibrae").addHandler(handler)
    try:
        L = net.links
        g = Graph()
        g.network = pd.DataFrame({
            "link_id": np.arange(1, len(L) + 1), "a_node": L["init_node"].to_numpy(),
            "b_node": L["term_node"].to_numpy(), "direction": 1,
            "capacity": L["capacity"].to_numpy(float),
            "free_flow_time": L["free_flow_time"].to_numpy(float),
            "b": L["b"].to_numpy(float), "power": L["power"].to_numpy(float)})
        zones = np.arange(1, net.n_zones + 1)
        g.prepare_graph(zones)
        g.set_graph("free_flow_time")
        g.set_skimming(["free_flow_time"])
        g.set_blocked_centroid_flows(net.first_thru_node > 1)
        mat = AequilibraeMatrix()
        mat.create_empty(zones=len(zones), matrix_names=["demand"], memory_only=True)
        mat.index[:] = zones
        M = np.zeros((len(zones), len(zones)))
        M[od["origin"].to_numpy() - 1, od["dest"].to_numpy() - 1] = od["demand"].to_numpy()
        mat.matrices[:, :, 0] = M
        mat.computational_view(["demand"])
        assig = TrafficAssignment()
        assig.set_classes([TrafficClass("car", g, mat)])
        assig.set_vdf("BPR")
        assig.set_vdf_parameters({"alpha": "b", "beta": "power"})
        assig.set_capacity_field("capacity")
        assig.set_time_field("free_flow_time")
        assig.set_algorithm("bfw")
        assig.set_cores(1)
        assig.max_iter = max_iter
        assig.rgap_target = gap
        assig.execute()
    finally:
        logging.getLogger("aequilibrae").removeHandler(handler)
    dt = time.process_time() - t
    res = assig.results()
    flow = res["matched_flow_ab"].reindex(np.arange(1, len(L) + 1)).fillna(0.0).to_numpy() \
        if "matched_flow_ab" in res else res.iloc[:, 0].to_numpy()
    cost = (L["free_flow_time"].to_numpy() * (1 + L["b"].to_numpy() * (flow / L["capacity"].to_numpy())
                                                ** L["power"].to_numpy()))
    rep = assig.report()
    return {"cpu": dt, "iterations": int(rep["iteration"].max()), "gap": float(rep["rgap"].iloc[-1]),
            "tstt": float(flow @ cost), "flow": flow, "max_iter": max_iter, "trajectory": traj}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="Sioux Falls and the grid, one run each")
    ap.add_argument("--nets", default="sf,grid,city")
    ap.add_argument("--gaps", default="1e-4,1e-6")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-iter", type=int, default=20_000)
    ap.add_argument("--aeq-max-iter", type=int, default=2_000,
                    help="AequilibraE's iteration cap (bfw at ~0.5 s CPU per iteration on the city)")
    ap.add_argument("--n-buildings", type=int, default=80_000)
    ap.add_argument("--no-aequilibrae", action="store_true")
    ap.add_argument("--fresh-aequilibrae", action="store_true",
                    help=f"run AequilibraE again instead of reusing its result cached in {CACHE}")
    ap.add_argument("--ours", default="gp", help="citytwin algorithms to run: gp, bfw or gp,bfw")
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    logging.getLogger("aequilibrae").setLevel(logging.INFO)  # its iteration log is read
    logging.getLogger("citytwin").setLevel(logging.ERROR)  # the warm-up runs stop early
    nets = ["sf", "grid"] if args.quick else args.nets.split(",")
    repeat = 1 if args.quick else args.repeat
    gaps = sorted((float(g) for g in args.gaps.split(",")), reverse=True)
    CACHE.mkdir(exist_ok=True)
    for name in nets:
        if name == "sf":
            d = Path(args.data)
            if not d.is_dir():
                print(f"Sioux Falls: skipped, no data at {d}")
                continue
            net = read_tntp_net(d / "SiouxFalls_net.tntp")
            od = read_tntp_trips(d / "SiouxFalls_trips.tntp")
            ref = read_tntp_flow(d / "SiouxFalls_flow.tntp")["volume"].to_numpy()
            label = "Sioux Falls"
        elif name == "grid":
            net, od = grid_net()
            ref, label = None, "grid 32x32"
        else:
            t = time.perf_counter()
            net, od = city_net(args.n_buildings)
            ref, label = None, f"synthetic({args.n_buildings}) roads"
            print(f"[{label}: network ready in {time.perf_counter() - t:.1f} s]")
        print(f"\n{label}: {net.n_nodes} nodes, {len(net.links)} links, {net.n_zones} zones, "
              f"{len(od)} OD pairs, demand {od['demand'].sum():,.0f}", flush=True)
        algs = args.ours.split(",")
        for alg in algs:
            run_citytwin(net, od, 1e-1, 2, alg)  # JIT warm-up
        aeq = None
        if not args.no_aequilibrae:
            aeq = run_aequilibrae(net, od, gaps, args.aeq_max_iter,
                                  None if args.fresh_aequilibrae else CACHE)
            src = f"cached from {aeq['date']}" if "cached" in aeq else "measured now"
            print(f"  aequilibrae bfw, one run to {gaps[-1]:.0e} (cap {aeq['max_iter']} "
                  f"iterations, 1 core, {src}): {aeq['cpu']:.1f} s CPU, {aeq['iterations']} "
                  f"iterations, gap reached {aeq['gap']:.2e}, load average "
                  f"{aeq['load_start'][0]:.1f} -> {aeq['load_end'][0]:.1f}", flush=True)
        for gap in gaps:
            for alg in algs:
                la = os.getloadavg()[0]
                runs = [run_citytwin(net, od, gap, args.max_iter, alg) for _ in range(repeat)]
                cpu = statistics.median(r[0] for r in runs)
                _, it, g, tstt, flow = runs[0]
                extra = f", TSTT {tstt / BEST - 1:+.1e} vs best known, max |flow - best| " \
                        f"{np.abs(flow - ref).max():.2f}" if ref is not None else f", TSTT {tstt:,.1f}"
                print(f"  gap {gap:.0e} citytwin-{alg:4s}: {cpu:8.2f} s CPU (median of {repeat}), "
                      f"{it:5d} iterations, gap reached {g:.2e}{extra}, load average {la:.1f}",
                      flush=True)
                if aeq is None:
                    continue
                at = aeq["at_gap"].get(f"{gap:.0e}")
                c2, what = (at[0], f"reached at {at[0]:.1f} s CPU, iteration {at[1]}") if at else \
                    (aeq["cpu"], f"NOT reached: {aeq['gap']:.2e} after {aeq['cpu']:.1f} s CPU")
                f2 = aeq["flow"]
                print(f"  gap {gap:.0e} aequilibrae  : {what}; citytwin-{alg} / aequilibrae CPU "
                      f"{cpu / c2:.2g}x; max |flow difference| to aequilibrae's last iterate "
                      f"{np.abs(flow - f2).max():.2f} (mean flow {f2.mean():.0f})", flush=True)


if __name__ == "__main__":
    main()
