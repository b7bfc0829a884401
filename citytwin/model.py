"""``CityModel``: one Mesa model, one clock, the three domain engines.

The model applies a scenario's interventions (:func:`citytwin.interventions.apply`: the city
after its City -> City changes, each domain's parameters, the fleet), creates the engines of
the domains that are on in a fixed order (traffic, energy, emergency) and, on Mesa's event
clock, advances them at every sync step in that order. ``run_scenario`` is the one-call Python entry point; it returns :class:`Results`
and optionally writes them atomically.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import mesa
import numpy as np
import pandas as pd
from mesa.time import Priority, Schedule

from citytwin import interventions
from citytwin.city import City
from citytwin.emergency.engine import EmergencyEngine
from citytwin.energy.engine import EnergyEngine
from citytwin.engine import Engine
from citytwin.errors import ScenarioError
from citytwin.layers import BuildOptions
from citytwin.results import Results, versions
from citytwin.rng import stream
from citytwin.scenario import Scenario, load_scenario
from citytwin.traffic.engine import TrafficEngine

__all__ = ["CityModel", "run_scenario", "ENGINES", "load_city"]

log = logging.getLogger(__name__)

#: domain -> engine class, in the order they are built and advanced
ENGINES: dict[str, type[TrafficEngine] | type[EnergyEngine] | type[EmergencyEngine]] = {
    "traffic": TrafficEngine,
    "energy": EnergyEngine,
    "emergency": EmergencyEngine,
}

ProgressFn = Callable[[float, float], None]


class _ConcernRng(np.random.Generator):
    """Mesa's model generator that is also callable: ``model.rng("demand")`` gives the
    independent stream of that concern (``citytwin.rng.stream(seed, concern)``)."""

    _seed: int = 0

    def __call__(self, concern: str) -> np.random.Generator:
        return stream(self._seed, concern)


def load_city(path: str | Path, options: BuildOptions | None = None) -> City:
    """Load the city file a scenario names with its ``[build]`` options (memoised per process:
    one city, the last one asked for — batch workers run one scenario family; a changed file
    or other options are re-read)."""
    p = Path(path).resolve()
    if not p.exists():
        raise ScenarioError(f"city: file not found: {p}")
    st = p.stat()
    return _load_city(str(p), st.st_mtime_ns, st.st_size, (options or BuildOptions()).cache_key())


@lru_cache(maxsize=1)
def _load_city(path: str, mtime_ns: int, size: int, options_json: str) -> City:
    return City.from_path(path, options=BuildOptions.model_validate_json(options_json))


class CityModel(mesa.Model):
    """A city under one scenario: the engines on one Mesa event clock.

    Attributes engines read: ``city``, ``seed``, ``start``, ``duration_s``, ``step_s``,
    ``spec`` (the :class:`Scenario`), ``rng(concern)``, ``traffic``/``energy``/``emergency``
    (the engine or None), ``agents``.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int | None = None,
        city: City | None = None,
        progress: ProgressFn | None = None,
    ) -> None:
        seed = int(scenario.seed if seed is None else seed)
        self.seed = seed
        super().__init__(rng=seed)
        self._default_schedule.stop()  # the clock is driven by sync events, not unit steps
        self.spec = scenario
        base = city if city is not None else load_city(scenario.city, scenario.build)
        setup = interventions.apply(scenario, base)
        self.city = setup.city
        self.fleet = setup.fleet
        self.start = pd.Timestamp(scenario.start)
        self.duration_s = float(scenario.duration_s)
        self.step_s = float(scenario.step_s)
        self._progress = progress
        self.traffic: TrafficEngine | None = None
        self.energy: EnergyEngine | None = None
        self.emergency: EmergencyEngine | None = None
        self.engines: dict[str, Engine] = {}
        if setup.traffic is not None:
            self.traffic = TrafficEngine(self, setup.traffic)
            self.engines["traffic"] = self.traffic
        if setup.energy is not None:
            self.energy = EnergyEngine(self, setup.energy)
            self.engines["energy"] = self.energy
        if setup.emergency is not None:
            self.emergency = EmergencyEngine(self, setup.emergency)
            self.engines["emergency"] = self.emergency
        self.syncs = 0
        self._sync_gen = self.schedule_recurring(
            self._sync,
            Schedule(interval=self.step_s, start=min(self.step_s, self.duration_s),
                     end=self.duration_s),
            priority=Priority.HIGH,
        )
        last = (self.duration_s // self.step_s) * self.step_s
        if last < self.duration_s:  # the period does not end on a sync step: one more sync
            self.schedule_event(self._sync, at=self.duration_s, priority=Priority.HIGH)

    # Mesa assigns ``self.rng`` in ``Model.__init__``; keep its generator, make it callable.
    @property
    def rng(self) -> _ConcernRng:
        return self._concern_rng

    @rng.setter
    def rng(self, generator: np.random.Generator) -> None:
        wrapped = _ConcernRng(generator.bit_generator)
        wrapped._seed = self.seed
        self._concern_rng = wrapped

    def stream(self, concern: str) -> np.random.Generator:
        """The independent random stream of ``concern`` for this run's seed."""
        return stream(self.seed, concern)

    def _sync(self) -> None:
        t = float(self.time)
        for engine in self.engines.values():
            engine.advance(t)
        self.syncs += 1
        if self._progress is not None:
            self._progress(t, self.duration_s)

    def run(self) -> None:
        """Simulate the whole period."""
        self.run_until(self.duration_s)

    def results(self, *, wall_time_s: float = 0.0) -> Results:
        """Collect the engines' tables and KPIs into :class:`Results`."""
        kpis: dict[str, dict[str, float]] = {}
        tables: dict[str, list[pd.DataFrame]] = {}
        series: dict[str, pd.DataFrame] = {}
        notes: dict[str, dict[str, str]] = {}
        for domain, engine in self.engines.items():
            kpis[domain] = {str(k): float(v) for k, v in engine.kpis().items()}
            if hasattr(engine, "kpi_notes"):  # optional: why a KPI is NaN
                notes[domain] = dict(engine.kpi_notes())
            for name, df in engine.tables().items():
                if name == "timeseries":
                    series[domain] = df
                else:
                    tables.setdefault(name, []).append(df)
        merged = {n: (dfs[0] if len(dfs) == 1 else pd.concat(dfs, ignore_index=True))
                  for n, dfs in tables.items()}
        spec = self.spec
        manifest = {
            "scenario": spec.name,
            "scenario_hash": spec.content_hash(),
            "seed": self.seed,
            "domains": list(self.engines),
            "versions": versions(),
            "wall_time_s": round(float(wall_time_s), 3),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "city": str(spec.city),
            "sim_time_s": float(self.time),
            "syncs": self.syncs,
            "kpi_notes": notes,
            "spec": spec.model_dump(mode="json"),
            # what the build repaired/dropped (test doubles of a City may have no report)
            "city_build": (self.city.report.as_dict() if hasattr(self.city, "report") else {}),
        }
        return Results.build(scenario=spec.name, seed=self.seed, kpis=kpis, tables=merged,
                             timeseries=series, manifest=manifest)


def run_scenario(
    scenario: Scenario | str | Path,
    *,
    seed: int | None = None,
    out: str | Path | None = None,
    city: City | None = None,
    progress: ProgressFn | None = None,
) -> Results:
    """Run one scenario (object or TOML path) with ``seed`` (default: the scenario's).

    When ``out`` is given the results directory is written there atomically.
    """
    spec = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    t0 = time.perf_counter()
    model = CityModel(spec, seed=seed, city=city, progress=progress)
    model.run()
    res = model.results(wall_time_s=time.perf_counter() - t0)
    if out is not None:
        res.write(out)
    return res
