"""citytwin's traffic engine side by side with UXsim on the same grid city and the same trips.

20 x 20 grid (links 300-500 m, 1-2 lanes, 30-50 km/h), random OD trips departing uniformly over one
hour, every vehicle simulated individually (UXsim ``deltan=1``; citytwin has no platoons). Both use
the same fixed free-flow shortest routes (UXsim: ``links_prefer`` = the route), the same triangular
fundamental diagram (jam density 0.2 veh/m/lane, backward wave 5 m/s, capacity u*w*k/(u+w)).

    .venv/bin/python benchmarks/traffic_vs_uxsim.py            # 10k, 50k, 100k trips
    .venv/bin/python benchmarks/traffic_vs_uxsim.py --quick    # 10k only

Then a saturated case (``--saturated N``, default 20k trips in 30 min, fixed routes, 3 h simulated
horizon): queues form over the pulse and dissolve after it; compared are the vehicle-hours
including unfinished trips and each link's discharge (vehicles that left it) in total and per
5 minutes. ``--saturated 0`` skips it.

Last, a single one-lane bottleneck fed by Poisson arrivals (``--bottleneck``, on by default):
the mean delay in citytwin, in UXsim and in M/D/1 theory (rho / (2 mu (1 - rho))) per
utilisation and capacity, the queueing ground truth both engines are checked against.
``--no-bottleneck`` skips it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from citytwin import examples
from citytwin.fleet import Fleet
from citytwin.network.routing import road_arrays
from citytwin.traffic import TrafficParams, run_traffic
from citytwin.traffic.grid import grid_roads
from citytwin.traffic.paths import route_trips


def make_trips(G, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    nodes = np.array(sorted(G.nodes))
    o = rng.choice(nodes, 2 * n)
    d = rng.choice(nodes, 2 * n)
    ok = np.flatnonzero(o != d)[:n]
    dep = np.sort(rng.integers(0, 3600, n)).astype(float)
    return pd.DataFrame({"origin_node": o[ok], "dest_node": d[ok], "depart_s": dep})


def run_citytwin(G, trips: pd.DataFrame, *, stuck_s: float, horizon_s: float,
                 dynamic: bool = False) -> tuple[float, pd.DataFrame, dict]:
    routing = {"route_refresh_s": 60.0, "reroute_share": 0.3} if dynamic else {
        "route_refresh_s": 1e9}
    params = TrafficParams(jam_spacing_m=5.0, wave_speed_kph=18.0, stuck_s=stuck_s,
                           record_interval_s=3600.0, **routing)
    t0, c0 = time.perf_counter(), time.process_time()
    eng = run_traffic(examples.assembled(G), params, seed=0, trips=trips, duration_s=horizon_s,
                      fleet=Fleet(ev_share=0.0))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    tab = eng.trips_table().sort_values("trip_id")
    k = eng.kpis()
    k["cpu_s"] = cpu
    return wall, tab, k


def _citytwin_discharge(eng, bins_s: float, horizon_s: float) -> tuple[np.ndarray, float]:
    """Advance ``eng`` to ``horizon_s``; vehicles that left each link per bin, (links, bins), and
    the vehicle-hours including unfinished trips."""
    from citytwin.traffic import _kernel as K

    n_bins = int(np.ceil(horizon_s / bins_s))
    out = np.zeros((eng.arrays.n_edges, n_bins + 1))
    for b in range(1, n_bins + 1):
        eng.advance(min(horizon_s, b * bins_s))
        off, edges = eng.routes()
        left = np.where(eng.state == K.ARRIVED, eng.route_len, np.where(
            eng.state == K.ON_LINK, eng.ridx, 0))
        pos = np.arange(off[-1]) - np.repeat(off[:-1], np.diff(off))
        done = pos < np.repeat(left, np.diff(off))
        out[:, b] = np.bincount(edges[done], minlength=eng.arrays.n_edges)
    return np.diff(out, axis=1), eng.kpis()["vehicle_hours_h"]


def saturated_case(G, n: int, *, pulse_s: float = 1800.0, horizon_s: float = 10800.0,
                   bins_s: float = 300.0) -> None:
    """A demand pulse that saturates the grid: vehicle-hours (unfinished trips included) and per-link
    discharge, citytwin vs UXsim (C++, per vehicle), both on fixed free-flow shortest routes."""
    import uxsim

    from citytwin.engine import StandaloneModel
    from citytwin.traffic.engine import TrafficEngine

    rng = np.random.default_rng(7)
    nodes = np.array(sorted(G.nodes))
    o, d = rng.choice(nodes, 2 * n), rng.choice(nodes, 2 * n)
    ok = np.flatnonzero(o != d)[:n]
    trips = pd.DataFrame({"origin_node": o[ok], "dest_node": d[ok],
                          "depart_s": np.sort(rng.uniform(0, pulse_s, n)).round(1)})
    params = TrafficParams(jam_spacing_m=5.0, wave_speed_kph=18.0, stuck_s=1e9,
                           record_interval_s=horizon_s, route_refresh_s=1e9)
    c0 = time.process_time()
    model = StandaloneModel(examples.assembled(G), seed=0, duration_s=horizon_s,
                            fleet=Fleet(ev_share=0.0))
    eng = TrafficEngine(model, params, trips=trips)
    dis_c, vh_c = _citytwin_discharge(eng, bins_s, horizon_s)
    cpu_c = time.process_time() - c0
    arr = road_arrays(G)
    W = uxsim.World(cpp=True, name="sat", deltan=1, tmax=horizon_s, print_mode=0, save_mode=0,
                    show_mode=0, random_seed=0, vehicle_logging_timestep_interval=0)
    for nd, dd in G.nodes(data=True):
        W.addNode(f"n{nd}", dd["x"], dd["y"])
    links = {}
    for _u, _v, dd in G.edges(data=True):
        links[dd["edge_id"]] = W.addLink(
            f"e{dd['edge_id']}", f"n{_u}", f"n{_v}", length=dd["length"],
            free_flow_speed=dd["speed_kph"] / 3.6, jam_density_per_lane=0.2,
            number_of_lanes=dd["lanes"])
    off, edges = route_trips(arr, [arr.node_pos(x) for x in trips.origin_node],
                             [arr.node_pos(x) for x in trips.dest_node], cost=arr.freeflow_s)
    vehs = [W.addVehicle(f"n{oo}", f"n{de}", float(t),
                         links_prefer=[f"e{e}" for e in edges[off[i]:off[i + 1]]])
            for i, (oo, de, t) in enumerate(zip(trips.origin_node, trips.dest_node,
                                                trips.depart_s, strict=True))]
    c1 = time.process_time()
    W.exec_simulation()
    cpu_u = time.process_time() - c1
    vh_u = 0.0
    done_u = 0
    for v in vehs:
        if v.state == "end":
            vh_u += v.travel_time
            done_u += 1
        elif v.departure_time_in_second < horizon_s:
            vh_u += horizon_s - v.departure_time_in_second
    vh_u /= 3600.0
    n_bins = dis_c.shape[1]
    dis_u = np.zeros_like(dis_c)
    for e, lk in links.items():
        cum = np.array([lk.departure_count(b * bins_s - 1e-6) for b in range(n_bins + 1)])
        dis_u[e] = np.diff(cum)
    done_c = int(np.count_nonzero(np.isfinite(eng.arrive_t)))
    tot_c, tot_u = dis_c.sum(axis=1), dis_u.sum(axis=1)
    busy = (dis_c > 0) | (dis_u > 0)
    r_bin = float(np.corrcoef(dis_c[busy], dis_u[busy])[0, 1])
    r_tot = float(np.corrcoef(tot_c, tot_u)[0, 1])
    print(f"\n== saturated: {n} trips departing over {pulse_s:.0f} s, horizon {horizon_s:.0f} s, "
          "fixed routes, no stuck timer in either")
    print(f"  CPU s            citytwin {cpu_c:8.2f}   uxsim C++ {cpu_u:8.2f}")
    print(f"  completed        citytwin {done_c:8d}   uxsim C++ {done_u:8d}")
    print(f"  vehicle-hours    citytwin {vh_c:8.1f}   uxsim C++ {vh_u:8.1f}   ratio "
          f"{vh_c / vh_u:.4f}   (unfinished trips counted to the horizon)")
    print(f"  link discharge   total {tot_c.sum():.0f} vs {tot_u.sum():.0f} (ratio "
          f"{tot_c.sum() / tot_u.sum():.4f}); per link r {r_tot:.4f}; per link and "
          f"{bins_s:.0f} s bin r {r_bin:.4f}; mean |diff| per busy bin "
          f"{np.abs(dis_c - dis_u)[busy].mean():.2f} veh")
    peak = np.argsort(-dis_u.max(axis=1))[:5]
    cap = arr.capacity_vph
    for e in peak.tolist():
        print(f"    link {e:5d} capacity {cap[e]:6.0f} veh/h: peak {bins_s:.0f} s discharge "
              f"citytwin {dis_c[e].max() * 3600 / bins_s:6.0f}  uxsim {dis_u[e].max() * 3600 / bins_s:6.0f} veh/h")


def _bottleneck_uxsim(cap_vph: float, dep: np.ndarray) -> float:
    """Mean trip time through a one-lane bottleneck of ``cap_vph`` in UXsim (C++, per vehicle):
    a 4-lane feeder and exit, 500 m each, the bottleneck's outflow capacity set."""
    import uxsim

    W = uxsim.World(cpp=True, name="bn", deltan=1, tmax=float(dep[-1] + 3600.0), print_mode=0,
                    save_mode=0, show_mode=0, random_seed=0, vehicle_logging_timestep_interval=0)
    for i, x in enumerate((0.0, 500.0, 1000.0, 1500.0)):
        W.addNode(f"n{i}", x, 0.0)
    for i, lanes in enumerate((4, 1, 4)):
        W.addLink(f"l{i}", f"n{i}", f"n{i + 1}", length=500.0, free_flow_speed=15.0,
                  jam_density_per_lane=0.2, number_of_lanes=lanes,
                  capacity_out=cap_vph / 3600.0 if lanes == 1 else None)
    vehs = [W.addVehicle("n0", "n3", float(t)) for t in dep]
    W.exec_simulation()
    return float(np.mean([v.travel_time for v in vehs if v.state == "end"]))


