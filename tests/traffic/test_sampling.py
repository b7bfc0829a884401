"""Sampled runs against the full population, and the node model against queueing theory (#16)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from citytwin import examples, interventions
from citytwin.scenario import load_scenario
from citytwin.traffic import TrafficParams, run_traffic
from citytwin.traffic.grid import chain_roads

CAP = 900.0


def _bottleneck_delay(city_of, rho: float, sample: float, seed: int, hours: float = 10.0,
                      cap: float = CAP) -> float:
    """Mean delay at a one-lane bottleneck of ``cap`` veh/h fed by Poisson arrivals at ``rho``
    (departure times fractional, as a real demand's are not whole steps)."""
    G = chain_roads([(1000.0, 50.0, 4, 8000.0), (200.0, 50.0, 1, cap), (500.0, 50.0, 4, 8000.0)])
    rng = np.random.default_rng(seed)
    T = hours * 3600.0
    dep = np.sort(rng.uniform(0, T, rng.poisson(rho * cap / 3600.0 * sample * T)))
    trips = pd.DataFrame({"origin_node": 0, "dest_node": 3, "depart_s": dep})
    eng = run_traffic(city_of(G), TrafficParams(sample=sample, stuck_s=1e9), seed=0, trips=trips)
    return eng.kpis()["mean_delay_s"]


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.85])
def test_full_population_bottleneck_is_md1(city_of, rho):
    """Poisson arrivals, deterministic service at capacity: the mean wait is M/D/1's
    rho / (2 mu (1 - rho)). Arrivals are not rounded up to the step (they were: +0.5 s on
    every trip) and a link idle for a step holds one car's service, not also part of the next
    one's (it did: 1.55 s instead of 2.0 s at rho 0.5)."""
    got = _bottleneck_delay(city_of, rho, 1.0, seed=1, hours=30.0)
    theory = rho / (2 * CAP / 3600.0 * (1 - rho))
    assert got == pytest.approx(theory, rel=0.1), (got, theory)


@pytest.mark.parametrize("cap", [4500.0, 7200.0])
def test_bottleneck_faster_than_the_step_is_md1(city_of, cap):
    """One car's service (0.8 s, 0.5 s) shorter than the 1 s step: a car that waits crosses
    when the bucket reached one car, not at the next step time, and a departure enters at its
    planned (fractional) time. Rounding both up to the step gave 0.71 s and 0.75 s against
    M/D/1's 0.40 s and 0.25 s at utilisation 0.5."""
    rho = 0.5
    got = _bottleneck_delay(city_of, rho, 1.0, seed=1, hours=20.0, cap=cap)
    theory = rho / (2 * cap / 3600.0 * (1 - rho))
    assert got == pytest.approx(theory, rel=0.1), (got, theory)


def test_free_flow_trip_takes_its_free_flow_time(city_of):
    """One car alone: its travel time is the sum of its links' free-flow times (fractional),
    not that rounded up to the next 1 s step."""
    G = chain_roads([(1003.0, 50.0, 1, 1800.0), (257.0, 30.0, 1, 900.0), (41.0, 30.0, 1, 900.0)])
    trips = pd.DataFrame({"origin_node": [0, 0], "dest_node": [3, 3], "depart_s": [10.0, 5000.0]})
    eng = run_traffic(city_of(G), TrafficParams(), seed=0, trips=trips)
    tt = eng.trips_table()
    assert np.allclose(tt["arrive_s"] - tt["depart_s"], tt["freeflow_s"], atol=1e-9), tt
    assert (tt["delay_s"].abs() < 1e-9).all()


@pytest.mark.parametrize("sample", [0.1, 0.2])
def test_sampled_bottleneck_delay_close_to_full(city_of, sample):
    """At sample 0.1 each car is served 10x slower, so the plain per-vehicle rule gave ~10x the
    random queueing delay (101 s vs 10.8 s at rho 0.85). The sampling burst (its law fitted on
    this bottleneck, anchored at low utilisation on B = 1 - sqrt(sample)) brings it near M/D/1.
    Fitted on a constant depth per utilisation, the law gave 0.51x / 0.74x (samples 0.1 / 0.2)
    at rho 0.1 and 1.54x / 1.33x at rho 0.85 over these four seeds: the utilisation the engine
    estimates (a 30 min average) is noisy, and the law is convex in it. Refitted with the
    estimate in the loop: 0.75x / 0.86x at rho 0.1, 1.15x / 1.12x at rho 0.5, 0.95x / 0.79x at
    rho 0.85."""
    for rho, lo, hi in ((0.1, 0.6, 1.6), (0.5, 0.8, 1.25), (0.85, 0.6, 1.3)):
        theory = rho / (2 * CAP / 3600.0 * (1 - rho))
        sampled = np.mean([_bottleneck_delay(city_of, rho, sample, seed=k, hours=30.0)
                           for k in range(4)])
        assert lo * theory < sampled < hi * theory, (rho, sampled, theory)


