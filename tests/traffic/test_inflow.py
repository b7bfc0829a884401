"""A link's inflow is limited to its capacity (the kinematic-wave supply of a link in free flow).

Before issue 16 only departures met an inflow bucket; through traffic entered a link as fast as
its upstream links released it (up to their summed capacities) until its storage was full, so
queues formed on the narrow link itself instead of upstream, where in a FIFO diverge they hold
the other branch too. Side by side with UXsim on the saturated 20 x 20 grid this left citytwin
9 % short of UXsim's vehicle-hours (0.907); with the inflow limit 1.013.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from citytwin.traffic import TrafficParams, run_traffic
from citytwin.traffic.grid import chain_roads


def test_through_inflow_never_exceeds_capacity(city_of):
    # a two-lane approach (3600 veh/h) loaded at 3600 veh/h feeds a one-lane 900 veh/h link
    G = chain_roads([(500.0, 50.0, 2, 3600.0), (300.0, 50.0, 1, 900.0), (500.0, 50.0, 2, 3600.0)])
    n = 900
    trips = pd.DataFrame({"origin_node": 0, "dest_node": 3, "depart_s": np.arange(n) * 1.0})
    eng = run_traffic(city_of(G), TrafficParams(stuck_s=1e9, record_interval_s=120.0), seed=0,
                      trips=trips)
    assert (eng.trips_table().status == "arrived").all()
    links = eng.tables()["links"]
    entered = links[links.edge_id == 1].set_index("time_s")["volume"]
    # 120 s at 900 veh/h = 30 vehicles, one more for the bucket's start
    assert entered.max() <= 31, entered.head(8).to_dict()
    # and the narrow link is used at its capacity while the queue lasts (upstream)
    busy = entered.iloc[1:6]
    assert busy.mean() == pytest.approx(30.0, abs=1.0), busy.to_dict()
