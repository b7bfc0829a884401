"""Recursive (online) estimators of the twin's multipliers: a scalar Kalman filter on the log
of a multiplier (random walk), updated with one observed/modelled ratio at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["LogMultiplierKalman"]


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
