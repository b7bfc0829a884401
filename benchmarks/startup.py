"""Where the CPU time of the default city run goes (issue 16: ``citytwin run
scenarios/baseline.toml`` should stay under 5 s CPU).

Two measurements, each in fresh processes (imports are the point):

* the command itself: ``citytwin run scenarios/baseline.toml --seed 1`` into a temporary
  folder, user + sys CPU of the child, 2 warm-up runs (city cache, numba cache) then the
  median and minimum of ``--runs`` (default 5);
* one in-process breakdown (``time.process_time``): the third-party packages the run needs,
  ``mesa``'s own share (and of it the ``inspect.stack()`` calls of ``mesa.mesa_logging``),
  citytwin's own modules (and what compiling their sources costs when no ``.pyc`` can be
  used, e.g. under ``PYTHONDONTWRITEBYTECODE``), numba's first dispatch (its target set-up,
  paid once per process even when every function is cached), then model set-up, each
  engine's ``advance``, results and writing.

The machine is shared: the load average is printed; figures from a loaded machine are upper
bounds. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "baseline.toml"

# the in-process breakdown, run as ``python -c`` so that nothing is imported beforehand
_PROBE = r'''
import json, sys, time
T = {}
c0 = time.process_time()
import numpy, pandas, scipy.sparse.linalg, scipy.sparse.csgraph, scipy.spatial, networkx
import geopandas, shapely, pyproj, pydantic, pyarrow.parquet
T["third-party (numpy, pandas, scipy, networkx, geopandas, pydantic, pyarrow)"] = time.process_time() - c0
import inspect
_acc, _depth = [0.0], [0]
def _timed(f):
    def w(*a, **k):
        _depth[0] += 1
        t = time.process_time()
        try:
            return f(*a, **k)
        finally:
            _depth[0] -= 1
            if not _depth[0]:
                _acc[0] += time.process_time() - t
    return w
_stack, _outer = inspect.stack, inspect.getouterframes
inspect.stack, inspect.getouterframes = _timed(_stack), _timed(_outer)
c = time.process_time(); import mesa; T["mesa (after its dependencies)"] = time.process_time() - c
inspect.stack, inspect.getouterframes = _stack, _outer
T["  of it: mesa_logging's inspect.stack()"] = _acc[0]
c = time.process_time(); import numba; T["numba import"] = time.process_time() - c
c = time.process_time(); import citytwin.model as M; T["citytwin's own modules"] = time.process_time() - c
src = [m.__file__ for n, m in list(sys.modules.items())
       if n.startswith("citytwin") and getattr(m, "__file__", None)]
c = time.process_time()
for f in src:
    compile(open(f, encoding="utf-8").read(), f, "exec")
comp = time.process_time() - c
note = " (no .pyc written here: paid every run)" if sys.dont_write_bytecode else ""
T["  of it: compiling their sources" + note] = comp
from numba.core.dispatcher import Dispatcher
_first = [None]
_orig = Dispatcher._compile_for_args
def _disp(self, *a, **k):
    t = time.process_time()
    try:
        return _orig(self, *a, **k)
    finally:
        if _first[0] is None:
            _first[0] = time.process_time() - t
Dispatcher._compile_for_args = _disp
from citytwin.scenario import load_scenario
sc = load_scenario(sys.argv[1])
c = time.process_time(); city = M.load_city(sc.city, sc.build); T["city from cache"] = time.process_time() - c
c = time.process_time(); model = M.CityModel(sc, seed=1); init = time.process_time() - c
T["numba first dispatch (target set-up + first cached load)"] = _first[0] or 0.0
T["model set-up (engines, demand), without that"] = init - (_first[0] or 0.0)
acc = {}
for name, e in model.engines.items():
    def wrap(f, name=name):
        def w(t):
            c = time.process_time(); f(t); acc[name] = acc.get(name, 0.0) + time.process_time() - c
        return w
    e.advance = wrap(e.advance)
model.run()
for name, v in acc.items():
    T[f"advance: {name}"] = v
c = time.process_time(); res = model.results(); T["results"] = time.process_time() - c
c = time.process_time(); res.write(sys.argv[2], force=True); T["write"] = time.process_time() - c
T["total (this process)"] = time.process_time()
print(json.dumps(T))
'''


def _child_cpu(cmd: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs of the command (median)")
    args = ap.parse_args()
    env = dict(os.environ)
    print(f"load average before: {os.getloadavg()[0]:.2f}; PYTHONDONTWRITEBYTECODE="
          f"{env.get('PYTHONDONTWRITEBYTECODE', '')!r}")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "citytwin.cli", "run", str(SCENARIO), "--seed", "1",
               "--out", str(Path(tmp) / "run"), "-q", "--force"]
        for _ in range(2):  # warm-up: city cache and numba cache on disk
            _child_cpu(cmd, env)
        cpu = [_child_cpu(cmd, env) for _ in range(args.runs)]
        print(f"citytwin run {SCENARIO.relative_to(ROOT)}: user+sys median {statistics.median(cpu):.2f} s,"
              f" min {min(cpu):.2f} s over {len(cpu)} runs ({', '.join(f'{c:.2f}' for c in cpu)})")
        out = subprocess.run([sys.executable, "-c", _PROBE, str(SCENARIO), str(Path(tmp) / "probe")],
                             check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    print("\nCPU breakdown of one run in one process (s):")
    for name, v in figures.items():
        print(f"  {v:6.3f}  {name}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
