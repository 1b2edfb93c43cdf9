"""A create whose response was lost (AWS acted, the client saw the connection drop).

For one pass the sandbox drops every response of one create operation after acting. The
controller cannot know whether the write happened, so it does not retry it (the call fails); the
next observation must find the resource and not create a second one, or, for an activation whose
code was lost with the response, create a new one, publish it and delete the unusable one. Then
the fleet converges to exactly a clean run's state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.crash.fleet import (
    PHASES,
    Target,
    converge,
    copy_example,
    plan_json,
    run_flow,
    run_in_process,
    snapshot,
)


def _activation_replaced(plan: dict[str, Any]) -> None:
    operations = [(op["kind"], op["action"], op["prune"]) for op in plan["operations"]]
    assert operations == [("Activation", "create", False), ("Activation", "delete", False)]
    assert "never published" in plan["operations"][1]["reason"]


def _nothing_to_do(plan: dict[str, Any]) -> None:
    assert plan["operations"] == [], plan["operations"]


def _only_the_blocked_associations(plan: dict[str, Any]) -> None:
    """The packages and the detection document were found, not created again; the associations
    that install them were blocked in the lost pass (what they depend on failed) and come now."""
    operations = [(op["kind"], op["action"]) for op in plan["operations"]]
    assert operations == [("Association", "create")] * 3, operations


def _promote_the_existing_version(plan: dict[str, Any]) -> None:
    [operation] = plan["operations"]
    assert (operation["kind"], operation["action"]) == ("Package", "update")
    assert operation["reason"] == "version 3.2.1 holds this content already: promoting it"
    assert not [c for c in operation["changes"] if c["field"].startswith("upload.")]
    assert not [f for f in plan["findings"] if "bump spec.version" in f["message"]]


# (operation whose responses are lost, phase, what the next plan must be, calls of that
# operation the convergence may add: only the activation, whose code was lost, is re-created)
CASES: tuple[tuple[str, str, Callable[[dict[str, Any]], None], int], ...] = (
    ("CreateActivation", "create", _activation_replaced, 1),
    ("CreateAssociation", "create", _nothing_to_do, 0),
    ("CreateDocument", "create", _only_the_blocked_associations, 0),  # 3 packages, 1 detector
    ("UpdateDocument", "update", _promote_the_existing_version, 0),
)


@pytest.mark.parametrize(
    ("operation", "phase", "next_plan", "again"), CASES, ids=[c[0] for c in CASES]
)
def test_the_next_pass_finds_what_a_lost_response_created(
    sandbox, tmp_path, reference, operation, phase, next_plan, again
):
    target = Target(sandbox.endpoint, sandbox.region)
    desired = copy_example(tmp_path / "desired")
    run_flow(target, desired, "main", until=phase)
    PHASES[phase].before(target, desired)

    sandbox.admin.set_faults(
        [{"service": "ssm", "operation": operation, "lost_response_rate": 1.0}]
    )
    lost = run_in_process("apply", desired, target)
    sandbox.admin.set_faults([])
    assert lost.code == 1
    assert "ConnectionClosedError" in lost.stderr  # the client cannot tell whether it acted
    acted = sandbox.admin.call_counts("ssm")[operation]
    assert acted >= 1

    next_plan(plan_json(desired, target))
    converge(desired, target)
    PHASES[phase].after(target)
    calls = sandbox.admin.call_counts("ssm")
    assert calls[operation] == acted + again
    if operation == "CreateActivation":
        assert calls["DeleteActivation"] == 1
    assert snapshot(target) == reference[("main", phase)]
