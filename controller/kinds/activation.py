"""Hybrid activations: rotated before they expire, their ID and code published as a SecureString.

Activations cannot be updated, and their code is returned only once, at create. So every reason to
change one (its spec changed, it expires within ``renewBefore``, its registrations near the limit,
it is gone) is a rotation: create a new one and publish it in the same step, then delete the old
one after ``gracePeriod``. The published parameter's description names the activation it holds, so
observing never decrypts a code: the only code the controller ever holds is the one it just created.

Every time here is AWS's: ``ctx.now`` is the host clock corrected by the ``Date`` header of AWS's
latest answer (``controller/aws/clock.py``), the expiry sent is that plus validFor (kept a minute
inside AWS's 30 days), and a live lifetime within ``CLOCK_TOLERANCE`` of validFor is equal. A
host clock a minute off AWS's once made every pass rotate (or made AWS refuse the expiry).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controller.aws import AwsApi
from controller.aws.clock import CLOCK_TOLERANCE
from controller.aws.tags import tag_dict, tag_list
from controller.contract import (
    MANIFEST_TAG,
    RESERVED_PREFIX,
    WORKSPACE_ID_TAG,
    crash_point,
    is_owned,
    manifest_of,
    owner_tags,
)
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
from controller.manifests import Manifest
from controller.manifests.specs.activation import VALID_FOR_MAX, ActivationSpec
from controller.observability.redaction import register_secret

KIND = "Activation"
# AWS refuses an ExpirationDate beyond 30 days by its own clock; the request reaches it a moment
# after ``now`` was read, and our reading of AWS's clock is good to about a second.
EXPIRY_MARGIN = timedelta(minutes=1)
_DESCRIPTION = re.compile(r"^fleet-controller: activation (?P<id>[0-9a-fA-F-]{36})\b")


@dataclass(frozen=True)
class LiveActivation:
    activation_id: str
    iam_role: str
    registration_limit: int
    registrations_count: int
    expiration: datetime
    created: datetime
    expired: bool
    description: str | None = None
    default_instance_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishedParameter:
    name: str
    exists: bool
    owned: bool = False
    activation_id: str | None = None  # from the parameter's description


@dataclass
class ActivationLive:
    activations: list[LiveActivation]
    parameters: dict[str, PublishedParameter]


@dataclass(frozen=True, kw_only=True)
class CreateActivation(Step):
    """Create an activation and publish it (no secret here: the code exists only inside apply)."""

    manifest: str
    iam_role: str
    registration_limit: int
    valid_for: timedelta
    description: str | None
    default_instance_name: str | None
    tags: dict[str, str]
    parameter_name: str
    parameter_exists: bool
    kms_key_id: str | None


@dataclass(frozen=True, kw_only=True)
class DeleteActivation(Step):
    activation_id: str


EXPIRY = GaugeFamily(
    name="activation_expiry_timestamp_seconds",
    help="Unix time at which the current activation expires, by Activation manifest name.",
    labels=("activation",),
)
REGISTRATIONS = GaugeFamily(
    name="activation_registrations",
    help="Instances registered through the current activation.",
    labels=("activation",),
)
REGISTRATION_LIMIT = GaugeFamily(
    name="activation_registration_limit",
    help="RegistrationLimit of the current activation.",
    labels=("activation",),
)


class ActivationKind(Kind[ActivationLive]):
    kind = KIND
    spec_model = ActivationSpec
    gauges = (EXPIRY, REGISTRATIONS, REGISTRATION_LIMIT)

    # -- observe ---------------------------------------------------------------------------------
    def observe(self, aws: AwsApi, desired: list[Manifest], ctx: Context) -> ActivationLive:
        activations = [
            LiveActivation(
                activation_id=item["ActivationId"],
                iam_role=item.get("IamRole", ""),
                registration_limit=int(item.get("RegistrationLimit", 1)),
                registrations_count=int(item.get("RegistrationsCount", 0)),
                expiration=item["ExpirationDate"],
                created=item.get("CreatedDate", item["ExpirationDate"]),
                expired=bool(item.get("Expired", False)),
                description=item.get("Description") or None,
                default_instance_name=item.get("DefaultInstanceName") or None,
                tags=tag_dict(item.get("Tags")),
            )
            for item in aws.items("ssm", "DescribeActivations", MaxResults=50)
        ]
        names = sorted({m.spec.publish.parameter_name for m in desired})
        return ActivationLive(activations, self._observe_parameters(aws, names, ctx))

    def _observe_parameters(
        self, aws: AwsApi, names: list[str], ctx: Context
    ) -> dict[str, PublishedParameter]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(names), 50):
            chunk = names[start : start + 50]
            filters = [{"Key": "Name", "Option": "Equals", "Values": chunk}]
            for described in aws.items("ssm", "DescribeParameters", ParameterFilters=filters):
                found[described["Name"]] = described
        parameters: dict[str, PublishedParameter] = {}
        for name in names:
            item = found.get(name)
            if item is None:
                parameters[name] = PublishedParameter(name, exists=False)
                continue
            tags = tag_dict(
                aws.call("ssm", "ListTagsForResource", ResourceType="Parameter", ResourceId=name)[
                    "TagList"
                ]
            )
            match = _DESCRIPTION.match(item.get("Description") or "")
            parameters[name] = PublishedParameter(
                name,
                exists=True,
                owned=is_owned(tags, ctx.controller_id),
                activation_id=match.group("id") if match else None,
            )
        return parameters

    # -- diff (pure) -----------------------------------------------------------------------------
    def diff(self, desired: list[Manifest], live: ActivationLive, ctx: Context) -> KindPlan:
        plan = KindPlan()
        mine = [a for a in live.activations if is_owned(a.tags, ctx.controller_id)]
        declared = {m.name for m in desired}
        for manifest in desired:
            served = [a for a in mine if manifest_of(a.tags, KIND) == manifest.name]
            self._diff_one(manifest, served, live.parameters, ctx, plan)
        for activation in mine:
            name = manifest_of(activation.tags, KIND)
            if name is not None and name not in declared:
                plan.operations.append(
                    _delete(name, activation, "no manifest declares it any more", prune=True)
                )
        return plan

    def _diff_one(
        self,
        manifest: Manifest,
        served: list[LiveActivation],
        parameters: dict[str, PublishedParameter],
        ctx: Context,
        plan: KindPlan,
    ) -> None:
        spec = manifest.spec
        parameter = parameters[spec.publish.parameter_name]
        if parameter.exists and not parameter.owned:
            plan.refuse_not_owned(
                KIND, manifest.name, f"parameter {parameter.name}", "refusing to overwrite it"
            )
            return
        current = next(
            (a for a in served if a.activation_id == parameter.activation_id),
            None,
        )
        desired_tags = {**spec.tags, **owner_tags(ctx.controller_id, KIND, manifest.name)}
        changes, reason = self._rotation(manifest, current, desired_tags, parameter, ctx)
        if reason:
            plan.operations.append(
                Operation(
                    kind=KIND,
                    name=manifest.name,
                    action=Action.REPLACE if current else Action.CREATE,
                    resource=current.activation_id if current else "(new)",
                    changes=tuple(changes),
                    reason=reason,
                    payload=CreateActivation(
                        manifest=manifest.name,
                        iam_role=spec.iam_role,
                        registration_limit=spec.registration_limit,
                        valid_for=spec.valid_for,
                        description=spec.description,
                        default_instance_name=spec.default_instance_name,
                        tags=desired_tags,
                        parameter_name=parameter.name,
                        parameter_exists=parameter.exists,
                        kms_key_id=spec.publish.kms_key_id,
                    ),
                )
            )
        for activation in served:
            if activation is current:
                continue
            if current is None or activation.created > current.created:
                plan.operations.append(
                    _delete(
                        manifest.name,
                        activation,
                        "created but never published (its code was lost): cleaning up",
                    )
                )
                continue
            # Created and published in one step, so the current one's creation is when it was
            # published (AWS's clock, like the activations' own dates).
            retire_at = current.created + spec.grace_period
            if ctx.now >= retire_at:
                plan.operations.append(
                    _delete(
                        manifest.name,
                        activation,
                        f"replaced by {current.activation_id}; grace period over",
                    )
                )
            else:
                plan.note(
                    KIND,
                    manifest.name,
                    Severity.INFO,
                    f"previous activation {activation.activation_id} is retired at "
                    f"{retire_at.isoformat(timespec='seconds')} (grace period)",
                )
                plan.requeue_in(
                    retire_at - ctx.now,
                    f"the grace period of {activation.activation_id} ends",
                )
        if current is not None and not reason:
            plan.requeue_in(
                current.expiration - spec.renew_before - ctx.now,
                f"{current.activation_id} enters its renewBefore window",
            )

    def _rotation(
        self,
        manifest: Manifest,
        current: LiveActivation | None,
        desired_tags: dict[str, str],
        parameter: PublishedParameter,
        ctx: Context,
    ) -> tuple[list[FieldChange], str]:
        """Field changes and the reason to rotate (empty reason: keep the current activation)."""
        spec = manifest.spec
        if current is None:
            created = _created_fields(spec, desired_tags)
            if parameter.activation_id:
                return created, f"published activation {parameter.activation_id} no longer exists"
            return created, "no activation is published"
        changes = [
            FieldChange(name, before, after)
            for name, before, after in (
                ("iamRole", current.iam_role, spec.iam_role),
                ("registrationLimit", current.registration_limit, spec.registration_limit),
                ("description", current.description, spec.description),
                (
                    "defaultInstanceName",
                    current.default_instance_name,
                    spec.default_instance_name,
                ),
            )
            if before != after
        ]
        if abs(_lifetime_of(current) - spec.valid_for) > CLOCK_TOLERANCE:
            # Created with AWS's clock read through a Date header: a lifetime within the
            # tolerance is the same validFor, not a reason to replace the activation.
            changes.append(
                FieldChange("validFor", _lifetime(current), _format_duration(spec.valid_for))
            )
        changes += [
            FieldChange(f"tags.{key}", current.tags.get(key), desired_tags.get(key))
            for key in sorted(set(current.tags) | set(desired_tags))
            if current.tags.get(key) != desired_tags.get(key)
        ]
        if changes:
            return changes, "the spec changed and activations are immutable"
        if current.expired or ctx.now >= current.expiration:
            return [], f"expired at {current.expiration.isoformat(timespec='seconds')}"
        if ctx.now >= current.expiration - spec.renew_before:
            return [], (
                f"expires at {current.expiration.isoformat(timespec='seconds')}, "
                f"within renewBefore ({_format_duration(spec.renew_before)})"
            )
        threshold = math.ceil(
            current.registration_limit * spec.rotate_at_registration_percent / 100
        )
        if current.registrations_count >= threshold:
            return [], (
                f"{current.registrations_count} of {current.registration_limit} registrations used "
                f"(rotates at {spec.rotate_at_registration_percent}%)"
            )
        return [], ""

    # -- apply -----------------------------------------------------------------------------------
    def apply(self, aws: AwsApi, operation: Operation, ctx: Context) -> tuple[Event, ...]:
        match operation.payload:
            case DeleteActivation(activation_id=activation_id):
                # Already gone is the goal met.
                aws.call_if_exists(
                    "ssm",
                    "DeleteActivation",
                    absent="InvalidActivation",
                    ActivationId=activation_id,
                )
            case CreateActivation() as request:
                self._create_and_publish(aws, request, ctx)
            case other:
                raise TypeError(f"{KIND} cannot apply {type(other).__name__}")
        return ()

    def _create_and_publish(self, aws: AwsApi, request: CreateActivation, ctx: Context) -> None:
        # ctx.now is AWS's clock (the Date header of its latest answer), as is the CreatedDate
        # the lifetime is later measured from.
        expiry = ctx.now + min(request.valid_for, VALID_FOR_MAX - EXPIRY_MARGIN)
        params: dict[str, Any] = {
            "IamRole": request.iam_role,
            "RegistrationLimit": request.registration_limit,
            "ExpirationDate": expiry,
            "Tags": tag_list(request.tags),
        }
        if request.description:
            params["Description"] = request.description
        if request.default_instance_name:
            params["DefaultInstanceName"] = request.default_instance_name
        created = aws.call("ssm", "CreateActivation", **params)
        activation_id, code = created["ActivationId"], created["ActivationCode"]
        register_secret(code)
        crash_point("activation.created")
        value = json.dumps(
            {
                "id": activation_id,
                "code": code,
                "region": ctx.region,
                "expiry": expiry.isoformat(timespec="seconds"),
            }
        )
        put: dict[str, Any] = {
            "Name": request.parameter_name,
            "Value": value,
            "Type": "SecureString",
            "Description": (
                f"fleet-controller: activation {activation_id} for {KIND}/{request.manifest}, "
                f"expires {expiry.isoformat(timespec='seconds')}"
            ),
        }
        if request.kms_key_id:
            put["KeyId"] = request.kms_key_id
        if request.parameter_exists:
            put["Overwrite"] = True  # AWS refuses Tags together with Overwrite
        else:
            put["Tags"] = tag_list(owner_tags(ctx.controller_id, KIND, request.manifest))
        aws.call("ssm", "PutParameter", **put)
        crash_point("activation.published")

    # -- status ----------------------------------------------------------------------------------
    def health(self, desired: list[Manifest], live: ActivationLive, ctx: Context) -> KindStatus:
        status = KindStatus(
            managed=sum(  # per-WorkSpace activations are the Enrollment kind's
                1
                for a in live.activations
                if is_owned(a.tags, ctx.controller_id) and manifest_of(a.tags, KIND) is not None
            ),
            gauges={family.name: {} for family in self.gauges},
        )
        by_id = {a.activation_id: a for a in live.activations}
        for manifest in desired:
            parameter = live.parameters.get(manifest.spec.publish.parameter_name)
            current = by_id.get(parameter.activation_id or "") if parameter else None
            if current is None:
                status.resources.append(ResourceStatus(name=manifest.name, health=Health.MISSING))
                continue
            key = (manifest.name,)
            status.gauges[EXPIRY.name][key] = current.expiration.timestamp()
            status.gauges[REGISTRATIONS.name][key] = current.registrations_count
            status.gauges[REGISTRATION_LIMIT.name][key] = current.registration_limit
            expired = current.expired or ctx.now >= current.expiration
            status.resources.append(
                ResourceStatus(
                    name=manifest.name,
                    health=Health.DEGRADED if expired else Health.HEALTHY,
                    message=(
                        f"the published activation {current.activation_id} expired at"
                        f" {current.expiration.isoformat(timespec='seconds')}"
                        if expired
                        else ""
                    ),
                )
            )
        return status

    # -- export ----------------------------------------------------------------------------------
    def export(self, aws: AwsApi, ctx: Context) -> Exported:
        """Shared activations as Activation manifests. A per-WorkSpace activation (another
        kind's, or carrying a WorkSpace's join tag) is no shared activation: it is left out."""
        exported = Exported()
        documents = exported.documents
        live = self.observe(aws, [], ctx)
        shared = [
            a
            for a in sorted(live.activations, key=lambda a: a.created)
            if not a.expired
            and WORKSPACE_ID_TAG not in a.tags
            and (a.tags.get(MANIFEST_TAG) is None or manifest_of(a.tags, KIND) is not None)
        ]
        for index, activation in enumerate(shared, start=1):
            name = manifest_of(activation.tags, KIND) or f"activation-{index}"
            if not is_owned(activation.tags, ctx.controller_id):
                exported.review.append(
                    f"{KIND}/{name}: made from {activation.activation_id}, which this controller"
                    " does not own: applying creates and publishes a new activation (its code"
                    " cannot be read back) and leaves that one alone"
                )
            spec: dict[str, Any] = {
                "iamRole": activation.iam_role,
                "registrationLimit": activation.registration_limit,
                "validFor": _lifetime(activation),
                "publish": {"parameterName": f"/fleet-controller/activations/{name}"},
            }
            if activation.description:
                spec["description"] = activation.description
            if activation.default_instance_name:
                spec["defaultInstanceName"] = activation.default_instance_name
            user_tags = {
                k: v for k, v in activation.tags.items() if not k.startswith(RESERVED_PREFIX)
            }
            if user_tags:
                spec["tags"] = user_tags
            documents.append(
                {
                    "apiVersion": "fleet-controller/v1alpha1",
                    "kind": KIND,
                    "metadata": {"name": name},
                    "spec": spec,
                }
            )
        return exported


def _delete(name: str, activation: LiveActivation, reason: str, prune: bool = False) -> Operation:
    return Operation(
        kind=KIND,
        name=name,
        action=Action.DELETE,
        resource=activation.activation_id,
        reason=reason,
        prune=prune,
        payload=DeleteActivation(activation_id=activation.activation_id),
    )


def _created_fields(spec: ActivationSpec, tags: dict[str, str]) -> list[FieldChange]:
    """What a new activation is created (and published) with, for the plan to show."""
    fields: list[tuple[str, Any]] = [
        ("iamRole", spec.iam_role),
        ("registrationLimit", spec.registration_limit),
        ("validFor", _format_duration(spec.valid_for)),
        ("description", spec.description),
        ("defaultInstanceName", spec.default_instance_name),
        *((f"tags.{key}", value) for key, value in sorted(tags.items())),
        ("publish.parameterName", spec.publish.parameter_name),
        ("publish.kmsKeyId", spec.publish.kms_key_id),
        ("publish.value", "SecureString {id, code, region, expiry} (the code is never shown)"),
    ]
    return [FieldChange(name, None, value) for name, value in fields if value is not None]


def _lifetime_of(activation: LiveActivation) -> timedelta:
    return activation.expiration - activation.created


def _lifetime(activation: LiveActivation) -> str:
    """The validFor an activation was created with, to the minute, as a manifest spells it."""
    minutes = max(1, round(_lifetime_of(activation).total_seconds() / 60))
    return _format_duration(timedelta(minutes=minutes))


def _format_duration(value: timedelta) -> str:
    """The canonical spelling used in manifests: 1d12h, 30m, ..."""
    total = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


__all__ = ["KIND", "MANIFEST_TAG", "ActivationKind", "CreateActivation", "DeleteActivation"]
