"""Live replay: closures re-route the twin, ratios track the observations, forecasts improve."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from citytwin.errors import InputError
from citytwin.rng import stream
from citytwin.twin.calibrate import count_incidence, reweight_trips
from citytwin.twin.observations import read_closures, read_counts, read_meters
from citytwin.twin.sync import SyncTwin, make_feed, replay

CLOSE_AT = 8 * 3600.0


def _trips(twin, n=12000, seed=11):
    rng = stream(seed, "demand")
    nodes = np.array(sorted(twin.roads.nodes))
    o, d = rng.choice(nodes, n), rng.choice(nodes, n)
    keep = o != d
    return pd.DataFrame({"origin_node": o[keep], "dest_node": d[keep],
                         "depart_s": rng.uniform(7 * 3600, 9 * 3600, n)[keep]})


def _world_counts(twin, trips, edges, closed_edge):
    """What the street sensors see: 1.2x the modelled demand, the edge closed from 8:00."""
    truth = reweight_trips(trips, np.full(len(trips), 1.2), seed=12)
    bins = np.arange(7 * 3600, 10 * 3600, 900.0)
    grid = pd.DataFrame({"edge_id": np.repeat(edges, bins.size), "start_s": np.tile(bins, len(edges))})
    grid["end_s"] = grid["start_s"] + 900.0
    cost = np.array([twin.roads.edges[k]["travel_time"] for k in _keys(twin)])
    closed_cost = cost.copy()
    closed_cost[closed_edge] = np.inf
    before = truth[truth["depart_s"] < CLOSE_AT - 600]  # trips under way before the closure
    after = truth[truth["depart_s"] >= CLOSE_AT - 600]
    A0, c0 = count_incidence(twin, before, grid, cost=cost)
    A1, c1 = count_incidence(twin, after, grid, cost=closed_cost)
    exact = A0 @ c0["trips"].to_numpy(float) + A1 @ c1["trips"].to_numpy(float)
    grid["count"] = stream(13, "observation-noise").poisson(exact)
    return grid


def _keys(twin):
    keys = [None] * twin.roads.number_of_edges()
    for u, v, k, d in twin.roads.edges(keys=True, data=True):
        keys[d["edge_id"]] = (u, v, k)
    return keys


@pytest.fixture(scope="module")
def replayed(twin):
    G = twin.roads
    closed_edge = G.edges[1, 2, 0]["edge_id"]
    parallel = G.edges[5, 6, 0]["edge_id"]  # the next street north, same direction
    edges = sorted({closed_edge, parallel, G.edges[0, 1, 0]["edge_id"], G.edges[4, 5, 0]["edge_id"]})
    trips = _trips(twin)
    world = _world_counts(twin, trips, edges, closed_edge)
    counts = read_counts(world.rename(columns={"start_s": "start", "end_s": "end"}), twin)
    closures = read_closures(pd.DataFrame({"edge_id": [closed_edge], "start": [CLOSE_AT]}), twin)
    loads = 5.0 + 3.0 * np.sin(np.arange(24) / 24 * 2 * np.pi)[None, :] * np.ones((24, 1))
    meter_kw = 0.8 * loads[:12].sum(axis=0)  # transformer t0 feeds buildings 0..11
    meters = read_meters(pd.DataFrame({"transformer": "t0", "time": np.arange(7, 10) * 3600.0,
                                       "kw": meter_kw[7:10]}), twin)
    feed = make_feed(counts=counts, closures=closures, meters=meters)
    st = SyncTwin(twin, trips=trips, loads_kw=loads, load_step_s=3600.0)
    states = list(replay(feed, st, step_s=900.0, horizon_s=1800.0))
    return states, feed, closed_edge, parallel, st


def test_feed_is_time_ordered_and_every_record_is_replayed_once(replayed):
    states, feed, *_ = replayed
    times = [s.time for s in states]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert sum(len(s.observed) for s in states) == len(feed)
    for s in states:
        assert (s.observed["time_s"] <= s.time).all() and (s.observed["time_s"] > s.time - 900).all()


def test_closure_closes_the_road_and_reroutes(replayed):
    states, _, closed_edge, parallel, st = replayed
    before = [s for s in states if s.time < CLOSE_AT]
    after = [s for s in states if s.time >= CLOSE_AT]  # the closure is known at 8:00
    assert all(closed_edge not in s.closed_edges for s in before)
    assert all(closed_edge in s.closed_edges for s in after)
    sim_closed = pd.concat([s.simulated for s in after])
    sim_closed = sim_closed[(sim_closed["kind"] == "count") & (sim_closed["key"] == str(closed_edge))]
    assert (sim_closed["simulated"] == 0).all()
    # the street one block north carries the diverted trips: same bins, with vs without closure
    f = after[0].forecast
    f = f[(f["kind"] == "count") & (f["key"] == str(parallel))]
    assert len(f) == 2
    open_flow = [st.flow_vph(parallel, a, b, frozenset()) for a, b in zip(f["start_s"], f["end_s"], strict=True)]
    assert (f["simulated"].to_numpy() > np.array(open_flow)).all()


def test_ratios_track_observations_and_forecast_beats_model(replayed):
    states, *_ = replayed
    last = states[-1]
    assert last.ratios["load:t0"] == pytest.approx(0.8, rel=1e-9)
    busy = [v for k, v in last.ratios.items() if k.startswith("count:")]
    assert np.median(busy) == pytest.approx(1.2, abs=0.15)
    # forecast made at step i for the bins observed at step i+1 .. vs the plain model
    err_f, err_m = [], []
    for cur, nxt in zip(states[:-1], states[1:], strict=True):
        obs = nxt.simulated[nxt.simulated["kind"] == "count"]
        fc = cur.forecast[cur.forecast["kind"] == "count"]
        m = obs.merge(fc, on=["kind", "key", "start_s", "end_s"], suffixes=("", "_fc"))
        err_f += list(np.abs(m["value_fc"] - m["value"]))
        err_m += list(np.abs(m["simulated"] - m["value"]))
    assert len(err_f) > 20
    assert np.mean(err_f) < 0.8 * np.mean(err_m)
    assert "traffic" in last.fit and last.fit["traffic"]["n"] > 0


def test_incident_travel_time_reacts_to_closures(twin):
    import networkx as nx

    st = SyncTwin(twin)
    b = int(next(i for i in twin.buildings.index if twin.buildings.loc[i, "road_node"] != 0))
    node = twin.buildings.loc[b, "road_node"]
    free = st.travel_s(b, frozenset())
    assert free == pytest.approx(nx.shortest_path_length(twin.roads, 0, node, weight="travel_time"))
    G = twin.roads
    into = frozenset(d["edge_id"] for _, _, d in G.in_edges(node, data=True))
    assert st.travel_s(b, into) == np.inf
    one = frozenset(list(into)[:1])
    assert st.travel_s(b, one) >= free


def test_replay_rejects_bad_feed(twin):
    with pytest.raises(InputError, match="missing columns"):
        list(replay(pd.DataFrame({"time_s": [1.0]}), SyncTwin(twin)))


def test_states_table_and_same_inputs_same_states(replayed, twin):
    from citytwin.twin.sync import states_table

    states, feed, _, _, st = replayed
    tab = states_table(states)
    assert set(tab["role"]) == {"observed", "forecast"}
    assert tab["state_time"].is_monotonic_increasing
    assert (tab["role"] == "observed").sum() == len(feed)
    again = SyncTwin(twin, trips=st.trips, loads_kw=st.loads_kw, load_step_s=3600.0)
    pd.testing.assert_frame_equal(
        states_table(list(replay(feed, again, step_s=900.0, horizon_s=1800.0))), tab)


def test_building_load_scale_from_ratios(twin):
    st = SyncTwin(twin)
    scale = st.building_load_scale({"load:t0": 0.8, "load:b3": 1.5, "count:7": 2.0})
    b = twin.buildings
    assert scale[3] == 1.5
    t0 = (b["transformer"] == "t0").to_numpy()
    t0[3] = False
    assert (scale[t0] == 0.8).all()
    assert (scale[(b["transformer"] == "t1").to_numpy()] == 1.0).all()
