"""Erlang-B and the hypercube model, analytic and against the simulated engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from citytwin.emergency import EmergencyParams, erlang_b, erlang_c, hypercube, run_emergency
from citytwin.emergency._grid import grid_city
from citytwin.rng import stream


def test_erlang_b_known_values() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(3, 2.0) == pytest.approx(4 / 19)  # (8/6) / (1 + 2 + 2 + 8/6)
    assert erlang_b(10, 5.0) == pytest.approx(0.018384, abs=1e-6)


def test_erlang_c_known_value() -> None:
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho


def test_hypercube_total_matches_erlang() -> None:
    lam = [0.5, 1.0, 0.7, 0.3]
    prefs = [[0, 1, 2], [1, 0, 2], [2, 1, 0], [2, 0, 1]]
    hc = hypercube(lam, prefs, mu=1.0, n_servers=3)
    a = sum(lam)
    b = erlang_b(3, a)
    assert hc["p"].sum() == pytest.approx(1.0)
    assert hc["all_busy"] == pytest.approx(b)
    assert hc["busy"].sum() == pytest.approx(a * (1 - b))  # carried load
    assert hc["busy"][1] > hc["busy"][0]  # the busiest atom's first choice works most


def test_simulated_busy_fractions_match_hypercube() -> None:
    """Stationary units, no travel, exponential service, lost calls, fixed seed, long run."""
    n = 5
    # three ambulance stations, one BLS unit each; the fire stations host nothing
    city = grid_city(n, stations={"ambulance_station": [0, 12, 24]}, buildings_per_node=1, seed=4)
    atoms = [2, 10, 13, 22]  # building ids == node ids here (one building per node)
    weights = np.array([0.2, 0.3, 0.35, 0.15])
    mu = 1.0 / 1200.0
    lam_total = 2.0 * mu  # offered load 2 Erlang on 3 units
    n_calls = 20_000
    rng = stream(11, "test-arrivals")
    times = np.cumsum(rng.exponential(1 / lam_total, size=n_calls))
    atom = rng.choice(len(atoms), size=n_calls, p=weights)
    log = pd.DataFrame({"time_s": times, "type": "medical", "priority": 2,
                        "building_id": np.array(atoms)[atom]})
    params = EmergencyParams(
        units_per_station={"fire_station": {}, "ambulance_station": {"bls": 1}},
        stationary_units=True, queue_calls=False, on_scene_cv=1.0,
        on_scene_mean_s={"medical": 1200.0, "fire": 1200.0, "traffic": 1200.0})
    duration = float(times[-1]) + 1.0
    eng = run_emergency(city, params, seed=5, incidents=log, duration_s=duration,
                        step_s=duration)
    t = eng.tables()
    # preference lists from the same network travel times the dispatcher uses
    arr = city.road_arrays
    from citytwin.network.routing import travel_times
    stations = [0, 12, 24]
    tt = travel_times(arr, stations)
    prefs = [sorted(range(3), key=lambda k, a=a: (tt[k, a], k)) for a in atoms]
    hc = hypercube(lam_total * weights, prefs, mu=mu, n_servers=3)
    units = t["units"].sort_values("home_station")
    sim_busy = units["utilisation"].to_numpy()
    assert np.all(np.abs(sim_busy - hc["busy"]) < 0.02), (sim_busy, hc["busy"])
    lost = (t["incidents"]["status"] == "lost").mean()
    assert abs(lost - hc["all_busy"]) < 0.015
    assert hc["all_busy"] == pytest.approx(erlang_b(3, 2.0))
    # the simulation is not trivially matching: preferences make the busy fractions unequal
    assert np.ptp(hc["busy"]) > 0.05


def test_queued_calls_match_erlang_c() -> None:
    """Same stationary setup but calls queue (FIFO): share waiting and mean wait = M/M/3."""
    city = grid_city(3, stations={"ambulance_station": [0, 4, 8]}, buildings_per_node=1, seed=4)
    mu, lam = 1.0 / 1200.0, 2.0 / 1200.0
    n_calls = 20_000
    rng = stream(12, "test-arrivals")
    times = np.cumsum(rng.exponential(1 / lam, size=n_calls))
    log = pd.DataFrame({"time_s": times, "type": "medical", "priority": 2,
                        "building_id": rng.integers(0, 9, size=n_calls)})
    params = EmergencyParams(
        units_per_station={"fire_station": {}, "ambulance_station": {"bls": 1}},
        stationary_units=True, queue_calls=True, on_scene_cv=1.0,
        on_scene_mean_s={"medical": 1200.0, "fire": 1200.0, "traffic": 1200.0})
    duration = float(times[-1]) + 1.0
    inc = run_emergency(city, params, seed=6, incidents=log, duration_s=duration,
                        step_s=duration).tables()["incidents"]
    served = inc[inc["status"] == "served"]
    assert len(served) > 0.99 * n_calls
    c = erlang_c(3, 2.0)
    assert abs((served["queued_s"] > 0).mean() - c) < 0.03
    wq = c / (3 * mu - lam)
    assert abs(served["queued_s"].mean() - wq) < 0.12 * wq
