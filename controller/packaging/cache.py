"""The build cache: file digests by file identity, built zips by what went into them.

Every load of a revision asks two questions whose naive answers read every byte of every package
file: "what is this file's sha256" (for the revision digest and the zip key) and "what are this
package's zips" (deflate them). For a 500 MB installer that is seconds of CPU and, done in memory,
more RAM than the Deployment allows. So both answers are kept on disk and files are only ever
streamed in 1 MiB chunks:

* ``digests/<id>`` holds a file's sha256 and size, where ``<id>`` hashes the file's identity
  (device, inode, size, mtime and ctime in ns). Any write moves ctime, and ctime cannot be set
  back by the writer, so an unchanged identity means unchanged content; a changed file is hashed
  again.
* ``zips/<key>.zip`` is a built zip and ``zips/<key>.json`` its sha256 and size, where ``<key>``
  hashes the zip's entry names and their content digests (and the zip format version). A package
  whose files did not change therefore costs two ``stat`` calls per file and no deflate.

Where: ``$FLEET_BUILD_CACHE``, else ``$XDG_CACHE_HOME/fleet-controller/builds``, else
``~/.cache/fleet-controller/builds`` (in the container image, under the writable
``/var/lib/fleet-controller``). Bounds: zips take at most ``max_bytes`` (default 2 GiB,
``$FLEET_BUILD_CACHE_MAX_BYTES``); after each
build the least recently used zips go first, but never one used within ``min_age_seconds``
(default one hour), so a zip another process just built or is about to upload survives. Digest
entries are a few bytes each; at most ``max_digests`` (10,000) are kept, oldest removed first.
Partial writes live in ``tmp/`` and are renamed into place, so several processes can share the
directory, and deleting it at any time is safe: the next load rebuilds what it needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import structlog

from controller.containment import ContainedFile, Refused, file_identity

log = structlog.get_logger("fleet_controller.packaging.cache")

CHUNK_BYTES = 1024 * 1024
DEFAULT_MAX_BYTES = 2 * 1024**3
DEFAULT_MIN_AGE_SECONDS = 3600.0
DEFAULT_MAX_DIGESTS = 10_000
STALE_TMP_SECONDS = 86_400.0
CACHE_ENV = "FLEET_BUILD_CACHE"
MAX_BYTES_ENV = "FLEET_BUILD_CACHE_MAX_BYTES"


@dataclass(frozen=True)
class CachedZip:
    path: Path
    sha256: str
    size: int


@dataclass
class CacheStats:
    """What this process asked of the cache (tests and benchmarks read it)."""

    bytes_hashed: int = 0
    digests_reused: int = 0
    zips_built: int = 0
    zips_reused: int = 0


def default_directory() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fleet-controller" / "builds"


def open_no_follow(path: Path) -> int:
    """A descriptor for reading a regular file, refusing a symlink in the last component and never
    blocking on a FIFO (its type is checked on the descriptor before anything is read)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise Refused("is not a regular file")
    return fd


