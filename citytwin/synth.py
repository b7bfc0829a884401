"""Synthetic cities for scale tests: a street grid with arterials, mixed-use buildings,
emergency facilities and substations, written as a GeoPackage in a real UTM CRS (EPSG:32635,
the Helsinki zone) so that it goes through exactly the same loading path as real data.

Layout: square blocks of ``block_m`` metres between streets; every ``arterial_every``-th street
is a 4-lane ``primary`` arterial at 50 km/h, the others are 2-lane ``residential`` streets at
30 km/h. Each block holds 8 lots (4 × 2) with one building each. Uses are drawn with a denser
office/retail core; levels and construction years by use. Everything is vectorized and all
randomness comes from ``citytwin.rng.stream(seed, "synth")``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from citytwin.errors import InputError
from citytwin.rng import stream

__all__ = ["synthetic_layers", "write_synthetic_city", "SYNTH_CRS"]

log = logging.getLogger(__name__)

SYNTH_CRS = "EPSG:32635"
_ORIGIN = (380_000.0, 6_660_000.0)
_USES = np.array(["residential", "office", "retail", "industrial", "education", "health",
                  "public", "hospitality"])
_P_CORE = np.array([0.35, 0.30, 0.15, 0.00, 0.04, 0.04, 0.06, 0.06])
_P_REST = np.array([0.72, 0.05, 0.06, 0.08, 0.03, 0.02, 0.02, 0.02])
# levels (low, high inclusive) by use
_LEVELS = {"residential": (1, 8), "office": (3, 10), "retail": (1, 3), "industrial": (1, 2),
           "education": (2, 4), "health": (2, 6), "public": (1, 4), "hospitality": (3, 8)}


def _frame(site: tuple[float, float] | None) -> tuple[str, tuple[float, float]]:
    """(CRS, origin x/y) of the synthetic city: Helsinki's UTM zone, or ``site``'s."""
    if site is None:
        return SYNTH_CRS, _ORIGIN
    lat, lon = site
    if not (-80 <= lat <= 84 and -180 <= lon <= 180):
        raise InputError([f"site must be a (lat, lon) within UTM's -80..84 / -180..180, "
                          f"got {site}"])
    zone = int((lon + 180) // 6) % 60 + 1
    epsg = (32600 if lat >= 0 else 32700) + zone
    pt = gpd.GeoSeries(shapely.points([lon], [lat]), crs=4326).to_crs(epsg).iloc[0]
    return f"EPSG:{epsg}", (float(pt.x), float(pt.y))


def synthetic_layers(
    n_buildings: int, *, seed: int = 0, block_m: float = 100.0, arterial_every: int = 5,
    residential_only: bool = False, site: tuple[float, float] | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """Layers (roads, buildings, facilities, power) of a synthetic city of ``n_buildings``.

    ``residential_only``: every building residential, no facility and no power layer (a
    dormitory suburb, for the build's job inference and the domains' "no stations" paths).
    ``site``: (lat, lon) of the city's south-west corner, in that place's UTM zone (default:
    Helsinki's zone, EPSG:32635) — the same city anywhere on Earth, for tests of what
    depends on where a city is (sun, time zone, weather)."""
    if n_buildings < 1:
        raise InputError([f"n_buildings must be >= 1, got {n_buildings}"])
    if block_m < 40:
        raise InputError([f"block_m must be >= 40 m, got {block_m}"])
    rng = stream(seed, "synth")
    per_block = 8
    nblocks = -(-n_buildings // per_block)
    k = max(2, int(np.ceil(np.sqrt(nblocks))))  # blocks per side
    crs, (x0, y0) = _frame(site)

    # --- streets: (k+1) x (k+1) grid nodes, horizontal and vertical segments
    idx = np.arange(k + 1)
    gx, gy = np.meshgrid(idx, idx, indexing="ij")  # gx[i, j] = i
    hi, hj = gx[:-1, :].ravel(), gy[:-1, :].ravel()  # horizontal: (i, j) -> (i+1, j)
    vi, vj = gx[:, :-1].ravel(), gy[:, :-1].ravel()  # vertical: (i, j) -> (i, j+1)
    sx = np.concatenate([hi, vi]) * block_m + x0
    sy = np.concatenate([hj, vj]) * block_m + y0
    ex = np.concatenate([hi + 1, vi]) * block_m + x0
    ey = np.concatenate([hj, vj + 1]) * block_m + y0
    coords = np.stack([np.stack([sx, sy], 1), np.stack([ex, ey], 1)], axis=1)
    lines = shapely.linestrings(coords)
    # a horizontal segment lies on street row j; a vertical one on street column i
    line_no = np.concatenate([hj, vi])
    arterial = (line_no % arterial_every) == 0
    nseg = len(lines)
    roads = gpd.GeoDataFrame(
        {
            "osmid": np.arange(nseg, dtype=np.int64),
            "name": np.where(arterial, "Arterial ", "Street ").astype(object)
            + np.concatenate([np.char.add("H", hj.astype(str)),
                              np.char.add("V", vi.astype(str))]).astype(object),
            "highway": np.where(arterial, "primary", "residential"),
            "oneway": np.full(nseg, "no"),
            "maxspeed": np.where(arterial, 50, 30).astype(np.int64),
            "lanes": np.where(arterial, 4, 2).astype(np.int64),
        },
        geometry=lines,
        crs=crs,
    )

    # --- lots: 8 per block (4 along x, 2 along y), first n_buildings in block order
    lot = np.arange(n_buildings)
    block = lot // per_block
    bi, bj = block // k, block % k
    li, lj = lot % 4, (lot // 4) % 2
    margin = 0.1 * block_m
    lot_w = (block_m - 2 * margin) / 4
    lot_h = (block_m - 2 * margin) / 2
    lx = x0 + bi * block_m + margin + li * lot_w
    ly = y0 + bj * block_m + margin + lj * lot_h
    w = lot_w * rng.uniform(0.55, 0.85, n_buildings)
    h = lot_h * rng.uniform(0.45, 0.8, n_buildings)
    # buildings face their street: lower row at the bottom of the lot, upper row at the top
    bx = lx + (lot_w - w) / 2
    by = np.where(lj == 0, ly + 0.05 * lot_h, ly + lot_h - h - 0.05 * lot_h)
    boxes = shapely.box(bx, by, bx + w, by + h)

    cx, cy = (bi + 0.5) / k - 0.5, (bj + 0.5) / k - 0.5
    core = np.hypot(cx, cy) < 0.2
    u = rng.random(n_buildings)
    use = np.where(
        core,
        _USES[np.searchsorted(np.cumsum(_P_CORE), u * _P_CORE.sum())],
        _USES[np.searchsorted(np.cumsum(_P_REST), u * _P_REST.sum())],
    )
    lo = np.array([_LEVELS[x][0] for x in _USES])
    hi_ = np.array([_LEVELS[x][1] for x in _USES])
    code = np.searchsorted(_USES, use, sorter=np.argsort(_USES))
    code = np.argsort(_USES)[code]
    levels = rng.integers(lo[code], hi_[code] + 1)
    if residential_only:
        use = np.full(n_buildings, "residential")
    levels = np.where(core & (use != "industrial"), levels + 2, levels)
    year = rng.integers(1900, 2025, n_buildings)
    buildings = gpd.GeoDataFrame(
        {
            "osm_id": lot.astype(np.int64),
            "building": use,
            "levels": levels.astype(float),
            "year_built": year.astype(np.int64),
        },
        geometry=boxes,
        crs=crs,
    )

    # --- facilities at block centres (distinct blocks)
    counts = {
        "fire_station": max(1, n_buildings // 5000),
        "ambulance_station": max(1, n_buildings // 8000),
        "hospital": max(1, n_buildings // 20000),
        "police": max(1, n_buildings // 10000),
    }
    used_blocks = int(block.max()) + 1
    total = sum(counts.values())
    pick = rng.choice(used_blocks, size=min(total, used_blocks), replace=False)
    kinds = np.repeat(list(counts), list(counts.values()))[: len(pick)]
    fbx, fby = pick // k, pick % k
    names = [f"{kd.replace('_', ' ').title()} {i + 1}"
             for i, kd in enumerate(kinds)]
    facilities = gpd.GeoDataFrame(
        {"kind": kinds, "name": names, "osm_id": np.arange(len(pick), dtype=np.int64)},
        geometry=shapely.points(x0 + (fbx + 0.5) * block_m, y0 + (fby + 0.5) * block_m),
        crs=crs,
    )

    # --- substations: one per ~10k buildings on a regular sub-grid of the city
    ns = max(1, int(round(n_buildings / 10_000)))
    m = int(np.ceil(np.sqrt(ns)))
    side = k * block_m
    sub = np.arange(ns)
    px = x0 + (sub % m + 0.5) / m * side
    py = y0 + (sub // m + 0.5) / int(np.ceil(ns / m)) * side
    power = gpd.GeoDataFrame(
        {"power": np.full(ns, "substation"), "name": [f"Substation {i + 1}" for i in sub],
         "voltage": np.full(ns, "110000;10000")},
        geometry=shapely.points(px, py),
        crs=crs,
    )
    log.info("synthetic city: %d buildings, %d road links, %d facilities, %d substations",
             n_buildings, nseg, len(facilities), ns)
    if residential_only:
        return {"roads": roads, "buildings": buildings}
    return {"roads": roads, "buildings": buildings, "facilities": facilities, "power": power}


def write_synthetic_city(
    out: str | Path, *, n_buildings: int, seed: int = 0, block_m: float = 100.0,
    residential_only: bool = False, site: tuple[float, float] | None = None,
) -> Path:
    """Write :func:`synthetic_layers` to the GeoPackage ``out`` (atomically). Returns ``out``."""
    from citytwin.osm import write_gpkg

    layers = synthetic_layers(n_buildings, seed=seed, block_m=block_m,
                              residential_only=residential_only, site=site)
    return write_gpkg(layers, out)


