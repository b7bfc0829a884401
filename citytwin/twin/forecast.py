"""The twin's energy model and its rolling forecast.

:class:`EnergySetup` is what the live twin simulates: a city, the scenario's energy parameters,
its fleet, its start and seed (:meth:`EnergySetup.from_scenario` goes through
``interventions.apply`` like every run). :func:`simulate` runs the real
:class:`~citytwin.energy.engine.EnergyEngine` over any window of the day (``t0_s`` … ``t0_s +
horizon_s``) with the building electricity scaled by a demand multiplier (the scenario's
``use_load_factors`` times it) and returns per-transformer arrays (base load, EV charging,
demand, loading, ambient).

:func:`forecast` is one rolling forecast from the twin's current state: ``replications``
engine runs of the next ``horizon_h`` hours, each with its own seed and a demand multiplier
drawn from the estimate's posterior (stratified normal quantiles), transformer loadings scaled
by each transformer's estimated loading factor (a fault: a reduced effective rating or an
unmetered load), and the hot spot (C57.91, :func:`citytwin.energy.aging.hot_spot_series`)
started from the assimilated thermal state. The bands are quantiles over the replications.

Not modelled: cars that arrived before the forecast start and are still charging are not
carried into the window (the window's EV arrivals are those of the day after ``t0_s``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from citytwin import interventions
from citytwin.energy.aging import ThermalParams, hot_spot_series
from citytwin.energy.engine import EnergyEngine, EnergyParams
from citytwin.energy.ev import synthetic_ev_arrivals
from citytwin.energy.grid import GridSolver
from citytwin.energy.loads import USES
from citytwin.engine import StandaloneModel
from citytwin.errors import InputError, ScenarioError
from citytwin.fleet import Fleet
from citytwin.model import load_city
from citytwin.scenario import load_scenario
from citytwin.traffic.engine import run_traffic
from citytwin.twin.thermal import ultimate_rises

if TYPE_CHECKING:
    from citytwin.city import City

__all__ = ["EnergySetup", "EnergyRun", "simulate", "hourly_counts", "traffic_forecast",
           "forecast", "QUANTILES"]

QUANTILES = (0.05, 0.5, 0.95)


@dataclass
class EnergySetup:
    """What the twin simulates (see module docstring)."""

    city: City
    params: EnergyParams
    fleet: Fleet = field(default_factory=Fleet)
    start: pd.Timestamp = field(default_factory=lambda: pd.Timestamp("2024-06-03"))
    seed: int = 0
    duration_s: float = 86_400.0
    traffic: Any = None  # TrafficParams: the twin also models loop-detector counts

    @classmethod
    def from_scenario(cls, path: str | Path, *, power_flow: bool | None = None) -> EnergySetup:
        spec = load_scenario(path)
        setup = interventions.apply(spec, load_city(spec.city, spec.build))
        if setup.energy is None:
            raise ScenarioError([f"{path}: the live twin needs an [energy] section"],
                                source=str(path))
        params = setup.energy
        if power_flow is not None:
            params = params.model_copy(update={"power_flow": power_flow})
        return cls(setup.city, params, setup.fleet, pd.Timestamp(spec.start), int(spec.seed),
                   spec.duration_h * 3600.0, traffic=setup.traffic)

    def solver(self) -> Any:
        """The power-flow solver of the setup's city, built once and reused by every run
        (building the pandapower net is most of a short run's cost; a reused solver starts
        Newton-Raphson warm, so results agree to its tolerance, not bit for bit)."""
        if getattr(self, "_solver", None) is None:
            self._solver = GridSolver(self.city, numba=self.params.power_flow_numba)
        return self._solver

    @property
    def dt_s(self) -> float:
        return self.params.step_minutes * 60.0

    def transformers(self) -> list[str]:
        G = self.city.power
        return sorted(n for n, d in G.nodes(data=True) if d.get("kind") == "transformer")

    def ratings_kva(self) -> np.ndarray:
        G = self.city.power
        return np.array([float(G.nodes[t].get("rated_kva", 0.0)) * float(G.nodes[t].get(
            "parallel", 1)) for t in self.transformers()])


@dataclass
class EnergyRun:
    """Per energy step (rows, ``time_s`` = step end, s since the day start) and transformer
    (columns, ``trafo_ids``)."""

    time_s: np.ndarray
    trafo_ids: list[str]
    base_kw: np.ndarray
    ev_kw: np.ndarray
    demand_kw: np.ndarray
    loading_pct: np.ndarray
    temp_c: np.ndarray


def _scaled_params(params: EnergyParams, multiplier: float) -> EnergyParams:
    if not 0 < multiplier <= 10:
        raise InputError([f"demand multiplier {multiplier:g}: expected 0 < m <= 10"],
                         source="twin.forecast")
    base = dict(params.use_load_factors)
    f = {u: min(10.0, base.get(u, 1.0) * multiplier) for u in USES}
    return params.model_copy(update={"use_load_factors": f})


def simulate(setup: EnergySetup, *, t0_s: float = 0.0, horizon_s: float | None = None,
             seed: int | None = None, multiplier: float = 1.0, city: City | None = None) -> EnergyRun:
    """Run the energy engine from ``t0_s`` for ``horizon_s`` (default: to the end of the
    setup's period) with the demand ``multiplier`` (see module docstring)."""
    dt = setup.dt_s
    if t0_s % dt:
        raise InputError([f"t0_s={t0_s:g}: expected a multiple of the energy step {dt:g} s"],
                         source="twin.forecast")
    horizon = float(horizon_s if horizon_s is not None else setup.duration_s - t0_s)
    seed = int(setup.seed if seed is None else seed)
    city = setup.city if city is None else city
    model = StandaloneModel(city, seed=seed, start=setup.start + pd.Timedelta(seconds=t0_s),
                            duration_s=horizon, fleet=setup.fleet)
    arrivals = None
    if setup.fleet.ev_share > 0:  # the day's home arrivals, on the window's clock
        a = synthetic_ev_arrivals(city.buildings, ev_share=setup.fleet.ev_share, seed=seed,
                                  days=max(1, math.ceil((t0_s + horizon) / 86_400.0)))
        a = a.assign(arrive_s=a["arrive_s"] - t0_s)
        arrivals = a[a["arrive_s"] >= 0].reset_index(drop=True)
    params = _scaled_params(setup.params, multiplier)
    reuse = params.power_flow and city is setup.city and len(setup.transformers()) > 0
    if reuse:  # the engine gets the setup's solver instead of building its own
        params = params.model_copy(update={"power_flow": False})
    eng = EnergyEngine(model, params, ev_arrivals=arrivals)
    if reuse:
        eng.solver = setup.solver()
    model.energy = eng
    tr = eng.building_trafo
    has = tr >= 0
    ntr = eng.trafo_ids.size
    rows: dict[str, list[np.ndarray]] = {"base": [], "ev": [], "demand": []}
    for k in range(eng.n_steps):
        eng.advance((k + 1) * eng.dt_s)
        demand = eng.last_demand_kw
        base = eng.loads.electric_kw_at(k)
        for name, v in (("base", base), ("ev", demand - base), ("demand", demand)):
            rows[name].append(np.bincount(tr[has], weights=v[has], minlength=ntr))
    assets = eng.tables()["assets"]
    a = assets[assets["kind"] == "transformer"]
    loading = (a.pivot(index="time_s", columns="asset_id", values="loading_pct")
               .reindex(columns=list(eng.trafo_ids)).to_numpy(float))
    return EnergyRun(time_s=t0_s + (np.arange(eng.n_steps) + 1) * eng.dt_s,
                     trafo_ids=[str(t) for t in eng.trafo_ids],
                     base_kw=np.array(rows["base"]), ev_kw=np.array(rows["ev"]),
                     demand_kw=np.array(rows["demand"]), loading_pct=np.nan_to_num(loading),
                     temp_c=np.asarray(eng.temp_c, float))


def hourly_counts(setup: EnergySetup, *, seed: int | None = None, demand_multiplier: float = 1.0,
                  city: City | None = None, until_s: float | None = None) -> pd.DataFrame:
    """Loop-detector view of a traffic run of the day (``setup.traffic``, its ``demand_scale``
    × ``demand_multiplier``): ``edge_id``, ``time_s`` (end of the hour), ``count`` (veh/h,
    scaled to the full population)."""
    if setup.traffic is None:
        raise InputError(["the setup has no traffic parameters (a scenario [traffic] section)"],
                         source="twin.forecast")
    p = setup.traffic.model_copy(update={"demand_scale": setup.traffic.demand_scale
                                         * demand_multiplier})
    eng = run_traffic(setup.city if city is None else city, p,
                      seed=int(setup.seed if seed is None else seed),
                      duration_s=setup.duration_s if until_s is None else float(until_s),
                      fleet=setup.fleet, start=setup.start)
    links = eng.tables()["links"]
    hour = np.ceil(links["time_s"].to_numpy(float) / 3600.0 - 1e-9) * 3600.0
    out = (links.assign(time_s=hour).groupby(["edge_id", "time_s"], as_index=False)["volume"]
           .sum().rename(columns={"volume": "count"}))
    return out[out["time_s"] > 0].reset_index(drop=True)


def traffic_forecast(setup: EnergySetup, *, issue_s: float, multiplier: float,
                     multiplier_sd: float, edges: list[int], city: City | None = None,
                     horizon_h: float = 6.0, replications: int = 3) -> pd.DataFrame:
    """Loop-detector counts of the next ``horizon_h`` hours: ``replications`` traffic runs of
    the day up to the horizon (the trips of the day from midnight: the traffic engine has no
    mid-day start), each with its seed and a demand multiplier from the posterior, on ``city``
    (the city with the currently closed roads). Returns ``issue_s``, ``edge_id``, ``time_s``,
    ``count_p05/p50/p95`` (veh/h) for ``edges``."""
    until = min(issue_s + horizon_h * 3600.0, setup.duration_s)
    if until <= issue_s:
        return pd.DataFrame()
    z = norm.ppf((np.arange(replications) + 0.5) / replications)
    hours = np.arange(math.floor(issue_s / 3600.0) + 1, math.ceil(until / 3600.0) + 1) * 3600.0
    runs = []
    for i in range(replications):
        m = float(np.clip(multiplier + multiplier_sd * z[::-1][i], 0.05, 10.0))
        c = hourly_counts(setup, seed=setup.seed + 1 + i, demand_multiplier=m, city=city,
                          until_s=until)
        runs.append(c[c["edge_id"].isin(edges)].pivot(index="time_s", columns="edge_id",
                                                      values="count")
                    .reindex(index=hours, columns=edges).fillna(0.0).to_numpy())
    q = np.quantile(np.array(runs), QUANTILES, axis=0)
    out = {"issue_s": np.full(len(hours) * len(edges), float(issue_s)),
           "edge_id": np.tile(np.asarray(edges, dtype=np.int64), len(hours)),
           "time_s": np.repeat(hours, len(edges))}
    for qq, v in zip(QUANTILES, q, strict=True):
        out[f"count_p{round(qq * 100):02d}"] = v.reshape(-1)
    return pd.DataFrame(out)


def forecast(setup: EnergySetup, *, issue_s: float, multiplier: float, multiplier_sd: float,
             loading_factor: np.ndarray, thermal: tuple[np.ndarray, np.ndarray] | None,
             ambient_bias_c: float = 0.0, horizon_h: float = 6.0, replications: int = 5,
             thermal_params: ThermalParams | None = None
             ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One rolling forecast issued at ``issue_s`` (see module docstring).

    ``loading_factor``: per transformer (``setup.transformers()`` order), or per replication
    and transformer (a draw of each replication from the factors' posterior); ``thermal``: the
    assimilated (top-oil rise, hot-spot gradient) per transformer (nan: steady state).
    Returns the long table (``issue_s``, ``time_s``, ``asset_id``, ``loading_pct_p05/p50/p95``,
    ``hot_spot_c_p05/p50/p95``) and the replication arrays (``loading``, ``hot_spot``, ``ev_kw``:
    replications × steps × transformers; ``time_s``)."""
    dt = setup.dt_s
    t0 = math.floor(issue_s / dt) * dt
    horizon = min(horizon_h * 3600.0, setup.duration_s - t0)
    if horizon <= 0:
        return pd.DataFrame(), {}
    z = norm.ppf((np.arange(replications) + 0.5) / replications)
    mult = np.clip(multiplier + multiplier_sd * z, 0.05, 10.0)
    lf = np.asarray(loading_factor, float)
    lf = np.broadcast_to(lf, (replications, lf.shape[-1]))
    loads, hots, evs = [], [], []
    run: EnergyRun | None = None
    for i in range(replications):
        run = simulate(setup, t0_s=t0, horizon_s=horizon, seed=setup.seed + 1 + i,
                       multiplier=float(mult[i]))
        load = run.loading_pct * lf[i][None, :]
        init = None
        if thermal is not None:
            rise, grad = thermal
            to_u0 = None
            if not np.all(np.isfinite(rise)):
                to_u0, hs_u0 = ultimate_rises(load[0] / 100.0, thermal_params or ThermalParams())
                rise = np.where(np.isfinite(rise), rise, to_u0)
                grad = np.where(np.isfinite(grad), grad, hs_u0)
            init = (rise, grad)
        hot = hot_spot_series(load / 100.0, run.temp_c + ambient_bias_c, step_s=dt,
                              params=thermal_params, initial=init)
        loads.append(load)
        hots.append(hot)
        evs.append(run.ev_kw)
    assert run is not None
    L, H = np.array(loads), np.array(hots)
    n_t, n_a = L.shape[1], L.shape[2]
    out = {"issue_s": np.full(n_t * n_a, float(issue_s)),
           "time_s": np.repeat(run.time_s, n_a),
           "asset_id": np.tile(np.array(run.trafo_ids, dtype=object), n_t)}
    for name, arr in (("loading_pct", L), ("hot_spot_c", H)):
        qs = np.quantile(arr, QUANTILES, axis=0)
        for q, v in zip(QUANTILES, qs, strict=True):
            out[f"{name}_p{round(q * 100):02d}"] = v.reshape(-1)
    return pd.DataFrame(out), {"loading": L, "hot_spot": H, "ev_kw": np.array(evs),
                               "time_s": run.time_s, "multipliers": mult}
