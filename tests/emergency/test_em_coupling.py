"""Coupling: time-varying traffic link times, a Mesa model host, a CityModel scenario."""

from __future__ import annotations

import mesa
import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from citytwin.emergency import EmergencyEngine, EmergencyParams


def _lonlat(city, node):
    tr = Transformer.from_crs(city.crs, "EPSG:4326", always_xy=True)
    return tr.transform(city.roads.nodes[node]["x"] + 5.0, city.roads.nodes[node]["y"])


class _Traffic:
    """Link times that triple at t >= 6 h (rush hour stand-in)."""

    def __init__(self, model, ff):
        self.model, self.ff = model, ff

    def link_travel_times(self) -> np.ndarray:
        return self.ff * (3.0 if self.model.now >= 6 * 3600 else 1.0)


class _Model(mesa.Model):
    def __init__(self, city, spec=None):
        super().__init__(rng=4)
        self.city, self.seed, self.duration_s = city, 4, 12 * 3600.0
        self.start = pd.Timestamp("2026-01-01")
        self.spec, self.energy, self.now = spec, None, 0.0
        self.traffic = _Traffic(self, city.road_arrays.freeflow_s)


def test_engine_in_a_mesa_model_follows_traffic_over_time(city) -> None:
    model = _Model(city)
    log = pd.DataFrame({"time_s": [3600.0, 7 * 3600.0], "type": "fire", "building_id": [70, 70]})
    eng = EmergencyEngine(model, EmergencyParams(turnout_cv=0.0, congestion_share=0.5,
                                                 closed_stations=(1,)), incidents=log)
    for t in np.arange(900.0, model.duration_s + 1, 900.0):
        model.now = t - 900.0  # traffic state at the start of the sync step
        eng.advance(float(t))
    d = eng.tables()["dispatches"].query("requirement == 0").sort_values("dispatch_s")
    assert len(model.agents) == len(eng.units)
    early, late = d.iloc[0], d.iloc[-1]
    assert early["unit_id"] == late["unit_id"] and early["travel_s"] > 0
    assert late["travel_s"] == pytest.approx(early["travel_s"] * 2.0)  # ff + 0.5 * (3ff - ff)


def test_city_model_runs_the_engine_with_station_interventions(city, tmp_path) -> None:
    from citytwin import model as model_mod
    from citytwin import scenario as scenario_mod

    lon, lat = _lonlat(city, 20)
    spec = scenario_mod.scenario_from_dict({
        "name": "em-test", "city": str(tmp_path / "grid.gpkg"), "seed": 3, "duration_h": 6,
        "emergency": {"rate_multiplier": 30.0},
        "interventions": [
            {"type": "add_station", "kind": "fire_station", "name": "New", "lon": lon,
             "lat": lat, "units": {"engine": 2}},
            {"type": "remove_station", "name": "fire_station 1"},
        ],
    }, source="test")
    model = model_mod.CityModel(spec, city=city)
    eng = model.emergency
    assert isinstance(eng, EmergencyEngine)
    assert eng.params.closed_stations == (0,)
    assert [(s.road_node, s.units) for s in eng.stations if s.station_id < 0] == [
        (20, {"engine": 2})]
    model.run()
    res = model.results()
    inc = res["incidents"]
    assert len(inc) == int(res.kpi("calls_n")) > 0
    assert eng.now == pytest.approx(6 * 3600.0)
    again = model_mod.CityModel(spec, city=city)
    again.run()
    pd.testing.assert_frame_equal(again.results()["incidents"], inc)
