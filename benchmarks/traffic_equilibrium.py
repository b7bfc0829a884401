"""Static user equilibrium on Sioux Falls vs the published best-known solution.

    .venv/bin/python benchmarks/traffic_equilibrium.py [--quick] [--data DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from citytwin.traffic.assignment import read_tntp_flow, read_tntp_net, read_tntp_trips, static_ue

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "tntp" / "SiouxFalls"
BEST = 7_480_225.34


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="gap 1e-4 and 1e-5 only")
    ap.add_argument("--data", default=str(DATA))
    args = ap.parse_args()
    d = Path(args.data)
    if not d.is_dir():
        raise SystemExit(f"no Sioux Falls data at {d}")
    net = read_tntp_net(d / "SiouxFalls_net.tntp")
    od = read_tntp_trips(d / "SiouxFalls_trips.tntp")
    ref = read_tntp_flow(d / "SiouxFalls_flow.tntp")
    for gap in [1e-4, 1e-5] if args.quick else [1e-4, 1e-5, 1e-6, 1e-8]:
        t0 = time.perf_counter()
        r = static_ue(net, od, gap=gap, max_iter=2000)
        wall = time.perf_counter() - t0
        diff = r.flow - ref["volume"].to_numpy()
        print(f"target gap {gap:.0e}: {r.iterations:4d} iterations, gap {r.relative_gap:.2e}, "
              f"TSTT {r.tstt:,.2f} ({r.tstt / BEST - 1:+.2e} vs best known), "
              f"link flow |diff| max {np.abs(diff).max():.2f} mean {np.abs(diff).mean():.3f} "
              f"(of mean flow {ref['volume'].mean():.0f}), {wall:.2f} s")


if __name__ == "__main__":
    main()
