"""City map figures and click-to-inspect on the tiny city."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from citytwin.app.data import load_city, load_map_data
from citytwin.app.maps import LAYERS, city_figure, inspect, link_figure, nearest_feature
from citytwin.errors import InputError


@pytest.fixture(scope="module")
def tiny(data_dir: Path):
    path = data_dir / "tiny.gpkg"
    return load_city(path), load_map_data(path)


def test_map_arrays_match_city(tiny) -> None:
    city, data = tiny
    m = city.roads.number_of_edges()
    assert len(data.road_mid) == m and data.edge_xy.shape == (m, 4)
    assert np.isnan(data.road_x[2::3]).all() and not np.isnan(data.road_x[0::3]).any()
    # every segment runs between the two end nodes of its edge
    for u, v, d in city.roads.edges(data=True):
        x0, y0, x1, y1 = data.edge_xy[d["edge_id"]]
        assert (x0, y0, x1, y1) == (city.roads.nodes[u]["x"], city.roads.nodes[u]["y"],
                                    city.roads.nodes[v]["x"], city.roads.nodes[v]["y"])
    assert len(data.buildings) == len(city.buildings)
    assert len(data.facilities) == len(city.facilities)


def test_layers_toggle_traces(tiny) -> None:
    city, data = tiny
    full = city_figure(data)
    names = [t.name for t in full.data]
    assert "roads" in names and "MV feeders" in names and "fire station" in names
    # buildings are footprints: one closed ring per building, NaN between rings
    polys = [t for t in full.data if t.fill == "toself" and not t.name.startswith("basemap")]
    rings = sum(int(np.isnan(np.asarray(t.x, float)).sum()) for t in polys)
    assert rings == len(city.buildings) and {t.name for t in polys} <= set(city.buildings["use"])
    geom = city.buildings.geometry.iloc[0]
    x0, y0 = geom.exterior.coords[0]
    assert any(np.isclose(np.asarray(t.x, float), x0, atol=0.6).any() for t in polys)
    # the basemap is the city's own land use (no tiles): grass green, commercial built-up
    assert {"basemap: green", "basemap: built"} <= set(names)
    assert names.index("basemap: green") < names.index("roads")  # underneath
    assert full.layout.meta == {"citytwin_scalebar": True}  # PlotView draws the scale bar
    assert full.layout.dragmode == "pan"
    by_area = city_figure(data, color_by="floor_area_m2")
    assert any("floor area" in (t.name or "") for t in by_area.data)
    only_roads = city_figure(data, layers=["roads"])
    assert {t.name for t in only_roads.data} - {"basemap: green", "basemap: built"} == {"roads"}
    closed = city_figure(data, layers=["roads"], closed_edges=[0, 2])
    assert closed.data[-1].name == "closed" and len(closed.data[-1].x) == 6
    assert full.layout.yaxis.scaleanchor == "x"  # metres, equal aspect
    with pytest.raises(InputError, match="unknown map layers"):
        city_figure(data, layers=["roads", "tiles"])
    with pytest.raises(InputError, match="cannot colour buildings by"):
        city_figure(data, color_by="colour")
    assert set(LAYERS) == {"roads", "buildings", "power", "facilities"}


def test_nearest_feature_finds_what_was_clicked(tiny) -> None:
    city, data = tiny
    b = city.buildings.geometry.iloc[3].representative_point()
    assert nearest_feature(city, data, b.x, b.y, tol_m=1.0) == ("building",
                                                                str(city.buildings.index[3]))
    f = data.facilities.iloc[0]
    assert nearest_feature(city, data, f.x + 3, f.y, tol_m=5.0) == ("facility",
                                                                    str(f.facility_id))
    tr = data.power_nodes[data.power_nodes["kind"] == "transformer"].iloc[0]
    assert nearest_feature(city, data, tr.x, tr.y + 1, tol_m=5.0) == ("power", tr.node)
    assert nearest_feature(city, data, 0.0, 0.0, tol_m=5.0) is None


def test_inspect_each_layer(tiny) -> None:
    city, data = tiny
    b = inspect(city, data, "building", "0")
    assert b["building_id"] == 0 and b["use"] == city.buildings.loc[0, "use"]
    e = inspect(city, data, "road", "3")
    assert e["edge_id"] == 3 and e["length"] > 0
    f = inspect(city, data, "facility", "1")
    assert f["kind"] == "hospital" and f["name"] == "Hospital"
    node = next(n for n, d in city.power.nodes(data=True) if d["kind"] == "transformer")
    p = inspect(city, data, "power", node)
    assert p["kind"] == "transformer"
    d, r = city.power.nodes[node]["design_kva"], city.power.nodes[node]["rated_kva"]
    assert p["design load (kVA)"] == pytest.approx(d) and p["rating (kVA)"] == r
    assert p["design load / rating (%)"] == pytest.approx(100 * d / r, abs=0.01)
    with pytest.raises(InputError, match="no building with id"):
        inspect(city, data, "building", "9999")
    with pytest.raises(InputError, match="unknown map layer"):
        inspect(city, data, "tiles", "1")


def test_link_figure_classes(tiny) -> None:
    _, data = tiny
    import pandas as pd

    vals = pd.Series([0.1, 0.95, 0.6], index=[0, 1, 2])
    fig = link_figure(data, vals, title="t", bins=[0, 0.5, 0.9, 1.01],
                      labels=["low", "mid", "high"])
    assert [t.name for t in fig.data[1:]] == ["low", "mid", "high"]


def test_result_maps_side_by_side(tiny) -> None:
    import pandas as pd

    from citytwin.app.pages.compare import maps_available, result_maps

    city, data = tiny
    b0 = int(city.buildings.index[0])
    res = {
        "a": {"links": pd.DataFrame({"edge_id": [0, 1], "time_s": [0.0, 0.0],
                                     "volume": [5, 5], "speed_kph": [5.0, 50.0], "queue": 0}),
              "assets": pd.DataFrame(columns=["asset_id", "kind", "time_s", "loading_pct",
                                              "vm_pu"]),
              "incidents": pd.DataFrame({"building_id": [b0], "time_s": [10.0],
                                         "response_s": [420.0]})},
        "b": {"links": pd.DataFrame({"edge_id": [0], "time_s": [0.0], "volume": [1],
                                     "speed_kph": [40.0], "queue": 0})},
    }
    maps = result_maps(res, data)
    assert len(maps["congestion"]) == 2 and len(maps["response"]) == 1
    assert maps["transformers"] == []
    assert maps_available(res, "congestion") and not maps_available(res, "transformers")
    assert maps["response"][0].data[1].marker.color[0] == pytest.approx(7.0)


def test_difference_maps_sign_legend_overlays(tiny) -> None:
    from citytwin.app.diffmaps import (
        difference_figure,
        difference_values,
        hex_cells,
        intervention_traces,
    )

    city, data = tiny
    ff = data.road_mid.set_index("edge_id")["speed_kph"]
    e0, e1 = int(ff.index[0]), int(ff.index[1])

    def links(speed0: float) -> pd.DataFrame:
        return pd.DataFrame({"edge_id": [e0, e1], "time_s": [0.0, 0.0], "volume": [5.0, 5.0],
                             "speed_kph": [speed0, ff[e1]], "queue": [0.0, 0.0]})

    a, b = {"links": links(ff[e0])}, {"links": links(ff[e0] / 2)}
    d = difference_values(a, b, "congestion", data)
    assert d.loc[e0, "value"] == pytest.approx(-50.0) and d.loc[e1, "value"] == 0
    street = next(n for n in data.road_mid["name"] if isinstance(n, str) and n)
    spec = {"interventions": [{"type": "close_road", "street": street}]}
    fig = difference_figure(data, d, "congestion", title="B − A",
                            overlays=intervention_traces(spec, city, data))
    names = [t.name for t in fig.data]
    assert "closed roads" in names and any("pp" in str(n) for n in names)  # legend in pp
    assert fig.layout.meta == {"citytwin_scalebar": True}  # the scale bar (PlotView)
    # hex cells: nearby points share a cell, far ones do not
    q, r, _, _ = hex_cells(np.array([0.0, 10.0, 5000.0]), np.array([0.0, 10.0, 0.0]))
    assert (q[0], r[0]) == (q[1], r[1]) != (q[2], r[2])
    with pytest.raises(InputError, match="unknown difference map"):
        difference_values(a, b, "tiles", data)


def test_many_buildings_are_one_raster_image(tiny, monkeypatch) -> None:
    """Above VECTOR_FOOTPRINTS_MAX the footprints are one PNG laid on the map in metres (no
    polygon traces), and a click still finds the building on the server."""
    import base64

    from citytwin.app import maps

    city, data = tiny
    monkeypatch.setattr(maps, "VECTOR_FOOTPRINTS_MAX", 3)
    fig = city_figure(data)
    assert not [t for t in fig.data if t.fill == "toself" and not t.name.startswith("basemap")]
    (img,) = fig.layout.images
    assert img.xref == "x" and img.sizing == "stretch"
    x0, y0, x1, y1 = data.extent
    assert (img.x, img.y, img.sizex, img.sizey) == (x0, y1, x1 - x0, y1 - y0)
    png = base64.b64decode(img.source.split(",", 1)[1])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    b = city.buildings.geometry.iloc[0].representative_point()
    assert nearest_feature(city, data, b.x, b.y, tol_m=1.0)[0] == "building"


def test_canvas_layers_carry_the_city_coordinates(tiny) -> None:
    """The canvas map's binary buffer decodes to the map arrays (relative to the lower left
    corner, float32), one footprint layer per colour class, closures in their own layer."""
    import json

    from citytwin.app.canvasmap import city_layers, trace_layers
    from citytwin.app.diffmaps import intervention_traces
    from citytwin.app.maps import footprint_classes

    city, data = tiny
    p = city_layers(data, closed_edges=[0, 1])
    meta = json.loads(p.meta_json)
    x0, y0 = meta["origin"]
    assert (x0, y0) == (data.extent[0], data.extent[1])
    rx, ry = p.coords("roads")
    np.testing.assert_allclose(rx, data.road_x - x0, atol=0.01)
    np.testing.assert_allclose(ry, data.road_y - y0, atol=0.01)
    classes = footprint_classes(data)
    assert classes and all(p.layer(name)["fill"] == color for name, color, _ in classes)
    # every ring without its closing vertex (the canvas closes the path), NaN between rings
    n_rings = int(np.isnan(data.fp_x).sum())
    assert sum(p.layer(name)["n"] for name, _, _ in classes) == len(data.fp_x) - n_rings
    fx, fy = p.coords(classes[0][0])
    ring = fx[:int(np.flatnonzero(np.isnan(fx))[0])]
    assert len(ring) >= 3 and (ring[0], fy[0]) != (ring[-1], fy[len(ring) - 1])
    cx, _ = p.coords("closed")
    assert np.isfinite(cx).sum() == 4  # two links, two ends each
    by_jobs = city_layers(data, color_by="jobs", layers=("buildings",))
    assert [lay["name"] for lay in by_jobs.layers if lay.get("legend")][0].startswith("jobs")
    assert not any(lay["name"] == "roads" for lay in by_jobs.layers)
    with pytest.raises(InputError, match="unknown map layers"):
        city_layers(data, layers=("roads", "trees"))
    # a draft's interventions become overlay layers in absolute metres
    spec = {"interventions": [{"type": "add_station", "kind": "fire_station", "name": "n",
                               "lon": 24.9, "lat": 60.2}]}
    over = json.loads(trace_layers(intervention_traces(spec, city, data)))
    assert over[0]["kind"] == "points" and over[0]["symbol"] == "star"
    assert abs(over[0]["x"][0]) > 1000  # metres in the city's CRS, not degrees
