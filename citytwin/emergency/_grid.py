"""A small hand-made city (grid streets, buildings, stations) for tests and quick benchmarks.

It carries exactly the attributes the emergency engine reads from a ``City``: ``roads``,
``buildings``, ``facilities``, ``crs``, ``road_arrays``. Not a substitute for the real City.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
from shapely.geometry import Point

from citytwin.network.routing import RoadArrays, road_arrays
from citytwin.rng import stream

__all__ = ["GridCity", "grid_city"]

CRS = "EPSG:32635"  # UTM 35N (Helsinki)
_ORIGIN = (385000.0, 6672000.0)


@dataclass
class GridCity:
    name: str
    roads: nx.MultiDiGraph
    buildings: gpd.GeoDataFrame
    facilities: gpd.GeoDataFrame
    crs: str = CRS
    extra: dict = field(default_factory=dict)

    @cached_property
    def road_arrays(self) -> RoadArrays:
        return road_arrays(self.roads)


def grid_city(
    n: int = 8,
    *,
    spacing_m: float = 400.0,
    speed_kph: float = 40.0,
    buildings_per_node: int = 2,
    stations: dict[str, list[int]] | None = None,
    seed: int = 0,
) -> GridCity:
    """An ``n`` x ``n`` two-way street grid. Node id ``i * n + j`` sits at (i, j) * spacing.

    ``stations``: kind -> node ids (default: fire stations at two corners' insides, one
    ambulance station in the middle, a hospital at the centre).
    """
    rng = stream(seed, "synth")
    x0, y0 = _ORIGIN
    G = nx.MultiDiGraph(crs=CRS)
    for i in range(n):
        for j in range(n):
            G.add_node(i * n + j, x=x0 + spacing_m * i, y=y0 + spacing_m * j)
    eid = 0
    for i in range(n):
        for j in range(n):
            for di, dj in ((1, 0), (0, 1), (-1, 0), (0, -1)):
                a, b = i + di, j + dj
                if 0 <= a < n and 0 <= b < n:
                    G.add_edge(i * n + j, a * n + b, edge_id=eid, length=spacing_m,
                               speed_kph=speed_kph, travel_time=spacing_m / (speed_kph / 3.6),
                               lanes=1, capacity_vph=900.0, highway="residential", oneway=False,
                               name="")
                    eid += 1
    uses = np.array(["residential"] * 6 + ["office", "retail", "industrial", "health"])
    rows = []
    for node in range(n * n):
        for _ in range(buildings_per_node):
            use = str(rng.choice(uses))
            pop = float(rng.integers(20, 200)) if use == "residential" else 0.0
            jobs = 0.0 if use == "residential" else float(rng.integers(10, 150))
            x = G.nodes[node]["x"] + float(rng.uniform(-50, 50))
            y = G.nodes[node]["y"] + float(rng.uniform(-50, 50))
            rows.append({"use": use, "population": pop, "jobs": jobs,
                         "levels": int(rng.integers(1, 8)), "road_node": node,
                         "geometry": Point(x, y).buffer(8.0)})
    buildings = gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)
    buildings.index.name = "building_id"
    if stations is None:
        c = n // 2
        stations = {"fire_station": [1 * n + 1, (n - 2) * n + (n - 2)],
                    "ambulance_station": [c * n + 1],
                    "hospital": [c * n + c]}
    frows: list[dict] = []
    for kind in ("fire_station", "ambulance_station", "hospital", "police"):
        for k, node in enumerate(stations.get(kind, [])):
            frows.append({"kind": kind, "name": f"{kind} {k + 1}", "osm_id": -1 - len(frows),
                          "road_node": node,
                          "geometry": Point(G.nodes[node]["x"], G.nodes[node]["y"])})
    facilities = gpd.GeoDataFrame(pd.DataFrame(frows, columns=[
        "kind", "name", "osm_id", "road_node", "geometry"]), geometry="geometry", crs=CRS)
    facilities.index.name = "facility_id"
    return GridCity(name=f"grid{n}", roads=G, buildings=buildings, facilities=facilities)
