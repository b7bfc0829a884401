"""The engine protocol: what every domain engine is, and the one way to run one alone.

An engine is built from its host (the city, the seed, the period, the fleet, the other
engines it is coupled to) and its own validated parameters, then advanced on the host's clock
and asked for tables and KPIs. :class:`~citytwin.model.CityModel` is the host of a scenario
run; :class:`StandaloneModel` is the host of one engine run by itself (scripts, benchmarks,
calibration), with the same defaults as a scenario.

Couplings are explicit inputs of the receiving engine, read from the host:

- traffic → energy: ``host.traffic.ev_arrivals(since_s, until_s)`` (EV trips ending),
- traffic → emergency: ``host.traffic.link_travel_times()`` (experienced link times),
- energy → emergency: ``host.energy.unsupplied_buildings()`` (who is dark now).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import mesa
import numpy as np
import pandas as pd

from citytwin.fleet import Fleet
from citytwin.rng import stream

if TYPE_CHECKING:  # pragma: no cover
    from citytwin.city import City

__all__ = ["DEFAULT_START", "Engine", "Host", "StandaloneModel"]

#: t = 0 of a run when nothing says otherwise (also the scenario's default ``start``)
DEFAULT_START = date(2024, 6, 3)


@runtime_checkable
class Engine(Protocol):
    """A domain engine: built by ``EngineClass(host, params)``, advanced in time, read out."""

    domain: ClassVar[str]

    def advance(self, until_s: float) -> None:
        """Simulate up to ``until_s`` seconds after the period start."""

    def tables(self) -> dict[str, pd.DataFrame]:
        """Tidy result tables (``timeseries`` is collected separately by the host)."""

    def kpis(self) -> dict[str, float]:
        """Flat KPI name → value (unit in the name)."""


class Host(Protocol):
    """What an engine may read from the model that hosts it."""

    city: City
    seed: int
    start: pd.Timestamp
    duration_s: float
    fleet: Fleet
    traffic: Any
    energy: Any
    emergency: Any

    def stream(self, concern: str) -> np.random.Generator: ...


class StandaloneModel(mesa.Model):
    """The host of one engine run alone: one city, seed, period and fleet, no other engine
    (so couplings fall back to their documented defaults: free-flow link times, synthetic EV
    arrivals, everyone supplied)."""

    def __init__(self, city: City, *, seed: int, start: date | str | pd.Timestamp | None = None,
                 duration_s: float = 86_400.0, fleet: Fleet | None = None) -> None:
        super().__init__(rng=int(seed))
        self.city = city
        self.seed = int(seed)
        self.start = pd.Timestamp(start if start is not None else DEFAULT_START)
        self.duration_s = float(duration_s)
        self.fleet = fleet if fleet is not None else Fleet()
        self.traffic: Any = None
        self.energy: Any = None
        self.emergency: Any = None

    def stream(self, concern: str) -> np.random.Generator:
        """The independent random stream of ``concern`` for this run's seed."""
        return stream(self.seed, concern)
