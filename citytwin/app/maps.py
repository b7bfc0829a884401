"""Plotly map figures of a City and of results, drawn in the city's metric CRS.

No tile basemap is used (the app works offline): roads, buildings, the power network and
facilities are plain WebGL scatter traces on equal-aspect axes in metres. Every clickable
marker carries ``customdata = [layer, id]`` so a click can be inspected.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

if TYPE_CHECKING:
    from citytwin.city import City

__all__ = [
    "LAYERS",
    "USE_COLORS",
    "CityMapData",
    "city_map_data",
    "city_figure",
    "inspect",
    "link_figure",
    "point_value_figure",
]

log = logging.getLogger(__name__)

#: Layer names shown as toggles on the City page, in drawing order.
LAYERS: tuple[str, ...] = ("roads", "buildings", "power", "facilities")

USE_COLORS: dict[str, str] = {
    "residential": "#e6ab02", "office": "#1f78b4", "retail": "#e7298a",
    "industrial": "#7f7f7f", "education": "#66a61e", "health": "#d95f02",
    "public": "#7570b3", "hospitality": "#a6761d", "other": "#bdbdbd",
}
FACILITY_STYLE: dict[str, tuple[str, str]] = {
    "fire_station": ("#d62728", "square"), "ambulance_station": ("#ff7f0e", "diamond"),
    "hospital": ("#2ca02c", "cross"), "police": ("#1f3a93", "triangle-up"),
}
POWER_STYLE: dict[str, tuple[str, str, int]] = {
    "substation": ("#6a00a8", "star", 14), "transformer": ("#b12a90", "circle", 6),
}


@dataclass(frozen=True)
class CityMapData:
    """Plain arrays of a city, prepared once per city for fast figure building."""

    name: str
    road_x: np.ndarray  # segment endpoints with NaN separators (3 values per edge)
    road_y: np.ndarray
    road_mid: pd.DataFrame  # edge_id, x, y, name, highway, speed_kph, lanes, length
    edge_xy: np.ndarray  # (m, 4) x0, y0, x1, y1 per edge_id
    buildings: pd.DataFrame  # building_id, x, y, use, ...
    power_nodes: pd.DataFrame  # node, kind, x, y
    mv_x: np.ndarray
    mv_y: np.ndarray
    facilities: pd.DataFrame  # facility_id, kind, name, x, y


def city_map_data(city: City) -> CityMapData:
    """Extract the arrays the maps need from a City (vectorized, no geometry per vertex)."""
    G = city.roads
    nodes = {n: (d["x"], d["y"]) for n, d in G.nodes(data=True)}
    rows = []
    for u, v, d in G.edges(data=True):
        rows.append((int(d["edge_id"]), *nodes[u], *nodes[v], str(d.get("name", "") or ""),
                     str(d.get("highway", "")), float(d.get("speed_kph", np.nan)),
                     int(d.get("lanes", 1)), float(d.get("length", np.nan))))
    edges = pd.DataFrame(rows, columns=["edge_id", "x0", "y0", "x1", "y1", "name", "highway",
                                        "speed_kph", "lanes", "length"])
    edges = edges.sort_values("edge_id").reset_index(drop=True)
    edge_xy = edges[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float)
    road_x, road_y = _segments(edge_xy)
    mid = edges[["edge_id", "name", "highway", "speed_kph", "lanes", "length"]].copy()
    mid["x"] = (edges["x0"] + edges["x1"]) / 2
    mid["y"] = (edges["y0"] + edges["y1"]) / 2

    b = city.buildings
    cent = b.geometry.representative_point()
    bdf = pd.DataFrame({"building_id": b.index.to_numpy(), "x": cent.x.to_numpy(),
                        "y": cent.y.to_numpy()})
    for col in ("use", "levels", "floor_area_m2", "population", "jobs", "vintage",
                "transformer"):
        if col in b.columns:
            bdf[col] = b[col].to_numpy()

    P = city.power
    pn = pd.DataFrame(
        [(str(n), d.get("kind", ""), float(d.get("x", np.nan)), float(d.get("y", np.nan)),
          d.get("rated_kva", np.nan), d.get("rated_mva", np.nan)) for n, d in P.nodes(data=True)
         if d.get("kind") in ("substation", "transformer", "mv_node")],
        columns=["node", "kind", "x", "y", "rated_kva", "rated_mva"],
    )
    mv = [(P.nodes[u].get("x", np.nan), P.nodes[u].get("y", np.nan),
           P.nodes[v].get("x", np.nan), P.nodes[v].get("y", np.nan))
          for u, v, d in P.edges(data=True) if d.get("kind") == "mv_line"]
    mv_x, mv_y = _segments(np.asarray(mv, dtype=float).reshape(-1, 4))

    f = city.facilities
    fdf = pd.DataFrame({"facility_id": f.index.to_numpy(), "kind": f["kind"].to_numpy(),
                        "name": f["name"].astype(str).to_numpy(),
                        "x": f.geometry.x.to_numpy(), "y": f.geometry.y.to_numpy()})
    return CityMapData(name=city.name, road_x=road_x, road_y=road_y, road_mid=mid,
                       edge_xy=edge_xy, buildings=bdf, power_nodes=pn, mv_x=mv_x, mv_y=mv_y,
                       facilities=fdf)


def _segments(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, 4) segment endpoints -> x, y arrays with NaN gaps (one plotly trace for all)."""
    m = len(xy)
    x = np.full(3 * m, np.nan)
    y = np.full(3 * m, np.nan)
    x[0::3], x[1::3] = xy[:, 0], xy[:, 2]
    y[0::3], y[1::3] = xy[:, 1], xy[:, 3]
    return np.round(x, 1), np.round(y, 1)


