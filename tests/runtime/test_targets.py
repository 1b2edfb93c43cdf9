"""The targets file, and a target's AwsApi with assumed-role credentials from the sandbox's STS."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from controller.aws import AwsSettings, error_code
from controller.aws.targets import (
    InvalidTargets,
    TargetSpec,
    assumed_role_session,
    build_target,
    load_targets,
)
from controller.observability.metrics import Metrics
from controller.observability.redaction import REDACTED, redact_text

ROLE = "arn:aws:iam::123456789012:role/fleet-controller"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "targets.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def calls(metrics: Metrics, target: str, service: str, operation: str) -> float:
    labels = {
        "target": target,
        "service": service,
        "operation": operation,
        "outcome": "success",
    }
    return metrics.registry.get_sample_value("fleet_aws_api_calls_total", labels) or 0.0


def test_a_targets_file_loads(tmp_path):
    path = write(
        tmp_path,
        f"""targets:
  - name: prod-eu
    region: eu-west-1
    roleArn: {ROLE}
    externalId: fleet-7f3a
    sessionName: fleet-prod-eu
  - name: dev
    region: us-east-1
""",
    )
    prod, dev = load_targets(path)
    assert (prod.name, prod.region, prod.role_arn, prod.external_id) == (
        "prod-eu",
        "eu-west-1",
        ROLE,
        "fleet-7f3a",
    )
    assert prod.role_session_name == "fleet-prod-eu"
    assert dev.role_arn is None and dev.role_session_name == "fleet-controller-dev"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("targets:\n  - name: a\n    region: eu-west-1\n    rolearn: x\n", "targets.0.rolearn"),
        ("targets:\n  - name: a\n    region: eu-west-1\n    roleArn: admin\n", "not an IAM role"),
        ("targets:\n  - name: a\n    region: Ireland\n", "not an AWS Region"),
        ("targets:\n  - name: 'replica#1'\n    region: eu-west-1\n", "targets.0.name"),
        ("targets: []\n", "targets"),
        ("- name: a\n", "(file)"),
        (
            "targets:\n  - {name: a, region: eu-west-1}\n  - {name: a, region: us-east-1}\n",
            "duplicate target name(s): a",
        ),
        ("targets: [\n", "targets.yaml"),
    ],
)
def test_a_bad_targets_file_says_where(tmp_path, text, says):
    with pytest.raises(InvalidTargets) as raised:
        load_targets(write(tmp_path, text))
    assert says in str(raised.value)


def test_a_role_is_assumed_through_the_counted_api_and_its_credentials_are_secret(sandbox):
    metrics = Metrics(targets=["prod"])
    spec = TargetSpec(name="prod", region="us-west-2", roleArn=ROLE, externalId="fleet-7f3a")
    base = AwsSettings(endpoint_url=sandbox.endpoint, rate_limits=None)
    target = build_target(spec, base, metrics)
    assert calls(metrics, "prod", "sts", "AssumeRole") == 0  # lazily, at the first call
    target.aws.call("ssm", "DescribeActivations")
    target.aws.call("ssm", "DescribeActivations")
    assert calls(metrics, "prod", "sts", "AssumeRole") == 1  # cached until near expiry
    assert calls(metrics, "prod", "ssm", "DescribeActivations") == 2
    assert target.aws.region == "us-west-2"
    assert sandbox.admin.call_counts("sts")["AssumeRole"] == 1
    frozen = target.aws.client("ssm")._request_signer._credentials.get_frozen_credentials()
    assert frozen.access_key.startswith("ASIA")  # the sandbox's STS issued them
    assert redact_text(frozen.secret_key) == REDACTED
    assert redact_text(frozen.token) == REDACTED


def test_credentials_near_expiry_are_refreshed_before_use(sandbox):
    """900 s credentials are always within botocore's 15-minute refresh window."""
    metrics = Metrics(targets=["prod"])
    spec = TargetSpec(name="prod", region="us-east-1", roleArn=ROLE)
    base = AwsSettings(endpoint_url=sandbox.endpoint, rate_limits=None)
    sts = build_target(TargetSpec(name="prod", region="us-east-1"), base, metrics).aws
    session = assumed_role_session(spec, sts, duration_seconds=900)
    ssm = session.client("ssm", endpoint_url=sandbox.endpoint)
    for _ in range(3):
        ssm.describe_activations()
    assert calls(metrics, "prod", "sts", "AssumeRole") == 3


def test_a_role_that_cannot_be_assumed_fails_that_targets_calls_only(sandbox):
    metrics = Metrics(targets=["broken", "fine"])
    base = AwsSettings(endpoint_url=sandbox.endpoint, rate_limits=None, max_attempts=1)
    sandbox.admin.set_faults([{"service": "sts", "operation": "AssumeRole", "deny_rate": 1.0}])
    broken = build_target(
        TargetSpec(name="broken", region="us-east-1", roleArn=ROLE), base, metrics
    )
    fine = build_target(TargetSpec(name="fine", region="us-east-1"), base, metrics)
    with pytest.raises(ClientError) as raised:
        broken.aws.call("ssm", "DescribeActivations")
    assert error_code(raised.value) == "AccessDenied"
    assert "AssumeRole" in str(raised.value)
    assert fine.aws.call("ssm", "DescribeActivations")["ActivationList"] == []
