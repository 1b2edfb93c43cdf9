"""Which kinds exist: each spec module in ``controller/manifests/specs/`` registers itself.

Adding a kind is one new module there; the loader, the CLI and error messages learn about it from
this registry, so nothing else needs editing.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from controller.manifests.common import SpecModel
from controller.manifests.errors import ManifestError

if TYPE_CHECKING:
    from controller.manifests.document import Manifest

CheckSet = Callable[[Mapping[str, Sequence["Manifest"]]], list[ManifestError]]
"""Cross-document checks: every valid manifest by kind -> errors (located via ``Manifest.error``)."""

_KIND_NAME = re.compile(r"[A-Z][A-Za-z0-9]{0,62}")
_SPECS_PACKAGE = "controller.manifests.specs"


@dataclass(frozen=True)
class KindInfo:
    kind: str
    spec_model: type[SpecModel]
    check_set: CheckSet | None = None


_kinds: dict[str, KindInfo] = {}
_discovered = False
_lock = threading.Lock()


def register_kind(
    kind: str, spec_model: type[SpecModel], check_set: CheckSet | None = None
) -> None:
    """Make ``kind`` loadable; called at import time by a module in ``specs/``."""
    if not _KIND_NAME.fullmatch(kind):
        raise ValueError(f"kind {kind!r} must be CamelCase letters and digits")
    existing = _kinds.get(kind)
    if existing is not None and existing.spec_model is not spec_model:
        raise ValueError(f"kind {kind!r} is already registered by {existing.spec_model.__module__}")
    _kinds[kind] = KindInfo(kind, spec_model, check_set)


def unregister_kind(kind: str) -> None:
    """For tests that register a throw-away kind."""
    _kinds.pop(kind, None)


def kinds() -> Mapping[str, KindInfo]:
    """Every registered kind, after importing all spec modules once."""
    _discover()
    return MappingProxyType(_kinds)


def kind_of(spec_model: type[SpecModel]) -> str:
    for info in kinds().values():
        if info.spec_model is spec_model:
            return info.kind
    raise KeyError(f"{spec_model.__name__} is not a registered spec model")


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    with _lock:
        if _discovered:
            return
        package = importlib.import_module(_SPECS_PACKAGE)
        for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if not module.name.startswith("_"):
                importlib.import_module(f"{_SPECS_PACKAGE}.{module.name}")
        _discovered = True
