"""A 2 x 2 experiment defined in the app: points validated by citytwin.experiments, one
session run each (progress, cancel), bad levels named."""

from __future__ import annotations

import pytest

from citytwin.app.config import AppConfig
from citytwin.app.experiment_runner import (
    cancel_experiment,
    experiment_progress,
    parse_values,
    start_factorial,
)
from citytwin.app.session import Session
from citytwin.errors import ScenarioError


def test_two_by_two_runs_progress_and_cancel(config: AppConfig) -> None:
    s = Session(config, session_id="exp")
    base = {"name": "b", "duration_h": 1, "traffic": {}}
    run = start_factorial(s, config, name="ui2x2", city="tiny.gpkg", base=base,
                          factors=[("fleet.ev_share", [0.1, 0.5]),
                                   ("interventions.demand_growth.factor", [1.0, 1.5])])
    assert len(run.run_ids) == 4 and len(set(run.run_ids)) == 4
    assert {(p["fleet.ev_share"], p["interventions.demand_growth.factor"])
            for p in run.points} == {(0.1, 1.0), (0.1, 1.5), (0.5, 1.0), (0.5, 1.5)}
    frac, counts = experiment_progress(s, run)
    assert counts == {"running": 4} and 0.0 <= frac < 1.0
    assert {s.get(r).label for r in run.run_ids} == {f"ui2x2__p{i:03d}" for i in range(4)}
    cancel_experiment(s, run)  # kills the four worker processes
    frac, counts = experiment_progress(s, run)
    assert counts == {"cancelled": 4} and frac == 1.0


def test_bad_levels_are_named(config: AppConfig) -> None:
    s = Session(config, session_id="exp-bad")
    with pytest.raises(ScenarioError, match="ev_share"):
        start_factorial(s, config, name="bad", city="tiny.gpkg",
                        base={"name": "b", "duration_h": 1, "traffic": {}},
                        factors=[("fleet.ev_share", [0.1, 7.0]), ("fleet.charging",
                                                                  ["uncontrolled", "smart"])])
    assert s.runs() == []  # nothing started when a point is invalid
    assert parse_values("0.15, 0.4", what="EV share") == [0.15, 0.4]
    assert parse_values("uncontrolled, smart", what="x") == ["uncontrolled", "smart"]
    with pytest.raises(ScenarioError, match="at least two"):
        parse_values("0.3", what="EV share")