def test_sampled_burst_does_not_depend_on_how_often_advance_is_called(city_of):
    """The links' utilisation estimate was clipped at 1 per advance call: called every second,
    one sampled car in a second read as a saturated link clipped to 1, so the estimate - and
    the burst, and the delays - depended on the caller's step (Helsinki 1.26 s -> 4.44 s)."""
    from citytwin.engine import StandaloneModel
    from citytwin.traffic.engine import TrafficEngine

    G = chain_roads([(1000.0, 50.0, 4, 8000.0), (200.0, 50.0, 1, CAP), (500.0, 50.0, 4, 8000.0)])
    rng = np.random.default_rng(4)
    dep = np.sort(rng.uniform(0, 4 * 3600.0, rng.poisson(0.6 * CAP * 0.1 * 4)))
    trips = pd.DataFrame({"origin_node": 0, "dest_node": 3, "depart_s": dep})
    rho = []
    for every in (1.0, 900.0):
        eng = TrafficEngine(StandaloneModel(city_of(G), seed=0, duration_s=5 * 3600.0),
                            TrafficParams(sample=0.1), trips=trips)
        t = 0.0
        while t < 4 * 3600.0:
            t += every
            eng.advance(t)
        rho.append(eng.rho_out[1])
    assert 0.3 < rho[1] < 1.2
    assert rho[0] == pytest.approx(rho[1], rel=0.05), rho


def test_kotka_sampled_matches_full_and_few_forced():
    """A real street network (Kotka): a 10 % sample had 5.5 % of its trips forced through by the
    stuck timer and 11x the full population's mean delay (19.1 s vs 1.8 s). At its shipped
    sample (0.2, ``tests/data/kotka.toml``) the mean over 8 seeds is within 10 % of the full
    population's (over 2)."""
    city = examples.kotka()
    delay = {}
    for s, seeds in ((0.1, range(1, 4)), (0.2, range(1, 9)), (1.0, range(1, 3))):
        got = []
        for seed in seeds:
            k = run_traffic(city, TrafficParams(sample=s), seed=seed,
                            duration_s=28 * 3600.0).kpis()
            assert k["trips_completed"] == k["trips_planned"]
            assert k["trips_forced_through"] / k["trips_departed"] < 0.02, (s, seed, k)
            got.append(k["mean_delay_s"])
        delay[s] = float(np.mean(got))
    # a 10 % sample is ~2,300 trips: its mean over three seeds against the full population.
    # 2.00x while routes were searched on a link time that read one sampled car on a short
    # street as a queue (test_link_time_reads_a_lone_car_in_free_flow_as_free_flow); 1.31x
    # since (with the burst law refitted on the bottleneck); 1.29x with routes searched every
    # 60 s, 1.21x with short links holding two sampled cars
    # (test_sampled_short_links_hold_what_the_full_populations_random_queue_needs), 1.03x with
    # half of each refresh's trips on a near-equal alternative and a step's cars served in the
    # order they became ready. A 10 % sample of Kotka is noisy (1.2-2.1 s per seed; 1.10x
    # over 8 seeds), so only the shipped sample is held to 10 %: 1.04x (1.54 s against 1.48 s)
    assert 0.5 * delay[1.0] < delay[0.1] < 1.6 * delay[1.0], delay
    assert delay[0.2] == pytest.approx(delay[1.0], rel=0.10), delay


@pytest.mark.slow
@pytest.mark.parametrize("n, seeds", [(2000, 8), (10000, 4)])
def test_synthetic_city_sampled_matches_full(n, seeds):
    """The shipped 10 % sample against the full population on the synthetic cities, at the
    baseline scenario's demand (8 and 4 sampled seeds against one full run). 0.79x and 0.73x
    while a node served the cars of a step by fair-queuing tag alone: the full population's
    arterials (3,200 veh/h, 0.9 cars per 1 s step) lost part of a step at every merge
    (test_engine.py::test_delay_does_not_depend_on_the_step_at_merges), its 2k city 1.23x the
    delay of a 0.25 s step; the sampled run, 0.09 cars per step, hardly did. Now 0.96x and
    0.95x (``benchmarks/scale.py --sizes --seeds 8``: 0.95 and 1.00)."""
    spec = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "baseline.toml")
    setup = interventions.apply(spec, examples.synthetic(n))
    p = setup.traffic
    assert p is not None and p.sample == pytest.approx(0.1)

    def delays(sample: float, k: int) -> list[float]:
        out = []
        for i in range(k):
            kp = run_traffic(setup.city, p.model_copy(update={"sample": sample}),
                             seed=int(spec.seed) + i, fleet=setup.fleet,
                             duration_s=spec.duration_s + 4 * 3600).kpis()
            assert kp["trips_completed"] == kp["trips_planned"]
            assert kp["trips_forced_through"] / kp["trips_departed"] < 0.02
            out.append(kp["mean_delay_s"])
        return out

    full = delays(1.0, 1)[0]
    sampled = float(np.mean(delays(p.sample, seeds)))
    assert sampled == pytest.approx(full, rel=0.10), (sampled, full)


