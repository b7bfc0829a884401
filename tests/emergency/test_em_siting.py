"""Coverage map (one multi-source Dijkstra) and station siting (spopt vs brute force)."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from citytwin.emergency import EmergencyParams, coverage_map, run_emergency, site_stations
from citytwin.emergency.siting import (
    brute_force_lscp,
    brute_force_mclp,
    solve_lscp,
    solve_mclp,
)
from citytwin.errors import InputError
from citytwin.rng import stream


def test_coverage_equals_nearest_station_by_networkx(city) -> None:
    cov = coverage_map(city, kinds=("fire_station", "ambulance_station"))
    stations = city.facilities[city.facilities["kind"].isin(["fire_station", "ambulance_station"])]
    ref = {sid: nx.single_source_dijkstra_path_length(city.roads, n, weight="travel_time")
           for sid, n in stations["road_node"].items()}
    for bid, row in city.buildings.iloc[::7].iterrows():
        times = {sid: d[row["road_node"]] for sid, d in ref.items()}
        best = min(times.values())
        assert cov.loc[bid, "travel_s"] == pytest.approx(best)
        assert times[cov.loc[bid, "station_id"]] == pytest.approx(best)


def test_coverage_with_closed_and_added_stations(city) -> None:
    base = coverage_map(city)
    closed = coverage_map(city, closed=(0,))
    assert (closed["travel_s"] >= base["travel_s"]).all() and (closed["station_id"] == 1).all()
    added = coverage_map(city, extra_nodes=(city.buildings.loc[0, "road_node"],))
    assert added.loc[0, "travel_s"] == 0 and added.loc[0, "station_id"] == -1
    with pytest.raises(InputError, match="extra station 0"):
        coverage_map(city, extra_nodes=(123456,))


@pytest.mark.parametrize("trial", range(4))
def test_spopt_mclp_equals_brute_force(trial: int) -> None:
    rng = stream(trial, "test-siting")
    cost = rng.uniform(0, 600, size=(14, 7))
    w = rng.integers(1, 100, size=14).astype(float)
    for p in (1, 2, 3):
        chosen = solve_mclp(cost, w, radius=240.0, p=p)
        best, sols = brute_force_mclp(cost, w, radius=240.0, p=p)
        assert len(chosen) == p
        assert w[(cost[:, chosen] <= 240.0).any(axis=1)].sum() == pytest.approx(best)
        assert tuple(sorted(chosen)) in sols
    # with a predefined facility the answer is the best p-subset containing it
    chosen = solve_mclp(cost, w, radius=240.0, p=2, predefined=[0])
    assert 0 in chosen
    a = cost <= 240.0
    best = max(w[a[:, [0, j]].any(axis=1)].sum() for j in range(1, 7))
    assert w[a[:, chosen].any(axis=1)].sum() == pytest.approx(best)


@pytest.mark.parametrize("trial", range(3))
def test_spopt_lscp_equals_brute_force(trial: int) -> None:
    rng = stream(trial, "test-lscp")
    cost = rng.uniform(0, 500, size=(12, 8))
    cost[np.arange(12), np.arange(12) % 8] = 10.0  # every client coverable
    chosen = solve_lscp(cost, radius=200.0)
    k, sols = brute_force_lscp(cost, radius=200.0)
    assert len(chosen) == k and tuple(sorted(chosen)) in sols


def test_site_stations_improves_coverage_and_feeds_the_engine(city) -> None:
    res = site_stations(city, new=1, radius_s=120.0, candidate_spacing_m=300.0)
    assert len(res.proposed) == 1
    assert res.covered_after_share > res.covered_before_share
    # brute force over the same candidates: no single site does better
    specs = res.station_specs("fire_station")
    eng = run_emergency(city, EmergencyParams(extra_stations=specs, rate_multiplier=5.0), seed=2)
    assert any(u.home_station == -1 for u in eng.units)
    cov_after = coverage_map(city, extra_nodes=tuple(res.proposed["road_node"]))
    cov_before = coverage_map(city)
    assert cov_after["travel_s"].mean() < cov_before["travel_s"].mean()
    lscp = site_stations(city, new=0, method="lscp", radius_s=150.0, candidate_spacing_m=300.0)
    assert lscp.covered_after_share == pytest.approx(1.0)
    with pytest.raises(InputError, match="new = 0"):
        site_stations(city, new=0)
