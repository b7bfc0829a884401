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

    p = tsub.add_parser("ue", help="static user equilibrium of TNTP net + trips files",
                        description="Static user equilibrium (BPR links; path-based gradient "
                        "projection or bi-conjugate Frank-Wolfe) "
                        "of a TNTP network and trip table. Exit 0 at the target gap, 1 when "
                        "--max-iter ends first (the gap reached is printed), 2 on bad input.")
    p.add_argument("net", help="*_net.tntp")
    p.add_argument("trips", help="*_trips.tntp")
    p.add_argument("--flow", default=None,
                   help="*_flow.tntp reference solution to compare with (links matched by node "
                   "pair; travel times recomputed from its volumes)")
    p.add_argument("--flows-out", default=None, metavar="FILE",
                   help="write link flows, times and costs to FILE (.csv or .parquet)")
    p.add_argument("--gap", type=float, default=1e-5, help="target relative gap")
    p.add_argument("--max-iter", type=int, default=10_000)
    p.add_argument("--algorithm", choices=["gp", "bfw"], default="gp",
                   help="gp: path-based gradient projection (default); bfw: bi-conjugate "
                   "Frank-Wolfe")
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
    # numpy/pandas/numba only: no simulation stack (mesa, pandapower, geopandas) is imported here
    from citytwin.errors import InputError
    from citytwin.traffic.tntp import check_trips_against_net, read_tntp_net, read_tntp_trips

    problems = []
    if not args.gap > 0:
        problems.append(f"--gap {args.gap}: expected a relative gap > 0")
    if args.max_iter < 1:
        problems.append(f"--max-iter {args.max_iter}: expected >= 1")
    out = Path(args.flows_out) if args.flows_out else None
    if out is not None:
        if out.suffix.lower() not in (".csv", ".parquet"):
            problems.append(f"--flows-out {out}: expected a .csv or .parquet file name")
        elif out.is_dir():
            problems.append(f"--flows-out {out}: is a directory; expected a file name")
        elif not out.parent.is_dir():
            problems.append(f"--flows-out {out}: folder {out.parent} does not exist")
    if problems:
        raise InputError(problems, source="command line")
    net = read_tntp_net(args.net)
    od = read_tntp_trips(args.trips)
    check_trips_against_net(net, od)
    ref = None
    if args.flow:
        from citytwin.traffic.tntp import read_tntp_flow

        ref = read_tntp_flow(args.flow)
    from citytwin.traffic.assignment import link_flows_table, static_ue

    t0 = time.perf_counter()
    res = static_ue(net, od, gap=args.gap, max_iter=args.max_iter, algorithm=args.algorithm)
    wall = time.perf_counter() - t0
    gen = f"  generalized cost {res.total_cost:,.2f}" if res.total_cost != res.tstt else ""
    print(f"iterations {res.iterations}  relative gap {res.relative_gap:.3e}  "
          f"TSTT {res.tstt:,.2f}{gen}  wall {wall:.2f} s")
    if out is not None:
        _write_table(link_flows_table(net, res), out)
        print(f"wrote {out}", file=sys.stderr)
    if ref is not None:
        print(_compare_flow(net, res, ref))
    if not res.converged:
        print(f"error: not converged: relative gap {res.relative_gap:.3e} after "
              f"{res.iterations} iterations (target {args.gap:.1e}); raise --max-iter",
              file=sys.stderr)
        return 1
    return 0


def _write_table(df, out: Path) -> None:
    import os

    tmp = out.with_name(f".{out.name}.tmp")
    if out.suffix.lower() == ".parquet":
        df.to_parquet(tmp, index=False)
    else:
        df.to_csv(tmp, index=False)
    os.replace(tmp, out)


def _compare_flow(net, res, ref) -> str:
    """Our flows against a reference flow file, links matched by (init, term) node pair (the
    k-th parallel link with the k-th), the reference's travel times recomputed from its volumes
    with the net's BPR parameters (a flow file's cost column is the generalized cost on nets
    with tolls or distance factors, so it is not a time)."""
    import numpy as np
    import pandas as pd

    from citytwin.errors import InputError
    from citytwin.traffic.assignment import bpr_cost

    L = net.links
    ours = pd.DataFrame({"init_node": L["init_node"].to_numpy(), "term_node": L["term_node"].to_numpy(),
                         "link": np.arange(len(L))})
    theirs = ref[["init_node", "term_node", "volume"]].copy()
    for df in (ours, theirs):
        df["k"] = df.groupby(["init_node", "term_node"]).cumcount()
    j = ours.merge(theirs, on=["init_node", "term_node", "k"], how="outer", indicator=True)
    problems = []
    for side, what in (("left_only", "in the network but not in the flow file"),
                       ("right_only", "in the flow file but not in the network")):
        miss = j[j["_merge"] == side]
        if len(miss):
            pairs = ", ".join(f"{a}-{b}" for a, b in
                              miss[["init_node", "term_node"]].head(5).itertuples(index=False))
            problems.append(f"{len(miss)} links {what}, e.g. {pairs}")
    if problems:
        raise InputError(problems, source=ref.attrs.get("source", "flow file"))
    j = j.sort_values("link")
    v_ref = j["volume"].to_numpy(dtype=float)
    t_ref = bpr_cost(v_ref, L["free_flow_time"].to_numpy(float), L["capacity"].to_numpy(float),
                     L["b"].to_numpy(float), L["power"].to_numpy(float))
    tstt_ref = float(v_ref @ t_ref)
    d = res.flow - v_ref
    dt = res.cost - t_ref
    return (f"reference TSTT {tstt_ref:,.2f} (relative difference {res.tstt / tstt_ref - 1:+.2e}); "
            f"link flow difference by node pair: max |d| {np.abs(d).max():.3f}, "
            f"mean |d| {np.abs(d).mean():.3f}, RMSE {np.sqrt((d ** 2).mean()):.3f}; "
            f"link travel time difference: max |d| {np.abs(dt).max():.4f}")
