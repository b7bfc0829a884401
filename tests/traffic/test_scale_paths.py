"""The scale work of issue 16 keeps results bit for bit: the gravity choice without an
(origins x buildings) array, and EV arrivals' route lengths from an incrementally extended sum."""

from __future__ import annotations

import numpy as np

from citytwin import examples
from citytwin.fleet import Fleet
from citytwin.network.routing import travel_times
from citytwin.traffic import run_traffic
from citytwin.traffic.demand import _choose
from citytwin.traffic.outputs import route_lengths
from citytwin.traffic.params import TrafficParams


def _dense_choose(rng, origins, attraction, dest_pos, arrays, beta_per_min, batch=128):
    """The straightforward form: weights per (origin, building), cumsum, searchsorted."""
    out = np.full(origins.shape[0], -1, dtype=np.int64)
    u, inv = np.unique(origins, return_inverse=True)
    for b0 in range(0, u.shape[0], batch):
        roots = u[b0: b0 + batch]
        T = travel_times(arrays, roots)[:, dest_pos]
        W = attraction[None, :] * np.exp(-beta_per_min * np.where(np.isfinite(T), T, np.inf) / 60.0)
        cum = np.cumsum(W, axis=1)
        for r in range(roots.shape[0]):
            who = np.flatnonzero(inv == b0 + r)
            if who.size == 0 or cum[r, -1] <= 0:
                continue
            draws = rng.random(who.size) * cum[r, -1]
            out[who] = np.minimum(np.searchsorted(cum[r], draws, side="right"), cum.shape[1] - 1)
    return out


def test_gravity_choice_is_the_dense_cumsum_choice_bit_for_bit():
    city = examples.synthetic(2000)
    a = city.road_arrays
    b = city.buildings
    node_pos = b["road_node"].map(a._pos).to_numpy(dtype=np.int64)
    attraction = b["jobs"].to_numpy(dtype=float)
    attraction[::7] = 0.0  # buildings nobody goes to
    origins = np.random.default_rng(5).choice(node_pos, 3000)
    for beta in (0.08, 0.3):
        got = _choose(np.random.default_rng(9), origins, attraction, node_pos, a, beta, batch=64)
        want = _dense_choose(np.random.default_rng(9), origins, attraction, node_pos, a, beta,
                             batch=64)
        assert np.array_equal(got, want)
        assert (attraction[got] > 0).all() and np.unique(got).size > 50


def test_ev_arrival_distances_equal_route_lengths_call_after_call():
    city = examples.synthetic(2000)
    eng = run_traffic(city, TrafficParams(sample=0.1), seed=2, fleet=Fleet(ev_share=0.5),
                      duration_s=8 * 3600)
    first = eng.ev_arrivals(0.0, 8 * 3600)
    assert len(first) > 100
    eng.advance(30 * 3600)  # more routes stored after the first call
    for since, until in ((0.0, 8 * 3600), (8 * 3600, 30 * 3600), (0.0, 30 * 3600)):
        df = eng.ev_arrivals(since, until)
        ref = route_lengths(eng) / 1000.0
        sel = np.flatnonzero(eng.is_ev & (eng.arrive_t >= since) & (eng.arrive_t < until)
                             & np.isfinite(eng.arrive_t))
        assert np.array_equal(df["distance_km"].to_numpy(), ref[sel])
