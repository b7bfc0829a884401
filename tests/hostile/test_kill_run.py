"""Issue 13: kill -9 of ``citytwin run`` at random (seeded) moments and at every kind of step
of its write. After each kill the next command's first step (``check_output_dir``, which
cleans up after killed writers) leaves one complete result in ``--out`` - the previous one or
the new one, never a mix, never none - no ``.NAME.tmp-*``/``.NAME.old-*`` beside it, the
user's own files untouched; and the next run succeeds.

The runs are real ``citytwin.cli.main(["run", ...])`` calls in processes forked from a
single-threaded forkserver that has imported citytwin once (a fresh interpreter per kill
would spend most of the test importing). A kill at step k: the child counts the filesystem
calls of the write (``os.rename/replace/unlink/rmdir/mkdir/fsync``, ``shutil.rmtree``, each
table's ``to_parquet``) and sends itself SIGKILL just before the k-th. One kill is of a real
``python -m citytwin.cli run`` the moment its temp folder appears.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from citytwin.cli import main
from citytwin.results import MANIFEST, Results, check_output_dir

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.gpkg"
WATCHED = ("rename", "replace", "unlink", "rmdir", "mkdir", "fsync")


def _scenario(tmp: Path) -> Path:
    p = tmp / "em.toml"
    p.write_text(f'name = "em"\ncity = "{TINY}"\nduration_h = 1\n[emergency]\n',
                 encoding="utf-8")
    return p


def _child(argv: list[str], kill_at: int, log: str, exchange: bool) -> None:
    """In the forked child: run ``citytwin run``; SIGKILL just before write step ``kill_at``
    (0: never; the steps are then listed in ``log``)."""
    import shutil

    import pandas as pd

    import citytwin.results as R

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    steps: list[str] = []
    writing = [False]

    def wrap(owner: Any, attr: str) -> None:
        orig = getattr(owner, attr)

        def f(*a: Any, **k: Any) -> Any:
            if writing[0]:
                steps.append(attr)
                if len(steps) == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return orig(*a, **k)

        setattr(owner, attr, f)

    for attr in WATCHED:
        wrap(os, attr)
    wrap(shutil, "rmtree")
    wrap(pd.DataFrame, "to_parquet")
    orig_write = R.atomic_write_dir

    def atomic_write_dir(*a: Any, **k: Any) -> Any:
        writing[0] = True
        return orig_write(*a, **k)

    R.atomic_write_dir = atomic_write_dir  # type: ignore[assignment]
    if not exchange:  # a file system without renameat2(RENAME_EXCHANGE): the two-rename swap
        R._exchange = lambda a, b: False  # type: ignore[assignment]
    rc = main(argv)
    Path(log).write_text(json.dumps({"rc": rc, "steps": steps}))
    os._exit(0)


class Runner:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.sc = _scenario(tmp)
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(["citytwin.cli", "citytwin.model", "citytwin.results",
                                         "pandas", "pyarrow.parquet", __name__])
        self.seed = 0

    def argv(self, out: Path, *extra: str) -> list[str]:
        self.seed += 1  # every run its own seed: a mix of two results breaks the digest
        return ["run", str(self.sc), "--out", str(out), "-q", "--seed", str(self.seed), *extra]

    def start(self, out: Path, kill_at: int = 0, *, exchange: bool = True,
              extra: tuple[str, ...] = ()) -> tuple[Any, Path]:
        log = self.tmp / f"child-{self.seed + 1}.json"
        p = self.ctx.Process(target=_child, args=(self.argv(out, *extra), kill_at, str(log),
                                                  exchange))
        p.start()
        return p, log

    def run(self, out: Path, kill_at: int = 0, **kw: Any) -> dict[str, Any] | None:
        p, log = self.start(out, kill_at, **kw)
        p.join(300)
        assert p.exitcode is not None, "child hung"
        if p.exitcode == -signal.SIGKILL:
            return None
        assert p.exitcode == 0, p.exitcode
        done = json.loads(log.read_text())
        assert done["rc"] == 0
        return done


def _complete(out: Path) -> int:
    """The seed of the one complete result in ``out`` (its tables are exactly the ones its
    manifest's digest was computed over; every run here has its own, increasing seed)."""
    assert (out / MANIFEST).is_file(), f"no complete result in {out}: {sorted(os.listdir(out))}"
    res = Results.read(out)
    assert res.digest() == res.manifest["digest"], "the folder holds a mix of two results"
    return int(res.manifest["seed"])


def _after_kill(out: Path, before: int, user: dict[str, bytes]) -> int:
    """What the next command sees after it cleaned up: one complete result (the previous or
    a new one), nothing stale, the user's files as they were."""
    check_output_dir(out)  # the first step of the next `citytwin run` (no --force needed)
    now = _complete(out)
    stale = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert not stale, stale
    assert {n: (out / n).read_bytes() for n in user} == user
    assert now >= before  # never back to an older result
    return now


def _points(steps: list[str], rng: random.Random) -> list[int]:
    """One seeded random step of each kind (1-based), plus the step after every rename."""
    kinds = sorted(set(steps))
    pts = {rng.choice([i + 1 for i, s in enumerate(steps) if s == k]) for k in kinds}
    pts |= {i + 2 for i, s in enumerate(steps) if s == "rename" and i + 2 <= len(steps)}
    return sorted(pts)


def test_kill9_run_never_loses_or_mixes_a_result(tmp_path: Path) -> None:
    rng = random.Random(13)
    r = Runner(tmp_path)
    out = tmp_path / "res"
    assert main(r.argv(out)) == 0  # a previous complete result
    prev = _complete(out)

    # 1. at random moments of the whole run (most land in the simulation)
    t0 = time.monotonic()
    full = r.run(out)
    assert full is not None
    took = time.monotonic() - t0
    prev = _after_kill(out, prev, {})
    for _ in range(2):
        p, _log = r.start(out)
        time.sleep(rng.uniform(0.0, took))
        p.kill()  # SIGKILL, unless it has already finished (a late moment)
        p.join(60)
        prev = _after_kill(out, prev, {})

    # 2. at each kind of step of the write over a previous result (atomic exchange)
    for k in _points(full["steps"], rng):
        r.run(out, k)
        prev = _after_kill(out, prev, {})

    # 3. the same where the file system has no atomic exchange (two renames)
    steps = r.run(out, exchange=False)
    assert steps is not None and steps["steps"].count("rename") >= 2
    prev = _after_kill(out, prev, {})
    for k in _points(steps["steps"], rng):
        r.run(out, k, exchange=False)
        prev = _after_kill(out, prev, {})

    # the next run succeeds and leaves nothing beside it
    assert main(r.argv(out)) == 0
    assert _complete(out) == r.seed
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("child-")) == [
        "em.toml", "res"]


