"""Dispatch engine: invariants, determinism, coupling to congestion, closures and outages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from citytwin.emergency import (
    UNIT_STATES,
    EmergencyEngine,
    EmergencyParams,
    EmergencyUnit,
    run_emergency,
)
from citytwin.emergency._grid import grid_city
from citytwin.engine import StandaloneModel
from citytwin.errors import InputError
from citytwin.network.routing import travel_times

BUSY = EmergencyParams(rate_multiplier=40.0)


@pytest.fixture(scope="module")
def busy_run(city):
    return run_emergency(city, BUSY, seed=3)


def test_response_never_beats_freeflow_plus_turnout(city, busy_run) -> None:
    t = busy_run.tables()
    d, inc = t["dispatches"], t["incidents"]
    assert len(d) > 30 and (inc["status"] == "served").mean() > 0.9
    assert (d["travel_s"] >= d["freeflow_s"] - 1e-6).all()
    # the free-flow time from the origin is the true network shortest path
    arr = city.road_arrays
    pos = {n: i for i, n in enumerate(arr.node_ids.tolist())}
    node_of = dict(zip(inc["incident_id"], inc["node"], strict=True))
    for row in d.head(20).itertuples():
        sp = travel_times(arr, [pos[row.origin_node]])[0, pos[node_of[row.incident_id]]]
        assert row.freeflow_s >= sp - 1e-6
    served = inc[inc["status"] == "served"]
    first = d.sort_values("arrive_s").drop_duplicates("incident_id").set_index("incident_id")
    lower = first.loc[served["incident_id"], ["turnout_s", "freeflow_s"]].sum(axis=1).to_numpy()
    assert (served["response_s"].to_numpy() >= lower - 1e-6).all()
    np.testing.assert_allclose(
        served["response_s"], served[["queued_s", "turnout_s", "travel_s"]].sum(axis=1))


def test_units_are_mesa_agents_with_valid_states(busy_run) -> None:
    units = busy_run.units
    assert all(isinstance(u, EmergencyUnit) for u in units)
    assert {u.state for u in units} <= set(UNIT_STATES)
    t = busy_run.tables()["units"]
    assert t["utilisation"].between(0, 1).all() and t["calls"].sum() == len(
        busy_run.tables()["dispatches"])


def test_same_seed_same_tables_any_sync_step(city, busy_run) -> None:
    again = run_emergency(city, BUSY, seed=3, step_s=600.0)
    for name, df in busy_run.tables().items():
        if name == "timeseries":  # sampled at each sync step: differs by design
            continue
        if name == "units":
            df, other = df.drop(columns="state"), again.tables()[name].drop(columns="state")
        else:
            other = again.tables()[name]
        pd.testing.assert_frame_equal(df, other)
    other_seed = run_emergency(city, BUSY, seed=4).tables()["incidents"]
    assert not other_seed["time_s"].equals(busy_run.tables()["incidents"]["time_s"])


def test_congestion_slows_by_the_priority_share(city) -> None:
    # calls 3 h apart: every unit is home again, so the same units go in both runs
    log = pd.DataFrame({"time_s": [3 * 3600.0 * k for k in range(1, 8)], "type": "fire",
                        "building_id": [int(b) for b in range(0, 70, 10)]})
    p = EmergencyParams(congestion_share=0.3, turnout_cv=0.0)
    key = ["incident_id", "requirement"]
    free = run_emergency(city, p, seed=1, incidents=log).tables()["dispatches"].sort_values(key)
    slow = run_emergency(city, p, seed=1, incidents=log,
                         link_times=city.road_arrays.freeflow_s * 3.0).tables()["dispatches"]
    slow = slow.sort_values(key)
    assert slow["unit_id"].tolist() == free["unit_id"].tolist() and free["travel_s"].sum() > 0
    # every link 3x slower; emergency vehicles feel 30 % of the extra 2x -> factor 1.6
    np.testing.assert_allclose(slow["travel_s"], free["travel_s"] * 1.6)
    np.testing.assert_allclose(slow["freeflow_s"], free["freeflow_s"])


def test_closures_lengthen_responses(city) -> None:
    log = pd.DataFrame({"time_s": [3 * 3600.0 * k for k in range(1, 8)], "type": "fire",
                        "building_id": list(range(0, 70, 10))})
    p = EmergencyParams(turnout_cv=0.0)
    base = run_emergency(city, p, seed=1, incidents=log).tables()["incidents"]
    arr = city.road_arrays
    station_pos = arr.node_pos(city.facilities.loc[0, "road_node"])
    out_edges = [int(e) for e in np.flatnonzero(arr.edge_from == station_pos)]
    # leave the station one way out
    p_closed = p.model_copy(update={"closed_edges": tuple(out_edges[1:])})
    closed = run_emergency(city, p_closed, seed=1, incidents=log).tables()["incidents"]
    assert (closed["response_s"] >= base["response_s"] - 1e-9).all()
    assert closed["response_s"].sum() > base["response_s"].sum()
    with pytest.raises(InputError, match="closed_edges"):
        run_emergency(city, EmergencyParams(closed_edges=(10**6,)), seed=1)


def test_queue_and_lost_calls(city) -> None:
    log = pd.DataFrame({"time_s": [100.0, 101.0, 102.0, 103.0], "type": "fire",
                        "building_id": [0, 1, 2, 3]})
    one = {"fire_station": {"engine": 1}, "ambulance_station": {}}
    p = EmergencyParams(units_per_station=one, closed_stations=(1,))
    q = run_emergency(city, p, seed=1, incidents=log).tables()["incidents"]
    assert (q["status"] == "served").all()
    assert (q["queued_s"].iloc[1:] > 1000).all() and q["queued_s"].iloc[0] == 0
    assert q["response_s"].is_monotonic_increasing
    lost = run_emergency(city, p.model_copy(update={"queue_calls": False}), seed=1,
                         incidents=log)
    li = lost.tables()["incidents"]
    assert li["status"].tolist() == ["served", "lost", "lost", "lost"]
    assert lost.kpis()["calls_lost_n"] == 3


def test_medical_transport_goes_to_hospital(city) -> None:
    log = pd.DataFrame({"time_s": [100.0], "type": ["medical"], "priority": [1],
                        "building_id": [0]})
    p = EmergencyParams(transport_prob={"p1": 1.0, "p2": 1.0})
    eng = EmergencyEngine(StandaloneModel(city, seed=1, duration_s=86400.0), p, incidents=log)
    eng.advance(800.0)
    u = next(u for u in eng.units if u.unit_type == "als")
    assert u.state in ("on_scene", "dispatched")
    eng.advance(100.0 + 1200 * 0.4 + 1)  # still the same window: nothing moves backwards
    eng.advance(86400.0)
    assert eng.tables()["incidents"].loc[0, "status"] == "served"
    assert eng._records[0].get("transported") is True
    assert u.state == "available" and u.pos_node == u.home_pos


def test_outage_raises_incident_rates(city) -> None:
    n = len(city.buildings)

    class Energy:
        def unsupplied_buildings(self) -> np.ndarray:
            return np.ones(n, dtype=bool)

    def calls(energy, m):
        model = StandaloneModel(city, seed=5, duration_s=7 * 86400.0)
        model.energy = energy
        eng = EmergencyEngine(model, EmergencyParams(rate_multiplier=10.0,
                                                     outage_rate_multiplier=m))
        eng.advance(model.duration_s)
        return len(eng.tables()["incidents"]), eng.n_thinned

    normal, thinned = calls(None, 3.0)
    dark, none_thinned = calls(Energy(), 3.0)
    assert none_thinned == 0 and dark == normal + thinned
    assert 2.4 < dark / normal < 3.6  # the multiplier, within Poisson noise


def test_zones_and_move_up(city) -> None:
    z = run_emergency(city, EmergencyParams(rate_multiplier=40.0, dispatch="zones"), seed=3)
    c = run_emergency(city, EmergencyParams(rate_multiplier=40.0), seed=3)
    assert len(z.tables()["incidents"]) == len(c.tables()["incidents"])
    zone = z._zone_station("engine")
    assert set(np.unique(zone)) == {0, 1}
    mu = run_emergency(city, EmergencyParams(
        rate_multiplier=40.0, move_up=True,
        units_per_station={"fire_station": {"bls": 2}, "ambulance_station": {"bls": 1}}), seed=3)
    assert mu.n_moveups > 0
    assert (mu.tables()["incidents"]["status"] == "served").mean() > 0.9


def test_kpis_are_flat_floats(busy_run) -> None:
    k = busy_run.kpis()
    assert all(isinstance(v, float) for v in k.values())
    assert k["response_p50_s"] <= k["response_p90_s"]
    assert k["coverage_within_240s_share"] == 1.0 and 0 < k["coverage_p90_s"] <= 240.0
    ts = busy_run.tables()["timeseries"]
    assert set(ts["series"]) == {"units_busy_n", "queue_n"} and len(ts) == 2 * 24
    assert 0 <= k["ems_within_539s_share"] <= 1
    assert k["calls_n"] == k["calls_served_n"] + k["calls_lost_n"] + k["calls_unserved_n"] + k[
        "calls_open_n"]


def test_transport_to_the_nearest_hospital_along_roads() -> None:
    c = grid_city(6, stations={"ambulance_station": [0], "hospital": [5, 30]}, seed=5)
    log = pd.DataFrame({"time_s": [100.0], "type": ["medical"], "priority": [1],
                        "building_id": [int(c.buildings.index[c.buildings["road_node"] == 25][0])]})
    p = EmergencyParams(transport_prob={"p1": 1.0, "p2": 1.0}, on_scene_cv=0.0, turnout_cv=0.0)
    eng = EmergencyEngine(StandaloneModel(c, seed=1, duration_s=86400.0), p, incidents=log)
    eng.advance(1000.0)
    d = eng.tables()["dispatches"].iloc[0]
    leave = d["arrive_s"] + 1200.0
    assert d["arrive_s"] == pytest.approx(100.0 + 48.0 + 5 * 36.0) and leave > 1000.0
    eng.advance(leave + 1.0)
    u = eng.units[int(d["unit_id"])]
    assert u.state == "transporting"
    nodes, times = u.route
    where = eng.positions().set_index("unit_id").loc[u.unit_id]
    assert where["state"] == "transporting" and where["node"] in set(nodes.tolist())
    assert where["x"] == c.roads.nodes[where["node"]]["x"]
    assert int(nodes[0]) == 25 and int(nodes[-1]) == 30  # node 30 is 2 blocks away, node 5 is 8
    arr = c.road_arrays
    pairs = set(zip(arr.edge_from.tolist(), arr.edge_to.tolist(), strict=True))
    assert all((int(a), int(b)) in pairs for a, b in zip(nodes[:-1], nodes[1:], strict=True))
    assert times[-1] - times[0] == pytest.approx(72.0)  # two 400 m blocks at 40 km/h


@pytest.mark.parametrize("mode", [
    {"dispatch": "zones"},
    {"move_up": True, "units_per_station": {"fire_station": {"engine": 1, "bls": 2},
                                            "ambulance_station": {"als": 1}}},
    {"congestion_share": 1.0},
])
def test_invariant_holds_in_every_dispatch_mode(city, mode) -> None:
    lt = city.road_arrays.freeflow_s * np.where(np.arange(city.road_arrays.n_edges) % 3, 1.0, 4.0)
    eng = run_emergency(city, EmergencyParams(rate_multiplier=60.0, **mode), seed=9,
                        link_times=lt if "congestion_share" in mode else None, step_s=900.0)
    t = eng.tables()
    d, inc = t["dispatches"], t["incidents"]
    assert len(d) > 50
    assert (d["travel_s"] >= d["freeflow_s"] - 1e-6).all()
    assert (d["turnout_s"] >= 0).all() and (d["queued_s"] >= 0).all()
    served = inc[inc["status"] == "served"]
    assert (served["response_s"] >= served["turnout_s"] + served["travel_s"] - 1e-6).all()
    if "congestion_share" in mode:
        assert (d["travel_s"] > d["freeflow_s"] + 1e-6).any()
    if mode.get("move_up"):
        assert eng.n_moveups > 0
