"""CLI: ``run``, ``compare``, ``batch``, ``experiment``, ``schema``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="simulate one scenario and write its results directory")
    p.add_argument("scenario", type=Path, help="scenario TOML file")
    p.add_argument("--seed", type=int, default=None, help="run seed (default: the scenario's)")
    p.add_argument("--out", type=Path, default=None,
                   help="results directory (default: results/<scenario>__seed<seed>)")
    p.add_argument("--no-progress", "--quiet", "-q", dest="no_progress", action="store_true",
                   help="no progress bar (it is also off when stderr is not a terminal)")
    p.add_argument("--force", action="store_true",
                   help="write into an existing folder that is not a citytwin result "
                        "(only citytwin's own files in it are replaced)")
    p.set_defaults(func=_run)

    p = sub.add_parser("compare", help="compare KPIs of results (runs or batch folders)")
    p.add_argument("results", nargs="+", type=Path, help="results directories or batch folders")
    p.add_argument("--baseline", default=None, help="baseline scenario name (default: first)")
    p.add_argument("--csv", type=Path, default=None, help="also write the long table as CSV")
    p.set_defaults(func=_compare)

    p = sub.add_parser("batch", help="run scenarios x replications (resumable)")
    p.add_argument("scenarios", nargs="+", type=Path, help="scenario TOML files")
    p.add_argument("--replications", "-r", type=int, default=1)
    p.add_argument("--workers", "-w", type=int, default=1, help="local processes (1 = serial)")
    p.add_argument("--scheduler", default=None, help="Dask distributed scheduler address")
    p.add_argument("--out", type=Path, default=Path("results/batch"))
    p.add_argument("--no-progress", "--quiet", "-q", dest="no_progress", action="store_true",
                   help="no progress bar (it is also off when stderr is not a terminal)")
    p.set_defaults(func=_batch)

    p = sub.add_parser("experiment", help="run a levers x uncertainties experiment")
    p.add_argument("experiment", type=Path, help="experiment TOML file")
    p.add_argument("--out", type=Path, default=None, help="default: results/<experiment name>")
    p.add_argument("--workers", "-w", type=int, default=1)
    p.add_argument("--scheduler", default=None, help="Dask distributed scheduler address")
    p.add_argument("--no-progress", "--quiet", "-q", dest="no_progress", action="store_true")
    p.set_defaults(func=_experiment)

    p = sub.add_parser("schema", help="print the JSON schema of scenario files")
    p.add_argument("--experiment", action="store_true", help="the experiment file schema instead")
    p.set_defaults(func=_schema)


def _bar(total: float, unit: str, disable: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, disable=disable or not sys.stderr.isatty(),
                file=sys.stderr, dynamic_ncols=True)


def _run(args: argparse.Namespace) -> int:
    from citytwin.model import load_city, run_scenario
    from citytwin.results import check_output_dir
    from citytwin.scenario import check_resources, load_scenario

    scenario = load_scenario(args.scenario)
    seed = scenario.seed if args.seed is None else args.seed
    out = args.out or Path("results") / f"{scenario.name}__seed{seed}"
    # refuse a bad --out before simulating, not after (the write checks again)
    out = check_output_dir(out, force=args.force)
    if scenario.traffic is not None:  # "needs ~N GB" before allocating (load_city is cached)
        city = load_city(scenario.city, scenario.build)
        check_resources(scenario, float(city.buildings["population"].sum()))
    bar = _bar(scenario.duration_s, "sim-s", args.no_progress)

    def progress(t: float, _total: float) -> None:
        bar.update(t - bar.n)

    try:
        res = run_scenario(scenario, seed=seed, progress=progress)
    finally:
        bar.close()
    res.write(out, force=args.force)
    print(f"wrote {out}  ({res.manifest['wall_time_s']:.1f} s, digest {res.manifest['digest'][:12]})")
    _print_build_issues(res.manifest, out)
    kpis = res.kpis
    if len(kpis):
        print(kpis[["domain", "kpi", "value", "unit"]].to_string(index=False))
    else:
        print("no KPIs (every domain is off in this scenario)")
    return 0


def _print_build_issues(manifest: dict[str, Any], out: Path, limit: int = 5) -> None:
    """The city build's repairs, drops and warnings (with rows) on stderr, so a repaired
    input is never silent in the terminal; all of them are in the manifest's ``city_build``."""
    issues = (manifest.get("city_build") or {}).get("issues") or []
    for i in issues[:limit]:
        rows = ", ".join(str(r) for r in list(i.get("rows", []))[:10])
        more = ", ..." if int(i.get("count", 0)) > 10 else ""
        print(f"note: city layer '{i.get('layer')}': {i.get('action')} {i.get('count')} row(s): "
              f"{i.get('reason')} (rows {rows}{more})", file=sys.stderr)
    if len(issues) > limit:
        print(f"note: {len(issues) - limit} more city build issue(s) in "
              f"{out / 'manifest.json'} (city_build), or run `citytwin info`", file=sys.stderr)


