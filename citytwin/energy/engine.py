"""The energy engine: loads, PV and EV charging on the city's grid, step by step.

``EnergyEngine(model, params)`` follows the engine contract (``advance``/``tables``/``kpis``,
plus ``unsupplied_buildings()`` for the emergency engine). ``model`` is a ``CityModel`` or any
object with ``city``, ``seed``, ``start`` and ``duration_s`` (``traffic`` optional): the engine
reads nothing else. When ``model`` is a Mesa model, one ``Building`` agent per building is
created (agents hold their attributes and load row; they are not stepped — loads are arrays).

Each energy step (``step_minutes``): building electricity (``loads``) + EV charging (``ev``)
− rooftop PV (``pv``) goes into the power flow (``citytwin.energy.grid.GridSolver``,
pandapower) with the failed assets out of service. Without a power-flow solver (``power_flow
= false`` or a city without a grid the solver accepts) transformer loading is computed from the
aggregated apparent power per transformer and supply from the graph topology.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import geopandas as gpd
import mesa
import networkx as nx
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator
from shapely.geometry import Point

from citytwin.energy.aging import TransformerAging
from citytwin.energy.ev import ChargingState, EVAssumptions, synthetic_ev_arrivals
from citytwin.energy.grid import GridSolver
from citytwin.energy.loads import USES, BuildingLoads, compute_loads
from citytwin.energy.outages import FailureSpec, OutageSchedule, unknown_assets
from citytwin.energy.pv import HELSINKI_SKY_FACTOR, PVFleet, kw_per_kwp, pv_fleet, timezone_at
from citytwin.energy.weather import (
    HELSINKI_SITE,
    TemperatureShift,
    Weather,
    read_weather,
    temperature_at,
    typical_year,
)
from citytwin.engine import Host, StandaloneModel
from citytwin.errors import InputError
from citytwin.fleet import Fleet
from citytwin.rng import stream

if TYPE_CHECKING:  # pragma: no cover
    from citytwin.city import City

__all__ = [
    "EnergyEngine",
    "EnergyParams",
    "building_agent_class",
    "compute_building_loads",
    "run_energy",
]

log = logging.getLogger(__name__)
_FROZEN = ConfigDict(frozen=True, extra="forbid")
COS_PHI = 0.95
TAN_PHI = math.tan(math.acos(COS_PHI))
#: beyond this distance (km) between the weather station and the city, the run says so
WEATHER_FAR_KM = 300.0


class EnergyParams(BaseModel):
    """Parameters of the energy domain (frozen; unknown keys are errors)."""

    model_config = _FROZEN
    step_minutes: Literal[5, 10, 15, 30, 60] = 15
    weather: str = Field(default="typical", description="'typical' or a CSV path (time, temp_c)")
    temperature_shifts: tuple[TemperatureShift, ...] = Field(
        default=(), description="set by temperature_shift (heat_wave/cold_snap) interventions")
    heat_pump_share: float = Field(default=0.0, ge=0, le=1)
    use_load_factors: dict[str, Annotated[float, Field(gt=0, le=10)]] = Field(
        default_factory=dict, description="electricity multiplier per building use "
        "(what `citytwin calibrate` fits to meters); absent uses: 1")
    ev_home_kw: float = Field(default=11.0, gt=0, le=50)
    ev_work_kw: float = Field(default=11.0, gt=0, le=350)
    ev_battery_kwh: float = Field(default=60.0, gt=0, le=200)
    ev_consumption_kwh_per_km: float = Field(default=0.18, gt=0, le=1)
    ev_work_charger_share: float = Field(default=0.3, ge=0, le=1)
    pv_share: float = Field(default=0.0, ge=0, le=1)
    pv_sky_factor: float | None = Field(
        default=None, ge=0, le=1,
        description="PV sky: GHI = factor × clear-sky GHI (1: cloudless). Default: the "
        "weather file's measured ghi_w_m2 if it has one, else the shipped Helsinki sky "
        f"({HELSINKI_SKY_FACTOR})")
    emission_factor_g_per_kwh: float = Field(
        default=80.0, ge=0, le=2000,
        description="grid CO2 intensity; order of the Finnish grid in the early 2020s")
    failures: tuple[FailureSpec, ...] = Field(
        default=(), description="set by asset_failure interventions")
    restore_with_ties: bool = Field(default=True, description="close normally-open ties to "
                                    "re-supply dark parts when the live side has capacity")
    switching_time_s: float = Field(default=1800.0, ge=0, description="tie switching delay")
    power_flow: bool = True
    power_flow_numba: bool = Field(default=True, description="pandapower's numba JIT: ~3-4 s "
                                   "once per process, faster steps on large grids")
    timezone: str | None = Field(
        default=None, description="IANA time zone of the simulation's local clock (daylight "
        "saving applied) for the sun's position; default: the zone at the city's location; "
        "'standard': standard time from the longitude")
    site_lat: float | None = Field(default=None, ge=-90, le=90)
    site_lon: float | None = Field(default=None, ge=-180, le=180)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is None or v == "standard":
            return v
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (expected an IANA name such as "
                             "'Europe/Helsinki' or 'America/Santiago', or 'standard')") from None
        return v

    @field_validator("use_load_factors")
    @classmethod
    def _known_uses(cls, v: dict[str, float]) -> dict[str, float]:
        bad = sorted(set(v) - set(USES))
        if bad:
            raise ValueError(f"unknown building use(s) {bad} (expected some of {list(USES)})")
        return v


class Building(mesa.Agent):
    """A building of the city: its use, floor area and row in the load arrays."""

    def __init__(self, model: mesa.Model, *, building_id: Any, row: int, use: str,
                 floor_area_m2: float, transformer: str | None) -> None:
        super().__init__(model)
        self.building_id = building_id
        self.row = row
        self.use = use
        self.floor_area_m2 = floor_area_m2
        self.transformer = transformer

    def load_kw(self) -> float:
        """This building's electricity demand at the energy engine's last step (kW)."""
        return float(self.model.energy.last_demand_kw[self.row])


def building_agent_class() -> type[Building]:
    """The Mesa ``Building`` agent class."""
    return Building


def _site(city: City, params: EnergyParams) -> tuple[float, float] | None:
    """(lat, lon) of the city: the parameters, else the centre of the buildings' extent;
    None when the buildings have no geometry with a CRS."""
    if params.site_lat is not None and params.site_lon is not None:
        return params.site_lat, params.site_lon
    b = city.buildings
    crs = getattr(b, "crs", None)
    if crs is None or len(b) == 0 or "geometry" not in b:
        return None
    x0, y0, x1, y1 = b.total_bounds
    ll = gpd.GeoSeries([Point((x0 + x1) / 2, (y0 + y1) / 2)], crs=crs).to_crs(4326).iloc[0]
    return float(ll.y), float(ll.x)


def _distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lon), km (haversine, R = 6,371 km)."""
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


