"""Where a sampled run's delay departs from the full population's (issue 16), link by link.

Runs a test city's traffic at its shipped sample over ``--seeds`` seeds and at sample 1.0 over
two, and sums the links table's ``delay_h`` (vehicle-hours on a link beyond its free-flow time,
scaled to the full population) by link capacity class, by the link's utilisation in the full
population (its entries per hour over its capacity, per 15-minute interval), and by hour. The
trips' departure waits are not on any link; they are printed apart.

    .venv/bin/python benchmarks/sampling_by_link.py                # Kotka, 8 seeds (30 s)
    .venv/bin/python benchmarks/sampling_by_link.py kotka synthetic10000
    .venv/bin/python benchmarks/sampling_by_link.py kotka --free-flow-routes --seeds 12
    .venv/bin/python benchmarks/sampling_by_link.py synthetic2000 --sample 0.2

Measured (free-flow routes: every trip keeps its free-flow route, so routing is out; link
delay sampled/full; 12 / 8 / 16 sampled seeds):

    | city (sample) | all links | 800 veh/h links | 3,200 veh/h links | utilisation 0.3-0.5 |
    |---|---|---|---|---|
    | Kotka (0.2) | 1.25 | 1.35 | - | 1.46 |
    | synthetic 10k (0.1) | 0.83 | 1.67 | 0.79 | 0.84 |
    | synthetic 2k (0.1) | 0.82 | 1.11 | 0.76 | - |

    | hour | 07 | 08 | 09 | 15 | 16 | 17 | 18 |
    |---|---|---|---|---|---|---|---|
    | Kotka | 1.83 | 0.85 | 0.69 | 1.24 | 1.68 | 0.91 | 0.97 |
    | synthetic 10k | 1.18 | 0.81 | 0.50 | 1.19 | 0.99 | 0.62 | 0.56 |

Two things, then. By hour, both cities are too slow while demand rises and too fast once it
falls: the utilisation estimate (a 30-minute average) lags the peaks. By link class, within
one synthetic city the one-lane streets are too slow and the arterials too fast at every
utilisation band; the 10k city's delay is on its arterials (81 of 85 veh-h), so it comes out
short in the quiet hours too (0.7-0.9 at midday).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402  (the test cities and their scenarios)

_BANDS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, np.inf)


def _runs(name: str, sample: float | None, seeds: int, free_flow_routes: bool):
    """(links table with a ``run`` column, departure wait h per run, trips' delay h per run)
    for the shipped (or ``sample``) run over ``seeds`` seeds and the full population over 2."""
    from citytwin import interventions
    from citytwin.scenario import load_scenario
    from citytwin.traffic import run_traffic

    how, toml = scale.CITIES.get(name) or (f"synthetic:{name.removeprefix('synthetic')}",
                                           scale.ROOT / "scenarios" / "baseline.toml")
    city = scale._city(how)
    spec = load_scenario(toml)
    setup = interventions.apply(spec, city)
    params = setup.traffic
    if params is None:
        raise SystemExit(f"{toml}: traffic is off")
    if sample is not None:
        params = params.model_copy(update={"sample": sample})
    if free_flow_routes:
        params = params.model_copy(update={"route_refresh_s": 1e9, "reroute_share": 0.0})
    out = {}
    for label, p, n in (("sampled", params, seeds),
                        ("full", params.model_copy(update={"sample": 1.0}), 2)):
        links, delay = [], []
        for k in range(n):
            eng = run_traffic(setup.city, p, seed=int(spec.seed) + k, fleet=setup.fleet,
                              duration_s=spec.duration_s + 4 * 3600)
            links.append(eng.tables()["links"].assign(run=k))
            delay.append(eng.kpis()["total_delay_h"])
        cap = pd.Series(eng.arrays.capacity_vph, name="capacity_vph")
        out[label] = (pd.concat(links, ignore_index=True), np.array(delay), n)
    return out, cap, params.sample, float(params.record_interval_s)


def report(name: str, sample: float | None = None, seeds: int = 8,
           free_flow_routes: bool = False) -> None:
    runs, cap, s, interval = _runs(name, sample, seeds, free_flow_routes)
    # mean over runs of each link-interval's delay
    per = {label: links.groupby(["edge_id", "time_s"])["delay_h"].sum() / n
           for label, (links, _, n) in runs.items()}
    full_links, _, n_full = runs["full"]
    rho = (full_links.groupby(["edge_id", "time_s"])["volume"].sum() / n_full
           * (3600.0 / interval))
    rho = rho / cap.reindex(rho.index.get_level_values("edge_id")).to_numpy()
    df = pd.concat({"full": per["full"], "sampled": per["sampled"], "rho": rho}, axis=1)
    df = df.fillna({"full": 0.0, "sampled": 0.0, "rho": 0.0})
    edge = df.index.get_level_values("edge_id")
    df["cap"] = cap.reindex(edge).to_numpy()
    df["hour"] = (df.index.get_level_values("time_s") // 3600).astype(int)
    print(f"\n== {name}, sample {s:g}{', free-flow routes' if free_flow_routes else ''}: "
          f"{seeds} sampled seeds, 2 full")
    for label, (_, delay, _) in runs.items():
        on_links = per[label].sum()
        print(f"  {label:8s} trips' delay {scale._fixed(delay.mean(), 2):>8s} veh-h, on links "
              f"{scale._fixed(on_links, 2):>8s}, waiting to depart "
              f"{scale._fixed(delay.mean() - on_links, 2):>6s}")

    def table(key: str, groups) -> None:
        print(f"  | {key} | link-intervals | full veh-h | sampled veh-h | sampled/full |")
        print("  |---|---|---|---|---|")
        for label, m in groups:
            f, g = df.loc[m, "full"].sum(), df.loc[m, "sampled"].sum()
            ratio = scale._fixed(g / f, 2) if f > 1e-6 else "-"
            print(f"  | {label} | {int(m.sum())} | {scale._fixed(f, 2)} | {scale._fixed(g, 2)} "
                  f"| {ratio} |")

    table("capacity veh/h", [(f"{c:g}", df["cap"] == c) for c in np.unique(df["cap"])])
    table("utilisation (full)", [(f"{lo:g}-{hi:g}", (df["rho"] >= lo) & (df["rho"] < hi))
                                 for lo, hi in zip(_BANDS[:-1], _BANDS[1:], strict=True)])
    hours = [h for h in np.unique(df["hour"]) if df.loc[df["hour"] == h, "full"].sum() > 0.01]
    table("hour", [(f"{h:02d}", df["hour"] == h) for h in hours])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cities", nargs="*", default=["kotka"],
                    help=f"{', '.join(scale.CITIES)} or synthetic<N> (default: kotka)")
    ap.add_argument("--seeds", type=int, default=8, help="sampled seeds (full: 2)")
    ap.add_argument("--sample", type=float, default=None, help="instead of the shipped sample")
    ap.add_argument("--free-flow-routes", action="store_true",
                    help="every trip keeps its free-flow route (the queues alone)")
    args = ap.parse_args(argv)
    for name in args.cities:
        report(name, args.sample, args.seeds, args.free_flow_routes)


if __name__ == "__main__":
    main()
