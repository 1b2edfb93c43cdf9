"""The sandbox's own machinery: call counting, fault injection, AWS-shaped errors, admin API."""

from __future__ import annotations

import botocore.exceptions
import pytest
from botocore.config import Config

from fleet_sandbox.client import AdminApiError
from fleet_sandbox.shapes import validate_output


def test_calls_are_counted_by_service_and_operation(sandbox):
    ssm = sandbox.client("ssm")
    ssm.put_parameter(Name="/a", Value="1", Type="String")
    ssm.get_parameter(Name="/a")
    ssm.get_parameter(Name="/a")
    counts = sandbox.admin.call_counts("ssm")
    assert counts["PutParameter"] == 1
    assert counts["GetParameter"] == 2


def test_operation_outside_the_model_answers_unknown_operation(sandbox):
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="POST",
        url=sandbox.endpoint + "/",
        data=b"{}",
        headers={
            "X-Amz-Target": "AmazonSSM.MakeCoffee",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    SigV4Auth(Credentials("testing", "testing"), "ssm", "us-east-1").add_auth(request)
    prepared = request.prepare()
    http_request = urllib.request.Request(
        prepared.url, data=prepared.body, headers=dict(prepared.headers), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(http_request)
    assert raised.value.code == 400
    assert b"UnknownOperationException" in raised.value.read()


def test_throttling_fault_answers_throttling_exception(sandbox):
    sandbox.admin.set_faults(
        [{"service": "ssm", "operation": "GetParameter", "throttle_rate": 1.0}]
    )
    ssm = sandbox.client("ssm", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.get_parameter(Name="/nothing")
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert sandbox.admin.call_counts("ssm")["GetParameter"] == 1


def test_tagging_api_throttles_with_its_own_error_code(sandbox):
    sandbox.admin.set_faults([{"service": "resourcegroupstaggingapi", "throttle_rate": 1.0}])
    tagging = sandbox.client(
        "resourcegroupstaggingapi", config=Config(retries={"total_max_attempts": 1})
    )
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        tagging.get_resources()
    assert raised.value.response["Error"]["Code"] == "ThrottledException"


def test_server_error_fault_is_a_5xx(sandbox):
    sandbox.admin.set_faults([{"service": "ssm", "error_rate": 1.0}])
    ssm = sandbox.client("ssm", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.get_parameter(Name="/nothing")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


def test_lost_response_fault_acts_then_drops_the_connection(sandbox):
    sandbox.admin.set_faults(
        [{"service": "ssm", "operation": "PutParameter", "lost_response_rate": 1.0}]
    )
    ssm = sandbox.client("ssm", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        ssm.put_parameter(Name="/lost", Value="written", Type="String")
    sandbox.admin.set_faults([])
    assert ssm.get_parameter(Name="/lost")["Parameter"]["Value"] == "written"


def test_reset_fault_drops_the_connection_before_acting(sandbox):
    sandbox.admin.set_faults([{"service": "ssm", "operation": "PutParameter", "reset_rate": 1.0}])
    ssm = sandbox.client("ssm", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(botocore.exceptions.ConnectionClosedError):
        ssm.put_parameter(Name="/never", Value="x", Type="String")
    sandbox.admin.set_faults([])
    with pytest.raises(botocore.exceptions.ClientError):
        ssm.get_parameter(Name="/never")


def test_admin_api_rejects_bad_fault_rules(sandbox):
    with pytest.raises(AdminApiError) as raised:
        sandbox.admin.set_faults([{"service": "ssm", "throttle_rate": 2}])
    assert raised.value.status == 400
    with pytest.raises(AdminApiError):
        sandbox.admin.set_faults([{"colour": "blue"}])


def test_clock_only_moves_forward(sandbox):
    before = sandbox.admin.get("clock")["now"]
    after = sandbox.admin.advance_clock(3600)
    assert after > before
    with pytest.raises(AdminApiError):
        sandbox.admin.advance_clock(-1)


def test_output_validator_catches_a_broken_response():
    broken = {"ActivationId": 42, "Surprise": "x"}
    problems = validate_output("ssm", "CreateActivation", broken)
    assert any("ActivationId" in p for p in problems)
    assert any("Surprise" in p for p in problems)
    assert (
        validate_output("ssm", "CreateActivation", {"ActivationId": "a", "ActivationCode": "c"})
        == []
    )
