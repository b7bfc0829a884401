"""The one way citytwin defers an import: a package's public names, imported on first use.

Deferring is for measured start-up cost only (``import citytwin`` must not import mesa, pandas or
the engines; ``citytwin.energy``'s load model, used by the grid designer, must not import mesa;
``citytwin traffic ue`` must not import the queue engine). A package lists ``name -> module`` and
gets PEP 562 ``__getattr__``/``__dir__``; type checkers see the real imports under
``TYPE_CHECKING``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, names: dict[str, str], namespace: dict[str, Any]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps each public name to the module
    that defines it (absolute). A name is imported once and then kept in ``namespace``."""

    def __getattr__(name: str) -> object:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
