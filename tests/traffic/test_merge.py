"""The node model shares a congested merge in proportion to the incoming capacities."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from citytwin import examples
from citytwin.traffic import TrafficParams, run_traffic
from citytwin.traffic.grid import links_roads


def _merge_graph() -> nx.MultiDiGraph:
    pos = {0: (0, 0), 1: (0, 400), 2: (400, 200), 3: (700, 200), 4: (1200, 200)}
    return links_roads(pos, [(0, 2, 2, 3600.0), (1, 2, 1, 1800.0), (2, 3, 1, 900.0),
                             (3, 4, 1, 1800.0)])


def test_merge_shares_follow_capacity():
    n = 800
    trips = pd.DataFrame({"origin_node": [0] * n + [1] * n, "dest_node": 4,
                          "depart_s": np.r_[np.arange(n) * 1.0, np.arange(n) * 2.0]})
    eng = run_traffic(examples.assembled(_merge_graph()), TrafficParams(stuck_s=1e6), seed=0,
                      trips=trips)
    tab = eng.trips_table().sort_values("arrive_s")
    assert (tab.status == "arrived").all()
    # while both approaches are queued (well inside the congested period)
    window = tab.iloc[200:700]
    share0 = (window.origin_node == 0).mean()
    assert share0 == pytest.approx(2 / 3, abs=0.03)
    # the merge discharges at the downstream capacity
    rate = (len(window) - 1) / (window.arrive_s.iloc[-1] - window.arrive_s.iloc[0]) * 3600
    assert rate == pytest.approx(900.0, rel=0.02)


def test_departures_merge_by_the_node_rule(city_of):
    """Departures onto a saturated link compete at its upstream node like an incoming link of
    the same capacity (issue 16: they used to get ~0.75 % of the link's inflow)."""
    from citytwin.traffic.grid import chain_roads

    # through link 0 -> 1, the merge link 1 -> 2 (same capacity), a bottleneck 2 -> 3, exit
    G = chain_roads([(400.0, 50.0, 1, 1800.0), (300.0, 50.0, 1, 1800.0),
                     (300.0, 50.0, 1, 900.0), (500.0, 50.0, 2, 3600.0)])
    n = 600
    trips = pd.DataFrame({"origin_node": [0] * n + [1] * n, "dest_node": 4,
                          "depart_s": np.r_[np.arange(n) * 2.0, np.arange(n) * 2.0]})
    eng = run_traffic(city_of(G), TrafficParams(stuck_s=1e9), seed=0, trips=trips)
    tab = eng.trips_table().sort_values("arrive_s")
    assert (tab.status == "arrived").all()
    # the merge is saturated (queues on both approaches) for most of the platoon: both 1800 veh/h
    # into a 900 veh/h bottleneck; weights = capacities (1800 : 1800) -> half each
    window = tab.iloc[200:800]
    share_dep = (window.origin_node == 1).mean()
    assert share_dep == pytest.approx(0.5, abs=0.05)
    rate = (len(window) - 1) / (window.arrive_s.iloc[-1] - window.arrive_s.iloc[0]) * 3600
    assert rate == pytest.approx(900.0, rel=0.02)


def test_fifo_diverge_follows_daganzo(city_of):
    """A one-lane FIFO diverge: once the branch to a 300 veh/h bottleneck spills back to the
    diverge, the car at its head blocks the free branch too, so with a 50/50 split the free branch
    gets 300 veh/h (Daganzo's FIFO diverge: q = min(D, S_a / alpha_a) = 600, half each)."""
    pos = {0: (0, 0), 1: (500, 0), 2: (800, 200), 3: (1000, 200), 4: (1500, 200),
           5: (800, -200), 6: (1500, -200)}
    G = links_roads(pos, [(0, 1, 1, 1800.0), (1, 2, 1, 1800.0), (2, 3, 1, 300.0),
                          (3, 4, 1, 1800.0), (1, 5, 1, 1800.0), (5, 6, 1, 1800.0)])
    n = 1200  # 1200 veh/h for an hour, alternating destinations
    trips = pd.DataFrame({"origin_node": 0, "dest_node": np.where(np.arange(n) % 2, 4, 6),
                          "depart_s": np.arange(n) * 3.0})
    eng = run_traffic(city_of(G), TrafficParams(stuck_s=1e9), seed=0, trips=trips)
    tab = eng.trips_table()
    assert (tab.status == "arrived").all()
    free = np.sort(tab.loc[tab.dest_node == 6, "arrive_s"].to_numpy())
    # well after the spillback reached the diverge and before the demand ends (t = 3600 s)
    mid = free[(free > 1800) & (free < 3600)]
    rate = (mid.shape[0] - 1) / (mid[-1] - mid[0]) * 3600
    assert rate == pytest.approx(300.0, rel=0.05)
