"""Issue 13: ``--out`` never loses a file; temp folders of killed writers are cleaned."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from citytwin.cli import main
from citytwin.errors import InputError
from citytwin.results import MANIFEST, Results, atomic_write_dir, check_output_dir

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests" / "data" / "tiny.gpkg"


def scenario(tmp: Path, name: str = "quiet") -> Path:
    """A real scenario on the committed tiny city with every domain off (runs in ~1 s)."""
    p = tmp / f"{name}.toml"
    p.write_text(f'name = "{name}"\ncity = "{TINY}"\nduration_h = 1\n', encoding="utf-8")
    return p


def test_out_onto_user_folder_is_refused_and_nothing_deleted(tmp_path, capsys) -> None:
    sc = scenario(tmp_path)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    rc = main(["run", str(sc), "--out", str(tmp_path), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "not a citytwin result" in err and "--force" in err
    assert notes.read_text() == "mine" and sc.is_file()


def test_out_dot_refused_before_simulating(tmp_path, monkeypatch, capsys) -> None:
    sc = scenario(tmp_path)
    monkeypatch.chdir(tmp_path)
    import citytwin.model as model

    def boom(*a, **k):  # the simulation must not even start
        raise AssertionError("simulated before checking --out")

    monkeypatch.setattr(model, "run_scenario", boom)
    assert main(["run", str(sc), "--out", ".", "--no-progress"]) == 2
    assert "not a citytwin result" in capsys.readouterr().err


def test_force_into_cwd_keeps_user_files(tmp_path, monkeypatch) -> None:
    sc = scenario(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(sc), "--out", ".", "--force", "--no-progress"]) == 0
    assert (tmp_path / "notes.txt").read_text() == "mine" and sc.is_file()
    assert Results.is_complete(tmp_path)
    Results.read(tmp_path)
    # a second forced run replaces citytwin's files only
    assert main(["run", str(sc), "--out", ".", "--force", "--no-progress"]) == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_out_onto_existing_file_refused_even_with_force(tmp_path) -> None:
    f = tmp_path / "report.pdf"
    f.write_bytes(b"%PDF")
    for force in (False, True):
        with pytest.raises(InputError, match="existing file"):
            check_output_dir(f, force=force)
    assert f.read_bytes() == b"%PDF"
    assert [p.name for p in tmp_path.iterdir()] == ["report.pdf"]


def test_rerun_replaces_a_citytwin_result(tmp_path) -> None:
    sc = scenario(tmp_path)
    out = tmp_path / "res"
    assert main(["run", str(sc), "--out", str(out), "--no-progress"]) == 0
    assert main(["run", str(sc), "--out", str(out), "--no-progress"]) == 0
    assert Results.is_complete(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_stale_temp_of_killed_writer_removed_by_run(tmp_path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".res.tmp-{dead.pid}-deadbeef"
    stale.mkdir()
    (stale / "kpis.parquet").write_bytes(b"half")
    live = tmp_path / f".other.tmp-{os.getpid()}-cafe0000"
    live.mkdir()  # a writer that is still alive keeps its temp folder
    sc = scenario(tmp_path)
    assert main(["run", str(sc), "--out", str(tmp_path / "res"), "--no-progress"]) == 0
    assert not stale.exists() and live.exists()


def test_failed_write_leaves_nothing(tmp_path) -> None:
    def write(tmp: Path) -> None:
        (tmp / "kpis.parquet").write_bytes(b"x")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write_dir(tmp_path / "res", write)
    assert list(tmp_path.iterdir()) == []


def test_batch_relative_out_resolved_on_client(tmp_path, monkeypatch) -> None:
    from citytwin.batch import plan_runs

    sc = scenario(tmp_path)
    monkeypatch.chdir(tmp_path)
    runs = plan_runs([sc], out="batch_rel")
    assert runs[0].path.is_absolute()
    assert runs[0].payload()["path"].startswith(str(tmp_path.resolve()))


def test_racing_writers_leave_one_complete_result(tmp_path) -> None:
    sc = scenario(tmp_path)
    out = tmp_path / "race"
    cmd = [sys.executable, "-m", "citytwin.cli", "run", str(sc), "--out", str(out), "-q"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    assert all(b"Traceback" not in o[1] for o in outs)
    assert Results.is_complete(out) and (out / MANIFEST).is_file()
    Results.read(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_temp_names_carry_the_host_and_another_hosts_temp_waits_its_age(tmp_path) -> None:
    """A Dask cluster's workers share the results folder: another host's pid says nothing
    here, so its temp folder is kept until nothing in it changed for FOREIGN_TEMP_AGE_S."""
    import time

    from citytwin.results import FOREIGN_TEMP_AGE_S, host_tag, remove_stale_temp, temp_tag

    seen: list[str] = []
    atomic_write_dir(tmp_path / "res", lambda tmp: seen.append(tmp.name) or (
        tmp / "x.txt").write_text("x"))
    assert seen[0].startswith(f".res.tmp-{temp_tag()}-") and "@" + host_tag() in seen[0]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    # another host's writer, with a pid that is dead *here*: fresh, so it is kept
    live_elsewhere = tmp_path / f".a.tmp-{dead.pid}@other-node-7-0badcafe"
    live_elsewhere.mkdir()
    (live_elsewhere / "kpis.parquet").write_bytes(b"being written")
    old_elsewhere = tmp_path / f".b.tmp-{os.getpid()}@other-node-7-0ddba11"
    old_elsewhere.mkdir()
    (old_elsewhere / "kpis.parquet").write_bytes(b"left")
    then = time.time() - FOREIGN_TEMP_AGE_S - 60
    for p in (old_elsewhere / "kpis.parquet", old_elsewhere):
        os.utime(p, (then, then))
    # this host: dead pid removed at once, live pid kept, whatever the age
    mine_dead = tmp_path / f".c.tmp-{dead.pid}@{host_tag()}-deadbeef"
    mine_live = tmp_path / f".d.tmp-{temp_tag()}-cafe0000"
    for p in (mine_dead, mine_live):
        p.mkdir()
        os.utime(p, (then, then))
    removed = remove_stale_temp(tmp_path)
    assert sorted(removed) == sorted([old_elsewhere, mine_dead])
    assert live_elsewhere.exists() and mine_live.exists()
    assert FOREIGN_TEMP_AGE_S == 24 * 3600
    # a recent change inside an old folder keeps it (a writer still filling it)
    os.utime(live_elsewhere, (then, then))
    assert remove_stale_temp(tmp_path) == [] and live_elsewhere.exists()
    assert remove_stale_temp(tmp_path, foreign_age_s=0.0) == [live_elsewhere]
