"""The prune guard (controller/engine/prune.py), called with hand-built plans.

Deleting what no manifest declares is opt-in (``--prune``) and bounded: refused as a whole when
the deletions exceed ``--max-deletes`` or when the kind they belong to has no desired documents
(a desired-state directory that lost its files must not become an order to delete a fleet).
Operations that are not prunes pass untouched either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.contract import Action, Operation, Plan, Severity, Step
from controller.engine.prune import PruneSettings, guard


@dataclass(frozen=True, kw_only=True)
class Noop(Step):
    pass


def operation(kind: str, resource: str, *, prune: bool) -> Operation:
    return Operation(
        kind=kind,
        name="m",
        action=Action.DELETE if prune else Action.UPDATE,
        resource=resource,
        prune=prune,
        payload=Noop(),
    )


def plan_of(prunes: dict[str, int], updates: int = 1) -> Plan:
    operations = [operation("TagSync", f"mi-{i}", prune=False) for i in range(updates)]
    for kind, count in prunes.items():
        operations += [operation(kind, f"{kind}-{i}", prune=True) for i in range(count)]
    return Plan(operations=operations)


def resources(plan: Plan) -> list[str]:
    return [op.resource for op in plan.operations]


def test_without_prune_nothing_is_deleted_and_the_plan_says_what_would_be():
    plan = guard(plan_of({"Association": 2}), PruneSettings(enabled=False), {"Association": 3})
    assert resources(plan) == ["mi-0"]
    assert plan.refused == []
    [finding] = plan.findings
    assert finding.severity is Severity.INFO and finding.count == 2
    assert "2 resource(s) no manifest declares (2 Association) would be removed with --prune" in (
        finding.message
    )
    assert finding.examples == ("Association-0", "Association-1")


def test_with_prune_and_within_the_limit_the_deletions_are_kept():
    plan = guard(
        plan_of({"Association": 2, "Package": 3}),
        PruneSettings(enabled=True, max_deletes=5),
        {"Association": 1, "Package": 1},
    )
    assert resources(plan) == [
        "mi-0",
        "Association-0",
        "Association-1",
        "Package-0",
        "Package-1",
        "Package-2",
    ]
    assert plan.refused == [] and plan.findings == []


def test_more_deletions_than_max_deletes_are_refused_as_a_whole():
    plan = guard(
        plan_of({"Association": 6}), PruneSettings(enabled=True, max_deletes=5), {"Association": 1}
    )
    assert resources(plan) == ["mi-0"]  # the update stays, no deletion does
    assert plan.refused == [
        "refusing to prune 6 resources (6 Association): more than --max-deletes 5"
    ]
    assert not plan.ok


def test_max_deletes_counts_every_kind_together():
    plan = guard(
        plan_of({"Association": 3, "Package": 3}),
        PruneSettings(enabled=True, max_deletes=5),
        {"Association": 1, "Package": 1},
    )
    assert resources(plan) == ["mi-0"] and len(plan.refused) == 1


def test_a_kind_with_no_desired_documents_is_never_pruned_whatever_the_limit():
    plan = guard(
        plan_of({"Association": 1}), PruneSettings(enabled=True, max_deletes=100), {"Package": 2}
    )
    assert resources(plan) == ["mi-0"]
    assert plan.refused == [
        "refusing to prune: no Association documents are desired; an empty desired set would"
        " delete everything of that kind"
    ]
    assert not plan.ok


def test_an_empty_kind_refuses_the_other_kinds_deletions_too():
    plan = guard(
        plan_of({"Association": 1, "Package": 1}),
        PruneSettings(enabled=True, max_deletes=100),
        {"Package": 2, "Association": 0},
    )
    assert resources(plan) == ["mi-0"]
    assert "no Association documents are desired" in plan.refused[0]


def test_a_plan_without_prunes_is_returned_as_it_was():
    original = plan_of({}, updates=3)
    plan = guard(original, PruneSettings(enabled=True, max_deletes=0), {})
    assert resources(plan) == ["mi-0", "mi-1", "mi-2"]
    assert plan.refused == [] and plan.findings == []
