"""Scenario interventions that change emergency parameters: add/remove stations, unit counts.

The scenario schema (``citytwin.scenario``) defines ``add_station`` (kind, name, lon, lat, units),
``remove_station`` (name) and ``unit_counts`` (kind, per_station). This module turns them into
:class:`EmergencyParams` fields (``extra_stations``, ``closed_stations``, ``units_per_station`` /
``station_units``). The engine applies them itself when its model carries a ``spec`` with
``interventions``; applying them twice changes nothing (idempotent). Other interventions are
ignored here (road closures reach the engine through the City's road graph).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from citytwin.emergency.params import EmergencyParams, StationSpec
from citytwin.errors import InputError

__all__ = ["params_with_interventions", "snap_to_road_node"]

log = logging.getLogger(__name__)

_HANDLED = ("add_station", "remove_station", "unit_counts")


def snap_to_road_node(city: Any, lon: float, lat: float) -> tuple[int, float]:
    """(road node id, distance in m) of the road node nearest to WGS84 ``lon``/``lat``."""
    from pyproj import Transformer

    from citytwin.emergency.coverage import _arrays

    a = _arrays(city)
    x, y = Transformer.from_crs("EPSG:4326", city.crs, always_xy=True).transform(lon, lat)
    d, i = cKDTree(np.column_stack([a.x, a.y])).query([x, y])
    return a.node_ids[int(i)].item(), float(d)


def _ambulance_split(n: int) -> dict[str, int]:
    return {"als": math.ceil(n / 2), "bls": n // 2}


def params_with_interventions(
    params: EmergencyParams, city: Any, interventions: Iterable[Any], *, max_snap_m: float = 500.0
) -> EmergencyParams:
    """``params`` with the station interventions applied in order (all problems raised at once)."""
    problems: list[str] = []
    data = params.model_dump()
    extra = [StationSpec.model_validate(s) for s in data["extra_stations"]]
    closed = list(data["closed_stations"])
    ups = {k: dict(v) for k, v in data["units_per_station"].items()}
    fac = city.facilities
    for k, iv in enumerate(interventions):
        kind = getattr(iv, "type", None)
        if kind not in _HANDLED:
            continue
        where = f"interventions[{k}] ({kind})"
        if kind == "add_station":
            if iv.kind not in ("fire_station", "ambulance_station"):
                log.warning("%s: %s stations are not modelled by the emergency engine; skipped",
                            where, iv.kind)
                continue
            node, dist = snap_to_road_node(city, iv.lon, iv.lat)
            if dist > max_snap_m:
                problems.append(f"{where} {iv.name!r}: ({iv.lon}, {iv.lat}) is {dist:.0f} m from "
                                f"the nearest road (more than {max_snap_m:.0f} m: outside the city?)")
                continue
            if iv.kind == "fire_station":
                units = dict(ups.get("fire_station", {}))
                units["engine"] = int(iv.units)
            else:
                units = _ambulance_split(int(iv.units))
            if any(e.name == iv.name and e.kind == iv.kind for e in extra):
                continue  # already applied (idempotent: the scenario layer may apply it too)
            extra.append(StationSpec(kind=iv.kind, road_node=int(node), name=iv.name, units=units))
        elif kind == "remove_station":
            ids = [int(i) for i in fac.index[fac["name"].astype(str) == iv.name]]
            if not ids:
                problems.append(f"{where}: no station named {iv.name!r}")
            closed.extend(i for i in ids if i not in closed)
        elif kind == "unit_counts":
            n = int(iv.per_station)
            if iv.kind == "fire_engine":
                ups.setdefault("fire_station", {})["engine"] = n
            elif iv.kind == "ambulance":
                ups["ambulance_station"] = _ambulance_split(n)
                if "fire_station" in ups and ups["fire_station"].get("bls", 0) > 0:
                    ups["fire_station"]["bls"] = n  # ambulances housed at fire stations too
            else:
                log.warning("%s: %s units are not modelled by the emergency engine; skipped",
                            where, iv.kind)
    if problems:
        raise InputError(problems, source="scenario interventions")
    data.update(extra_stations=tuple(extra), closed_stations=tuple(closed),
                units_per_station=ups)
    return EmergencyParams.model_validate(data)