def _corridor(rho: float, sample: float, seed: int, n_links: int, hours: float):
    """A corridor of ``n_links`` one-lane links (50 m, 800 veh/h) and its trips: half of the
    final flow enters at its start, the rest departs evenly from the nodes along it (the
    houses of a street), ``rho`` the utilisation of its last link."""
    cap = 800.0
    G = chain_roads([(50.0, 40.0, 1, cap)] * n_links + [(300.0, 50.0, 4, 8000.0)])
    rng = np.random.default_rng(seed)
    T = hours * 3600.0
    shares = [0.5] + [0.5 / (n_links - 1)] * (n_links - 1)
    rows = [pd.DataFrame({"origin_node": o, "dest_node": n_links + 1,
                          "depart_s": rng.uniform(0, T, rng.poisson(rho * sh * cap / 3600.0
                                                                     * sample * T))})
            for o, sh in enumerate(shares)]
    return G, pd.concat(rows).sort_values("depart_s").reset_index(drop=True)


def _corridor_delay(city_of, rho: float, sample: float, seed: int, n_links: int,
                    hours: float = 20.0) -> float:
    """Mean delay on :func:`_corridor`."""
    G, trips = _corridor(rho, sample, seed, n_links, hours)
    eng = run_traffic(city_of(G), TrafficParams(sample=sample, stuck_s=1e9), seed=0, trips=trips)
    return eng.kpis()["mean_delay_s"]


def test_sampled_corridor_with_side_departures_matches_full(city_of):
    """The smallest network where sampled runs erred as on real streets: a corridor whose merges
    (departures joining at every node) come one after another. The full population's delay
    hardly grows with the merges (3.37 s over 2 links, 3.41 s over 10 at utilisation 0.6): its
    through stream leaves each link spaced by the service time, smoother than the Poisson
    arrivals the burst law was fitted on. With the burst reading each link's arrival SCV (QNA,
    ``TrafficEngine._update_variability``) a 10 % sample's delay was 0.88x the full
    population's here (1.37x without; over more seeds of 50 h: 1.02 +- 0.06 at utilisation 0.6,
    1.11 +- 0.06 at 0.4 and 1.06 +- 0.05 at 0.3; without, 1.52, 1.32 and 1.15), and 0.92x with
    the burst law refitted with the engine's utilisation estimate in the loop."""
    full = np.mean([_corridor_delay(city_of, 0.6, 1.0, seed=k, n_links=10, hours=40.0)
                    for k in (1, 2)])
    sampled = np.mean([_corridor_delay(city_of, 0.6, 0.1, seed=k, n_links=10, hours=40.0)
                       for k in range(8)])
    assert sampled == pytest.approx(full, rel=0.10), (sampled, full)


