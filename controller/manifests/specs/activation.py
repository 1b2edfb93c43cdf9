"""Activation: an SSM hybrid activation kept valid by rotation, its ID and code published to SSM.

Activations cannot be updated, so every field here is either an input to CreateActivation
(checked against its constraints in botocore's ssm model) or a rotation policy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, Field, field_validator

from controller.manifests.common import (
    Duration,
    Problem,
    SpecModel,
    StrictModel,
    TagMap,
    describe,
    fail,
    format_duration,
    parse_duration,
    rejecting,
    ssm_text_ok,
)
from controller.manifests.document import Manifest
from controller.manifests.errors import ManifestError

KIND = "Activation"

REGISTRATION_LIMIT_MAX = 1000  # CreateActivation RegistrationLimit: min 1, max 1000
VALID_FOR_MIN = timedelta(hours=1)
VALID_FOR_MAX = timedelta(days=30)  # "You can specify a date up to 30 days in advance."
GRACE_PERIOD_MAX = timedelta(days=30)  # an activation cannot outlive 30 days anyway
IAM_ROLE_MAX = 64  # CreateActivation IamRole: max 64
DESCRIPTION_MAX = 256  # ActivationDescription: 0..256
DEFAULT_INSTANCE_NAME_MAX = 256  # DefaultInstanceName: 0..256, tag-like character set
KMS_KEY_ID_MAX = 256  # PutParameter KeyId: 1..256, ^([a-zA-Z0-9:/_-]+)$
PARAMETER_NAME_MAX = 950
"""PutParameter allows 1011 characters counting the parameter's ARN prefix
(``arn:aws:ssm:us-east-2:111122223333:parameter/`` is 45); 950 leaves room for any partition and
Region."""
PARAMETER_DEPTH_MAX = (
    15  # "Parameter hierarchies are limited to a maximum depth of fifteen levels."
)

_ROLE_PART = re.compile(r"[\w+=,.@-]+", re.ASCII)  # IAM roleNameType
_KMS_KEY_ID = re.compile(r"[a-zA-Z0-9:/_-]+")
_PARAMETER_CHARS = re.compile(r"[a-zA-Z0-9_.\-/]+")


def check_iam_role(value: str) -> str:
    if not value:
        raise fail("must name the IAM role that registered instances assume")
    if value.startswith("arn:"):
        raise fail(
            "give the IAM role's name (e.g. SSMServiceRole or service-role/MyRole), not its ARN"
        )
    if len(value) > IAM_ROLE_MAX:
        raise fail(f"is {len(value)} characters; CreateActivation allows at most {IAM_ROLE_MAX}")
    if not all(_ROLE_PART.fullmatch(part) for part in value.split("/")):
        raise fail(
            f"{value!r} is not an IAM role name: use letters, digits and + = , . @ _ - (a path"
            " prefix such as service-role/ is allowed)"
        )
    if value.startswith("aws-service-role/") or value.split("/")[-1].startswith("AWSServiceRole"):
        raise fail("a service-linked role cannot be used for an activation; create a unique role")
    return value


def parameter_name_problem(value: str) -> str | None:
    """Why SSM would refuse ``value`` as a parameter name (PutParameter Name rules), or None."""
    if not value:
        return "must not be empty"
    if value != value.strip() or " " in value:
        return "parameter names cannot contain spaces"
    if len(value) > PARAMETER_NAME_MAX:
        return f"is {len(value)} characters; at most {PARAMETER_NAME_MAX} are allowed"
    if not _PARAMETER_CHARS.fullmatch(value):
        return (
            f"{value!r:.80} has characters SSM does not allow in parameter names; allowed are"
            " a-z A-Z 0-9 _ . - and / between levels"
        )
    if "/" in value:
        if not value.startswith("/"):
            return f"{value!r:.80}: a hierarchical parameter name must start with '/'"
        parts = value[1:].split("/")
        if any(not part for part in parts):
            return f"{value!r:.80} has an empty level ('//' or a trailing '/')"
        if len(parts) > PARAMETER_DEPTH_MAX:
            return f"{len(parts)} levels deep; SSM allows at most {PARAMETER_DEPTH_MAX}"
    else:
        parts = [value]
    if parts[0].lower().startswith(("aws", "ssm")):
        return f"{value!r:.80}: parameter names cannot begin with 'aws' or 'ssm' (reserved by AWS)"
    return None


def _check_kms_key_id(value: str) -> str:
    if not 1 <= len(value) <= KMS_KEY_ID_MAX or not _KMS_KEY_ID.fullmatch(value):
        raise fail(
            f"{value!r:.80} is not a KMS key id: 1 to {KMS_KEY_ID_MAX} characters of a-z A-Z 0-9"
            " : / _ - (a key id, key ARN, alias/name or alias ARN)"
        )
    return value


def _check_description(value: str) -> str:
    if len(value) > DESCRIPTION_MAX:
        raise fail(f"is {len(value)} characters; CreateActivation allows at most {DESCRIPTION_MAX}")
    return value


def _check_default_instance_name(value: str) -> str:
    if len(value) > DEFAULT_INSTANCE_NAME_MAX:
        raise fail(
            f"is {len(value)} characters; CreateActivation allows at most"
            f" {DEFAULT_INSTANCE_NAME_MAX}"
        )
    if not ssm_text_ok(value):
        raise fail(
            f"{value!r:.80} has characters CreateActivation does not allow; allowed are"
            " letters, digits, spaces and _ . : / = + - @"
        )
    return value


def _bounded_duration(raw: Any, field: str, low: timedelta, high: timedelta, why: str) -> Any:
    """Parse and range-check a duration, quoting what the user wrote in the message."""
    if not isinstance(raw, str):
        return raw  # the Duration type reports the wrong type
    try:
        value = parse_duration(raw)
    except ValueError as exc:
        raise fail(str(exc)) from exc
    if value > high:
        raise fail(
            f"{raw} is longer than {why} ({format_duration(low)} to {format_duration(high)})"
        )
    if value < low:
        raise fail(
            f"{raw} is shorter than {format_duration(low)}, the minimum for {field}"
            f" ({format_duration(low)} to {format_duration(high)})"
        )
    return value


class PublishSpec(StrictModel):
    """Where the current activation's id and code go: an SSM SecureString parameter (JSON)."""

    parameter_name: Annotated[str, AfterValidator(rejecting(parameter_name_problem))]
    kms_key_id: Annotated[str, AfterValidator(_check_kms_key_id)] | None = None


