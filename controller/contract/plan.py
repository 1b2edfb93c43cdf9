"""The plan: what the controller would change, field by field, and what it noticed.

An operation carries everything ``apply`` needs in ``payload`` (never shown) and everything a
reviewer needs in ``changes`` (always shown). Each payload is one kind's ``Step``: a frozen,
keyword-only dataclass per thing ``apply`` can do (create an activation, publish a package
version, repair a tag, ...), which ``apply`` matches on. Secrets never enter either: an activation
code is created and published inside one apply step and exists nowhere else.

Operations and findings name the resource they are about with a ``Ref`` (kind and manifest name):
the engine's dependency graph is over refs, and a refused or failed resource blocks the operations
of the resources that reference it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
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


@dataclass(frozen=True, order=True)
class Ref:
    """One resource of the desired state: a manifest (or a resource the desired state implies)."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, kw_only=True)
class Step:
    """Base of every operation payload: one frozen keyword-only dataclass per step of a kind."""


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True, kw_only=True)
class Operation:
    kind: str
    name: str  # the manifest name this operation serves (or the live name when pruning)
    action: Action
    resource: str  # what AWS calls it: an activation id, mi-..., ws-..., or "(new)"
    payload: Step = field(compare=False, repr=False)
    changes: tuple[FieldChange, ...] = ()
    reason: str = ""
    prune: bool = False  # deletes something no manifest declares any more: needs --prune

    @property
    def title(self) -> str:
        return f"{self.kind}/{self.name} {self.resource}"

    @property
    def ref(self) -> Ref:
        return Ref(self.kind, self.name)

    @property
    def step(self) -> str:
        """The payload's step name (``PublishVersion``, ``ChangeTags``, ...)."""
        return type(self.payload).__name__


@dataclass(frozen=True, kw_only=True)
class Finding:
    """Something observed that is not a change: WorkSpaces not onboarded, install health, ...

    An ERROR finding is a refusal: the resource it names is left alone, the operations of
    resources that reference it are blocked, and ``plan`` and ``apply`` exit 1.
    """

    kind: str
    name: str
    severity: Severity
    message: str
    count: int = 1
    examples: tuple[str, ...] = ()

    @property
    def ref(self) -> Ref:
        return Ref(self.kind, self.name)


@dataclass(frozen=True)
class Requeue:
    """When a pass should come again sooner than the interval, and why (the earliest wins)."""

    after: timedelta
    reason: str

    @staticmethod
    def earliest(*candidates: Requeue | None) -> Requeue | None:
        present = [c for c in candidates if c is not None]
        return min(present, key=lambda r: r.after) if present else None


@dataclass
class KindPlan:
    """What one kind's diff returns: its operations, its findings, and when to look again."""

    operations: list[Operation] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    requeue: Requeue | None = None

    def note(
        self,
        kind: str,
        name: str,
        severity: Severity,
        message: str,
        *,
        count: int = 1,
        examples: tuple[str, ...] = (),
    ) -> None:
        self.findings.append(
            Finding(
                kind=kind,
                name=name,
                severity=severity,
                message=message,
                count=count,
                examples=examples,
            )
        )

    def refuse_not_owned(
        self, kind: str, name: str, what: str, consequence: str, *, as_a: str = ""
    ) -> None:
        """The one refusal every kind meets: ``what`` exists and this controller does not own it
        (``as_a``: nor as the type it needs, e.g. "a Package")."""
        owned = f"{as_a} owned" if as_a else "owned"
        self.note(
            kind,
            name,
            Severity.ERROR,
            f"{what} exists and is not {owned} by this controller (owner tag missing or"
            f" different): {consequence}",
        )

    def requeue_in(self, after: timedelta, reason: str) -> None:
        """Ask for the next pass within ``after`` (a renewal, a grace period's end, ...)."""
        if after > timedelta(0):
            self.requeue = Requeue.earliest(self.requeue, Requeue(after, reason))


@dataclass(frozen=True)
class Blocked:
    """An operation not applied because a resource it depends on was refused or failed."""

    operation: Operation
    why: str


@dataclass
class Plan:
    operations: list[Operation] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # prune guard refusals, with reasons
    blocked: list[Blocked] = field(default_factory=list)  # dependents of refused resources
    desired_digest: str = ""
    requeue: Requeue | None = None

    @property
    def has_changes(self) -> bool:
        return bool(self.operations)

    @property
    def errors(self) -> list[Finding]:
        """The refusals: error findings."""
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def ok(self) -> bool:
        """Nothing refused and nothing blocked: ``plan`` exits 1 otherwise, whatever else."""
        return not (self.errors or self.refused or self.blocked)

    def counts(self) -> dict[str, int]:
        totals = {action.value: 0 for action in Action}
        for operation in self.operations:
            totals[operation.action.value] += 1
        return totals
