"""Electricity and heat demand of every building, as (buildings × time) arrays.

Three parts, all computed for all buildings at once:

* **Base electricity** (appliances, lighting, equipment): annual intensity kWh/m²·a by use ×
  floor area, spread over the year by a BDEW standard load profile (H0 households, G0–G6
  trade/commerce; 15-minute values for workday/Saturday/Sunday in winter/summer/transition,
  holidays as Sundays, H0 with BDEW's dynamisation polynomial). The profile is normalised
  over each *calendar year*, so a building's energy over a full year equals intensity × floor
  area exactly. Profile data: ``data/bdew_shapes.csv``, extracted from demandlib 0.2's copy of
  the BDEW/VDEW profiles (``selp_series.csv``; MIT-licensed).
* **Heat** (thermal kW): space heating ``UA · floor · max(0, T_base − T_out)`` with UA (W/K
  per m² floor, fabric + ventilation) by vintage and T_base = 17 °C (the Finnish S17 heating
  degree-day convention: internal gains cover the rest up to ~21 °C), plus domestic hot water
  as a flat annual intensity. Cooling (thermal) ``UA · floor · max(0, T_out − 18 °C)`` for the
  cooled uses.
* **Electric heating/cooling**: heat-pump buildings draw ``heat / COP(T_out)`` (air-to-water,
  COP = 0.45 × Carnot to a 45 °C supply, clipped to 1–5); the others are on district heat
  (no electricity). Cooled uses draw ``cooling / EER`` (EER 3).

Intensities (electricity, kWh per m² floor per year) and their sources:

==============  =======  ====  =========================================================
use             profile  kWh   source
==============  =======  ====  =========================================================
residential     H0        35   household electricity of Finnish dwellings, ~2,000–2,500
                               kWh/a per 60–70 m² apartment (Adato/Motiva, Kotitalouksien
                               sähkönkäyttö 2011); ~35 kWh/m²·a
office          G1        95   CIBSE TM46:2008 benchmark, general office, electricity
retail          G4       165   CIBSE TM46:2008, general retail, electricity
industrial      G0        35   CIBSE TM46:2008, workshop (light manufacturing), electricity
education       G1        40   CIBSE TM46:2008, schools and seasonal public buildings
health          G3        90   CIBSE TM46:2008, hospital (clinical and research)
public          G1        70   CIBSE TM46:2008, cultural activities
hospitality     G2       105   CIBSE TM46:2008, hotel
other           G0        35   CIBSE TM46:2008, storage facility
==============  =======  ====  =========================================================

Domestic hot water: residential 35 kWh/m²·a (Finnish building code D3/2012 standard use,
600 l/m²·a heated by ~50 K); other uses are assumptions (table ``DHW_KWH_M2A``).
UA by vintage (W/K·m² floor): chosen so that the Helsinki typical year's S17 degree-hours
(~1.0 × 10⁵ K·h) give specific space heat of ~160 / 130 / 90 / 55 kWh/m²·a, the order of the
Finnish stock by construction era (pre-1960, 1960–90, 1990–2010, post-2010); these are
modelling assumptions, not a fitted dataset.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd

from citytwin.energy.weather import DATA_DIR
from citytwin.errors import InputError

__all__ = [
    "BuildingLoads",
    "COOLED_USES",
    "DHW_KWH_M2A",
    "ELEC_KWH_M2A",
    "PROFILE_BY_USE",
    "UA_W_PER_K_M2",
    "USES",
    "VINTAGES",
    "compute_loads",
    "cop_air_water",
    "day_types",
    "design_peak_kw",
    "finnish_holidays",
    "profile_shapes",
]

log = logging.getLogger(__name__)

USES = ("residential", "office", "retail", "industrial", "education", "health", "public",
        "hospitality", "other")
VINTAGES = ("pre1960", "1960_1990", "1990_2010", "post2010")
PROFILE_BY_USE = {"residential": "h0", "office": "g1", "retail": "g4", "industrial": "g0",
                  "education": "g1", "health": "g3", "public": "g1", "hospitality": "g2",
                  "other": "g0"}
ELEC_KWH_M2A = {"residential": 35.0, "office": 95.0, "retail": 165.0, "industrial": 35.0,
                "education": 40.0, "health": 90.0, "public": 70.0, "hospitality": 105.0,
                "other": 35.0}
DHW_KWH_M2A = {"residential": 35.0, "office": 5.0, "retail": 5.0, "industrial": 5.0,
               "education": 8.0, "health": 30.0, "public": 5.0, "hospitality": 40.0,
               "other": 0.0}
COOLED_USES = frozenset({"office", "retail", "health", "hospitality"})
UA_W_PER_K_M2 = {"pre1960": 1.6, "1960_1990": 1.3, "1990_2010": 0.9, "post2010": 0.55}
T_BASE_HEAT_C = 17.0
T_BASE_COOL_C = 18.0
EER_COOLING = 3.0
PROFILES = ("h0", "g0", "g1", "g2", "g3", "g4", "g5", "g6")
_SLOT_MIN = 15


def cop_air_water(t_out_c: np.ndarray, *, supply_c: float = 45.0, eta: float = 0.45) -> np.ndarray:
    """Air-to-water heat-pump COP at outdoor ``t_out_c``: ``eta`` × Carnot, clipped to 1–5."""
    t = np.asarray(t_out_c, float)
    lift = np.maximum(supply_c - t, 5.0)
    return np.clip(eta * (supply_c + 273.15) / lift, 1.0, 5.0)


# --------------------------------------------------------------------------- calendar
def _easter(year: int) -> date:
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month = (h + l_ - 7 * m + 114) // 31
    day = (h + l_ - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def finnish_holidays(year: int) -> set[date]:
    """Finnish public holidays and the customary days off (Midsummer Eve, Christmas Eve)."""
    easter = _easter(year)
    midsummer_eve = next(date(year, 6, d) for d in range(19, 26) if date(year, 6, d).weekday() == 4)
    all_saints = next(d for d in (date(year, 10, 31) + timedelta(days=i) for i in range(7))
                      if d.weekday() == 5)
    return {
        date(year, 1, 1), date(year, 1, 6), easter - timedelta(days=2), easter,
        easter + timedelta(days=1), date(year, 5, 1), easter + timedelta(days=39),
        easter + timedelta(days=49), midsummer_eve, midsummer_eve + timedelta(days=1),
        all_saints, date(year, 12, 6), date(year, 12, 24), date(year, 12, 25), date(year, 12, 26),
    }


def day_types(days: pd.DatetimeIndex) -> np.ndarray:
    """0 = workday, 1 = Saturday, 2 = Sunday or holiday, for each (midnight) timestamp."""
    wd = days.weekday.to_numpy()
    out = np.where(wd == 5, 1, np.where(wd == 6, 2, 0))
    hol: set[date] = set()
    for y in np.unique(days.year):
        hol |= finnish_holidays(int(y))
    is_hol = np.fromiter((d in hol for d in days.date), bool, count=len(days))
    out[is_hol] = 2
    return out


def _seasons(days: pd.DatetimeIndex) -> np.ndarray:
    """BDEW periods: 0 winter (1.11.–20.3.), 1 summer (15.5.–14.9.), 2 transition (rest)."""
    md = days.month.to_numpy() * 100 + days.day.to_numpy()
    summer = (md >= 515) & (md <= 914)
    winter = (md >= 1101) | (md <= 320)
    return np.where(winter, 0, np.where(summer, 1, 2))


@lru_cache(maxsize=1)
def _bdew_table() -> np.ndarray:
    """(period 3, daytype 3, slot 96, profile P) raw BDEW values."""
    df = pd.read_csv(DATA_DIR / "bdew_shapes.csv")
    per = {"winter": 0, "summer": 1, "transition": 2}
    dt = {"workday": 0, "saturday": 1, "sunday": 2}
    arr = np.zeros((3, 3, 96, len(PROFILES)))
    arr[df["period"].map(per).to_numpy(), df["daytype"].map(dt).to_numpy(),
        df["slot"].to_numpy()] = df[list(PROFILES)].to_numpy(float)
    return arr


@lru_cache(maxsize=8)
def _year_fractions(year: int) -> np.ndarray:
    """(P, slots of the year) fraction of each profile's annual energy per 15-min slot."""
    days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    table = _bdew_table()
    vals = table[_seasons(days), day_types(days)]          # (days, 96, P)
    doy = np.arange(1, len(days) + 1, dtype=float)
    dyn = -3.92e-10 * doy**4 + 3.2e-7 * doy**3 - 7.02e-5 * doy**2 + 2.1e-3 * doy + 1.24
    vals[:, :, PROFILES.index("h0")] *= dyn[:, None]
    flat = vals.reshape(-1, len(PROFILES)).T                 # (P, slots)
    return flat / flat.sum(axis=1, keepdims=True)


