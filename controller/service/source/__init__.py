"""Where desired state comes from: a local directory or a git branch, as validated revisions."""

from controller.service.source.base import (
    DesiredStateSource,
    InvalidRevision,
    Revision,
    SourceUnavailable,
)
from controller.service.source.directory import DirectorySource
from controller.service.source.git import GitSource

__all__ = [
    "DesiredStateSource",
    "DirectorySource",
    "GitSource",
    "InvalidRevision",
    "Revision",
    "SourceUnavailable",
]
