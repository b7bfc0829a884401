"""Outdoor temperature for the energy model: a shipped typical year, user CSVs, heat waves.

The shipped series (``data/helsinki_typical_year.csv``) is *constructed*, not measured: it is
built by :func:`build_typical_year` from the monthly climate normals of Helsinki Kaisaniemi
1991–2020 (Finnish Meteorological Institute, station statistics for the 1991–2020 reference
period: monthly mean temperature and monthly means of the daily maximum and minimum; the
values are in ``data/helsinki_normals.csv``). Method:

1. daily means: a mean-preserving interpolation of the twelve monthly means (piecewise linear
   between mid-month anchors, then each month shifted so its mean equals the normal; 20
   passes);
2. day-to-day weather: an AR(1) anomaly (lag-1 correlation 0.8, standard deviation by month,
   5 K in mid-winter to 2.5 K in summer — the order of magnitude of the spread of daily means
   at the station), drawn from ``rng.stream(1991, "weather")`` and re-centred so every
   month's mean is unchanged;
3. diurnal cycle: a cosine peaking at 15:00 local standard time with half-amplitude
   (Tmax − Tmin)/2 of the (interpolated) monthly normals; its mean over whole days is zero.

So the series has exactly the monthly means of the normals, daily ranges of the normals and
a plausible but *synthetic* sequence of warm and cold spells. It is a design-year stand-in,
not a TMY; users with measured data pass a CSV (:func:`read_weather_csv`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from citytwin.errors import InputError
from citytwin.rng import stream

__all__ = [
    "DATA_DIR",
    "HELSINKI_SITE",
    "TemperatureShift",
    "Weather",
    "apply_heat_wave",
    "build_typical_year",
    "read_normals",
    "read_weather",
    "read_weather_csv",
    "temperature_at",
    "typical_year",
]

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).with_name("data")
_NORMALS = DATA_DIR / "helsinki_normals.csv"
_TYPICAL = DATA_DIR / "helsinki_typical_year.csv"
#: where the shipped typical year belongs: Helsinki Kaisaniemi (lat, lon)
HELSINKI_SITE = (60.175, 24.944)
_REF_YEAR = 2001  # a non-leap reference year for the 8,760 typical hours
_AR_PHI = 0.8
_ANOMALY_SD = np.array([5.0, 5.0, 4.0, 3.0, 2.5, 2.5, 2.5, 2.5, 2.5, 3.0, 3.5, 4.5])


def read_normals(path: Path | str = _NORMALS) -> pd.DataFrame:
    """Monthly normals table: ``month`` (1..12), ``t_mean``, ``t_max``, ``t_min`` in °C."""
    df = pd.read_csv(path, comment="#")
    need = {"month", "t_mean", "t_max", "t_min"}
    missing = need - set(df.columns)
    if missing or len(df) != 12:
        raise InputError(
            [f"expected 12 rows with columns {sorted(need)}, missing {sorted(missing)}"],
            source=str(path),
        )
    return df.sort_values("month").reset_index(drop=True)


def _mean_preserving_daily(monthly: np.ndarray, month_of_day: np.ndarray) -> np.ndarray:
    """Daily values whose per-month mean equals ``monthly`` (periodic year)."""
    days = np.arange(month_of_day.size, dtype=float)
    mids = np.array([days[month_of_day == m].mean() for m in range(12)])
    target = monthly.astype(float).copy()
    anchors = target.copy()
    for _ in range(20):
        xp = np.concatenate([[mids[-1] - 365.0], mids, [mids[0] + 365.0]])
        fp = np.concatenate([[anchors[-1]], anchors, [anchors[0]]])
        daily = np.interp(days, xp, fp)
        got = np.bincount(month_of_day, weights=daily, minlength=12) / np.bincount(month_of_day)
        anchors += target - got
    daily = np.interp(days, xp, fp)
    got = np.bincount(month_of_day, weights=daily, minlength=12) / np.bincount(month_of_day)
    return daily + (target - got)[month_of_day]  # exact monthly means


def build_typical_year(normals: pd.DataFrame | None = None, *, seed: int = 1991) -> pd.Series:
    """Construct the hourly typical-year temperature (°C) from monthly normals (see module doc)."""
    normals = read_normals() if normals is None else normals
    idx = pd.date_range(f"{_REF_YEAR}-01-01", periods=8760, freq="h")
    day_idx = pd.date_range(f"{_REF_YEAR}-01-01", periods=365, freq="D")
    mday = day_idx.month.to_numpy() - 1
    t_mean = _mean_preserving_daily(normals["t_mean"].to_numpy(), mday)
    half_range = _mean_preserving_daily(
        (normals["t_max"].to_numpy() - normals["t_min"].to_numpy()) / 2.0, mday
    )
    rng = stream(seed, "weather")
    eps = rng.standard_normal(365)
    anom = np.empty(365)
    sd = _ANOMALY_SD[mday]
    anom[0] = eps[0] * sd[0]
    for d in range(1, 365):
        anom[d] = _AR_PHI * anom[d - 1] + np.sqrt(1 - _AR_PHI**2) * sd[d] * eps[d]
    anom -= (np.bincount(mday, weights=anom, minlength=12) / np.bincount(mday))[mday]
    daily = t_mean + anom
    hours = np.arange(8760)
    day_of_hour = hours // 24
    hod = hours % 24
    temp = daily[day_of_hour] + half_range[day_of_hour] * np.cos(2 * np.pi * (hod - 15) / 24)
    return pd.Series(np.round(temp, 2), index=idx, name="temp_c")


@lru_cache(maxsize=1)
def _shipped() -> pd.Series:
    df = pd.read_csv(_TYPICAL, comment="#", parse_dates=["time"])
    return pd.Series(df["temp_c"].to_numpy(float), index=pd.DatetimeIndex(df["time"]), name="temp_c")


def typical_year(*, year: int | None = None) -> pd.Series:
    """The shipped hourly typical-year temperature (°C), re-dated to ``year`` if given.

    In a leap year 29 February repeats 28 February, so the result always covers the whole year.
    """
    s = _shipped().copy()
    if year is None or year == _REF_YEAR:
        return s
    idx = pd.date_range(f"{year}-01-01", f"{year}-12-31 23:00", freq="h")
    pos = np.arange(len(idx))
    if len(idx) == 8784:  # leap year: 29 Feb repeats 28 Feb, later hours shift back a day
        pos = np.where(idx >= pd.Timestamp(f"{year}-02-29"), pos - 24, pos)
    return pd.Series(s.to_numpy()[pos], index=idx, name="temp_c")


@dataclass(frozen=True)
class Weather:
    """A weather file: temperature, optionally measured global horizontal irradiance, and
    optionally the site it was measured at."""

    temp_c: pd.Series
    ghi_w_m2: pd.Series | None = None
    site: tuple[float, float] | None = None  # (lat, lon)


def read_weather_csv(path: Path | str) -> pd.Series:
    """The temperature (°C) of a user weather CSV (:func:`read_weather`)."""
    return read_weather(path).temp_c


def read_weather(path: Path | str) -> Weather:
    """Read a user weather CSV: columns ``time`` and ``temp_c`` (°C); optional ``ghi_w_m2``
    (measured global horizontal irradiance, W/m², used for PV instead of a modelled sky) and
    ``lat``/``lon`` (the station, one value each: the run warns when it is far from the city).

    Checks, collecting every problem: the columns exist, times parse, no duplicate times, a
    regular step (gaps are named by the rows around them), no missing values, and a plausible
    Celsius range (values that look like Kelvin or Fahrenheit are rejected, naming rows);
    irradiance within 0..1,400 W/m²; one station position within −90..90 / −180..180.
    """
    path = Path(path)
    if not path.exists():
        raise InputError([f"weather file does not exist: {path}"], source=str(path))
    try:
        df = pd.read_csv(path, comment="#")
    except (OSError, ValueError) as exc:  # not UTF-8 text, not CSV, no columns at all
        raise InputError([f"cannot read as a CSV of weather ({type(exc).__name__}: "
                          f"{str(exc)[:160]}); expected UTF-8 text with columns time, temp_c"],
                         source=str(path)) from None
    problems: list[str] = []
    tcol = next((c for c in ("temp_c", "temperature_c") if c in df.columns), None)
    if "time" not in df.columns:
        problems.append(f"missing column 'time' (found {list(df.columns)})")
    if tcol is None:
        problems.append(f"missing column 'temp_c' in °C (found {list(df.columns)})")
    if problems:
        raise InputError(problems, source=str(path))
    times = pd.to_datetime(df["time"], errors="coerce")
    bad_t = np.flatnonzero(times.isna().to_numpy())
    if bad_t.size:
        problems.append(f"unparseable 'time' in rows {_rows(bad_t)}")
    vals = pd.to_numeric(df[tcol], errors="coerce").to_numpy(float)
    nan_rows = np.flatnonzero(np.isnan(vals))
    if nan_rows.size:
        problems.append(f"missing or non-numeric '{tcol}' in rows {_rows(nan_rows)}")
    ok = vals[~np.isnan(vals)]
    if ok.size:
        if np.median(ok) > 200:
            rows = np.flatnonzero(vals > 200)
            problems.append(
                f"'{tcol}' looks like Kelvin (median {np.median(ok):.1f}); expected °C "
                f"(rows {_rows(rows)})"
            )
        else:
            rows = np.flatnonzero((vals > 50) | (vals < -60))
            if rows.size:
                hint = " — Fahrenheit?" if np.nanmax(vals) > 50 else ""
                problems.append(
                    f"'{tcol}' outside the plausible range −60..50 °C{hint} (rows {_rows(rows)})"
                )
    if not bad_t.size and len(times) > 1:
        tv = times.to_numpy()
        if (np.diff(tv) <= np.timedelta64(0)).any():
            rows = np.flatnonzero(np.diff(tv) <= np.timedelta64(0)) + 1
            problems.append(f"times not strictly increasing at rows {_rows(rows)}")
        else:
            d = np.diff(tv)
            step = np.median(d)
            gap = np.flatnonzero(d != step)
            if gap.size:
                desc = ", ".join(
                    f"rows {g}–{g + 1} ({pd.Timestamp(tv[g])} → {pd.Timestamp(tv[g + 1])})"
                    for g in gap[:5]
                )
                more = f" and {gap.size - 5} more" if gap.size > 5 else ""
                problems.append(
                    f"gaps in the time series (expected a step of {pd.Timedelta(step)}): "
                    f"{desc}{more}"
                )
    ghi = None
    if "ghi_w_m2" in df.columns:
        g = pd.to_numeric(df["ghi_w_m2"], errors="coerce").to_numpy(float)
        rows = np.flatnonzero(~np.isfinite(g) | (g < 0) | (g > 1400))
        if rows.size:
            problems.append(f"'ghi_w_m2' must be a number within 0..1400 W/m² (rows {_rows(rows)})")
        ghi = g
    site = None
    if ("lat" in df.columns) != ("lon" in df.columns):
        problems.append("give both 'lat' and 'lon' for the weather station, or neither")
    elif "lat" in df.columns:
        la = pd.to_numeric(df["lat"], errors="coerce").dropna().unique()
        lo = pd.to_numeric(df["lon"], errors="coerce").dropna().unique()
        if la.size != 1 or lo.size != 1 or not (-90 <= la[0] <= 90 and -180 <= lo[0] <= 180):
            problems.append(f"'lat'/'lon' must be one station position within −90..90 / "
                            f"−180..180 (found lat {list(la[:3])}, lon {list(lo[:3])})")
        else:
            site = (float(la[0]), float(lo[0]))
    if problems:
        raise InputError(problems, source=str(path))
    idx = pd.DatetimeIndex(times)
    return Weather(temp_c=pd.Series(vals, index=idx, name="temp_c"),
                   ghi_w_m2=None if ghi is None else pd.Series(ghi, index=idx, name="ghi_w_m2"),
                   site=site)


def _rows(rows: np.ndarray, limit: int = 8) -> str:
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    return shown + (f" … ({rows.size} rows)" if rows.size > limit else "")


class TemperatureShift(BaseModel):
    """Outdoor temperature + ``delta_c`` (negative: a cold snap) from ``start_h`` for
    ``duration_h`` hours after the period start (ramped in and out, :func:`apply_heat_wave`).

    The bounds are physical, not a policy: −40 K is below any recorded cold snap relative to a
    seasonal mean, +20 K above any recorded heat wave's anomaly.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    delta_c: float = Field(ge=-40, le=20, description="temperature change, K (negative: colder)")
    start_h: float = Field(default=0.0, ge=0, description="hours after the period start")
    duration_h: float = Field(default=24.0, gt=0, description="length of the shift, h")

    def apply(self, series: pd.Series, period_start: pd.Timestamp) -> pd.Series:
        """``series`` with this shift applied (``period_start`` is t = 0 of the simulation)."""
        return apply_heat_wave(series, start=period_start + pd.Timedelta(hours=self.start_h),
                               days=self.duration_h / 24.0, delta_c=self.delta_c)


