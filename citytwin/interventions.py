"""Interventions: every what-if change a scenario can make, each one class in this file.

An intervention carries everything about itself: its fields and their validation (pydantic),
:meth:`Intervention.check` against the city it will be applied to, its ``City -> City`` change
(:meth:`Intervention.apply_city`, pure: the input city is never changed) and its change of
the domains' parameters or of the fleet (:meth:`Intervention.apply_params`). :func:`apply`
runs them all, in file order, and returns the :class:`Setup` the engines are built from —
the only road from a scenario to an engine, used by the model and by the twin's calibration.

Adding an intervention is one class here (decorated with :func:`register`) and its test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from citytwin.emergency.params import EmergencyParams, StationSpec
from citytwin.energy.engine import EnergyParams
from citytwin.energy.outages import FailureSpec, unknown_assets
from citytwin.energy.weather import TemperatureShift as _Shift
from citytwin.errors import InputError
from citytwin.fleet import ChargingPolicy, Fleet
from citytwin.network import edits
from citytwin.traffic.params import TrafficParams

if TYPE_CHECKING:  # pragma: no cover
    from citytwin.city import City
    from citytwin.scenario import Scenario

__all__ = [
    "REGISTRY",
    "AddLink",
    "AddStation",
    "AssetFailure",
    "ChangeCapacity",
    "ChangeLanes",
    "ChangeSpeed",
    "CloseRoad",
    "DemandGrowth",
    "EvShare",
    "Intervention",
    "PvShare",
    "RemoveStation",
    "Setup",
    "TemperatureShift",
    "UnitCounts",
    "AnyIntervention",
    "apply",
    "check",
    "register",
    "snap_lonlat",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
DomainParams = TrafficParams | EnergyParams | EmergencyParams

#: intervention ``type`` tag -> class (filled by :func:`register`)
REGISTRY: dict[str, type[Intervention]] = {}


class Intervention(BaseModel):
    """Base of every intervention. Subclasses set ``type`` (a ``Literal``) and override what
    they change; the defaults change nothing."""

    model_config = _FROZEN
    #: the domain sections one of which must be on for this intervention to act
    needs: ClassVar[tuple[str, ...]] = ()

    def check(self, city: City, scenario: Scenario) -> list[str]:
        """Problems of this intervention on ``city`` (empty: it can be applied)."""
        return []

    def apply_city(self, city: City) -> City:
        """The city after this intervention (a new object; ``city`` is untouched)."""
        return city

    def apply_params(self, section: str, data: dict[str, Any], city: City) -> None:
        """Change ``data`` (the model dump of section ``section``: ``traffic``, ``energy``,
        ``emergency`` or ``fleet``) in place."""




def register(cls: type[Intervention]) -> type[Intervention]:
    """Class decorator: add an intervention class to :data:`REGISTRY` under its tag(s)."""
    ann = cls.model_fields["type"].annotation
    for tag in getattr(ann, "__args__", ()):
        if tag in REGISTRY:
            raise TypeError(f"intervention type {tag!r} registered twice")
        REGISTRY[tag] = cls
    return cls


# --------------------------------------------------------------------------- roads


class _Roads(Intervention):
    """Roads chosen by ``edges`` (edge ids) or by ``street`` (exact, else case-insensitive
    street name), not both."""

    edges: tuple[Annotated[int, Field(ge=0)], ...] = ()
    street: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_selector(self) -> _Roads:
        if bool(self.edges) == (self.street is not None):
            raise ValueError("give exactly one of 'edges' (edge ids) or 'street' (a street name)")
        return self

    def _selection(self) -> dict[str, Any]:
        return {"edges": self.edges, "street": self.street}

    def check(self, city: City, scenario: Scenario) -> list[str]:
        try:
            edits.select_links(city.roads, **self._selection())
        except InputError as exc:
            field = "street" if self.street is not None else "edges"
            return [f"{field}: {p} in city {city.name!r}" for p in exc.problems]
        return []


@register
class CloseRoad(_Roads):
    """Close the selected road links to all traffic (they keep their ``edge_id``)."""

    type: Literal["close_road"] = "close_road"

    def apply_city(self, city: City) -> City:
        return edits.close_links(city, **self._selection())


@register
class ChangeLanes(_Roads):
    """Set the number of lanes on the selected links (capacity scales with lanes)."""

    type: Literal["change_lanes"] = "change_lanes"
    lanes: int = Field(ge=1, le=8)

    def apply_city(self, city: City) -> City:
        return edits.set_lanes(city, lanes=self.lanes, **self._selection())


@register
class ChangeSpeed(_Roads):
    """Set the speed limit on the selected links."""

    type: Literal["change_speed"] = "change_speed"
    speed_kph: float = Field(gt=0, le=130)

    def apply_city(self, city: City) -> City:
        return edits.set_speed(city, speed_kph=self.speed_kph, **self._selection())


@register
class ChangeCapacity(_Roads):
    """Multiply the capacity of the selected links (a street by name, or edge ids) by
    ``factor``."""

    type: Literal["change_capacity"] = "change_capacity"
    factor: float = Field(gt=0, le=5)

    def apply_city(self, city: City) -> City:
        return edits.scale_capacity(city, factor=self.factor, **self._selection())


LonLat = tuple[Annotated[float, Field(ge=-180, le=180)], Annotated[float, Field(ge=-90, le=90)]]


@register
class AddLink(Intervention):
    """A new road link between two existing road nodes: by node id (``u``, ``v``) or by
    (lon, lat) points snapped to the nearest road node (``from_lonlat``, ``to_lonlat``).

    Length defaults to the straight line; capacity to 1800 veh/h per lane; ``both_ways`` adds
    the reverse link too. New links get edge ids after the city's largest.
    """

    type: Literal["add_link"] = "add_link"
    u: int | None = None
    v: int | None = None
    from_lonlat: LonLat | None = None
    to_lonlat: LonLat | None = None
    name: str = ""
    speed_kph: float = Field(default=50.0, gt=0, le=130)
    lanes: int = Field(default=1, ge=1, le=8)
    capacity_vph: float | None = Field(default=None, gt=0, le=20_000)
    length_m: float | None = Field(default=None, gt=0, le=50_000)
    both_ways: bool = False

    @model_validator(mode="after")
    def _one_pair(self) -> AddLink:
        ids = self.u is not None and self.v is not None
        pts = self.from_lonlat is not None and self.to_lonlat is not None
        partial = (self.u is None) != (self.v is None) or \
            (self.from_lonlat is None) != (self.to_lonlat is None)
        if ids == pts or partial:
            raise ValueError("give either both 'u' and 'v' (road node ids) or both "
                             "'from_lonlat' and 'to_lonlat' ([lon, lat] points)")
        return self

    def _nodes(self, city: City) -> tuple[int, int]:
        if self.u is not None and self.v is not None:
            return self.u, self.v
        assert self.from_lonlat is not None and self.to_lonlat is not None
        return (snap_lonlat(city, *self.from_lonlat), snap_lonlat(city, *self.to_lonlat))

    def check(self, city: City, scenario: Scenario) -> list[str]:
        try:
            u, v = self._nodes(city)
        except ValueError as exc:
            return [str(exc)]
        out = [f"{k}: node {n!r} is not a road node of city {city.name!r}"
               for k, n in (("u", u), ("v", v)) if n not in city.roads]
        if u == v:
            out.append(f"the two ends snap to the same road node {u} (expected two nodes)")
        return out

    def apply_city(self, city: City) -> City:
        u, v = self._nodes(city)
        return edits.add_link(city, u=u, v=v, speed_kph=self.speed_kph, lanes=self.lanes,
                              capacity_vph=self.capacity_vph, name=self.name,
                              length=self.length_m, both_ways=self.both_ways)


# --------------------------------------------------------------------------- demand, fleet


@register
class DemandGrowth(Intervention):
    """Scale travel demand (trips) by ``factor``."""

    type: Literal["demand_growth"] = "demand_growth"
    needs: ClassVar[tuple[str, ...]] = ("traffic",)
    factor: float = Field(gt=0, le=5)

    def apply_params(self, section: str, data: dict[str, Any], city: City) -> None:
        if section == "traffic":
            data["demand_scale"] = data["demand_scale"] * self.factor


@register
class EvShare(Intervention):
    """Share of cars that are electric, and how they charge: sets the scenario's fleet, which
    traffic (which cars are EVs) and energy (their charging) both read."""

    type: Literal["ev_share"] = "ev_share"
    needs: ClassVar[tuple[str, ...]] = ("traffic", "energy")
    share: float = Field(ge=0, le=1)
    charging: ChargingPolicy = "uncontrolled"

    def apply_params(self, section: str, data: dict[str, Any], city: City) -> None:
        if section == "fleet":
            data["ev_share"] = self.share
            data["charging"] = self.charging


# --------------------------------------------------------------------------- energy


@register
class PvShare(Intervention):
    """Share of buildings with rooftop PV."""

    type: Literal["pv_share"] = "pv_share"
    needs: ClassVar[tuple[str, ...]] = ("energy",)
    share: float = Field(ge=0, le=1)

    def apply_params(self, section: str, data: dict[str, Any], city: City) -> None:
        if section == "energy":
            data["pv_share"] = self.share


@register
class TemperatureShift(_Shift, Intervention):
    """Outdoor temperature + ``delta_c`` from ``start_h`` for ``duration_h`` hours (bounds
    −40 … +20 K). ``heat_wave`` requires a warming (``delta_c`` > 0), ``cold_snap`` a cooling
    (< 0); ``temperature_shift`` takes either sign."""

    type: Literal["temperature_shift", "heat_wave", "cold_snap"] = "temperature_shift"
    needs: ClassVar[tuple[str, ...]] = ("energy",)

    @model_validator(mode="after")
    def _sign(self) -> TemperatureShift:
        if self.type == "heat_wave" and not self.delta_c > 0:
            raise ValueError(f"a heat_wave needs delta_c > 0 (got {self.delta_c}); use "
                             "cold_snap or temperature_shift for a cooling")
        if self.type == "cold_snap" and not self.delta_c < 0:
            raise ValueError(f"a cold_snap needs delta_c < 0 (got {self.delta_c}); use "
                             "heat_wave or temperature_shift for a warming")
        return self

    def check(self, city: City, scenario: Scenario) -> list[str]:
        if self.start_h >= scenario.duration_h:
            return [f"starts at {self.start_h} h, after the simulated period "
                    f"({scenario.duration_h} h)"]
        return []

    def apply_params(self, section: str, data: dict[str, Any], city: City) -> None:
        if section == "energy":
            spec = _Shift(delta_c=self.delta_c, start_h=self.start_h, duration_h=self.duration_h)
            data["temperature_shifts"] = (*data["temperature_shifts"], spec.model_dump())


@register
class AssetFailure(FailureSpec, Intervention):
    """A power asset (substation or transformer id, or a line/tie ``element_id``) fails at
    ``at_h`` for ``duration_h`` hours; checked against the same asset list the energy engine
    fails."""

    type: Literal["asset_failure"] = "asset_failure"
    needs: ClassVar[tuple[str, ...]] = ("energy",)

    def check(self, city: City, scenario: Scenario) -> list[str]:
        out = [f"asset: {p}" for p in unknown_assets(getattr(city, "power", None), [self])]
        if self.at_h >= scenario.duration_h:
            out.append(f"starts at {self.at_h} h, after the simulated period "
                       f"({scenario.duration_h} h)")
        return out

    def apply_params(self, section: str, data: dict[str, Any], city: City) -> None:
        if section == "energy":
            spec = FailureSpec(asset=self.asset, at_h=self.at_h, duration_h=self.duration_h)
            data["failures"] = (*data["failures"], spec.model_dump())


# --------------------------------------------------------------------------- emergency

UnitType = Literal["engine", "ladder", "bls", "als"]
StationKind = Literal["fire_station", "ambulance_station"]


@register
class AddStation(Intervention):
    """Add an emergency station at (lon, lat) (WGS84 degrees), snapped to the nearest road node.

    ``units`` maps unit type (engine, ladder, bls, als) to count; absent: the default
    complement of a station of that kind.
    """

    type: Literal["add_station"] = "add_station"
    needs: ClassVar[tuple[str, ...]] = ("emergency",)
    kind: StationKind
    name: str = Field(min_length=1)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    units: dict[UnitType, Annotated[int, Field(ge=0, le=50)]] | None = None

    def check(self, city: City, scenario: Scenario) -> list[str]:
        try:  # a station in the harbour or outside the city is an error, not a silent snap
            limit = getattr(getattr(city, "options", None), "max_station_snap_m", 500.0)
            snap_lonlat(city, self.lon, self.lat, max_m=limit)
        except ValueError as exc:
            return [f"{exc}; [build] max_station_snap_m"]
        return []

    def apply_params(self, section: str, data: dict[str, Any], city: City) -> None:
        if section != "emergency":
            return
        spec = StationSpec(kind=self.kind, road_node=snap_lonlat(city, self.lon, self.lat),
                           name=self.name,
                           units={str(k): v for k, v in self.units.items()}
                           if self.units is not None else None)
        data["extra_stations"] = (*data["extra_stations"], spec.model_dump())


@register
class RemoveStation(Intervention):
    """Remove an emergency station (facility) by its exact name."""

    type: Literal["remove_station"] = "remove_station"
    needs: ClassVar[tuple[str, ...]] = ("emergency",)
    name: str = Field(min_length=1)

    def check(self, city: City, scenario: Scenario) -> list[str]:
        fac = city.facilities
        known = set(fac["name"].astype(str)) if len(fac) else set()
        if self.name not in known:
            return [f"name: no station named {self.name!r} (known: {sorted(known)[:10]})"]
        return []

    def apply_params(self, section: str, data: dict[str, Any], city: City) -> None:
        if section != "emergency":
            return
        fac = city.facilities
        ids = [int(i) for i in fac.index[fac["name"].astype(str) == self.name]]
        data["closed_stations"] = tuple(sorted({*data["closed_stations"], *ids}))


@register
class UnitCounts(Intervention):
    """Number of units of type ``unit`` (engine, ladder, bls, als) at every station of
    ``station_kind``."""

    type: Literal["unit_counts"] = "unit_counts"
    needs: ClassVar[tuple[str, ...]] = ("emergency",)
    station_kind: StationKind
    unit: UnitType
    count: int = Field(ge=0, le=50)

    def apply_params(self, section: str, data: dict[str, Any], city: City) -> None:
        if section != "emergency":
            return
        ups = {k: dict(v) for k, v in data["units_per_station"].items()}
        ups.setdefault(self.station_kind, {})[self.unit] = self.count
        data["units_per_station"] = ups


# --------------------------------------------------------------------------- the union

#: the discriminated union a scenario's ``interventions`` list is validated against
AnyIntervention = Annotated[
    CloseRoad | ChangeLanes | ChangeSpeed | ChangeCapacity | AddLink | DemandGrowth | EvShare
    | PvShare | TemperatureShift | AssetFailure | AddStation | RemoveStation | UnitCounts,
    Field(discriminator="type"),
]


def _check_union_complete() -> None:
    in_union = {c for c in AnyIntervention.__origin__.__args__}  # type: ignore[attr-defined]
    missing = set(REGISTRY.values()) - in_union
    if missing:  # pragma: no cover - a programming error caught at import
        raise TypeError(f"registered but not in AnyIntervention: {sorted(c.__name__ for c in missing)}")


_check_union_complete()


# --------------------------------------------------------------------------- applying


@dataclass(frozen=True)
class Setup:
    """What the engines are built from: the city after the interventions, each domain's
    parameters after them (None: the domain is off) and the fleet."""

    city: City
    traffic: TrafficParams | None
    energy: EnergyParams | None
    emergency: EmergencyParams | None
    fleet: Fleet

    @property
    def params(self) -> Mapping[str, DomainParams | None]:
        """domain -> its parameters (None: off)."""
        return {"traffic": self.traffic, "energy": self.energy, "emergency": self.emergency}


def snap_lonlat(city: City, lon: float, lat: float, *, max_m: float = 2000.0) -> int:
    """The road node (id) nearest to (lon, lat); ValueError when farther than ``max_m``."""
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", city.crs, always_xy=True).transform(lon, lat)
    arrays = city.road_arrays
    d2 = (arrays.x - x) ** 2 + (arrays.y - y) ** 2
    i = int(np.argmin(d2))
    dist = float(np.sqrt(d2[i]))
    if dist > max_m:
        raise ValueError(f"({lon}, {lat}) is {dist:.0f} m from the nearest road of city "
                         f"{city.name!r} (expected a point within {max_m:.0f} m)")
    return int(arrays.node_ids[i])


def check(scenario: Scenario, city: City) -> list[str]:
    """Every problem of the scenario's interventions on ``city`` (key paths included)."""
    problems: list[str] = []
    on = set(scenario.domains())
    for i, iv in enumerate(scenario.interventions):
        key = f"interventions[{i}]"
        if iv.needs and not on.intersection(iv.needs):
            sections = " or ".join(f"[{d}]" for d in iv.needs)
            problems.append(f"{key}: a {iv.type} intervention needs the {sections} section "
                            f"(that domain is off)")
        problems.extend(f"{key}.{p}" if p.split(":")[0].isidentifier() else f"{key}: {p}"
                        for p in iv.check(city, scenario))
    return problems


