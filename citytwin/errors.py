"""Errors raised at citytwin's boundaries.

Every error is a subclass of a built-in so callers can catch ``ValueError``; each one
collects *all* problems of one input and names file, layer, row/key and what was expected.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CitytwinError", "GeodataError", "ScenarioError", "ObservationError", "InputError"]


class CitytwinError(ValueError):
    """Base class: a list of problems with one input, shown one per line."""

    def __init__(self, problems: str | Iterable[str], *, source: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [problems]
        self.problems: list[str] = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        if len(self.problems) == 1:
            msg = head + self.problems[0]
        else:
            msg = head + f"{len(self.problems)} problems:\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(msg)


class GeodataError(CitytwinError):
    """A geodata file, layer, row or geometry is not what citytwin expects."""


class ScenarioError(CitytwinError):
    """A scenario or experiment file is invalid (syntax, unknown key, wrong type, range)."""


class ObservationError(CitytwinError):
    """An observation table (counts, meter readings, incident log) is invalid."""


class InputError(CitytwinError):
    """Any other bad input to a public function (unknown id, unknown type, bad weather file)."""