class ActivationSpec(SpecModel):
    @classmethod
    def check_set(cls, by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
        return check_activations(by_kind)

    iam_role: Annotated[str, AfterValidator(check_iam_role)]
    registration_limit: int = 1
    valid_for: Duration = timedelta(hours=24)
    renew_before_setting: Duration | None = Field(default=None, alias="renewBefore")
    rotate_at_registration_percent: int = 90
    grace_period: Duration = timedelta(hours=1)
    default_instance_name: Annotated[str, AfterValidator(_check_default_instance_name)] | None = (
        None
    )
    description: Annotated[str, AfterValidator(_check_description)] | None = None
    tags: TagMap = {}
    publish: PublishSpec

    @field_validator("registration_limit")
    @classmethod
    def _limit(cls, value: int) -> int:
        if not 1 <= value <= REGISTRATION_LIMIT_MAX:
            raise fail(
                f"{value} is outside the 1 to {REGISTRATION_LIMIT_MAX} registrations AWS"
                " allows per activation"
            )
        return value

    @field_validator("rotate_at_registration_percent")
    @classmethod
    def _percent(cls, value: int) -> int:
        if not 1 <= value <= 100:
            raise fail(f"{value} is not a percentage from 1 to 100")
        return value

    @field_validator("valid_for", mode="before")
    @classmethod
    def _valid_for(cls, raw: Any) -> Any:
        return _bounded_duration(
            raw, "validFor", VALID_FOR_MIN, VALID_FOR_MAX, "the 30 days AWS allows"
        )

    @field_validator("grace_period", mode="before")
    @classmethod
    def _grace(cls, raw: Any) -> Any:
        return _bounded_duration(
            raw, "gracePeriod", timedelta(0), GRACE_PERIOD_MAX, "an activation can live"
        )

    @field_validator("renew_before_setting", mode="before")
    @classmethod
    def _renew(cls, raw: Any) -> Any:
        if raw is None:
            raise fail(
                f"expected a duration such as 6h, got {describe(raw)}; omit the field for"
                " the default (a quarter of validFor)"
            )
        return _bounded_duration(
            raw,
            "renewBefore",
            timedelta(minutes=1),
            VALID_FOR_MAX,
            "the 30 days an activation can live",
        )

    @property
    def renew_before(self) -> timedelta:
        """Rotate when expiry is this close; defaults to a quarter of ``valid_for``."""
        if self.renew_before_setting is not None:
            return self.renew_before_setting
        return self.valid_for / 4

    @property
    def rotate_at_registrations(self) -> int:
        """RegistrationsCount at which to rotate (the percentage of the limit, rounded up)."""
        return max(
            1, math.ceil(self.registration_limit * self.rotate_at_registration_percent / 100)
        )

    def problems(self) -> list[Problem]:
        if self.renew_before_setting is not None and self.renew_before >= self.valid_for:
            return [
                Problem(
                    ("renewBefore",),
                    f"{format_duration(self.renew_before)} must be shorter than validFor"
                    f" ({format_duration(self.valid_for)}), or every run would rotate the"
                    " activation",
                )
            ]
        return []


def check_activations(by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
    """Two Activations publishing to one parameter would overwrite each other's code."""
    errors: list[ManifestError] = []
    first: dict[str, Manifest] = {}
    path = ("spec", "publish", "parameterName")
    for manifest in sorted(by_kind.get(KIND, ()), key=lambda m: (m.source.file, m.source.line)):
        name = manifest.spec.publish.parameter_name
        other = first.setdefault(name, manifest)
        if other is not manifest:
            errors.append(
                manifest.error(
                    path,
                    f"{name} is already the publish target of {other.ref} ({other.where_is(path)});"
                    " each Activation needs its own parameter",
                )
            )
    return errors
