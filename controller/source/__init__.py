"""Where desired state comes from: a local directory or a git branch, as validated revisions."""

from controller.source.base import (
    DesiredStateSource,
    InvalidRevision,
    Revision,
    SourceUnavailable,
)
from controller.source.directory import DirectorySource
from controller.source.git import GitSource

__all__ = [
    "DesiredStateSource",
    "DirectorySource",
    "GitSource",
    "InvalidRevision",
    "Revision",
    "SourceUnavailable",
]
