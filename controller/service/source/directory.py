"""A desired-state directory on local disk, re-read on every fetch (a mounted ConfigMap, a checkout)."""

from __future__ import annotations

from pathlib import Path

from controller.manifests import InvalidDesiredState, load_desired_state
from controller.service.source.base import InvalidRevision, Revision

DIGEST_CHARS = 12


class DirectorySource:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.description = str(directory)

    def fetch(self) -> Revision:
        try:
            desired = load_desired_state(self.directory)
        except InvalidDesiredState as invalid:
            raise InvalidRevision(None, invalid.errors) from None
        return Revision(desired.digest[:DIGEST_CHARS], desired)

    def close(self) -> None:
        return None
