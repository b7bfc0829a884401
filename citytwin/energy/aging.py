"""Transformer insulation aging after IEEE Std C57.91 (Clause 7 thermal model, Clause 5 aging).

Per step with load factor ``K`` (load / rating, per unit) and ambient ``θ_A``:

- ultimate top-oil rise  ``Δθ_TO,U = Δθ_TO,R · [(K²·R + 1) / (R + 1)]^n``
- ultimate hot-spot gradient ``Δθ_H,U = Δθ_H,R · K^(2m)``
- both approach their ultimate values exponentially, with time constants ``τ_TO`` (oil) and
  ``τ_W`` (winding): ``Δθ(t+Δt) = Δθ_U + (Δθ(t) − Δθ_U)·exp(−Δt/τ)`` — exact for a load that is
  constant over the step, so results do not depend on the step length for constant inputs
  (C57.91's load-dependent correction of ``τ_TO`` for ``n ≠ 1`` is not applied);
- hot spot ``θ_H = θ_A + Δθ_TO + Δθ_H``;
- aging acceleration ``F_AA = exp(15000/383 − 15000/(θ_H + 273))`` (= 1 at 110 °C, thermally
  upgraded paper);
- equivalent aging ``F_EQA = Σ F_AA·Δt / Σ Δt``; loss of life in a period ``= F_EQA · period``;
  in percent of the normal insulation life (180,000 h, C57.91 Table 2).

Default rated values are those of a 65 °C-rise distribution transformer (hot spot 110 °C at rated
load and 30 °C ambient: top-oil rise 55 °C + hot-spot gradient 25 °C), ONAN cooling exponents
``n = m = 0.8``, ``R = 5`` (load / no-load losses), ``τ_TO = 180 min``, ``τ_W = 4 min``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from citytwin.errors import InputError

__all__ = [
    "ThermalParams",
    "COOLING_EXPONENTS",
    "aging_acceleration",
    "hot_spot_steady",
    "hot_spot_series",
    "equivalent_aging",
    "TransformerAging",
]

# C57.91 Table 4 exponents (n, m) by cooling mode.
COOLING_EXPONENTS: dict[str, tuple[float, float]] = {
    "ONAN": (0.8, 0.8),
    "ONAF": (0.9, 0.8),
    "OFAF": (0.9, 0.8),
    "ODAF": (1.0, 1.0),
}
REFERENCE_HOT_SPOT_C = 110.0


class ThermalParams(BaseModel):
    """Rated thermal data of one transformer type (°C, minutes, hours)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    top_oil_rise_rated_c: float = Field(default=55.0, gt=0)
    hot_spot_gradient_rated_c: float = Field(default=25.0, gt=0)
    loss_ratio: float = Field(default=5.0, gt=0, description="R: load losses at rated load / no-load losses")
    cooling: Literal["ONAN", "ONAF", "OFAF", "ODAF"] = "ONAN"
    tau_top_oil_min: float = Field(default=180.0, gt=0)
    tau_winding_min: float = Field(default=4.0, gt=0)
    normal_life_h: float = Field(default=180_000.0, gt=0)

    @property
    def n(self) -> float:
        return COOLING_EXPONENTS[self.cooling][0]

    @property
    def m(self) -> float:
        return COOLING_EXPONENTS[self.cooling][1]


def aging_acceleration(hot_spot_c: np.ndarray | float) -> np.ndarray:
    """F_AA = exp(15000/383 − 15000/(θ_H + 273)); 1 at 110 °C."""
    th = np.asarray(hot_spot_c, dtype=float)
    return np.exp(15000.0 / 383.0 - 15000.0 / (th + 273.0))


def _ultimate(k: np.ndarray, p: ThermalParams) -> tuple[np.ndarray, np.ndarray]:
    r = p.loss_ratio
    to = p.top_oil_rise_rated_c * ((k * k * r + 1.0) / (r + 1.0)) ** p.n
    hs = p.hot_spot_gradient_rated_c * k ** (2.0 * p.m)
    return to, hs


def _check(k: np.ndarray, ambient: np.ndarray, where: str) -> None:
    problems = []
    if not np.all(np.isfinite(k)):
        problems.append(f"{where}: load factor has non-finite values")
    elif np.any(k < 0):
        problems.append(f"{where}: negative load factor {float(k.min())}, expected >= 0 (per unit of rating)")
    if not np.all(np.isfinite(ambient)):
        problems.append(f"{where}: ambient temperature has non-finite values")
    elif np.any((ambient < -60) | (ambient > 60)):
        problems.append(f"{where}: ambient temperature outside -60..60 °C (wrong units?)")
    if problems:
        raise InputError(problems, source="aging")


def hot_spot_steady(load_factor: np.ndarray | float, ambient_c: np.ndarray | float,
                    params: ThermalParams | None = None) -> np.ndarray:
    """Steady-state hot-spot temperature (°C) for a constant load factor and ambient."""
    p = params or ThermalParams()
    k = np.asarray(load_factor, dtype=float)
    a = np.asarray(ambient_c, dtype=float)
    _check(k, a, "hot_spot_steady")
    to, hs = _ultimate(k, p)
    return a + to + hs


