"""Thermal state of the transformers, assimilated from their top-oil temperature sensors.

The model is the one of :mod:`citytwin.energy.aging` (IEEE C57.91 Clause 7): the top-oil rise
over ambient ``Δθ_TO`` and the hot-spot gradient ``Δθ_H`` approach their ultimate values for the
load factor ``K`` exponentially (``τ_TO``, ``τ_W``). Here ``Δθ_TO`` is the state of one scalar
Kalman filter per transformer:

- predict over ``dt`` with the load factor held over it:
  ``x ← x_U(K) + (x − x_U(K))·e^(−dt/τ_TO)``, ``P ← e²·P + q·dt`` (model error of the rise);
- update with a top-oil reading ``y = θ_A + x + v`` (``var v = r``).

``Δθ_H`` follows its own exponential deterministically (``τ_W`` is minutes: it is set by the
load). The hot spot ``θ_H = θ_A + Δθ_TO + Δθ_H`` of every step is accumulated into the aging
(``F_AA·dt``, C57.91 Clause 5), which is what :mod:`citytwin.twin.maintenance` turns into loss
of life and a ranking.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from citytwin.energy.aging import ThermalParams, aging_acceleration

__all__ = ["ultimate_rises", "top_oil_series", "ThermalState"]


def ultimate_rises(load_factor: np.ndarray | float, params: ThermalParams
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(ultimate top-oil rise, ultimate hot-spot gradient) in K for load factor ``K`` (p.u.):
    ``Δθ_TO,R·[(K²R + 1)/(R + 1)]^n`` and ``Δθ_H,R·K^(2m)`` (the formulas of energy/aging.py)."""
    k = np.asarray(load_factor, dtype=float)
    r = params.loss_ratio
    to = params.top_oil_rise_rated_c * ((k * k * r + 1.0) / (r + 1.0)) ** params.n
    hs = params.hot_spot_gradient_rated_c * k ** (2.0 * params.m)
    return to, hs


