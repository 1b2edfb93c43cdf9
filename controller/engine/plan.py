"""The plan: what the controller would change, field by field, and what it noticed.

Operations carry everything ``apply`` needs in ``payload`` (never shown) and everything a reviewer
needs in ``changes`` (always shown). Secrets never enter either: an activation code is created and
published inside one apply step and exists nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"  # immutable resources: create the new one, retire the old one later
    DELETE = "delete"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Operation:
    kind: str
    name: str  # the manifest name this operation serves (or the live name when pruning)
    action: Action
    resource: str  # what AWS calls it: an activation id, mi-..., ws-..., or "(new)"
    changes: tuple[FieldChange, ...] = ()
    reason: str = ""
    prune: bool = False  # deletes something no manifest declares any more: needs --prune
    # Within a kind, a lower stage finishes before a higher one starts, whatever the actions (a
    # document is created or updated before the associations that run it); operations of one
    # stage and action run concurrently.
    stage: int = 0
    payload: Any = field(default=None, compare=False, repr=False)

    @property
    def title(self) -> str:
        return f"{self.kind}/{self.name} {self.resource}"


@dataclass(frozen=True)
class Finding:
    """Something observed that is not a change: WorkSpaces not onboarded, install health, ..."""

    kind: str
    name: str
    severity: Severity
    message: str
    count: int = 1
    examples: tuple[str, ...] = ()


@dataclass
class KindPlan:
    """What one kind's diff returns."""

    operations: list[Operation] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


@dataclass
class Plan:
    operations: list[Operation] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # prune guard refusals, with reasons
    desired_digest: str = ""

    @property
    def has_changes(self) -> bool:
        return bool(self.operations)

    def counts(self) -> dict[str, int]:
        totals = {action.value: 0 for action in Action}
        for operation in self.operations:
            totals[operation.action.value] += 1
        return totals
