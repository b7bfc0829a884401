"""Issue 13: a really full disk (a small tmpfs) during ``citytwin run``: one clear error, no
partial result, a previous result in the folder untouched, no temp folder left.

Needs root and a working ``mount -t tmpfs`` (skipped otherwise; the RLIMIT_FSIZE variant in
test_faults.py runs everywhere).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from citytwin.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.gpkg"
PAGE = 4096


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """A mount point in tmp_path and a function to mount a tmpfs of N pages on it."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a tmpfs (the RLIMIT_FSIZE test covers a full disk)")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    mounted: list[Path] = []

    def mount(pages: int) -> Path:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={pages * PAGE}", "tmpfs",
                               str(mnt)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"mount -t tmpfs is not allowed here: {proc.stderr.strip()[:200]}")
        mounted.append(mnt)
        return mnt

    yield mount
    for m in mounted:
        subprocess.run(["umount", str(m)], check=False)


def test_full_tmpfs_clear_error_no_partial_result(tmp_path: Path, small_disk, capsys) -> None:
    sc = tmp_path / "em.toml"
    sc.write_text(f'name = "em"\ncity = "{TINY}"\nduration_h = 1\n[emergency]\n',
                  encoding="utf-8")
    first = tmp_path / "first"
    assert main(["run", str(sc), "--out", str(first), "-q", "--seed", "1"]) == 0
    pages = sum(math.ceil(p.stat().st_size / PAGE) for p in first.iterdir())
    disk = small_disk(pages + 2)  # room for one result and two more pages
    prev = disk / "res"
    shutil.copytree(first, prev)
    before = _snapshot(prev)
    capsys.readouterr()

    # over the previous result: the new one does not fit
    assert main(["run", str(sc), "--out", str(prev), "-q", "--seed", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "No space left on device" in err[-1], err
    assert "Traceback" not in "\n".join(err)
    assert _snapshot(prev) == before  # the previous result, untouched
    assert sorted(p.name for p in disk.iterdir()) == ["res"]  # no temp folder left

    # into a new folder: nothing of it appears
    assert main(["run", str(sc), "--out", str(disk / "new"), "-q", "--seed", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "No space left on device" in err[-1], err
    assert sorted(p.name for p in disk.iterdir()) == ["res"]


def test_error_half_way_through_a_replace_in_place_puts_everything_back(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """The disk fills (ENOSPC) after some of citytwin's files in a folder that also holds the
    user's notes were replaced: the previous result and the notes are back at once."""
    import errno

    sc = tmp_path / "em.toml"
    sc.write_text(f'name = "em"\ncity = "{TINY}"\nduration_h = 1\n[emergency]\n',
                  encoding="utf-8")
    out = tmp_path / "res"
    assert main(["run", str(sc), "--out", str(out), "-q", "--seed", "1"]) == 0
    (out / "notes.txt").write_text("mine\n")
    before = _snapshot(out)
    real = os.replace
    calls = {"n": 0}

    def replace(a, b, **kw):
        calls["n"] += 1
        if calls["n"] == 14:  # the old files are in the backup, some new ones are in
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(b))
        return real(a, b, **kw)

    monkeypatch.setattr(os, "replace", replace)
    capsys.readouterr()
    assert main(["run", str(sc), "--out", str(out), "-q", "--seed", "2"]) == 2
    assert calls["n"] > 14  # the roll-back ran
    monkeypatch.setattr(os, "replace", real)
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error:") and "No space left on device" in err[-1], err
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["em.toml", "res"]
