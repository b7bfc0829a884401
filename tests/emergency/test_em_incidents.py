"""Incident generation (seeded Poisson by use, population, hour) and incident-log replay."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from citytwin.emergency import EmergencyParams, building_rates, generate_incidents, read_incidents
from citytwin.emergency.incidents import YEAR_S
from citytwin.errors import InputError


def _pos(city):
    return {n: i for i, n in enumerate(city.road_arrays.node_ids.tolist())}


def _read(city, table, **kw):
    a = city.road_arrays
    return read_incidents(table, buildings=city.buildings, node_xy=(a.x, a.y),
                          node_pos=_pos(city), crs=city.crs, duration_s=kw.pop("duration_s",
                                                                                86400.0), **kw)


def test_rates_follow_population_jobs_and_use(city) -> None:
    p = EmergencyParams()
    r = building_rates(city.buildings, p)
    b = city.buildings
    res = b[b["use"] == "residential"].iloc[0]
    assert r.loc[res.name, "medical"] == pytest.approx(0.12 * res["population"])
    health = b[b["use"] == "health"].iloc[0]
    assert r.loc[health.name, "medical"] == pytest.approx(3.0 * 0.03 * health["jobs"])
    ind = b[b["use"] == "industrial"].iloc[0]
    assert r.loc[ind.name, "fire"] == pytest.approx(2.0 * 0.0005 * ind["jobs"])


def test_generation_is_seeded_and_poisson(city) -> None:
    p = EmergencyParams(rate_multiplier=50.0, outage_rate_multiplier=1.0)
    days = 20
    a = generate_incidents(city.buildings, p, seed=7, duration_s=days * 86400.0,
                           node_pos=_pos(city))
    b = generate_incidents(city.buildings, p, seed=7, duration_s=days * 86400.0,
                           node_pos=_pos(city))
    c = generate_incidents(city.buildings, p, seed=8, duration_s=days * 86400.0,
                           node_pos=_pos(city))
    pd.testing.assert_frame_equal(a, b)
    assert not a["time_s"].equals(c["time_s"])
    expected = building_rates(city.buildings, p).sum() * days * 86400.0 / YEAR_S
    for kind in ("medical", "fire", "traffic"):
        n = int((a["type"] == kind).sum())
        assert abs(n - expected[kind]) < 4 * np.sqrt(expected[kind]) + 1, (kind, n, expected[kind])
    # time of day: the 10-17 h plateau sees more medical calls than 0-7 h
    hour = (a.loc[a["type"] == "medical", "time_s"] // 3600) % 24
    assert (hour.between(10, 16)).sum() > 1.5 * (hour.between(0, 6)).sum()
    assert a["time_s"].is_monotonic_increasing and a["time_s"].lt(days * 86400.0).all()


def test_replay_locations_by_building_xy_and_lonlat(city) -> None:
    a = city.road_arrays
    tr = Transformer.from_crs(city.crs, "EPSG:4326", always_xy=True)
    lon, lat = tr.transform(a.x[7] + 20.0, a.y[7] - 10.0)
    table = pd.DataFrame({
        "time_s": [10.0, 20.0, 30.0],
        "type": ["medical", "fire", "traffic"],
        "building_id": [3, np.nan, np.nan],
        "x": [np.nan, a.x[5] + 30.0, np.nan],
        "y": [np.nan, a.y[5], np.nan],
        "lon": [np.nan, np.nan, lon],
        "lat": [np.nan, np.nan, lat],
    })
    out = _read(city, table)
    pos = _pos(city)
    assert out["node"].tolist() == [pos[city.buildings.loc[3, "road_node"]], 5, 7]
    assert out["priority"].tolist() == [1, 1, 2]


def test_bad_log_names_every_problem(city) -> None:
    table = pd.DataFrame({
        "time_s": [1.0, "noon", 5.0, 6.0],
        "type": ["medical", "fire", "flood", "medical"],
        "x": [city.road_arrays.x[0], city.road_arrays.x[0], city.road_arrays.x[0], 0.0],
        "y": [city.road_arrays.y[0], city.road_arrays.y[0], city.road_arrays.y[0], 0.0],
        "severity": [1, 1, 1, 1],
    })
    with pytest.raises(InputError) as err:
        _read(city, table)
    msg = str(err.value)
    assert "unknown column(s) ['severity']" in msg
    with pytest.raises(InputError) as err:
        _read(city, table.drop(columns="severity"))
    msg = str(err.value)
    assert "rows [1]" in msg and "time" in msg
    assert "rows [2]" in msg and "flood" in msg
    assert "rows [3]" in msg and "outside the city" in msg
    with pytest.raises(InputError, match="building_id not in the city"):
        _read(city, pd.DataFrame({"time_s": [1.0], "type": ["fire"], "building_id": [10**6]}))


def test_out_of_period_records_are_counted_in_the_log(city, caplog) -> None:
    table = pd.DataFrame({"time_s": [-5.0, 100.0, 90000.0], "type": "medical",
                          "building_id": [0, 1, 2]})
    with caplog.at_level(logging.WARNING, logger="citytwin.emergency"):
        out = _read(city, table)
    assert len(out) == 1
    assert "2 of 3 incidents lie outside" in caplog.text


def test_timestamps_need_a_start(city) -> None:
    table = pd.DataFrame({"time": ["2026-01-01 01:00"], "type": ["fire"], "building_id": [0]})
    with pytest.raises(InputError, match="start timestamp"):
        _read(city, table)
    out = _read(city, table, start=pd.Timestamp("2026-01-01"))
    assert out["time_s"].tolist() == [3600.0]


def test_incident_log_from_params_file(city, tmp_path) -> None:
    from citytwin.emergency import run_emergency

    path = tmp_path / "log.csv"
    pd.DataFrame({"time_s": [60.0, 120.0], "type": ["fire", "medical"],
                  "building_id": [1, 2]}).to_csv(path, index=False)
    eng = run_emergency(city, EmergencyParams(incident_log=str(path)), seed=1)
    assert eng.tables()["incidents"]["time_s"].tolist() == [60.0, 120.0]
    with pytest.raises(InputError, match="incident_log: file not found"):
        run_emergency(city, EmergencyParams(incident_log=str(tmp_path / "nope.csv")), seed=1)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"time_s": [1.0], "type": ["fire"], "building_id": [1], "x1": [0]}).to_csv(
        bad, index=False)
    with pytest.raises(InputError, match=r"bad\.csv: unknown column"):
        run_emergency(city, EmergencyParams(incident_log=str(bad)), seed=1)
