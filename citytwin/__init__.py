"""citytwin — an agent-based city digital twin built from real GIS layers."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from citytwin._lazy import lazy_exports
from citytwin.errors import (
    CitytwinError,
    GeodataError,
    InputError,
    ObservationError,
    ScenarioError,
)

try:
    __version__ = version("citytwin")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "__version__",
    "CitytwinError",
    "GeodataError",
    "InputError",
    "ObservationError",
    "ScenarioError",
]

# Scenario API, imported on first use (the domain packages are heavy to import).
_LAZY = {
    "Scenario": "citytwin.scenario",
    "load_scenario": "citytwin.scenario",
    "CityModel": "citytwin.model",
    "run_scenario": "citytwin.model",
    "Results": "citytwin.results",
    "compare": "citytwin.comparison",
    "run_batch": "citytwin.batch",
    "run_experiment": "citytwin.experiments",
    "load_experiment": "citytwin.experiments",
}
__all__ += list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
