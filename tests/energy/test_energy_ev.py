from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from citytwin.energy.ev import ChargingState, EVAssumptions, synthetic_ev_arrivals
from citytwin.errors import InputError

START = pd.Timestamp("2026-07-01")
A = EVAssumptions(soc_start_range=(0.5, 0.5))  # fixed start SoC for analytic checks


def _state(policy, n=3, trafo=None, a=A):
    return ChargingState(building_ids=np.arange(n), building_trafo=np.zeros(n, int) if trafo is None
                         else np.asarray(trafo), policy=policy, seed=1, start=START, assumptions=a)


def _arr(rows):
    return pd.DataFrame(rows, columns=["vehicle_id", "building_id", "arrive_s", "distance_km", "purpose"])


def _run(state, steps=96, dt=900.0, headroom=None):
    return np.array([state.step(k * dt, dt, headroom) for k in range(steps)])  # (steps, B)


def test_uncontrolled_home_charging_delivers_need_at_full_power():
    s = _state("uncontrolled")
    s.add(_arr([(1, 0, 18 * 3600.0, 50.0, "home")]))
    need = (0.9 - (0.5 - 50 * 0.18 / 60)) * 60  # kWh
    p = _run(s)[:, 0]
    assert p[: 18 * 4].max() == 0
    assert p[18 * 4] == pytest.approx(11.0)
    assert p.sum() * 0.25 == pytest.approx(need)
    assert s.delivered_kwh() == pytest.approx(need)
    assert s.unmet_kwh(86400) == 0


def test_delayed_policy_waits_for_off_peak():
    s = _state("delayed")
    s.add(_arr([(1, 0, 18 * 3600.0, 50.0, "home")]))
    p = _run(s)[:, 0]
    assert p[: 22 * 4].max() == 0
    assert p[22 * 4] == pytest.approx(11.0)
    assert s.sessions()["plug_in_s"].iloc[0] == 22 * 3600.0


def test_smart_policy_respects_transformer_headroom():
    s = _state("smart", n=3, trafo=[0, 0, 1])
    s.add(_arr([(1, 0, 18 * 3600.0, 100.0, "home"), (2, 1, 18 * 3600.0, 100.0, "home"),
                (3, 2, 18 * 3600.0, 100.0, "home")]))
    p = _run(s, headroom=np.array([5.0, 50.0]))
    on_t0 = p[:, 0] + p[:, 1]
    assert on_t0.max() == pytest.approx(5.0)
    assert p[18 * 4, 0] == pytest.approx(p[18 * 4, 1])  # shared in proportion to requests
    assert p[18 * 4, 2] == pytest.approx(11.0)


def test_work_and_other_purposes_and_soc_chaining():
    a0 = EVAssumptions(soc_start_range=(0.5, 0.5), work_charger_share=0.0)
    s = _state("uncontrolled", a=a0)
    n = s.add(_arr([(1, 0, 8 * 3600.0, 20.0, "work"), (1, 1, 12 * 3600.0, 5.0, "shop"),
                    (1, 2, 17 * 3600.0, 20.0, "home")]))
    assert n == 1  # only the home arrival charges
    soc = 0.5 - (20 + 5 + 20) * 0.18 / 60
    assert s.sessions()["soc_arrival"].iloc[0] == pytest.approx(soc)
    a1 = EVAssumptions(soc_start_range=(0.5, 0.5), work_charger_share=1.0)
    s1 = _state("uncontrolled", a=a1)
    assert s1.add(_arr([(1, 0, 8 * 3600.0, 20.0, "work")])) == 1
    assert s1.sessions()["plug_out_s"].iloc[0] == 16 * 3600.0


def test_bad_arrivals_named():
    s = _state("uncontrolled")
    with pytest.raises(InputError) as e:
        s.add(_arr([(1, 99, 100.0, 5.0, "home"), (2, 0, -5.0, 5.0, "home")]))
    msg = str(e.value)
    assert "building_id [99]" in msg and "'arrive_s'" in msg
    with pytest.raises(InputError, match="policy"):
        _state("greedy")


def test_start_soc_is_seeded_per_vehicle_not_per_order():
    def sessions(order):
        s = ChargingState(building_ids=np.arange(3), building_trafo=np.zeros(3, int),
                          policy="uncontrolled", seed=5, start=START)
        rows = [(v, v, 18 * 3600.0, 10.0, "home") for v in order]
        s.add(_arr(rows))
        return s.sessions().set_index("vehicle_id")["soc_arrival"].sort_index()

    pd.testing.assert_series_equal(sessions([0, 1, 2]), sessions([2, 0, 1]))


def test_synthetic_arrivals_deterministic_and_scaled():
    b = pd.DataFrame({"use": ["residential"] * 50 + ["office"] * 10, "population": [40] * 60})
    a1 = synthetic_ev_arrivals(b, ev_share=0.5, seed=3)
    a2 = synthetic_ev_arrivals(b, ev_share=0.5, seed=3)
    pd.testing.assert_frame_equal(a1, a2)
    assert set(a1["building_id"]) <= set(range(50))
    assert 0.6 * 400 < len(a1) < 1.4 * 400  # 50 × 40 × 0.4 × 0.5 expected
    assert len(synthetic_ev_arrivals(b, ev_share=0.0, seed=3)) == 0


def test_weighted_arrivals_scale_energy_and_power():
    s1, s10 = _state("uncontrolled"), _state("uncontrolled")
    rows = [(1, 0, 18 * 3600.0, 50.0, "home")]
    s1.add(_arr(rows))
    s10.add(_arr(rows), weight=10.0)
    p1, p10 = _run(s1)[:, 0], _run(s10)[:, 0]
    np.testing.assert_allclose(p10, 10 * p1)
    assert s10.sessions()["vehicles"].iloc[0] == 10.0
    with pytest.raises(InputError, match="weight"):
        s1.add(_arr(rows), weight=0.0)
