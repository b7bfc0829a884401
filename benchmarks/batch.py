"""Batch speed-up: the same runs serially and on a 2-process pool.

Two measurements, each writing to its own temporary folder, digests compared so the speed-up
is for identical work:

* end to end: one `citytwin batch` command per variant in a fresh process (start-up, imports,
  JIT and city loading included — a fixed cost both variants pay once);
* library: `run_batch` called in this process after one warm-up run (the pool still pays for
  spawning its worker and that worker's imports).

    .venv/bin/python benchmarks/batch.py            # 8 runs: baseline with every car trip
    .venv/bin/python benchmarks/batch.py --quick    # 4 runs of baseline (10 % sample), 6 h
    .venv/bin/python benchmarks/batch.py --scenario scenarios/baseline.toml   # 8 short runs

The default is the shipped baseline with the whole population driving (traffic sample 1.0,
as a planner's batch would run it); the shipped baseline itself (10 % sample, ~3-5 s a run)
is too short to amortize a spawned worker's start-up (~10-20 s of imports).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _batch(scenario: Path, out: Path, runs: int, workers: int) -> float:
    cmd = [sys.executable, "-m", "citytwin.cli", "batch", str(scenario), "-r", str(runs),
           "-w", str(workers), "--out", str(out), "--no-progress"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 runs of 6 simulated hours")
    ap.add_argument("--runs", type=int, default=None, help="runs per batch (default 8)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scenario", type=Path, default=None,
                    help="default: scenarios/baseline.toml with traffic sample 1.0")
    args = ap.parse_args()
    runs = args.runs or (4 if args.quick else 8)
    load0 = os.getloadavg()[0]
    sys.path.insert(0, str(ROOT))
    from citytwin.results import Results

    with tempfile.TemporaryDirectory(prefix="ct-bench-") as tmp:
        base = (args.scenario or ROOT / "scenarios" / "baseline.toml").resolve()
        scenario = base
        if args.quick:
            scenario = Path(tmp) / "quick.toml"
            scenario.write_text(f'extends = "{base}"\nduration_h = 6\n')
        elif args.scenario is None:
            scenario = Path(tmp) / "full_sample.toml"
            scenario.write_text(f'extends = "{base}"\n[traffic]\nsample = 1.0\n')
        # build the city cache once, outside the timings
        from citytwin.model import load_city
        from citytwin.scenario import load_scenario

        load_city(load_scenario(scenario).city)
        serial = _batch(scenario, Path(tmp) / "serial", runs, 1)
        pool = _batch(scenario, Path(tmp) / "pool", runs, args.workers)
        from citytwin.batch import run_batch
        from citytwin.model import run_scenario

        run_scenario(scenario, seed=10_000)  # warm-up: imports, JIT, city in memory
        t0 = time.perf_counter()
        run_batch([scenario], out=Path(tmp) / "lib_serial", replications=runs)
        lib_serial = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_batch([scenario], out=Path(tmp) / "lib_pool", replications=runs,
                  workers=args.workers)
        lib_pool = time.perf_counter() - t0
        dig: dict[str, list[dict[str, str]]] = {}
        walls = []
        for kind in ("serial", "pool", "lib_serial", "lib_pool"):
            paths = sorted((Path(tmp) / kind).iterdir())
            dig[kind] = [{t: Results({t: df}, {}).digest() for t, df in Results.read(p).tables.items()}
                         for p in paths]
            walls += [Results.read(p).manifest["wall_time_s"] for p in paths]
        differ = sorted({t for kind in ("pool", "lib_serial", "lib_pool")
                         for a, b in zip(dig["serial"], dig[kind], strict=True)
                         for t in a if a[t] != b.get(t)})
    print(f"load average before/after: {load0:.1f} / {os.getloadavg()[0]:.1f} "
          "(2 cores; figures above ~2 mean other work shared the CPUs)")
    print(f"scenario: {scenario.name} (extends {base.name}), "
          f"runs: {runs}, cpus: {os.cpu_count()}")
    print(f"mean run wall time (inside workers): {sum(walls) / len(walls):.2f} s")
    print(f"end to end (CLI):  serial {serial:.1f} s, {args.workers} workers {pool:.1f} s, "
          f"speed-up {serial / pool:.2f}x (target >= 1.8x)")
    print(f"library (warm):    serial {lib_serial:.1f} s, {args.workers} workers {lib_pool:.1f} s, "
          f"speed-up {lib_serial / lib_pool:.2f}x (target >= 1.8x)")
    print(f"identical tables in all four batches: {not differ}"
          + (f" (differ: {differ}; was code edited between the two batches?)" if differ else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
