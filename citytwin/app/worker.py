"""Run one app request in its own process: ``python -m citytwin.app.worker REQUEST.json OUT``.

The request (written by :class:`citytwin.app.session.Session`) holds a scenario as a plain
dict, the seed and the city file; the scenario is validated with the same
:func:`citytwin.scenario.scenario_from_dict` the CLI uses, after every path field in it went
through :func:`citytwin.app.config.guard_scenario_paths` (confined to the session's folders).
Progress and errors go to stdout as one JSON object per line, so the app can show them and
cancel by killing the process.

``python -m citytwin.app.worker --check-city FILE`` opens a city file (an upload) the same
way, and writes the built city to the city cache, so the server later reads that cache and
never parses an uploaded file itself. Both run under CPU-time, memory and wall-clock limits
set in this child process (``resource.setrlimit``; ``CITYTWIN_APP_CPU_S``,
``CITYTWIN_APP_MEM_MB``, ``CITYTWIN_APP_WALL_S``; a city check has its own, smaller
``CITYTWIN_APP_CHECK_CPU_S`` and ``CITYTWIN_APP_CHECK_WALL_S``), so a hostile file cannot
hold the server.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
import traceback
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from citytwin.errors import CitytwinError, InputError

__all__ = ["main", "run_request", "check_city", "apply_limits", "limits"]

ENV_CPU = "CITYTWIN_APP_CPU_S"
ENV_MEM = "CITYTWIN_APP_MEM_MB"
ENV_WALL = "CITYTWIN_APP_WALL_S"
ENV_CHECK_CPU = "CITYTWIN_APP_CHECK_CPU_S"
ENV_CHECK_WALL = "CITYTWIN_APP_CHECK_WALL_S"
#: Defaults: a run may take an hour of CPU; opening an uploaded city file ten minutes
#: (Helsinki's 1 MB GeoPackage takes about 1 s).
DEFAULT_LIMITS = {"cpu_s": 3600, "mem_mb": 16384, "wall_s": 7200}
DEFAULT_CHECK_LIMITS = {"cpu_s": 600, "mem_mb": 16384, "wall_s": 900}


def _emit(**msg: Any) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def limits(environ: Mapping[str, str] | None = None, *, check: bool = False) -> dict[str, int]:
    """CPU seconds, memory MB and wall seconds for one worker (0 = no limit); ``check``: the
    limits of opening an uploaded city file."""
    env = os.environ if environ is None else environ
    base = DEFAULT_CHECK_LIMITS if check else DEFAULT_LIMITS
    names = ({"cpu_s": ENV_CHECK_CPU, "mem_mb": ENV_MEM, "wall_s": ENV_CHECK_WALL} if check
             else {"cpu_s": ENV_CPU, "mem_mb": ENV_MEM, "wall_s": ENV_WALL})
    out = {}
    for key, var in names.items():
        try:
            out[key] = int(env.get(var, base[key]))
        except ValueError:
            raise InputError(f"{var}={env[var]!r}: expected a whole number",
                             source="citytwin app") from None
    return out


def apply_limits(lim: dict[str, int] | None = None) -> None:
    """Set this process's limits; exceeding one ends it with a JSON error line."""
    lim = lim or limits()

    def stop(signum: int, _frame: Any) -> None:
        what = (f"CPU time limit of {lim['cpu_s']} s" if signum == signal.SIGXCPU
                else f"wall-clock limit of {lim['wall_s']} s")
        _emit(error=f"stopped: this request exceeded the app's {what}")
        os._exit(3)

    if lim["cpu_s"] > 0:
        signal.signal(signal.SIGXCPU, stop)
        resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu_s"], lim["cpu_s"] + 5))
    if lim["mem_mb"] > 0:
        nbytes = lim["mem_mb"] * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            nbytes = min(nbytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (nbytes, hard))
    if lim["wall_s"] > 0:
        signal.signal(signal.SIGALRM, stop)
        signal.alarm(lim["wall_s"])


def _roots(request: dict[str, Any], out: Path) -> tuple[Path, ...]:
    """The session's allowed folders: from the request, else the app's environment."""
    from citytwin.app.config import ENV_DATA, ENV_RESULTS

    if request.get("roots"):
        return tuple(Path(r) for r in request["roots"])
    env = [os.environ.get(ENV_DATA), os.environ.get(ENV_RESULTS)]
    if all(env):
        return tuple(Path(str(r)) for r in env)
    return (Path(request["city"]).resolve().parent, out.resolve().parent)


def _denied(request: dict[str, Any], roots: tuple[Path, ...]) -> tuple[Path, ...]:
    """Private folders inside the roots: the request's, else the workspaces of the results
    folder (the second root), so no run reads another workspace's files."""
    from citytwin.app.config import SESSIONS_DIR

    if "denied" in request:
        return tuple(Path(d) for d in request["denied"])
    return (Path(roots[1]) / SESSIONS_DIR,) if len(roots) > 1 else ()


def run_request(request: dict[str, Any], out: Path) -> Path:
    """Validate and run one request; write the results directory ``out``."""
    from citytwin.app.config import guard_scenario_paths
    from citytwin.model import run_scenario
    from citytwin.scenario import scenario_from_dict

    scenario = dict(request["scenario"])
    scenario["city"] = str(request["city"])
    roots = _roots(request, out)
    scenario = guard_scenario_paths(scenario, roots, denied=_denied(request, roots))
    spec = scenario_from_dict(scenario, source=f"app scenario {scenario.get('name', '?')!r}")
    last = [0.0]

    def progress(t: float, duration: float) -> None:
        now = time.monotonic()
        if now - last[0] >= 0.2 or t >= duration:
            last[0] = now
            _emit(progress=min(1.0, t / duration if duration else 1.0),
                  message=f"simulated {t / 3600:.2f} of {duration / 3600:.2f} h")

    _emit(progress=0.0, message="loading city and building the model")
    run_scenario(spec, seed=int(request["seed"]), out=out, progress=progress)
    _emit(progress=1.0, message="written")
    return out


def check_city(path: Path) -> None:
    """Open a city file as the CLI would (``GeodataError`` names every problem) and keep the
    build in the city cache (the server then reads the cache, not the file)."""
    from citytwin.city import City

    City.from_path(path)
    _emit(ok=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        _emit(error="usage: python -m citytwin.app.worker REQUEST.json OUT_DIR "
                    "| --check-city FILE")
        return 2
    if argv is None:  # a real child process: limits apply to it alone
        try:
            apply_limits(limits(check=args[0] == "--check-city"))
        except InputError as exc:
            _emit(error=str(exc))
            return 2
    try:
        if args[0] == "--check-city":
            check_city(Path(args[1]))
        else:
            request = json.loads(Path(args[0]).read_text())
            run_request(request, Path(args[1]))
    except CitytwinError as exc:
        _emit(error=str(exc))
        return 2
    except MemoryError:
        _emit(error="stopped: this request needs more memory than the app allows")
        return 3
    except Exception as exc:  # no traceback for the user: a short id to quote
        err_id = uuid.uuid4().hex[:8]
        traceback.print_exc(file=sys.stderr)
        _emit(error=f"internal error {err_id} ({type(exc).__name__}); please quote {err_id}")
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
