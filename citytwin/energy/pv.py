"""Rooftop PV: roof area, orientation, output per kWp under a real sky (pvlib), seeded adoption.

Method (all assumptions named here and in ``PVAssumptions``):

* Roof area = building footprint. Flat-roofed buildings (non-residential, or ≥ 3 storeys)
  carry racks at 15° tilt facing the **equator** on 50 % of the roof; small residential
  buildings have pitched roofs, modules flush at 30° on 40 % of the footprint, facing the
  equator, east or west (drawn per building with weights 0.5 / 0.25 / 0.25 from the run's
  ``"pv"`` stream). "Equator" is south north of the equator and north south of it.
* Capacity: 0.20 kWp per m² of module (≈ 20 % module efficiency at STC).
* Sky: global horizontal irradiance (GHI) is the measured ``ghi`` when the weather gives it,
  else ``sky_factor`` × pvlib's Ineichen/Perez clear-sky GHI (Linke turbidity climatology
  shipped with pvlib) for the city's latitude/longitude. ``sky_factor = 1`` is a cloudless
  sky, the upper envelope. GHI is split into beam and diffuse by the Erbs et al. (1982)
  correlation (pvlib ``irradiance.erbs``) — a cloudy sky is mostly diffuse, so tilting gains
  less than under a clear sky — then transposed to each plane with the isotropic sky model.
* The default sky of the shipped (Helsinki) weather: :data:`HELSINKI_SKY_FACTOR` = the
  Finnish Meteorological Institute's test-year annual GHI for Helsinki, about 980 kWh/m²
  (quoted by Motiva, "Amount of solar radiation in Finland"), ÷ the annual clear-sky GHI
  at Helsinki (1,370 kWh/m², computed here by pvlib). One factor for the whole year: the
  seasonal shape of cloudiness is not modelled. It gives 890–910 kWh/kWp/a for racks at
  15–30° facing south in Helsinki (PVGIS-type estimates for southern Finland: 850–950).
* Cell temperature by Faiman's model (wind 2 m/s); DC power by PVWatts (γ = −0.37 %/K), 14 %
  system losses and 96 % inverter efficiency.
* Clock: ``times`` are the simulation's naive local clock; ``tz`` (an IANA zone, daylight
  saving applied) converts them to UTC — the energy engine takes it from the city's location
  (:func:`timezone_at`).
* Adoption: exactly ``round(share × eligible)`` buildings, chosen without replacement from
  the ``"pv"`` stream of the run seed (eligible = footprint > 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from citytwin.errors import InputError
from citytwin.rng import stream

__all__ = ["HELSINKI_SKY_FACTOR", "ORIENTATIONS", "PVAssumptions", "PVFleet",
           "clear_sky_kw_per_kwp", "kw_per_kwp", "orientation_azimuths", "pv_fleet",
           "timezone_at"]

# (name, tilt °, azimuth ° from north; None = facing the equator)
ORIENTATIONS: tuple[tuple[str, float, float | None], ...] = (
    ("flat_rack_equator", 15.0, None),
    ("pitched_equator", 30.0, None),
    ("pitched_east", 30.0, 90.0),
    ("pitched_west", 30.0, 270.0),
)
#: FMI test-year annual GHI of Helsinki (~980 kWh/m², via Motiva) ÷ pvlib's annual clear-sky
#: GHI there (1,370 kWh/m²): the default sky of the shipped Helsinki weather (module doc).
HELSINKI_SKY_FACTOR = 0.715


def orientation_azimuths(lat: float) -> tuple[float, ...]:
    """Azimuth (° from north) of each of :data:`ORIENTATIONS` at latitude ``lat``: the
    equator-facing ones face south in the northern hemisphere and north in the southern."""
    equator = 180.0 if lat >= 0 else 0.0
    return tuple(equator if az is None else az for _, _, az in ORIENTATIONS)


def timezone_at(lat: float, lon: float) -> str | None:
    """The IANA time zone at (``lat``, ``lon``) from the offline boundary data of
    ``timezonefinder`` (``Etc/GMT±N`` at sea); None if the package cannot tell."""
    zone = _tzf().timezone_at(lat=float(lat), lng=float(lon))
    return None if zone is None else str(zone)


@lru_cache(maxsize=1)
def _tzf() -> Any:
    """The boundary index (loading it costs ~0.5 s: once per process)."""
    from timezonefinder import TimezoneFinder

    return TimezoneFinder()


@dataclass(frozen=True)
class PVAssumptions:
    kwp_per_m2: float = 0.20
    flat_roof_usable: float = 0.50
    pitched_roof_usable: float = 0.40
    gamma_pdc: float = -0.0037
    system_losses: float = 0.14
    inverter_eff: float = 0.96
    wind_m_s: float = 2.0
    albedo: float = 0.2


def kw_per_kwp(
    times: pd.DatetimeIndex,
    *,
    lat: float,
    lon: float,
    temp_c: np.ndarray | None = None,
    ghi_w_m2: np.ndarray | None = None,
    sky_factor: float = 1.0,
    utc_offset_h: float | None = None,
    tz: str | None = None,
    assumptions: PVAssumptions = PVAssumptions(),
) -> np.ndarray:
    """(len(ORIENTATIONS), T) AC output in kW per installed kWp at ``times``.

    The sky is the measured ``ghi_w_m2`` (W/m² at ``times``) when given, else ``sky_factor`` ×
    the clear-sky GHI (see the module doc). ``times`` are naive local clock times: in time
    zone ``tz`` (e.g. ``"America/Santiago"``, daylight saving applied) when given, else
    standard time UTC + ``utc_offset_h`` (default round(lon / 15))."""
    import pvlib

    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise InputError([f"PV site lat/lon out of range: ({lat}, {lon})"])
    if not 0.0 <= sky_factor <= 1.0:
        raise InputError([f"PV sky factor must be within 0..1, got {sky_factor}"])
    if tz is not None:
        utc = times.tz_localize(tz, ambiguous=np.zeros(len(times), bool),
                                nonexistent="shift_forward").tz_convert("UTC")
    else:
        off = round(lon / 15.0) if utc_offset_h is None else utc_offset_h
        utc = (times - pd.Timedelta(hours=off)).tz_localize("UTC")
    loc = pvlib.location.Location(lat, lon, tz="UTC")
    sol = loc.get_solarposition(utc)
    zen = sol["zenith"]
    if ghi_w_m2 is None and sky_factor == 1.0:
        cs = loc.get_clearsky(utc, model="ineichen", solar_position=sol)
        ghi, dni, dhi = cs["ghi"], cs["dni"], cs["dhi"]
    else:
        if ghi_w_m2 is None:
            cs = loc.get_clearsky(utc, model="ineichen", solar_position=sol)
            ghi = cs["ghi"] * float(sky_factor)
        else:
            g = np.asarray(ghi_w_m2, float)
            if g.shape != (len(times),):
                raise InputError([f"GHI has {g.shape} values for {len(times)} times"])
            ghi = pd.Series(np.where(zen.to_numpy() < 90.0, np.clip(g, 0.0, None), 0.0),
                            index=utc)
        split = pvlib.irradiance.erbs(ghi, zen, utc)
        dni, dhi = split["dni"], split["dhi"]
    t_air = np.full(len(times), 15.0) if temp_c is None else np.asarray(temp_c, float)
    a = assumptions
    out = np.empty((len(ORIENTATIONS), len(times)))
    for k, ((_, tilt, _), az) in enumerate(zip(ORIENTATIONS, orientation_azimuths(lat),
                                               strict=True)):
        poa = pvlib.irradiance.get_total_irradiance(
            tilt, az, sol["apparent_zenith"], sol["azimuth"], dni, ghi, dhi,
            albedo=a.albedo, model="isotropic",
        )["poa_global"].fillna(0.0).to_numpy()
        t_cell = pvlib.temperature.faiman(poa, t_air, a.wind_m_s)
        pdc = pvlib.pvsystem.pvwatts_dc(poa, t_cell, 1.0, a.gamma_pdc)
        out[k] = np.clip(np.asarray(pdc, float), 0.0, None) * (1 - a.system_losses) * a.inverter_eff
    return out


def clear_sky_kw_per_kwp(
    times: pd.DatetimeIndex,
    *,
    lat: float,
    lon: float,
    temp_c: np.ndarray | None = None,
    utc_offset_h: float | None = None,
    tz: str | None = None,
    assumptions: PVAssumptions = PVAssumptions(),
) -> np.ndarray:
    """:func:`kw_per_kwp` under a cloudless sky (the upper envelope of PV output)."""
    return kw_per_kwp(times, lat=lat, lon=lon, temp_c=temp_c, utc_offset_h=utc_offset_h,
                      tz=tz, assumptions=assumptions)


@dataclass(frozen=True)
class PVFleet:
    """Installed rooftop PV: per-building kWp and orientation class (−1 = no PV)."""

    kwp: np.ndarray           # (B,) installed kWp (0 where no PV)
    orientation: np.ndarray   # (B,) index into ORIENTATIONS, −1 where no PV

    @property
    def adopters(self) -> np.ndarray:
        return np.flatnonzero(self.kwp > 0)

    def output_kw(self, profile_kw_per_kwp: np.ndarray, steps: slice = slice(None)) -> np.ndarray:
        """(B, t) float32 AC output, kW, from :func:`kw_per_kwp` profiles."""
        n = self.kwp.size
        coef = np.zeros((n, profile_kw_per_kwp.shape[0]), np.float32)
        has = self.orientation >= 0
        coef[np.flatnonzero(has), self.orientation[has]] = self.kwp[has]
        return coef @ profile_kw_per_kwp[:, steps].astype(np.float32)

    def output_kw_at(self, profile_kw_per_kwp: np.ndarray, step: int) -> np.ndarray:
        """(B,) float64 AC output at one step, kW."""
        has = self.orientation >= 0
        out = np.zeros(self.kwp.size)
        out[has] = self.kwp[has] * profile_kw_per_kwp[self.orientation[has], step]
        return out


def pv_fleet(
    buildings: pd.DataFrame,
    *,
    share: float,
    seed: int,
    assumptions: PVAssumptions = PVAssumptions(),
) -> PVFleet:
    """Choose the PV adopters (seeded) and size their systems from roof area."""
    if not 0.0 <= share <= 1.0:
        raise InputError([f"pv share must be within 0..1, got {share}"])
    problems = [f"missing column '{c}'" for c in ("footprint_m2", "use") if c not in buildings]
    if problems:
        raise InputError(problems, source="buildings")
    n = len(buildings)
    foot = pd.to_numeric(buildings["footprint_m2"], errors="coerce").fillna(0.0).to_numpy(float)
    levels = (pd.to_numeric(buildings["levels"], errors="coerce").fillna(1.0).to_numpy(float)
              if "levels" in buildings else np.ones(n))
    flat = (buildings["use"].astype(str).to_numpy() != "residential") | (levels >= 3)
    rng = stream(seed, "pv")
    pitched_dir = rng.choice([1, 2, 3], size=n, p=[0.5, 0.25, 0.25])
    orient_all = np.where(flat, 0, pitched_dir)
    eligible = np.flatnonzero(foot > 0)
    k = int(round(share * eligible.size))
    chosen = np.sort(rng.choice(eligible, size=k, replace=False)) if k else np.array([], int)
    usable = np.where(flat, assumptions.flat_roof_usable, assumptions.pitched_roof_usable)
    kwp = np.zeros(n)
    kwp[chosen] = foot[chosen] * usable[chosen] * assumptions.kwp_per_m2
    orient = np.full(n, -1, dtype=np.int64)
    orient[chosen] = orient_all[chosen]
    return PVFleet(kwp=kwp, orientation=orient)
