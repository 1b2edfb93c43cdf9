"""Located validation errors for desired state.

An invalid revision must say exactly which file, line and field is wrong and what is allowed, and
it must say all of it at once: a reviewer fixes a pull request in one pass, not one error per CI run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ManifestError:
    """One problem in the desired state, located as precisely as the source allows.

    ``line`` is 1-based and ``None`` only when no line applies (a file too large to read, a
    directory that does not exist). ``field`` is a dotted path such as ``spec.tags.Owner``.
    """

    file: str
    line: int | None
    message: str
    kind: str | None = None
    name: str | None = None
    field: str | None = None

    def sort_key(self) -> tuple[str, int, str, str]:
        return (self.file, self.line or 0, self.field or "", self.message)

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where]
        if self.kind and self.name:
            parts.append(f"{self.kind}/{self.name}")
        elif self.kind:
            parts.append(self.kind)
        if self.field:
            parts.append(self.field)
        return _one_line(": ".join([*parts, self.message]))


def _one_line(text: str) -> str:
    """Escape what a terminal or a CI log would act on: an error is printed as one line.

    Names, kinds and file names are the author's text; YAML's quoted scalars can carry line breaks
    and control characters (``"a\\nb"``, ``"\\e[2J"``), which would otherwise break the error over
    lines, forge further ``file:line`` errors in CI logs and the pull-request comment (which
    quotes stderr), or drive the terminal.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class InvalidDesiredState(Exception):
    """The desired state cannot be applied; carries every error found, sorted by file and line."""

    def __init__(self, errors: Iterable[ManifestError]) -> None:
        unique = {(e.file, e.line, e.kind, e.name, e.field, e.message): e for e in errors}
        self.errors: list[ManifestError] = sorted(unique.values(), key=ManifestError.sort_key)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.errors)
        head = f"desired state is invalid: {count} error{'s' if count != 1 else ''}"
        return "\n".join([head, *(f"  {error}" for error in self.errors)])