def _compare(args: argparse.Namespace) -> int:
    import pandas as pd

    from citytwin.comparison import compare, to_wide

    table = compare(args.results, baseline=args.baseline)
    if args.csv:
        table.to_csv(args.csv, index=False)
    wide = to_wide(table)
    with pd.option_context("display.max_rows", None, "display.max_columns", None,
                           "display.width", 200):
        print(wide.to_string(index=False) if len(wide) else "no KPIs in these results")
    return 0


def _batch(args: argparse.Namespace) -> int:
    from citytwin.batch import plan_runs, run_batch

    args.out = args.out.resolve()  # on the client: Dask workers have another working folder
    total = len(plan_runs(args.scenarios, out=args.out, replications=args.replications))
    bar = _bar(total, "run", args.no_progress)

    def progress(done: int, _total: int, _run_id: str) -> None:
        bar.update(done - bar.n)

    try:
        report = run_batch(args.scenarios, out=args.out, replications=args.replications,
                           workers=args.workers, scheduler=args.scheduler, progress=progress)
    finally:
        bar.close()
    print(f"{len(report.runs)} runs: {len(report.ran)} ran, {len(report.skipped)} already "
          f"finished, {len(report.failed)} failed  ({report.wall_time_s:.1f} s) -> {args.out}")
    for run_id, err in report.failed.items():
        print(f"  FAILED {run_id}: {err}", file=sys.stderr)
    return 0 if report.ok else 1


def _experiment(args: argparse.Namespace) -> int:
    import pandas as pd

    from citytwin.experiments import design_points, load_experiment, run_experiment

    exp = load_experiment(args.experiment)
    out = args.out or Path("results") / exp.name
    total = len(design_points(exp)) * exp.replications
    bar = _bar(total, "run", args.no_progress)

    def progress(done: int, _total: int, _run_id: str) -> None:
        bar.update(done - bar.n)

    try:
        result = run_experiment(exp, out=out, workers=args.workers, scheduler=args.scheduler,
                                progress=progress)
    finally:
        bar.close()
    print(f"{len(result.outcomes)} runs -> {out}/outcomes.parquet, {out}/sensitivity.parquet")
    with pd.option_context("display.max_rows", 200, "display.width", 200):
        if len(result.sensitivity):
            print(result.sensitivity.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for run_id, err in result.batch.failed.items():
        print(f"  FAILED {run_id}: {err}", file=sys.stderr)
    return 0 if result.batch.ok else 1


def _schema(args: argparse.Namespace) -> int:
    if args.experiment:
        from citytwin.experiments import Experiment

        schema = Experiment.model_json_schema()
    else:
        from citytwin.scenario import scenario_schema

        schema = scenario_schema()
    print(json.dumps(schema, indent=2))
    return 0
