"""Crash points: a test switch that kills the process between two steps of a multi-step write.

A controller can be killed at any moment (OOM, node loss, a deploy). Every multi-step operation
(create an activation, then publish it; upload, version, promote, prune, start a package's
associations; ...) must converge on restart with nothing duplicated and nothing leaked. To prove
it, each step boundary calls ``crash_point("kind.step")``. When ``FLEET_CONTROLLER_CRASH_AT``
names that point (a comma-separated list may name several), the process ends there and then with
``os._exit(CRASH_EXIT_CODE)``: no exception handler, no ``finally``, no atexit, no buffered output
flushed, as a SIGKILL would. Only one line naming the point is written straight to file
descriptor 2, so a test can tell which point ended the process.

The environment is read once, at import. Unset (always, in production), a point costs one test
of an empty frozenset.
"""

from __future__ import annotations

import os
from typing import NoReturn

ENV = "FLEET_CONTROLLER_CRASH_AT"
CRASH_EXIT_CODE = 86  # distinct from the CLI's 0/1/2 and from a signal's 128+n

# Every point, in the order a fresh fleet and then an update reach them. A test iterates over
# this; a call with a name not listed here is a bug (tests/crash checks the source for it).
CRASH_POINTS: tuple[str, ...] = (
    "activation.created",  # CreateActivation answered; the code is not published yet
    "activation.published",  # PutParameter done: the new activation is in use
    "package.uploaded",  # after each S3 upload of a content-addressed zip
    "package.versioned",  # CreateDocument / UpdateDocument done; not yet the default
    "package.promoted",  # UpdateDocumentDefaultVersion done
    "package.pruned",  # versions beyond keepVersions deleted
    "package.starting",  # just before StartAssociationsOnce for the "latest" followers
    "package.started",  # StartAssociationsOnce done; not yet recorded on the document
    "association.document-created",  # detection document created
    "association.document-versioned",  # detection document's new version; not yet the default
    "association.created",  # CreateAssociation (with its tags) done
    "association.tags-repaired",  # the manifest tag of an owned association rewritten
    "tagsync.added",  # AddTagsToResource done; RemoveTagsFromResource not yet sent
)


def _armed(value: str | None) -> frozenset[str]:
    names = frozenset(part.strip() for part in (value or "").split(",") if part.strip())
    unknown = sorted(names - set(CRASH_POINTS))
    if unknown:
        raise ValueError(
            f"{ENV} names unknown crash point(s): {', '.join(unknown)}; "
            f"known: {', '.join(CRASH_POINTS)}"
        )
    return names


_ARMED = _armed(os.environ.get(ENV))


def armed() -> frozenset[str]:
    """The points this process dies at (empty unless the test switch is set)."""
    return _ARMED


def crash_point(name: str) -> None:
    """Die here, at once, when ``FLEET_CONTROLLER_CRASH_AT`` names this point."""
    if _ARMED and name in _ARMED:
        _die(name)


def _die(name: str) -> NoReturn:
    os.write(2, f"fleet-controller: crash point {name}\n".encode())
    os._exit(CRASH_EXIT_CODE)


__all__ = ["CRASH_EXIT_CODE", "CRASH_POINTS", "ENV", "armed", "crash_point"]
