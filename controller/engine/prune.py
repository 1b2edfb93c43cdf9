"""The prune guard: deleting what no manifest declares is opt-in and bounded.

A desired-state directory that lost its files by mistake must not become an instruction to delete
a fleet. Prune operations are dropped unless ``--prune`` is given, and refused as a whole when they
exceed ``--max-deletes`` or when the kind they belong to has no desired documents at all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from controller.contract import Finding, Operation, Plan, Severity


@dataclass(frozen=True)
class PruneSettings:
    enabled: bool = False
    max_deletes: int = 5


def guard(plan: Plan, settings: PruneSettings, desired_counts: dict[str, int]) -> Plan:
    """The plan with prune operations kept only when allowed; refusals are recorded on it."""
    pruning = [op for op in plan.operations if op.prune]
    kept: list[Operation] = [op for op in plan.operations if not op.prune]
    if not pruning:
        return plan
    by_kind = Counter(op.kind for op in pruning)
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(by_kind.items()))
    if not settings.enabled:
        plan.findings.append(
            Finding(
                kind="*",
                name="prune",
                severity=Severity.INFO,
                message=f"{len(pruning)} resource(s) no manifest declares ({summary}) would be"
                " removed with --prune",
                count=len(pruning),
                examples=tuple(op.resource for op in pruning[:5]),
            )
        )
    else:
        empty = sorted(kind for kind in by_kind if desired_counts.get(kind, 0) == 0)
        if empty:
            plan.refused.append(
                f"refusing to prune: no {', '.join(empty)} documents are desired; an empty desired "
                "set would delete everything of that kind"
            )
        elif len(pruning) > settings.max_deletes:
            plan.refused.append(
                f"refusing to prune {len(pruning)} resources ({summary}): more than --max-deletes "
                f"{settings.max_deletes}"
            )
        else:
            kept += pruning
    plan.operations = kept
    return plan
