"""Reference cities as real :class:`~citytwin.city.City` objects, for tests, benchmarks and docs.

Each is built by the same builders as a user's city (layers → checks → road graph → buildings
→ power grid); none is a stand-in. Like pandapower's ``networks``, they are small, named and
stable: the same call gives the same city.

- :func:`synthetic` — a street grid with buildings of mixed use, a fire station and a
  synthesised grid (:func:`citytwin.synth.synthetic_layers`), any size;
- :func:`grid` — the smallest synthetic city (48 buildings), the default for unit tests;
- :func:`helsinki` — the shipped default city (central Helsinki from OpenStreetMap, see
  ``geodata/PROVENANCE.md``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from citytwin.city import City
from citytwin.synth import synthetic_layers

__all__ = ["DEFAULT_CITY", "grid", "helsinki", "synthetic"]

#: the shipped default city file (what ``make run`` opens)
DEFAULT_CITY = Path(__file__).resolve().parents[1] / "geodata" / "helsinki.gpkg"


@lru_cache(maxsize=8)
def synthetic(n_buildings: int = 48, *, seed: int = 3, block_m: float = 100.0) -> City:
    """A synthetic city of ``n_buildings`` (memoised per process: treat it as read-only;
    interventions return new cities)."""
    layers = synthetic_layers(n_buildings, seed=seed, block_m=block_m)
    return City.from_layers(layers, name=f"synthetic{n_buildings}")


def grid() -> City:
    """The smallest reference city: 48 buildings on a 3 x 3 block grid."""
    return synthetic(48, seed=3)


def helsinki(*, cache_dir: str | Path | None = None) -> City:
    """The shipped default city (read from the on-disk cache after its first build)."""
    return City.from_path(DEFAULT_CITY, cache_dir=cache_dir)
