"""Coupling: scenario station interventions, time-varying traffic, a Mesa model host."""

from __future__ import annotations

from types import SimpleNamespace

import mesa
import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from citytwin.emergency import EmergencyEngine, EmergencyParams
from citytwin.emergency.interventions import params_with_interventions
from citytwin.errors import InputError


def _lonlat(city, node):
    tr = Transformer.from_crs(city.crs, "EPSG:4326", always_xy=True)
    return tr.transform(city.roads.nodes[node]["x"] + 5.0, city.roads.nodes[node]["y"])


def test_station_interventions_map_to_params(city) -> None:
    lon, lat = _lonlat(city, 20)
    ivs = [
        SimpleNamespace(type="add_station", kind="fire_station", name="New", lon=lon, lat=lat,
                        units=2),
        SimpleNamespace(type="remove_station", name="fire_station 1"),
        SimpleNamespace(type="unit_counts", kind="ambulance", per_station=3),
        SimpleNamespace(type="close_road", edges=(1,)),  # not ours: ignored
    ]
    p = params_with_interventions(EmergencyParams(), city, ivs)
    assert p.extra_stations[0].road_node == 20 and p.extra_stations[0].units["engine"] == 2
    assert p.closed_stations == (0,)
    assert p.units_per_station["ambulance_station"] == {"als": 2, "bls": 1}
    assert p.units_per_station["fire_station"]["bls"] == 3
    assert params_with_interventions(p, city, ivs) == p  # idempotent
    bad = [SimpleNamespace(type="remove_station", name="Nowhere"),
           SimpleNamespace(type="add_station", kind="fire_station", name="Far", lon=0.0,
                           lat=0.0, units=1)]
    with pytest.raises(InputError) as err:
        params_with_interventions(EmergencyParams(), city, bad)
    assert "Nowhere" in str(err.value) and "'Far'" in str(err.value)


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
    model = _Model(city, spec=SimpleNamespace(interventions=(
        SimpleNamespace(type="remove_station", name="fire_station 2"),)))
    log = pd.DataFrame({"time_s": [3600.0, 7 * 3600.0], "type": "fire", "building_id": [70, 70]})
    eng = EmergencyEngine(model, EmergencyParams(turnout_cv=0.0, congestion_share=0.5),
                          incidents=log)
    assert 1 in eng.params.closed_stations
    for t in np.arange(900.0, model.duration_s + 1, 900.0):
        model.now = t - 900.0  # traffic state at the start of the sync step
        eng.advance(float(t))
    d = eng.tables()["dispatches"].query("requirement == 0").sort_values("dispatch_s")
    assert len(model.agents) == len(eng.units)
    early, late = d.iloc[0], d.iloc[-1]
    assert early["unit_id"] == late["unit_id"] and early["travel_s"] > 0
    assert late["travel_s"] == pytest.approx(early["travel_s"] * 2.0)  # ff + 0.5 * (3ff - ff)
