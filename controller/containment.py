"""Containment: every file desired state names is a regular file inside the desired-state root.

Manifest authors are not operators (SECURITY.md). A Package's ``files`` are read, zipped,
uploaded and installed on the fleet, so a path that leads outside the desired-state directory -
``../../../../proc/self/environ``, an absolute path, a symlink to the controller's secrets - would
ship the controller's environment to every WorkSpace. Each named path is therefore resolved the
way the operating system will resolve it when the file is opened (every symlink followed, ``..``
applied after the symlink before it), and the result must lie inside the real path of the root.
Only then is it stat'ed, and only a regular file is accepted: a directory, a FIFO (opening one
blocks for ever), a device or a socket is refused before anything opens it.

The checks are on the text first (no NUL or control characters, no Windows separators or drive
letters, bounded lengths), so a hostile string never reaches the filesystem API at all.

Hidden files are not desired state (discovery skips them too): a path whose written or resolved
form passes through a name starting with one dot - ``.git/config`` (a clone's credentials when the
root is a checkout), ``.env``, ``.ssh`` - is refused even inside the root. Names starting with two
dots are the exception, because Kubernetes mounts a ConfigMap as ``..data`` and ``..<timestamp>``
directories behind ordinary symlinks.

Out of scope: somebody who can change the desired-state directory *while* the controller reads it
(time of check to time of use). That is an operator of the machine, not a manifest author: a
git source exports each commit into a directory only the controller writes.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_PATH_CHARS = 1024
"""Longest path a manifest may name. Real package trees are a few directories deep."""

MAX_COMPONENT_BYTES = 255
"""NAME_MAX on Linux and most filesystems: longer names cannot exist, so say so up front."""


class Refused(ValueError):
    """A path that does not name a regular file inside the root; the message says why."""


@dataclass(frozen=True)
class ContainedFile:
    """A regular file inside the root, as it was when checked.

    ``path`` is the real path (symlinks resolved); ``relative`` is that path relative to the
    root's real path, which is what digests and messages use (never the machine's layout).
    """

    path: Path
    relative: str
    size: int
    identity: tuple[int, int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns, st_ctime_ns


def path_text_problem(text: str) -> str | None:
    """Why ``text`` cannot be a relative path in desired state, judged on the text alone."""
    if not text:
        return "an empty path; give a file relative to this manifest file"
    if len(text) > MAX_PATH_CHARS:
        return f"the path is {len(text)} characters; at most {MAX_PATH_CHARS} are allowed"
    if any(not ch.isprintable() for ch in text):
        return "the path contains a control character (NUL, newline, escape, ...)"
    if "\\" in text or ":" in text:
        return (
            "Windows separators, drive letters and ':' are not allowed; give a path relative to"
            " this manifest file with '/' separators"
        )
    pure = PurePosixPath(text)
    if pure.is_absolute():
        return "an absolute path; give a path relative to this manifest file"
    for part in pure.parts:
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            return f"a path component is longer than {MAX_COMPONENT_BYTES} bytes"
    return None


class Containment:
    """Resolves paths named in desired state and refuses any that leave ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = Path(os.path.realpath(root))

    def contains(self, path: Path) -> bool:
        """Whether ``path`` (already resolved) is the root or below it."""
        return path == self.real_root or path.is_relative_to(self.real_root)

    def file(self, base: Path, relative: str) -> ContainedFile:
        """The regular file ``relative`` names from directory ``base``; raises Refused."""
        problem = path_text_problem(relative)
        if problem is not None:
            raise Refused(problem)
        candidate = base / relative
        lexical = Path(os.path.normpath(Path(os.path.realpath(base)) / relative))
        if not self.contains(lexical):
            raise Refused("leaves the desired-state directory ('..' goes above it)")
        real = self._resolve(candidate)
        if not self.contains(real):
            raise Refused(
                "resolves outside the desired-state directory through a symlink; only symlinks"
                " that stay inside it are followed"
            )
        for parts in (PurePosixPath(relative).parts, real.relative_to(self.real_root).parts):
            if any(_hidden(part) for part in parts):
                raise Refused(
                    "names (or leads through a symlink to) a hidden file or directory such as"
                    " .git or .env; hidden files are not part of the desired state"
                )
        return self._regular(real)

    def manifest_file(self, path: Path) -> ContainedFile:
        """A discovered manifest file: the same rule, for YAML files that are symlinks."""
        real = self._resolve(path)
        if not self.contains(real):
            raise Refused("is a symlink that resolves outside the desired-state directory; refused")
        if any(_hidden(part) for part in real.relative_to(self.real_root).parts):
            raise Refused("is a symlink to a hidden file (.git, .env, ...); refused")
        return self._regular(real)

    def _resolve(self, path: Path) -> Path:
        try:
            return Path(os.path.realpath(path, strict=True))
        except OSError as error:
            raise Refused(_os_problem(error)) from None

    def _regular(self, real: Path) -> ContainedFile:
        try:
            info = os.stat(real)
        except OSError as error:
            raise Refused(_os_problem(error)) from None
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"is {_file_type(info.st_mode)}, not a regular file")
        return ContainedFile(
            real,
            real.relative_to(self.real_root).as_posix(),
            info.st_size,
            file_identity(info),
        )


def _hidden(name: str) -> bool:
    return name.startswith(".") and not name.startswith("..")


def file_identity(info: os.stat_result) -> tuple[int, int, int, int, int]:
    """What changes when a file's content may have changed: ctime moves on every write and
    cannot be set back by the writer, so equal identities mean unchanged content."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _file_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _os_problem(error: OSError) -> str:
    if error.errno == errno.ENOENT:
        return "does not exist"
    if error.errno == errno.ELOOP:
        return "is a symlink loop (or too many symlinks in a row)"
    if error.errno == errno.ENOTDIR:
        return "has a part that should be a directory but is a file"
    if error.errno == errno.ENAMETOOLONG:
        return "is too long for the filesystem"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "cannot be read (permission denied)"
    return f"cannot be read ({error.strerror or type(error).__name__})"
