"""Runs live in worker processes per session: errors surface, cancel kills, sessions are apart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from citytwin.app.config import AppConfig
from citytwin.app.session import Session
from citytwin.errors import InputError

from ._apphelpers import write_results


def test_failed_and_cancelled_runs(config: AppConfig) -> None:
    s = Session(config)
    events: list[int] = []
    s.subscribe(lambda: events.append(1))
    bad = s.start({"name": "bad", "duration_h": 1, "traffic": {},
                   "interventions": [{"type": "close_road", "edges": [99999]}]},
                  seed=0, label="bad")
    slow = s.start({"name": "slow", "duration_h": 24, "traffic": {}}, seed=0, label="slow")
    assert s.get(slow).status == "running"
    time.sleep(0.5)
    s.cancel(slow)
    rec = s.get(slow)
    assert rec.status == "cancelled" and not rec.active
    proc_gone = s._procs.get(slow)
    assert proc_gone is None or proc_gone.poll() is not None or proc_gone.wait(5) is not None
    failed = s.wait(bad, timeout=120)
    assert failed.status == "failed"
    assert "99999" in (failed.error or ""), failed.error
    assert not (failed.path / "manifest.json").exists()
    assert s.results() == {}  # nothing finished
    assert events, "listeners are told about run changes"
    # a cancelled run stays cancelled even when its process exit is noticed later
    time.sleep(0.3)
    assert s.get(slow).status == "cancelled"
    with pytest.raises(InputError):
        s.cancel("not-a-run")


def test_two_sessions_do_not_share_runs(config: AppConfig) -> None:
    a, b = Session(config), Session(config)
    assert a.root != b.root and a.root.parent == b.root.parent
    # simulate a finished run of session a by writing its results where a keeps them
    shared = Path(config.results_dir)
    write_results(a.root, "mine-s0-1", scenario="mine", seed=0, kpis={"traffic": {"x": 1.0}})
    write_results(shared, "published", scenario="pub", seed=0, kpis={"traffic": {"x": 2.0}})
    assert "published" in a.results() and "published" in b.results()
    for key in b.results():
        assert "mine" not in key
    with pytest.raises(InputError):
        b.resolve_result("sessions/" + a.session_id + "/mine-s0-1")


def test_a_run_being_written_is_not_listed(config: AppConfig) -> None:
    """A worker writes into a dot folder and renames it when complete: that folder (with its
    manifest already there) is no run - listing it made the Experiments page read a folder
    that vanished a moment later (FileNotFoundError, found by the planner-flow browser test)."""
    s = Session(config)
    write_results(s.root, ".exp__p000-s1-3.tmp-123-abc", scenario="exp", seed=1,
                  kpis={"traffic": {"x": 1.0}})
    write_results(s.root, "exp__p001-s1-4", scenario="exp", seed=1, kpis={"traffic": {"x": 2.0}})
    assert [r.run_id for r in s.runs()] == ["exp__p001-s1-4"]
    assert list(s.results()) == ["exp__p001-s1-4"]
