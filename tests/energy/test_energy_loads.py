from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from citytwin.energy.loads import (
    DHW_KWH_M2A,
    ELEC_KWH_M2A,
    T_BASE_HEAT_C,
    UA_W_PER_K_M2,
    USES,
    compute_loads,
    cop_air_water,
    day_types,
    finnish_holidays,
    profile_shapes,
)
from citytwin.energy.weather import temperature_at, typical_year
from citytwin.errors import InputError


def _buildings() -> pd.DataFrame:
    n = len(USES) * 2
    return pd.DataFrame(
        {
            "use": list(USES) * 2,
            "floor_area_m2": np.linspace(80.0, 4000.0, n),
            "vintage": (["pre1960", "1960_1990", "1990_2010", "post2010"] * 5)[:n],
        },
        index=pd.RangeIndex(n, name="building_id"),
    )


def _year(step_minutes: int, year: int = 2026):
    idx = pd.date_range(f"{year}-01-01", f"{year}-12-31 23:59", freq=f"{step_minutes}min")
    return idx, temperature_at(typical_year(year=year), idx)


@pytest.mark.parametrize("step", [15, 60])
def test_annual_totals_equal_intensity_times_floor_area(step):
    b = _buildings()
    idx, temp = _year(step)
    loads = compute_loads(b, temp, index=idx, step_minutes=step)
    expected = b["use"].map(ELEC_KWH_M2A).to_numpy() * b["floor_area_m2"].to_numpy()
    # factor level: exact to double precision
    fac = loads.shapes_kw_per_kwh[loads.profile_idx].sum(axis=1) * loads.annual_elec_kwh * step / 60
    np.testing.assert_allclose(fac, expected, rtol=1e-12)
    # materialised float32 array, summed in float64
    got = loads.base_kw().sum(axis=1, dtype=np.float64) * step / 60
    np.testing.assert_allclose(got, expected, rtol=2e-6)


def test_leap_year_total_also_exact():
    b = _buildings()
    idx, temp = _year(60, year=2028)
    loads = compute_loads(b, temp, index=idx, step_minutes=60)
    got = loads.base_kw().sum(axis=1, dtype=np.float64)
    np.testing.assert_allclose(got, loads.annual_elec_kwh, rtol=2e-6)


def test_degree_hour_heating_and_constant_cop_heat_pump():
    b = _buildings()
    idx, temp = _year(60)
    hp = np.arange(len(b)) % 2 == 0
    loads = compute_loads(b, temp, index=idx, step_minutes=60, heat_pump=hp, cop=3.0)
    dh = np.maximum(0.0, T_BASE_HEAT_C - temp).sum()  # K·h
    ua = b["vintage"].map(UA_W_PER_K_M2).to_numpy() * b["floor_area_m2"].to_numpy()
    dhw = b["use"].map(DHW_KWH_M2A).to_numpy() * b["floor_area_m2"].to_numpy()
    heat = loads.heat_kw().sum(axis=1, dtype=np.float64)
    np.testing.assert_allclose(heat, ua * dh / 1000.0 + dhw, rtol=1e-5)
    # electricity of heat pumps = heat / COP exactly; others on district heat draw nothing
    elec = loads.electric_kw().sum(axis=1, dtype=np.float64)
    base = loads.base_kw().sum(axis=1, dtype=np.float64)
    cool = loads.cooling_kw().sum(axis=1, dtype=np.float64) / 3.0
    np.testing.assert_allclose(elec - base - cool, np.where(hp, heat / 3.0, 0.0), rtol=1e-4, atol=1e-3)
    assert loads.total_electric_kwh() == pytest.approx(elec.sum(), rel=1e-5)
    # Helsinki S17 degree-hours of the typical year are about 1.0e5 K·h
    assert 0.9e5 < dh < 1.15e5


def test_cop_curve_rises_with_outdoor_temperature():
    t = np.array([-30.0, -15.0, 0.0, 7.0, 20.0])
    c = cop_air_water(t)
    assert np.all(np.diff(c) > 0)
    assert 1.0 <= c.min() and c.max() <= 5.0
    assert 2.5 < cop_air_water(np.array([2.0]))[0] < 3.6


def test_electric_kw_at_matches_full_array():
    b = _buildings()
    idx = pd.date_range("2026-01-05", periods=96, freq="15min")
    temp = temperature_at(typical_year(year=2026), idx)
    loads = compute_loads(b, temp, index=idx, step_minutes=15, heat_pump=np.ones(len(b), bool))
    full = loads.electric_kw()
    for k in (0, 37, 95):
        np.testing.assert_allclose(full[:, k], loads.electric_kw_at(k), rtol=1e-5)


def test_bad_buildings_all_named():
    b = _buildings()
    b.loc[3, "use"] = "spaceport"
    b.loc[5, "floor_area_m2"] = -10.0
    b.loc[7, "floor_area_m2"] = np.nan
    b.loc[8, "vintage"] = "1800s"
    idx, temp = _year(60)
    with pytest.raises(InputError) as e:
        compute_loads(b, temp, index=idx, step_minutes=60)
    msg = str(e.value)
    assert "spaceport" in msg and "buildings 3" in msg
    assert "buildings 5, 7" in msg
    assert "1800s" in msg and "buildings 8" in msg
    assert len(e.value.problems) == 3


def test_office_profile_low_on_sundays_and_holidays():
    assert pd.Timestamp("2026-06-19").date() in finnish_holidays(2026)  # Midsummer Eve (Fri)
    assert pd.Timestamp("2026-04-03").date() in finnish_holidays(2026)  # Good Friday
    days = pd.DatetimeIndex(["2026-03-02", "2026-03-07", "2026-03-08", "2026-12-25"])
    np.testing.assert_array_equal(day_types(days), [0, 1, 2, 2])
    idx = pd.date_range("2026-03-02", periods=7 * 24, freq="h")
    g1 = profile_shapes(idx, 60)[2].reshape(7, 24)  # g1 = offices
    assert g1[0].sum() > 2.5 * g1[6].sum()  # Monday vs Sunday
    assert g1[0, 11] > 3 * g1[0, 2]  # midday vs night


def test_bdew_profiles_match_demandlib():
    demandlib = pytest.importorskip("demandlib.bdew")
    hol = {d: "holiday" for d in finnish_holidays(2026)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        slp = demandlib.ElecSlp(2026, holidays=hol).get_profiles("g0", "g1", "g4")
    idx = pd.date_range("2026-01-01", periods=len(slp), freq="15min")
    ours = profile_shapes(idx, 15)
    for k, name in ((1, "g0"), (2, "g1"), (5, "g4")):
        np.testing.assert_allclose(ours[k], slp[name].to_numpy(), rtol=1e-9, atol=1e-12)
