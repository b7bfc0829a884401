"""Plotly map figures of a City and of results, drawn in the city's metric CRS.

No tile basemap is used (the app works offline): roads, buildings, the power network and
facilities are plain WebGL scatter traces on equal-aspect axes in metres. Every clickable
marker carries ``customdata = [layer, id]`` so a click can be inspected.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
    "COLOR_BY",
    "footprint_traces",
    "footprint_classes",
    "basemap_traces",
    "nearest_feature",
    "rings_xy",
    "scale_bar",
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
    fp_x: np.ndarray = field(default_factory=lambda: np.zeros(0))  # footprint rings, NaN gaps
    fp_y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    fp_pos: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # row -> building
    lu_x: np.ndarray = field(default_factory=lambda: np.zeros(0))  # basemap polygons, NaN gaps
    lu_y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lu_class: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))  # per row
    extent: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)  # x0, y0, x1, y1


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
    n_b = len(b)
    tol = 0.5 if n_b <= 20_000 else 2.0  # metres: invisible at city zoom, fewer vertices
    fp_x, fp_y, fp_pos = rings_xy(b.geometry.to_numpy(), tolerance=tol)
    lu_x = lu_y = np.zeros(0)
    lu_class = np.zeros(0, dtype=object)
    lu = (getattr(city, "layers", None) or {}).get("landuse")
    if lu is not None and len(lu) and "landuse" in lu.columns:
        classes = np.array([basemap_class(v) for v in lu["landuse"].astype(str)], dtype=object)
        keep = classes != ""
        if keep.any():
            lu_x, lu_y, pos = rings_xy(lu.geometry.to_numpy()[keep], tolerance=2.0)
            lu_class = classes[keep][pos]
    fx, fy = np.isfinite(road_x), np.isfinite(road_y)
    parts_x = [road_x[fx], fp_x[np.isfinite(fp_x)]]
    parts_y = [road_y[fy], fp_y[np.isfinite(fp_y)]]
    allx, ally = np.concatenate(parts_x), np.concatenate(parts_y)
    extent = ((float(allx.min()), float(ally.min()), float(allx.max()), float(ally.max()))
              if len(allx) else (0.0, 0.0, 1.0, 1.0))
    return CityMapData(name=city.name, road_x=road_x, road_y=road_y, road_mid=mid,
                       edge_xy=edge_xy, buildings=bdf, power_nodes=pn, mv_x=mv_x, mv_y=mv_y,
                       facilities=fdf, fp_x=fp_x, fp_y=fp_y, fp_pos=fp_pos, lu_x=lu_x,
                       lu_y=lu_y, lu_class=lu_class, extent=extent)


#: basemap class -> fill colour (the city's own land use layer; no tiles: the app is offline)
BASEMAP_STYLE: dict[str, str] = {
    "water": "#cfe3f5", "green": "#dcefd2", "built": "#f1ede6", "rail": "#e4e0ea",
}
_BASEMAP_OF = {
    "basin": "water", "pond": "water", "reservoir": "water", "water": "water",
    "grass": "green", "park": "green", "forest": "green", "meadow": "green",
    "recreation_ground": "green", "cemetery": "green", "allotments": "green",
    "village_green": "green", "garden": "green", "farmland": "green", "orchard": "green",
    "commercial": "built", "residential": "built", "retail": "built", "industrial": "built",
    "civil": "built", "construction": "built", "military": "built", "education": "built",
    "railway": "rail",
}


def basemap_class(landuse: str) -> str:
    """The basemap class of an OSM ``landuse`` value ("" = not drawn)."""
    return _BASEMAP_OF.get(str(landuse).split(";")[0].strip().lower(), "")


def rings_xy(geoms: np.ndarray, *, tolerance: float = 0.0
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exterior rings of (multi)polygons as x, y arrays with a NaN row after each ring (one
    plotly trace draws them all) and the position of each row's geometry in ``geoms``.

    Rings are simplified by ``tolerance`` metres (topology kept) and rounded to 0.1 m: the
    browser gets fewer vertices and shorter numbers."""
    import shapely

    if len(geoms) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    geoms = np.asarray(geoms, dtype=object)
    if tolerance > 0:
        geoms = shapely.simplify(geoms, tolerance, preserve_topology=True)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    poly = shapely.get_type_id(parts) == 3
    parts, part_of = parts[poly], part_of[poly]
    rings = shapely.get_exterior_ring(parts)
    xy, ring_of = shapely.get_coordinates(rings, return_index=True)
    if not len(xy):
        return np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64)
    # insert a NaN row after the last vertex of every ring
    ends = np.flatnonzero(np.diff(ring_of)) + 1
    cut = np.append(ends, len(xy))
    x = np.insert(np.round(xy[:, 0], 1), cut, np.nan)
    y = np.insert(np.round(xy[:, 1], 1), cut, np.nan)
    pos = np.insert(part_of[ring_of], cut, part_of[ring_of][cut - 1])
    return x, y, pos.astype(np.int64)


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
        uirevision="city", template="none", dragmode="pan",
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    return fig


