"""Activation rotation at simulated times: one new activation, published, old one retired after grace."""

from __future__ import annotations

import io
import json

import pytest

from controller.engine.render import render_json, render_markdown, render_text
from controller.observability.logging import configure_logging
from tests.engine.helpers import PARAMETER, controller, load, write, writes

ACTIVATION = """\
apiVersion: fleet-controller/v1alpha1
kind: Activation
metadata: {name: corp}
spec:
  iamRole: SSMServiceRole
  registrationLimit: 10
  validFor: 1d
  renewBefore: 12h
  gracePeriod: 1h
  tags: {Fleet: corp}
  publish: {parameterName: /fleet-controller/activations/workspaces}
"""


@pytest.fixture
def captured_logs():
    stream = io.StringIO()
    configure_logging("json", "debug", stream=stream)
    yield stream
    configure_logging("json", "info")


def published(sandbox) -> dict:
    value = sandbox.client("ssm").get_parameter(Name=PARAMETER, WithDecryption=True)
    return json.loads(value["Parameter"]["Value"])


def activation_ids(sandbox) -> set[str]:
    listed = sandbox.client("ssm").describe_activations()["ActivationList"]
    return {a["ActivationId"] for a in listed}


def test_rotation_inside_renew_window_then_retire_after_grace(sandbox, tmp_path, captured_logs):
    desired = load(write(tmp_path, "activation.yaml", ACTIVATION))
    reconciler = controller(sandbox)
    rendered: list[str] = []

    _, result = reconciler.reconcile(desired)
    assert result.ok
    first = published(sandbox)
    assert activation_ids(sandbox) == {first["id"]}
    assert set(first) == {"id", "code", "region", "expiry"}

    sandbox.admin.advance_clock(11 * 3600)  # 13 h left: outside the 12 h window
    plan = reconciler.plan(desired)
    assert plan.operations == []

    sandbox.admin.advance_clock(2 * 3600)  # 11 h left: inside renewBefore
    plan = reconciler.plan(desired)
    rendered += [render_text(plan), render_markdown(plan), render_json(plan)]
    [operation] = plan.operations
    assert operation.action.value == "replace" and "renewBefore" in operation.reason
    sandbox.admin.reset_calls()
    _, result = reconciler.reconcile(desired)
    assert result.ok
    assert writes(sandbox) == {"ssm:CreateActivation": 1, "ssm:PutParameter": 1}
    second = published(sandbox)
    assert second["id"] != first["id"]
    assert activation_ids(sandbox) == {first["id"], second["id"]}  # old one kept for grace

    sandbox.admin.advance_clock(30 * 60)  # still inside the grace period
    plan = reconciler.plan(desired)
    assert plan.operations == []
    assert any("grace" in f.message for f in plan.findings)

    sandbox.admin.advance_clock(31 * 60)
    plan = reconciler.plan(desired)
    rendered += [render_text(plan), render_markdown(plan), render_json(plan)]
    assert [(op.action.value, op.resource) for op in plan.operations] == [("delete", first["id"])]
    sandbox.admin.reset_calls()
    _, result = reconciler.reconcile(desired)
    assert result.ok
    assert writes(sandbox) == {"ssm:DeleteActivation": 1}
    assert activation_ids(sandbox) == {second["id"]}

    output = captured_logs.getvalue() + "".join(rendered)
    assert "operation applied" in output  # the logs were captured
    for code in (first["code"], second["code"]):
        assert code not in output


def test_spec_change_rotates_and_lists_the_changed_fields(sandbox, tmp_path):
    directory = write(tmp_path, "activation.yaml", ACTIVATION)
    reconciler = controller(sandbox)
    reconciler.reconcile(load(directory))
    write(
        tmp_path,
        "activation.yaml",
        ACTIVATION.replace("registrationLimit: 10", "registrationLimit: 20"),
    )
    plan = reconciler.plan(load(directory))
    [operation] = plan.operations
    assert operation.action.value == "replace"
    assert [(c.field, c.before, c.after) for c in operation.changes] == [
        ("registrationLimit", 10, 20)
    ]


def test_registrations_near_the_limit_rotate(sandbox, tmp_path):
    desired = load(write(tmp_path, "activation.yaml", ACTIVATION))
    reconciler = controller(sandbox)
    reconciler.reconcile(desired)
    sandbox.admin.post("fleet/workspaces", {"count": 9})
    sandbox.admin.post("fleet/registration", {"parameterName": PARAMETER})
    sandbox.admin.post("fleet/boot", {})
    [operation] = reconciler.plan(desired).operations
    assert operation.action.value == "replace"
    assert "9 of 10 registrations" in operation.reason


def test_an_activation_created_but_never_published_is_cleaned_up(sandbox, tmp_path):
    """A crash between CreateActivation and PutParameter leaves an owned orphan whose code is lost."""
    desired = load(write(tmp_path, "activation.yaml", ACTIVATION))
    reconciler = controller(sandbox)
    reconciler.reconcile(desired)
    current = published(sandbox)["id"]
    orphan = sandbox.client("ssm").create_activation(
        IamRole="SSMServiceRole",
        RegistrationLimit=10,
        Tags=[
            {"Key": "fleet-controller/owner", "Value": "test-controller"},
            {"Key": "fleet-controller/manifest", "Value": "Activation/corp"},
        ],
    )["ActivationId"]
    plan = reconciler.plan(desired)
    assert [(op.action.value, op.resource) for op in plan.operations] == [("delete", orphan)]
    reconciler.reconcile(desired)
    assert activation_ids(sandbox) == {current}


def test_unowned_parameter_is_never_overwritten(sandbox, tmp_path):
    sandbox.client("ssm").put_parameter(Name=PARAMETER, Value="someone else's", Type="String")
    desired = load(write(tmp_path, "activation.yaml", ACTIVATION))
    sandbox.admin.reset_calls()
    plan, _result = controller(sandbox).reconcile(desired)
    assert plan.operations == []
    assert any("not owned" in f.message for f in plan.findings)
    assert writes(sandbox) == {}
