"""What a pass did, in sentences a WorkSpaces admin reads on the console (and JSON keeps).

``pass_summary`` is the one line per pass: what changed, grouped by kind and action, what was
held back, and when the next pass comes. ``FindingJournal`` keeps findings from repeating: a
finding is logged when it appears, when what it says changes, and when it clears, not every pass
(a fleet with 20 WorkSpaces not onboarded says so once, then again when it is 3, then "cleared").
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from controller.contract import Action, Finding, Operation, Severity

_PAST = {
    Action.CREATE: "created",
    Action.UPDATE: "updated",
    Action.REPLACE: "replaced",
    Action.DELETE: "deleted",
}
_WOULD = {action: f"would {action.value}" for action in Action}
_LISTED = 4  # names listed per group before "and N more"


class PassOutcome(Protocol):
    """What ``pass_summary`` reads of an apply (``engine.reconcile.ApplyResult``)."""

    applied: list[Operation]
    failed: list[tuple[Operation, str]]
    deferred: list[Operation]
    skipped: list[Operation]


def seconds_text(seconds: float) -> str:
    """``4 s``, ``5 min``, ``1 h 30 min``: a wait as a person says it."""
    total = round(seconds)
    if total < 120:
        return f"{max(total, 0)} s"
    minutes, _ = divmod(total, 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def changes_text(operations: Sequence[Operation], verbs: dict[Action, str] | None = None) -> str:
    """``created 3 Packages (a, b, c); deleted 34 Enrollment workspaces resources`` ..."""
    words = verbs or _PAST
    groups: dict[tuple[Action, str], list[Operation]] = defaultdict(list)
    for operation in operations:
        groups[(operation.action, operation.kind)].append(operation)
    parts = []
    for action in Action:
        for (grouped, kind), members in groups.items():
            if grouped is action:
                parts.append(f"{words[action]} {_group_text(kind, members)}")
    return "; ".join(parts)


def _group_text(kind: str, members: Sequence[Operation]) -> str:
    names: dict[str, int] = {}
    for operation in sorted(members, key=lambda o: o.name):
        names[operation.name] = names.get(operation.name, 0) + 1
    if len(names) == 1 and len(members) > 1:
        # Many resources of one manifest (an Enrollment's activations, a TagSync's instances):
        # the count, and one reason as an example of what they are.
        (name,) = names
        example = f", e.g. {members[0].reason}" if members[0].reason else ""
        return f"{len(members)} resources of {kind} {name}{example}"
    shown = [f"{n} ({c})" if c > 1 else n for n, c in names.items()][:_LISTED]
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    if len(members) == 1:
        return f"{kind} {shown[0]}"
    if len(names) < len(members):  # several resources per manifest (a TagSync's instances)
        return f"{len(members)} resources of {kind} {', '.join(shown)}{more}"
    return f"{len(members)} {_plural(kind)} {', '.join(shown)}{more}"


def _plural(kind: str) -> str:
    return kind + ("es" if kind.endswith(("s", "x", "sh", "ch")) else "s")


def pass_summary(
    number: int,
    operations: Sequence[Operation],
    outcome: PassOutcome | None,
    *,
    enforce: bool,
    held: int,
    seconds: float,
    next_in: float | None,
    next_why: str = "",
) -> str:
    """One line for one pass: ``pass 2 (0.4 s): created ...; 1 failed. Next pass in 5 s.``"""
    head = f"pass {number} ({seconds:.1f} s): "
    if not enforce:
        said = changes_text(operations, _WOULD) if operations else "nothing would change"
        body = f"observe mode, {said}"
    elif outcome is None or not (operations or outcome.failed):
        body = "no changes, the fleet matches the desired state"
    else:
        body = changes_text(outcome.applied) or "nothing applied"
        trouble = [
            f"{len(outcome.failed)} failed" if outcome.failed else "",
            f"{len(outcome.deferred)} backing off" if outcome.deferred else "",
            f"{len(outcome.skipped)} not started (stopping)" if outcome.skipped else "",
        ]
        body += "".join(f"; {t}" for t in trouble if t)
    if held:
        body += f"; {held} refused or blocked (see the findings)"
    tail = ""
    if next_in is not None:
        tail = f" Next pass in {seconds_text(next_in)}"
        tail += f" ({next_why})." if next_why else "."
    return f"{head}{body}.{tail}"


# -- findings ----------------------------------------------------------------------------------


def finding_subject(finding: Finding, separator: str = " ") -> str:
    """``TagSync finance``; a finding about a whole kind (name ``*``: the Enrollment's waiting
    activations) or about no kind (``*``: the prune guard) names only what it is about."""
    if finding.name == "*":
        return finding.kind
    if finding.kind == "*":
        return finding.name
    return f"{finding.kind}{separator}{finding.name}"


def finding_text(finding: Finding) -> str:
    examples = f" (e.g. {', '.join(finding.examples)})" if finding.examples else ""
    return f"{finding_subject(finding)}: {finding.message}{examples}"


_NUMBER = re.compile(r"\d+")


@dataclass(frozen=True)
class FindingChange:
    """A finding that appeared (``before`` None), changed, or cleared (``after`` None)."""

    before: Finding | None
    after: Finding | None

    @property
    def what(self) -> str:
        if self.before is None:
            return "appeared"
        return "cleared" if self.after is None else "changed"


class FindingJournal:
    """The findings a target reported last, to log only what appeared, changed or cleared.

    A finding is the same one from pass to pass when its kind, name, severity and message agree
    with the numbers taken out ("20 WorkSpace(s) ..." and "3 WorkSpace(s) ..." are one finding
    that changed); its examples changing alone is not news.
    """

    def __init__(self) -> None:
        self._known: dict[tuple[str, str, str, str], Finding] = {}

    @staticmethod
    def _key(finding: Finding) -> tuple[str, str, str, str]:
        return (
            finding.kind,
            finding.name,
            finding.severity.value,
            _NUMBER.sub("#", finding.message),
        )

    def update(self, findings: Iterable[Finding]) -> list[FindingChange]:
        current: dict[tuple[str, str, str, str], Finding] = {}
        for finding in findings:
            current.setdefault(self._key(finding), finding)
        changes = [
            FindingChange(self._known.get(key), finding)
            for key, finding in current.items()
            if key not in self._known
            or (self._known[key].message, self._known[key].count)
            != (finding.message, finding.count)
        ]
        changes += [
            FindingChange(finding, None)
            for key, finding in self._known.items()
            if key not in current
        ]
        self._known = current
        return changes


def log_finding_changes(changes: Iterable[FindingChange], log: Any, **fields: Any) -> None:
    """One log event per change: warnings and errors at their level, the rest (and clears) info."""
    for change in changes:
        finding = change.after or change.before
        assert finding is not None
        if change.after is None:
            summary = f"cleared: {finding_text(finding)}"
        elif change.before is None:
            summary = finding_text(finding)
        else:
            summary = f"now: {finding_text(finding)}"
        level = finding.severity if change.after is not None else Severity.INFO
        method: Callable[..., Any] = {
            Severity.ERROR: log.error,
            Severity.WARNING: log.warning,
        }.get(level, log.info)
        method(
            "finding " + change.what,
            summary=summary,
            kind=finding.kind,
            name=finding.name,
            severity=finding.severity.value,
            message=finding.message,
            count=finding.count,
            examples=list(finding.examples),
            **fields,
        )


__all__ = [
    "FindingChange",
    "FindingJournal",
    "changes_text",
    "finding_text",
    "log_finding_changes",
    "pass_summary",
    "seconds_text",
]
