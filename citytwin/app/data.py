"""Process-wide caches of read-only data (a City, its map arrays, results tables).

These hold no per-user state: a city file or a finished results folder is the same for every
session, so caching them once per process is safe and makes page switches fast.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from citytwin.app.canvasmap import MapPayload
    from citytwin.app.maps import CityMapData
    from citytwin.city import City

__all__ = ["load_city", "load_map_data", "city_layers_cached",
           "load_results", "results_cached", "clear_caches"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
_city_locks: dict[str, threading.Lock] = {}
_cities: OrderedDict[tuple[str, float], tuple[Any, Any]] = OrderedDict()
_results: OrderedDict[tuple[str, float], dict[str, Any]] = OrderedDict()
_MAX_CITIES = 2
_MAX_RESULTS = 16


def _key(path: Path) -> tuple[str, float]:
    p = Path(path).resolve()
    return str(p), p.stat().st_mtime


def _city_entry(path: Path) -> tuple[City, CityMapData]:
    from citytwin.app.maps import city_map_data
    from citytwin.city import City

    key = _key(path)
    with _lock:
        lock = _city_locks.setdefault(key[0], threading.Lock())
    with lock:  # one build per city even if several pages ask at once
        with _lock:
            hit = _cities.get(key)
            if hit is not None:
                _cities.move_to_end(key)
                return hit
        city = City.from_path(key[0])
        entry = (city, city_map_data(city))
        with _lock:
            _cities[key] = entry
            while len(_cities) > _MAX_CITIES:
                _cities.popitem(last=False)
        log.info("loaded city %s (%d roads, %d buildings)", city.name,
                 city.roads.number_of_edges(), len(city.buildings))
        return entry


def load_city(path: Path) -> City:
    """The City in ``path`` (built or read from the on-disk cache once per process)."""
    return _city_entry(path)[0]


def load_map_data(path: Path) -> CityMapData:
    """The map arrays of the city in ``path``."""
    return _city_entry(path)[1]


_payloads: OrderedDict[tuple[Any, ...], Any] = OrderedDict()


def city_layers_cached(path: Path, *, layers: tuple[str, ...],
                       closed_edges: tuple[int, ...] = (), color_by: str = "use") -> MapPayload:
    """The canvas map layers of a city (``citytwin.app.canvasmap.city_layers``), built once
    per city, layer set, colouring and closures and shared by every page (read-only)."""
    from citytwin.app.canvasmap import city_layers

    data = load_map_data(path)
    key = (_key(path), layers, closed_edges, color_by)
    with _lock:
        hit = _payloads.get(key)
        if hit is not None:
            _payloads.move_to_end(key)
            return hit
    payload = city_layers(data, layers=layers, closed_edges=closed_edges, color_by=color_by)
    with _lock:
        _payloads[key] = payload
        while len(_payloads) > 32:
            _payloads.popitem(last=False)
    return payload


def results_cached(path: Path) -> bool:
    """Whether :func:`load_results` has ``path`` in memory (answers without reading it)."""
    try:
        key = _key(Path(path) / "manifest.json")
    except OSError:
        return False
    with _lock:
        return key in _results


def load_results(path: Path) -> dict[str, Any]:
    """Tables and manifest of a results folder: ``{"manifest": dict, "<table>": DataFrame}``."""
    from citytwin.results import Results

    key = _key(Path(path) / "manifest.json")
    with _lock:
        hit = _results.get(key)
        if hit is not None:
            _results.move_to_end(key)
            return hit
    from citytwin.app.compare_view import derived_series

    res = Results.read(Path(path))
    entry: dict[str, Any] = {"manifest": res.manifest, **res.tables}
    entry["_derived"] = derived_series(entry)  # computed once per results folder
    with _lock:
        _results[key] = entry
        while len(_results) > _MAX_RESULTS:
            _results.popitem(last=False)
    return entry


def clear_caches() -> None:
    with _lock:
        _cities.clear()
        _results.clear()
        _payloads.clear()