def hot_spot_series(load_factor: np.ndarray, ambient_c: np.ndarray | float, *, step_s: float,
                    params: ThermalParams | None = None,
                    initial: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Hot-spot temperature (time × assets) for load factors (time × assets) held over each step.

    The value at row ``t`` is the hot spot at the *end* of step ``t``. ``initial`` = (top-oil
    rise, hot-spot gradient) at the start; default: steady state for the first step's load.
    """
    p = params or ThermalParams()
    k = np.atleast_2d(np.asarray(load_factor, dtype=float))
    a = np.broadcast_to(np.asarray(ambient_c, dtype=float).reshape(-1, 1) if np.ndim(ambient_c) == 1
                        else np.asarray(ambient_c, dtype=float), k.shape)
    _check(k, np.asarray(a), "hot_spot_series")
    to_u, hs_u = _ultimate(k, p)
    if initial is None:
        to, hs = to_u[0].copy(), hs_u[0].copy()
    else:
        to, hs = np.array(initial[0], dtype=float), np.array(initial[1], dtype=float)
    e_to = np.exp(-step_s / (p.tau_top_oil_min * 60.0))
    e_w = np.exp(-step_s / (p.tau_winding_min * 60.0))
    out = np.empty_like(k)
    for t in range(k.shape[0]):
        to = to_u[t] + (to - to_u[t]) * e_to
        hs = hs_u[t] + (hs - hs_u[t]) * e_w
        out[t] = a[t] + to + hs
    return out


def equivalent_aging(hot_spot_c: np.ndarray, step_s: float | np.ndarray | None = None) -> np.ndarray:
    """F_EQA over the time axis (axis 0): Σ F_AA·Δt / Σ Δt (equal steps when ``step_s`` is scalar)."""
    f = aging_acceleration(hot_spot_c)
    if step_s is None or np.ndim(step_s) == 0:
        return f.mean(axis=0)
    w = np.asarray(step_s, dtype=float)
    return (f * w.reshape(-1, *([1] * (f.ndim - 1)))).sum(axis=0) / w.sum()


class TransformerAging:
    """Incremental aging tracker for many transformers (the energy engine calls ``update`` per step).

    ``update(loading_pct, ambient_c, dt_s)`` advances the thermal state by one step and accumulates
    aging per simulated day (days counted from t = 0 in 86,400 s blocks).
    """

    def __init__(self, asset_ids: Sequence[str], *, params: ThermalParams | None = None,
                 start_s: float = 0.0) -> None:
        self.asset_ids = np.asarray(list(asset_ids), dtype=object)
        self.params = params or ThermalParams()
        self.t_s = float(start_s)
        n = len(self.asset_ids)
        self._to: np.ndarray | None = None
        self._hs = np.zeros(n)
        self.hot_spot_c = np.full(n, np.nan)
        self._rows: dict[int, dict[str, np.ndarray]] = {}

    def update(self, loading_pct: np.ndarray, ambient_c: float | np.ndarray, dt_s: float) -> np.ndarray:
        """Advance by ``dt_s`` with the given loading (% of rating) and ambient; returns θ_H (°C)."""
        if not dt_s > 0:
            raise InputError([f"dt_s={dt_s}, expected > 0"], source="TransformerAging.update")
        k = np.asarray(loading_pct, dtype=float) / 100.0
        if k.shape != self._hs.shape:
            raise InputError([f"loading_pct: shape {k.shape}, expected ({len(self._hs)},)"],
                             source="TransformerAging.update")
        k = np.nan_to_num(k, nan=0.0)  # out of service / not solved: no load
        amb = np.broadcast_to(np.asarray(ambient_c, dtype=float), k.shape)
        _check(k, amb, "TransformerAging.update")
        to_u, hs_u = _ultimate(k, self.params)
        if self._to is None:  # start in steady state for the first step's load
            self._to, self._hs = to_u.copy(), hs_u.copy()
        else:
            self._to = to_u + (self._to - to_u) * np.exp(-dt_s / (self.params.tau_top_oil_min * 60))
            self._hs = hs_u + (self._hs - hs_u) * np.exp(-dt_s / (self.params.tau_winding_min * 60))
        th = amb + self._to + self._hs
        self.hot_spot_c = th
        day = int(self.t_s // 86_400.0)
        row = self._rows.setdefault(day, {"aged_s": np.zeros(len(k)), "dt_s": np.zeros(len(k)),
                                          "max_hot_spot_c": np.full(len(k), -np.inf)})
        row["aged_s"] += aging_acceleration(th) * dt_s
        row["dt_s"] += dt_s
        row["max_hot_spot_c"] = np.maximum(row["max_hot_spot_c"], th)
        self.t_s += dt_s
        return th

    def table(self) -> pd.DataFrame:
        """Per transformer and simulated day: ``max_hot_spot_c``, ``f_eqa``, ``loss_of_life_h``
        (insulation hours consumed), ``loss_of_life_pct`` (of the normal life)."""
        parts = []
        for day, r in sorted(self._rows.items()):
            parts.append(pd.DataFrame({
                "asset_id": self.asset_ids, "day": day, "max_hot_spot_c": r["max_hot_spot_c"],
                "f_eqa": r["aged_s"] / r["dt_s"], "loss_of_life_h": r["aged_s"] / 3600.0,
                "loss_of_life_pct": r["aged_s"] / 3600.0 / self.params.normal_life_h * 100.0,
            }))
        if not parts:
            return pd.DataFrame(columns=["asset_id", "day", "max_hot_spot_c", "f_eqa", "loss_of_life_h",
                                         "loss_of_life_pct"])
        return pd.concat(parts, ignore_index=True)
