"""Road interventions: pure City -> City, and their effect on traffic."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

from citytwin.errors import InputError
from citytwin.network import edits
from citytwin.network.routing import road_arrays
from citytwin.traffic import TrafficParams, run_traffic
from citytwin.traffic.grid import grid_roads


class _City:
    """Minimal stand-in with the City's ``with_roads`` contract."""

    def __init__(self, G):
        self.roads = G

    @property
    def road_arrays(self):
        return road_arrays(self.roads)

    def with_roads(self, G):
        new = copy.copy(self)
        new.roads = G
        return new


def _edge(G, eid):
    return next(d for *_, d in G.edges(data=True) if d["edge_id"] == eid)


def test_edits_are_pure_and_change_attributes():
    city = _City(grid_roads(4, 4, seed=1))
    before = _edge(city.roads, 0).copy()
    c2 = edits.set_lanes(city, lanes=before["lanes"] + 1, edges=[0])
    d = _edge(c2.roads, 0)
    assert d["lanes"] == before["lanes"] + 1
    assert d["capacity_vph"] == pytest.approx(before["capacity_vph"] * d["lanes"] / before["lanes"])
    assert _edge(city.roads, 0) == before  # original untouched
    c3 = edits.set_speed(city, speed_kph=20, street="Row 0")
    row0 = [d for *_, d in c3.roads.edges(data=True) if d["name"] == "Row 0"]
    assert len(row0) == 6 and all(d["travel_time"] == pytest.approx(d["length"] / (20 / 3.6))
                                  for d in row0)
    c4 = edits.scale_capacity(city, factor=0.5, street="row 0")  # case-insensitive fallback
    assert _edge(c4.roads, 0)["capacity_vph"] == pytest.approx(before["capacity_vph"] * 0.5)
    c5 = edits.add_link(city, u=0, v=15, speed_kph=80, lanes=2, both_ways=True, name="Bypass")
    assert c5.roads.number_of_edges() == city.roads.number_of_edges() + 2
    ids = sorted(d["edge_id"] for *_, d in c5.roads.edges(data=True))
    assert ids == list(range(len(ids)))
    road_arrays(c5.roads)  # still a valid contract graph


def test_errors_name_every_bad_selection():
    city = _City(grid_roads(3, 3, seed=1))
    with pytest.raises(InputError) as err:
        edits.close_links(city, edges=[1, 500, 600])
    assert "500" in str(err.value) and "600" in str(err.value)
    with pytest.raises(InputError, match="Main Street"):
        edits.close_links(city, street="Main Street")
    with pytest.raises(InputError, match="exactly one"):
        edits.close_links(city)
    with pytest.raises(InputError) as err:
        edits.add_link(city, u=0, v=99, speed_kph=-1)
    assert "99" in str(err.value) and "speed_kph" in str(err.value)
    with pytest.raises(InputError, match="unknown road intervention"):
        edits.apply_intervention(city, {"type": "paint_road"})


def test_closing_a_street_reroutes_traffic_and_costs_time():
    city = _City(grid_roads(5, 5, seed=2))
    rng = np.random.default_rng(0)
    nodes = np.arange(25)
    o, d = rng.choice(nodes, 2000), rng.choice(nodes, 2000)
    trips = pd.DataFrame({"origin_node": o, "dest_node": d,
                          "depart_s": rng.uniform(0, 1800, 2000)})[o != d]
    base = run_traffic(city, TrafficParams(), seed=1, trips=trips)
    closed = edits.apply_intervention(city, {"type": "close_road", "street": "Column 2"})
    col2 = [d["edge_id"] for *_, d in closed.roads.edges(data=True) if d["name"] == "Column 2"]
    assert all(math.isinf(_edge(closed.roads, e)["travel_time"]) for e in col2)
    after = run_traffic(closed, TrafficParams(), seed=1, trips=trips)
    links = after.tables()["links"]
    assert not links["edge_id"].isin(col2).any()  # nobody drove on the closed street
    assert base.tables()["links"]["edge_id"].isin(col2).any()
    assert after.kpis()["vehicle_km_km"] > base.kpis()["vehicle_km_km"]
    assert np.isinf(after.link_travel_times()[col2]).all()
    # a node cut off completely: its trips are reported, not lost
    corner_in = [d["edge_id"] for u, v, d in city.roads.edges(data=True) if v == 0]
    cut = edits.close_links(city, edges=corner_in)
    t2 = pd.DataFrame({"origin_node": [24, 12], "dest_node": [0, 24], "depart_s": [0.0, 0.0]})
    r = run_traffic(cut, TrafficParams(), seed=1, trips=t2)
    assert r.trips_table()["status"].tolist() == ["no_route", "arrived"]
    assert r.kpis()["trips_no_route"] == 1
