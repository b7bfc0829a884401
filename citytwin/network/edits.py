"""Road interventions as pure ``City -> City`` functions (the input city is never changed).

Links are chosen by ``edges`` (edge ids) or ``street`` (the edge ``name``; exact match, else
case-insensitive). A closed link stays in the graph with its ``edge_id`` (so results of scenarios
stay comparable link by link) but gets ``closed=True``, ``travel_time=inf`` and ``capacity_vph=0``:
routing drops it (``RoadArrays.matrix`` ignores non-finite costs) and the traffic engine never loads
it. Trips that lose every route are reported as ``no_route`` by the traffic engine.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import networkx as nx
from shapely.geometry import LineString

from citytwin.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from citytwin.city import City

__all__ = [
    "select_links",
    "close_links",
    "set_lanes",
    "set_speed",
    "scale_capacity",
    "set_capacity",
    "add_link",
    "apply_intervention",
]


def _name_matches(name: Any, street: str, *, exact: bool) -> bool:
    names = name if isinstance(name, list | tuple) else [name]
    for n in names:
        n = str(n or "")
        if (n == street) if exact else (n.lower() == street.lower()):
            return True
    return False


def select_links(G: nx.MultiDiGraph, *, edges: Iterable[int] = (), street: str | None = None,
                 ) -> list[tuple[Any, Any, Any]]:
    """(u, v, key) of the links with the given ``edge_id``s or street name; InputError naming
    every unknown id / the unknown street."""
    edges = [int(e) for e in edges]
    if bool(edges) == (street is not None):
        raise InputError("give exactly one of 'edges' (edge ids) or 'street' (a street name)",
                         source="road selection")
    if street is not None:
        out = [(u, v, k) for u, v, k, d in G.edges(keys=True, data=True)
               if _name_matches(d.get("name", ""), street, exact=True)]
        if not out:
            out = [(u, v, k) for u, v, k, d in G.edges(keys=True, data=True)
                   if _name_matches(d.get("name", ""), street, exact=False)]
        if not out:
            names = sorted({str(d.get("name")) for *_, d in G.edges(data=True) if d.get("name")})
            near = [n for n in names if street.lower()[:4] in n.lower()][:5]
            raise InputError(f"no road named {street!r}" + (f"; similar: {near}" if near else ""),
                             source="road selection")
        return out
    by_id = {int(d["edge_id"]): (u, v, k) for u, v, k, d in G.edges(keys=True, data=True)}
    bad = [e for e in edges if e not in by_id]
    if bad:
        raise InputError([f"edge id {e} does not exist (expected 0..{len(by_id) - 1})"
                          for e in bad], source="road selection")
    return [by_id[e] for e in edges]


def _edit(city: City, sel: dict[str, Any], fn) -> Any:
    G = city.roads.copy()
    for u, v, k in select_links(G, **sel):
        fn(G.edges[u, v, k])
    return city.with_roads(G)


def close_links(city: City, *, edges: Iterable[int] = (), street: str | None = None) -> Any:
    """Close links to all traffic."""

    def close(d: dict) -> None:
        d["closed"] = True
        d["travel_time"] = math.inf
        d["capacity_vph"] = 0.0

    return _edit(city, {"edges": edges, "street": street}, close)


def set_lanes(city: City, *, lanes: int, edges: Iterable[int] = (), street: str | None = None) -> Any:
    """Set the lane count; capacity scales with lanes (per-lane capacity kept)."""
    if int(lanes) < 1:
        raise InputError(f"lanes: expected an integer >= 1, got {lanes}", source="set_lanes")

    def change(d: dict) -> None:
        old = max(int(d.get("lanes", 1)), 1)
        d["capacity_vph"] = float(d.get("capacity_vph", 1800.0 * old)) * int(lanes) / old
        d["lanes"] = int(lanes)

    return _edit(city, {"edges": edges, "street": street}, change)


def set_speed(city: City, *, speed_kph: float, edges: Iterable[int] = (),
              street: str | None = None) -> Any:
    """Set the speed limit (free-flow travel time follows)."""
    if not speed_kph > 0:
        raise InputError(f"speed_kph: expected > 0, got {speed_kph}", source="set_speed")

    def change(d: dict) -> None:
        d["speed_kph"] = float(speed_kph)
        if not d.get("closed", False):
            d["travel_time"] = float(d["length"]) / (float(speed_kph) / 3.6)

    return _edit(city, {"edges": edges, "street": street}, change)


def scale_capacity(city: City, *, factor: float, edges: Iterable[int] = (),
                   street: str | None = None) -> Any:
    """Multiply link capacity by ``factor``."""
    if not factor > 0:
        raise InputError(f"factor: expected > 0, got {factor}", source="scale_capacity")

    def change(d: dict) -> None:
        d["capacity_vph"] = float(d.get("capacity_vph", 1800.0)) * float(factor)

    return _edit(city, {"edges": edges, "street": street}, change)


def set_capacity(city: City, *, capacity_vph: float, edges: Iterable[int] = (),
                 street: str | None = None) -> Any:
    """Set the whole-link capacity (veh/h)."""
    if not capacity_vph > 0:
        raise InputError(f"capacity_vph: expected > 0, got {capacity_vph}", source="set_capacity")

    def change(d: dict) -> None:
        d["capacity_vph"] = float(capacity_vph)

    return _edit(city, {"edges": edges, "street": street}, change)


def add_link(city: City, *, u: Any, v: Any, speed_kph: float = 50.0, lanes: int = 1,
             capacity_vph: float | None = None, name: str = "", length: float | None = None,
             both_ways: bool = False, highway: str = "unclassified") -> Any:
    """Add a straight link ``u -> v`` (and ``v -> u`` with ``both_ways``); new ``edge_id``s
    continue after the largest one. Capacity defaults to 1800 veh/h per lane."""
    G = city.roads.copy()
    problems = [f"node {n!r} is not in the road graph" for n in (u, v) if n not in G]
    if u == v:
        problems.append("u and v must differ")
    if not speed_kph > 0:
        problems.append(f"speed_kph: expected > 0, got {speed_kph}")
    if int(lanes) < 1:
        problems.append(f"lanes: expected >= 1, got {lanes}")
    if length is not None and not length > 0:
        problems.append(f"length: expected > 0, got {length}")
    if problems:
        raise InputError(problems, source="add_link")
    next_id = 1 + max((int(d["edge_id"]) for *_, d in G.edges(data=True)), default=-1)
    for a, b in [(u, v), (v, u)] if both_ways else [(u, v)]:
        pa, pb = G.nodes[a], G.nodes[b]
        geom = LineString([(pa["x"], pa["y"]), (pb["x"], pb["y"])])
        ln = float(length) if length is not None else float(geom.length)
        G.add_edge(a, b, edge_id=next_id, osmid=-1 - next_id, name=name, highway=highway,
                   oneway=not both_ways, length=ln, speed_kph=float(speed_kph),
                   travel_time=ln / (float(speed_kph) / 3.6), lanes=int(lanes),
                   capacity_vph=float(capacity_vph if capacity_vph is not None
                                      else 1800.0 * int(lanes)),
                   geometry=geom, added=True)
        next_id += 1
    return city.with_roads(G)


def apply_intervention(city: City, iv: Any) -> Any:
    """Apply a scenario road intervention (an object or dict with ``type`` in ``close_road``,
    ``change_lanes``, ``change_speed``, ``change_capacity``, ``add_link``)."""
    get = (lambda k, default=None: iv.get(k, default)) if isinstance(iv, dict) else (
        lambda k, default=None: getattr(iv, k, default))
    kind = get("type")
    sel = {"edges": tuple(get("edges", ()) or ()), "street": get("street")}
    if kind == "close_road":
        return close_links(city, **sel)
    if kind == "change_lanes":
        return set_lanes(city, lanes=get("lanes"), **sel)
    if kind == "change_speed":
        return set_speed(city, speed_kph=get("speed_kph"), **sel)
    if kind == "change_capacity":
        return scale_capacity(city, factor=get("factor"), **sel)
    if kind == "add_link":
        return add_link(city, u=get("u"), v=get("v"), speed_kph=get("speed_kph", 50.0),
                        lanes=get("lanes", 1), capacity_vph=get("capacity_vph"),
                        name=get("name", "") or "", length=get("length"),
                        both_ways=bool(get("both_ways", False)))
    raise InputError(f"unknown road intervention type {kind!r} (expected close_road, "
                     "change_lanes, change_speed, change_capacity, add_link)", source="interventions")