def apply(scenario: Scenario, city: City) -> Setup:
    """Check and apply a scenario's interventions, in order: city changes first (every later
    parameter change sees the changed city), then each section's parameter changes.
    ``ScenarioError`` lists every problem at once."""
    from citytwin.errors import ScenarioError

    source = str(scenario.source or scenario.name)
    problems = check(scenario, city)
    if problems:
        raise ScenarioError(problems, source=source)
    for iv in scenario.interventions:
        city = iv.apply_city(city)
    sections: dict[str, BaseModel | None] = {d: getattr(scenario, d) for d in scenario.DOMAINS}
    sections["fleet"] = scenario.fleet
    out: dict[str, BaseModel | None] = {}
    for name, model in sections.items():
        if model is None:
            out[name] = None
            continue
        data = model.model_dump()
        for iv in scenario.interventions:
            iv.apply_params(name, data, city)
        try:
            out[name] = type(model).model_validate(data)
        except ValidationError as exc:
            from citytwin.scenario import problems_from_validation

            raise ScenarioError([f"{name} (after interventions): {p}"
                                 for p in problems_from_validation(exc)], source=source) from None
    traffic, energy, emergency, fleet = (out["traffic"], out["energy"], out["emergency"],
                                         out["fleet"])
    assert isinstance(traffic, TrafficParams | None) and isinstance(energy, EnergyParams | None)
    assert isinstance(emergency, EmergencyParams | None) and isinstance(fleet, Fleet)
    return Setup(city=city, traffic=traffic, energy=energy, emergency=emergency, fleet=fleet)
