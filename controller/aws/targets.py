"""Targets: the accounts and Regions one controller reconciles, each through its own ``AwsApi``.

A targets file lists them::

    targets:
      - name: prod-eu            # metric label and lease key
        region: eu-west-1
        roleArn: arn:aws:iam::111122223333:role/fleet-controller   # optional: assume this role
        externalId: fleet-7f3a    # optional, when the role's trust policy requires one
        sessionName: fleet-prod-eu  # optional (default: fleet-controller-<name>)
        eventsQueueUrl: https://sqs.eu-west-1.amazonaws.com/111122223333/fleet-controller-events
                                  # optional: the target's EventBridge queue (run reacts to events)

A target with a role gets credentials from STS AssumeRole, made through an ``AwsApi`` (so the
call is counted under the target's label) and refreshed by botocore before they expire. Without a
file there is one target, ``default``, with boto3's default configuration.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import yaml
from botocore.credentials import DeferredRefreshableCredentials
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from controller.aws import AwsApi, AwsSettings, CallRecorder
from controller.observability.metrics import DEFAULT_TARGET, Metrics
from controller.observability.redaction import register_secret

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
SESSION_SECONDS = 3600  # botocore refreshes 15 minutes before expiry
QUEUE_URL = re.compile(r"^https?://[A-Za-z0-9.:\[\]-]+/\d{12}/[A-Za-z0-9_-]{1,80}$")
"""An SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<name>, or an endpoint's)."""


class TargetSpec(BaseModel):
    """One account/Region to reconcile."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # A metric label value and a lease key: no '#' (heartbeat items use replica#<id>).
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    region: str
    role_arn: str | None = Field(default=None, alias="roleArn")
    # STS limits: ExternalId 2..1224 and RoleSessionName 2..64, of [\w+=,.@:/-].
    external_id: str | None = Field(
        default=None, alias="externalId", min_length=2, max_length=1224, pattern=r"^[\w+=,.@:/-]+$"
    )
    session_name: str | None = Field(
        default=None, alias="sessionName", min_length=2, max_length=64, pattern=r"^[\w+=,.@-]+$"
    )
    events_queue_url: str | None = Field(
        default=None, alias="eventsQueueUrl", pattern=QUEUE_URL.pattern
    )

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not REGION.match(value):
            raise ValueError(f"not an AWS Region name: {value!r}")
        return value

    @field_validator("role_arn")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and not ROLE_ARN.match(value):
            raise ValueError(f"not an IAM role ARN: {value!r}")
        return value

    @property
    def role_session_name(self) -> str:
        return self.session_name or f"fleet-controller-{self.name}"[:64]


class _TargetsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    targets: list[TargetSpec] = Field(min_length=1)


class InvalidTargets(ValueError):
    pass


def load_targets(path: Path) -> list[TargetSpec]:
    """Read and check a targets file; every problem is reported at once, with its location."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise InvalidTargets(f"{path}: {error}") from None
    try:
        parsed = _TargetsFile.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in error.errors()
        )
        raise InvalidTargets(f"{path}: {problems}") from None
    names = [t.name for t in parsed.targets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidTargets(f"{path}: duplicate target name(s): {', '.join(duplicates)}")
    return parsed.targets


@dataclass
class Target:
    """One target ready to reconcile: its name (the metric label), its AwsApi and call counts."""

    name: str
    aws: AwsApi
    recorder: CallRecorder
    spec: TargetSpec | None = None  # None for the implicit default target


def count_calls(recorder: CallRecorder, metrics: Metrics, target: str) -> None:
    """Every attempt the recorder sees becomes ``fleet_aws_api_calls_total{target=...}``."""
    recorder.subscribe(
        lambda service, operation, outcome: metrics.record_aws_call(
            target, service, operation, outcome.value
        ),
        lambda service, operation: metrics.record_aws_retry(target, service, operation),
    )


def default_target(base: AwsSettings, metrics: Metrics) -> Target:
    """Today's single target, ``default``: boto3's default credentials and Region."""
    recorder = CallRecorder()
    count_calls(recorder, metrics, DEFAULT_TARGET)
    return Target(DEFAULT_TARGET, AwsApi(base, recorder), recorder)


def build_target(spec: TargetSpec, base: AwsSettings, metrics: Metrics) -> Target:
    """The target's AwsApi: its Region, and assumed-role credentials when it names a role.

    The role is assumed lazily (at the target's first call), so a target whose role cannot be
    assumed fails its own reconciles and no one else's.
    """
    recorder = CallRecorder()
    count_calls(recorder, metrics, spec.name)
    settings = replace(base, region=spec.region)
    if spec.role_arn is None:
        return Target(spec.name, AwsApi(settings, recorder), recorder, spec)
    sts = AwsApi(replace(settings, rate_limits=None), recorder)
    session = assumed_role_session(spec, sts)
    return Target(spec.name, AwsApi(settings, recorder, session=session), recorder, spec)


def assumed_role_session(
    spec: TargetSpec, sts: AwsApi, duration_seconds: int = SESSION_SECONDS
) -> boto3.Session:
    """A boto3 session whose credentials come from AssumeRole and refresh before they expire.

    botocore refreshes them once they are within 15 minutes of expiry (10 minutes: mandatory),
    under a lock, so concurrent calls of one target share one AssumeRole.
    """
    credentials = DeferredRefreshableCredentials(
        refresh_using=_assume_role(spec, sts, duration_seconds), method="sts-assume-role"
    )
    core = botocore.session.get_session()
    core._credentials = credentials  # type: ignore[attr-defined]  # botocore has no public setter
    return boto3.Session(botocore_session=core, region_name=spec.region)


def _assume_role(
    spec: TargetSpec, sts: AwsApi, duration_seconds: int
) -> Callable[[], dict[str, Any]]:
    def fetch() -> dict[str, Any]:
        params: dict[str, Any] = {
            "RoleArn": spec.role_arn,
            "RoleSessionName": spec.role_session_name,
            "DurationSeconds": duration_seconds,
        }
        if spec.external_id:
            params["ExternalId"] = spec.external_id
        answer = sts.call("sts", "AssumeRole", **params)["Credentials"]
        for secret in (answer["SecretAccessKey"], answer["SessionToken"]):
            register_secret(secret)
        expiration = answer["Expiration"]
        return {
            "access_key": answer["AccessKeyId"],
            "secret_key": answer["SecretAccessKey"],
            "token": answer["SessionToken"],
            "expiry_time": expiration.isoformat()
            if isinstance(expiration, datetime)
            else str(expiration),
        }

    return fetch
