"""Interventions: one class each, checked against the city the engines will use, applied in one
direction (scenario -> interventions.apply -> Setup -> engines)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer

from citytwin import interventions
from citytwin.city import City
from citytwin.energy.engine import EnergyEngine, EnergyParams
from citytwin.energy.outages import asset_ids
from citytwin.errors import InputError, ScenarioError
from citytwin.fleet import Fleet
from citytwin.interventions import REGISTRY, AddLink, TemperatureShift
from citytwin.model import CityModel
from citytwin.network.routing import travel_times
from citytwin.scenario import Scenario, loads_scenario, scenario_from_dict


def _scenario(city: City, tmp_path: Path, **kw) -> Scenario:
    data = {"name": "t", "city": str(tmp_path / "city.gpkg"), "seed": 2, "duration_h": 3,
            "step_s": 900, **kw}
    return scenario_from_dict(data)


def _lonlat(city: City, node: int) -> tuple[float, float]:
    d = city.roads.nodes[node]
    lon, lat = Transformer.from_crs(city.crs, "EPSG:4326", always_xy=True).transform(d["x"], d["y"])
    return float(lon), float(lat)


def test_every_registered_type_validates_from_its_tag() -> None:
    assert {"close_road", "add_link", "ev_share", "heat_wave", "cold_snap", "temperature_shift",
            "asset_failure", "remove_station", "change_capacity"} <= set(REGISTRY)
    assert REGISTRY["heat_wave"] is REGISTRY["cold_snap"] is TemperatureShift


def test_temperature_shift_one_class_both_signs_physical_bounds() -> None:
    assert TemperatureShift(type="cold_snap", delta_c=-15).delta_c == -15
    assert TemperatureShift(type="temperature_shift", delta_c=-40).delta_c == -40
    with pytest.raises(ValueError, match="heat_wave needs delta_c > 0"):
        TemperatureShift(type="heat_wave", delta_c=-3)
    with pytest.raises(ValueError, match="cold_snap needs delta_c < 0"):
        TemperatureShift(type="cold_snap", delta_c=3)
    with pytest.raises(ValueError):
        TemperatureShift(delta_c=-41)
    # the same class bounds the energy parameters: no value passes one and fails the other
    with pytest.raises(ValueError):
        EnergyParams(temperature_shifts=[{"delta_c": 25}])


def test_cold_snap_raises_heat_pump_load_through_the_model(grid_city: City, tmp_path) -> None:
    base = dict(start="2024-01-15", energy={"power_flow": False, "heat_pump_share": 1.0})
    normal = CityModel(_scenario(grid_city, tmp_path, **base), city=grid_city)
    cold = CityModel(_scenario(grid_city, tmp_path, **base, interventions=[
        {"type": "cold_snap", "delta_c": -15, "start_h": 0, "duration_h": 3}]), city=grid_city)
    for m in (normal, cold):
        m.run()
    kn, kc = normal.energy.kpis(), cold.energy.kpis()
    assert kc["heat_demand_kwh"] > 1.1 * kn["heat_demand_kwh"]
    assert kc["energy_total_kwh"] > kn["energy_total_kwh"]


def test_asset_failure_checked_against_the_assets_the_engine_fails(grid_city: City,
                                                                   tmp_path) -> None:
    """A building node ("b3") or an MV node is not a failable asset: the scenario says so
    before any engine runs, with the same list the engine uses."""
    spec = _scenario(grid_city, tmp_path, energy={"power_flow": False}, interventions=[
        {"type": "asset_failure", "asset": "b3", "at_h": 1}])
    with pytest.raises(ScenarioError, match=r"interventions\[0\]\.asset: no power asset 'b3'"):
        CityModel(spec, city=grid_city)
    known = sorted(asset_ids(grid_city.power))
    ok = _scenario(grid_city, tmp_path, energy={"power_flow": False}, interventions=[
        {"type": "asset_failure", "asset": known[0], "at_h": 1, "duration_h": 1}])
    assert interventions.check(ok, grid_city) == []
    m = CityModel(ok, city=grid_city)
    assert m.energy.params.failures[0].asset == known[0]
    with pytest.raises(InputError, match="no power asset 'b3'"):  # the engine agrees
        EnergyEngine(m, EnergyParams(power_flow=False, failures=[{"asset": "b3", "at_h": 0}]))


def test_add_link_is_one_class_and_reaches_traffic_and_emergency(grid_city: City,
                                                                 tmp_path) -> None:
    G = grid_city.roads
    nodes = sorted(G.nodes)
    a, b = nodes[0], nodes[-1]  # opposite corners: no direct link
    assert not G.has_edge(a, b)
    spec = _scenario(grid_city, tmp_path, traffic={"sample": 1.0}, emergency={},
                     interventions=[{"type": "add_link", "from_lonlat": list(_lonlat(grid_city, a)),
                                     "to_lonlat": list(_lonlat(grid_city, b)), "both_ways": True,
                                     "speed_kph": 80, "name": "Diagonal"}])
    m = CityModel(spec, city=grid_city)
    assert m.city.roads.has_edge(a, b) and m.city.roads.has_edge(b, a)
    assert not grid_city.roads.has_edge(a, b)  # the input city is untouched
    n = grid_city.roads.number_of_edges()
    assert m.traffic.arrays.n_edges == n + 2  # the engine routes on the changed graph
    assert m.emergency.arrays.n_edges == n + 2
    arr = m.emergency.arrays
    pa, pb = (int(np.flatnonzero(arr.node_ids == x)[0]) for x in (a, b))
    new = m.city.roads.edges[a, b, 0]
    t_ab = travel_times(arr, [pa])[0, pb]
    before = travel_times(grid_city.road_arrays, [pa])[0, pb]
    assert t_ab == pytest.approx(new["travel_time"]) and t_ab < before  # responders use it


def test_add_link_rejects_half_given_ends() -> None:
    with pytest.raises(ValueError, match="either both 'u' and 'v'"):
        AddLink(u=1)
    with pytest.raises(ValueError, match="either both 'u' and 'v'"):
        AddLink(u=1, v=2, from_lonlat=(24.9, 60.1), to_lonlat=(24.9, 60.2))


def test_unknown_add_link_node_is_a_scenario_error(grid_city: City, tmp_path) -> None:
    spec = _scenario(grid_city, tmp_path, traffic={}, interventions=[
        {"type": "add_link", "u": 10**9, "v": sorted(grid_city.roads.nodes)[0]}])
    with pytest.raises(ScenarioError, match=r"interventions\[0\]\.u: node 1000000000"):
        CityModel(spec, city=grid_city)


def test_fleet_is_the_one_ev_share_for_traffic_and_energy(grid_city: City, tmp_path) -> None:
    spec = _scenario(grid_city, tmp_path, traffic={"sample": 1.0}, energy={"power_flow": False},
                     fleet={"ev_share": 0.3, "charging": "delayed"},
                     interventions=[{"type": "ev_share", "share": 0.6, "charging": "smart"}])
    m = CityModel(spec, city=grid_city)
    assert m.fleet == Fleet(ev_share=0.6, charging="smart")  # the intervention wins, once
    assert m.traffic.fleet is m.fleet and m.energy.fleet is m.fleet
    assert m.energy.ev.policy == "smart"
    share = float(np.mean(m.traffic.is_ev))
    assert 0.45 < share < 0.75
    # without traffic the energy engine's synthetic arrivals use the same fleet
    spec2 = _scenario(grid_city, tmp_path, energy={"power_flow": False}, fleet={"ev_share": 0.0})
    m2 = CityModel(spec2, city=grid_city)
    assert m2.energy._arrivals is None


def test_old_domain_keys_say_where_they_moved(tmp_path) -> None:
    for section, key, where in (("traffic", "ev_share = 0.3", "[fleet] ev_share"),
                                ("energy", "ev_charging = \"smart\"", "[fleet] charging"),
                                ("energy", "heat_wave = { delta_c = 5 }", "heat_wave")):
        text = f'city = "c.gpkg"\n[{section}]\n{key}\n'
        with pytest.raises(ScenarioError, match="moved") as err:
            loads_scenario(text, base_dir=tmp_path)
        assert where in str(err.value)


def test_scenario_dump_round_trips(grid_city: City, tmp_path) -> None:
    spec = _scenario(grid_city, tmp_path, energy={}, traffic={}, interventions=[
        {"type": "heat_wave", "delta_c": 5}, {"type": "ev_share", "share": 0.4}])
    again = scenario_from_dict(spec.model_dump(mode="json"))
    assert again == spec and again.content_hash() == spec.content_hash()