def _layout(fig: go.Figure, *, title: str | None = None, height: int = 620) -> go.Figure:
    fig.update_layout(
        title=title, height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        plot_bgcolor="white", paper_bgcolor="white", hovermode="closest", clickmode="event",
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
        uirevision="city", template="none",
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    return fig


def _markers(df: pd.DataFrame, *, layer: str, id_col: str, name: str, color: str,
             size: int = 5, symbol: str = "circle", text: Iterable[str] | None = None,
             visible: bool | str = True) -> go.Scattergl:
    custom = np.column_stack([np.full(len(df), layer, dtype=object),
                              df[id_col].astype(str).to_numpy(dtype=object)])
    return go.Scattergl(
        x=np.round(df["x"].to_numpy(float), 1), y=np.round(df["y"].to_numpy(float), 1),
        mode="markers", name=name, customdata=custom, visible=visible,
        marker=dict(color=color, size=size, symbol=symbol),
        text=list(text) if text is not None else None,
        hovertemplate="%{text}<extra>" + name + "</extra>" if text is not None else None,
        hoverinfo=None if text is not None else "skip",
    )


def city_figure(data: CityMapData, *, layers: Sequence[str] = LAYERS,
                closed_edges: Iterable[int] = (), height: int = 620) -> go.Figure:
    """The City page map: the chosen ``layers`` (subset of :data:`LAYERS`)."""
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown:
        from citytwin.errors import InputError

        raise InputError(f"unknown map layers {unknown} (expected some of {list(LAYERS)})")
    traces: list[Any] = []
    if "roads" in layers:
        traces.append(go.Scattergl(x=data.road_x, y=data.road_y, mode="lines", name="roads",
                                   line=dict(color="#9e9e9e", width=1), hoverinfo="skip"))
        mid = data.road_mid
        traces.append(_markers(
            mid, layer="road", id_col="edge_id", name="road links", color="#9e9e9e", size=4,
            text=[f"{n or '(unnamed)'} · {h} · edge {e}" for n, h, e in
                  zip(mid["name"], mid["highway"], mid["edge_id"], strict=True)],
            visible="legendonly" if len(mid) > 20000 else True,
        ))
        closed = sorted({int(e) for e in closed_edges})
        if closed:
            xy = data.edge_xy[closed]
            cx, cy = _segments(xy)
            traces.append(go.Scattergl(x=cx, y=cy, mode="lines", name="closed",
                                       line=dict(color="#d62728", width=4), hoverinfo="skip"))
    if "buildings" in layers:
        b = data.buildings
        for use, color in USE_COLORS.items():
            part = b[b["use"] == use] if "use" in b else b.iloc[:0]
            if len(part):
                traces.append(_markers(
                    part, layer="building", id_col="building_id", name=use, color=color,
                    size=4, text=[f"building {i} · {use}" for i in part["building_id"]]))
    if "power" in layers:
        traces.append(go.Scattergl(x=data.mv_x, y=data.mv_y, mode="lines", name="MV feeders",
                                   line=dict(color="#8e44ad", width=1.5), hoverinfo="skip"))
        pn = data.power_nodes
        for kind, (color, symbol, size) in POWER_STYLE.items():
            part = pn[pn["kind"] == kind]
            if len(part):
                traces.append(_markers(part, layer="power", id_col="node", name=kind + "s",
                                       color=color, size=size, symbol=symbol,
                                       text=[f"{kind} {n}" for n in part["node"]]))
    if "facilities" in layers:
        f = data.facilities
        for kind, (color, symbol) in FACILITY_STYLE.items():
            part = f[f["kind"] == kind]
            if len(part):
                traces.append(_markers(part, layer="facility", id_col="facility_id",
                                       name=kind.replace("_", " "), color=color, size=12,
                                       symbol=symbol,
                                       text=[f"{kind}: {n}" for n in part["name"]]))
    fig = go.Figure(traces)
    return _layout(fig, height=height)


def inspect(city: City, data: CityMapData, layer: str, ident: str) -> dict[str, Any]:
    """Attributes of one clicked feature (``layer`` from a marker's customdata)."""
    from citytwin.errors import InputError

    try:
        if layer == "road":
            eid = int(ident)
            row = data.road_mid.iloc[eid] if 0 <= eid < len(data.road_mid) else None
            if row is None or int(row["edge_id"]) != eid:
                raise KeyError(eid)
            out = {k: _plain(row[k]) for k in ("edge_id", "name", "highway", "speed_kph",
                                                "lanes", "length")}
            return {"layer": "road link", **out}
        if layer == "building":
            row = city.buildings.loc[int(ident)]
            return {"layer": "building", "building_id": int(ident),
                    **{k: _plain(v) for k, v in row.items() if k != "geometry"}}
        if layer == "power":
            attrs = city.power.nodes[ident]
            return {"layer": "power node", "node": ident, **_power_attrs(attrs)}
        if layer == "facility":
            row = city.facilities.loc[int(ident)]
            return {"layer": "facility", "facility_id": int(ident),
                    **{k: _plain(v) for k, v in row.items() if k != "geometry"}}
    except (KeyError, ValueError, IndexError):
        raise InputError(f"no {layer} with id {ident!r} in city {city.name}") from None
    raise InputError(f"unknown map layer {layer!r} (expected road, building, power, facility)")


_POWER_UNITS = {"design_kva": "design load (kVA)", "rated_kva": "rating (kVA)",
                "rated_mva": "rating (MVA)", "design_kw": "design load (kW)",
                "p_inst_kw": "installed load (kW)", "vn_hv_kv": "HV voltage (kV)",
                "vn_lv_kv": "LV voltage (kV)"}


def _power_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """A power node's attributes with their units in the names (the design load of a
    transformer is in kVA like its rating: 0.111 beside 250 read as a unit slip)."""
    out = {_POWER_UNITS.get(k, k): _plain(v) for k, v in attrs.items()}
    d, r = attrs.get("design_kva"), attrs.get("rated_kva")
    if isinstance(d, int | float) and isinstance(r, int | float) and r > 0:
        out["design load / rating (%)"] = round(100.0 * float(d) / float(r), 2)
        if d < 0.01 * r:
            out["note"] = (f"design load {d:.3g} kVA is under 1 % of the {r:g} kVA rating: "
                           "the smallest standard size serving "
                           f"{attrs.get('n_buildings', '?')} small building(s)")
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and np.isnan(v):
        return None
    return v if isinstance(v, (int, float, str, bool, type(None))) else str(v)


# ----------------------------------------------------------------------- result maps
_BINS_COLORS = ["#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027"]


def link_figure(data: CityMapData, values: pd.Series, *, title: str, bins: Sequence[float],
                labels: Sequence[str], colors: Sequence[str] | None = None,
                height: int = 420) -> go.Figure:
    """Road links coloured by ``values`` (indexed by edge_id) in ``len(bins)-1`` classes."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=data.road_x, y=data.road_y, mode="lines", name="roads",
                               line=dict(color="#e0e0e0", width=1), hoverinfo="skip",
                               showlegend=False))
    vals = values.dropna()
    vals = vals[(vals.index >= 0) & (vals.index < len(data.edge_xy))]
    cls = np.digitize(vals.to_numpy(float), np.asarray(bins)[1:-1])
    for k, label in enumerate(labels):
        ids = vals.index.to_numpy()[cls == k]
        if len(ids) == 0:
            continue
        x, y = _segments(data.edge_xy[ids])
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=label,
                                   line=dict(color=(colors or _BINS_COLORS)[k % 5], width=2.5),
                                   hoverinfo="skip"))
    return _layout(fig, title=title, height=height)


def point_value_figure(points: pd.DataFrame, *, background: CityMapData, title: str,
                       value_label: str, cmax: float | None = None,
                       height: int = 420) -> go.Figure:
    """Markers at ``points.x/y`` coloured by ``points.value`` over a faint road network."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=background.road_x, y=background.road_y, mode="lines",
                               line=dict(color="#e0e0e0", width=1), hoverinfo="skip",
                               showlegend=False))
    if len(points):
        fig.add_trace(go.Scatter(
            x=points["x"], y=points["y"], mode="markers", name=value_label,
            text=[f"{value_label}: {v:.1f}" for v in points["value"]], hoverinfo="text",
            marker=dict(color=points["value"], colorscale="RdYlGn_r", size=7, cmin=0,
                        cmax=cmax if cmax is not None else float(points["value"].max()),
                        colorbar=dict(title=value_label, thickness=12)),
        ))
    return _layout(fig, title=title, height=height)
