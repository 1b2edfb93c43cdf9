"""Every kind the controller reconciles, discovered from the modules of this package.

A kind module exposes a ``Kind`` subclass; adding a kind means adding a module here and its spec
model in ``controller/manifests/specs/``. Nothing else needs to know.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import cache

from controller.kinds.base import Context, Kind


@cache
def all_kinds() -> tuple[Kind[object], ...]:
    """One instance of every kind, in apply order."""
    found: list[Kind[object]] = []
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for _, value in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(value, Kind)
                and value is not Kind
                and value.__module__ == module.__name__
            ):
                found.append(value())
    return tuple(sorted(found, key=lambda kind: kind.apply_order))


def kind_named(name: str) -> Kind[object]:
    for kind in all_kinds():
        if kind.kind == name:
            return kind
    raise KeyError(name)


__all__ = ["Context", "Kind", "all_kinds", "kind_named"]
