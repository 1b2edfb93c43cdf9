"""Enrollment: the per-WorkSpace activations the enrollment endpoint hands out, cleaned up and checked.

The endpoint (``controller/service/enrollment``) creates them; this kind keeps what is left behind
honest, once per pass:

* an unused activation past its expiry is deleted (AWS's ``Expired``, so a controller clock that
  is off cannot delete one a WorkSpace is still entitled to);
* a used one is checked: the instance that registered with it must report the computer name and
  address of the WorkSpace the activation was made for. If it does, the activation has done its
  job and is deleted. If it does not, the instance is an impostor (someone registered with a code
  that was not theirs): reported (an error finding, ``fleet_impostor_instances``) and deregistered
  under the prune guard (it is ours: it carries our owner tag, copied from our activation). The
  activation is kept as evidence until the impostor is gone, and the WorkSpace can enroll again
  (its next ask gets a new activation, since this one is used);
* an activation whose Enrollment manifest is gone is deleted with ``--prune``.

Observing costs DescribeActivations pages, plus, only for used activations, DescribeInstanceInformation
filtered by their IDs (100 a call) and DescribeWorkspaces by ID (25 a call).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from controller.aws import AwsApi
from controller.aws.tags import tag_dict
from controller.contract import WORKSPACE_ID_TAG, is_owned, manifest_of
from controller.kinds.base import (
    Action,
    Context,
    Event,
    Exported,
    FieldChange,
    GaugeFamily,
    Health,
    Kind,
    KindPlan,
    KindStatus,
    Operation,
    ResourceStatus,
    Severity,
    Step,
)
from controller.kinds.matching import LiveWorkspace, live_workspace, mismatch
from controller.manifests import Manifest
from controller.manifests.specs.enrollment import EnrollmentSpec

KIND = "Enrollment"
INSTANCE_FILTER_VALUES = 100  # DescribeInstanceInformation filter Values: 1..100
WORKSPACE_IDS_PER_CALL = 25  # DescribeWorkspaces WorkspaceIds: 1..25
STATES = ("waiting", "registered", "expired")

ACTIVATIONS = GaugeFamily(
    name="enrollment_activations",
    help="Per-WorkSpace activations by state: waiting (handed out, unused), registered (used, its"
    " instance not yet verified), expired (unused, to be deleted).",
    labels=("state",),
)
IMPOSTORS = GaugeFamily(
    name="impostor_instances",
    help="Instances registered with a WorkSpace's activation whose computer name or address is"
    " not that WorkSpace's.",
    labels=(),
)


@dataclass(frozen=True)
class PerWorkspaceActivation:
    activation_id: str
    manifest: str
    workspace_id: str
    registrations: int
    expiration: datetime
    expired: bool


@dataclass(frozen=True)
class RegisteredInstance:
    instance_id: str
    computer_name: str
    ip_address: str
    activation_id: str


@dataclass
class EnrollmentLive:
    activations: list[PerWorkspaceActivation]
    instances: dict[str, list[RegisteredInstance]] = field(default_factory=dict)  # by activation
    workspaces: dict[str, LiveWorkspace] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Deregister(Step):
    instance_id: str


@dataclass(frozen=True, kw_only=True)
class DeleteActivation(Step):
    activation_id: str


class EnrollmentKind(Kind[EnrollmentLive]):
    kind = KIND
    spec_model = EnrollmentSpec
    gauges = (ACTIVATIONS, IMPOSTORS)

    # -- observe ---------------------------------------------------------------------------------
    def observe(self, aws: AwsApi, desired: list[Manifest], ctx: Context) -> EnrollmentLive:
        activations = []
        for item in aws.items("ssm", "DescribeActivations", MaxResults=50):
            tags = tag_dict(item.get("Tags"))
            name = manifest_of(tags, KIND)
            if name is None or not is_owned(tags, ctx.controller_id):
                continue
            activations.append(
                PerWorkspaceActivation(
                    activation_id=item["ActivationId"],
                    manifest=name,
                    workspace_id=tags.get(WORKSPACE_ID_TAG, ""),
                    registrations=int(item.get("RegistrationsCount", 0)),
                    expiration=item["ExpirationDate"],
                    expired=bool(item.get("Expired", False)),
                )
            )
        used = [a for a in activations if a.registrations > 0]
        return EnrollmentLive(
            activations=activations,
            instances=self._instances(aws, [a.activation_id for a in used]),
            workspaces=self._workspaces(aws, sorted({a.workspace_id for a in used} - {""})),
        )

    def _instances(self, aws: AwsApi, ids: list[str]) -> dict[str, list[RegisteredInstance]]:
        found: dict[str, list[RegisteredInstance]] = {}
        for start in range(0, len(ids), INSTANCE_FILTER_VALUES):
            chunk = ids[start : start + INSTANCE_FILTER_VALUES]
            for item in aws.items(
                "ssm",
                "DescribeInstanceInformation",
                Filters=[{"Key": "ActivationIds", "Values": chunk}],
                MaxResults=50,
            ):
                instance = RegisteredInstance(
                    instance_id=item["InstanceId"],
                    computer_name=item.get("ComputerName", ""),
                    ip_address=item.get("IPAddress", ""),
                    activation_id=item.get("ActivationId", ""),
                )
                found.setdefault(instance.activation_id, []).append(instance)
        return found

    def _workspaces(self, aws: AwsApi, ids: list[str]) -> dict[str, LiveWorkspace]:
        found: dict[str, LiveWorkspace] = {}
        for start in range(0, len(ids), WORKSPACE_IDS_PER_CALL):
            chunk = ids[start : start + WORKSPACE_IDS_PER_CALL]
            for item in aws.items("workspaces", "DescribeWorkspaces", WorkspaceIds=chunk):
                found[item["WorkspaceId"]] = live_workspace(item, {})
        return found

    # -- diff (pure) -----------------------------------------------------------------------------
    def diff(self, desired: list[Manifest], live: EnrollmentLive, ctx: Context) -> KindPlan:
        plan = KindPlan()
        declared = {m.name for m in desired}
        waiting = 0
        for activation in live.activations:
            if activation.manifest not in declared:
                plan.operations.append(
                    _delete(activation, "no Enrollment manifest declares it any more", prune=True)
                )
            elif activation.registrations == 0:
                if activation.expired:
                    plan.operations.append(_delete(activation, "expired unused"))
                else:
                    waiting += 1
            else:
                self._check_used(activation, live, ctx, plan)
        if waiting:
            plan.note(
                KIND,
                "*",
                Severity.INFO,
                f"{waiting} WorkSpace(s) hold an activation they have not registered with yet",
                count=waiting,
            )
        return plan

    def _check_used(
        self, activation: PerWorkspaceActivation, live: EnrollmentLive, ctx: Context, plan: KindPlan
    ) -> None:
        instances = live.instances.get(activation.activation_id, [])
        workspace = live.workspaces.get(activation.workspace_id)
        if not instances or workspace is None:
            # Not visible yet (DescribeInstanceInformation lags a registration), deregistered, or
            # its WorkSpace is gone (TagSync reports the stale instance): wait for the expiry.
            if activation.expired:
                plan.operations.append(
                    _delete(activation, "used; nothing left to verify and past its expiry")
                )
            return
        impostors = impostors_of(activation, live)
        for instance, why in impostors:
            plan.note(
                KIND,
                activation.manifest,
                Severity.ERROR,
                f"impostor {instance.instance_id} registered with the activation of WorkSpace"
                f" {workspace.workspace_id}: it {why}",
                examples=(instance.instance_id,),
            )
            plan.operations.append(
                Operation(
                    kind=KIND,
                    name=activation.manifest,
                    action=Action.DELETE,
                    resource=instance.instance_id,
                    changes=(
                        FieldChange("computerName", instance.computer_name, None),
                        FieldChange("ipAddress", instance.ip_address, None),
                    ),
                    reason=f"impostor: registered with {workspace.workspace_id}'s activation but"
                    f" {why} (deregister)",
                    prune=True,
                    payload=Deregister(instance_id=instance.instance_id),
                )
            )
        if not impostors:
            names = ", ".join(i.instance_id for i in instances)
            plan.operations.append(
                _delete(activation, f"used by {names}, verified as {workspace.workspace_id}")
            )

    # -- apply -----------------------------------------------------------------------------------
    def apply(self, aws: AwsApi, operation: Operation, ctx: Context) -> Sequence[Event]:
        match operation.payload:
            case Deregister(instance_id=instance_id):
                aws.call_if_exists(
                    "ssm",
                    "DeregisterManagedInstance",
                    absent="InvalidInstanceId",
                    InstanceId=instance_id,
                )
            case DeleteActivation(activation_id=activation_id):
                aws.call_if_exists(
                    "ssm",
                    "DeleteActivation",
                    absent="InvalidActivation",
                    ActivationId=activation_id,
                )
            case other:
                raise TypeError(f"unexpected Enrollment step {type(other).__name__}")
        return ()

    # -- status ----------------------------------------------------------------------------------
    def health(self, desired: list[Manifest], live: EnrollmentLive, ctx: Context) -> KindStatus:
        states: Counter[str] = Counter({state: 0 for state in STATES})
        impostors = 0
        impostors_by_manifest: Counter[str] = Counter()
        waiting_by_manifest: Counter[str] = Counter()
        for activation in live.activations:
            if activation.registrations > 0:
                states["registered"] += 1
                found = len(impostors_of(activation, live))
                impostors += found
                impostors_by_manifest[activation.manifest] += found
            elif activation.expired:
                states["expired"] += 1
            else:
                states["waiting"] += 1
                waiting_by_manifest[activation.manifest] += 1
        # Each Enrollment's own health (the impostor finding itself comes from diff): degraded
        # while an impostor holds a registration, progressing while activations wait for use.
        resources = [
            ResourceStatus(
                name=manifest.name,
                health=(
                    Health.DEGRADED
                    if impostors_by_manifest[manifest.name]
                    else Health.PROGRESSING
                    if waiting_by_manifest[manifest.name]
                    else Health.HEALTHY
                ),
            )
            for manifest in desired
        ]
        return KindStatus(
            resources=resources,
            managed=len(live.activations),
            gauges={
                ACTIVATIONS.name: {(state,): float(count) for state, count in states.items()},
                IMPOSTORS.name: {(): float(impostors)},
            },
        )

    def export(self, aws: AwsApi, ctx: Context) -> Exported:
        """Each Enrollment from what it left behind: its activations and the instances that
        registered with them carry its manifest tag, their WorkSpace's join tag (hence the
        directories) and the role (``validFor`` and ``tags`` cannot be read back: defaults)."""
        workspaces_of: dict[str, set[str]] = {}
        roles: dict[str, str] = {}
        instances: dict[str, str] = {}  # instance id -> its Enrollment
        for item in aws.items(
            "resourcegroupstaggingapi",
            "GetResources",
            ResourceTypeFilters=["ssm:managed-instance"],
            ResourcesPerPage=100,
        ):
            tags = tag_dict(item.get("Tags"))
            name = manifest_of(tags, KIND)
            if name is not None and is_owned(tags, ctx.controller_id):
                workspaces_of.setdefault(name, set()).add(tags.get(WORKSPACE_ID_TAG, ""))
                instances[str(item["ResourceARN"]).rsplit("/", 1)[-1]] = name
        for item in aws.items("ssm", "DescribeActivations", MaxResults=50):
            tags = tag_dict(item.get("Tags"))
            name = manifest_of(tags, KIND)
            if name is not None and is_owned(tags, ctx.controller_id):
                workspaces_of.setdefault(name, set()).add(tags.get(WORKSPACE_ID_TAG, ""))
                roles.setdefault(name, str(item.get("IamRole", "")))
        if not workspaces_of:
            return Exported()
        for item in aws.items("ssm", "DescribeInstanceInformation", MaxResults=50):
            name = instances.get(item["InstanceId"])
            if name is not None and item.get("IamRole"):
                roles.setdefault(name, str(item["IamRole"]))
        directory_of = {
            w["WorkspaceId"]: w["DirectoryId"]
            for w in aws.items("workspaces", "DescribeWorkspaces", Limit=25)
        }
        exported = Exported()
        for name, workspace_ids in sorted(workspaces_of.items()):
            directories = sorted({directory_of[w] for w in workspace_ids if w in directory_of})
            if not directories or not roles.get(name):
                exported.review.append(
                    f"{KIND}/{name}: its WorkSpaces or role could not be read back: left out"
                )
                continue
            exported.documents.append(
                {
                    "apiVersion": "fleet-controller/v1alpha1",
                    "kind": KIND,
                    "metadata": {"name": name},
                    "spec": {
                        "iamRole": roles[name],
                        "workspaces": {"directoryIds": directories},
                    },
                }
            )
            exported.review.append(
                f"{KIND}/{name}: directories are those of the WorkSpaces it enrolled so far;"
                " validFor and tags cannot be read back (defaults: 1h, none)"
            )
        return exported


def impostors_of(
    activation: PerWorkspaceActivation, live: EnrollmentLive
) -> list[tuple[RegisteredInstance, str]]:
    """The instances registered with a WorkSpace's activation that are not that WorkSpace, each
    with why (none while the WorkSpace or the instances cannot be seen)."""
    workspace = live.workspaces.get(activation.workspace_id)
    if workspace is None:
        return []
    return [
        (instance, why)
        for instance in live.instances.get(activation.activation_id, [])
        if (why := mismatch(instance.computer_name, instance.ip_address, workspace))
    ]


def _delete(activation: PerWorkspaceActivation, reason: str, prune: bool = False) -> Operation:
    return Operation(
        kind=KIND,
        name=activation.manifest,
        action=Action.DELETE,
        resource=activation.activation_id,
        reason=f"activation of {activation.workspace_id or '(no WorkSpace)'}: {reason}",
        prune=prune,
        payload=DeleteActivation(activation_id=activation.activation_id),
    )


__all__ = ["KIND", "EnrollmentKind"]
