"""Per-browser-session state: the runs one user started, each in its own worker process.

A :class:`Session` is created by the app's layout for each browser page (never at module
level), so two users never see each other's runs. Each run is a separate Python process
(``python -m citytwin.app.worker``) that streams JSON progress lines; cancelling a run kills
that process, and the page never waits on a simulation.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from citytwin.app.config import AppConfig, safe_join, safe_name
from citytwin.errors import InputError

__all__ = ["RunRecord", "Session", "RunStatus", "list_results"]

log = logging.getLogger(__name__)

RunStatus = Literal["running", "done", "failed", "cancelled"]


@dataclass(frozen=True)
class RunRecord:
    """One run of one scenario with one seed, as the app shows it."""

    run_id: str
    label: str
    seed: int
    status: RunStatus
    progress: float
    message: str
    path: Path
    started: float
    finished: float | None = None
    error: str | None = None

    @property
    def active(self) -> bool:
        return self.status == "running"


def list_results(root: Path, *, max_depth: int = 3) -> dict[str, Path]:
    """Finished results folders under ``root`` (holding ``manifest.json``), by relative path.

    Batch outputs nest runs (``batch/<run>``); the app's own ``sessions/`` folder is skipped
    so one session never lists another session's runs.
    """
    root = Path(root).resolve()
    out: dict[str, Path] = {}
    if not root.is_dir():
        return out

    def walk(d: Path, depth: int) -> None:
        for p in sorted(d.iterdir()):
            if not p.is_dir() or p.is_symlink() or p.name.startswith("."):
                continue
            if depth == 0 and p.name == "sessions":
                continue
            if (p / "manifest.json").is_file():
                out[p.relative_to(root).as_posix()] = p
            elif depth + 1 < max_depth:
                walk(p, depth + 1)

    walk(root, 0)
    return out


class Session:
    """The runs of one workspace, kept under ``results_dir/sessions/<session_id>/``.

    The app passes a stable workspace name (``?workspace=NAME`` in the page address, else
    ``default``), so reloading the page or restarting the app finds the runs again; without a
    ``session_id`` a fresh random one keeps two sessions apart.
    """

    def __init__(self, config: AppConfig, *, session_id: str | None = None,
                 python: str | None = None) -> None:
        self.config = config
        self.session_id = safe_name(session_id or uuid.uuid4().hex[:12], what="session id")
        self.root = Path(config.results_dir).resolve() / "sessions" / self.session_id
        self._python = python or sys.executable
        self._lock = threading.Lock()
        self._runs: dict[str, RunRecord] = {}
        self._procs: dict[str, subprocess.Popen[str]] = {}
        self._listeners: list[Callable[[], None]] = []
        self._counter = 0

    # --- observing -----------------------------------------------------------------------
    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback()`` (from any thread) whenever a run changes; returns unsubscribe."""
        with self._lock:
            self._listeners.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return unsubscribe

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for cb in listeners:
            try:
                cb()
            except Exception:  # a closed page must not break the run thread
                log.debug("session listener failed", exc_info=True)

    def runs(self) -> list[RunRecord]:
        """This session's runs: the ones started here plus the finished ones found in its
        workspace folder (so runs survive a page reload or an app restart)."""
        with self._lock:
            live = dict(self._runs)
        for rec in self._disk_runs():
            live.setdefault(rec.run_id, rec)
        return sorted(live.values(), key=lambda r: r.started)

    def _disk_runs(self) -> list[RunRecord]:
        out: list[RunRecord] = []
        if not self.root.is_dir():
            return out
        for p in sorted(self.root.iterdir()):
            man = p / "manifest.json"
            # a dot folder is a run being written (the worker's temporary folder, renamed
            # into place when complete): not a run yet, and gone in a moment
            if p.name.startswith(".") or not p.is_dir() or p.is_symlink() or not man.is_file():
                continue
            try:
                m = json.loads(man.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            started = man.stat().st_mtime
            out.append(RunRecord(run_id=p.name, label=str(m.get("scenario", p.name)),
                                 seed=int(m.get("seed", 0) or 0), status="done", progress=1.0,
                                 message="finished (from disk)", path=p, started=started,
                                 finished=started))
        return out

    def get(self, run_id: str) -> RunRecord:
        with self._lock:
            if run_id in self._runs:
                return self._runs[run_id]
        for rec in self._disk_runs():
            if rec.run_id == run_id:
                return rec
        raise InputError(f"run {run_id!r} is not a run of this session")

    def results(self) -> dict[str, Path]:
        """Finished runs of this session plus shared results in the results folder.

        Keys are display names: a session run is ``"<label> (seed N)"`` (numbered if
        repeated), a shared folder is its folder name.
        """
        out: dict[str, Path] = {}
        for rec in self.runs():
            if rec.status == "done":
                out[rec.run_id] = rec.path
        for name, path in list_results(self.config.results_dir).items():
            out.setdefault(name, path)
        return out

    def resolve_result(self, name: str) -> Path:
        """Path of a result the session may read: one of its runs or a shared results folder."""
        available = self.results()
        if name in available:
            return available[name]
        # anything else must at least be a plain name inside the results folder
        path = safe_join(self.config.results_dir, name, what="results folder")
        if not (path / "manifest.json").is_file():
            raise InputError(f"results folder {name!r} not found in {self.config.results_dir}")
        return path

    # --- running -------------------------------------------------------------------------
    def start(self, scenario: dict[str, Any], *, seed: int, label: str,
              city: str | None = None) -> str:
        """Start a worker process for ``scenario`` (a validated scenario dict); return run id."""
        city_name = city or self.config.city
        city_path = safe_join(self.config.data_dir, city_name, what="city file")
        if not city_path.is_file():
            raise InputError(f"city file {city_name!r} not found in {self.config.data_dir}")
        existing = {p.name for p in self.root.iterdir()} if self.root.is_dir() else set()
        with self._lock:
            self._counter += 1
            while any(e.endswith(f"-{self._counter}") or
                      e.endswith(f"-{self._counter}.request.json") for e in existing):
                self._counter += 1
            n = self._counter
        slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in label)[:40] or "run"
        run_id = f"{slug}-s{seed}-{n}"
        path = self.root / run_id
        self.root.mkdir(parents=True, exist_ok=True)
        if path.exists():
            raise InputError(f"run folder {path} already exists")
        spec = self.root / f"{run_id}.request.json"
        spec.write_text(json.dumps({"scenario": scenario, "seed": int(seed),
                                    "city": str(city_path),
                                    "roots": [str(r) for r in self.config.roots]},
                                   indent=2, default=str))
        rec = RunRecord(run_id=run_id, label=label, seed=int(seed), status="running",
                        progress=0.0, message="starting", path=path, started=time.time())
        cmd = [self._python, "-m", "citytwin.app.worker", str(spec), str(path)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                bufsize=1)
        with self._lock:
            self._runs[run_id] = rec
            self._procs[run_id] = proc
        threading.Thread(target=self._watch, args=(run_id, proc), daemon=True,
                         name=f"citytwin-run-{run_id}").start()
        self._notify()
        return run_id

    def _update(self, run_id: str, **changes: Any) -> None:
        with self._lock:
            rec = self._runs[run_id]
            if rec.status == "cancelled":
                return
            self._runs[run_id] = replace(rec, **changes)
        self._notify()

    def _watch(self, run_id: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None and proc.stderr is not None
        error: str | None = None
        for line in proc.stdout:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "progress" in msg:
                self._update(run_id, progress=float(msg["progress"]),
                             message=str(msg.get("message", "")))
            if "error" in msg:
                error = str(msg["error"])
        stderr = proc.stderr.read()
        rc = proc.wait()
        with self._lock:
            self._procs.pop(run_id, None)
        if rc == 0 and (self._runs[run_id].path / "manifest.json").is_file():
            self._update(run_id, status="done", progress=1.0, message="finished",
                         finished=time.time())
        else:
            if error is None:
                tail = stderr.strip().splitlines()[-3:]
                error = "\n".join(tail) or f"worker exited with code {rc}"
            self._update(run_id, status="failed", message="failed", error=error,
                         finished=time.time())

    def cancel(self, run_id: str) -> None:
        """Stop a running run (kills its worker process)."""
        with self._lock:
            proc = self._procs.get(run_id)
            rec = self._runs.get(run_id)
            if rec is None:
                raise InputError(f"run {run_id!r} is not a run of this session")
            if rec.status != "running":
                return
            self._runs[run_id] = replace(rec, status="cancelled", message="cancelled",
                                         finished=time.time())
        if proc is not None:
            proc.kill()
        self._notify()

    def wait(self, run_id: str, *, timeout: float = 600.0) -> RunRecord:
        """Block until ``run_id`` is no longer running (for scripts and tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rec = self.get(run_id)
            if not rec.active:
                return rec
            time.sleep(0.1)
        raise TimeoutError(f"run {run_id} still running after {timeout} s")

    def close(self) -> None:
        """Cancel everything still running (called when the browser page closes)."""
        for rec in self.runs():
            if rec.active:
                self.cancel(rec.run_id)
