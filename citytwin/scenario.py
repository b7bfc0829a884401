"""Scenarios: frozen, validated what-ifs loaded from TOML.

A scenario names a city file, a seed, a simulated period, the parameters of each domain
(a domain whose section is absent is off) and a list of typed interventions. ``extends``
inherits another scenario file: tables are merged recursively, scalar values and arrays are
replaced, except ``interventions``, which are appended to the inherited ones.

Every problem of one file is collected into a single :class:`~citytwin.errors.ScenarioError`
naming the file, the key path and what was expected.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from citytwin.emergency.params import EmergencyParams, StationSpec
from citytwin.energy import EnergyParams
from citytwin.energy import apply_interventions as _energy_overrides
from citytwin.errors import ScenarioError
from citytwin.traffic.params import TrafficParams

__all__ = [
    "Scenario",
    "Intervention",
    "CloseRoad",
    "ChangeLanes",
    "ChangeSpeed",
    "ChangeCapacity",
    "DemandGrowth",
    "EvShare",
    "PvShare",
    "HeatWave",
    "AddStation",
    "RemoveStation",
    "AssetFailure",
    "UnitCounts",
    "load_scenario",
    "loads_scenario",
    "scenario_from_dict",
    "scenario_schema",
    "DOMAINS",
]

DOMAINS: tuple[str, ...] = ("traffic", "energy", "emergency")
_FROZEN = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- interventions


class _RoadSelection(BaseModel):
    """Roads chosen by ``edges`` (edge ids) or by ``street`` (exact street name), not both."""

    model_config = _FROZEN
    edges: tuple[Annotated[int, Field(ge=0)], ...] = ()
    street: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_selector(self) -> _RoadSelection:
        if bool(self.edges) == (self.street is not None):
            raise ValueError("give exactly one of 'edges' (edge ids) or 'street' (a street name)")
        return self


class CloseRoad(_RoadSelection):
    """Close the selected road links to all traffic."""

    type: Literal["close_road"] = "close_road"


class ChangeLanes(_RoadSelection):
    """Set the number of lanes on the selected links (capacity scales with lanes)."""

    type: Literal["change_lanes"] = "change_lanes"
    lanes: int = Field(ge=1, le=8)


class ChangeSpeed(_RoadSelection):
    """Set the speed limit on the selected links."""

    type: Literal["change_speed"] = "change_speed"
    speed_kph: float = Field(gt=0, le=130)


class ChangeCapacity(_RoadSelection):
    """Multiply the capacity of the selected links by ``factor``."""

    type: Literal["change_capacity"] = "change_capacity"
    factor: float = Field(gt=0, le=5)


class DemandGrowth(BaseModel):
    """Scale travel demand (trips) by ``factor``."""

    model_config = _FROZEN
    type: Literal["demand_growth"] = "demand_growth"
    factor: float = Field(gt=0, le=5)


class EvShare(BaseModel):
    """Share of cars that are electric, and how they charge."""

    model_config = _FROZEN
    type: Literal["ev_share"] = "ev_share"
    share: float = Field(ge=0, le=1)
    charging: Literal["uncontrolled", "delayed", "smart"] = "uncontrolled"


class PvShare(BaseModel):
    """Share of buildings with rooftop PV."""

    model_config = _FROZEN
    type: Literal["pv_share"] = "pv_share"
    share: float = Field(ge=0, le=1)


class HeatWave(BaseModel):
    """Raise outdoor temperature by ``delta_c`` from ``start_h`` for ``duration_h`` hours."""

    model_config = _FROZEN
    type: Literal["heat_wave"] = "heat_wave"
    delta_c: float = Field(gt=0, le=20)
    start_h: float = Field(default=0, ge=0)
    duration_h: float = Field(default=24, gt=0)


class AddStation(BaseModel):
    """Add an emergency station at (lon, lat) (WGS84 degrees), snapped to the nearest road node.

    ``units`` maps unit type (engine, ladder, bls, als) to count; absent: the default
    complement of a station of that kind.
    """

    model_config = _FROZEN
    type: Literal["add_station"] = "add_station"
    kind: Literal["fire_station", "ambulance_station"]
    name: str = Field(min_length=1)
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    units: dict[Literal["engine", "ladder", "bls", "als"], Annotated[int, Field(ge=0, le=50)]] \
        | None = None


class RemoveStation(BaseModel):
    """Remove an emergency station (facility) by its exact name."""

    model_config = _FROZEN
    type: Literal["remove_station"] = "remove_station"
    name: str = Field(min_length=1)


class AssetFailure(BaseModel):
    """A power asset (substation, transformer or line id) fails at ``at_h`` for ``duration_h``."""

    model_config = _FROZEN
    type: Literal["asset_failure"] = "asset_failure"
    asset: str = Field(min_length=1)
    at_h: float = Field(ge=0)
    duration_h: float = Field(default=4, gt=0)


class UnitCounts(BaseModel):
    """Number of units of type ``unit`` (engine, ladder, bls, als) at every station of
    ``station_kind``."""

    model_config = _FROZEN
    type: Literal["unit_counts"] = "unit_counts"
    station_kind: Literal["fire_station", "ambulance_station"]
    unit: Literal["engine", "ladder", "bls", "als"]
    count: int = Field(ge=0, le=50)


Intervention = Annotated[
    CloseRoad
    | ChangeLanes
    | ChangeSpeed
    | ChangeCapacity
    | DemandGrowth
    | EvShare
    | PvShare
    | HeatWave
    | AddStation
    | RemoveStation
    | AssetFailure
    | UnitCounts,
    Field(discriminator="type"),
]

ROAD_INTERVENTIONS = (CloseRoad, ChangeLanes, ChangeSpeed, ChangeCapacity)


# --------------------------------------------------------------------------- the scenario


class Scenario(BaseModel):
    """One what-if: a city, a period, the domains' parameters and interventions."""

    model_config = _FROZEN

    name: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    city: Path = Field(description="city file; relative paths are relative to the scenario file")
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    start: date = Field(default=date(2024, 6, 3), description="calendar date of t = 0 (midnight)")
    duration_h: float = Field(default=24.0, gt=0, le=24 * 366)
    step_s: float = Field(default=900.0, ge=1, le=86_400, description="sync step of the engines")
    traffic: TrafficParams | None = Field(default=None, description="absent: traffic is off")
    energy: EnergyParams | None = Field(default=None, description="absent: energy is off")
    emergency: EmergencyParams | None = Field(default=None,
                                              description="absent: emergency response is off")
    interventions: tuple[Intervention, ...] = ()

    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The TOML file this scenario was loaded from (None when built in Python)."""
        return self._source

    @property
    def duration_s(self) -> float:
        return round(self.duration_h * 3600.0, 6)

    def domains(self) -> tuple[str, ...]:
        """Names of the domains that are on (their section is present)."""
        return tuple(d for d in DOMAINS if getattr(self, d, None) is not None)

    def content_hash(self) -> str:
        """A stable hash of what the scenario simulates (not where it was loaded from, nor
        its description).

        The city is identified by its file name and size, so the same checkout moved to
        another folder keeps its run ids.
        """
        data = self.model_dump(mode="json", exclude={"city", "seed", "description"})
        city = Path(self.city)
        size = city.stat().st_size if city.exists() else -1
        data["city"] = {"name": city.name, "size": size}
        blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def with_updates(self, **changes: Any) -> Scenario:
        """A validated copy with top-level fields replaced (``ScenarioError`` if invalid)."""
        data = self.model_dump()
        data.update(changes)
        return scenario_from_dict(data, source=str(self._source or "<scenario>"))


# --------------------------------------------------------------------------- loading


def _fmt_loc(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "<top level>"


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Best effort: the field names allowed at ``loc`` (for 'unknown key' messages)."""
    current: Any = model
    tags = {cls.model_fields["type"].default: cls for cls in _intervention_classes()}
    for item in loc[:-1]:
        if isinstance(item, int):
            continue
        fields = getattr(current, "model_fields", None) or {}
        if item not in fields and item in tags:  # a discriminated union's tag names the model
            current = tags[item]
            continue
        if item not in fields:
            return []
        ann = fields[item].annotation
        current = _model_in(ann)
        if current is None:
            return []
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _model_in(ann: Any) -> Any:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _intervention_classes() -> tuple[type[BaseModel], ...]:
    return (
        CloseRoad, ChangeLanes, ChangeSpeed, ChangeCapacity, DemandGrowth, EvShare, PvShare,
        HeatWave, AddStation, RemoveStation, AssetFailure, UnitCounts,
    )


