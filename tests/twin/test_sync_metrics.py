"""Fit metrics and estimators against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import sparse

from citytwin.errors import InputError
from citytwin.twin.calibrate import (
    adjust_od,
    cv_rmse,
    energy_fit,
    fit_incident_rates,
    fit_scale,
    fit_use_multipliers,
    geh,
    nmbe,
    response_fit,
    traffic_fit,
)


def test_geh_hand_values():
    # M=150, C=100: sqrt(2*2500/250) = sqrt(20); M=C: 0; M=0,C=0: 0; M=0,C=50: sqrt(100)=10
    g = geh([150, 100, 0, 0], [100, 100, 0, 50])
    assert g == pytest.approx([math.sqrt(20), 0.0, 0.0, 10.0])


def test_traffic_fit_share_and_criterion():
    obs = np.full(20, 400.0)
    mod = obs.copy()
    mod[:3] = 600.0  # GEH = sqrt(2*200^2/1000) = 8.94 on 3 of 20 -> 85 % exactly: fails (> 85 %)
    fit = traffic_fit(mod, obs)
    assert fit["share_geh_lt5"] == pytest.approx(0.85)
    assert fit["meets_dmrb"] is False
    mod[2] = 400.0
    assert traffic_fit(mod, obs)["meets_dmrb"] is True
    assert fit["geh_max"] == pytest.approx(math.sqrt(80))


def test_ashrae_g14_hand_values():
    y = np.array([10.0, 12.0, 14.0, 16.0])  # measured, mean 13
    yhat = np.array([11.0, 11.0, 15.0, 13.0])  # residuals y - yhat: -1, 1, -1, 3
    # p = 1: CV = 100 * sqrt(12 / 3) / 13 = 15.3846 %; NMBE = 100 * 2 / (3 * 13) = 5.1282 %
    assert cv_rmse(y, yhat) == pytest.approx(100 * 2 / 13)
    assert nmbe(y, yhat) == pytest.approx(200 / 39)
    # p = 0 gives the plain-mean forms
    assert cv_rmse(y, yhat, p=0) == pytest.approx(100 * math.sqrt(3) / 13)
    assert nmbe(y, yhat, p=0) == pytest.approx(100 * 2 / 52)
    fit = energy_fit(y, yhat)
    assert fit["meets_ashrae14"] is True and fit["p"] == 1
    assert energy_fit(y, yhat * 0.8)["meets_ashrae14"] is False  # NMBE > 10 %
    with pytest.raises(InputError, match="n > p"):
        cv_rmse([1.0], [1.0])


def test_response_fit_quantiles_and_ks():
    obs = np.arange(1, 11) * 60.0  # 60..600
    mod = obs + 60.0
    fit = response_fit(obs, mod)
    assert fit["p50_observed_s"] == pytest.approx(330.0)
    assert fit["p50_diff_s"] == pytest.approx(60.0)
    assert fit["ks_distance"] == pytest.approx(0.1)  # one step of 1/10 apart
    assert response_fit(obs, obs)["ks_distance"] == 0.0
    with pytest.raises(InputError):
        response_fit([], obs)


def test_fit_scale_and_errors():
    assert fit_scale([1, 2, 3], [2, 4, 6]) == pytest.approx(2.0)
    with pytest.raises(InputError, match="3 values"):
        fit_scale([1, 2, 3], [1, 2])
    with pytest.raises(InputError, match="NaN"):
        fit_scale([1, np.nan], [1, 2])


def test_adjust_od_recovers_identifiable_cells():
    # 3 cells, 3 counted links; link k sees cells (0), (0, 1), (1, 2): A is invertible
    A = sparse.csr_matrix(np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1]], dtype=float))
    truth = np.array([100.0, 300.0, 50.0])
    prior = np.array([80.0, 200.0, 80.0])
    res = adjust_od(prior, A, A @ truth, weight=1e-4)
    assert res.demand == pytest.approx(truth, rel=0.01)
    assert res.factor == pytest.approx(truth / prior, rel=0.01)
    # an uncounted cell stays at its prior
    A2 = sparse.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0]]))
    res2 = adjust_od([10.0, 7.0], A2, [20.0, 20.0], weight=0.01)
    assert res2.demand[1] == pytest.approx(7.0)
    # minimise 2 (g - 20)^2 / 20 + 0.01 (g - 10)^2 / 10  ->  g = (20 + 0.1) / 1.01
    assert res2.demand[0] == pytest.approx(20.1 / 1.01, rel=1e-4)


def test_use_multipliers_and_incident_rates():
    rng = np.random.default_rng(3)
    X = rng.uniform(1, 10, size=(50, 3))
    k = np.array([0.7, 1.4, 1.0])
    got = fit_use_multipliers(X, X @ k, uses=["residential", "office", "retail"])
    assert [got[u] for u in ("residential", "office", "retail")] == pytest.approx(k, rel=1e-6)
    assert fit_incident_rates({"fire": 6, "medical": 30}, {"fire": 3.0, "medical": 40.0}) == {
        "fire": 2.0, "medical": 0.75}
    with pytest.raises(InputError, match="expects none"):
        fit_incident_rates({"fire": 2}, {"fire": 0.0})


def test_counts_from_links_pro_rata():
    import pandas as pd

    from citytwin.twin.calibrate import counts_from_links

    links = pd.DataFrame({"edge_id": [3, 3, 3, 4], "time_s": [900.0, 1800.0, 2700.0, 900.0],
                          "volume": [10.0, 20.0, 30.0, 99.0]})
    counts = pd.DataFrame({"edge_id": [3, 3, 5], "start_s": [0.0, 450.0, 0.0],
                           "end_s": [1800.0, 1350.0, 900.0]})
    # [0, 1800): 10 + 20 = 30 veh in 0.5 h; [450, 1350): half of each = 15 veh in 0.25 h; 5: none
    assert counts_from_links(links, counts, interval_s=900.0).tolist() == [60.0, 60.0, 0.0]


def test_geh_properties():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    flows = st.floats(min_value=0, max_value=1e5, allow_nan=False)

    @settings(max_examples=50, deadline=None)
    @given(flows, flows, st.floats(min_value=0.01, max_value=100))
    def check(m, c, k):
        g = geh([m], [c])[0]
        assert g >= 0 and g == pytest.approx(geh([c], [m])[0])
        # GEH scales with the square root of the flow level (why it is only used on hourly flows)
        assert geh([k * m], [k * c])[0] == pytest.approx(math.sqrt(k) * g, rel=1e-9, abs=1e-9)

    check()


def test_fit_scale_is_the_ratio_of_totals_not_biased_by_busy_links():
    # truth: 1.15 x the modelled demand. The free-flow model puts too much on the one busy link
    # (congestion moves real traffic onto the parallel streets); the total is right.
    from citytwin.twin.calibrate import fit_scale_se

    rng = np.random.default_rng(3)
    modelled = np.array([2000.0] + [100.0] * 40)
    true_flow = 1.15 * modelled
    true_flow[0] -= 600.0  # diverted off the busy link ...
    true_flow[1:] += 600.0 / 40  # ... onto the parallel ones
    observed = rng.poisson(true_flow).astype(float)
    s, se = fit_scale_se(modelled, observed)
    assert s == pytest.approx(1.15, abs=0.02)
    assert fit_scale(modelled, observed) == s
    ls = float(modelled @ observed / (modelled @ modelled))  # the old estimator
    assert ls < 1.0  # biased low by the busy link
    assert 0 < se < 0.2 and abs(s - 1.15) < 3 * se
