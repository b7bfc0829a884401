"""Experiments defined in the app: a factorial design over two (or more) scenario keys, each
design point validated by :mod:`citytwin.experiments` and run as a session run (its own
worker process, so it shows progress and can be cancelled like any run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from citytwin.app.config import AppConfig, safe_join, safe_name
from citytwin.app.levers import to_toml
from citytwin.app.session import Session
from citytwin.errors import ScenarioError

__all__ = ["FACTOR_KEYS", "parse_values", "start_factorial", "experiment_progress",
           "cancel_experiment", "ExperimentRun"]

# keys a planner picks from (dotted scenario keys, as in an experiment TOML file)
FACTOR_KEYS: dict[str, str] = {
    "fleet.ev_share": "EV share",
    "fleet.charging": "charging policy",
    "interventions.demand_growth.factor": "demand scale",
    "interventions.pv_share.share": "PV share",
    "traffic.demand_scale": "traffic demand scale",
}


@dataclass(frozen=True)
class ExperimentRun:
    name: str
    run_ids: tuple[str, ...]
    points: tuple[dict[str, Any], ...]


def parse_values(text: str, *, what: str) -> list[Any]:
    """``"0.15, 0.4"`` -> ``[0.15, 0.4]``; words stay strings (``"uncontrolled, smart"``)."""
    out: list[Any] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(int(part) if part.lstrip("-").isdigit() else float(part))
        except ValueError:
            out.append(part)
    if len(out) < 2:
        raise ScenarioError(f"{what}: give at least two comma-separated levels, got {text!r}",
                            source="experiment form")
    return out


def start_factorial(session: Session, config: AppConfig, *, name: str, city: str,
                    base: dict[str, Any], factors: list[tuple[str, list[Any]]],
                    seed: int = 0, replications: int = 1) -> ExperimentRun:
    """Validate every point of the full factorial of ``factors`` ((key, levels) pairs) on
    ``base`` (a scenario dict) and start one run per point and replication."""
    from citytwin.experiments import Experiment, Factor, design_points, point_scenarios

    name = safe_name(name, what="experiment name")
    city_path = safe_join(config.data_dir, city, what="city file")
    session.root.mkdir(parents=True, exist_ok=True)
    base_toml = session.root / f"{name}.base.toml"
    base_toml.write_text(to_toml({k: v for k, v in base.items() if k != "city"},
                                 city=str(city_path)))
    try:
        exp = Experiment(name=name, scenario=base_toml, replications=replications, seed=seed,
                         levers=tuple(Factor(name=f"f{i}", key=key, values=tuple(values))
                                      for i, (key, values) in enumerate(factors)))
    except ValueError as exc:
        raise ScenarioError(str(exc), source="experiment form") from None
    design = design_points(exp)
    scenarios = point_scenarios(exp, design)  # ScenarioError naming every bad point
    labels = {f"f{i}": key for i, (key, _) in enumerate(factors)}
    run_ids, points = [], []
    for spec, row in zip(scenarios, design.to_dict("records"), strict=True):
        data = spec.model_dump(mode="json", exclude={"city"})
        for r in range(replications):
            run_ids.append(session.start(data, seed=seed + r, label=spec.name, city=city))
            points.append({labels.get(k, k): v for k, v in row.items()})
    (session.root / f"{name}.experiment.json").write_text(
        json.dumps({"name": name, "factors": factors, "runs": run_ids}, default=str))
    return ExperimentRun(name=name, run_ids=tuple(run_ids), points=tuple(points))


def experiment_progress(session: Session, run: ExperimentRun) -> tuple[float, dict[str, int]]:
    """Mean progress of the experiment's runs and the count per status."""
    counts: dict[str, int] = {}
    total = 0.0
    for rid in run.run_ids:
        rec = session.get(rid)
        counts[rec.status] = counts.get(rec.status, 0) + 1
        total += 1.0 if rec.status != "running" else rec.progress
    return total / max(1, len(run.run_ids)), counts


def cancel_experiment(session: Session, run: ExperimentRun) -> None:
    for rid in run.run_ids:
        session.cancel(rid)