def _problems_from_validation(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        where = _fmt_loc(loc)
        kind = err.get("type", "")
        if kind == "extra_forbidden":
            allowed = _allowed_keys(Scenario, loc)
            hint = f" (expected one of: {', '.join(allowed)})" if allowed else ""
            problems.append(f"{where}: unknown key{hint}")
        elif kind == "missing":
            problems.append(f"{where}: required key is missing")
        elif kind == "union_tag_invalid":
            tags = ", ".join(c.model_fields["type"].default for c in _intervention_classes())
            problems.append(f"{where}: unknown intervention type {(err.get('ctx') or {}).get('tag')!r} "
                            f"(expected one of: {tags})")
        else:
            got = err.get("input")
            shown = repr(got)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            problems.append(f"{where}: {err.get('msg', 'invalid')} (got {shown})")
    return problems


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if key == "interventions" and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = list(out[key]) + list(value)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path, problems: list[str], *, top: bool = True) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(f"file not found: {path}")
        return None
    except (OSError, ValueError) as exc:
        problems.append(f"cannot read {path} ({exc})")
        return None
    return _parse_toml(text, "" if top else f"{path}: ", problems)


def _parse_toml(text: str, prefix: str, problems: list[str]) -> dict[str, Any] | None:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{prefix}TOML syntax error: {exc}")
        return None


