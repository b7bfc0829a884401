"""CLI: ``calibrate`` (fit a scenario to observations) and ``sync`` (replay an observation feed)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("calibrate", help="fit a scenario's demand, loads and incident rates to "
                       "observations; write a calibrated scenario and a report")
    p.add_argument("scenario", type=Path, help="scenario TOML file")
    p.add_argument("observations", type=Path,
                   help="folder with counts/meters/incidents[/closures] .csv or .parquet")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: results/calibration/<scenario>)")
    p.add_argument("--no-od", action="store_true", help="global demand scale only, no OD adjustment")
    p.add_argument("--zone-m", type=float, default=1000.0, help="OD zone grid size, m")
    p.add_argument("--no-response", action="store_true",
                   help="skip the emergency run that gives modelled response times")
    p.add_argument("--verify", action="store_true",
                   help="also run the traffic engine before/after and report its GEH")
    p.add_argument("--engine-iterations", type=int, default=0, metavar="N",
                   help="rescale demand N times so the traffic engine's volumes match the "
                   "counts (implies --verify)")
    p.set_defaults(func=_calibrate)

    p = sub.add_parser("sync", help="replay an observation feed through the twin, step by step")
    p.add_argument("scenario", type=Path, help="scenario TOML file")
    p.add_argument("observations", type=Path,
                   help="folder with counts/meters/incidents/closures .csv or .parquet")
    p.add_argument("--step", type=float, default=900.0, help="replay step, s")
    p.add_argument("--horizon", type=float, default=3600.0, help="forecast horizon, s")
    p.add_argument("--smoothing", type=float, default=0.5,
                   help="weight of the newest observed/simulated ratio (0-1]")
    p.add_argument("--out", type=Path, default=None,
                   help="write every state (observed, simulated, forecast) to this Parquet file")
    p.set_defaults(func=_sync)


def _calibrate(args: argparse.Namespace) -> int:
    from citytwin.scenario import load_scenario
    from citytwin.twin.sync import calibrate_scenario

    spec = load_scenario(args.scenario)
    out = args.out or Path("results") / "calibration" / spec.name
    rep = calibrate_scenario(spec, args.observations, out=out, od=not args.no_od,
                             zone_m=args.zone_m, response=not args.no_response,
                             verify=args.verify, engine_iterations=args.engine_iterations)
    for kind, s in rep.observations.items():
        print(f"{kind}: {s['accepted']} of {s['read']} records used, {s['rejected']} rejected"
              + (f" {s['rejected_by_reason']}" if s["rejected"] else ""))
    if rep.traffic:
        b, a = rep.traffic["before"], rep.traffic["after"]
        print(f"traffic: demand x{rep.traffic['scale']:.3f}; GEH<5 share "
              f"{b['share_geh_lt5']:.0%} -> {a['share_geh_lt5']:.0%} "
              f"({'meets' if a['meets_dmrb'] else 'fails'} DMRB > 85 %)")
        if "engine_after" in rep.traffic:
            eb, ea = rep.traffic["engine_before"], rep.traffic["engine_after"]
            print(f"traffic engine check: GEH<5 share {eb['share_geh_lt5']:.0%} -> "
                  f"{ea['share_geh_lt5']:.0%}, total ratio {eb['total_ratio']:.2f} -> "
                  f"{ea['total_ratio']:.2f}"
                  + (f" after {rep.traffic['engine_iterations']} engine rescalings "
                     f"(x{rep.traffic['engine_scale']:.3f})" if rep.traffic["engine_iterations"]
                     else ""))
    if rep.energy:
        b, a = rep.energy["before"], rep.energy["after"]
        print(f"energy: CV(RMSE) {b['cv_rmse_pct']:.1f} % -> {a['cv_rmse_pct']:.1f} %, NMBE "
              f"{b['nmbe_pct']:+.1f} % -> {a['nmbe_pct']:+.1f} % "
              f"({'meets' if a['meets_ashrae14'] else 'fails'} ASHRAE G14 hourly)")
    if rep.emergency:
        k = rep.emergency["multipliers_by_type"]
        print("incidents: rate multipliers " + ", ".join(f"{t} x{v:.2f}" for t, v in k.items()))
    print(f"wrote {out / rep.files['scenario']} and {out / 'report.md'}")
    return 0


def _sync(args: argparse.Namespace) -> int:
    import pandas as pd

    from citytwin.model import load_city
    from citytwin.scenario import load_scenario
    from citytwin.twin.sync import load_observations, make_feed, replay, scenario_twin, states_table

    spec = load_scenario(args.scenario)
    city = load_city(spec.city)
    obs = load_observations(args.observations, city, start=pd.Timestamp(spec.start),
                            duration_s=spec.duration_s)
    feed = make_feed(**{k: v for k, v in obs.items()})
    twin = scenario_twin(spec, city, traffic="counts" in obs, loads="meters" in obs,
                         bin_s=args.step)
    states = []
    for s in replay(feed, twin, step_s=args.step, horizon_s=args.horizon,
                    smoothing=args.smoothing):
        states.append(s)
        fit = s.fit
        parts = [f"t={s.time / 3600:6.2f} h", f"{len(s.observed):4d} records"]
        if "traffic" in fit:
            parts.append(f"GEH<5 {fit['traffic']['share_geh_lt5']:.0%}")
        if "energy" in fit:
            parts.append(f"CV(RMSE) {fit['energy']['cv_rmse_pct']:.1f} %")
        if s.closed_edges:
            parts.append(f"closed {sorted(s.closed_edges)}")
        print("  ".join(parts))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        states_table(states).to_parquet(args.out)
        print(f"wrote {len(states)} states to {args.out}")
    if states:
        print(json.dumps(states[-1].fit, default=str))
    return 0
