"""The one registry of kinds: every ``Kind`` subclass defined in a module of ``controller.kinds``.

A kind names its spec model, so loading (which spec validates a document, which whole-set checks
run), planning (which kinds exist, in which order) and the CLI all read this one list: there is no
second, string-keyed registry to keep in step. Discovery imports the kinds package by name, at
first use, so the contract never imports a kind (nor the engine) statically.

Order: a kind comes after every kind it ``refers_to`` (ties by name), which is the order creates
and updates run in; deletes run in the reverse.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from controller.contract.kind import Kind

KINDS_PACKAGE = "controller.kinds"
_KIND_NAME = re.compile(r"[A-Z][A-Za-z0-9]{0,62}")

_lock = threading.Lock()
_found: tuple[Kind[Any], ...] | None = None


class RegistryError(RuntimeError):
    """Two kinds of one name, a kind without a spec model, a reference to no kind, a cycle."""


def registered() -> tuple[Kind[Any], ...]:
    """One instance of every kind, each after the kinds it refers to."""
    global _found
    if _found is None:
        with _lock:
            if _found is None:
                _found = _ordered(_discover())
    return _found


def kind_named(name: str) -> Kind[Any]:
    for kind in registered():
        if kind.kind == name:
            return kind
    raise KeyError(name)


def spec_models() -> Mapping[str, type[BaseModel]]:
    """Kind name -> spec model, for the kinds a manifest may declare (implied ones excluded)."""
    return MappingProxyType({k.kind: k.spec_model for k in registered() if not k.implied})


def depth(kind: str) -> int:
    """How many ``refers_to`` hops the kind is from one that refers to nothing (its wave)."""
    by_name = {k.kind: k for k in registered()}

    def walk(name: str) -> int:
        refers = by_name[name].refers_to
        return 1 + max(walk(r) for r in refers) if refers else 0

    return walk(kind)


def rediscover() -> None:
    """Forget what was found (a test added a module to the kinds package's path)."""
    global _found
    with _lock:
        _found = None


def _discover() -> list[Kind[Any]]:
    package = importlib.import_module(KINDS_PACKAGE)
    found: dict[str, Kind[Any]] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{KINDS_PACKAGE}.{info.name}")
        for _, value in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(value, Kind)
                and not inspect.isabstract(value)
                and value.__module__ == module.__name__
            ):
                kind = value()
                _check(kind, found)
                found[kind.kind] = kind
    for kind in found.values():
        unknown = sorted(kind.refers_to - found.keys())
        if unknown:
            raise RegistryError(f"kind {kind.kind} refers to unknown kind(s) {unknown}")
    return list(found.values())


def _check(kind: Kind[Any], found: Mapping[str, Kind[Any]]) -> None:
    name = getattr(kind, "kind", None)
    if not isinstance(name, str) or not _KIND_NAME.fullmatch(name):
        raise RegistryError(f"{type(kind).__name__}.kind must be CamelCase letters and digits")
    spec = getattr(kind, "spec_model", None)
    if not (isinstance(spec, type) and issubclass(spec, BaseModel)):
        raise RegistryError(f"kind {name} names no spec model (a pydantic model)")
    if name in found:
        other = type(found[name]).__module__
        raise RegistryError(f"kind {name} is defined twice: {other} and {type(kind).__module__}")


def _ordered(kinds: list[Kind[Any]]) -> tuple[Kind[Any], ...]:
    """Topological order of ``refers_to``, ties by name; a cycle is a RegistryError."""
    remaining = {k.kind: k for k in kinds}
    done: list[Kind[Any]] = []
    while remaining:
        ready = sorted(
            name for name, kind in remaining.items() if not (kind.refers_to & remaining.keys())
        )
        if not ready:
            raise RegistryError(f"kinds refer to each other in a cycle: {sorted(remaining)}")
        for name in ready:
            done.append(remaining.pop(name))
    return tuple(done)


__all__ = [
    "KINDS_PACKAGE",
    "RegistryError",
    "depth",
    "kind_named",
    "rediscover",
    "registered",
    "spec_models",
]
