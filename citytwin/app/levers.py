"""Levers: the scenario forms, generated from the intervention classes' pydantic fields.

A planner edits a scenario through a few forms (EV share and charging policy, PV share, heat
wave / cold snap, demand scale, close a street by name); the fields, their kinds, bounds,
defaults and choices come from :data:`citytwin.interventions.REGISTRY` (and
:class:`citytwin.fleet.Fleet` for the ``[fleet]`` section), so a new field on an intervention
appears in the form without app code. Each form writes into the same plain scenario dict the
JSON view shows, so the two stay in sync; :func:`to_toml` writes that dict as a scenario TOML
file the CLI runs unchanged.
"""

from __future__ import annotations

import json
import math
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from citytwin.errors import ScenarioError

if TYPE_CHECKING:
    from citytwin.city import City

__all__ = ["FieldSpec", "LEVERS", "lever_fields", "lever_values", "set_lever", "remove_lever",
           "lever_items", "remove_item", "item_label", "to_toml", "street_names"]

# form title per lever; "fleet" is the [fleet] section, the others intervention tags
LEVERS: dict[str, str] = {
    "fleet": "EV share and charging policy",
    "pv_share": "Rooftop PV share",
    "heat_wave": "Heat wave",
    "cold_snap": "Cold snap",
    "demand_growth": "Demand scale",
    "close_road": "Close a street",
    "add_station": "New emergency station (or click the map)",
    "asset_failure": "Fail a substation or transformer (or click the map)",
}

#: levers where every item is its own (several streets, stations, failures); the others
#: replace an earlier item of the same type
MULTI = ("close_road", "add_station", "asset_failure")


@dataclass(frozen=True)
class FieldSpec:
    """One form field: ``kind`` is ``"float"``, ``"int"``, ``"str"`` or ``"choice"``."""

    name: str
    kind: str
    default: Any
    choices: tuple[str, ...] = ()
    ge: float | None = None
    le: float | None = None
    description: str = ""


def _model(lever: str) -> type[BaseModel]:
    if lever == "fleet":
        from citytwin.fleet import Fleet

        return Fleet
    from citytwin.interventions import REGISTRY

    if lever not in REGISTRY:
        raise ScenarioError(f"unknown lever {lever!r} (known: {sorted(LEVERS)})",
                            source="scenario form")
    return REGISTRY[lever]


def lever_fields(lever: str) -> list[FieldSpec]:
    """The form fields of ``lever`` from its pydantic model (``type`` and edge ids left out:
    the street form selects by name)."""
    out = []
    for name, info in _model(lever).model_fields.items():
        if name in ("type", "edges", "units"):
            continue
        ann = info.annotation
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        base = args[0] if typing.get_origin(ann) is typing.Union and len(args) == 1 else ann
        ge = le = None
        for m in info.metadata:
            for attr in ("ge", "gt"):
                if getattr(m, attr, None) is not None:
                    ge = float(getattr(m, attr))
            for attr in ("le", "lt"):
                if getattr(m, attr, None) is not None:
                    le = float(getattr(m, attr))
        if typing.get_origin(base) is typing.Literal:
            kind, choices = "choice", tuple(str(c) for c in typing.get_args(base))
        elif base is int:
            kind, choices = "int", ()
        elif base is float:
            kind, choices = "float", ()
        else:
            kind, choices = "str", ()
        default = None if info.is_required() else info.default
        out.append(FieldSpec(name=name, kind=kind, default=default, choices=choices, ge=ge,
                             le=le, description=info.description or ""))
    return out


def _items(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(i) for i in data.get("interventions", []) or []]


def lever_values(data: dict[str, Any], lever: str) -> dict[str, Any] | None:
    """The lever's current values in the scenario dict (None when the lever is not set)."""
    if lever == "fleet":
        return dict(data["fleet"]) if data.get("fleet") else None
    for item in _items(data):
        if item.get("type") == lever:
            return {k: v for k, v in item.items() if k != "type"}
    return None