def _markers(df: pd.DataFrame, *, layer: str, id_col: str, name: str, color: str,
             size: int = 5, symbol: str = "circle", text: Iterable[str] | None = None,
             visible: bool | str = True, gl: bool = True) -> Any:
    custom = np.column_stack([np.full(len(df), layer, dtype=object),
                              df[id_col].astype(str).to_numpy(dtype=object)])
    return (go.Scattergl if gl else go.Scatter)(
        x=np.round(df["x"].to_numpy(float), 1), y=np.round(df["y"].to_numpy(float), 1),
        mode="markers", name=name, customdata=custom, visible=visible,
        marker=dict(color=color, size=size, symbol=symbol),
        text=list(text) if text is not None else None,
        hovertemplate="%{text}<extra>" + name + "</extra>" if text is not None else None,
        hoverinfo=None if text is not None else "skip",
    )


#: what the building footprints can be coloured by (column -> legend label)
COLOR_BY: dict[str, str] = {
    "use": "use", "floor_area_m2": "floor area (m²)", "population": "residents",
    "jobs": "jobs", "levels": "storeys",
}
_SEQUENTIAL = ["#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704"]


def polygon_trace(x: np.ndarray, y: np.ndarray, *, name: str, color: str,
                  line: str = "#616161", gl: bool = False, showlegend: bool = True,
                  opacity: float = 1.0) -> Any:
    """Filled polygons (rings with NaN gaps) as one trace: WebGL by default (measured in
    ``benchmarks/app.py --render``), SVG with ``gl=False``."""
    cls = go.Scattergl if gl else go.Scatter
    return cls(x=x, y=y, mode="lines", fill="toself", fillcolor=color, name=name,
               line=dict(color=line, width=0.5), hoverinfo="skip", showlegend=showlegend,
               opacity=opacity)


def basemap_traces(data: CityMapData, *, gl: bool = False) -> list[Any]:
    """The city's own land use polygons (water, green, built-up, rail) under everything."""
    out = []
    for cls, color in BASEMAP_STYLE.items():
        sel = data.lu_class == cls
        if sel.any():
            out.append(polygon_trace(data.lu_x[sel], data.lu_y[sel], name=f"basemap: {cls}",
                                     color=color, line=color, gl=gl, showlegend=False))
    return out


def footprint_classes(data: CityMapData, *, color_by: str = "use"
                      ) -> list[tuple[str, str, np.ndarray]]:
    """The footprint rows (of ``data.fp_x``) per class of ``color_by`` (use, or 5 quantile
    bins of a quantity): ``(legend name, colour, boolean row mask)`` per non-empty class."""
    from citytwin.errors import InputError

    if color_by not in COLOR_BY:
        raise InputError(f"cannot colour buildings by {color_by!r} "
                         f"(expected one of {list(COLOR_BY)})")
    b = data.buildings
    if not len(data.fp_x) or color_by not in b.columns:
        return []
    out = []
    if color_by == "use":
        uses = b["use"].astype(str).to_numpy()
        row_use = uses[data.fp_pos]
        for use, color in USE_COLORS.items():
            sel = row_use == use
            if sel.any():
                out.append((use, color, sel))
        return out
    vals = pd.to_numeric(b[color_by], errors="coerce").to_numpy(float)
    finite = vals[np.isfinite(vals)]
    if not len(finite):
        return []
    edges = np.unique(np.quantile(finite, [0, 0.2, 0.4, 0.6, 0.8, 1.0]))
    if len(edges) < 2:
        edges = np.array([finite.min(), finite.min() + 1])
    cls = np.clip(np.searchsorted(edges, vals, side="right") - 1, 0, len(edges) - 2)
    cls = np.where(np.isfinite(vals), cls, -1)
    row_cls = cls[data.fp_pos]
    for k in range(len(edges) - 1):
        sel = row_cls == k
        if sel.any():
            out.append((f"{COLOR_BY[color_by]} {edges[k]:,.0f}–{edges[k + 1]:,.0f}",
                        _SEQUENTIAL[k % 5], sel))
    return out


