"""``citytwin coverage | site-stations | emergency`` — response coverage, siting, a standalone run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["register"]

DEFAULT_CITY = Path(__file__).resolve().parents[2] / "geodata" / "helsinki.gpkg"
_KINDS = ("fire_station", "ambulance_station")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("coverage", help="travel time from the nearest station to every building")
    p.add_argument("path", nargs="?", default=str(DEFAULT_CITY), help="city file")
    p.add_argument("--kind", action="append", choices=_KINDS,
                   help="station kind(s) to use (repeatable; default fire_station)")
    p.add_argument("--target", type=float, default=240.0, help="travel-time target, s")
    p.add_argument("-o", "--out", default=None,
                   help="write the per-building table (.parquet or .csv)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_coverage)

    p = sub.add_parser("site-stations", help="propose new stations with spopt (MCLP or LSCP)")
    p.add_argument("path", nargs="?", default=str(DEFAULT_CITY), help="city file")
    p.add_argument("--new", type=int, default=1, help="number of new stations (MCLP)")
    p.add_argument("--kind", choices=_KINDS, default="fire_station")
    p.add_argument("--radius", type=float, default=240.0, help="coverage travel time, s")
    p.add_argument("--method", choices=("mclp", "lscp"), default="mclp")
    p.add_argument("--spacing", type=float, default=None,
                   help="candidate grid spacing, m (default: ~150 candidates over the city)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--toml", action="store_true",
                   help="print the proposals as scenario add_station interventions")
    p.set_defaults(func=_site)

    p = sub.add_parser("emergency", help="run the emergency engine alone (no traffic/energy)")
    p.add_argument("path", nargs="?", default=str(DEFAULT_CITY), help="city file")
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--incidents", default=None,
                   help="incident log to replay (.csv or .parquet: time_s, type, location)")
    p.add_argument("--rate-multiplier", type=float, default=1.0)
    p.add_argument("--dispatch", choices=("closest", "zones"), default="closest")
    p.add_argument("--move-up", action="store_true")
    p.add_argument("-o", "--out", default=None, help="folder for incidents/dispatches/units.parquet")
    p.set_defaults(func=_run)


def _load(path: str):  # noqa: ANN202 - City, imported late
    from citytwin.city import City

    return City.from_path(path)


def _coverage(args: argparse.Namespace) -> int:
    from citytwin.emergency import coverage_map, coverage_summary

    city = _load(args.path)
    kinds = tuple(args.kind or ("fire_station",))
    cov = coverage_map(city, kinds=kinds)
    summary = {"city": city.name, "kinds": list(kinds), "target_s": args.target,
               **coverage_summary(cov, city.buildings, target_s=args.target)}
    if args.out:
        out = Path(args.out)
        (cov.to_csv(out) if out.suffix == ".csv" else cov.to_parquet(out))
        print(f"wrote {out}", file=sys.stderr)
    _show(summary, as_json=args.json)
    return 0


def _site(args: argparse.Namespace) -> int:
    from citytwin.emergency.siting import site_stations

    city = _load(args.path)
    res = site_stations(city, new=args.new, kind=args.kind, radius_s=args.radius,
                        method=args.method, candidate_spacing_m=args.spacing)
    summary = {"method": res.method, "radius_s": res.radius_s,
               "covered_before_share": round(res.covered_before_share, 4),
               "covered_after_share": round(res.covered_after_share, 4),
               "demand_cells": res.demand_points, "candidates": res.candidates,
               "proposed": res.proposed.round({"x": 1, "y": 1, "lon": 6, "lat": 6}).to_dict(
                   orient="records")}
    if args.json:
        print(json.dumps(summary, indent=2, default=float))
        return 0
    if args.toml:
        print(res.interventions_toml(args.kind))
        return 0
    _show({k: v for k, v in summary.items() if k != "proposed"}, as_json=False)
    print(res.proposed.to_string(index=False))
    return 0


def _run(args: argparse.Namespace) -> int:
    import pandas as pd

    from citytwin.emergency import EmergencyParams, run_emergency

    city = _load(args.path)
    log = None
    if args.incidents:
        src = Path(args.incidents)
        log = pd.read_csv(src) if src.suffix == ".csv" else pd.read_parquet(src)
    params = EmergencyParams(rate_multiplier=args.rate_multiplier, dispatch=args.dispatch,
                             move_up=args.move_up)
    eng = run_emergency(city, params, seed=args.seed, duration_s=args.hours * 3600.0,
                        incidents=log)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, df in eng.tables().items():
            df.to_parquet(out / f"{name}.parquet")
        print(f"wrote {out}", file=sys.stderr)
    _show({k: round(v, 3) for k, v in eng.kpis().items()}, as_json=False)
    notes = eng.kpi_notes()
    if not eng.stations:
        print("no stations: the city has no fire or ambulance station; emergency KPIs are NaN "
              "(add one with an add_station intervention)")
    for k, why in notes.items():
        if eng.stations or k == "nfpa_met":
            print(f"note: {k}: {why}")
    return 0


def _show(d: dict, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(d, indent=2, default=float))
        return
    for k, v in d.items():
        print(f"{k:32s} {v}")
