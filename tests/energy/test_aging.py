"""IEEE C57.91 hot spot and aging: analytic checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from citytwin.energy.aging import (
    ThermalParams,
    TransformerAging,
    aging_acceleration,
    equivalent_aging,
    hot_spot_series,
    hot_spot_steady,
)
from citytwin.errors import InputError


def test_faa_is_one_at_110c_and_follows_arrhenius():
    assert aging_acceleration(110.0) == pytest.approx(1.0, abs=1e-12)
    assert aging_acceleration(120.0) == pytest.approx(math.exp(15000 / 383 - 15000 / 393))
    assert 2.0 < aging_acceleration(117.0) < 2.2  # ~7 K doubles the aging rate
    assert aging_acceleration(98.0) < 0.3


def test_constant_110c_ages_one_day_per_day():
    th = np.full((96, 2), 110.0)
    assert equivalent_aging(th, 900.0) == pytest.approx([1.0, 1.0], abs=1e-12)
    tr = TransformerAging(["t0"])
    # rated load at 30 °C ambient is a 110 °C hot spot in steady state (55 + 25 + 30)
    for _ in range(96):
        th = tr.update(np.array([100.0]), 30.0, 900.0)
        assert th[0] == pytest.approx(110.0)
    row = tr.table().iloc[0]
    assert row["day"] == 0 and row["f_eqa"] == pytest.approx(1.0)
    assert row["loss_of_life_h"] == pytest.approx(24.0)
    assert row["loss_of_life_pct"] == pytest.approx(24 / 180_000 * 100)


def test_steady_state_formula():
    p = ThermalParams()
    assert hot_spot_steady(1.0, 30.0) == pytest.approx(110.0)
    k = 1.3
    expect = 20 + 55 * ((k * k * 5 + 1) / 6) ** 0.8 + 25 * k ** 1.6
    assert hot_spot_steady(k, 20.0, p) == pytest.approx(expect)
    assert hot_spot_steady(0.0, 20.0) == pytest.approx(20 + 55 * (1 / 6) ** 0.8)
    odaf = ThermalParams(cooling="ODAF")
    assert hot_spot_steady(k, 20.0, odaf) == pytest.approx(20 + 55 * (k * k * 5 + 1) / 6 + 25 * k ** 2)


def test_transient_is_exponential_and_step_independent():
    p = ThermalParams()
    k = np.r_[np.full(4, 0.5), np.full(20, 1.4)].reshape(-1, 1)
    th15 = hot_spot_series(k, 25.0, step_s=900.0, params=p)
    k1 = np.repeat(k, 15, axis=0)
    th1 = hot_spot_series(k1, 25.0, step_s=60.0, params=p)
    np.testing.assert_allclose(th15[:, 0], th1[14::15, 0], rtol=1e-12)
    # rises monotonically toward the new steady state, below it
    after = th15[4:, 0]
    assert np.all(np.diff(after) > 0) and after[-1] < hot_spot_steady(1.4, 25.0)
    # top-oil part after one time constant: 63.2 % of the step
    to_lo = 55 * ((0.25 * 5 + 1) / 6) ** 0.8
    to_hi = 55 * ((1.96 * 5 + 1) / 6) ** 0.8
    n_tau = int(180 * 60 / 900)  # 12 steps = 180 min
    got_to = th15[3 + n_tau, 0] - 25 - 25 * 1.4 ** 1.6  # winding settled (tau 4 min << 180 min)
    assert got_to == pytest.approx(to_hi + (to_lo - to_hi) * math.exp(-1), rel=1e-6)


def test_days_are_split():
    tr = TransformerAging(["a", "b"])
    for _ in range(48):  # two days of hourly steps, b overloaded
        tr.update(np.array([50.0, 130.0]), 20.0, 3600.0)
    t = tr.table()
    assert list(t.day) == [0, 0, 1, 1]
    a, b = t[t.asset_id == "a"], t[t.asset_id == "b"]
    assert (a.f_eqa < 0.05).all() and (b.f_eqa > 1).all()
    assert (b.max_hot_spot_c > 110).all()


def test_bad_input():
    with pytest.raises(InputError, match="negative load factor"):
        hot_spot_steady(-0.5, 20.0)
    with pytest.raises(InputError, match="wrong units"):
        hot_spot_steady(1.0, 300.0)
    with pytest.raises(ValueError, match="cooling"):
        ThermalParams(cooling="XYZ")
    tr = TransformerAging(["a"])
    with pytest.raises(InputError, match="shape"):
        tr.update(np.array([1.0, 2.0]), 20.0, 900.0)
    with pytest.raises(ValueError, match="extra"):
        ThermalParams(tau_oil=3)
