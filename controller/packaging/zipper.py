"""Zips whose bytes depend only on their entries' names and contents, written as a stream.

Same inputs, same bytes, same sha256: that is what lets the controller tell "nothing changed" from
a hash and never upload or version a package for a rebuild. Timestamps, entry order, permissions,
the creating system and the compression settings are fixed; the files' mtimes and owners never
enter the archive.

Entries are copied in 1 MiB chunks from a reader into the archive, so memory stays bounded by the
chunk and zlib's window whatever the size of an installer. ``ZIP_FORMAT`` names these settings:
it is part of every build-cache key, so changing a setting here must change it too.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, Protocol

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
FILE_MODE = 0o100644  # a regular file, rw-r--r--
CREATE_SYSTEM_UNIX = 3  # so external_attr carries the mode above
COMPRESS_LEVEL = 9
CHUNK_BYTES = 1024 * 1024
ZIP_FORMAT = "deflate9-unix0644-1980-sorted-v1"


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


@dataclass(frozen=True)
class ZipEntry:
    """One file of the archive: its name, its size and how to read its bytes."""

    name: str
    size: int
    open: Callable[[], AbstractContextManager[Readable]]


def write_deterministic_zip(entries: Iterable[ZipEntry], out: IO[bytes]) -> None:
    """Write a zip of ``entries``, sorted by name (names must be unique), to a seekable ``out``."""
    ordered = sorted(entries, key=lambda entry: entry.name)
    names = [entry.name for entry in ordered]
    if len(set(names)) != len(names):
        raise ValueError(
            f"duplicate zip entry names: {sorted({n for n in names if names.count(n) > 1})}"
        )
    with zipfile.ZipFile(out, "w") as archive:
        for entry in ordered:
            info = zipfile.ZipInfo(entry.name, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = CREATE_SYSTEM_UNIX
            info.external_attr = FILE_MODE << 16
            info.file_size = entry.size  # decides ZIP64 up front, as writestr does
            # ZipFile.writestr's compresslevel argument, for an entry written as a stream.
            setattr(info, "_compresslevel", COMPRESS_LEVEL)  # noqa: B010
            with entry.open() as source, archive.open(info, "w") as target:
                while chunk := source.read(CHUNK_BYTES):
                    target.write(chunk)


def deterministic_zip(entries: Iterable[tuple[str, bytes]]) -> bytes:
    """The same archive in memory, for small contents (tests, documents)."""
    buffer = io.BytesIO()
    write_deterministic_zip([_in_memory(name, data) for name, data in entries], buffer)
    return buffer.getvalue()


def _in_memory(name: str, data: bytes) -> ZipEntry:
    return ZipEntry(name, len(data), lambda: io.BytesIO(data))