def set_lever(data: dict[str, Any], lever: str, values: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with ``lever`` set to ``values``, validated by the lever's class.

    An intervention lever replaces an earlier one of the same type, except those in
    :data:`MULTI` (closures, new stations, failures), where each is its own item (setting the
    same one twice is a no-op).
    Raises :class:`ScenarioError` naming the lever and every bad field.
    """
    model = _model(lever)
    clean = {k: v for k, v in values.items() if v is not None and v != ""}
    payload = clean if lever == "fleet" else {"type": lever, **clean}
    try:
        obj = model(**payload)
    except ValidationError as exc:
        problems = [f"{LEVERS.get(lever, lever)}: {'.'.join(map(str, e['loc'])) or lever}: "
                    f"{e['msg']}" for e in exc.errors()]
        raise ScenarioError(problems, source="scenario form") from None
    dumped = obj.model_dump(mode="json", exclude_defaults=False)
    if lever != "fleet":
        dumped = {k: v for k, v in dumped.items()
                  if k == "type" or (k in clean) or model.model_fields[k].is_required()}
    out = dict(data)
    if lever == "fleet":
        out["fleet"] = dumped
        return out
    items = _items(data)
    if lever in MULTI:
        if lever == "close_road":
            same = [i for i in items if i.get("type") == "close_road"
                    and i.get("street") == dumped.get("street")
                    and sorted(i.get("edges") or ()) == sorted(dumped.get("edges") or ())]
        else:
            same = [i for i in items if i == dumped]
        if same:
            return out
        items.append(dumped)
    else:
        idx = [n for n, i in enumerate(items) if i.get("type") == lever]
        if idx:
            items[idx[0]] = dumped
        else:
            items.append(dumped)
    out["interventions"] = items
    return out


def remove_lever(data: dict[str, Any], lever: str, *, street: str | None = None) -> dict[str, Any]:
    """A copy of ``data`` without ``lever`` (for ``close_road`` only the given street)."""
    out = dict(data)
    if lever == "fleet":
        out.pop("fleet", None)
        return out
    out["interventions"] = [i for i in _items(data)
                            if not (i.get("type") == lever
                                    and (street is None or i.get("street") == street))]
    return out


def lever_items(data: dict[str, Any], lever: str) -> list[tuple[int, dict[str, Any]]]:
    """The interventions of type ``lever`` with their positions in ``data["interventions"]``
    (a form lists each closure, station or failure with its own Remove)."""
    return [(n, i) for n, i in enumerate(_items(data)) if i.get("type") == lever]


def remove_item(data: dict[str, Any], index: int) -> dict[str, Any]:
    """A copy of ``data`` without the intervention at position ``index`` (only that one)."""
    items = _items(data)
    if not 0 <= index < len(items):
        raise ScenarioError(f"interventions: no item {index} (have {len(items)})",
                            source="scenario form")
    out = dict(data)
    out["interventions"] = items[:index] + items[index + 1:]
    return out


def item_label(item: dict[str, Any]) -> str:
    """One line naming an intervention item (what a planner sees beside its Remove)."""
    t = item.get("type")
    if t == "close_road":
        if item.get("street"):
            return f"street {item['street']}"
        return f"road link(s) {', '.join(str(e) for e in item.get('edges') or [])}"
    if t == "add_station":
        kind = str(item.get("kind", "station")).replace("_", " ")
        return (f"{kind} {item.get('name', '')!s} at {float(item.get('lat', 0)):.5f} N, "
                f"{float(item.get('lon', 0)):.5f} E")
    if t == "asset_failure":
        return (f"{item.get('asset')} fails at hour {float(item.get('at_h', 0)):g} for "
                f"{float(item.get('duration_h', 0)):g} h")
    return ", ".join(f"{k} {v}" for k, v in item.items() if k != "type")


def street_names(city: City) -> list[str]:
    """Sorted distinct street names of the city's roads (for the autocomplete)."""
    names: set[str] = set()
    for *_, d in city.roads.edges(data=True):
        n = d.get("name")
        for v in (n if isinstance(n, list | tuple) else [n]):
            if isinstance(v, str) and v.strip():
                names.add(v)
    return sorted(names)


# --------------------------------------------------------------------------- TOML


def _toml_value(v: Any, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ScenarioError(f"{where}: {v} cannot be written to TOML", source="scenario form")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x, where) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_toml_value(x, where)}" for k, x in v.items()
                          if x is not None) + "}"
    raise ScenarioError(f"{where}: cannot write a {type(v).__name__} to TOML",
                        source="scenario form")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def to_toml(data: dict[str, Any], *, city: str | None = None) -> str:
    """The scenario dict as a scenario TOML file (``citytwin run FILE`` runs it unchanged).

    Scalars first, then one ``[table]`` per section, then ``[[interventions]]``; ``None``
    values are left out (TOML has no null; the scenario's default applies).
    """
    scalars, tables, arrays = [], [], []
    body = dict(data)
    if city is not None:
        body = {"city": city, **{k: v for k, v in body.items() if k != "city"}}
    for k, v in body.items():
        if v is None:
            continue
        if isinstance(v, dict):
            tables.append((k, v))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            arrays.append((k, v))
        else:
            scalars.append(f"{_key(k)} = {_toml_value(v, k)}")
    lines = scalars
    for k, tab in tables:
        lines += ["", f"[{_key(k)}]"]
        lines += [f"{_key(a)} = {_toml_value(b, f'{k}.{a}')}" for a, b in tab.items()
                  if b is not None]
    for k, items in arrays:
        for n, item in enumerate(items):
            lines += ["", f"[[{_key(k)}]]"]
            lines += [f"{_key(a)} = {_toml_value(b, f'{k}[{n}].{a}')}" for a, b in item.items()
                      if b is not None]
    return "\n".join(lines) + "\n"