def _resolve(
    data: dict[str, Any],
    *,
    prefix: str,
    base_dir: Path,
    problems: list[str],
    stack: tuple[Path, ...],
) -> dict[str, Any]:
    """Resolve ``extends`` (recursively) and make ``city`` absolute relative to its file.

    ``prefix`` names the file in problems of inherited files ("" for the top file).
    """
    data = dict(data)
    if isinstance(data.get("city"), str):
        try:
            city = Path(data["city"])
            data["city"] = str(city if city.is_absolute() else (base_dir / city).resolve())
        except (OSError, ValueError) as exc:
            problems.append(f"{prefix}city: not a usable path {data['city']!r:.80} ({exc})")
    ext = data.pop("extends", None)
    if ext is None:
        return data
    targets = [ext] if isinstance(ext, str) else ext
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        problems.append(f"{prefix}extends: expected a file name or a list of file names "
                        f"(got {ext!r:.80})")
        return data
    merged: dict[str, Any] = {}
    for target in targets:
        try:
            path = (base_dir / target).resolve()
            exists = path.is_file()
        except (OSError, ValueError) as exc:
            problems.append(f"{prefix}extends: not a usable path {target!r:.80} ({exc})")
            continue
        if path in stack:
            problems.append(f"{prefix}extends: circular extends through {path.name}")
            continue
        if not exists:
            problems.append(f"{prefix}extends: file {target!r} not found (looked for {path})")
            continue
        parent = _read_toml(path, problems, top=False)
        if parent is None:
            continue
        parent = _resolve(parent, prefix=f"{path}: ", base_dir=path.parent, problems=problems,
                          stack=(*stack, path))
        parent.pop("name", None)  # a name is never inherited: it defaults to the file stem
        merged = _deep_merge(merged, parent)
    return _deep_merge(merged, data)


