"""Vendor simulators ("sandboxes"): one module per target kind, found by name.

A module ``reconciler.sandbox.<kind with - as _>`` holds a ``SIMULATOR`` class (a subclass of
:class:`reconciler.sandbox._core.Simulator`). Modules starting with ``_`` are helpers, not kinds.
"""

from __future__ import annotations

import importlib
import pkgutil

from reconciler.errors import ReconcilerError
from reconciler.sandbox._core import ConnectionDropped, ServerThread, Simulator

__all__ = ["ConnectionDropped", "ServerThread", "Simulator", "known_kinds", "simulator_class"]


def known_kinds() -> list[str]:
    """Every kind with a simulator module, sorted, spelled as in reconciler.yaml (``-``, not ``_``)."""
    names = (m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return sorted(name.replace("_", "-") for name in names)


def simulator_class(kind: str) -> type[Simulator]:
    """The simulator class of ``kind`` (e.g. ``"lightspeed-supplier"``)."""
    kinds = known_kinds()
    if kind not in kinds:
        raise ReconcilerError(
            f"no sandbox for target kind {kind!r}", hint=f"Known sandbox kinds: {', '.join(kinds) or 'none'}."
        )
    module = importlib.import_module(f"{__name__}.{kind.replace('-', '_')}")
    cls = getattr(module, "SIMULATOR", None)
    if not (isinstance(cls, type) and issubclass(cls, Simulator)):
        raise ReconcilerError(f"sandbox module for {kind!r} defines no SIMULATOR class (a Simulator subclass)")
    return cls