def test_arrival_variability_is_qna_on_the_routed_flows(city_of):
    """The SCV of each link's arrivals that the sampling burst reads (Whitt's QNA on the routed
    flows) equals a direct solve of the QNA equations, is Poisson's (1) where only departures
    feed a link and falls below it down a corridor of busy servers. A full-population run never
    computes it (its burst is 0 whatever the SCV)."""
    n = 6
    G, trips = _corridor(0.6, 1.0, seed=5, n_links=n, hours=1.0)
    full = run_traffic(city_of(G), TrafficParams(sample=1.0, stuck_s=1e9), seed=0, trips=trips)
    assert full._turns is None and (full.phi == 1.0).all()
    # a 10 % sample at utilisation 0.6 of the last corridor link for 3 h, observed as it ends
    G, trips = _corridor(0.6, 0.1, seed=5, n_links=n, hours=3.0)
    eng = run_traffic(city_of(G), TrafficParams(sample=0.1, stuck_s=1e9), seed=0, trips=trips,
                      duration_s=3 * 3600.0)
    eng._update_variability()
    turns = eng._turns.toarray()
    dep = eng._dep_cnt
    inflow = dep + turns.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(inflow[:, None] > 0, turns / inflow[:, None], 0.0)
        smooth = 1.0 - np.clip(eng.rho_out, 0.0, 0.95) ** 2
        a = (turns * p * smooth[:, None]).T / inflow[:, None]
        b = (dep + (turns * (1.0 - p)).sum(axis=0)) / inflow
    used = inflow > 0
    a = np.where(used[:, None], a, 0.0)
    c2 = np.linalg.solve(np.eye(len(dep)) - a, np.where(used, b, 1.0))
    np.testing.assert_allclose(eng.phi[used], np.clip(c2, 0.1, 1.0)[used], rtol=1e-9)
    by_from = {int(f): e for e, f in enumerate(eng.arrays.edge_from)}
    corridor = [by_from[i] for i in range(n)]
    # departures only (to rounding: the decayed counts are summed at every route refresh)
    assert eng.phi[corridor[0]] == pytest.approx(1.0, abs=1e-12)
    assert (eng.rho_out[corridor] > 0.2).all()
    assert (eng.phi[corridor[1:]] < 0.95).all(), eng.phi[corridor]


def test_arrival_variability_follows_the_flows_with_routes_searched_once(city_of):
    """With routes searched once at the start (a long ``route_refresh_s``), the SCV is still
    updated every 15 minutes on the flows. It used to be solved only when trips were routed,
    so such a run solved it once, at t = 0 with every link idle, and read Poisson arrivals (1)
    everywhere all day; ``benchmarks/scale.py --free-flow-routes`` therefore took the QNA
    out of the sampled runs it compared, not only their routing."""
    n = 6
    G, trips = _corridor(0.6, 0.1, seed=5, n_links=n, hours=3.0)
    phi = {}
    for refresh in (300.0, 1e9):
        eng = run_traffic(city_of(G), TrafficParams(sample=0.1, stuck_s=1e9,
                                                    route_refresh_s=refresh),
                          seed=0, trips=trips, duration_s=3 * 3600.0)
        by_from = {int(f): e for e, f in enumerate(eng.arrays.edge_from)}
        phi[refresh] = eng.phi[[by_from[i] for i in range(n)]]
    assert phi[1e9][0] == 1.0 and (np.diff(phi[1e9]) < 0).all(), phi[1e9]
    assert phi[1e9][-1] < 0.6, phi[1e9]
    # the same corridor, its counts of the whole 3 h (routed at t = 0) against those of the
    # last half hour or so (routed as they depart): 0.49 and 0.42 at the last link
    np.testing.assert_allclose(phi[1e9], phi[300.0], atol=0.15)


@pytest.mark.parametrize("sample", [1.0, 0.2])
def test_link_time_reads_a_lone_car_in_free_flow_as_free_flow(city_of, sample):
    """Routes are searched on ``link_travel_times``. It read a link's cars over its capacity, so
    one sampled car on a short street (free flow 1 s) read as 1 / (0.2 x 800 veh/h) = 22 s at
    sample 0.2, 4.5 s in the full population: every refresh, the trips of the next five minutes
    were routed around whatever street a sampled car happened to be on. On Kotka, dynamic routing
    cost sampled runs 1.6x the delay of free-flow routes and the full population 1.07x. A car the
    link's outflow bucket lets go at once is not a queue."""
    from citytwin.engine import StandaloneModel
    from citytwin.traffic.engine import TrafficEngine

    G = chain_roads([(200.0, 50.0, 1, 8000.0), (8.0, 30.0, 1, 800.0), (500.0, 50.0, 1, 8000.0)])
    lone = pd.DataFrame({"origin_node": [0], "dest_node": [3], "depart_s": [0.0]})
    model = StandaloneModel(city_of(G), seed=0, duration_s=600.0)
    eng = TrafficEngine(model, TrafficParams(sample=sample, stuck_s=1e9), trips=lone)
    model.traffic = eng
    dt = eng.params.step_s
    assert dt / eng.cap_step[1] > 4 * eng.ff[1]  # what one car over the capacity reads
    seen = 0
    while eng.t < 60.0:
        eng.advance(eng.t + dt)
        if eng.cur_link[0] == 1:
            seen += 1
            # (the head car's time on the link so far may exceed its free flow by a step)
            assert eng.link_travel_times()[1] <= eng.ff[1] + dt, eng.count
    assert seen >= 1


