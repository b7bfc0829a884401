from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from citytwin.energy.pv import ORIENTATIONS, clear_sky_kw_per_kwp, pv_fleet
from citytwin.errors import InputError

HEL = {"lat": 60.17, "lon": 24.94}


def test_clear_sky_profile_physics():
    idx = pd.date_range("2026-06-21", periods=96, freq="15min") + pd.Timedelta(minutes=7.5)
    p = clear_sky_kw_per_kwp(idx, **HEL)
    assert p.shape == (len(ORIENTATIONS), 96)
    south = p[1]
    assert south[:8].max() == 0.0  # 00:00-02:00 local standard time: sun below horizon
    noon = int(np.argmax(south))
    assert 11.5 <= idx[noon].hour + idx[noon].minute / 60 <= 13.0  # solar noon ~12:20 UTC+2
    assert 0.6 < south.max() < 0.9  # kW/kWp under a clear sky with losses
    east, west = p[2], p[3]
    assert np.argmax(east) < noon < np.argmax(west)
    daily = p.sum(axis=1) / 4  # kWh/kWp
    assert 5.0 < daily[1] < 8.0
    # December at 60° N: very little
    dec = clear_sky_kw_per_kwp(pd.date_range("2026-12-21", periods=96, freq="15min"), **HEL)
    assert dec[1].sum() / 4 < 0.25 * daily[1]


def test_fleet_adoption_exact_share_and_seeded():
    n = 200
    b = pd.DataFrame({
        "use": ["residential"] * 150 + ["office"] * 50,
        "footprint_m2": np.r_[np.full(199, 120.0), 0.0],
        "levels": np.r_[np.full(100, 2), np.full(100, 5)],
    })
    f1 = pv_fleet(b, share=0.25, seed=7)
    f2 = pv_fleet(b, share=0.25, seed=7)
    f3 = pv_fleet(b, share=0.25, seed=8)
    assert f1.adopters.size == round(0.25 * 199)
    np.testing.assert_array_equal(f1.kwp, f2.kwp)
    assert not np.array_equal(f1.kwp, f3.kwp)
    assert f1.kwp[199] == 0  # no footprint, no PV
    a = f1.adopters
    flat = a[a >= 100]
    assert (f1.orientation[flat] == 0).all()
    np.testing.assert_allclose(f1.kwp[flat], 120.0 * 0.5 * 0.2)
    pitched = a[a < 100]
    assert set(f1.orientation[pitched]) <= {1, 2, 3}
    np.testing.assert_allclose(f1.kwp[pitched], 120.0 * 0.4 * 0.2)
    assert pv_fleet(b, share=0.0, seed=7).adopters.size == 0
    assert f1.kwp.sum() < pv_fleet(b, share=0.5, seed=7).kwp.sum()
    assert n == len(b)


def test_fleet_output_is_kwp_times_profile():
    b = pd.DataFrame({"use": ["residential", "office", "retail"], "footprint_m2": [100.0, 500.0, 300.0]})
    f = pv_fleet(b, share=1.0, seed=1)
    idx = pd.date_range("2026-05-01 12:00", periods=4, freq="h")
    prof = clear_sky_kw_per_kwp(idx, **HEL)
    out = f.output_kw(prof)
    for i in range(3):
        np.testing.assert_allclose(out[i], f.kwp[i] * prof[f.orientation[i]], rtol=1e-6)
    np.testing.assert_allclose(f.output_kw_at(prof, 2), out[:, 2], rtol=1e-6)


def test_bad_share_and_site():
    b = pd.DataFrame({"use": ["office"], "footprint_m2": [10.0]})
    with pytest.raises(InputError, match="share"):
        pv_fleet(b, share=1.5, seed=0)
    with pytest.raises(InputError, match="lat/lon"):
        clear_sky_kw_per_kwp(pd.date_range("2026-01-01", periods=2, freq="h"), lat=95, lon=0)


def test_local_clock_with_daylight_saving_shifts_summer_noon():
    idx = pd.date_range("2026-06-21", periods=96, freq="15min") + pd.Timedelta(minutes=7.5)
    std = clear_sky_kw_per_kwp(idx, **HEL)[1]
    dst = clear_sky_kw_per_kwp(idx, **HEL, tz="Europe/Helsinki")[1]
    assert int(np.argmax(dst)) - int(np.argmax(std)) == 4  # one hour later on the clock
    np.testing.assert_allclose(dst[4:], std[:-4], atol=1e-9)
    jan = pd.date_range("2026-01-15", periods=96, freq="15min")
    np.testing.assert_allclose(clear_sky_kw_per_kwp(jan, **HEL, tz="Europe/Helsinki"),
                               clear_sky_kw_per_kwp(jan, **HEL), atol=1e-9)
