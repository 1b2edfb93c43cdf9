"""SSM hybrid activations through boto3: create, describe (filters, pages, expiry), delete."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import botocore.exceptions
import pytest

from tests.sandbox.fleetkit import activate, error_code, unchecked


def _sandbox_now(sandbox) -> datetime:
    return datetime.fromisoformat(sandbox.admin.get("clock")["now"])


def test_create_returns_a_uuid_and_a_20_character_code_once(sandbox):
    ssm = sandbox.client("ssm")
    answer = ssm.create_activation(IamRole="SSMServiceRole")
    assert uuid.UUID(answer["ActivationId"]).version == 4
    assert re.fullmatch(r"[A-Za-z0-9+/]{20}", answer["ActivationCode"])
    listed = ssm.describe_activations()["ActivationList"]
    assert [a["ActivationId"] for a in listed] == [answer["ActivationId"]]
    assert "ActivationCode" not in listed[0]
    assert answer["ActivationCode"] not in repr(listed)


def test_defaults_one_registration_and_24_hours(sandbox):
    ssm = sandbox.client("ssm")
    activation_id, _ = activate(ssm)
    described = ssm.describe_activations()["ActivationList"][0]
    assert described["ActivationId"] == activation_id
    assert described["RegistrationLimit"] == 1
    assert described["RegistrationsCount"] == 0
    assert described["Expired"] is False
    validity = described["ExpirationDate"] - described["CreatedDate"]
    assert validity == timedelta(hours=24)
    assert abs(described["CreatedDate"] - _sandbox_now(sandbox)) < timedelta(minutes=1)


def test_describe_returns_every_field_given_at_create(sandbox):
    ssm = sandbox.client("ssm")
    expiry = _sandbox_now(sandbox) + timedelta(days=7)
    ssm.create_activation(
        IamRole="SSMServiceRole",
        Description="office fleet",
        DefaultInstanceName="workspace",
        RegistrationLimit=250,
        ExpirationDate=expiry,
        Tags=[{"Key": "owner", "Value": "euc"}, {"Key": "env", "Value": "prod"}],
    )
    described = ssm.describe_activations()["ActivationList"][0]
    assert described["Description"] == "office fleet"
    assert described["DefaultInstanceName"] == "workspace"
    assert described["IamRole"] == "SSMServiceRole"
    assert described["RegistrationLimit"] == 250
    assert abs(described["ExpirationDate"] - expiry) < timedelta(seconds=1)
    assert {t["Key"]: t["Value"] for t in described["Tags"]} == {"owner": "euc", "env": "prod"}


def test_expiry_more_than_30_days_ahead_is_refused(sandbox):
    ssm = sandbox.client("ssm")
    now = _sandbox_now(sandbox)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.create_activation(IamRole="r", ExpirationDate=now + timedelta(days=30, hours=1))
    assert error_code(raised) == "ValidationException"
    assert "30 days" in raised.value.response["Error"]["Message"]
    activate(ssm, ExpirationDate=now + timedelta(days=29, hours=23))
    assert len(ssm.describe_activations()["ActivationList"]) == 1


def test_expiry_in_the_past_is_refused(sandbox):
    ssm = sandbox.client("ssm")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.create_activation(IamRole="r", ExpirationDate=datetime.now(UTC) - timedelta(hours=1))
    assert error_code(raised) == "ValidationException"


def test_expiry_is_judged_by_the_sandbox_clock(sandbox):
    ssm = sandbox.client("ssm")
    sandbox.admin.advance_clock(10 * 24 * 3600)
    with pytest.raises(botocore.exceptions.ClientError):  # in the past for the sandbox
        ssm.create_activation(IamRole="r", ExpirationDate=datetime.now(UTC) + timedelta(days=5))
    activate(ssm, ExpirationDate=datetime.now(UTC) + timedelta(days=35))  # 25 days sandbox-ahead


@pytest.mark.parametrize("limit", [0, 1001])
def test_registration_limit_outside_1_to_1000_is_a_validation_error(sandbox, limit):
    ssm = unchecked(sandbox, "ssm")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.create_activation(IamRole="r", RegistrationLimit=limit)
    assert error_code(raised) == "ValidationException"
    assert "registrationLimit" in raised.value.response["Error"]["Message"]
    assert ssm.describe_activations()["ActivationList"] == []


def test_reserved_tag_keys_are_refused(sandbox):
    ssm = sandbox.client("ssm")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        activate(ssm, tags={"aws:owner": "x"})
    assert error_code(raised) == "InvalidParameters"


def test_expired_follows_the_sandbox_clock(sandbox):
    ssm = sandbox.client("ssm")
    activate(ssm)
    assert ssm.describe_activations()["ActivationList"][0]["Expired"] is False
    sandbox.admin.advance_clock(24 * 3600 + 1)
    assert ssm.describe_activations()["ActivationList"][0]["Expired"] is True


def test_filters_select_by_id_default_instance_name_and_role(sandbox):
    ssm = sandbox.client("ssm")
    first, _ = activate(ssm, DefaultInstanceName="alpha")
    second, _ = activate(ssm, DefaultInstanceName="beta")
    ssm.create_activation(IamRole="OtherRole", DefaultInstanceName="alpha")

    def ids(filters):
        found = ssm.describe_activations(Filters=filters)["ActivationList"]
        return sorted(a["ActivationId"] for a in found)

    assert ids([{"FilterKey": "ActivationIds", "FilterValues": [second]}]) == [second]
    assert len(ids([{"FilterKey": "DefaultInstanceName", "FilterValues": ["alpha"]}])) == 2
    assert ids(
        [
            {"FilterKey": "DefaultInstanceName", "FilterValues": ["alpha"]},
            {"FilterKey": "IamRole", "FilterValues": ["SSMServiceRole"]},
        ]
    ) == [first]
    assert ids([{"FilterKey": "IamRole", "FilterValues": ["Nobody"]}]) == []


def test_pages_of_max_results_are_collected_with_the_paginator(sandbox):
    ssm = sandbox.client("ssm")
    created = {activate(ssm)[0] for _ in range(7)}
    sandbox.admin.reset_calls()
    pages = list(
        ssm.get_paginator("describe_activations").paginate(PaginationConfig={"PageSize": 3})
    )
    assert [len(p["ActivationList"]) for p in pages] == [3, 3, 1]
    assert {a["ActivationId"] for p in pages for a in p["ActivationList"]} == created
    assert sandbox.admin.call_counts("ssm")["DescribeActivations"] == 3


def test_max_results_above_50_is_a_validation_error(sandbox):
    ssm = unchecked(sandbox, "ssm")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.describe_activations(MaxResults=51)
    assert error_code(raised) == "ValidationException"


def test_a_foreign_next_token_is_invalid(sandbox):
    ssm = sandbox.client("ssm")
    for _ in range(3):
        activate(ssm)
    token = ssm.describe_activations(MaxResults=1)["NextToken"]
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.describe_activations(NextToken="not-a-token")
    assert error_code(raised) == "InvalidNextToken"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.describe_activations(
            NextToken=token, Filters=[{"FilterKey": "IamRole", "FilterValues": ["x"]}]
        )
    assert error_code(raised) == "InvalidNextToken"


def test_delete_removes_the_activation_and_unknown_ids_are_invalid(sandbox):
    ssm = sandbox.client("ssm")
    activation_id, _ = activate(ssm)
    ssm.delete_activation(ActivationId=activation_id)
    assert ssm.describe_activations()["ActivationList"] == []
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.delete_activation(ActivationId=activation_id)
    assert error_code(raised) == "InvalidActivation"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        ssm.delete_activation(ActivationId=str(uuid.uuid4()))
    assert error_code(raised) == "InvalidActivation"


def test_activations_are_per_region(sandbox):
    activate(sandbox.client("ssm"))
    assert sandbox.client("ssm", region="eu-west-1").describe_activations()["ActivationList"] == []


def test_standard_tier_stops_at_1000_instances_and_advanced_lifts_it(sandbox):
    """The sandbox enforces the standard tier's 1,000 hybrid instances until the tier is raised."""
    import json

    ssm = sandbox.client("ssm")
    setting = ssm.get_service_setting(SettingId="/ssm/managed-instance/activation-tier")
    assert setting["ServiceSetting"]["SettingValue"] == "standard"
    created = ssm.create_activation(IamRole="SSMServiceRole", RegistrationLimit=1000)
    ssm.put_parameter(
        Name="/tier/activation",
        Type="SecureString",
        Value=json.dumps(
            {
                "id": created["ActivationId"],
                "code": created["ActivationCode"],
                "region": "us-east-1",
            }
        ),
    )
    sandbox.admin.post("fleet/workspaces", {"count": 1001})
    sandbox.admin.post("fleet/registration", {"parameterName": "/tier/activation"})
    results = sandbox.admin.post("fleet/boot", {})["results"]
    assert sum(1 for r in results if r.get("instanceId")) == 1000
    second = ssm.create_activation(IamRole="SSMServiceRole", RegistrationLimit=10)
    ssm.put_parameter(
        Name="/tier/activation",
        Type="SecureString",
        Overwrite=True,
        Value=json.dumps(
            {"id": second["ActivationId"], "code": second["ActivationCode"], "region": "us-east-1"}
        ),
    )
    [refused] = sandbox.admin.post("fleet/boot", {})["results"]
    assert "standard tier" in refused["reason"]
    ssm.update_service_setting(
        SettingId="/ssm/managed-instance/activation-tier", SettingValue="advanced"
    )
    [registered] = sandbox.admin.post("fleet/boot", {})["results"]
    assert registered["instanceId"].startswith("mi-")
    with pytest.raises(ssm.exceptions.ServiceSettingNotFound):
        ssm.get_service_setting(SettingId="/ssm/not/a/setting")
