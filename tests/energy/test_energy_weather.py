from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from citytwin.energy.weather import (
    apply_heat_wave,
    build_typical_year,
    read_normals,
    read_weather_csv,
    temperature_at,
    typical_year,
)
from citytwin.errors import InputError


def test_shipped_typical_year_is_the_documented_construction():
    shipped = typical_year()
    rebuilt = build_typical_year()
    assert len(shipped) == 8760
    np.testing.assert_allclose(shipped.to_numpy(), rebuilt.to_numpy(), atol=0.006)


def test_typical_year_keeps_monthly_normals_and_daily_range():
    s = typical_year()
    normals = read_normals()
    monthly = s.groupby(s.index.month).mean().to_numpy()
    np.testing.assert_allclose(monthly, normals["t_mean"].to_numpy(), atol=0.01)
    daily = s.groupby(s.index.date)
    rng = (daily.max() - daily.min()).groupby(pd.DatetimeIndex(daily.max().index).month).mean()
    expected = (normals["t_max"] - normals["t_min"]).to_numpy()
    # the diurnal amplitude is interpolated between months, so allow 0.6 K
    np.testing.assert_allclose(rng.to_numpy(), expected, atol=0.6)


def test_typical_year_redated_to_leap_year_covers_all_hours():
    s = typical_year(year=2024)
    assert len(s) == 8784
    assert not s.isna().any()
    np.testing.assert_array_equal(s["2024-02-29"].to_numpy(), s["2024-02-28"].to_numpy())


def test_heat_wave_adds_delta_inside_window_only():
    s = typical_year(year=2026)
    hw = apply_heat_wave(s, start="2026-07-10", days=3, delta_c=6.0, ramp_hours=6)
    d = hw - s
    assert d["2026-07-09"].abs().max() == 0
    assert d["2026-07-14"].abs().max() == 0
    np.testing.assert_allclose(d["2026-07-10 06:00":"2026-07-12 18:00"].to_numpy(), 6.0)
    assert 0 < d["2026-07-10 03:00"] < 6
    cold = apply_heat_wave(s, start="2026-01-10", days=2, delta_c=-10.0)
    assert (cold - s).min() == pytest.approx(-10.0)
    with pytest.raises(InputError, match="days"):
        apply_heat_wave(s, start="2026-01-10", days=0, delta_c=3)


def test_temperature_at_interpolates_and_checks_coverage():
    s = typical_year(year=2026)
    t = pd.date_range("2026-03-01", periods=8, freq="15min")
    v = temperature_at(s, t)
    assert v[0] == s["2026-03-01 00:00"]
    assert v[2] == pytest.approx((s["2026-03-01 00:00"] + s["2026-03-01 01:00"]) / 2)
    with pytest.raises(InputError, match="weather covers"):
        temperature_at(s, pd.date_range("2027-01-02", periods=3, freq="h"))


def _write(tmp_path, values, times=None, name="w.csv"):
    times = times if times is not None else pd.date_range("2026-01-01", periods=len(values), freq="h")
    p = tmp_path / name
    pd.DataFrame({"time": times, "temp_c": values}).to_csv(p, index=False)
    return p


def test_read_weather_csv_ok(tmp_path):
    p = _write(tmp_path, [1.0, 2.0, 3.0])
    s = read_weather_csv(p)
    assert list(s) == [1.0, 2.0, 3.0]


def test_read_weather_csv_kelvin_named(tmp_path):
    p = _write(tmp_path, [273.0, 275.0, 280.0])
    with pytest.raises(InputError, match="Kelvin") as e:
        read_weather_csv(p)
    assert str(p) in str(e.value)


def test_read_weather_csv_fahrenheit_and_gaps_all_reported(tmp_path):
    times = list(pd.date_range("2026-07-01", periods=5, freq="h"))
    times[3] = times[3] + pd.Timedelta(hours=5)
    times[4] = times[4] + pd.Timedelta(hours=5)
    p = _write(tmp_path, [70.0, 75.0, 80.0, 85.0, np.nan], times=times)
    with pytest.raises(InputError) as e:
        read_weather_csv(p)
    msg = str(e.value)
    assert "Fahrenheit" in msg and "rows 0, 1, 2, 3" in msg
    assert "gaps" in msg and "rows 2–3" in msg
    assert "missing or non-numeric 'temp_c' in rows 4" in msg
    assert len(e.value.problems) == 3


def test_read_weather_csv_missing_columns(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("when,kelvin\n1,2\n")
    with pytest.raises(InputError) as e:
        read_weather_csv(p)
    assert len(e.value.problems) == 2
