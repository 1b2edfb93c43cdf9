"""What a desired-state source yields: a validated revision, an invalid one, or nothing at all.

The loop treats the three differently: a valid revision replaces the one being enforced, an
invalid one is reported (and never applied), and an unreachable source changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from controller.manifests import DesiredState, InvalidDesiredState, ManifestError


@dataclass(frozen=True)
class Revision:
    """A desired state that validated as a whole, and the name of what it was read from.

    ``id`` is a git commit sha for a git source and a content digest for a directory; it is what
    ``fleet_desired_state_info{revision}`` shows.
    """

    id: str
    desired: DesiredState


class InvalidRevision(InvalidDesiredState):
    """A revision that was read but did not validate; ``revision`` names it when it has a name."""

    def __init__(self, revision: str | None, errors: Iterable[ManifestError]) -> None:
        self.revision = revision
        super().__init__(errors)


class SourceUnavailable(Exception):
    """The source could not be read (network, credentials, a missing ref): nothing new is known."""


class DesiredStateSource(Protocol):
    description: str

    def fetch(self) -> Revision:
        """The newest revision; raises InvalidRevision or SourceUnavailable."""

    def close(self) -> None:
        """Release what the source holds on disk."""