def _bottleneck_citytwin(cap_vph: float, dep: np.ndarray) -> float:
    from citytwin.traffic.grid import chain_roads

    G = chain_roads([(500.0, 54.0, 4, 8000.0), (500.0, 54.0, 1, cap_vph), (500.0, 54.0, 4, 8000.0)])
    trips = pd.DataFrame({"origin_node": 0, "dest_node": 3, "depart_s": dep})
    eng = run_traffic(examples.assembled(G), TrafficParams(stuck_s=1e9), seed=0, trips=trips)
    tab = eng.trips_table()
    return float((tab["arrive_s"] - tab["depart_s"]).mean())


def bottleneck_case(caps=(900.0, 1800.0), rhos=(0.1, 0.3, 0.5, 0.7, 0.85), n: int = 3000,
                    seeds=(0, 1)) -> None:
    """Mean delay at a one-lane bottleneck: citytwin, UXsim and M/D/1 theory. Each engine's
    delay is its mean trip time minus its own trip time at utilisation 0.01 (each engine's
    free-flow time, discretisation included)."""
    print("\n== one-lane bottleneck, Poisson arrivals: mean delay s (citytwin | UXsim C++ | M/D/1)")
    for cap in caps:
        def mean_tt(fn, rho, k=n, cap=cap):
            out = []
            for sd in seeds:
                rng = np.random.default_rng(sd)
                dep = np.cumsum(rng.exponential(3600.0 / (rho * cap), k))
                out.append(fn(cap, dep))
            return float(np.mean(out))
        base_c = mean_tt(_bottleneck_citytwin, 0.01, 300)
        base_u = mean_tt(_bottleneck_uxsim, 0.01, 300)
        for rho in rhos:
            d_c = mean_tt(_bottleneck_citytwin, rho) - base_c
            d_u = mean_tt(_bottleneck_uxsim, rho) - base_u
            theory = rho / (2 * cap / 3600.0 * (1 - rho))
            print(f"  capacity {cap:5.0f} veh/h  rho {rho:4.2f}:  citytwin {d_c:6.2f}  "
                  f"uxsim {d_u:6.2f}  M/D/1 {theory:6.2f}", flush=True)


