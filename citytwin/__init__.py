"""citytwin — an agent-based city digital twin built from real GIS layers."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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