def footprint_traces(data: CityMapData, *, color_by: str = "use", gl: bool = False
                     ) -> list[Any]:
    """Building footprints, one trace per class of ``color_by`` (use, or 5 quantile bins of
    a quantity)."""
    return [polygon_trace(data.fp_x[sel], data.fp_y[sel], name=name, color=color, gl=gl)
            for name, color, sel in footprint_classes(data, color_by=color_by)]


#: above this many buildings the footprints are one raster image (measured with
#: ``benchmarks/app.py --render``: SVG polygons take ~0.6 ms each to draw in Chromium, so
#: 100k would be a minute; a PNG draws at once and clicks still resolve on the server)
VECTOR_FOOTPRINTS_MAX = 20_000
#: above this many road links the lines and markers are WebGL, below SVG
VECTOR_LINES_MAX = 20_000


def footprint_image(data: CityMapData, *, color_by: str = "use", width_px: int = 2400
                    ) -> dict[str, Any] | None:
    """The footprints as a PNG laid on the map in metres (a plotly layout image)."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    traces = footprint_traces(data, color_by=color_by)
    if not traces:
        return None
    x0, y0, x1, y1 = data.extent
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    px_w = width_px
    px_h = max(int(width_px * h / w), 1)
    fig = Figure(figsize=(px_w / 100, px_h / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    for t in traces:
        x, y = np.asarray(t.x, float), np.asarray(t.y, float)
        cut = np.flatnonzero(np.isnan(x))
        rings = [np.c_[a, b] for a, b in zip(np.split(x, cut), np.split(y, cut), strict=True)]
        rings = [r[np.isfinite(r[:, 0])] for r in rings]
        ax.add_collection(PolyCollection([r for r in rings if len(r) >= 3],
                                         facecolor=t.fillcolor, edgecolor="none"))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.axis("off")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", transparent=True, pil_kwargs={"compress_level": 1})
    src = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return dict(source=src, xref="x", yref="y", x=x0, y=y1, sizex=w, sizey=h,
                sizing="stretch", layer="below", name="building footprints")


def city_figure(data: CityMapData, *, layers: Sequence[str] = LAYERS,
                closed_edges: Iterable[int] = (), height: int = 620,
                color_by: str = "use", overlays: Sequence[Any] = ()) -> go.Figure:
    """The City page map: the basemap (the city's land use), then the chosen ``layers``
    (subset of :data:`LAYERS`), buildings as footprints coloured by ``color_by``, the
    ``overlays`` (interventions) on top, and a scale bar."""
    unknown = sorted(set(layers) - set(LAYERS))
    if unknown:
        from citytwin.errors import InputError

        raise InputError(f"unknown map layers {unknown} (expected some of {list(LAYERS)})")
    # SVG draws a small city faster than WebGL (no GL context to set up; measured in Chromium:
    # Helsinki 1.0 s against 1.3-2.6 s); WebGL lines only for big road networks
    gl = len(data.edge_xy) > VECTOR_LINES_MAX
    line_cls = go.Scattergl if gl else go.Scatter
    traces: list[Any] = basemap_traces(data)
    image = None
    if "buildings" in layers:
        if len(data.buildings) <= VECTOR_FOOTPRINTS_MAX:
            traces += footprint_traces(data, color_by=color_by)
        else:
            image = footprint_image(data, color_by=color_by)
    if "roads" in layers:
        traces.append(line_cls(x=data.road_x, y=data.road_y, mode="lines", name="roads",
                                   line=dict(color="#9e9e9e", width=1.2), hoverinfo="skip"))
        closed = sorted({int(e) for e in closed_edges})
        if closed:
            xy = data.edge_xy[closed]
            cx, cy = _segments(xy)
            traces.append(line_cls(x=cx, y=cy, mode="lines", name="closed",
                                       line=dict(color="#d62728", width=4), hoverinfo="skip"))
    if "power" in layers:
        traces.append(line_cls(x=data.mv_x, y=data.mv_y, mode="lines", name="MV feeders",
                                   line=dict(color="#8e44ad", width=1.5), hoverinfo="skip"))
        pn = data.power_nodes
        for kind, (color, symbol, size) in POWER_STYLE.items():
            part = pn[pn["kind"] == kind]
            if len(part):
                traces.append(_markers(part, layer="power", id_col="node", name=kind + "s",
                                       color=color, size=size, symbol=symbol, gl=gl,
                                       text=[f"{kind} {n}" for n in part["node"]]))
    if "facilities" in layers:
        f = data.facilities
        for kind, (color, symbol) in FACILITY_STYLE.items():
            part = f[f["kind"] == kind]
            if len(part):
                traces.append(_markers(part, layer="facility", id_col="facility_id",
                                       name=kind.replace("_", " "), color=color, size=12,
                                       symbol=symbol, gl=gl,
                                       text=[f"{kind}: {n}" for n in part["name"]]))
    traces += list(overlays)
    fig = go.Figure(traces)
    _layout(fig, height=height)
    if image is not None:
        fig.add_layout_image(image)
    scale_bar(fig, data)
    return fig


def scale_bar(fig: go.Figure, mapdata: CityMapData) -> None:
    """Ask for a scale bar: :class:`citytwin.app.plotview.PlotView` draws a round length in
    the plot's lower left and measures it again after every pan or zoom (a shape in metres
    could be panned off the plot). ``mapdata`` is the city drawn (the bar needs equal axes)."""
    if mapdata.extent[2] > mapdata.extent[0]:
        fig.update_layout(meta={"citytwin_scalebar": True})


def nearest_feature(city: City, data: CityMapData, x: float, y: float, *, tol_m: float,
                    layers: Sequence[str] = LAYERS) -> tuple[str, str] | None:
    """The feature a click at (x, y) (metres) means, as ``(layer, id)`` for :func:`inspect`:
    a facility or power node within ``tol_m``, else the building footprint containing the
    point, else the road link within ``tol_m``; None when nothing is there."""
    import shapely

    pt = np.array([x, y])
    best: tuple[float, str, str] | None = None
    if "facilities" in layers and len(data.facilities):
        f = data.facilities
        d = np.hypot(f["x"].to_numpy(float) - x, f["y"].to_numpy(float) - y)
        i = int(np.argmin(d))
        if d[i] <= tol_m:
            best = (float(d[i]), "facility", str(f["facility_id"].iloc[i]))
    if "power" in layers and len(data.power_nodes):
        pn = data.power_nodes[data.power_nodes["kind"].isin(list(POWER_STYLE))]
        if len(pn):
            d = np.hypot(pn["x"].to_numpy(float) - x, pn["y"].to_numpy(float) - y)
            i = int(np.nanargmin(d))
            if d[i] <= tol_m and (best is None or d[i] < best[0]):
                best = (float(d[i]), "power", str(pn["node"].iloc[i]))
    if best is not None:
        return best[1], best[2]
    if "buildings" in layers and len(city.buildings):
        geoms = city.buildings.geometry.to_numpy()
        hit = shapely.contains_xy(geoms, x, y)
        if hit.any():
            return "building", str(city.buildings.index[int(np.flatnonzero(hit)[0])])
    if "roads" in layers and len(data.edge_xy):
        a, b = data.edge_xy[:, :2], data.edge_xy[:, 2:]
        ab = b - a
        L2 = np.maximum((ab ** 2).sum(axis=1), 1e-9)
        t = np.clip(((pt - a) * ab).sum(axis=1) / L2, 0, 1)
        d = np.hypot(*(a + t[:, None] * ab - pt).T)
        i = int(np.argmin(d))
        if d[i] <= tol_m:
            return "road", str(int(data.road_mid["edge_id"].iloc[i]))
    return None


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
