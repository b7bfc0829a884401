"""Build time and peak memory of a City: the default city (cold and cached) and synthetic cities.

    .venv/bin/python benchmarks/build.py            # default city, synth 10k and 100k
    .venv/bin/python benchmarks/build.py --quick    # skips the 100k city
    .venv/bin/python benchmarks/build.py --cities   # the reference test cities (issue 15)

Each case runs in a fresh process (so peak RSS is that case's alone) and prints one row:
wall seconds of ``City.from_path`` split into its stages (and its CPU seconds, which are
less sensitive to other load on a shared machine), peak resident memory, and the ratio of
the build to a peer measured in the same process: reading the raw layers with pyogrio
(the floor any build from files must pay). Targets (issue 2): default city cold < 5 s, cached
< 0.5 s; 100k buildings < 60 s and < 4 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CITY = ROOT / "geodata" / "helsinki.gpkg"


def _timed(fn, label: str, out: dict):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            out[label] += time.perf_counter() - t

    return wrapper


def _case(kind: str, n: int, workdir: Path) -> dict:
    """Run one case in this process; return its figures."""
    import citytwin.city as city_mod
    from citytwin.city import City
    from citytwin.layers import read_layers

    out: dict = {"case": f"{kind}" + (f"-{n}" if n else "")}
    cache = workdir / "cache"
    if kind.startswith("synth"):
        from citytwin.synth import write_synthetic_city

        t = time.perf_counter()
        path = write_synthetic_city(workdir / f"synth-{n}.gpkg", n_buildings=n, seed=0)
        out["synth_write_s"] = time.perf_counter() - t
    elif kind in _city_files():
        path = _city_files()[kind]
    else:
        path = DEFAULT_CITY
    t = time.perf_counter()
    read_layers(path)
    out["peer_read_s"] = time.perf_counter() - t
    stages = {"roads_s": "build_road_graph", "power_s": "_build_power",
              "infer_s": "infer_buildings", "attach_s": "attach_to_roads"}
    for label, fn in stages.items():
        out[label] = 0.0
        setattr(city_mod, fn, _timed(getattr(city_mod, fn), label, out))
    t, c = time.perf_counter(), time.process_time()
    city = City.from_path(path, cache_dir=cache)
    out["build_s"] = time.perf_counter() - t
    out["build_cpu_s"] = time.process_time() - c
    t = time.perf_counter()
    again = City.from_path(path, cache_dir=cache)
    out["cached_s"] = time.perf_counter() - t
    assert again.from_cache
    out["buildings"] = len(city.buildings)
    out["road_edges"] = city.roads.number_of_edges()
    out["power_nodes"] = city.power.number_of_nodes()
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["build_over_read"] = out["build_s"] / out["peer_read_s"]
    s = city.summary()
    out["population"], out["jobs"] = s["population"], s["jobs"]
    out["repaired"] = sum(s["repaired"].values())
    out["dropped"] = sum(s["dropped"].values())
    out["warnings"] = sum(s["warnings"].values())
    out["report"] = {"repaired": s["repaired"], "dropped": s["dropped"],
                     "warnings": s["warnings"],
                     "jobs_note": [n for n in s["notes"] if n.startswith("jobs:")]}
    return out


def _city_files() -> dict[str, Path]:
    from citytwin.examples import CITY_FILES

    return dict(CITY_FILES)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 100k-building city")
    ap.add_argument("--cities", action="store_true",
                    help="the reference cities (examples.CITY_FILES) and their build reports")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(_case(args.case, args.n, Path(args.workdir))))
        return 0
    cases = [("default", 0), ("synth", 10_000)] + ([] if args.quick else [("synth", 100_000)])
    if args.cities:
        cases = [(name, 0) for name in _city_files()]
    cols = ["case", "buildings", "road_edges", "power_nodes", "synth_write_s", "build_s", "build_cpu_s",
            "roads_s", "power_s", "infer_s", "attach_s", "cached_s", "peak_rss_mb",
            "peer_read_s", "build_over_read"]
    if args.cities:
        cols = ["case", "buildings", "road_edges", "population", "jobs", "build_s", "cached_s",
                "repaired", "dropped", "warnings"]
    reports = {}
    print(" ".join(f"{c:>15s}" for c in cols))
    with tempfile.TemporaryDirectory() as tmp:
        for kind, n in cases:
            wd = Path(tmp) / f"{kind}-{n}"
            wd.mkdir()
            res = subprocess.run(
                [sys.executable, __file__, "--case", kind, "--n", str(n), "--workdir", str(wd)],
                capture_output=True, text=True, check=False,
            )
            if res.returncode:
                print(res.stderr, file=sys.stderr)
                return res.returncode
            row = json.loads(res.stdout.strip().splitlines()[-1])
            reports[row["case"]] = row.get("report")
            print(" ".join(
                f"{row.get(c, ''):>15.3f}" if isinstance(row.get(c), float)
                else f"{row.get(c, '-')!s:>15s}" for c in cols))
    if args.cities:
        for case, rep in reports.items():
            print(f"{case}: {json.dumps(rep, ensure_ascii=False)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
