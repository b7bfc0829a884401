"""Hand-built road grids and buildings for the power-graph builder tests (inputs of
``build_power_graph``, not cities)."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
from shapely.geometry import Polygon

from citytwin.rng import stream

CRS = "EPSG:32635"
USES = ["residential", "residential", "residential", "office", "retail", "education", "industrial"]


def grid_roads(n: int = 8, spacing: float = 100.0) -> nx.MultiDiGraph:
    G = nx.MultiDiGraph(crs=CRS)
    for i in range(n):
        for j in range(n):
            G.add_node(i * n + j, x=i * spacing, y=j * spacing)
    eid = 0
    for i in range(n):
        for j in range(n):
            for di, dj in ((1, 0), (0, 1)):
                if i + di < n and j + dj < n:
                    a, b = i * n + j, (i + di) * n + (j + dj)
                    for u, v in ((a, b), (b, a)):
                        G.add_edge(u, v, length=spacing, edge_id=eid, speed_kph=30.0)
                        eid += 1
    return G


def make_buildings(roads: nx.MultiDiGraph, n: int, *, seed: int = 1) -> gpd.GeoDataFrame:
    rng = stream(seed, "synth")
    xs = np.array([d["x"] for _, d in roads.nodes(data=True)])
    ys = np.array([d["y"] for _, d in roads.nodes(data=True)])
    ids = np.array(list(roads.nodes))
    x = rng.uniform(xs.min(), xs.max(), n)
    y = rng.uniform(ys.min(), ys.max(), n)
    use = rng.choice(USES, n)
    area = rng.uniform(100, 3000, n).round(0)
    geom = [Polygon([(a - 5, b - 5), (a + 5, b - 5), (a + 5, b + 5), (a - 5, b + 5)]) for a, b in zip(x, y, strict=True)]
    near = ids[np.argmin((xs[None, :] - x[:, None]) ** 2 + (ys[None, :] - y[:, None]) ** 2, axis=1)]
    return gpd.GeoDataFrame({"use": use, "floor_area_m2": area, "road_node": near},
                            geometry=geom, crs=CRS)