def top_oil_series(load_factor: np.ndarray, ambient_c: np.ndarray, *, step_s: float,
                   params: ThermalParams | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(top-oil temperature, hot spot) in °C at the end of each step (time × assets) for load
    factors held over each step; steady state for the first step's load at the start (as
    :func:`citytwin.energy.aging.hot_spot_series`, whose hot spot this reproduces)."""
    p = params or ThermalParams()
    k = np.atleast_2d(np.asarray(load_factor, dtype=float))
    a = np.asarray(ambient_c, dtype=float).reshape(-1, 1) * np.ones((1, k.shape[1]))
    to_u, hs_u = ultimate_rises(k, p)
    e_to = np.exp(-step_s / (p.tau_top_oil_min * 60.0))
    e_w = np.exp(-step_s / (p.tau_winding_min * 60.0))
    to, hs = to_u[0].copy(), hs_u[0].copy()
    top, hot = np.empty_like(k), np.empty_like(k)
    for t in range(k.shape[0]):
        to = to_u[t] + (to - to_u[t]) * e_to
        hs = hs_u[t] + (hs - hs_u[t]) * e_w
        top[t] = a[t] + to
        hot[t] = a[t] + to + hs
    return top, hot


class ThermalState:
    """Per-transformer extended Kalman filter on ``[Δθ_TO, g]`` and the aging it implies.

    ``g`` is the ratio nameplate / effective rating (1: as registered; 2.5: the unit heats like
    one rated at 40 % of its nameplate — a wrong register entry, failed cooling, aged oil), so
    the load factor that drives the thermal model is ``K = g · loading / 100`` with the loading
    reported against the nameplate. ``g`` is a random walk (var ``q_g_per_h`` per hour); its
    Jacobian term is ``(1 − e)·∂Δθ_TO,U/∂g``. Readings: ``y = θ_A + Δθ_TO + v``.
    """

    def __init__(self, asset_ids: Sequence[str], *, params: ThermalParams | None = None,
                 r: float = 1.0, q_per_h: float = 0.5, q_g_per_h: float = 1e-3,
                 prior_g_var: float = 0.25) -> None:
        self.asset_ids = list(asset_ids)
        self.index = {a: i for i, a in enumerate(self.asset_ids)}
        self.params = params or ThermalParams()
        self.r, self.q_per_h, self.q_g_per_h = float(r), float(q_per_h), float(q_g_per_h)
        n = len(self.asset_ids)
        self.rise = np.full(n, np.nan)  # Δθ_TO, K (nan: not initialised)
        self.g = np.ones(n)
        self.cov = np.zeros((n, 2, 2))
        self.cov[:, 1, 1] = prior_g_var
        self.gradient = np.full(n, np.nan)  # Δθ_H, K
        self.t_s = np.full(n, np.nan)  # time of the state
        self.ambient_c = np.full(n, np.nan)
        self.aged_h = np.zeros(n)  # Σ F_AA·dt: hours of normal life consumed
        self.tracked_h = np.zeros(n)  # Σ dt
        self.max_hot_spot_c = np.full(n, -np.inf)
        self.history: list[tuple[str, float, float, float]] = []  # asset, t_s, top oil, hot spot

    def hot_spot_c(self, i: int) -> float:
        return float(self.ambient_c[i] + self.rise[i] + self.gradient[i])

    def g_sd(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.cov[:, 1, 1], 0.0))

    def observe(self, asset: str, t_s: float, top_oil_c: float, *, loading_pu: float,
                ambient_c: float) -> None:
        """Advance ``asset`` to ``t_s`` with ``loading_pu`` (of the nameplate) held since its
        last state and assimilate the top-oil reading (the first one initialises the rise)."""
        i = self.index[asset]
        p = self.params
        k0 = max(float(loading_pu), 0.0)
        if not np.isfinite(self.rise[i]):
            self.rise[i] = top_oil_c - ambient_c
            self.cov[i, 0, 0] = self.r
            self.gradient[i] = float(ultimate_rises(self.g[i] * k0, p)[1])
        else:
            dt = float(t_s - self.t_s[i])
            if dt > 0:
                prev_hot = self.hot_spot_c(i)
                g = self.g[i]
                k = g * k0
                to_u, hs_u = (float(v) for v in ultimate_rises(k, p))
                r_ = p.loss_ratio
                base = (k * k * r_ + 1.0) / (r_ + 1.0)
                dto_dg = (p.top_oil_rise_rated_c * p.n * base ** (p.n - 1.0)
                          * 2.0 * g * k0 * k0 * r_ / (r_ + 1.0))
                e_to = float(np.exp(-dt / (p.tau_top_oil_min * 60.0)))
                e_w = float(np.exp(-dt / (p.tau_winding_min * 60.0)))
                self.rise[i] = to_u + (self.rise[i] - to_u) * e_to
                F = np.array([[e_to, (1.0 - e_to) * dto_dg], [0.0, 1.0]])
                P = F @ self.cov[i] @ F.T + np.diag([self.q_per_h, self.q_g_per_h]) * dt / 3600.0
                s = P[0, 0] + self.r
                gain = P[:, 0] / s
                innov = top_oil_c - ambient_c - self.rise[i]
                self.rise[i] += gain[0] * innov
                self.g[i] = max(0.2, g + gain[1] * innov)
                self.cov[i] = P - np.outer(gain, P[0, :])
                self.gradient[i] = hs_u + (self.gradient[i] - hs_u) * e_w
                self.ambient_c[i] = ambient_c
                f = aging_acceleration(np.array([prev_hot, self.hot_spot_c(i)]))
                self.aged_h[i] += float(f.mean()) * dt / 3600.0  # trapezoid over the interval
                self.tracked_h[i] += dt / 3600.0
        self.ambient_c[i] = ambient_c
        self.t_s[i] = t_s
        hot = self.hot_spot_c(i)
        self.max_hot_spot_c[i] = max(self.max_hot_spot_c[i], hot)
        self.history.append((asset, float(t_s), float(top_oil_c), hot))
