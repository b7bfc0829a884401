"""Batch speed-up: the same runs serially and on a 2-process pool, end to end.

Each variant is one `citytwin batch` command in a fresh process (start-up, imports, JIT and
city loading included), writing to its own temporary folder; the digests of the two batches
are compared so the speed-up is for identical work.

    .venv/bin/python benchmarks/batch.py            # 8 runs of scenarios/baseline.toml
    .venv/bin/python benchmarks/batch.py --quick    # 4 runs, 6 simulated hours each
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
    ap.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "baseline.toml")
    args = ap.parse_args()
    runs = args.runs or (4 if args.quick else 8)
    load0 = os.getloadavg()[0]
    sys.path.insert(0, str(ROOT))
    from citytwin.results import Results

    with tempfile.TemporaryDirectory(prefix="ct-bench-") as tmp:
        scenario = args.scenario.resolve()
        if args.quick:
            scenario = Path(tmp) / "quick.toml"
            scenario.write_text(f'extends = "{args.scenario.resolve()}"\nduration_h = 6\n')
        # build the city cache once, outside the timings
        from citytwin.model import load_city
        from citytwin.scenario import load_scenario

        load_city(load_scenario(scenario).city)
        serial = _batch(scenario, Path(tmp) / "serial", runs, 1)
        pool = _batch(scenario, Path(tmp) / "pool", runs, args.workers)
        dig: dict[str, list[dict[str, str]]] = {}
        walls = []
        for kind in ("serial", "pool"):
            paths = sorted((Path(tmp) / kind).iterdir())
            dig[kind] = [{t: Results({t: df}, {}).digest() for t, df in Results.read(p).tables.items()}
                         for p in paths]
            walls += [Results.read(p).manifest["wall_time_s"] for p in paths]
        differ = sorted({t for a, b in zip(dig["serial"], dig["pool"], strict=True)
                         for t in a if a[t] != b.get(t)})
    print(f"load average before/after: {load0:.1f} / {os.getloadavg()[0]:.1f} "
          "(2 cores; figures above ~2 mean other work shared the CPUs)")
    print(f"scenario: {args.scenario.name}{' (6 h, quick)' if args.quick else ''}, "
          f"runs: {runs}, cpus: {os.cpu_count()}")
    print(f"mean run wall time (inside workers): {sum(walls) / len(walls):.2f} s")
    print(f"serial batch:      {serial:.1f} s")
    print(f"{args.workers}-worker pool:     {pool:.1f} s")
    print(f"speed-up:          {serial / pool:.2f}x (target >= 1.8x)")
    print(f"identical tables serial vs pool: {not differ}"
          + (f" (differ: {differ}; was code edited between the two batches?)" if differ else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