@lru_cache(maxsize=4)
def _weather_file(path: str, mtime_ns: int) -> Weather:
    return read_weather(path)


def _weather(params: EnergyParams) -> Weather | None:
    """The scenario's weather file (None for the shipped typical year)."""
    if params.weather == "typical":
        return None
    path = Path(params.weather)
    if not path.exists():
        raise InputError([f"weather file does not exist: {path}"], source=str(path))
    return _weather_file(str(path), path.stat().st_mtime_ns)


def _weather_series(params: EnergyParams, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
    wx = _weather(params)
    if wx is None:
        years = range(start.year, end.year + 2)
        s = pd.concat([typical_year(year=y) for y in years])
    else:
        s = wx.temp_c
    for shift in params.temperature_shifts:
        s = shift.apply(s, start)
    return s


def compute_building_loads(city: City, params: EnergyParams, *, seed: int,
                           start: pd.Timestamp, duration_s: float) -> BuildingLoads:
    """The building electricity and heat model of the energy engine over a period: the
    scenario's weather (typical year or its CSV, with its temperature shifts), its heat-pump
    share (drawn from the ``"energy"`` stream of ``seed``), at ``params.step_minutes``.

    This is the one builder of modelled loads: the engine runs it, and the twin's calibration
    fits meters against it, so both see the same model."""
    start = pd.Timestamp(start)
    dt_s = params.step_minutes * 60.0
    n_steps = max(1, math.ceil(float(duration_s) / dt_s - 1e-9))
    index = start + pd.to_timedelta(np.arange(n_steps) * dt_s, unit="s")
    mids = index + pd.Timedelta(seconds=dt_s / 2)
    wx = _weather_series(params, start, index[-1] + pd.Timedelta(seconds=dt_s))
    temp_c = temperature_at(wx, mids)
    b = city.buildings
    n = len(b)
    rng = stream(int(seed), "energy")
    hp = np.zeros(n, bool)
    k_hp = int(round(params.heat_pump_share * n))
    if k_hp:
        hp[rng.choice(n, size=k_hp, replace=False)] = True
    loads = compute_loads(b, temp_c, index=index, step_minutes=params.step_minutes, heat_pump=hp)
    if params.use_load_factors:
        factors: dict[str, float] = dict(params.use_load_factors)
        f = np.array([factors.get(str(u), 1.0) for u in loads.use], dtype=float)
        loads = dataclasses.replace(loads, multiplier=f)
    return loads


def _headroom_kw(rated_kva: np.ndarray, p_net_kw: np.ndarray, p_load_kw: np.ndarray) -> np.ndarray:
    """Extra load x (kW, at cos φ) each transformer can take before |S| reaches its rating.

    S² = (P_net + x)² + ((P_load + x)·tan φ)², loads at cos φ and PV at unity power factor;
    x is the positive root of S² = rated², 0 when already at or over the rating.
    """
    t2 = TAN_PHI**2
    a = 1.0 + t2
    b = p_net_kw + p_load_kw * t2
    c = p_net_kw**2 + (p_load_kw**2) * t2 - rated_kva**2
    disc = np.maximum(b * b - a * c, 0.0)
    return np.maximum((-b + np.sqrt(disc)) / a, 0.0)


class EnergyEngine:
    """Energy domain engine (see module docstring)."""

    domain: ClassVar[str] = "energy"

    def __init__(self, model: Host, params: EnergyParams | None = None, *,
                 ev_arrivals: pd.DataFrame | None = None) -> None:
        self.model = model
        self.params = params = params if params is not None else EnergyParams()
        self.fleet: Fleet = getattr(model, "fleet", None) or Fleet()
        city = model.city
        self.city = city
        self.seed = int(model.seed)
        self.start = pd.Timestamp(model.start)
        self.duration_s = float(model.duration_s)
        b = city.buildings
        self.buildings = b
        self.n = len(b)
        self.dt_s = params.step_minutes * 60.0
        self.n_steps = max(1, math.ceil(self.duration_s / self.dt_s - 1e-9))
        # weather, loads: the same builder the twin's calibration uses
        self.loads: BuildingLoads = compute_building_loads(
            city, params, seed=self.seed, start=self.start, duration_s=self.duration_s)
        self.index = self.loads.index
        self.temp_c = self.loads.temp_c
        mids = self.index + pd.Timedelta(seconds=self.dt_s / 2)
        self.use_code = pd.Categorical(self.loads.use, categories=USES).codes
        self._notes: dict[str, str] = {}
        self.site = _site(city, params)
        self._note_weather_distance()
        # PV
        self.pv: PVFleet = pv_fleet(b, share=params.pv_share, seed=self.seed) if params.pv_share \
            else PVFleet(kwp=np.zeros(self.n), orientation=np.full(self.n, -1))
        if self.pv.adopters.size:
            self.pv_profile = self._pv_profile(mids)
        else:
            self.pv_profile = np.zeros((1, self.n_steps))
        # grid
        G: nx.Graph | None = getattr(city, "power", None)
        self.graph = G
        tr_nodes = sorted(n for n, d in G.nodes(data=True) if d.get("kind") == "transformer") \
            if G is not None else []
        self.trafo_ids = np.array(tr_nodes, dtype=object)
        nodes = G.nodes if G is not None else {}
        self.trafo_kva = np.array([float(nodes[t].get("rated_kva", 0.0))
                                   * float(nodes[t].get("parallel", 1)) for t in tr_nodes])
        tr_of = (b["transformer"].astype(str).to_numpy() if "transformer" in b.columns
                 else np.full(self.n, ""))
        self.building_trafo = pd.Index(self.trafo_ids).get_indexer(tr_of).astype(np.int64)
        self._check_failures()
        self.outages: Any = None
        if params.failures and G is not None:
            self.outages = OutageSchedule(
                G, [f.failure() for f in params.failures],
                switching_time_s=params.switching_time_s,
                restore_with_ties=params.restore_with_ties, building_ids=list(b.index))
        self.customers = self._customers()
        self.aging: Any = None
        if len(tr_nodes):
            self.aging = TransformerAging(tr_nodes)
        self.solver: Any = None
        if params.power_flow and G is not None and len(tr_nodes):
            self.solver = GridSolver(city, numba=params.power_flow_numba)
        # EV
        ev_params = EVAssumptions(
            battery_kwh=params.ev_battery_kwh, consumption_kwh_per_km=params.ev_consumption_kwh_per_km,
            home_kw=params.ev_home_kw, work_kw=params.ev_work_kw,
            work_charger_share=params.ev_work_charger_share)
        self.ev = ChargingState(building_ids=b.index.to_numpy(), building_trafo=self.building_trafo,
                                policy=self.fleet.charging, seed=self.seed, start=self.start,
                                assumptions=ev_params, building_xy=_building_xy(b),
                                building_group=pd.factorize(b["use"].astype(str))[0],
                                building_weight=_car_weight(b))
        self._traffic_ev = ev_arrivals is None and getattr(model, "traffic", None) is not None
        if ev_arrivals is None and not self._traffic_ev and self.fleet.ev_share > 0:
            ev_arrivals = synthetic_ev_arrivals(b, ev_share=self.fleet.ev_share, seed=self.seed,
                                                days=math.ceil(self.duration_s / 86400.0))
        self._arrivals = (ev_arrivals.sort_values("arrive_s", kind="stable").reset_index(drop=True)
                          if ev_arrivals is not None else None)
        self._arr_ptr = 0
        self._ev_since = 0.0
        # agents
        self.agents: list[Any] = []
        if isinstance(model, mesa.Model):
            tr = (b["transformer"].astype(str).to_numpy() if "transformer" in b.columns
                  else [None] * self.n)
            self.agents = [
                Building(model, building_id=bid, row=i, use=u, floor_area_m2=float(a),
                         transformer=t)
                for i, (bid, u, a, t) in enumerate(zip(b.index, self.loads.use,
                                                       self.loads.floor_area_m2, tr, strict=True))
            ]
        # state and records
        self.k = 0
        self.last_demand_kw = np.zeros(self.n)
        self._unsupplied = np.zeros(self.n, bool)
        self._ev_prev = np.zeros(self.n)
        self._flow_unsup = np.zeros(self.n, bool)
        self._rec: dict[str, list[float]] = {}
        self._assets: list[tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._asset_ids: tuple[np.ndarray, np.ndarray] | None = None
        self._trafo_kinds: np.ndarray | None = None
        self._tr_src: pd.Index | None = None  # _per_trafo's cached lookup
        self._tr_take = np.zeros(0, np.int64)
        self._use_kwh = np.zeros(len(USES))
        self._served_use_kwh = np.zeros(len(USES))
        self._trafo_over_h = 0.0
        self._pv_self_kwh = 0.0
        self._ens_kwh = 0.0
        self._cust_min = 0.0
        self._interruptions = np.zeros(self.n)
        self._unsupplied_prev = np.zeros(self.n, bool)

    # ------------------------------------------------------------------ failures / topology
    def _note_weather_distance(self) -> None:
        """Say so when the weather belongs somewhere else than the city."""
        wx = _weather(self.params)
        station = HELSINKI_SITE if wx is None else wx.site
        if self.site is None or station is None:
            return
        km = _distance_km(self.site, station)
        if km > WEATHER_FAR_KM:
            which = ("the shipped typical year is Helsinki's" if wx is None
                     else f"the weather file {self.params.weather} was measured")
            msg = (f"{which} {km:,.0f} km from the city: temperatures, heating and the PV sky "
                   "are that place's; pass a weather CSV of this city ([energy] weather)")
            log.warning("energy: %s", msg)
            self._notes["heat_demand_kwh"] = msg

    def _pv_profile(self, mids: pd.DatetimeIndex) -> np.ndarray:
        """(orientations, T) kW per kWp: the city's site and time zone, the weather's sky."""
        p = self.params
        if self.site is None:
            lat, lon = HELSINKI_SITE
            self._notes["pv_generation_kwh"] = ("the buildings have no geometry with a CRS: PV "
                                                "is computed for Helsinki's sun")
        else:
            lat, lon = self.site
        if p.timezone is None:
            tz = timezone_at(lat, lon)
        else:
            tz = None if p.timezone == "standard" else p.timezone
        self.pv_timezone = tz or f"UTC{round(lon / 15.0):+d} (standard time)"
        wx = _weather(p)
        ghi = None
        sky = 1.0 if p.pv_sky_factor is None else float(p.pv_sky_factor)
        if p.pv_sky_factor is None:
            if wx is not None and wx.ghi_w_m2 is not None:
                ghi = temperature_at(wx.ghi_w_m2, mids)  # linear in time, like temperature
            else:
                sky = HELSINKI_SKY_FACTOR
                if wx is not None:
                    self._notes["pv_generation_kwh"] = (
                        f"the weather file has no ghi_w_m2: PV uses the Helsinki sky factor "
                        f"{HELSINKI_SKY_FACTOR} × clear sky; set [energy] pv_sky_factor or add "
                        "measured irradiance")
        self.pv_sky = "measured GHI" if ghi is not None else f"{sky:g} × clear sky"
        return kw_per_kwp(mids, lat=lat, lon=lon, temp_c=self.temp_c, tz=tz, ghi_w_m2=ghi,
                          sky_factor=sky)

    def kpi_notes(self) -> dict[str, str]:
        """KPI → a caveat the reader of that KPI needs (weather from elsewhere, PV site)."""
        return dict(self._notes)

    def _check_failures(self) -> None:
        if not self.params.failures:
            return
        bad = [f"failures[{i}].asset: {p}" for i, f in enumerate(self.params.failures)
               for p in unknown_assets(self.graph, [f])]
        if bad:
            raise InputError(bad, source="energy.failures")

    def active_failures(self, t_s: float) -> frozenset[str]:
        return frozenset(f.asset for f in self.params.failures
                         if f.at_h * 3600.0 <= t_s < (f.at_h + f.duration_h) * 3600.0)

    def _customers(self) -> np.ndarray:
        """Customers per building: the power graph's ``customers`` (dwellings), else 1."""
        G = self.graph
        c = np.ones(self.n)
        if G is not None:
            pos = {bid: i for i, bid in enumerate(self.buildings.index)}
            for _, d in G.nodes(data=True):
                if d.get("kind") == "building" and d.get("building_id") in pos:
                    c[pos[d["building_id"]]] = float(d.get("customers", 1))
        return c

    # ------------------------------------------------------------------ stepping
    def _new_arrivals(self, t0: float, t1: float) -> None:
        if self._traffic_ev:
            tr = self.model.traffic
            arr = tr.ev_arrivals(self._ev_since, t1)
            self._ev_since = t1
            sample = float(getattr(getattr(tr, "params", None), "sample", 1.0) or 1.0)
            # a traffic sample: each EV stands for 1/sample
            self.ev.add(arr, weight=1.0 / sample, temp_c=self._arrival_temps(arr))
        elif self._arrivals is not None:
            a = self._arrivals
            end = int(np.searchsorted(a["arrive_s"].to_numpy(), t1, side="left"))
            if end > self._arr_ptr:
                part = a.iloc[self._arr_ptr:end]
                self.ev.add(part, temp_c=self._arrival_temps(part))
                self._arr_ptr = end

    def _arrival_temps(self, arrivals: pd.DataFrame) -> np.ndarray | None:
        """Outdoor temperature at each arrival (°C; the run's weather, heat waves and cold snaps
        included): EV consumption per km depends on it. None when the arrivals carry their own
        ``temp_c`` (or there are none)."""
        if arrivals is None or len(arrivals) == 0 or "temp_c" in arrivals:
            return None
        t_mid = (np.arange(self.n_steps) + 0.5) * self.dt_s
        x = arrivals["arrive_s"]
        at = (x.to_numpy(float) if isinstance(x.dtype, np.dtype) and x.dtype.kind in "iuf"
              else pd.to_numeric(x, errors="coerce").to_numpy(float))
        return np.interp(at, t_mid, self.temp_c)

    def _with_temperature(self, arrivals: pd.DataFrame) -> pd.DataFrame:
        """``arrivals`` with the ``temp_c`` column the engine charges them at."""
        temps = self._arrival_temps(arrivals)
        return arrivals if temps is None else arrivals.assign(temp_c=temps)

    def advance(self, until_s: float) -> None:
        """Simulate every energy step that ends by ``until_s`` (all remaining steps once
        ``until_s`` reaches the end of the period)."""
        while self.k < self.n_steps:
            t0 = self.k * self.dt_s
            t1 = t0 + self.dt_s
            if not (t1 <= until_s + 1e-9 or (until_s >= self.duration_s - 1e-9)):
                break
            self._step(self.k, t0)
            self.k += 1

    def _keep_assets(self, t0: float, flow: Any, tr_load: np.ndarray | None = None) -> None:
        """Per-asset values of one step, kept as arrays (the table is built in ``tables``)."""
        if flow is None:
            if self._trafo_kinds is None:
                self._trafo_kinds = np.full(self.trafo_ids.size, "transformer", dtype=object)
            nan = np.full(self.trafo_ids.size, np.nan)
            self._assets.append((t0, self.trafo_ids, self._trafo_kinds,
                                 nan if tr_load is None else tr_load, nan))
            return
        parts = ((flow.trafo_loading_pct, "transformer"), (flow.line_loading_pct, "line"),
                 (flow.substation_loading_pct, "substation"))
        if self._asset_ids is None:
            ids = np.concatenate([np.asarray(s.index, dtype=object) for s, _ in parts])
            kinds = np.concatenate([np.full(len(s), k, dtype=object) for s, k in parts])
            self._asset_ids = (ids, kinds)
        load = np.concatenate([s.to_numpy(float) for s, _ in parts])
        vm = np.full(load.size, np.nan)
        vm[: len(flow.trafo_loading_pct)] = flow.trafo_vm_pu.reindex(
            flow.trafo_loading_pct.index).to_numpy(float)
        self._assets.append((t0, *self._asset_ids, load, vm))

    def _per_trafo(self, s: pd.Series) -> np.ndarray:
        """``s.reindex(self.trafo_ids)`` as floats; the positions are looked up once per index
        object (the solver returns the same index every step)."""
        if s.index is not self._tr_src:
            self._tr_src = s.index
            self._tr_take = s.index.get_indexer(self.trafo_ids)
        take = self._tr_take
        vals = s.to_numpy(float)
        return np.where(take >= 0, vals[np.maximum(take, 0)] if vals.size else np.nan, np.nan)

    def _record(self, name: str, value: float) -> None:
        self._rec.setdefault(name, []).append(float(value))

    def _step(self, k: int, t0: float) -> None:
        dt_h = self.dt_s / 3600.0
        self._new_arrivals(t0, t0 + self.dt_s)
        base = self.loads.electric_kw_at(k)
        pv = self.pv.output_kw_at(self.pv_profile, k) if self.pv.adopters.size else np.zeros(self.n)
        has_tr = self.building_trafo >= 0
        ntr = self.trafo_ids.size
        net_tr = np.bincount(self.building_trafo[has_tr], weights=(base - pv)[has_tr],
                             minlength=ntr)
        gross_tr = np.bincount(self.building_trafo[has_tr], weights=base[has_tr], minlength=ntr)
        headroom = _headroom_kw(self.trafo_kva, net_tr, gross_tr)
        failed: frozenset[str] = frozenset()
        ties: frozenset[str] = frozenset()
        unsup = np.zeros(self.n, bool)
        if self.outages is not None:  # supply first: a dark building's cars charge nothing
            st = self.outages.state(t0, demand_kw=base + self._ev_prev)
            failed, ties, unsup = st.out_of_service, st.closed_ties, np.asarray(st.unsupplied, bool)
        # buildings the last power flow left unsupplied (islands) stay dark for EV charging
        ev = self.ev.step(t0, self.dt_s, headroom, supplied=~(unsup | self._flow_unsup))
        self._ev_prev = ev
        demand = base + ev
        flow = None
        if self.solver is not None:
            try:
                flow = self.solver.solve(demand, pv_kw=pv, out_of_service=failed,
                                         closed_ties=ties)
            except InputError:
                raise
            except Exception as exc:  # noqa: BLE001 - one failed power flow must not end the run
                log.warning("energy step %d (t=%.0f s): power flow failed (%s: %s); transformer "
                            "loading estimated from the aggregated demand", k, t0,
                            type(exc).__name__, exc)
        if flow is not None:
            self._flow_unsup = np.asarray(flow.unsupplied, bool) & ~unsup
            unsup = unsup | np.asarray(flow.unsupplied, bool)
            tr_load = self._per_trafo(flow.trafo_loading_pct)
            self._keep_assets(t0, flow)
        else:
            live = has_tr & ~unsup
            p_tr = np.bincount(self.building_trafo[live], weights=(demand - pv)[live],
                               minlength=ntr)
            q_tr = np.bincount(self.building_trafo[live], weights=demand[live],
                               minlength=ntr) * TAN_PHI  # loads at cos φ, PV at unity
            with np.errstate(divide="ignore", invalid="ignore"):
                tr_load = np.where(self.trafo_kva > 0,
                                   np.hypot(p_tr, q_tr) / self.trafo_kva * 100.0, np.nan)
            if ntr:
                self._keep_assets(t0, None, tr_load)
        served = ~unsup
        self._unsupplied = unsup
        self.last_demand_kw = demand
        pv_served = np.where(served, pv, 0.0)
        self._use_kwh += np.bincount(self.use_code, weights=demand, minlength=len(USES)) * dt_h
        self._served_use_kwh += np.bincount(self.use_code, weights=demand * served,
                                            minlength=len(USES)) * dt_h
        self._pv_self_kwh += float(np.minimum(pv_served, demand).sum()) * dt_h
        ens_kw = float(demand[unsup].sum())
        self._ens_kwh += ens_kw * dt_h
        self._cust_min += float(self.customers[unsup].sum()) * self.dt_s / 60.0
        self._interruptions += unsup & ~self._unsupplied_prev
        self._unsupplied_prev = unsup
        if self.aging is not None:
            self.aging.update(tr_load, self.temp_c[k], self.dt_s)
            rec_hs = float(np.nanmax(self.aging.hot_spot_c))
        else:
            rec_hs = float("nan")
        self._trafo_over_h += float(np.sum(np.nan_to_num(tr_load) > 100.0 + 1e-6)) * dt_h
        rec = self._record
        rec("time_s", t0)
        rec("temp_c", self.temp_c[k])
        rec("demand_kw", demand.sum())
        rec("base_kw", base.sum())
        rec("ev_kw", ev.sum())
        rec("pv_kw", pv_served.sum())
        rec("net_demand_kw", (demand - pv)[served].sum())
        rec("heat_kw", self.loads.heat_total_kw_at(k))
        rec("unsupplied_buildings", unsup.sum())
        rec("energy_not_served_kw", ens_kw)
        rec("max_hot_spot_c", rec_hs)
        rec("max_trafo_loading_pct", np.nanmax(tr_load) if np.isfinite(tr_load).any() else np.nan)
        if flow is not None:
            rec("grid_import_kw", flow.ext_grid_kw)
            rec("losses_kw", flow.losses_kw)
            rec("min_vm_pu", flow.vm_min_pu)
            rec("max_vm_pu", flow.vm_max_pu)
            rec("max_line_loading_pct", flow.max_line_loading_pct)
            rec("converged", float(flow.converged))
            rec("voltage_violations", flow.n_voltage_violations)
            if not flow.converged:
                log.warning("energy step %d (t=%.0f s): power flow did not converge; max "
                            "transformer loading %.1f %% (estimated)", k, t0,
                            np.nanmax(tr_load) if np.isfinite(tr_load).any() else float("nan"))
        else:
            rec("grid_import_kw", (demand - pv)[served].sum())
            if self.solver is not None:  # the power flow raised: keep the columns aligned
                for name in ("losses_kw", "min_vm_pu", "max_vm_pu", "max_line_loading_pct",
                             "voltage_violations"):
                    rec(name, float("nan"))
                rec("converged", 0.0)

    # ------------------------------------------------------------------ contract outputs
    def unsupplied_buildings(self) -> np.ndarray:
        """(B,) bool: buildings without supply at the last simulated step."""
        return self._unsupplied.copy()

    def series(self) -> pd.DataFrame:
        """Wide per-step table (one column per series, ``time_s`` first)."""
        return pd.DataFrame(self._rec)

    def tables(self) -> dict[str, pd.DataFrame]:
        """``timeseries`` (series, time_s, value — the model adds scenario/seed/domain),
        ``assets`` (per-asset loading and voltage per step), ``aging`` (per transformer and
        simulated day: hot spot, F_EQA, loss of life) and ``ev_sessions``."""
        wide = self.series()
        if wide.empty:
            ts = pd.DataFrame({"series": pd.Series(dtype=str), "time_s": pd.Series(dtype=float),
                               "value": pd.Series(dtype=float)})
        else:
            ts = wide.melt(id_vars="time_s", var_name="series", value_name="value")
            ts = ts[["series", "time_s", "value"]]
        cols = ["asset_id", "kind", "time_s", "loading_pct", "vm_pu"]
        if self._assets:
            a = self._assets
            assets = pd.DataFrame({
                "asset_id": np.concatenate([x[1] for x in a]),
                "kind": np.concatenate([x[2] for x in a]),
                "time_s": np.concatenate([np.full(x[1].size, x[0]) for x in a]),
                "loading_pct": np.concatenate([x[3] for x in a]),
                "vm_pu": np.concatenate([x[4] for x in a])})
        else:
            assets = pd.DataFrame(columns=cols)
        out = {"timeseries": ts, "assets": assets, "ev_sessions": self.ev.sessions()}
        if self.aging is not None:
            out["aging"] = self.aging.table()
        return out

    def kpis(self) -> dict[str, float]:
        w = self.series()
        dt_h = self.dt_s / 3600.0
        nan = float("nan")
        if w.empty:
            return {}
        out: dict[str, float] = {}
        for i, u in enumerate(USES):
            out[f"energy_{u}_kwh"] = float(self._use_kwh[i])
        out["energy_total_kwh"] = float(self._use_kwh.sum())  # demand, served or not
        out["energy_served_kwh"] = float(self._served_use_kwh.sum())
        out["heat_demand_kwh"] = float(w["heat_kw"].sum() * dt_h)
        out["peak_demand_kw"] = float(w["demand_kw"].max())
        out["peak_net_demand_kw"] = float(w["net_demand_kw"].max())
        out["peak_transformer_loading_pct"] = float(w["max_trafo_loading_pct"].max())
        out["transformer_overload_hours_h"] = self._trafo_over_h
        out["min_voltage_pu"] = float(w["min_vm_pu"].min()) if "min_vm_pu" in w else nan
        out["max_line_loading_pct"] = (float(w["max_line_loading_pct"].max())
                                       if "max_line_loading_pct" in w else nan)
        # steps whose loading maxima are blank (nothing energised or the flow failed): the
        # maxima above are over the other steps only, and this count says how many were skipped
        blank = w["max_trafo_loading_pct"].isna()
        if "max_line_loading_pct" in w:
            blank |= w["max_line_loading_pct"].isna()
        out["loading_skipped_steps_count"] = float(blank.sum())
        out["losses_kwh"] = float(w["losses_kw"].sum() * dt_h) if "losses_kw" in w else nan
        out["nonconverged_steps_count"] = (float((w["converged"] == 0).sum()) if "converged" in w
                                           else 0.0)
        out["energy_not_served_kwh"] = self._ens_kwh
        total_c = float(self.customers.sum()) or 1.0
        out["customer_interruption_min"] = self._cust_min  # customer-minutes
        out["saidi_min"] = self._cust_min / total_c
        out["saifi_count"] = float((self.customers * self._interruptions).sum()) / total_c
        if self.aging is not None:
            ag = self.aging.table()
            out["max_hot_spot_c"] = float(ag["max_hot_spot_c"].max()) if len(ag) else nan
            per_tr = ag.groupby("asset_id")["loss_of_life_h"].sum() if len(ag) else pd.Series([nan])
            out["max_transformer_loss_of_life_h"] = float(per_tr.max())
        pv_kwh = float(w["pv_kw"].sum() * dt_h)
        out["pv_generation_kwh"] = pv_kwh
        out["pv_self_consumption_pct"] = 100.0 * self._pv_self_kwh / pv_kwh if pv_kwh > 0 else nan
        out["ev_energy_kwh"] = float(w["ev_kw"].sum() * dt_h)
        out["ev_sessions_count"] = self.ev.vehicle_sessions()  # in vehicles, like every count
        out["ev_driven_kwh"] = self.ev.driven_kwh  # what the arrivals' trips used
        out["ev_unmet_kwh"] = self.ev.unmet_kwh(self.k * self.dt_s)
        grid_kwh = float(np.nansum(w["grid_import_kw"].clip(lower=0)) * dt_h)
        out["grid_import_kwh"] = grid_kwh
        out["co2_t"] = grid_kwh * self.params.emission_factor_g_per_kwh / 1e6
        return out


def _car_weight(b: pd.DataFrame) -> np.ndarray:
    """Each building's share of the population's parked cars, for spreading a sampled car
    over the cars it stands for: residents at homes, jobs elsewhere (floor area without)."""
    area = pd.to_numeric(b.get("floor_area_m2", pd.Series(1.0, index=b.index)),
                         errors="coerce").fillna(1.0).to_numpy(float)
    home = b["use"].astype(str).to_numpy() == "residential" if "use" in b else np.ones(len(b), bool)
    out = area.copy()
    for col, mask in (("population", home), ("jobs", ~home)):
        if col in b:
            v = pd.to_numeric(b[col], errors="coerce").to_numpy(float)
            out[mask] = v[mask]
    return out


def _building_xy(b: pd.DataFrame) -> np.ndarray | None:
    """Building centroids (x, y) in the city CRS, or None without geometry."""
    geom = getattr(b, "geometry", None) if "geometry" in b.columns else None
    if geom is None:
        return None
    try:
        c = geom.centroid
        return np.column_stack([c.x.to_numpy(float), c.y.to_numpy(float)])
    except (AttributeError, TypeError, ValueError):
        return None


def run_energy(
    city: City,
    params: EnergyParams | None = None,
    *,
    seed: int,
    ev_arrivals: pd.DataFrame | None = None,
    start: Any = None,
    duration_s: float = 86400.0,
    fleet: Fleet | None = None,
) -> EnergyEngine:
    """Run the energy domain alone on ``city`` for ``duration_s`` from ``start`` (default: the
    scenario default date); returns the finished engine (``tables()``, ``kpis()``,
    ``series()``). ``ev_arrivals`` replaces the synthetic home arrivals of ``fleet``."""
    model = StandaloneModel(city, seed=seed, start=start, duration_s=duration_s, fleet=fleet)
    engine = EnergyEngine(model, params or EnergyParams(), ev_arrivals=ev_arrivals)
    model.energy = engine
    engine.advance(model.duration_s)
    return engine
