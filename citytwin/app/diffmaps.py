"""Difference maps between two results: where did congestion, transformer loading or
response times get worse (B − A), on a diverging scale with a legend, with the
interventions of B drawn on top (closed streets, new stations, failed assets)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from citytwin.app.compare_view import link_congestion, response_points, transformer_loading
from citytwin.app.maps import CityMapData, _layout, _segments, basemap_traces, scale_bar
from citytwin.errors import InputError

if TYPE_CHECKING:
    from citytwin.city import City

__all__ = ["DIFF_KINDS", "difference_values", "difference_figure", "hex_cells",
           "intervention_traces", "scale_bar"]

# kind -> (label of B − A, unit, True when an increase is worse)
DIFF_KINDS: dict[str, tuple[str, str, bool]] = {
    "congestion": ("lowest speed / free flow", "pp", False),
    "transformers": ("peak transformer loading", "pp of rating", True),
    "response": ("mean response time per hex cell", "min", True),
}
_DIVERGING = ["#2166ac", "#67a9cf", "#d1e5f0", "#f7f7f7", "#fddbc7", "#ef8a62", "#b2182b"]
HEX_M = 400.0


def hex_cells(x: np.ndarray, y: np.ndarray, size_m: float = HEX_M) -> tuple[np.ndarray, ...]:
    """Pointy-top hexagon (q, r) axial cell of each point and the cells' centres."""
    q = (np.sqrt(3) / 3 * x - y / 3) / size_m
    r = (2 / 3 * y) / size_m
    # cube rounding
    cx, cz = q, r
    cy = -cx - cz
    rx, ry, rz = np.round(cx), np.round(cy), np.round(cz)
    dx, dy, dz = np.abs(rx - cx), np.abs(ry - cy), np.abs(rz - cz)
    fix_x = (dx > dy) & (dx > dz)
    fix_y = ~fix_x & (dy > dz)
    rx = np.where(fix_x, -ry - rz, rx)
    ry = np.where(fix_y, -rx - rz, ry)
    rz = np.where(~fix_x & ~fix_y, -rx - ry, rz)
    qq, rr = rx.astype(np.int64), rz.astype(np.int64)
    centre_x = size_m * np.sqrt(3) * (qq + rr / 2)
    centre_y = size_m * 1.5 * rr
    return qq, rr, centre_x, centre_y


def _per_hex(points: pd.DataFrame) -> pd.DataFrame:
    q, r, cx, cy = hex_cells(points["x"].to_numpy(float), points["y"].to_numpy(float))
    df = pd.DataFrame({"q": q, "r": r, "x": cx, "y": cy, "value": points["value"].to_numpy()})
    return df.groupby(["q", "r"], as_index=True).agg(x=("x", "first"), y=("y", "first"),
                                                      value=("value", "mean"), n=("value", "size"))


def difference_values(a: dict[str, Any], b: dict[str, Any], kind: str,
                      mapdata: CityMapData) -> pd.DataFrame:
    """Per feature ``value`` = B − A (with ``x``, ``y`` for point kinds; indexed by edge id
    for congestion). Only features present in both results are compared."""
    if kind not in DIFF_KINDS:
        raise InputError(f"unknown difference map {kind!r} (expected one of {list(DIFF_KINDS)})")
    if kind == "congestion":
        ff = mapdata.road_mid.set_index("edge_id")["speed_kph"]
        ca, cb = link_congestion(a.get("links"), ff), link_congestion(b.get("links"), ff)
        d = (cb - ca).dropna() * 100.0
        return pd.DataFrame({"value": d})
    if kind == "transformers":
        la, lb = transformer_loading(a.get("assets")), transformer_loading(b.get("assets"))
        d = (lb - la).dropna()
        pos = mapdata.power_nodes.set_index("node")[["x", "y"]]
        out = pos.reindex(d.index.astype(str)).assign(value=d.to_numpy()).dropna()
        return out
    ha = _per_hex(response_points(a.get("incidents"), mapdata.buildings))
    hb = _per_hex(response_points(b.get("incidents"), mapdata.buildings))
    both = ha.join(hb, how="inner", lsuffix="_a", rsuffix="_b")
    return pd.DataFrame({"x": both["x_a"], "y": both["y_a"],
                         "value": both["value_b"] - both["value_a"],
                         "n": np.minimum(both["n_a"], both["n_b"])})


def _bins(values: np.ndarray) -> np.ndarray:
    m = float(np.nanmax(np.abs(values))) if len(values) else 1.0
    m = m if m > 0 else 1.0
    return np.array([-m, -0.5 * m, -0.15 * m, -0.02 * m, 0.02 * m, 0.15 * m, 0.5 * m, m])


