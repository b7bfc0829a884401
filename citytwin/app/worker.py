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

import contextlib
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

__all__ = ["main", "run_request", "check_city", "apply_limits", "limits", "exit_message"]

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
    """Set this process's CPU-time and memory limits (``resource.setrlimit``).

    Past the CPU limit the kernel ends the process with ``SIGXCPU`` (its default action, so
    it works inside C code - a SQLite query, a GDAL read - where a Python handler would never
    run); :func:`main` runs the work in a child under these limits and turns the child's end
    into a JSON error line. The wall-clock limit is kept by that supervising parent.
    """
    lim = lim or limits()
    if lim["cpu_s"] > 0:
        signal.signal(signal.SIGXCPU, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_CPU, (lim["cpu_s"], lim["cpu_s"] + 5))
    if lim["mem_mb"] > 0:
        nbytes = lim["mem_mb"] * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            nbytes = min(nbytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (nbytes, hard))


def _die_with_parent(parent: int) -> None:
    """Linux: this process gets SIGKILL when its parent dies (a cancelled run's worker is
    killed by the app; the work must not outlive it)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the call
        os._exit(3)


def exit_message(status: int, cpu_s: float, lim: dict[str, int]) -> str | None:
    """The user's message for a work child that ended with wait ``status`` after ``cpu_s``
    CPU seconds (None: it exited normally and said everything itself)."""
    if os.WIFEXITED(status):
        return None
    sig = os.WTERMSIG(status)
    if lim["cpu_s"] > 0 and (sig == signal.SIGXCPU or cpu_s >= lim["cpu_s"]):
        return (f"stopped: this request exceeded the app's CPU time limit of {lim['cpu_s']} s "
                f"(expected a city file or scenario that opens within it; "
                f"{ENV_CHECK_CPU} / {ENV_CPU} set the limits)")
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = str(sig)
    if lim["mem_mb"] > 0 and sig in (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS,
                                     signal.SIGKILL):
        return (f"stopped ({name}): this request needs more memory than the app's limit of "
                f"{lim['mem_mb']} MB ({ENV_MEM}), or it crashed")
    return f"stopped by signal {name}"


def _supervise(args: list[str], lim: dict[str, int]) -> int:
    """Run :func:`_work` in a forked child under ``lim``; keep the wall-clock limit here and
    say how the child ended if it could not say so itself (one JSON line)."""
    sys.stdout.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the work, under the limits
        rc = 2
        try:
            _die_with_parent(parent)
            apply_limits(lim)
            rc = _work(args)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(rc)
    deadline = time.monotonic() + lim["wall_s"] if lim["wall_s"] > 0 else None
    while True:
        wpid, status, usage = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            break
        if deadline is not None and time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.wait4(pid, 0)
            _emit(error=f"stopped: this request exceeded the app's wall-clock limit of "
                        f"{lim['wall_s']} s")
            return 3
        time.sleep(0.1)
    msg = exit_message(status, usage.ru_utime + usage.ru_stime, lim)
    if msg is None:
        return os.WEXITSTATUS(status)
    _emit(error=msg)
    return 3


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
    if argv is None:  # a real worker process: the work runs in a child under the limits
        try:
            lim = limits(check=args[0] == "--check-city")
        except InputError as exc:
            _emit(error=str(exc))
            return 2
        return _supervise(args, lim)
    return _work(args)


def _work(args: list[str]) -> int:
    """Do what ``args`` ask; every error as one JSON line, never a traceback on stdout."""
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
        _emit(error="stopped: this request needs more memory than the app's limit "
                    f"({ENV_MEM})")
        return 3
    except Exception as exc:  # no traceback for the user: a short id to quote
        err_id = uuid.uuid4().hex[:8]
        traceback.print_exc(file=sys.stderr)
        _emit(error=f"internal error {err_id} ({type(exc).__name__}); please quote {err_id}")
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
