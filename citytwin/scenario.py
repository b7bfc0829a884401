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
import os
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from citytwin.emergency.params import EmergencyParams
from citytwin.energy.engine import EnergyParams
from citytwin.engine import DEFAULT_START
from citytwin.errors import ScenarioError
from citytwin.fleet import Fleet
from citytwin.interventions import REGISTRY, AnyIntervention
from citytwin.layers import BuildOptions
from citytwin.traffic.params import TrafficParams

__all__ = [
    "DOMAINS",
    "Scenario",
    "load_scenario",
    "loads_scenario",
    "problems_from_validation",
    "scenario_from_dict",
    "scenario_schema",
]

DOMAINS: tuple[str, ...] = ("traffic", "energy", "emergency")
_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: keys that used to live in a domain section, and where they are set now
_MOVED = {
    ("traffic", "ev_share"): "[fleet] ev_share (one EV share read by traffic and energy)",
    ("energy", "ev_share"): "[fleet] ev_share (one EV share read by traffic and energy)",
    ("energy", "ev_charging"): "[fleet] charging",
    ("energy", "heat_wave"): "an intervention: type = \"heat_wave\" (or \"cold_snap\", "
                             "\"temperature_shift\"), delta_c, start_h, duration_h",
    ("energy", "temperature_shifts"): "an intervention: type = \"temperature_shift\"",
    ("energy", "failures"): "an intervention: type = \"asset_failure\", asset, at_h, "
                            "duration_h",
}


# --------------------------------------------------------------------------- the scenario
#: EnergyParams fields that exist (the engine reads them) but only interventions fill
_SET_BY_INTERVENTIONS = ("temperature_shifts", "failures")


class Scenario(BaseModel):
    """One what-if: a city, a period, the domains' parameters and interventions."""

    model_config = _FROZEN

    name: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    city: Path = Field(description="city file; relative paths are relative to the scenario file")
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    start: date = Field(default=DEFAULT_START, description="calendar date of t = 0 (midnight)")
    duration_h: float = Field(default=24.0, gt=0, le=24 * 366)
    step_s: float = Field(default=900.0, ge=1, le=86_400, description="sync step of the engines")
    traffic: TrafficParams | None = Field(default=None, description="absent: traffic is off")
    energy: EnergyParams | None = Field(default=None, description="absent: energy is off")
    emergency: EmergencyParams | None = Field(default=None,
                                              description="absent: emergency response is off")
    fleet: Fleet = Field(default_factory=Fleet, description="the EV share and charging "
                         "policy, read by traffic and energy alike")
    interventions: tuple[AnyIntervention, ...] = ()
    build: BuildOptions = Field(default_factory=BuildOptions, description="how the city file "
                                "is built: CRS, max_attach_m, speeds per class, bounds")

    DOMAINS: ClassVar[tuple[str, ...]] = DOMAINS
    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            moved = [f"{sec}.{key}: moved; set it as {where}"
                     for (sec, key), where in _MOVED.items()
                     if isinstance(data.get(sec), Mapping) and key in data[sec]
                     and (key not in _SET_BY_INTERVENTIONS or data[sec][key])]
            if moved:
                raise ValueError("; ".join(moved))
        return data

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
        skip = {"city", "seed", "description"} | ({"build"} if self.build == BuildOptions()
                                                   else set())  # default: digests unchanged
        data = self.model_dump(mode="json", exclude=skip)
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
    tags = REGISTRY
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


def problems_from_validation(exc: ValidationError) -> list[str]:
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
            tags = ", ".join(REGISTRY)
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
    if text.startswith("\ufeff"):  # a UTF-8 byte-order mark (Windows editors): repaired
        text = text[1:]
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
        problems.extend(problems_from_validation(exc))
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


#: Bytes held per simulated car trip (trip rows, route, agent state), measured roughly on the
#: default city; with ~3 trips per driver. Used only for the resource estimate.
_BYTES_PER_TRIP = 1024
_TRIPS_PER_DRIVER = 3.0


def _memory_bytes() -> int:
    """Physical memory, or the address-space limit of this process if lower."""
    import resource

    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total = 1 << 40
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return min(total, soft) if soft != resource.RLIM_INFINITY else total


def resource_estimate(scenario: Scenario, population: float) -> int:
    """Rough bytes the traffic domain needs for ``population`` people (0 if traffic is off)."""
    p = scenario.traffic
    if p is None:
        return 0
    drivers = float(population) * p.car_share * p.demand_scale * p.sample
    return int(drivers * _TRIPS_PER_DRIVER * _BYTES_PER_TRIP)


def check_resources(scenario: Scenario, population: float, *,
                    available: int | None = None) -> None:
    """``ScenarioError`` "this scenario needs ~N GB" before a run that cannot fit in memory."""
    need = resource_estimate(scenario, population)
    have = _memory_bytes() if available is None else available
    if need > have:
        p = scenario.traffic
        assert p is not None
        src = str(scenario.source) if scenario.source else scenario.name
        raise ScenarioError(
            f"this scenario needs ~{need / 1e9:,.1f} GB for traffic "
            f"(population {population:,.0f} x car_share {p.car_share:g} x "
            f"traffic.demand_scale {p.demand_scale:g} x sample {p.sample:g} x "
            f"~{_TRIPS_PER_DRIVER:g} trips of ~{_BYTES_PER_TRIP} B) but this machine has "
            f"~{have / 1e9:,.1f} GB; lower traffic.demand_scale or traffic.sample",
            source=src)


def scenario_schema() -> dict[str, Any]:
    """The JSON schema of a scenario file."""
    return Scenario.model_json_schema()
