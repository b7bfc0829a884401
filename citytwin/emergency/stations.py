"""Stations and units: the City's ``facilities`` plus scenario additions, checked at the boundary."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import mesa
import numpy as np
import pandas as pd

from citytwin.emergency.params import UNIT_TYPES, EmergencyParams
from citytwin.errors import InputError

__all__ = ["Station", "UnitSpec", "EmergencyUnit", "UNIT_STATES", "build_stations", "hospitals"]

log = logging.getLogger(__name__)

UNIT_STATES = ("available", "dispatched", "on_scene", "transporting", "returning")
STATION_KINDS = ("fire_station", "ambulance_station")


@dataclass(frozen=True)
class Station:
    station_id: int  # facility_id, or -1, -2, ... for scenario additions
    kind: str
    name: str
    road_node: object  # graph node id
    pos: int  # road array position
    units: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class UnitSpec:
    unit_id: int
    unit_type: str
    station_id: int


class EmergencyUnit(mesa.Agent):
    """One staffed vehicle. Position is a road-array position; the engine moves it.

    ``state`` is one of :data:`UNIT_STATES`. ``post`` is the station it currently covers (its home
    station unless moved up). ``route`` is ``(positions, arrival_times)`` while driving.
    """

    def __init__(self, model: mesa.Model, spec: UnitSpec, *, home_pos: int) -> None:
        super().__init__(model)
        self.unit_id = spec.unit_id
        self.unit_type = spec.unit_type
        self.home_station = spec.station_id
        self.post_station = spec.station_id
        self.home_pos = home_pos
        self.post_pos = home_pos
        self.pos_node = home_pos
        self.state = "available"
        self.route: tuple[np.ndarray, np.ndarray] | None = None
        self.incident: int | None = None
        self.dispatch_idx = -1
        self.busy_since = 0.0
        self.busy_s = 0.0
        self.token = 0  # increments on every re-plan; stale events carry an old token

    def set_state(self, state: str, now: float) -> None:
        busy_before = self.state != "available"
        busy_after = state != "available"
        if busy_before and not busy_after:
            self.busy_s += now - self.busy_since
        if busy_after and not busy_before:
            self.busy_since = now
        self.state = state

    def position_at(self, now: float) -> tuple[int, float]:
        """(node position, seconds until the unit is there) at time ``now``."""
        if self.route is None:
            return self.pos_node, 0.0
        nodes, times = self.route
        i = int(np.searchsorted(times, now, side="left"))
        if i >= len(nodes):
            return int(nodes[-1]), 0.0
        return int(nodes[i]), float(times[i] - now)


def _check_units(units: dict[str, int], where: str, problems: list[str]) -> None:
    for t, n in units.items():
        if t not in UNIT_TYPES:
            problems.append(
                f"{where}: unknown unit type {t!r} (expected one of {sorted(UNIT_TYPES)})"
            )
        elif int(n) < 0:
            problems.append(f"{where}: unit count for {t!r} is {n}, expected >= 0")


def build_stations(
    facilities: pd.DataFrame, params: EmergencyParams, *, node_pos: dict[Any, int]
) -> tuple[list[Station], list[UnitSpec]]:
    """Stations with their unit complement, and one :class:`UnitSpec` per unit.

    Raises :class:`InputError` listing every unknown unit type, station off the road network and
    unknown closed station. Missing station kinds are logged (a scenario can add stations).
    """
    problems: list[str] = []
    for kind, units in params.units_per_station.items():
        if kind not in STATION_KINDS:
            problems.append(
                f"units_per_station: unknown station kind {kind!r} (expected {STATION_KINDS})"
            )
        _check_units(units, f"units_per_station[{kind!r}]", problems)
    for fid, units in params.station_units.items():
        _check_units(units, f"station_units[{fid}]", problems)
    missing_cols = {"kind", "road_node"} - set(facilities.columns)
    if missing_cols:
        raise InputError(
            [f"facilities: missing column(s) {sorted(missing_cols)}"], source="facilities"
        )
    fac_ids = set(facilities.index.tolist())
    for fid in params.closed_stations:
        if fid not in fac_ids:
            problems.append(f"closed_stations: facility_id {fid} is not in the facilities layer")
    for fid in params.station_units:
        if fid not in fac_ids:
            problems.append(f"station_units: facility_id {fid} is not in the facilities layer")

    stations: list[Station] = []
    closed = set(params.closed_stations)
    rows = facilities[facilities["kind"].isin(STATION_KINDS)]
    for fid, row in rows.sort_index().iterrows():
        name = str(row.get("name", "") or "")
        if row["road_node"] not in node_pos:
            problems.append(
                f"facility {fid} ({row['kind']} {name!r}): road_node {row['road_node']!r} is "
                "not a node of the road network"
            )
            continue
        if fid in closed:
            continue
        units = params.station_units.get(int(fid), params.units_per_station.get(row["kind"], {}))
        stations.append(
            Station(int(fid), str(row["kind"]), name, row["road_node"],
                    node_pos[row["road_node"]], dict(units))
        )
    for i, spec in enumerate(params.extra_stations):
        sid = -(i + 1)
        units = spec.units if spec.units is not None else params.units_per_station.get(spec.kind, {})
        _check_units(units, f"extra_stations[{i}]", problems)
        if spec.road_node not in node_pos:
            problems.append(
                f"extra_stations[{i}] ({spec.kind} {spec.name!r}): road_node {spec.road_node} "
                "is not a node of the road network"
            )
            continue
        stations.append(Station(sid, spec.kind, spec.name or f"new {spec.kind} {i + 1}",
                                spec.road_node, node_pos[spec.road_node], dict(units)))
    if problems:
        raise InputError(problems, source="emergency stations")

    for kind in STATION_KINDS:
        if not any(s.kind == kind for s in stations):
            log.warning("no %s in the city (after closures); add one in the scenario", kind)
    specs: list[UnitSpec] = []
    for s in stations:
        for t in sorted(s.units):  # fixed order: deterministic unit ids
            for _ in range(int(s.units[t])):
                specs.append(UnitSpec(len(specs), t, s.station_id))
    present = {u.unit_type for u in specs}
    for t in UNIT_TYPES:
        if t not in present:
            log.warning("no %s unit in the city; calls needing one use an alternative or wait", t)
    return stations, specs


def hospitals(facilities: pd.DataFrame, *, node_pos: dict[Any, int]) -> np.ndarray:
    """Road positions of the hospitals (off-network hospitals are an error naming the record)."""
    if "kind" not in facilities.columns:
        return np.empty(0, dtype=np.int64)
    rows = facilities[facilities["kind"] == "hospital"]
    problems = [
        f"facility {fid} (hospital {row.get('name', '')!r}): road_node {row['road_node']!r} is "
        "not a node of the road network"
        for fid, row in rows.iterrows()
        if row["road_node"] not in node_pos
    ]
    if problems:
        raise InputError(problems, source="facilities")
    if rows.empty:
        log.warning("no hospital in the city: medical calls are treated on scene (no transport)")
    return np.array([node_pos[n] for n in rows.sort_index()["road_node"]], dtype=np.int64)
