"""Observation readers: canonical tables, snapping, counted rejections, collected errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from citytwin.errors import ObservationError
from citytwin.twin.observations import read_closures, read_counts, read_incidents, read_meters

from .conftest import STEP, X0, Y0


def test_counts_by_edge_id_csv_roundtrip(twin, tmp_path):
    path = tmp_path / "counts.csv"
    pd.DataFrame(
        {"edge_id": [0, 5], "start": [0, 3600], "end": [900, 7200], "count": [30, 400]}
    ).to_csv(path, index=False)
    obs = read_counts(path, twin, duration_s=86400)
    t = obs.table
    assert t["edge_id"].tolist() == [0, 5]
    assert t["flow_vph"].tolist() == [120.0, 400.0]  # 30 in 15 min = 120 veh/h
    assert obs.summary()["rejected"] == 0


def test_counts_snap_points_with_heading_and_lonlat(twin):
    G = twin.roads
    # a point 5 m north of the middle of the first east-west street (nodes 0 -> 1)
    x, y = X0 + STEP / 2, Y0 + 5.0
    to_ll = Transformer.from_crs("EPSG:3067", "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(x, y)
    east = G.edges[0, 1, 0]["edge_id"]
    west = G.edges[1, 0, 0]["edge_id"]
    df = pd.DataFrame(
        {"x": [x, x, np.nan], "y": [y, y, np.nan], "lon": [np.nan, np.nan, lon],
         "lat": [np.nan, np.nan, lat], "heading_deg": [90.0, 270.0, np.nan],
         "start": [0, 0, 0], "end": [3600] * 3, "count": [10, 20, 30]}
    )
    obs = read_counts(df, twin)
    assert obs.table["edge_id"].tolist() == [east, west, min(east, west)]
    assert obs.table["snap_m"].iloc[0] == pytest.approx(5.0)


def test_counts_lonlat_snaps(twin):
    to_ll = Transformer.from_crs("EPSG:3067", "EPSG:4326", always_xy=True)
    lon, lat = to_ll.transform(X0 + STEP / 2, Y0 + 3.0)
    obs = read_counts(pd.DataFrame({"lon": [lon], "lat": [lat], "start": [0], "end": [3600],
                                    "count": [5]}), twin)
    assert obs.table["edge_id"].iloc[0] == min(twin.roads.edges[0, 1, 0]["edge_id"],
                                               twin.roads.edges[1, 0, 0]["edge_id"])
    assert obs.table["snap_m"].iloc[0] == pytest.approx(3.0, abs=0.01)


def test_counts_bad_records_raise_all_at_once(twin):
    df = pd.DataFrame(
        {"edge_id": [0, 999, 1, 2], "start": [0, 0, 0, 90000], "end": [3600, 3600, 3600, 93600],
         "count": [5, 5, -3, 5]}
    )
    with pytest.raises(ObservationError) as err:
        read_counts(df, twin, duration_s=86400, on_bad="raise")
    msg = str(err.value)
    assert "row 2" in msg and "999" in msg and "unknown id" in msg
    assert "row 3" in msg and "negative count" in msg
    assert "row 4" in msg and "outside period" in msg
    assert len(err.value.problems) == 3  # row 4: start and end both outside, reported once
    assert [p.split("row ")[1][0] for p in err.value.problems] == ["2", "3", "4"]


def test_counts_bad_records_rejected_and_counted(twin):
    df = pd.DataFrame(
        {"edge_id": [0, 999, np.nan], "x": [np.nan, np.nan, X0 + 5000], "y": [np.nan, np.nan, Y0],
         "start": [0, 0, 0], "end": [3600] * 3, "count": [5, 5, 5]}
    )
    obs = read_counts(df, twin, on_bad="reject")
    assert len(obs.table) == 1
    s = obs.summary()
    assert s == {"kind": "counts", "source": "<DataFrame>", "read": 3, "accepted": 1,
                 "rejected": 2, "rejected_by_reason": {"unknown id": 1, "unmatched location": 1}}
    assert obs.rejected["row"].tolist() == [2, 3]


def test_counts_file_problems_always_raise(twin):
    with pytest.raises(ObservationError, match="missing columns"):
        read_counts(pd.DataFrame({"edge_id": [0], "count": [1]}), twin, on_bad="reject")
    with pytest.raises(ObservationError, match=r"row 2, column 'count': expected a number"):
        read_counts(pd.DataFrame({"edge_id": [0, 1], "start": [0, 0], "end": [60, 60],
                                  "count": ["3", "many"]}), twin, on_bad="reject")


def test_counts_timestamps_need_start(twin):
    df = pd.DataFrame({"edge_id": [0], "start": ["2024-06-03 08:00"], "end": ["2024-06-03 09:00"],
                       "count": [100]})
    with pytest.raises(ObservationError, match="pass start="):
        read_counts(df, twin)
    obs = read_counts(df, twin, start="2024-06-03")
    assert obs.table[["start_s", "end_s"]].iloc[0].tolist() == [28800.0, 32400.0]


def test_meters_units_kwh_and_kw(twin):
    kwh = read_meters(pd.DataFrame({"building_id": [0, 0], "time": [0, 900], "interval_s": [900, 900],
                                    "value": [5.0, 2.5], "unit": ["kWh", "kwh"]}), twin)
    assert kwh.table["kw"].tolist() == [20.0, 10.0]
    assert kwh.extra["unit"] == "kWh"
    kw = read_meters(pd.DataFrame({"transformer": ["t1"], "time": [3600], "kw": [150.0]}), twin)
    assert kw.table.iloc[0][["target", "transformer", "kwh"]].tolist() == ["transformer", "t1", 150.0]


def test_meters_mixed_units_is_an_error(twin):
    df = pd.DataFrame({"building_id": [0, 1, 2], "time": [0, 0, 0], "value": [1, 2, 3],
                       "unit": ["kWh", "kWh", "kW"]})
    with pytest.raises(ObservationError, match=r"mixed units.*kW \(first at row 3\)"):
        read_meters(df, twin, on_bad="reject")
    with pytest.raises(ObservationError, match="mixed units: both"):
        read_meters(pd.DataFrame({"building_id": [0], "time": [0], "kwh": [1], "kw": [1]}), twin)


def test_meters_unknown_targets_renumbered_rows(twin):
    df = pd.DataFrame({"transformer": ["t0", None, "t9", None], "building_id": [None, 3, None, 77],
                       "time": [0, 0, 0, 0], "kw": [1.0, 2.0, 3.0, -4.0]})
    obs = read_meters(df, twin, on_bad="reject")
    assert obs.table["meter"].tolist() == ["t0", "b3"]
    reasons = dict(zip(obs.rejected["row"], obs.rejected["reason"], strict=True))
    assert reasons[3].startswith("unknown id: row 3, column 'transformer'")
    assert reasons[4].startswith("negative reading: row 4")


def test_meters_point_snaps_to_building(twin):
    b = twin.buildings.geometry.iloc[7].centroid
    obs = read_meters(pd.DataFrame({"x": [b.x + 12], "y": [b.y], "time": [0], "kw": [3.0]}), twin)
    assert obs.table["building_id"].iloc[0] == 7
    assert obs.table["snap_m"].iloc[0] == pytest.approx(2.0)


def test_incidents_types_and_locations(twin):
    b = twin.buildings.geometry.iloc[4].centroid
    df = pd.DataFrame({"time": [100, 200, 300], "type": ["medical", "fire", "alien"],
                       "x": [b.x, b.x, b.x], "y": [b.y, b.y, b.y], "response_s": [400, None, 300]})
    obs = read_incidents(df, twin, types={"medical", "fire", "traffic"}, on_bad="reject")
    assert obs.table["building_id"].tolist() == [4, 4]
    assert np.isnan(obs.table["response_s"].iloc[1])
    assert obs.rejected["reason"].iloc[0].startswith("unknown type: row 3")
    with pytest.raises(ObservationError, match="negative response"):
        read_incidents(df.assign(response_s=[-1, 1, 1], type="fire"), twin)


def test_closures_open_ended(twin):
    obs = read_closures(pd.DataFrame({"edge_id": [3, 4], "start": [600, 0], "end": [1200, None]}), twin)
    assert obs.table["end_s"].tolist() == [1200.0, np.inf]


def test_parquet_and_unsupported_suffix(twin, tmp_path):
    p = tmp_path / "c.parquet"
    pd.DataFrame({"edge_id": [1], "start": [0], "end": [60], "count": [2]}).to_parquet(p)
    assert read_counts(p, twin).table["flow_vph"].iloc[0] == 120.0
    bad = tmp_path / "c.xlsx"
    bad.write_text("x")
    with pytest.raises(ObservationError, match="unsupported file type"):
        read_counts(bad, twin)