def stream_sha256(handle: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class BuildCache:
    def __init__(
        self,
        directory: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        min_age_seconds: float = DEFAULT_MIN_AGE_SECONDS,
        max_digests: int = DEFAULT_MAX_DIGESTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes < 0 or min_age_seconds < 0 or max_digests < 1:
            raise ValueError("cache bounds must not be negative")
        self.directory = directory
        self.max_bytes = max_bytes
        self.min_age_seconds = min_age_seconds
        self.max_digests = max_digests
        self.stats = CacheStats()
        self._clock = clock
        self._lock = threading.Lock()
        self._digests = directory / "digests"
        self._zips = directory / "zips"
        self._tmp = directory / "tmp"
        for path in (self._digests, self._zips, self._tmp):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._remove_stale_tmp()

    @classmethod
    def default(cls) -> BuildCache:
        """The cache at the default location, or a private temporary one when that location
        cannot be written (a read-only home): slower, never wrong."""
        directory = default_directory()
        text = os.environ.get(MAX_BYTES_ENV, str(DEFAULT_MAX_BYTES))
        if not text.isdigit():
            raise ValueError(f"{MAX_BYTES_ENV} must be a number of bytes, got {text!r:.40}")
        try:
            return cls(directory, max_bytes=int(text))
        except OSError as error:
            fallback = Path(tempfile.mkdtemp(prefix="fleet-controller-builds-"))
            log.warning(
                "build cache directory not writable: using a temporary one",
                directory=str(directory),
                error=error.strerror,
                fallback=str(fallback),
            )
            return cls(fallback, max_bytes=int(text))

    # -- file digests ----------------------------------------------------------------------------

    def file_sha256(self, file: ContainedFile) -> str:
        """The sha256 of a checked file, read only when its identity is new to the cache."""
        entry = self._digests / _name(repr(file.identity))
        cached = _read_json(entry)
        if cached is not None and cached.get("size") == file.size:
            self.stats.digests_reused += 1
            with contextlib.suppress(OSError):
                os.utime(entry)
            return str(cached["sha256"])
        sha256 = sha256_of(file, self.stats)
        self._write_json(entry, {"sha256": sha256, "size": file.size})
        self._trim_digests()
        return sha256

    # -- zips ------------------------------------------------------------------------------------

    def zip(self, key: str, write: Callable[[IO[bytes]], None]) -> CachedZip:
        """The zip stored under ``key``, or the one ``write`` produces (stored under ``key``)."""
        target = self._zips / f"{key}.zip"
        found = self._cached_zip(key, target)
        if found is not None:
            self.stats.zips_reused += 1
            return found
        fd, temporary = tempfile.mkstemp(dir=self._tmp, suffix=".zip")
        try:
            with os.fdopen(fd, "w+b") as handle:
                write(handle)
                handle.seek(0)
                sha256, size = stream_sha256(handle)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        self._write_json(self._zips / f"{key}.json", {"sha256": sha256, "size": size})
        self.stats.zips_built += 1
        self.trim(keep=target)
        return CachedZip(target, sha256, size)

    def _cached_zip(self, key: str, target: Path) -> CachedZip | None:
        meta = _read_json(self._zips / f"{key}.json")
        if meta is None:
            return None
        try:
            size = target.stat().st_size
            os.utime(target)  # used now: last to be evicted
        except OSError:
            return None
        if size != meta.get("size"):
            return None
        return CachedZip(target, str(meta["sha256"]), size)

    def trim(self, keep: Path | None = None) -> None:
        """Remove least recently used zips until they fit ``max_bytes`` (young ones stay, and
        ``keep``, the zip just built for a caller about to read it)."""
        with self._lock:
            entries = []
            for path in self._zips.glob("*.zip"):
                with contextlib.suppress(OSError):
                    info = path.stat()
                    entries.append((info.st_mtime, info.st_size, path))
            total = sum(size for _, size, _ in entries)
            now = self._clock()
            for mtime, size, path in sorted(entries, key=lambda entry: entry[0]):
                if total <= self.max_bytes:
                    return
                if now - mtime < self.min_age_seconds or path == keep:
                    continue
                with contextlib.suppress(OSError):
                    path.with_suffix(".json").unlink()
                    path.unlink()
                    total -= size

    # -- plumbing --------------------------------------------------------------------------------

    def _trim_digests(self) -> None:
        with self._lock:
            entries = []
            for path in self._digests.iterdir():
                with contextlib.suppress(OSError):
                    entries.append((path.stat().st_mtime, path))
            excess = len(entries) - self.max_digests
            for _, path in sorted(entries)[: max(0, excess)]:
                with contextlib.suppress(OSError):
                    path.unlink()

    def _write_json(self, path: Path, value: dict[str, object]) -> None:
        fd, temporary = tempfile.mkstemp(dir=self._tmp, suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(value, handle)
        os.replace(temporary, path)

    def _remove_stale_tmp(self) -> None:
        now = self._clock()
        for path in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime > STALE_TMP_SECONDS:
                    path.unlink()


def sha256_of(file: ContainedFile, stats: CacheStats | None = None) -> str:
    """Stream ``file``'s sha256; refuse it when it changed since it was checked."""
    try:
        fd = open_no_follow(file.path)
    except OSError as error:
        raise Refused(f"cannot be read ({error.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        if file_identity(os.fstat(handle.fileno())) != file.identity:
            raise Refused("changed while the desired state was being read; try again")
        sha256, size = stream_sha256(handle)
        if file_identity(os.fstat(handle.fileno())) != file.identity or size != file.size:
            raise Refused("changed while the desired state was being read; try again")
    if stats is not None:
        stats.bytes_hashed += size
    return sha256


def _name(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read_json(path: Path) -> dict[str, object] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and "sha256" in value else None
