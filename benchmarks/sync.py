"""Twin sync on the shipped Helsinki baseline: calibration recovery and replay speed.

    .venv/bin/python benchmarks/sync.py            # 24 h, 200 counted links, 1 closure
    .venv/bin/python benchmarks/sync.py --quick    # 8 h, 50 counted links

Observations are generated from the twin itself with known parameters plus noise, then the
calibration starts from the scenario's own parameters and has to find them again:

* traffic — the scenario's trips (its demand model, 10 % sample) x a true demand factor per
  1 km origin zone (lognormal, sigma 0.25) x 1.3, hourly counts on the busiest links with
  Poisson noise; reports the recovered global scale, the zone factors' error and GEH before/after,
  plus the time of the incidence build (peer: one multi-source Dijkstra batch over the same
  origins, the routing floor any assignment pays);
* energy — the energy model's hourly loads x true per-use multipliers, read on every transformer
  and one building per use with 5 % noise; reports recovered multipliers and CV(RMSE)/NMBE;
* replay — the counts as a 15-minute feed with one closure; reports seconds per replay step.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import csgraph

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--write-obs", type=Path, default=None,
                    help="also write the generated counts and meters as an observation folder")
    args = ap.parse_args()
    hours = 8 if args.quick else 24
    n_links = 50 if args.quick else 200

    from citytwin.model import load_city
    from citytwin.rng import stream
    from citytwin.scenario import load_scenario
    from citytwin.twin.calibrate import (
        calibrate_energy,
        calibrate_traffic,
        count_incidence,
        reweight_trips,
    )
    from citytwin.twin.observations import read_closures, read_counts
    from citytwin.twin.sync import (
        SyncTwin,
        _grid_zones,
        make_feed,
        replay,
        scenario_loads,
        scenario_trips,
    )

    spec = load_scenario(ROOT / "scenarios" / "baseline.toml")
    t = time.perf_counter()
    city = load_city(spec.city)
    print(f"city: {len(city.buildings)} buildings, {city.road_arrays.n_edges} links "
          f"({time.perf_counter() - t:.1f} s)")
    t = time.perf_counter()
    trips = scenario_trips(spec, city)
    trips = trips[trips["depart_s"] < hours * 3600].reset_index(drop=True)
    print(f"trips: {len(trips)} (10 % sample, first {hours} h) in {time.perf_counter() - t:.1f} s")

    # ---- traffic truth: per-zone factors x 1.3
    zones = _grid_zones(city, 1000.0)
    zlist = sorted(set(zones.values()))
    zf = dict(zip(zlist, np.exp(0.25 * stream(1, "bench-truth").standard_normal(len(zlist))),
                  strict=True))
    true_f = 1.3 * trips["origin_node"].map(zones).map(zf).to_numpy()
    truth = reweight_trips(trips, true_f, seed=2)
    edges = np.arange(city.road_arrays.n_edges)
    grid = pd.DataFrame({"edge_id": np.repeat(edges, hours),
                         "start_s": np.tile(np.arange(hours) * 3600.0, edges.size)})
    grid["end_s"] = grid["start_s"] + 3600.0
    A, cells = count_incidence(city, truth, grid)
    exact = np.asarray(A @ cells["trips"].to_numpy(float)).ravel() / 0.1  # full population
    grid["count"] = stream(3, "bench-noise").poisson(exact)
    # counted links: the busiest in the *model* (choosing by the noisy counts would bias up)
    Ab, cb = count_incidence(city, trips, grid)
    grid["modelled"] = np.asarray(Ab @ cb["trips"].to_numpy(float)).ravel()
    busiest = grid.groupby("edge_id")["modelled"].sum().nlargest(n_links).index
    counts_raw = grid[grid["edge_id"].isin(busiest)].drop(columns="modelled").rename(
        columns={"start_s": "start", "end_s": "end"})
    counts = read_counts(counts_raw, city, duration_s=spec.duration_s).table

    t = time.perf_counter()
    A0, _ = count_incidence(city, trips, counts)
    t_inc = time.perf_counter() - t
    arr = city.road_arrays
    t = time.perf_counter()
    origins = np.unique([arr._pos[n] for n in trips["origin_node"]])
    mat = arr.matrix(arr.freeflow_s)
    for b0 in range(0, origins.size, 256):
        csgraph.dijkstra(mat, directed=True, indices=origins[b0:b0 + 256], return_predecessors=True)
    t_peer = time.perf_counter() - t
    print(f"incidence: {len(counts)} counts x {len(trips)} trips in {t_inc:.2f} s; peer (Dijkstra "
          f"trees from {origins.size} origins) {t_peer:.2f} s; ratio {t_inc / t_peer:.2f}")

    t, c0 = time.perf_counter(), time.process_time()
    cal = calibrate_traffic(city, trips, counts, od=True, zones=zones, sample=0.1, weight=0.01)
    t_cal = time.perf_counter() - t
    cpu_cal = time.process_time() - c0
    f = cal.trip_factors(trips)
    realised = len(truth) / len(trips)
    print(f"traffic calibration ({t_cal:.1f} s wall, {cpu_cal:.1f} s CPU): scale {cal.scale:.3f} "
          f"(s.e. {cal.scale_se:.3f}, ratio of totals); realised truth "
          f"{realised:.3f} trips per modelled trip (1.3 x zone factors, integer-sampled)")
    m0 = cal.counts["modelled_before_vph"].to_numpy(float)
    c_obs = counts["flow_vph"].to_numpy(float)
    print(f"  least squares through the origin (the old estimator) on the same data: "
          f"{float(m0 @ c_obs / (m0 @ m0)):.3f}")
    oz = trips["origin_node"].map(zones)
    per_zone = pd.DataFrame({"zone": oz, "est": f}).groupby("zone")["est"].agg(["sum", "size"])
    per_zone["truth"] = truth["origin_node"].map(zones).value_counts()
    per_zone = per_zone[per_zone["size"] >= 20]
    zerr = np.abs(per_zone["sum"] / per_zone["truth"] - 1)
    print(f"  origin-zone totals ({len(per_zone)} zones with >= 20 trips): median error "
          f"{np.median(zerr):.1%}, max {np.max(zerr):.1%}")
    for name in ("before", "after_scale", "after"):
        m = getattr(cal, name)
        print(f"  {name:12s} GEH<5 {m['share_geh_lt5']:.1%} (meets DMRB: {m['meets_dmrb']}), "
              f"mean GEH {m['geh_mean']:.2f}, total ratio {m['total_ratio']:.3f}")

    # ---- energy truth
    t = time.perf_counter()
    loads = scenario_loads(spec, city)[:, :hours]
    t_loads = time.perf_counter() - t
    true_k = {"residential": 1.25, "office": 0.8, "retail": 1.1, "education": 0.9}
    b = city.buildings
    k = b["use"].astype(str).map(true_k).fillna(1.0).to_numpy()
    true = loads * k[:, None]
    rows = []
    for tr in sorted(b["transformer"].dropna().astype(str).unique()):
        sel = (b["transformer"].astype(str) == tr).to_numpy()
        rows.append(pd.DataFrame({"target": "transformer", "transformer": tr, "building_id": -1,
                                  "meter": tr, "start_s": np.arange(hours) * 3600.0,
                                  "kw": true[sel].sum(axis=0)}))
    for use in sorted(b["use"].astype(str).unique()):
        i = int(np.flatnonzero(b["use"].astype(str).to_numpy() == use)[0])
        rows.append(pd.DataFrame({"target": "building", "transformer": "", "meter": f"b{i}",
                                  "building_id": int(b.index[i]), "start_s": np.arange(hours) * 3600.0,
                                  "kw": true[i]}))
    meters = pd.concat(rows, ignore_index=True)
    meters["end_s"] = meters["start_s"] + 3600.0
    meters["kw"] *= 1 + 0.05 * stream(4, "bench-noise").standard_normal(len(meters))
    if args.write_obs is not None:
        args.write_obs.mkdir(parents=True, exist_ok=True)
        counts_raw.to_csv(args.write_obs / "counts.csv", index=False)
        m = meters.rename(columns={"start_s": "time"})
        m["building_id"] = m["building_id"].where(m["target"] == "building")
        m["transformer"] = m["transformer"].where(m["target"] == "transformer")
        m[["transformer", "building_id", "time", "kw"]].to_csv(args.write_obs / "meters.csv",
                                                              index=False)
        print(f"wrote observations to {args.write_obs}")
    t = time.perf_counter()
    e = calibrate_energy(city, meters, loads, step_s=3600.0)
    print(f"energy calibration ({time.perf_counter() - t:.2f} s; loads {t_loads:.1f} s): "
          f"{len(meters)} readings")
    print("  multipliers: " + ", ".join(f"{u} {e.multipliers[u]:.3f} (truth {v})"
                                        for u, v in true_k.items() if u in e.multipliers))
    print(f"  before CV(RMSE) {e.before['cv_rmse_pct']:.1f} % NMBE {e.before['nmbe_pct']:+.1f} %; "
          f"after CV(RMSE) {e.after['cv_rmse_pct']:.1f} % NMBE {e.after['nmbe_pct']:+.1f} % "
          f"(meets G14: {e.after['meets_ashrae14']})")

    # ---- replay
    feed_counts = counts_raw.copy()
    closed = int(busiest[0])
    closures = read_closures(pd.DataFrame({"edge_id": [closed], "start": [7 * 3600.0],
                                           "end": [7.5 * 3600.0]}), city)
    feed = make_feed(counts=read_counts(feed_counts, city), closures=closures)
    twin = SyncTwin(city, trips=trips, trip_scale=10.0, bin_s=900.0)
    t = time.perf_counter()
    states = list(replay(feed, twin, step_s=900.0, horizon_s=3600.0))
    dt = time.perf_counter() - t
    print(f"replay: {len(feed)} records, {len(states)} steps in {dt:.1f} s "
          f"({dt / max(len(states), 1):.2f} s/step, includes 3 assignments: open, closed, reopened)")
    last = states[-1].fit.get("traffic", {})
    print(f"  running fit at the end: GEH<5 {last.get('share_geh_lt5', float('nan')):.1%}")


if __name__ == "__main__":
    main()