def run_uxsim(G, trips: pd.DataFrame, *, cpp: bool, tmax: float, deltan: int = 1,
              dynamic: bool = False) -> tuple[float, float, np.ndarray, float]:
    import uxsim

    arr = road_arrays(G)
    t_build = time.perf_counter()
    W = uxsim.World(cpp=cpp, name="grid", deltan=deltan, tmax=tmax, print_mode=0, save_mode=0,
                    show_mode=0, random_seed=0, vehicle_logging_timestep_interval=0,
                    duo_update_time=300 if dynamic else 600)
    for n, d in G.nodes(data=True):
        W.addNode(f"n{n}", d["x"], d["y"])
    for u, v, d in G.edges(data=True):
        W.addLink(f"e{d['edge_id']}", f"n{u}", f"n{v}", length=d["length"],
                  free_flow_speed=d["speed_kph"] / 3.6, jam_density_per_lane=0.2,
                  number_of_lanes=d["lanes"])
    off, edges = route_trips(arr, [arr.node_pos(x) for x in trips.origin_node],
                             [arr.node_pos(x) for x in trips.dest_node], cost=arr.freeflow_s)
    vehs = []
    for i, (o, dd, t) in enumerate(zip(trips.origin_node, trips.dest_node, trips.depart_s,
                                       strict=True)):
        if i % deltan:
            continue  # with platoons of deltan, one UXsim vehicle carries deltan trips
        route = [f"e{e}" for e in edges[off[i]:off[i + 1]]]
        vehs.append(W.addVehicle(f"n{o}", f"n{dd}", float(t),
                                 links_prefer=[] if dynamic else route))
    t_sim, c_sim = time.perf_counter(), time.process_time()
    W.exec_simulation()
    t_end, c_end = time.perf_counter(), time.process_time()
    # one time per UXsim vehicle; with platoons only the platoon's leading trip gets a time
    tt = np.full(len(trips), np.nan)
    tt[::deltan] = [v.travel_time if v.state == "end" else np.nan for v in vehs]
    return t_end - t_build, t_end - t_sim, tt, c_end - c_sim


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10k trips only")
    ap.add_argument("--sizes", type=int, nargs="*", default=None)
    ap.add_argument("--stuck-s", type=float, default=1e9,
                    help="citytwin stuck timer (UXsim has none; default: off)")
    ap.add_argument("--horizon-s", type=float, default=7200.0,
                    help="simulated period in both engines (trips unfinished by then: not completed)")
    ap.add_argument("--dynamic", action="store_true",
                    help="congestion-aware routing in both (citytwin: trees refreshed every 60 s, "
                         "30 %% of cars en route re-routed; UXsim: its DUO every 300 s) instead of "
                         "fixed routes")
    ap.add_argument("--python-uxsim", action="store_true", help="also run UXsim's Python engine")
    ap.add_argument("--deltan", type=int, nargs="*", default=[1],
                    help="UXsim platoon sizes to run (1 = per vehicle; 5 = the issue's reference)")
    ap.add_argument("--saturated", type=int, default=20_000,
                    help="trips of the saturated pulse case (0: skip)")
    ap.add_argument("--saturated-grid", type=int, default=20,
                    help="side of the saturated case's grid (10 with 15k-25k trips over "
                         "--saturated-pulse-s 900: deep gridlock)")
    ap.add_argument("--saturated-pulse-s", type=float, default=1800.0)
    ap.add_argument("--saturated-horizon-s", type=float, default=10800.0)
    ap.add_argument("--bottleneck", action=argparse.BooleanOptionalAction, default=True,
                    help="one-lane bottleneck against M/D/1 theory in both engines")
    args = ap.parse_args()
    sizes = args.sizes or ([10_000] if args.quick else [10_000, 50_000, 100_000])
    G = grid_roads(20, 20, seed=42)
    print(f"grid 20x20: {G.number_of_nodes()} nodes, {G.number_of_edges()} links")
    # warm the numba kernels (compiled once and cached on disk)
    run_citytwin(G, make_trips(G, 200, 1), stuck_s=args.stuck_s, horizon_s=600.0)
    for n in sizes:
        trips = make_trips(G, n, seed=n)
        wall_c, tab, k = run_citytwin(G, trips, stuck_s=args.stuck_s, horizon_s=args.horizon_s,
                                      dynamic=args.dynamic)
        tt_c = (tab["arrive_s"] - tab["depart_s"]).to_numpy()
        engines = [(f"uxsim C++ deltan={dn}", True, dn) for dn in args.deltan]
        if args.python_uxsim:
            engines.append(("uxsim py deltan=1", False, 1))
        for label, cpp, dn in engines:
            # the same simulated horizon in both (UXsim always runs to tmax)
            tmax = args.horizon_s
            wall_u_total, wall_u_sim, tt_u, cpu_u = run_uxsim(G, trips, cpp=cpp, tmax=tmax,
                                                              deltan=dn, dynamic=args.dynamic)
            both = np.isfinite(tt_c) & np.isfinite(tt_u)
            corr = float(np.corrcoef(tt_c[both], tt_u[both])[0, 1]) if both.sum() > 2 else np.nan
            vh_c = np.nansum(tt_c) / 3600
            vh_u = np.nansum(tt_u) * dn / 3600
            print(f"\n== {n} trips: citytwin vs {label} (tmax {tmax:.0f} s)")
            print(f"  wall time s      citytwin {wall_c:8.2f}   {label} {wall_u_sim:8.2f} "
                  f"(sim only; {wall_u_total:.2f} incl. building the scenario)   "
                  f"ratio {wall_c / wall_u_sim:.3f}")
            print(f"  CPU time s       citytwin {k['cpu_s']:8.2f}   {label} {cpu_u:8.2f} (sim only)"
                  f"   ratio {k['cpu_s'] / cpu_u:.3f}")
            print(f"  completed        citytwin {np.isfinite(tt_c).sum():8d}   {label} "
                  f"{np.isfinite(tt_u).sum() * dn:8d}" + (" (platoons x deltan)" if dn > 1 else ""))
            # (with platoons the mean is over the platoon leaders' trips)
            print(f"  mean trip time s citytwin {np.nanmean(tt_c):8.1f}   {label} "
                  f"{np.nanmean(tt_u):8.1f}   ratio {np.nanmean(tt_c) / np.nanmean(tt_u):.4f}")
            print(f"  vehicle-hours    citytwin {vh_c:8.1f}   {label} {vh_u:8.1f}   "
                  f"ratio {vh_c / vh_u:.4f}")
            print(f"  trip-level correlation {corr:.4f}; citytwin forced moves "
                  f"{int(k['trips_forced_through'])}")
    if args.saturated:
        Gs = G if args.saturated_grid == 20 else grid_roads(args.saturated_grid, args.saturated_grid,
                                                              seed=42)
        saturated_case(Gs, args.saturated, pulse_s=args.saturated_pulse_s,
                       horizon_s=args.saturated_horizon_s)
    if args.bottleneck:
        bottleneck_case()


if __name__ == "__main__":
    main()