def apply_heat_wave(
    series: pd.Series,
    *,
    start: str | pd.Timestamp,
    days: float,
    delta_c: float,
    ramp_hours: float = 12.0,
) -> pd.Series:
    """Return a copy of ``series`` with ``delta_c`` added from ``start`` for ``days`` days.

    A negative ``delta_c`` is a cold snap. The change ramps in and out linearly over
    ``ramp_hours`` inside the window (so no unphysical jump); the full ``delta_c`` applies
    between the ramps.
    """
    if days <= 0:
        raise InputError([f"heat wave 'days' must be > 0, got {days}"])
    if not isinstance(series.index, pd.DatetimeIndex):
        raise InputError(["apply_heat_wave needs a Series with a DatetimeIndex"])
    t0 = pd.Timestamp(start)
    hours = (series.index - t0) / pd.Timedelta(hours=1)
    length = days * 24.0
    ramp = max(min(ramp_hours, length / 2.0), 1e-9)
    w = np.clip(np.minimum(hours, length - hours) / ramp, 0.0, 1.0)
    w = np.where((hours >= 0) & (hours <= length), w, 0.0)
    return series + delta_c * w


def temperature_at(series: pd.Series, times: pd.DatetimeIndex) -> np.ndarray:
    """Temperature (°C) at ``times`` by linear interpolation of ``series``.

    A typical year (re-dated with :func:`typical_year`) covers any timestamp of its year; a
    user series must cover the requested period, else an error names the uncovered span.
    """
    src = series.index
    if times.min() < src.min() or times.max() > src.max() + pd.Timedelta(hours=1):
        raise InputError(
            [
                f"weather covers {src.min()} … {src.max()}, the simulation needs "
                f"{times.min()} … {times.max()}"
            ]
        )
    x = (src - src[0]) / pd.Timedelta(seconds=1)
    xi = (times - src[0]) / pd.Timedelta(seconds=1)
    return np.interp(np.asarray(xi, float), np.asarray(x, float), series.to_numpy(float))
