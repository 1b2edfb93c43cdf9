"""AwsApi against the sandbox: one retry layer, counted attempts, no retried ambiguous creates."""

from __future__ import annotations

import hashlib
import os
import uuid

import botocore.exceptions
import pytest

from controller.aws import AwsApi, AwsSettings, CallRecorder


@pytest.fixture
def api(sandbox):
    sleeps: list[float] = []
    api = AwsApi(
        AwsSettings(region="us-east-1", endpoint_url=sandbox.endpoint, rate_limits=None),
        CallRecorder(),
        sleep=sleeps.append,
    )
    api.sleeps = sleeps  # type: ignore[attr-defined]
    return api


def test_every_attempt_is_counted_once(api, sandbox):
    api.call("ssm", "PutParameter", Name="/p", Value="v", Type="String")
    api.call("ssm", "GetParameter", Name="/p")
    assert api.recorder.by_operation() == {"ssm:PutParameter": 1, "ssm:GetParameter": 1}
    assert api.recorder.writes() == 1
    assert api.recorder.reads() == 1
    assert sandbox.admin.call_counts("ssm") == {"PutParameter": 1, "GetParameter": 1}


def test_throttled_reads_are_retried_with_backoff_and_counted(api, sandbox):
    api.call("ssm", "PutParameter", Name="/p", Value="v", Type="String")
    sandbox.admin.set_faults(
        [{"service": "ssm", "operation": "GetParameter", "throttle_rate": 0.5}], seed=7
    )
    for _ in range(10):
        assert api.call("ssm", "GetParameter", Name="/p")["Parameter"]["Value"] == "v"
    attempts = sandbox.admin.call_counts("ssm")["GetParameter"]
    assert attempts > 10  # some were throttled and tried again
    assert api.recorder.retries() == attempts - 10
    assert len(api.sleeps) == attempts - 10
    assert all(delay >= 1.0 for delay in api.sleeps)  # the sandbox sends Retry-After: 1


def test_retries_stop_after_max_attempts(sandbox):
    api = AwsApi(
        AwsSettings(region="us-east-1", endpoint_url=sandbox.endpoint, max_attempts=3),
        sleep=lambda s: None,
    )
    sandbox.admin.set_faults([{"service": "ssm", "error_rate": 1.0}])
    with pytest.raises(botocore.exceptions.ClientError):
        api.call("ssm", "DescribeParameters")
    assert sandbox.admin.call_counts("ssm")["DescribeParameters"] == 3


def test_a_create_whose_response_was_lost_is_not_retried(api, sandbox):
    """The server acted; a retry could duplicate it. The caller's next observation decides."""
    sandbox.admin.set_faults(
        [{"service": "ssm", "operation": "CreateDocument", "lost_response_rate": 1.0}]
    )
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        api.call(
            "ssm",
            "CreateDocument",
            Name="doc",
            DocumentType="Command",
            Content='{"schemaVersion": "2.2", "mainSteps": []}',
        )
    assert sandbox.admin.call_counts("ssm")["CreateDocument"] == 1
    assert api.recorder.retries() == 0


def test_a_throttled_create_is_retried_because_aws_did_not_act(api, sandbox):
    sandbox.admin.set_faults(
        [{"service": "ssm", "operation": "PutParameter", "throttle_rate": 0.6}], seed=3
    )
    for index in range(5):
        api.call("ssm", "PutParameter", Name=f"/n{index}", Value="v", Type="String")
    sandbox.admin.set_faults([])
    names = {p["Name"] for p in api.items("ssm", "DescribeParameters")}
    assert names == {f"/n{i}" for i in range(5)}


def test_pages_follow_tokens_until_the_end(api, sandbox):
    for index in range(23):
        api.call("ssm", "PutParameter", Name=f"/page/{index:02}", Value="v", Type="String")
    sandbox.admin.reset_calls()
    names = [p["Name"] for p in api.items("ssm", "DescribeParameters", MaxResults=10)]
    assert len(names) == 23
    assert sandbox.admin.call_counts("ssm")["DescribeParameters"] == 3


def test_call_if_exists_turns_only_the_named_absence_into_none(api):
    assert (
        api.call_if_exists(
            "ssm", "DeleteActivation", absent="InvalidActivation", ActivationId=str(uuid.uuid4())
        )
        is None
    )
    with pytest.raises(botocore.exceptions.ClientError):
        api.call_if_exists("ssm", "GetParameter", absent="InvalidActivation", Name="/missing")
    api.call("ssm", "PutParameter", Name="/here", Value="v", Type="String")
    found = api.call_if_exists("ssm", "GetParameter", absent="ParameterNotFound", Name="/here")
    assert found is not None and found["Parameter"]["Value"] == "v"


def test_a_retried_streamed_upload_sends_the_whole_body_each_time(api, sandbox, tmp_path):
    """Package zips are uploaded as open files; a retry must not resume where the failed attempt
    stopped reading (S3 would store a truncated zip under its content address)."""
    payload = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "artifact.zip"
    path.write_bytes(payload)
    s3 = sandbox.client("s3")
    s3.create_bucket(Bucket="streams")
    sandbox.admin.set_faults(
        [{"service": "s3", "operation": "PutObject", "throttle_rate": 0.5}], seed=11
    )
    for index in range(4):
        with path.open("rb") as body:
            api.call("s3", "PutObject", Bucket="streams", Key=f"k{index}", Body=body)
    sandbox.admin.set_faults([])
    assert sandbox.admin.call_counts("s3")["PutObject"] > 4  # some attempts were retried
    for index in range(4):
        stored = s3.get_object(Bucket="streams", Key=f"k{index}")["Body"].read()
        assert hashlib.sha256(stored).digest() == hashlib.sha256(payload).digest()


def test_retries_reach_the_retries_metric_through_the_production_wiring(sandbox):
    """README, Metrics: ``fleet_aws_api_retries_total`` counts AwsApi's retries, per target,
    service and operation, wired as ``run`` wires it (``default_target``)."""
    from controller.aws.targets import default_target
    from controller.observability.metrics import Metrics

    metrics = Metrics()
    base = AwsSettings(
        region="us-east-1",
        endpoint_url=sandbox.endpoint,
        backoff_base_seconds=0.001,
        backoff_max_seconds=0.01,
        rate_limits=None,
    )
    target = default_target(base, metrics)
    target.aws.call("ssm", "PutParameter", Name="/p", Value="v", Type="String")
    sandbox.admin.set_faults(
        [{"service": "ssm", "operation": "GetParameter", "error_rate": 0.5}], seed=3
    )
    for _ in range(10):
        target.aws.call("ssm", "GetParameter", Name="/p")
    attempts = sandbox.admin.call_counts("ssm")["GetParameter"]
    retried = metrics.registry.get_sample_value(
        "fleet_aws_api_retries_total",
        {"target": "default", "service": "ssm", "operation": "GetParameter"},
    )
    assert attempts > 10 and retried == attempts - 10
    calls = metrics.registry.get_sample_value(
        "fleet_aws_api_calls_total",
        {"target": "default", "service": "ssm", "operation": "GetParameter", "outcome": "success"},
    )
    assert calls == 10
