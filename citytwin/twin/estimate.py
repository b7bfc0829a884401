"""Recursive (online) estimators of the twin's multipliers: a scalar Kalman filter on the log
of a multiplier (random walk), updated with one observed/modelled ratio at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LogMultiplierKalman", "LinearMultiplierKalman"]


@dataclass
class LogMultiplierKalman:
    """x = log(multiplier); x_k = x_{k-1} + w (var ``q`` per update); y = x + v (var ``r``)."""

    mean: float = 0.0
    var: float = 0.25
    q: float = 1e-5
    n: int = 0

    def update(self, observed: float, modelled: float, *, r: float) -> None:
        if not (observed > 0 and modelled > 0 and r > 0):
            return
        self.var += self.q
        y = math.log(observed / modelled)
        k = self.var / (self.var + r)
        self.mean += k * (y - self.mean)
        self.var *= 1.0 - k
        self.n += 1

    @property
    def multiplier(self) -> float:
        return math.exp(self.mean)

    def band(self, z: float = 1.96) -> tuple[float, float]:
        sd = math.sqrt(self.var)
        return math.exp(self.mean - z * sd), math.exp(self.mean + z * sd)


@dataclass
class LinearMultiplierKalman:
    """A multiplier ``m`` of one part of a modelled value: ``y = m·h + c + v`` (``h``: the
    part the multiplier scales, e.g. the buildings' base electricity; ``c``: the rest, e.g. EV
    charging), ``var v = (rel·y)²``; random walk ``m_k = m_{k-1} + w`` (var ``q`` per update).
    Linear in ``m``, so this is the exact Kalman filter of that model."""

    mean: float = 1.0
    var: float = 0.25
    q: float = 1e-6
    n: int = 0

    def update(self, observed: float, scaled: float, rest: float = 0.0, *, rel: float = 0.0,
               r: float | None = None) -> None:
        """One reading; its noise variance is ``r`` when given, else ``(rel·observed)²``."""
        if r is None:
            r = (rel * max(abs(observed), 1e-9)) ** 2
        if not (scaled > 0 and r > 0 and observed == observed):
            return
        self.var += self.q
        s = scaled * scaled * self.var + r
        k = self.var * scaled / s
        self.mean += k * (observed - scaled * self.mean - rest)
        self.var *= 1.0 - k * scaled
        self.n += 1

    @property
    def multiplier(self) -> float:
        return self.mean

    @property
    def sd(self) -> float:
        return math.sqrt(self.var)

    def band(self, z: float = 1.96) -> tuple[float, float]:
        return self.mean - z * self.sd, self.mean + z * self.sd
