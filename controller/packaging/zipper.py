"""Zips whose bytes depend only on their entries' names and contents.

Same inputs, same bytes, same sha256: that is what lets the controller tell "nothing changed" from
a hash and never upload or version a package for a rebuild. Timestamps, entry order, permissions,
the creating system and the compression settings are fixed; the files' mtimes and owners never
enter the archive.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable

FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold
FILE_MODE = 0o100644  # a regular file, rw-r--r--
CREATE_SYSTEM_UNIX = 3  # so external_attr carries the mode above
COMPRESS_LEVEL = 9


def deterministic_zip(entries: Iterable[tuple[str, bytes]]) -> bytes:
    """A zip of ``(name, data)`` entries, sorted by name; names must be unique."""
    ordered = sorted(entries, key=lambda entry: entry[0])
    names = [name for name, _ in ordered]
    if len(set(names)) != len(names):
        raise ValueError(
            f"duplicate zip entry names: {sorted({n for n in names if names.count(n) > 1})}"
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in ordered:
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = CREATE_SYSTEM_UNIX
            info.external_attr = FILE_MODE << 16
            archive.writestr(
                info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
            )
    return buffer.getvalue()