def scenario_from_dict(
    data: Mapping[str, Any],
    *,
    source: str = "<scenario>",
    base_dir: str | Path | None = None,
    default_name: str | None = None,
) -> Scenario:
    """Validate a plain dict (as read from TOML) into a :class:`Scenario`.

    ``extends`` and a relative ``city`` are resolved against ``base_dir`` (default: cwd).
    """
    problems: list[str] = []
    if not isinstance(data, Mapping):
        raise ScenarioError(f"expected a table of keys, got {type(data).__name__}", source=source)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    resolved = _resolve(dict(data), prefix="", base_dir=base, problems=problems, stack=())
    if "name" not in resolved and default_name:
        resolved["name"] = default_name
    try:
        scenario = Scenario.model_validate(resolved)
    except ValidationError as exc:
        problems.extend(_problems_from_validation(exc))
        raise ScenarioError(problems, source=source) from None
    except (TypeError, ValueError) as exc:  # pragma: no cover - defensive: pydantic wraps these
        problems.append(f"invalid scenario: {exc}")
        raise ScenarioError(problems, source=source) from None
    if problems:
        raise ScenarioError(problems, source=source)
    return scenario


def loads_scenario(
    text: str, *, source: str = "<string>", base_dir: str | Path | None = None,
    default_name: str | None = None,
) -> Scenario:
    """Parse and validate scenario TOML text."""
    problems: list[str] = []
    data = _parse_toml(text, "", problems)
    if data is None:
        raise ScenarioError(problems, source=source)
    return scenario_from_dict(data, source=source, base_dir=base_dir, default_name=default_name)


def load_scenario(path: str | Path) -> Scenario:
    """Load a scenario TOML file (resolving ``extends``); ``ScenarioError`` lists all problems."""
    path = Path(path)
    problems: list[str] = []
    data = _read_toml(path, problems)
    if data is None:
        raise ScenarioError(problems, source=str(path))
    scenario = scenario_from_dict(data, source=str(path), base_dir=path.parent.resolve(),
                                  default_name=path.stem)
    scenario._source = path.resolve()
    return scenario


def scenario_schema() -> dict[str, Any]:
    """The JSON schema of a scenario file."""
    return Scenario.model_json_schema()


# --------------------------------------------------------------------------- applying

#: intervention type -> the domains whose parameters it overrides (one of them must be on)
PARAM_INTERVENTIONS: dict[str, tuple[str, ...]] = {
    "demand_growth": ("traffic",),
    "ev_share": ("traffic", "energy"),
    "pv_share": ("energy",),
    "heat_wave": ("energy",),
    "asset_failure": ("energy",),
    "unit_counts": ("emergency",),
    "add_station": ("emergency",),
    "remove_station": ("emergency",),
}


def check_interventions(scenario: Scenario, city: Any) -> None:
    """Check every intervention against the city (roads, stations, assets); all problems at once."""
    problems: list[str] = []
    ivs = scenario.interventions
    on = set(scenario.domains())
    for i, iv in enumerate(ivs):
        key = f"interventions[{i}]"
        if isinstance(iv, ROAD_INTERVENTIONS):
            from citytwin.network.edits import select_links

            try:
                select_links(city.roads, edges=iv.edges, street=iv.street)
            except ValueError as exc:
                field = "street" if iv.street is not None else "edges"
                for p in getattr(exc, "problems", [str(exc)]):
                    problems.append(f"{key}.{field}: {p} in city {city.name!r}")
        needs = PARAM_INTERVENTIONS.get(iv.type, ())
        if needs and not on.intersection(needs):
            sections = " or ".join(f"[{d}]" for d in needs)
            problems.append(f"{key}: a {iv.type} intervention needs the {sections} section "
                            f"(that domain is off)")
        if isinstance(iv, RemoveStation):
            known = set(city.facilities["name"].astype(str)) if len(city.facilities) else set()
            if iv.name not in known:
                problems.append(f"{key}.name: no station named {iv.name!r} "
                                f"(known: {sorted(known)[:10]})")
        if isinstance(iv, AddStation):
            try:
                _snap_lonlat(city, iv.lon, iv.lat)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
        if isinstance(iv, AssetFailure):
            assets = set(map(str, city.power.nodes))
            assets.update(str(d.get("element_id")) for _u, _v, d in city.power.edges(data=True))
            if iv.asset not in assets:
                problems.append(f"{key}.asset: no power asset {iv.asset!r} in the city grid")
        if isinstance(iv, AssetFailure | HeatWave):
            at = iv.at_h if isinstance(iv, AssetFailure) else iv.start_h
            if at >= scenario.duration_h:
                problems.append(f"{key}: starts at {at} h, after the simulated period "
                                f"({scenario.duration_h} h)")
    if problems:
        raise ScenarioError(problems, source=str(scenario.source or scenario.name))


