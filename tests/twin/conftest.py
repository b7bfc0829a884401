"""A tiny contract-shaped twin (4 x 4 street grid, 24 buildings, 2 transformers) for sync tests."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely

from citytwin import examples
from citytwin.city import City

X0, Y0, STEP = 385_000.0, 6_672_000.0, 200.0  # ETRS-TM35FIN, central Helsinki
USES = ("residential", "office", "retail")


def grid_twin(n: int = 4) -> City:
    G = nx.MultiDiGraph(crs="EPSG:3067")
    for i in range(n):
        for j in range(n):
            G.add_node(i * n + j, x=X0 + j * STEP, y=Y0 + i * STEP)
    eid = 0
    for i in range(n):
        for j in range(n):
            a = i * n + j
            for b in ([a + 1] if j + 1 < n else []) + ([a + n] if i + 1 < n else []):
                for u, v in ((a, b), (b, a)):
                    pu, pv = G.nodes[u], G.nodes[v]
                    G.add_edge(
                        u, v, edge_id=eid, osmid=eid, name=f"street {min(u, v)}-{max(u, v)}",
                        highway="residential", oneway=False, length=STEP, speed_kph=36.0,
                        travel_time=STEP / 10.0, lanes=1, capacity_vph=900.0,
                        geometry=shapely.LineString([(pu["x"], pu["y"]), (pv["x"], pv["y"])]),
                    )
                    eid += 1
    rows = []
    for k in range(24):
        i, j = divmod(k, 6)
        cx = X0 + 40 + j * 100.0 * (n - 1) / 6
        cy = Y0 + 60 + i * 130.0
        rows.append(
            {
                "use": USES[k % 3],
                "floor_area_m2": 500.0 + 50 * k,
                "population": 10 + k,
                "jobs": 5 + k,
                "road_node": int(np.argmin([(G.nodes[m]["x"] - cx) ** 2 + (G.nodes[m]["y"] - cy) ** 2 for m in G.nodes])),
                "transformer": "t0" if k < 12 else "t1",
                "geometry": shapely.box(cx - 10, cy - 10, cx + 10, cy + 10),
            }
        )
    buildings = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:3067")
    buildings.index.name = "building_id"
    P = nx.Graph()
    P.add_node("s0", kind="substation", x=X0, y=Y0)
    for t in ("t0", "t1"):
        P.add_node(t, kind="transformer", x=X0, y=Y0, rated_kva=400)
        P.add_edge("s0", t, kind="mv_line", length_m=100.0, element_id=f"l{t}")
    for b in buildings.index:
        P.add_node(f"b{b}", kind="building", building_id=int(b), x=X0, y=Y0)
        P.add_edge(buildings.loc[b, "transformer"], f"b{b}", kind="service", length_m=10.0,
                   element_id=f"sv{b}")
    facilities = gpd.GeoDataFrame(
        {"kind": ["fire_station"], "name": ["Station 0"], "osm_id": [0], "road_node": [0]},
        geometry=[shapely.Point(X0, Y0)], crs="EPSG:3067")
    facilities.index.name = "facility_id"
    return examples.assembled(G, buildings=buildings, facilities=facilities, power=P, name="grid",
                              crs="EPSG:3067")


@pytest.fixture(scope="session")
def twin() -> City:
    return grid_twin()
