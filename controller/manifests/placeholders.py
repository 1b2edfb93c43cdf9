"""Placeholders: what ``export`` writes where it cannot know a value.

A string holding ``REPLACE-ME`` anywhere in a manifest's spec is a placeholder. The manifest is
still valid (``validate`` passes and lists each placeholder with file, line and field), but plan
and apply refuse it until it is filled in: a guessed detection rule or a stub installer must never
reach a fleet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.contract import PLACEHOLDER
from controller.manifests.source import FieldPath


@dataclass(frozen=True)
class Placeholder:
    file: str
    line: int
    ref: str  # Kind/name
    field: str  # spec.detection.path
    value: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.ref}: {self.field}: {self.value!r:.120}"


def placeholders_in(data: Any, path: FieldPath) -> list[tuple[FieldPath, str]]:
    """Every string under ``data`` holding the placeholder, with its path."""
    if isinstance(data, str):
        return [(path, data)] if PLACEHOLDER in data else []
    if isinstance(data, dict):
        return [
            found for key, value in data.items() for found in placeholders_in(value, (*path, key))
        ]
    if isinstance(data, list):
        return [
            found
            for index, value in enumerate(data)
            for found in placeholders_in(value, (*path, index))
        ]
    return []


__all__ = ["PLACEHOLDER", "Placeholder", "placeholders_in"]
