"""Scenario drafts in the app: shipped scenarios, the JSON editor and validation.

The browser never names a file outside the app's folders: shipped scenarios are chosen by
plain name from the scenarios folder, the city is always the app's current city file, and a
draft may not use ``extends`` (which would read another file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from citytwin.app.config import AppConfig, guard_scenario_paths, safe_join
from citytwin.errors import InputError, ScenarioError

__all__ = ["shipped_scenarios", "load_shipped", "draft_text", "validate_draft"]


def shipped_scenarios(config: AppConfig) -> list[str]:
    """Names (file stems) of the scenario TOML files in the scenarios folder."""
    d = config.scenarios_dir
    if d is None or not Path(d).is_dir():
        return []
    return sorted(p.stem for p in Path(d).glob("*.toml") if not p.name.startswith("_"))


def load_shipped(config: AppConfig, name: str) -> dict[str, Any]:
    """The fully resolved scenario ``name`` as a plain dict (without its city)."""
    from citytwin.scenario import load_scenario

    if config.scenarios_dir is None:
        raise ScenarioError("the app has no scenarios folder", source="app")
    path = safe_join(config.scenarios_dir, f"{name}.toml", what="scenario")
    if not path.is_file() or name not in shipped_scenarios(config):  # only listed ones
        raise ScenarioError(f"no shipped scenario named {name!r} (known: "
                            f"{shipped_scenarios(config)})", source=str(config.scenarios_dir))
    spec = load_scenario(path)
    data = spec.model_dump(mode="json", exclude={"city"})
    return data


def draft_text(data: dict[str, Any]) -> str:
    """The editor text of a scenario dict."""
    return json.dumps(data, indent=2, sort_keys=False)


def validate_draft(text: str, *, config: AppConfig, city: str,
                   closed_edges: list[int] | None = None, seed: int | None = None):
    """Parse the editor text and validate it exactly as the CLI validates a scenario file.

    Returns ``(scenario, data)``: the validated :class:`~citytwin.scenario.Scenario` and the
    plain dict the worker process receives. Raises :class:`ScenarioError` listing every
    problem (JSON syntax, ``extends``, unknown keys, wrong types, ranges).
    """
    from citytwin.scenario import scenario_from_dict

    source = "scenario editor"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg})",
                            source=source) from None
    if not isinstance(data, dict):
        raise ScenarioError(f"expected a JSON object of scenario keys, got {type(data).__name__}",
                            source=source)
    problems = []
    if "extends" in data:
        problems.append("extends: not allowed in the app editor (pick a shipped scenario "
                        "instead; the editor shows it fully resolved)")
    if "city" in data:
        problems.append("city: not allowed in the app editor (the city is the one chosen on the "
                        "City page)")
    if problems:
        raise ScenarioError(problems, source=source)
    data = dict(data)
    if seed is not None:
        data["seed"] = int(seed)
    if closed_edges:
        # the run must not keep a shipped name (a "baseline" with closures is not the baseline)
        base = str(data.get("name") or "scenario")
        if not base.endswith("-with-closures"):
            data["name"] = f"{base}-with-closures"
        data["interventions"] = [*data.get("interventions", []),
                                 {"type": "close_road", "edges": sorted(set(closed_edges))}]
    try:  # every path field confined to the app's folders, as the worker will check again
        guard_scenario_paths(data, config.roots, denied=config.denied)
    except InputError as exc:
        raise ScenarioError(exc.problems, source=source) from None
    city_path = safe_join(config.data_dir, city, what="city file")
    spec = scenario_from_dict({**data, "city": str(city_path)}, source=source)
    return spec, spec.model_dump(mode="json", exclude={"city"})
