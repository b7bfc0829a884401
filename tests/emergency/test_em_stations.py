"""Stations and units from facilities: counts, unknown unit types, off-network stations."""

from __future__ import annotations

import logging

import pytest

from citytwin.emergency import EmergencyParams, StationSpec, build_stations, run_emergency
from citytwin.emergency._grid import grid_city
from citytwin.errors import InputError


def _pos(city):
    return {n: i for i, n in enumerate(city.road_arrays.node_ids.tolist())}


def test_default_units_per_station(city) -> None:
    stations, units = build_stations(city.facilities, EmergencyParams(), node_pos=_pos(city))
    kinds = sorted(s.kind for s in stations)
    assert kinds == ["ambulance_station", "fire_station", "fire_station"]
    # 2 fire stations x (engine, ladder, bls) + 1 ambulance station x (als, bls)
    assert sorted(u.unit_type for u in units) == sorted(
        ["engine", "ladder", "bls"] * 2 + ["als", "bls"])
    assert [u.unit_id for u in units] == list(range(len(units)))


def test_unknown_unit_types_are_all_named(city) -> None:
    params = EmergencyParams(units_per_station={"fire_station": {"engine": 1, "tanker": 2},
                                                "ambulance_station": {"helicopter": 1}})
    with pytest.raises(InputError) as err:
        build_stations(city.facilities, params, node_pos=_pos(city))
    msg = str(err.value)
    assert "'tanker'" in msg and "'helicopter'" in msg and "2 problems" in msg


def test_station_off_network_names_the_record(city) -> None:
    fac = city.facilities.copy()
    fac.loc[1, "road_node"] = 999_999
    with pytest.raises(InputError, match=r"facility 1 \(fire_station 'fire_station 2'\).*999999"):
        build_stations(fac, EmergencyParams(), node_pos=_pos(city))
    with pytest.raises(InputError, match=r"extra_stations\[0\]"):
        build_stations(city.facilities, EmergencyParams(
            extra_stations=(StationSpec(kind="fire_station", road_node=-5),)), node_pos=_pos(city))


def test_unknown_closed_station_and_params_typo(city) -> None:
    with pytest.raises(InputError, match="closed_stations: facility_id 77"):
        build_stations(city.facilities, EmergencyParams(closed_stations=(77,)),
                       node_pos=_pos(city))
    with pytest.raises(ValueError, match="turnout_mean"):
        EmergencyParams(turnout_mean=3)  # extra="forbid": the typo is named


def test_missing_kind_is_logged_and_calls_go_unserved(caplog) -> None:
    c = grid_city(4, stations={"fire_station": [5], "hospital": [10]}, seed=2)
    with caplog.at_level(logging.WARNING, logger="citytwin.emergency"):
        eng = run_emergency(c, EmergencyParams(rate_multiplier=200,
                            units_per_station={"fire_station": {"engine": 1}}), seed=3)
    assert "no ambulance_station" in caplog.text
    inc = eng.tables()["incidents"]
    ems = inc[inc["type"].isin(["medical", "traffic"])]
    assert len(ems) > 0 and (ems["status"] == "unserved").all()
    assert eng.kpis()["calls_unserved_n"] == len(ems)


def test_station_closure_and_extra_station(city) -> None:
    base, _ = build_stations(city.facilities, EmergencyParams(), node_pos=_pos(city))
    closed, units = build_stations(
        city.facilities,
        EmergencyParams(closed_stations=(0,), extra_stations=(
            StationSpec(kind="ambulance_station", road_node=3, units={"als": 2}),)),
        node_pos=_pos(city))
    ids = [s.station_id for s in closed]
    assert 0 not in ids and -1 in ids and len(closed) == len(base)
    assert sum(u.station_id == -1 and u.unit_type == "als" for u in units) == 2


def test_param_tables_must_be_complete() -> None:
    with pytest.raises(ValueError, match=r"on_scene_mean_s: expected exactly.*missing \['fire'"):
        EmergencyParams(on_scene_mean_s={"medical": 1.0, "traffic": 1.0})
    with pytest.raises(ValueError, match="transport_prob"):
        EmergencyParams(transport_prob={"p1": 1.5, "p2": 0.0})
