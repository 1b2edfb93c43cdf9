"""The Enrollment kind: per-WorkSpace activations deleted once used or expired, impostors removed.

The pure diff is checked case by case; then the whole road against the sandbox: WorkSpaces ask the
endpoint over HTTP, register (or someone else does, with a leaked code), and the reconciler's
passes clean up and catch the impostor.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.contract.ownership import MANIFEST_TAG, OWNER_TAG, WORKSPACE_ID_TAG
from controller.contract.plan import Action, Severity
from controller.engine.prune import PruneSettings
from controller.engine.reconcile import Reconciler, ReconcileSettings
from controller.kinds.base import Context
from controller.kinds.enrollment import (
    DeleteActivation,
    Deregister,
    EnrollmentKind,
    EnrollmentLive,
    PerWorkspaceActivation,
    RegisteredInstance,
)
from controller.kinds.matching import LiveWorkspace
from controller.observability.metrics import Metrics
from tests.enrollment.helpers import (
    CONTROLLER_ID,
    activations,
    aws_for,
    desired_state,
    endpoint,
    enroll,
    fleet,
    workspaces,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CTX = Context(controller_id=CONTROLLER_ID, region="us-east-1", now=NOW)
WORKSPACE = LiveWorkspace(
    "ws-aaaa1111", "d-1234567890", "wsb-1", "AVAILABLE", "alice", "WSAMZN-ALICE01", "10.0.0.5"
)


def activation(
    registrations: int = 0, expires_in: timedelta = timedelta(minutes=30), manifest: str = "office"
) -> PerWorkspaceActivation:
    return PerWorkspaceActivation(
        activation_id="11111111-2222-3333-4444-555555555555",
        manifest=manifest,
        workspace_id=WORKSPACE.workspace_id,
        registrations=registrations,
        expiration=NOW + expires_in,
        expired=expires_in <= timedelta(0),
    )


def instance(name: str = "WSAMZN-ALICE01.corp.example.com", address: str = "10.0.0.5"):
    return RegisteredInstance("mi-0123456789abcdef0", name, address, activation().activation_id)


def diff(live: EnrollmentLive, desired_names: tuple[str, ...] = ("office",)):
    manifests = desired_state_for(desired_names)
    return EnrollmentKind().diff(manifests, live, CTX)


def desired_state_for(names: tuple[str, ...]):
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

    return [Named(name) for name in names]  # diff only reads the names


def test_an_unused_activation_waits_until_it_expires_then_is_deleted():
    waiting = diff(EnrollmentLive([activation()]))
    assert waiting.operations == []
    assert "have not registered" in waiting.findings[0].message
    expired = diff(EnrollmentLive([activation(expires_in=timedelta(seconds=-1))]))
    (operation,) = expired.operations
    assert operation.action is Action.DELETE and not operation.prune
    assert operation.payload == DeleteActivation(activation_id=activation().activation_id)


def test_a_used_activation_whose_instance_is_its_workspace_is_deleted():
    live = EnrollmentLive(
        [activation(registrations=1)],
        {activation().activation_id: [instance()]},
        {WORKSPACE.workspace_id: WORKSPACE},
    )
    plan = diff(live)
    (operation,) = plan.operations
    assert operation.payload == DeleteActivation(activation_id=activation().activation_id)
    assert "verified as ws-aaaa1111" in operation.reason
    assert not [f for f in plan.findings if f.severity is Severity.ERROR]


@pytest.mark.parametrize(
    "name, address, says",
    [
        ("EVIL-PC.corp.example.com", "10.0.0.5", "computer name 'EVIL-PC.corp.example.com'"),
        ("WSAMZN-ALICE01.corp.example.com", "10.9.9.9", "address 10.9.9.9, not 10.0.0.5"),
    ],
)
def test_an_instance_that_is_not_the_workspace_is_an_impostor(name, address, says):
    live = EnrollmentLive(
        [activation(registrations=1)],
        {activation().activation_id: [instance(name, address)]},
        {WORKSPACE.workspace_id: WORKSPACE},
    )
    plan = diff(live)
    (operation,) = plan.operations  # the activation is kept as evidence
    assert operation.payload == Deregister(instance_id="mi-0123456789abcdef0")
    assert operation.prune and operation.action is Action.DELETE
    (finding,) = [f for f in plan.findings if f.severity is Severity.ERROR]
    assert "impostor mi-0123456789abcdef0" in finding.message and says in finding.message


def test_a_used_activation_with_nothing_to_verify_waits_for_its_expiry():
    used = activation(registrations=1)
    assert diff(EnrollmentLive([used])).operations == []
    gone = activation(registrations=1, expires_in=timedelta(seconds=-1))
    (operation,) = diff(EnrollmentLive([gone])).operations
    assert operation.payload == DeleteActivation(activation_id=gone.activation_id)


def test_an_activation_of_an_enrollment_no_manifest_declares_is_pruned():
    (operation,) = diff(EnrollmentLive([activation(manifest="gone")])).operations
    assert operation.prune and operation.payload == DeleteActivation(
        activation_id=activation().activation_id
    )


# -- against the sandbox -------------------------------------------------------------------------


def reconciler(sandbox, prune: bool = False, metrics: Metrics | None = None) -> Reconciler:
    return Reconciler(
        aws_for(sandbox.endpoint),
        ReconcileSettings(controller_id=CONTROLLER_ID, prune=PruneSettings(enabled=prune)),
        metrics or Metrics(controller_id=CONTROLLER_ID),
    )


def instances(sandbox) -> dict[str, dict]:
    listed = sandbox.client("ssm").describe_instance_information()["InstanceInformationList"]
    return {i["InstanceId"]: i for i in listed}


def gauge(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"target": "default", **labels})


def _one_registered_one_waiting(sandbox, tmp_path):
    """Two WorkSpaces enroll over HTTP: one registers with its activation, one does not yet."""
    desired = desired_state(tmp_path / "desired")
    registered, waiting = workspaces(sandbox, 2)
    with endpoint(sandbox, desired) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        assert enroll(sandbox, [registered])[0]["status"] == "registered"
        assert enroll(sandbox, [waiting], register=False)[0]["httpStatus"] == 200
    return desired


def test_used_and_expired_activations_are_deleted_and_unused_ones_kept(sandbox, tmp_path):
    desired = _one_registered_one_waiting(sandbox, tmp_path)
    assert len(activations(sandbox)) == 2

    metrics = Metrics(controller_id=CONTROLLER_ID)
    _, result = reconciler(sandbox, metrics=metrics).reconcile(desired)
    assert result.ok
    deleted = [op.resource for op in result.applied if op.kind == "Enrollment"]
    assert len(deleted) == 1
    (left,) = activations(sandbox)
    assert left["RegistrationsCount"] == 0  # the waiting WorkSpace's activation stays
    # The gauges tell the state after the pass's writes: the used one is gone already.
    assert gauge(metrics, "fleet_enrollment_activations", state="registered") == 0
    assert gauge(metrics, "fleet_enrollment_activations", state="waiting") == 1

    sandbox.admin.advance_clock(2 * 3600)  # past its hour
    _, result = reconciler(sandbox).reconcile(desired)
    assert [op.resource for op in result.applied if op.kind == "Enrollment"] == [
        left["ActivationId"]
    ]
    assert activations(sandbox) == []


def test_another_controllers_per_workspace_activations_are_never_touched(sandbox, tmp_path):
    """Same manifest name, same tags, another owner: not ours, even expired and undeclared."""
    desired = desired_state(tmp_path / "desired")
    ssm = sandbox.client("ssm")
    theirs = {}
    for manifest in ("office", "gone"):
        created = ssm.create_activation(
            IamRole="SSMServiceRole-WorkSpaces",
            RegistrationLimit=1,
            ExpirationDate=datetime.now(UTC) + timedelta(hours=1),
            Tags=[
                {"Key": OWNER_TAG, "Value": "another-controller"},
                {"Key": MANIFEST_TAG, "Value": f"Enrollment/{manifest}"},
                {"Key": WORKSPACE_ID_TAG, "Value": "ws-theirs01"},
            ],
        )
        theirs[manifest] = created["ActivationId"]
    sandbox.admin.advance_clock(2 * 3600)  # both expired, unused
    plan, result = reconciler(sandbox, prune=True).reconcile(desired)
    assert result.ok
    assert [op for op in plan.operations if op.kind == "Enrollment"] == []
    assert sorted(a["ActivationId"] for a in activations(sandbox)) == sorted(theirs.values())


def test_an_activation_registers_at_most_one_instance(sandbox, tmp_path):
    desired = desired_state(tmp_path / "desired")
    (workspace_id,) = workspaces(sandbox, 1)
    with endpoint(sandbox, desired) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        assert enroll(sandbox, [workspace_id], register=False)[0]["httpStatus"] == 200
        assert enroll(sandbox, [workspace_id])[0]["status"] == "registered"
    second = sandbox.admin.post(
        "fleet/impostor",
        {"workspaceId": workspace_id, "computerName": "EVIL-PC", "ipAddress": "10.99.0.7"},
    )
    assert second == {"status": "failed", "reason": "exhausted"}
    (only,) = activations(sandbox)
    assert only["RegistrationsCount"] == 1
    assert [i["ActivationId"] for i in instances(sandbox).values()] == [only["ActivationId"]]


def test_an_impostor_is_reported_removed_under_the_prune_guard_and_the_workspace_enrolls_again(
    sandbox, tmp_path
):
    desired = desired_state(tmp_path / "desired")
    (workspace_id,) = workspaces(sandbox, 1)
    with endpoint(sandbox, desired) as ep:
        sandbox.admin.post("fleet/enrollment", {"url": ep.url})
        assert enroll(sandbox, [workspace_id], register=False)[0]["httpStatus"] == 200
        (stolen,) = activations(sandbox)
        # Someone else registers with the code the WorkSpace was handed.
        impostor = sandbox.admin.post(
            "fleet/impostor",
            {"workspaceId": workspace_id, "computerName": "EVIL-PC", "ipAddress": "10.99.0.7"},
        )
        assert impostor["status"] == "registered"
        # The WorkSpace asks again: its activation is used, so it gets a new one and registers.
        (again,) = enroll(sandbox, [workspace_id])
        assert again["status"] == "registered"
        assert ep.counted("issued") == 2
    genuine = again["instanceId"]

    metrics = Metrics(controller_id=CONTROLLER_ID)
    plan, result = reconciler(sandbox, prune=False, metrics=metrics).reconcile(desired)
    errors = [f.message for f in plan.findings if f.severity is Severity.ERROR]
    assert any(f"impostor {impostor['instanceId']}" in m and "EVIL-PC" in m for m in errors)
    assert any("would be removed with --prune" in f.message for f in plan.findings)
    assert gauge(metrics, "fleet_impostor_instances") == 1
    assert impostor["instanceId"] in instances(sandbox)  # without --prune: reported only

    plan, result = reconciler(sandbox, prune=True, metrics=metrics).reconcile(desired)
    assert result.ok
    assert set(instances(sandbox)) == {genuine}
    assert stolen["ActivationId"] in {a["ActivationId"] for a in activations(sandbox)}  # evidence

    reconciler(sandbox, prune=True, metrics=metrics).reconcile(desired)
    assert gauge(metrics, "fleet_impostor_instances") == 0
    sandbox.admin.advance_clock(2 * 3600)
    reconciler(sandbox, prune=True).reconcile(desired)
    assert activations(sandbox) == []
    assert fleet(sandbox)[workspace_id]["instanceId"] == genuine


def test_a_controller_clock_ahead_of_aws_deletes_nothing_aws_still_honours():
    """Expiry is AWS's word (Expired), not the controller's clock: a minute ahead changes nothing."""
    ahead = PerWorkspaceActivation(
        activation_id=activation().activation_id,
        manifest="office",
        workspace_id=WORKSPACE.workspace_id,
        registrations=0,
        expiration=NOW - timedelta(minutes=1),
        expired=False,
    )
    assert diff(EnrollmentLive([ahead])).operations == []


def test_export_brings_the_enrollment_back_and_no_per_workspace_activation_as_shared(
    sandbox, tmp_path
):
    """Adopting a fleet that enrolls: the Enrollment comes back from its activations and the
    instances registered with them; none of those activations is exported as an Activation."""
    from controller.kinds.activation import ActivationKind
    from controller.kinds.enrollment import EnrollmentKind
    from controller.manifests.specs.enrollment import EnrollmentSpec

    desired = _one_registered_one_waiting(sandbox, tmp_path)
    aws = aws_for(sandbox.endpoint)
    ctx = Context(controller_id=CONTROLLER_ID, region="us-east-1", now=NOW)

    exported = EnrollmentKind().export(aws, ctx)
    [document] = exported.documents
    assert document["metadata"] == {"name": "office"}
    spec = EnrollmentSpec.model_validate(document["spec"])
    assert spec.iam_role == "SSMServiceRole-WorkSpaces"
    assert list(spec.workspaces.directory_ids) == [
        desired.of_kind("Enrollment")[0].spec.workspaces.directory_ids[0]
    ]
    assert any("validFor" in note for note in exported.review)
    assert ActivationKind().export(aws, ctx).documents == []  # both are per-WorkSpace ones