def difference_figure(mapdata: CityMapData, diff: pd.DataFrame, kind: str, *, title: str,
                      overlays: list[go.Scatter] | None = None, height: int = 520) -> go.Figure:
    """The difference map: diverging colours (blue better, red worse) with a legend (links)
    or a colour bar centred on zero (points), a scale bar, the interventions on top."""
    label, unit, up_is_worse = DIFF_KINDS[kind]
    fig = go.Figure(basemap_traces(mapdata))
    fig.add_trace(go.Scatter(x=mapdata.road_x, y=mapdata.road_y, mode="lines", name="roads",
                             line=dict(color="#bdbdbd", width=1), hoverinfo="skip",
                             showlegend=False))
    vals = diff["value"].to_numpy(float)
    colours = _DIVERGING if up_is_worse else _DIVERGING[::-1]
    if kind == "congestion" and len(diff):
        ids = diff.index.to_numpy()
        ok = (ids >= 0) & (ids < len(mapdata.edge_xy))
        ids, vals = ids[ok], vals[ok]
        edges = _bins(vals)
        cls = np.clip(np.digitize(vals, edges[1:-1]), 0, 6)
        for k in range(7):
            sel = ids[cls == k]
            if len(sel) == 0:
                continue
            x, y = _segments(mapdata.edge_xy[sel])
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", hoverinfo="skip",
                                     name=f"{edges[k]:+.0f} … {edges[k + 1]:+.0f} {unit}",
                                     line=dict(color=colours[k], width=2.5)))
    elif len(diff):
        m = float(np.nanmax(np.abs(vals))) or 1.0
        fig.add_trace(go.Scatter(
            x=diff["x"], y=diff["y"], mode="markers", name=f"Δ {label}",
            text=[f"Δ {v:+.2f} {unit}" for v in vals], hoverinfo="text",
            marker=dict(color=vals, colorscale=[[i / 6, c] for i, c in enumerate(colours)],
                        cmin=-m, cmax=m, size=14 if kind == "response" else 9,
                        symbol="hexagon" if kind == "response" else "circle",
                        line=dict(width=0.5, color="#616161"),
                        colorbar=dict(title=f"Δ {unit}", thickness=12)),
        ))
    for tr in overlays or []:
        fig.add_trace(tr)
    _layout(fig, title=title, height=height)
    scale_bar(fig, mapdata)
    return fig


def intervention_traces(spec: dict[str, Any], city: City,
                        mapdata: CityMapData) -> list[go.Scatter]:
    """Traces of a result's interventions (from its manifest ``spec``): closed streets in
    black, new stations as stars, failed power assets as crosses."""
    from citytwin.network import edits

    out: list[go.Scatter] = []
    items = spec.get("interventions") or []
    closed: list[int] = []
    stations, failed = [], []
    for it in items:
        t = it.get("type")
        if t == "close_road":
            try:
                keys = edits.select_links(city.roads, edges=it.get("edges") or (),
                                          street=it.get("street"))
            except InputError:
                continue
            closed += [int(city.roads.edges[k]["edge_id"]) for k in keys]
        elif t == "add_station":
            stations.append((it.get("name", "station"), it["lon"], it["lat"]))
        elif t == "asset_failure":
            failed.append(str(it.get("asset")))
    if closed:
        ids = np.array(sorted(set(closed)))
        ids = ids[ids < len(mapdata.edge_xy)]
        x, y = _segments(mapdata.edge_xy[ids])
        out.append(go.Scatter(x=x, y=y, mode="lines", name="closed roads", hoverinfo="skip",
                              line=dict(color="black", width=4, dash="dot")))
    if stations:
        from pyproj import Transformer

        tf = Transformer.from_crs("EPSG:4326", city.crs, always_xy=True)
        xy = [tf.transform(lon, lat) for _, lon, lat in stations]
        out.append(go.Scatter(x=[p[0] for p in xy], y=[p[1] for p in xy], mode="markers",
                              name="new stations", text=[s[0] for s in stations],
                              hoverinfo="text",
                              marker=dict(symbol="star", size=16, color="#ff6f00",
                                          line=dict(width=1, color="black"))))
    if failed:
        pos = mapdata.power_nodes.set_index("node")[["x", "y"]].reindex(failed).dropna()
        if len(pos):
            out.append(go.Scatter(x=pos["x"], y=pos["y"], mode="markers", name="failed assets",
                                  text=list(pos.index), hoverinfo="text",
                                  marker=dict(symbol="x", size=14, color="black")))
    return out
