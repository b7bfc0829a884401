"""Energy and incident calibration recover known parameters from twin-generated observations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from citytwin.errors import InputError
from citytwin.rng import stream
from citytwin.twin.calibrate import (
    calibrate_energy,
    calibrate_incidents,
    incident_param_updates,
    meter_use_loads,
)
from citytwin.twin.observations import read_meters

TRUE_K = {"office": 0.6, "residential": 1.5, "retail": 1.2}


def _loads(twin) -> np.ndarray:
    """Use-shaped hourly profiles over one day (kW), scaled by floor area."""
    h = np.arange(24)
    shape = {
        "residential": 0.6 + 0.5 * np.exp(-((h - 19) ** 2) / 8) + 0.3 * np.exp(-((h - 7) ** 2) / 4),
        "office": 0.2 + 1.0 * ((h >= 8) & (h < 17)),
        "retail": 0.3 + 0.8 * ((h >= 10) & (h < 20)),
    }
    b = twin.buildings
    return np.stack([shape[u] * a / 100.0 for u, a in zip(b["use"], b["floor_area_m2"], strict=True)])


def _observed(twin, loads, seed):
    k = np.array([TRUE_K[u] for u in twin.buildings["use"]])
    true = loads * k[:, None]
    rows = []
    for t in ("t0", "t1"):
        sel = (twin.buildings["transformer"] == t).to_numpy()
        rows += [{"transformer": t, "time": h * 3600.0, "kw": true[sel, h].sum()} for h in range(24)]
    for bid in (0, 1, 2, 13, 14):
        rows += [{"building_id": bid, "time": h * 3600.0, "kw": true[bid, h]} for h in range(24)]
    df = pd.DataFrame(rows)
    df["kw"] *= 1 + 0.05 * stream(seed, "observation-noise").standard_normal(len(df))
    return read_meters(df, twin, duration_s=86400).table


def test_meter_use_loads_sums_buildings_behind_meters(twin):
    loads = np.ones((len(twin.buildings), 4))
    m = read_meters(pd.DataFrame({"transformer": ["t0", "t1"], "time": [0, 1800],
                                  "interval_s": [3600, 3600], "kw": [1, 1]}), twin).table
    X = meter_use_loads(twin, m, loads, step_s=3600.0)
    assert X.sum(axis=1).tolist() == [12.0, 12.0]
    assert X.loc[0, "residential"] == (twin.buildings.iloc[:12]["use"] == "residential").sum()
    with pytest.raises(InputError, match="extend past"):
        meter_use_loads(twin, m.assign(end_s=5 * 3600.0), loads, step_s=3600.0)


def test_energy_recovery_meets_ashrae14(twin):
    loads = _loads(twin)
    meters = _observed(twin, loads, seed=21)
    cal = calibrate_energy(twin, meters, loads, step_s=3600.0)
    # stated tolerance: every use multiplier within 5 % of the truth (5 % reading noise)
    for use, k in TRUE_K.items():
        assert cal.multipliers[use] == pytest.approx(k, rel=0.05)
    assert not cal.before["meets_ashrae14"]
    assert cal.after["meets_ashrae14"]
    assert abs(cal.after["nmbe_pct"]) < 2 and cal.after["cv_rmse_pct"] < 15
    assert cal.after["p"] == 3


def test_incident_rate_recovery(twin):
    expected = {"medical": 40.0, "fire": 2.0, "traffic": 5.0}
    true_k = {"medical": 1.25, "fire": 0.5, "traffic": 2.0}
    rng = stream(31, "incidents")
    days = 60  # two months of log against a model expecting `expected` per day
    n = {t: int(rng.poisson(expected[t] * true_k[t] * days)) for t in expected}
    log = pd.DataFrame({"type": [t for t in sorted(n) for _ in range(n[t])]})
    log["response_s"] = rng.gamma(9.0, 50.0, len(log))
    cal = calibrate_incidents(log, {t: v * days for t, v in expected.items()},
                              modelled_response_s=rng.gamma(9.0, 50.0, 500))
    # stated tolerance: 3 Poisson standard errors, sqrt(k / (mu * days))
    for t, k in true_k.items():
        assert cal.multipliers[t] == pytest.approx(k, abs=3 * np.sqrt(k / (expected[t] * days)))
    assert cal.counts["expected_after"].tolist() == pytest.approx(cal.counts["observed"].tolist())
    assert cal.response["ks_distance"] < 0.15

    class P:
        medical_per_resident_year = 0.12
        medical_per_job_year = 0.03
        fire_per_resident_year = 0.0015

    up = incident_param_updates(P(), {"medical": 2.0, "fire": 0.5})
    assert up == pytest.approx({"medical_per_resident_year": 0.24, "medical_per_job_year": 0.06,
                                "fire_per_resident_year": 0.00075})