def profile_shapes(index: pd.DatetimeIndex, step_minutes: int) -> np.ndarray:
    """(P, T) fraction of the annual energy that falls in each step starting at ``index``.

    ``step_minutes`` must divide 60 and be a multiple or divisor of 15. Each step's
    fraction is taken from the calendar year it starts in.
    """
    if 60 % step_minutes or (step_minutes % _SLOT_MIN and _SLOT_MIN % step_minutes):
        raise InputError([f"step_minutes must divide 60 and 15 or be a multiple of 15, got "
                          f"{step_minutes}"])
    out = np.empty((len(PROFILES), len(index)))
    years = index.year.to_numpy()
    for y in np.unique(years):
        sel = np.flatnonzero(years == y)
        frac = _year_fractions(int(y))
        t = index[sel]
        minute_of_year = ((t - pd.Timestamp(f"{y}-01-01")) / pd.Timedelta(minutes=1)).to_numpy()
        if step_minutes >= _SLOT_MIN:
            k = step_minutes // _SLOT_MIN
            first = (minute_of_year // _SLOT_MIN).astype(np.int64)
            acc = np.zeros((len(PROFILES), sel.size))
            for j in range(k):
                acc += frac[:, np.minimum(first + j, frac.shape[1] - 1)]
            out[:, sel] = acc
        else:
            slot = (minute_of_year // _SLOT_MIN).astype(np.int64)
            out[:, sel] = frac[:, slot] * (step_minutes / _SLOT_MIN)
    return out


# --------------------------------------------------------------------------- loads
@dataclass(frozen=True)
class BuildingLoads:
    """Loads of all buildings over a period, kept in factored form (per-building × per-step).

    Materialise with :meth:`electric_kw` / :meth:`heat_kw` (whole (B × T) float32 arrays or a
    slice of steps) or :meth:`electric_kw_at` (one step, float64).
    """

    index: pd.DatetimeIndex          # step start times
    step_minutes: int
    building_ids: np.ndarray         # (B,)
    use: np.ndarray                  # (B,) str
    floor_area_m2: np.ndarray        # (B,)
    annual_elec_kwh: np.ndarray      # (B,) base electricity per year
    profile_idx: np.ndarray          # (B,) row in ``shapes``
    shapes_kw_per_kwh: np.ndarray    # (P, T) kW per annual kWh
    ua_w_per_k: np.ndarray           # (B,) UA × floor area
    dhw_kw: np.ndarray               # (B,) constant hot-water heat
    cooled: np.ndarray               # (B,) bool
    heat_pump: np.ndarray            # (B,) bool
    temp_c: np.ndarray               # (T,)
    heat_dh_k: np.ndarray            # (T,) max(0, T_base − T)
    cool_dh_k: np.ndarray            # (T,) max(0, T − T_cool)
    cop: np.ndarray                  # (T,)
    multiplier: np.ndarray | None = None  # (B,) calibrated electricity factor (None: 1)

    @property
    def step_h(self) -> float:
        return self.step_minutes / 60.0

    @property
    def n_buildings(self) -> int:
        return int(self.building_ids.size)

    def _factors(self, steps: slice, *, electric: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients C (B, K) and step factors F (K, t) with load = C @ F.

        Columns: one per BDEW profile (annual kWh on the building's own profile), then — for
        ``electric`` — heat-pump space heat, heat-pump hot water and cooling.
        """
        n, p = self.n_buildings, self.shapes_kw_per_kwh.shape[0]
        k = p + (3 if electric else 0)
        coef = np.zeros((n, k))
        coef[np.arange(n), self.profile_idx] = self.annual_elec_kwh
        rows = [self.shapes_kw_per_kwh[:, steps]]
        if electric:
            hp = self.heat_pump.astype(float)
            coef[:, p] = self.ua_w_per_k * hp / 1000.0
            coef[:, p + 1] = self.dhw_kw * hp
            coef[:, p + 2] = self.ua_w_per_k * self.cooled / 1000.0
            cop = self.cop[steps]
            rows.append(np.stack([self.heat_dh_k[steps] / cop, 1.0 / cop,
                                  self.cool_dh_k[steps] / EER_COOLING]))
        if self.multiplier is not None:
            coef *= self.multiplier[:, None]
        return coef, np.vstack(rows)

    def base_kw(self, steps: slice = slice(None)) -> np.ndarray:
        """(B, t) float32 appliance/lighting electricity, kW (mean over each step)."""
        c, f = self._factors(steps, electric=False)
        return c.astype(np.float32) @ f.astype(np.float32)

    def electric_kw(self, steps: slice = slice(None)) -> np.ndarray:
        """(B, t) float32 total electricity (base + heat pumps + cooling), kW.

        One float32 matrix product (B × K) @ (K × t), K = profiles + 3: a single pass over
        the output, which is what makes 100k buildings × 8,760 h take seconds.
        """
        c, f = self._factors(steps)
        return c.astype(np.float32) @ f.astype(np.float32)

    @cached_property
    def _all_factors(self) -> tuple[np.ndarray, np.ndarray]:
        return self._factors(slice(None))

    def electric_kw_at(self, step: int) -> np.ndarray:
        """(B,) float64 total electricity at one step, kW."""
        c, f = self._all_factors
        return c @ f[:, step]

    def heat_total_kw_at(self, step: int) -> float:
        """Sum over buildings of the thermal heat demand at one step, kW."""
        return float(self.ua_w_per_k.sum() / 1000.0 * self.heat_dh_k[step] + self.dhw_kw.sum())

    def heat_kw(self, steps: slice = slice(None)) -> np.ndarray:
        """(B, t) float32 thermal heat demand (space heating + hot water), kW."""
        out = np.multiply.outer(self.ua_w_per_k / 1000.0, self.heat_dh_k[steps])
        out += self.dhw_kw[:, None]
        return out.astype(np.float32)

    def cooling_kw(self, steps: slice = slice(None)) -> np.ndarray:
        """(B, t) float32 thermal cooling demand of the cooled buildings, kW."""
        coef = self.ua_w_per_k * self.cooled / 1000.0
        return np.multiply.outer(coef, self.cool_dh_k[steps]).astype(np.float32)

    def total_electric_kwh(self) -> float:
        """Total electricity over the period (float64, from the factors), kWh."""
        c, f = self._factors(slice(None))
        return float(c.sum(axis=0) @ f.sum(axis=1)) * self.step_h


def _validate(buildings: pd.DataFrame) -> list[str]:
    problems: list[str] = []
    for col in ("use", "floor_area_m2", "vintage"):
        if col not in buildings.columns:
            problems.append(f"missing column '{col}'")
    if problems:
        return problems

    def ids(mask: np.ndarray) -> str:
        bad = buildings.index[mask]
        shown = ", ".join(str(b) for b in bad[:10])
        return shown + (f" … ({len(bad)} buildings)" if len(bad) > 10 else "")

    use = buildings["use"].astype(str).to_numpy()
    bad_use = ~np.isin(use, USES)
    if bad_use.any():
        vals = sorted(set(use[bad_use]))[:5]
        problems.append(f"unknown use {vals} in buildings {ids(bad_use)}; expected one of "
                        f"{list(USES)}")
    area = pd.to_numeric(buildings["floor_area_m2"], errors="coerce").to_numpy(float)
    bad_area = ~np.isfinite(area) | (area < 0)
    if bad_area.any():
        problems.append(f"floor_area_m2 must be a number ≥ 0; bad in buildings {ids(bad_area)}")
    vin = buildings["vintage"].astype(str).to_numpy()
    bad_vin = ~np.isin(vin, VINTAGES)
    if bad_vin.any():
        problems.append(f"unknown vintage {sorted(set(vin[bad_vin]))[:5]} in buildings "
                        f"{ids(bad_vin)}; expected one of {list(VINTAGES)}")
    return problems


def design_peak_kw(
    use: np.ndarray | list[str],
    floor_area_m2: np.ndarray | list[float],
    vintage: np.ndarray | list[str] | None,
    temperature_c: pd.Series,
) -> np.ndarray:
    """Per-building peak electricity (kW) of this module's load model over the period of
    ``temperature_c`` (an hourly series; the grid uses a whole typical year): the maximum over
    15-minute steps of base electricity + cooling, without heat pumps — the load of the city
    as it is, from which its grid is designed (``citytwin.network.power``).

    Exact and cheap: a building's load is floor area × a function of its (use, vintage) only,
    so the maximum is taken once per (use, vintage) pair over the whole period. Unknown
    vintage (``None``): cooling from the 1960–1990 fabric (a documented assumption)."""
    use_a = np.asarray(use, dtype=object).astype(str)
    area = np.asarray(floor_area_m2, dtype=float)
    vin = (np.full(use_a.shape, "1960_1990", dtype=object) if vintage is None
           else np.asarray(vintage, dtype=object).astype(str))
    bad = sorted(set(use_a) - set(USES)) + sorted(set(vin) - set(VINTAGES))
    if bad:
        raise InputError([f"unknown use or vintage {bad[:5]} (expected uses {list(USES)}, "
                          f"vintages {list(VINTAGES)})"], source="buildings")
    t0 = temperature_c.index[0]
    n = int((temperature_c.index[-1] - t0) / pd.Timedelta(minutes=_SLOT_MIN)) + 1
    idx = pd.date_range(t0, periods=n, freq=f"{_SLOT_MIN}min")
    from citytwin.energy.weather import temperature_at

    temp = temperature_at(temperature_c, idx + pd.Timedelta(minutes=_SLOT_MIN / 2))
    shapes = profile_shapes(idx, _SLOT_MIN) / (_SLOT_MIN / 60.0)      # (P, T) kW per kWh/a
    cool = np.maximum(0.0, temp - T_BASE_COOL_C) / EER_COOLING        # (T,) K per EER
    pair = pd.MultiIndex.from_arrays([use_a, vin])
    codes, uniq = pd.factorize(pair)
    per_m2 = np.empty(len(uniq))
    for k, (u, v) in enumerate(uniq):
        load = ELEC_KWH_M2A[u] * shapes[PROFILES.index(PROFILE_BY_USE[u])]
        if u in COOLED_USES:
            load = load + UA_W_PER_K_M2[v] / 1000.0 * cool
        per_m2[k] = float(load.max())
    return per_m2[codes] * area


def compute_loads(
    buildings: pd.DataFrame,
    temperature_c: np.ndarray | pd.Series,
    *,
    index: pd.DatetimeIndex,
    step_minutes: int,
    heat_pump: np.ndarray | None = None,
    cop: float | None = None,
    source: str = "buildings",
) -> BuildingLoads:
    """Loads of ``buildings`` (contract columns ``use``, ``floor_area_m2``, ``vintage``).

    ``temperature_c`` gives the outdoor temperature at each step of ``index`` (step starts,
    spacing ``step_minutes``). ``heat_pump`` is a boolean mask of heat-pump buildings (default
    none); ``cop`` fixes a constant COP instead of the outdoor-temperature curve.
    Raises :class:`InputError` naming every building with an unknown use or vintage or a
    negative / missing floor area.
    """
    problems = _validate(buildings)
    temp = np.asarray(temperature_c, float)
    if temp.shape != (len(index),):
        problems.append(f"temperature has {temp.shape} values, index has {len(index)} steps")
    elif not np.isfinite(temp).all():
        problems.append("temperature has missing values")
    n = len(buildings)
    hp = np.zeros(n, bool) if heat_pump is None else np.asarray(heat_pump, bool)
    if hp.shape != (n,):
        problems.append(f"heat_pump mask has shape {hp.shape}, expected ({n},)")
    if problems:
        raise InputError(problems, source=source)
    use = buildings["use"].astype(str).to_numpy()
    area = buildings["floor_area_m2"].to_numpy(float)
    vin = buildings["vintage"].astype(str).to_numpy()
    elec = np.array([ELEC_KWH_M2A[u] for u in USES])
    dhw = np.array([DHW_KWH_M2A[u] for u in USES])
    prof = np.array([PROFILES.index(PROFILE_BY_USE[u]) for u in USES])
    cooled_u = np.array([u in COOLED_USES for u in USES])
    ua = np.array([UA_W_PER_K_M2[v] for v in VINTAGES])
    ucode = pd.Categorical(use, categories=USES).codes
    vcode = pd.Categorical(vin, categories=VINTAGES).codes
    shapes = profile_shapes(index, step_minutes) / (step_minutes / 60.0)
    cop_t = np.full(temp.shape, float(cop)) if cop is not None else cop_air_water(temp)
    return BuildingLoads(
        index=index,
        step_minutes=step_minutes,
        building_ids=buildings.index.to_numpy(),
        use=use,
        floor_area_m2=area,
        annual_elec_kwh=elec[ucode] * area,
        profile_idx=prof[ucode],
        shapes_kw_per_kwh=shapes,
        ua_w_per_k=ua[vcode] * area,
        dhw_kw=dhw[ucode] * area / 8760.0,
        cooled=cooled_u[ucode],
        heat_pump=hp,
        temp_c=temp,
        heat_dh_k=np.maximum(0.0, T_BASE_HEAT_C - temp),
        cool_dh_k=np.maximum(0.0, temp - T_BASE_COOL_C),
        cop=cop_t,
    )