def test_sampled_link_times_read_the_full_populations_congestion():
    """``link_travel_times`` is also what emergency units route on (contracts: traffic ->
    emergency). Read every 15 minutes of Kotka's day, its mean excess over free flow was 5x the
    full population's at sample 0.2 (0.097 s against 0.019 s per link over two seeds): every
    sampled car on a short street read as a queue of 1 / sample cars. Now 0.0027 s against
    0.0069 s (two seeds): both a small fraction of a second."""
    from citytwin.engine import StandaloneModel
    from citytwin.traffic.engine import TrafficEngine

    city = examples.kotka()
    excess = {}
    for s in (1.0, 0.2):
        model = StandaloneModel(city, seed=1, duration_s=20 * 3600.0)
        eng = TrafficEngine(model, TrafficParams(sample=s))
        model.traffic = eng
        got = []
        for t in np.arange(6.0, 19.0, 0.25) * 3600.0:
            eng.advance(t)
            lt = eng.link_travel_times()
            ok = np.isfinite(lt)
            got.append(float((lt[ok] - eng.ff[ok]).mean()))
        excess[s] = float(np.mean(got))
    assert excess[1.0] > 0
    assert abs(excess[0.2] - excess[1.0]) < 0.02, excess


def test_sampled_corridor_through_peaks_matches_full(city_of):
    """:func:`_corridor` with its demand in peaks (Gaussian, sd 1 h, every 5 h; the last link at
    utilisation 0.6 at each peak's top) instead of a constant rate. At a constant rate it is
    within 10 %; through peaks a sample of 0.2 has 1.39 +- 0.06x the full population's delay
    (24 seeds): the links' utilisation estimate (a 30-minute average) lags each ramp, so the
    burst is too shallow as the queues grow. Kotka's excess with free-flow routes (1.39x) sits
    in its peak hours too. A lag-free estimate (2 x the average - its own average, where that is
    higher) gave 1.06 +- 0.05x here and 1.02x on Kotka, but 0.63x on the 10k synthetic city;
    retried with a step's cars served in time order (the shipped settings, 8 seeds): Kotka
    1.04 -> 0.92x, synthetic 2k 0.95 -> 0.90x, 10k 1.00 -> 0.81x, so it is not in. The test
    city figures are in benchmarks/scale.py; this corridor stays an expected failure."""
    hours = 40.0
    centres = np.arange(2.5, hours, 5.0) * 3600.0

    def delay(sample: float, seed: int) -> float:
        # the corridor's trips at the peaks' top rate, thinned to the peaks' profile
        G, trips = _corridor(0.6, sample, seed, n_links=10, hours=hours)
        t = trips["depart_s"].to_numpy()
        top = np.exp(-((t[:, None] - centres[None, :]) ** 2) / (2 * 3600.0 ** 2)).sum(1)
        keep = np.random.default_rng([seed, 1]).random(t.size) < top
        eng = run_traffic(city_of(G), TrafficParams(sample=sample, stuck_s=1e9), seed=0,
                          trips=trips[keep].reset_index(drop=True))
        return eng.kpis()["mean_delay_s"]

    full = np.mean([delay(1.0, k) for k in (101, 102, 103, 104)])
    sampled = np.mean([delay(0.2, k) for k in range(16)])
    assert 0.8 * full < sampled < 1.6 * full, (sampled, full)
    if sampled != pytest.approx(full, rel=0.10):
        pytest.xfail(f"corridor through peaks sampled/full {sampled / full:.2f} (the utilisation "
                     "estimate lags each ramp)")


def test_sampled_short_links_hold_what_the_full_populations_random_queue_needs():
    """A sampled link holds at least two sampled cars where the full population's holds two,
    and never more sampled cars than the full population's holds cars. Kotka at sample 0.2 had
    261 of its 1,237 links holding one sampled car; two sampled cars meeting on one blocked its
    entrance, where the full population's pair fitted (waits for space 16-28x the full
    population's on its 800-1,200 veh/h streets, 0.22 s of the sample's 1.9 s mean delay)."""
    from citytwin.engine import StandaloneModel
    from citytwin.traffic.engine import TrafficEngine

    city = examples.kotka()
    empty = pd.DataFrame({"origin_node": [], "dest_node": [], "depart_s": []})

    def holds(sample: float) -> np.ndarray:
        eng = TrafficEngine(StandaloneModel(city, seed=0), TrafficParams(sample=sample),
                            trips=empty)
        return np.ceil(eng.storage - 1e-9)  # the space check admits while count < storage

    full, sampled = holds(1.0), holds(0.2)
    assert (full >= 2).sum() > 1000
    assert (sampled >= np.minimum(full, 2)).all()
    assert (sampled <= full).all()
    # long links keep the sample ** 0.5 storage (the queues of a real overload scale with it)
    long = full > 40
    assert (sampled[long] < 0.5 * full[long]).all()