def test_kill9_replace_in_place_keeps_user_files_and_one_result(tmp_path: Path) -> None:
    """A result folder that also holds the user's notes is replaced file by file: killed at
    any step, the next command rolls back to the previous result, the notes untouched."""
    rng = random.Random(7)
    r = Runner(tmp_path)
    out = tmp_path / "res"
    assert main(r.argv(out)) == 0
    user = {"notes.txt": b"my notes\n", "plot.png": b"\x89PNG..."}
    for n, b in user.items():
        (out / n).write_bytes(b)
    prev = _complete(out)
    full = r.run(out)
    assert full is not None and "replace" in full["steps"]
    prev = _after_kill(out, prev, user)
    replaces = [i + 1 for i, s in enumerate(full["steps"]) if s == "replace"]
    points = set(_points(full["steps"], rng)) | {replaces[0], replaces[len(replaces) // 2],
                                                 replaces[-1], replaces[-1] + 1}
    for k in sorted(points):
        r.run(out, k)
        prev = _after_kill(out, prev, user)
    assert main(r.argv(out)) == 0
    assert _complete(out) == r.seed
    assert {n: (out / n).read_bytes() for n in user} == user


def test_kill9_real_cli_while_it_writes(tmp_path: Path) -> None:
    """A real ``python -m citytwin.cli run`` killed the moment its temp folder appears."""
    out = tmp_path / "res"
    sc = _scenario(tmp_path)
    assert main(["run", str(sc), "--out", str(out), "-q", "--seed", "1"]) == 0
    prev = _complete(out)
    proc = subprocess.Popen([sys.executable, "-m", "citytwin.cli", "run", str(sc), "--out",
                             str(out), "-q", "--seed", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if any(p.name.startswith(".res.tmp-") for p in tmp_path.iterdir()):
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    prev = _after_kill(out, prev, {})
    assert prev in (1, 2)
    assert main(["run", str(sc), "--out", str(out), "-q", "--seed", "3"]) == 0
    assert _complete(out) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["em.toml", "res"]
