"""Synthetic cities for scale tests: a street grid with arterials, mixed-use buildings,
emergency facilities and substations, written as a GeoPackage in a real UTM CRS (EPSG:32635,
the Helsinki zone) so that it goes through exactly the same loading path as real data.

Layout: square blocks of ``block_m`` metres between streets; every ``arterial_every``-th street
is a 4-lane ``primary`` arterial at 50 km/h, the others are 2-lane ``residential`` streets at
30 km/h. A city at least ``2 * trunk_every`` blocks across (4 km at the defaults; the 10k city
and smaller have none) also gets ``trunk`` roads, 6-lane dual carriageways at 80 km/h, one every
``trunk_every`` streets (2 km) on an arterial line, grade-separated with interchanges only at
arterials: a road hierarchy that grows with the city, as real ones do. Without it, a big city's
trips (their lengths grow with its size under the gravity model) all crowd onto 50 km/h
arterials: the 100k city jammed in its morning peak, ~30 % of trips forced through by the stuck
timer. Each block holds 8 lots (4 × 2) with one building each. Uses are drawn with a denser
office/retail core, a fifth of the city's width in radius but at most ``core_max_m`` (1 km, a
CBD's size; the central Helsinki test city has 70k jobs on 1.6 km2) — a core growing with the city
gave the 100k city a 16 km2 CBD of ~650k jobs, all reached by car at the demand's car share.
Levels and construction years by use.

Residential density falls with the distance from the centre in a city at least 4 km across (the
size from which it gets trunk roads at the defaults; the 10k city and smaller are unchanged): Clark's
negative-exponential law, D(r) = D0 exp(-b r) (C. Clark, "Urban population densities",
J. R. Stat. Soc. A 114(4), 490-496, 1951), applied to residential levels: a residential
building at r km from the centre keeps ``max(1, rint(levels x exp(-b r)))`` of its drawn levels,
with b = ``density_gradient_per_km`` (0.3: the 1-8 levels of the centre are 1-2 from 4 km out).
D0 stays that of the uniform city (~22,000 residents/km2, an inner-city block's), so the 30k
city has ~11,600 residents/km2 and the 100k city ~7,800 (uniform: ~22,000 at every size, 2.8 M
people on the 100k city's 125 km2, central Helsinki's test city ~5,950). With one level as the
floor the outskirts keep ~5,000/km2 (every lot built). Without it the 100k city's demand exceeded
what any street network carries (4.7 % of the morning peak forced through by the stuck timer).

Everything is vectorized and all randomness comes from ``citytwin.rng.stream(seed, "synth")``;
the density law reshapes drawn levels after the draws, so the later draws are the same.
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
_BIG_CITY_M = 4000.0  # width from which a city gets trunk roads and a density gradient
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


def _trunk_lines(k: int, arterial_every: int, trunk_every: int) -> np.ndarray:
    """Street lines (0..k) that are trunk roads: none in a city under ``2 * trunk_every`` blocks
    across, else one every ``trunk_every`` lines placed symmetrically about the centre, each on
    the nearest arterial line and at least one arterial spacing from the edge."""
    if trunk_every <= 0 or k < 2 * trunk_every:
        return np.zeros(0, dtype=np.int64)
    c = k / 2
    m = np.arange(-(k // trunk_every) - 1, k // trunk_every + 1)
    target = c + (m + 0.5) * trunk_every
    line = np.rint(target / arterial_every).astype(np.int64) * arterial_every
    return np.unique(line[(line >= arterial_every) & (line <= k - arterial_every)])


def _streets(k: int, block_m: float, arterial_every: int, trunk_every: int, x0: float, y0: float,
             crs: str) -> gpd.GeoDataFrame:
    """The road layer: a (k+1) x (k+1) grid of streets, arterials and (big cities) trunk roads.

    A trunk road runs along a whole street line, grade-separated: one straight line feature per
    stretch between two interchanges (its crossings with arterial lines and the city edge), so
    the residential streets it passes cross it without a junction (the road graph joins lines
    at shared end points and vertices only)."""
    idx = np.arange(k + 1)
    gx, gy = np.meshgrid(idx, idx, indexing="ij")  # gx[i, j] = i
    hi, hj = gx[:-1, :].ravel(), gy[:-1, :].ravel()  # horizontal: (i, j) -> (i+1, j)
    vi, vj = gx[:, :-1].ravel(), gy[:, :-1].ravel()  # vertical: (i, j) -> (i, j+1)
    # per segment: orientation (0 horizontal, 1 vertical), street line, start position along it
    orient = np.concatenate([np.zeros(hi.size, np.int64), np.ones(vi.size, np.int64)])
    line_no = np.concatenate([hj, vi])  # a horizontal segment lies on row j, a vertical on column i
    along = np.concatenate([hi, vj])
    trunk_lines = _trunk_lines(k, arterial_every, trunk_every)
    trunk = np.isin(line_no, trunk_lines)
    # trunk segments of one line between two interchanges become one feature
    stretch = np.where(trunk, along // arterial_every, along)
    key = np.stack([orient, line_no, stretch, trunk.astype(np.int64)], 1)
    _, first, group = np.unique(key, axis=0, return_index=True, return_inverse=True)
    group = group.reshape(-1)
    ng = first.size
    a0 = np.full(ng, k + 1, dtype=np.int64)
    a1 = np.zeros(ng, dtype=np.int64)
    np.minimum.at(a0, group, along)
    np.maximum.at(a1, group, along + 1)
    order = np.argsort(first, kind="stable")  # features in the order of their first segment
    o, ln, a0, a1 = orient[first][order], line_no[first][order], a0[order], a1[order]
    tr = trunk[first][order]
    sx = np.where(o == 0, a0, ln) * block_m + x0
    sy = np.where(o == 0, ln, a0) * block_m + y0
    ex = np.where(o == 0, a1, ln) * block_m + x0
    ey = np.where(o == 0, ln, a1) * block_m + y0
    coords = np.stack([np.stack([sx, sy], 1), np.stack([ex, ey], 1)], axis=1)
    arterial = ~tr & ((ln % arterial_every) == 0)
    cls = np.where(tr, "trunk", np.where(arterial, "primary", "residential"))
    label = np.where(tr, "Trunk ", np.where(arterial, "Arterial ", "Street ")).astype(object)
    return gpd.GeoDataFrame(
        {
            "osmid": np.arange(ng, dtype=np.int64),
            "name": label + np.char.add(np.where(o == 0, "H", "V"), ln.astype(str)).astype(object),
            "highway": cls,
            "oneway": np.full(ng, "no"),
            # trunk: a dual carriageway of 3 lanes each way at 80 km/h (OSM lanes count both)
            "maxspeed": np.select([tr, arterial], [80, 50], 30).astype(np.int64),
            "lanes": np.select([tr, arterial], [6, 4], 2).astype(np.int64),
        },
        geometry=shapely.linestrings(coords),
        crs=crs,
    )


def synthetic_layers(
    n_buildings: int, *, seed: int = 0, block_m: float = 100.0, arterial_every: int = 5,
    trunk_every: int = 20, core_max_m: float = 1000.0, density_gradient_per_km: float = 0.3,
    residential_only: bool = False, site: tuple[float, float] | None = None,
) -> dict[str, gpd.GeoDataFrame]:
    """Layers (roads, buildings, facilities, power) of a synthetic city of ``n_buildings``.

    ``trunk_every``: streets between trunk roads (0: none); ``core_max_m``: largest radius of
    the office core; ``density_gradient_per_km``: Clark's gradient b of residential levels in a
    city from 4 km across (0: uniform; see the module docstring).
    ``residential_only``: every building residential, no facility and no power layer (a
    dormitory suburb, for the build's job inference and the domains' "no stations" paths).
    ``site``: (lat, lon) of the city's south-west corner, in that place's UTM zone (default:
    Helsinki's zone, EPSG:32635) — the same city anywhere on Earth, for tests of what
    depends on where a city is (sun, time zone, weather)."""
    if n_buildings < 1:
        raise InputError([f"n_buildings must be >= 1, got {n_buildings}"])
    if block_m < 40:
        raise InputError([f"block_m must be >= 40 m, got {block_m}"])
    if not density_gradient_per_km >= 0:
        raise InputError([f"density_gradient_per_km must be >= 0, got {density_gradient_per_km}"])
    rng = stream(seed, "synth")
    per_block = 8
    nblocks = -(-n_buildings // per_block)
    k = max(2, int(np.ceil(np.sqrt(nblocks))))  # blocks per side
    crs, (x0, y0) = _frame(site)

    roads = _streets(k, block_m, arterial_every, trunk_every, x0, y0, crs)
    nseg = len(roads)

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
    # the office/retail core: a fifth of the city's width in radius, at most ``core_max_m``
    core = np.hypot(cx, cy) < min(0.2, core_max_m / (k * block_m))
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
    if k * block_m >= _BIG_CITY_M and density_gradient_per_km > 0:
        # Clark's law on residential floors: levels x exp(-b r), at least one
        r_km = np.hypot(cx, cy) * k * block_m / 1000.0
        fall = levels * np.exp(-density_gradient_per_km * r_km)
        levels = np.where(use == "residential", np.maximum(1, np.rint(fall)), levels)
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


