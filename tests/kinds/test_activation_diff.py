"""Activation's diff, called with hand-built live state (controller/kinds/activation.py).

The cases of its docstring: a rotation for every reason to change an immutable activation (the
spec changed, expired, within renewBefore, registrations near the limit, gone), none for an equal
one (a lifetime within the clock tolerance of validFor is equal), the previous activation retired
only after its grace period, one never published cleaned up, the parameter of someone else refused,
the undeclared pruned, and nothing that is not this controller's touched.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.contract import Action, Severity
from controller.kinds.activation import (
    ActivationKind,
    ActivationLive,
    CreateActivation,
    DeleteActivation,
    LiveActivation,
    PublishedParameter,
)
from tests.kinds.builders import CONTROLLER_ID, NOW, SOMEONE_ELSE, context, manifest, owned_by

PARAMETER = "/fleet-controller/activations/workspaces"
CURRENT = "11111111-1111-1111-1111-111111111111"
PREVIOUS = "22222222-2222-2222-2222-222222222222"
SPEC: dict[str, Any] = {
    "iamRole": "SSMServiceRole-WorkSpaces",
    "registrationLimit": 100,
    "validFor": "30d",
    "renewBefore": "2d",
    "rotateAtRegistrationPercent": 90,
    "gracePeriod": "6h",
    "defaultInstanceName": "workspace",
    "description": "Hybrid activation for Amazon WorkSpaces",
    "tags": {"Fleet": "workspaces"},
    "publish": {"parameterName": PARAMETER},
}


def desired(**changes: Any):
    return manifest("Activation", "workspaces", {**SPEC, **changes})


def live_activation(
    activation_id: str = CURRENT,
    *,
    age: timedelta = timedelta(days=1),
    lifetime: timedelta = timedelta(days=30),
    registrations: int = 0,
    tags: dict[str, str] | None = None,
    **fields: Any,
) -> LiveActivation:
    """An activation as DescribeActivations shows the one ``SPEC`` would create, ``age`` ago."""
    created = NOW - age
    values: dict[str, Any] = {
        "activation_id": activation_id,
        "iam_role": SPEC["iamRole"],
        "registration_limit": SPEC["registrationLimit"],
        "registrations_count": registrations,
        "expiration": created + lifetime,
        "created": created,
        "expired": created + lifetime <= NOW,
        "description": SPEC["description"],
        "default_instance_name": SPEC["defaultInstanceName"],
        "tags": {"Fleet": "workspaces", **owned_by("Activation", "workspaces")}
        if tags is None
        else tags,
    }
    values.update(fields)
    return LiveActivation(**values)


def published(activation_id: str | None = CURRENT, owned: bool = True) -> dict[str, Any]:
    return {PARAMETER: PublishedParameter(PARAMETER, True, owned, activation_id)}


def diff(live: ActivationLive, *manifests, now=NOW):
    manifests = manifests or (desired(),)
    return ActivationKind().diff(list(manifests), live, context(*manifests, now=now))


def test_an_equal_activation_plans_nothing_and_asks_to_be_back_when_renewal_is_due():
    plan = diff(ActivationLive([live_activation()], published()))
    assert plan.operations == [] and plan.findings == []
    # expiry (created 1 day ago + 30 d) less renewBefore (2 d) is 27 days from now
    assert plan.requeue is not None and plan.requeue.after == timedelta(days=27)


def test_nothing_published_creates_one_and_publishes_it():
    plan = diff(ActivationLive([], {PARAMETER: PublishedParameter(PARAMETER, False)}))
    [operation] = plan.operations
    assert (operation.action, operation.resource, operation.reason) == (
        Action.CREATE,
        "(new)",
        "no activation is published",
    )
    step = operation.payload
    assert isinstance(step, CreateActivation)
    assert step.parameter_exists is False and step.parameter_name == PARAMETER
    assert step.registration_limit == 100 and step.valid_for == timedelta(days=30)
    assert step.tags == {"Fleet": "workspaces", **owned_by("Activation", "workspaces")}


def test_a_published_activation_that_is_gone_is_replaced_by_a_new_one():
    plan = diff(ActivationLive([], published(CURRENT)))
    [operation] = plan.operations
    assert operation.action is Action.CREATE
    assert operation.reason == f"published activation {CURRENT} no longer exists"
    assert operation.payload.parameter_exists is True


@pytest.mark.parametrize(
    ("field", "live_field", "live_value", "shown"),
    [
        ("iamRole", "iam_role", "SomeOtherRole", "iamRole"),
        ("registrationLimit", "registration_limit", 50, "registrationLimit"),
        ("description", "description", "hand edited", "description"),
        ("defaultInstanceName", "default_instance_name", "other", "defaultInstanceName"),
    ],
)
def test_each_field_that_differs_rotates_the_immutable_activation(
    field, live_field, live_value, shown
):
    live = live_activation(**{live_field: live_value})
    plan = diff(ActivationLive([live], published()))
    [operation] = plan.operations
    assert (operation.action, operation.resource) == (Action.REPLACE, CURRENT)
    assert operation.reason == "the spec changed and activations are immutable"
    assert [(c.field, c.before, c.after) for c in operation.changes] == [
        (shown, live_value, SPEC[field])
    ]


def test_a_tag_that_differs_rotates_and_names_the_tag():
    tags = {"Fleet": "laptops", **owned_by("Activation", "workspaces")}
    plan = diff(ActivationLive([live_activation(tags=tags)], published()))
    [operation] = plan.operations
    assert [(c.field, c.before, c.after) for c in operation.changes] == [
        ("tags.Fleet", "laptops", "workspaces")
    ]


@pytest.mark.parametrize("off_by", [timedelta(minutes=4), -timedelta(minutes=4)])
def test_a_lifetime_within_the_clock_tolerance_of_valid_for_is_equal(off_by):
    live = live_activation(lifetime=timedelta(days=30) + off_by)
    assert diff(ActivationLive([live], published())).operations == []


@pytest.mark.parametrize("off_by", [timedelta(minutes=6), -timedelta(minutes=6)])
def test_a_lifetime_beyond_the_clock_tolerance_rotates(off_by):
    live = live_activation(lifetime=timedelta(days=30) + off_by)
    [operation] = diff(ActivationLive([live], published())).operations
    assert [c.field for c in operation.changes] == ["validFor"]
    assert operation.changes[0].after == "30d"


def test_an_expired_activation_is_rotated():
    live = live_activation(age=timedelta(days=31))
    [operation] = diff(ActivationLive([live], published())).operations
    assert operation.action is Action.REPLACE and operation.reason.startswith("expired at")


def test_aws_saying_expired_is_believed_whatever_our_clock_says():
    live = live_activation(expired=True)
    [operation] = diff(ActivationLive([live], published())).operations
    assert operation.reason.startswith("expired at")


def test_renewal_starts_exactly_at_the_renew_before_window():
    # expires in exactly 2 days (renewBefore): rotate; a second more: keep
    due = live_activation(age=timedelta(days=28))
    [operation] = diff(ActivationLive([due], published())).operations
    assert "within renewBefore (2d)" in operation.reason
    not_yet = live_activation(age=timedelta(days=28) - timedelta(seconds=1))
    assert diff(ActivationLive([not_yet], published())).operations == []


def test_registrations_rotate_at_the_percentage_rounded_up():
    # 90% of 100 registrations is 90: 89 keeps it, 90 rotates it
    assert diff(ActivationLive([live_activation(registrations=89)], published())).operations == []
    [operation] = diff(ActivationLive([live_activation(registrations=90)], published())).operations
    assert operation.reason == "90 of 100 registrations used (rotates at 90%)"
    # 90% of 7 is 6.3: the seventh registration, not the sixth, triggers it
    small = manifest("Activation", "workspaces", {**SPEC, "registrationLimit": 7})
    six = live_activation(registrations=6, registration_limit=7)
    assert diff(ActivationLive([six], published()), small).operations == []
    seven = live_activation(registrations=7, registration_limit=7)
    assert len(diff(ActivationLive([seven], published()), small).operations) == 1


def test_the_previous_activation_is_kept_through_its_grace_period_then_deleted():
    current = live_activation(age=timedelta(hours=2))
    previous = live_activation(PREVIOUS, age=timedelta(days=20))
    during = diff(ActivationLive([current, previous], published()))
    assert during.operations == []
    [note] = during.findings
    assert note.severity is Severity.INFO and PREVIOUS in note.message
    assert during.requeue is not None and during.requeue.after == timedelta(hours=4)

    after = diff(ActivationLive([current, previous], published()), now=NOW + timedelta(hours=4))
    [operation] = after.operations
    assert (operation.action, operation.resource, operation.prune) == (
        Action.DELETE,
        PREVIOUS,
        False,
    )
    assert operation.reason == f"replaced by {CURRENT}; grace period over"
    assert operation.payload == DeleteActivation(activation_id=PREVIOUS)


def test_an_activation_created_after_the_published_one_was_never_published_and_goes():
    current = live_activation(age=timedelta(days=2))
    orphan = live_activation(PREVIOUS, age=timedelta(hours=1))
    [operation] = diff(ActivationLive([current, orphan], published())).operations
    assert (operation.action, operation.resource) == (Action.DELETE, PREVIOUS)
    assert "never published" in operation.reason


def test_a_parameter_someone_else_owns_is_refused_and_nothing_is_planned():
    plan = diff(ActivationLive([live_activation()], published(owned=False)))
    assert plan.operations == []
    [refusal] = plan.findings
    assert refusal.severity is Severity.ERROR
    assert f"parameter {PARAMETER} exists and is not owned" in refusal.message


def test_an_undeclared_owned_activation_is_pruned():
    gone = live_activation(PREVIOUS, tags=owned_by("Activation", "laptops"))
    plan = diff(ActivationLive([live_activation(), gone], published()))
    [operation] = plan.operations
    assert (operation.action, operation.resource, operation.name, operation.prune) == (
        Action.DELETE,
        PREVIOUS,
        "laptops",
        True,
    )


@pytest.mark.parametrize(
    "tags",
    [
        owned_by("Activation", "laptops", SOMEONE_ELSE),  # another controller's
        {"Fleet": "workspaces"},  # made by hand
        owned_by("Enrollment", "workspaces"),  # ours, but a per-WorkSpace one
    ],
    ids=["another-controller", "unowned", "another-kind"],
)
def test_activations_that_are_not_this_kinds_are_never_touched(tags):
    stranger = live_activation(PREVIOUS, age=timedelta(days=40), tags=tags)
    plan = diff(ActivationLive([live_activation(), stranger], published()))
    assert plan.operations == [] and plan.findings == []


def test_another_controllers_activation_for_the_same_manifest_is_not_ours_to_publish():
    theirs = live_activation(tags=owned_by("Activation", "workspaces", SOMEONE_ELSE))
    [operation] = diff(ActivationLive([theirs], published())).operations
    # the parameter names it, but it is not this controller's: a new one is created, and
    # theirs is neither replaced nor deleted
    assert (operation.action, operation.resource) == (Action.CREATE, "(new)")


def test_the_controller_id_decides_ownership():
    live = ActivationLive([live_activation()], published())
    manifests = (desired(),)
    ours = ActivationKind().diff(list(manifests), live, context(*manifests))
    theirs = ActivationKind().diff(
        list(manifests), live, context(*manifests, controller_id=SOMEONE_ELSE)
    )
    assert ours.operations == []
    assert [op.action for op in theirs.operations] == [Action.CREATE]
    assert CONTROLLER_ID != SOMEONE_ELSE


def test_diff_is_pure_the_same_input_gives_the_same_plan():
    live = ActivationLive([live_activation(age=timedelta(days=29))], published())
    first, second = diff(live), diff(live)
    assert first.operations == second.operations and len(first.operations) == 1
    assert live == ActivationLive([live_activation(age=timedelta(days=29))], published())
