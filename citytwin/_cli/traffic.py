"""``citytwin traffic run | ue`` — a traffic day on a city, a static equilibrium on a TNTP net."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["register"]

DEFAULT_CITY = Path(__file__).resolve().parents[2] / "geodata" / "helsinki.gpkg"


def register(sub: argparse._SubParsersAction) -> None:
    top = sub.add_parser("traffic", help="traffic simulation and equilibrium assignment")
    tsub = top.add_subparsers(dest="traffic_command", required=True, metavar="ACTION")

    p = tsub.add_parser("run", help="simulate a day of car trips on a city (Parquet results)")
    p.add_argument("city", nargs="?", default=str(DEFAULT_CITY), help="city layers (default: shipped)")
    p.add_argument("-o", "--out", default=None, help="results folder (trips/links Parquet, kpis.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--trips", default=None,
                   help="CSV/Parquet trips table (origin_node, dest_node, depart_s) instead of demand")
    p.add_argument("--duration-h", type=float, default=None, help="stop after this many hours")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrafficParams value, e.g. --set sample=0.1 --set demand_scale=1.4")
    p.add_argument("--close-street", action="append", default=[], help="close a street by name")
    p.add_argument("--json", action="store_true", help="print KPIs as JSON")
    p.set_defaults(func=_run)

    p = tsub.add_parser("ue", help="static user equilibrium of TNTP net + trips files")
    p.add_argument("net", help="*_net.tntp")
    p.add_argument("trips", help="*_trips.tntp")
    p.add_argument("--flow", default=None, help="*_flow.tntp reference solution to compare with")
    p.add_argument("--gap", type=float, default=1e-5, help="target relative gap")
    p.add_argument("--max-iter", type=int, default=500)
    p.set_defaults(func=_ue)


def _params(pairs: list[str]):
    from citytwin.errors import InputError
    from citytwin.traffic import TrafficParams

    data: dict[str, Any] = {}
    problems: list[str] = []
    for kv in pairs:
        if "=" not in kv:
            problems.append(f"--set {kv!r}: expected KEY=VALUE")
            continue
        k, v = kv.split("=", 1)
        data[k.strip()] = v.strip()
    if problems:
        raise InputError(problems, source="command line")
    try:
        return TrafficParams(**data)
    except ValueError as exc:
        raise InputError(str(exc), source="--set") from None


def _read_table(path: str):
    import pandas as pd

    return pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)


def _run(args: argparse.Namespace) -> int:
    import pandas as pd

    from citytwin.city import City
    from citytwin.network.edits import close_links
    from citytwin.traffic import run_traffic

    params = _params(args.set)
    city = City.from_path(args.city)
    for street in args.close_street:
        city = close_links(city, street=street)
    trips = _read_table(args.trips) if args.trips else None
    t0 = time.perf_counter()
    dur = args.duration_h * 3600.0 if args.duration_h else None
    eng = run_traffic(city, params, seed=args.seed, trips=trips, duration_s=dur)
    wall = time.perf_counter() - t0
    k = eng.kpis()
    k["wall_time_s"] = wall
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, df in eng.tables().items():
            df.to_parquet(out / f"{name}.parquet", index=False)
        (out / "kpis.json").write_text(json.dumps(k, indent=2))
        pd.DataFrame({"kpi": list(k), "value": list(k.values())}).to_parquet(
            out / "kpis.parquet", index=False)
        print(f"wrote {out}", file=sys.stderr)
    if args.json:
        print(json.dumps(k, indent=2))
    else:
        for name, v in k.items():
            print(f"{name:24s} {v:14.3f}")
    return 0


def _ue(args: argparse.Namespace) -> int:
    import numpy as np

    from citytwin.traffic.assignment import (
        read_tntp_flow,
        read_tntp_net,
        read_tntp_trips,
        static_ue,
    )

    net = read_tntp_net(args.net)
    od = read_tntp_trips(args.trips)
    t0 = time.perf_counter()
    res = static_ue(net, od, gap=args.gap, max_iter=args.max_iter)
    wall = time.perf_counter() - t0
    print(f"iterations {res.iterations}  relative gap {res.relative_gap:.3e}  "
          f"TSTT {res.tstt:,.2f}  wall {wall:.2f} s")
    if args.flow:
        ref = read_tntp_flow(args.flow)
        d = res.flow - ref["volume"].to_numpy()
        tstt_ref = float(ref["volume"].to_numpy() @ ref["cost"].to_numpy())
        print(f"reference TSTT {tstt_ref:,.2f} (relative difference {res.tstt / tstt_ref - 1:+.2e}); "
              f"link flow difference: max |d| {np.abs(d).max():.3f}, "
              f"mean |d| {np.abs(d).mean():.3f}, RMSE {np.sqrt((d ** 2).mean()):.3f}")
    return 0
