"""A synthetic grid road graph with the contract attributes (tests, benchmarks, demos)."""

from __future__ import annotations

import networkx as nx
import numpy as np
from shapely.geometry import LineString

from citytwin.rng import stream

__all__ = ["grid_roads", "chain_roads", "links_roads"]


def grid_roads(
    rows: int,
    cols: int,
    *,
    seed: int = 0,
    length_m: tuple[float, float] = (300.0, 500.0),
    lanes: tuple[int, ...] = (1, 2),
    speeds_kph: tuple[float, ...] = (30.0, 40.0, 50.0),
    lane_capacity_vph: float | None = None,
) -> nx.MultiDiGraph:
    """``rows`` x ``cols`` two-way grid. Column gaps and row gaps are drawn in ``length_m``;
    every street (a whole row or column) gets one lane count and one speed limit.

    ``lane_capacity_vph=None`` uses the triangular-diagram capacity of a street with jam spacing
    5 m and a 1 s reaction time (``u*w*k/(u+w)`` with ``w = 5 m/s``), else the given value per lane.
    """
    if rows < 2 or cols < 2:
        raise ValueError(f"grid_roads: need rows, cols >= 2, got {rows} x {cols}")
    rng = stream(seed, "synth")
    xs = np.concatenate([[0.0], np.cumsum(rng.uniform(*length_m, cols - 1))])
    ys = np.concatenate([[0.0], np.cumsum(rng.uniform(*length_m, rows - 1))])
    row_lanes = rng.choice(lanes, rows)
    col_lanes = rng.choice(lanes, cols)
    row_speed = rng.choice(speeds_kph, rows)
    col_speed = rng.choice(speeds_kph, cols)
    G = nx.MultiDiGraph(crs="EPSG:3067", name=f"grid{rows}x{cols}")
    for i in range(rows):
        for j in range(cols):
            G.add_node(i * cols + j, x=float(xs[j]), y=float(ys[i]), lon=0.0, lat=0.0)
    eid = 0

    def add(u: int, v: int, ln: int, spd: float, name: str) -> None:
        nonlocal eid
        a, b = G.nodes[u], G.nodes[v]
        length = float(np.hypot(a["x"] - b["x"], a["y"] - b["y"]))
        u_ms = spd / 3.6
        if lane_capacity_vph is None:
            w, k = 5.0, 0.2
            cap_lane = u_ms * w * k / (u_ms + w) * 3600.0
        else:
            cap_lane = lane_capacity_vph
        G.add_edge(
            u, v, edge_id=eid, osmid=eid, name=name, highway="residential", oneway=False,
            length=length, speed_kph=float(spd), travel_time=length / u_ms, lanes=int(ln),
            capacity_vph=float(cap_lane * ln),
            geometry=LineString([(a["x"], a["y"]), (b["x"], b["y"])]),
        )
        eid += 1

    for i in range(rows):
        for j in range(cols - 1):
            u, v = i * cols + j, i * cols + j + 1
            add(u, v, int(row_lanes[i]), float(row_speed[i]), f"Row {i}")
            add(v, u, int(row_lanes[i]), float(row_speed[i]), f"Row {i}")
    for j in range(cols):
        for i in range(rows - 1):
            u, v = i * cols + j, (i + 1) * cols + j
            add(u, v, int(col_lanes[j]), float(col_speed[j]), f"Column {j}")
            add(v, u, int(col_lanes[j]), float(col_speed[j]), f"Column {j}")
    return G


def chain_roads(links: list[tuple[float, float, int, float]]) -> nx.MultiDiGraph:
    """One-way chain of links, nodes ``0..n``; ``links`` = (length_m, speed_kph, lanes,
    capacity_vph) each. The smallest network for analytic checks (bottlenecks, spillback)."""
    G = nx.MultiDiGraph(crs="EPSG:3067", name="chain")
    x = 0.0
    G.add_node(0, x=0.0, y=0.0, lon=0.0, lat=0.0)
    for i, (length, speed, lanes, cap) in enumerate(links):
        G.add_node(i + 1, x=x + length, y=0.0, lon=0.0, lat=0.0)
        G.add_edge(i, i + 1, edge_id=i, osmid=i, name=f"link {i}", highway="primary", oneway=True,
                   length=float(length), speed_kph=float(speed), travel_time=length / (speed / 3.6),
                   lanes=int(lanes), capacity_vph=float(cap),
                   geometry=LineString([(x, 0.0), (x + length, 0.0)]))
        x += length
    return G


def links_roads(pos: dict[int, tuple[float, float]],
                links: list[tuple[int, int, int, float] | tuple[int, int, int, float, float]],
                speed_kph: float = 50.0) -> nx.MultiDiGraph:
    """One-way straight links between the points ``pos`` (node -> x, y in metres); ``links`` =
    (u, v, lanes, capacity_vph) each, with an optional fifth item, the length in metres (else
    the distance between the points). Small hand-drawn junctions (merges, diverges)."""
    G = nx.MultiDiGraph(crs="EPSG:3067", name="links")
    for n, (x, y) in pos.items():
        G.add_node(n, x=float(x), y=float(y), lon=0.0, lat=0.0)
    u_ms = speed_kph / 3.6
    for i, (u, v, lanes, cap, *rest) in enumerate(links):
        (x0, y0), (x1, y1) = pos[u], pos[v]
        length = float(rest[0]) if rest else float(np.hypot(x1 - x0, y1 - y0))
        G.add_edge(u, v, edge_id=i, osmid=i, name=f"l{i}", highway="primary", oneway=True,
                   length=length, speed_kph=float(speed_kph), travel_time=length / u_ms,
                   lanes=int(lanes), capacity_vph=float(cap),
                   geometry=LineString([(x0, y0), (x1, y1)]))
    return G
