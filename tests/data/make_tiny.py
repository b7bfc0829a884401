"""Rebuild ``tests/data/tiny.gpkg``: a hand-made 3 x 3 street grid with known answers.

Run: ``.venv/bin/python tests/data/make_tiny.py``. Coordinates are metres in EPSG:32635 relative
to (385000, 6672000). Expected values are asserted in ``tests/foundation/test_tiny.py``.

Roads: 12 links of 100 m between the 9 grid nodes (0..200 m); the middle row (y = 100) is a
``primary`` with maxspeed 50 and 4 lanes (2 per direction), the rest ``residential`` without
speed/lane tags; the link (200,0)->(200,100) is one-way. A one-way spur (200,200)->(300,200)
and a detached two-way link far away are not strongly connected to the grid and are dropped.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import shapely

from citytwin.osm import write_gpkg

X0, Y0 = 385_000.0, 6_672_000.0
CRS = "EPSG:32635"


def _ln(*pts: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in pts])


def _box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def layers() -> dict[str, gpd.GeoDataFrame]:
    rows = []
    for y in (0, 100, 200):
        for x in (0, 100):
            primary = y == 100
            rows.append({"osmid": len(rows) + 1, "name": f"Row {y}",
                         "highway": "primary" if primary else "residential",
                         "maxspeed": "50" if primary else None, "lanes": "4" if primary else None,
                         "oneway": None, "geometry": _ln((x, y), (x + 100, y))})
    for x in (0, 100, 200):
        for y in (0, 100):
            rows.append({"osmid": len(rows) + 1, "name": f"Col {x}", "highway": "residential",
                         "maxspeed": None, "lanes": None,
                         "oneway": "yes" if (x, y) == (200, 0) else None,
                         "geometry": _ln((x, y), (x, y + 100))})
    rows.append({"osmid": 90, "name": "Spur", "highway": "service", "maxspeed": None,
                 "lanes": None, "oneway": "yes", "geometry": _ln((200, 200), (300, 200))})
    rows.append({"osmid": 91, "name": "", "highway": "residential", "maxspeed": None,
                 "lanes": None, "oneway": "no", "geometry": _ln((1000, 1000), (1100, 1000))})
    roads = gpd.GeoDataFrame(rows, crs=CRS)

    b = [
        # building, levels, height, shop, amenity, start_date, geometry
        ("apartments", 5, None, None, None, None, _box(85, 100 + 5, 105, 115)),  # 200 m2
        ("yes", None, None, None, None, None, _box(130, 130, 140, 140)),  # in commercial landuse
        ("yes", 1, None, "supermarket", None, None, _box(20, 20, 40, 40)),  # 400 m2 retail
        ("yes", None, 12.0, None, None, None, _box(160, 20, 170, 30)),  # restaurant POI inside
        ("yes", None, None, None, None, "1975", _box(20, 160, 30, 170)),  # default residential
        ("house", None, None, None, None, None, _box(60, 160, 70, 170)),
        ("shed", None, None, None, None, None, _box(120, 60, 130, 70)),
    ]
    buildings = gpd.GeoDataFrame(
        [{"osm_id": 1000 + i, "building": t, "levels": lv, "height": h, "shop": s,
          "amenity": a, "start_date": sd, "geometry": g}
         for i, (t, lv, h, s, a, sd, g) in enumerate(b)],
        crs=CRS,
    )
    landuse = gpd.GeoDataFrame(
        [{"landuse": "commercial", "geometry": _box(110, 110, 190, 190)},
         {"landuse": "grass", "geometry": _box(10, 150, 90, 190)}],
        crs=CRS,
    )
    pois = gpd.GeoDataFrame(
        [{"amenity": "restaurant", "shop": None, "office": None,
          "geometry": shapely.Point(X0 + 165, Y0 + 25)},
         {"amenity": "bench", "shop": None, "office": None,
          "geometry": shapely.Point(X0 + 25, Y0 + 165)}],
        crs=CRS,
    )
    facilities = gpd.GeoDataFrame(
        [{"kind": "fire_station", "name": "Station 1", "osm_id": 7,
          "geometry": shapely.Point(X0 + 195, Y0 + 195)},
         {"kind": "hospital", "name": "Hospital", "osm_id": 8,
          "geometry": shapely.Point(X0 + 5, Y0 + 195)}],
        crs=CRS,
    )
    power = gpd.GeoDataFrame(
        [{"power": "substation", "name": "S", "geometry": shapely.Point(X0 + 100, Y0 + 50)}],
        crs=CRS,
    )
    return {"roads": roads, "buildings": buildings, "landuse": landuse, "pois": pois,
            "facilities": facilities, "power": power}


if __name__ == "__main__":
    out = write_gpkg(layers(), Path(__file__).with_name("tiny.gpkg"))
    print(out)
