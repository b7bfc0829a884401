"""Issue 13: kill -9 during a batch, a full disk during a write, an internal error."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from citytwin.cli import main
from citytwin.results import MANIFEST

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.gpkg"


def _scenario(tmp: Path) -> Path:
    p = tmp / "em.toml"
    p.write_text(f'name = "em"\ncity = "{TINY}"\nduration_h = 2\n[emergency]\n',
                 encoding="utf-8")
    return p


def _finished(out: Path) -> dict[str, str]:
    return {p.name: json.loads((p / MANIFEST).read_text())["created"]
            for p in out.iterdir() if not p.name.startswith(".") and (p / MANIFEST).is_file()}


def test_kill9_batch_loses_and_redoes_nothing(tmp_path: Path) -> None:
    sc = _scenario(tmp_path)
    out = tmp_path / "batch"
    cmd = [sys.executable, "-m", "citytwin.cli", "batch", str(sc), "-r", "8", "--out",
           str(out), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_dir() and len(_finished(out)) >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _finished(out)
    assert before, "no run finished before the kill"
    # the next command completes the batch: the finished runs are skipped, not redone
    assert main(["batch", str(sc), "-r", "8", "--out", str(out), "-q"]) == 0
    after = _finished(out)
    assert len(after) == 8
    assert {k: after[k] for k in before} == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def _no_big_files() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write fails with EFBIG, like ENOSPC
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))


def test_full_disk_during_write_leaves_nothing_half_written(tmp_path: Path) -> None:
    sc = _scenario(tmp_path)
    out = tmp_path / "res"
    proc = subprocess.run([sys.executable, "-m", "citytwin.cli", "run", str(sc), "--out",
                           str(out), "-q"], capture_output=True, text=True, timeout=300,
                          preexec_fn=_no_big_files)
    assert proc.returncode == 2, proc.stderr[-800:]
    assert any(ln.startswith("error:") for ln in proc.stderr.splitlines())
    assert "Traceback" not in proc.stderr
    assert "File too large" in proc.stderr or "space" in proc.stderr
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["em.toml"]


def test_unexpected_error_gets_an_id_not_a_traceback(tmp_path, monkeypatch, capsys) -> None:
    import citytwin.scenario as scenario

    def bug(_path):
        raise KeyError("oops")

    monkeypatch.setattr(scenario, "load_scenario", bug)
    log = tmp_path / "errors.log"
    monkeypatch.setenv("CITYTWIN_ERROR_LOG", str(log))
    assert main(["run", str(_scenario(tmp_path)), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: internal error ") and "Traceback" not in err
    err_id = err.split()[3]
    text = log.read_text()
    assert f"citytwin error {err_id}" in text and "Traceback" in text and "KeyError" in text


def test_permission_denied_is_one_line(tmp_path, capsys) -> None:
    if os.geteuid() == 0:  # root may write anywhere: use a path under a file instead
        blocker = tmp_path / "file"
        blocker.write_text("x")
        target = blocker / "res"
    else:  # pragma: no cover - CI runs as a user
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "res"
    assert main(["run", str(_scenario(tmp_path)), "--out", str(target), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