def _snap_lonlat(city: Any, lon: float, lat: float, *, max_m: float = 2000.0) -> int:
    """The road node (id) nearest to (lon, lat); ValueError when farther than ``max_m``."""
    import numpy as np
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", city.crs, always_xy=True).transform(lon, lat)
    arrays = city.road_arrays
    d2 = (arrays.x - x) ** 2 + (arrays.y - y) ** 2
    i = int(np.argmin(d2))
    dist = float(np.sqrt(d2[i]))
    if dist > max_m:
        raise ValueError(f"({lon}, {lat}) is {dist / 1000:.1f} km from the nearest road of city "
                         f"{city.name!r} (expected a point within {max_m / 1000:.0f} km)")
    return int(arrays.node_ids[i])


def _emergency_override(data: dict[str, Any], iv: Any, city: Any) -> None:
    if isinstance(iv, AddStation):
        spec = StationSpec(kind=iv.kind, road_node=_snap_lonlat(city, iv.lon, iv.lat),
                           name=iv.name,
                           units={str(k): v for k, v in iv.units.items()}
                           if iv.units is not None else None)
        data["extra_stations"] = (*data["extra_stations"], spec.model_dump())
    elif isinstance(iv, RemoveStation):
        fac = city.facilities
        ids = [int(i) for i in fac.index[fac["name"].astype(str) == iv.name]]
        data["closed_stations"] = tuple(sorted({*data["closed_stations"], *ids}))
    elif isinstance(iv, UnitCounts):
        ups = {k: dict(v) for k, v in data["units_per_station"].items()}
        ups.setdefault(iv.station_kind, {})[iv.unit] = iv.count
        data["units_per_station"] = ups


def apply_interventions(city: Any, scenario: Scenario) -> Any:
    """Apply the City -> City interventions (roads, stations) in order; returns a new City."""
    for iv in scenario.interventions:
        if isinstance(iv, ROAD_INTERVENTIONS):
            city = _apply_road(city, iv)
    return city


def _apply_road(city: Any, iv: Any) -> Any:
    from citytwin.network import edits  # the traffic engineer's City -> City road edits

    return edits.apply_intervention(city, iv)


def domain_params(scenario: Scenario, domain: str, city: Any = None) -> Any:
    """The domain's parameters with the scenario's parameter interventions applied (None = off)."""
    params = getattr(scenario, domain, None)
    if params is None:
        return None
    if domain == "energy":  # the energy engineer's own mapping of interventions to params
        params = _energy_overrides(params, scenario.interventions)
    data = params.model_dump()
    for iv in scenario.interventions:
        if domain == "traffic":
            if isinstance(iv, DemandGrowth):
                data["demand_scale"] = data["demand_scale"] * iv.factor
            elif isinstance(iv, EvShare):
                data["ev_share"] = iv.share
        elif domain == "emergency" and city is not None:
            _emergency_override(data, iv, city)
    try:
        return type(params).model_validate(data)
    except ValidationError as exc:
        raise ScenarioError([f"{domain} (after interventions): {p}"
                             for p in _problems_from_validation(exc)],
                            source=str(scenario.source or scenario.name)) from None
