"""Adding a kind in a test as a developer adds one: one module, dropped into the kinds package."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import controller.kinds
from controller.contract import registry

ADDED_KINDS = Path(__file__).resolve().parent / "added_kinds"


@contextmanager
def added_kind(module: str, workdir: Path) -> Iterator[None]:
    """``tests/added_kinds/<module>.py`` becomes ``controller.kinds.<module>`` until the end."""
    directory = workdir / "more-kinds"
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(ADDED_KINDS / f"{module}.py", directory / f"{module}.py")
    controller.kinds.__path__.append(str(directory))
    registry.rediscover()
    try:
        yield
    finally:
        controller.kinds.__path__.remove(str(directory))
        sys.modules.pop(f"{controller.kinds.__name__}.{module}", None)
        registry.rediscover()
