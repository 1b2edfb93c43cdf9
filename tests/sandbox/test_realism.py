"""Smaller AWS rules the sandbox now keeps: document names and sizes, display names across versions,
and re-registration after a deregistration."""

from __future__ import annotations

import json

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.sandbox.fleetkit import activate, boot, publish, registered_fleet

NO_RETRY = Config(retries={"total_max_attempts": 1})


def _content(marker: str = "x") -> str:
    return json.dumps(
        {
            "schemaVersion": "2.2",
            "description": marker,
            "mainSteps": [
                {
                    "action": "aws:runPowerShellScript",
                    "name": "s",
                    "inputs": {"runCommand": ["echo"]},
                }
            ],
        }
    )


@pytest.mark.parametrize(
    "name",
    [
        "aws-mine",
        "AWSEC2-Thing",
        "AWSConfigRemediation-Fix",
        "AWSSupport-Help",
        "Amazon.X",
        "amznDoc",
        "awsdoc",
    ],
)
def test_reserved_document_name_prefixes_are_refused(sandbox, name):
    ssm = sandbox.client("ssm", config=NO_RETRY)
    with pytest.raises(ClientError) as raised:
        ssm.create_document(Name=name, Content=_content(), DocumentType="Command")
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_a_document_over_64_kb_is_refused(sandbox):
    ssm = sandbox.client("ssm", config=NO_RETRY)
    with pytest.raises(ClientError) as raised:
        ssm.create_document(Name="Fleet-Big", Content=_content("x" * 66000), DocumentType="Command")
    assert raised.value.response["Error"]["Code"] == "MaxDocumentSizeExceeded"
    ssm.create_document(Name="Fleet-Big", Content=_content("x" * 60000), DocumentType="Command")
    with pytest.raises(ClientError) as raised:
        ssm.update_document(
            Name="Fleet-Big", Content=_content("y" * 66000), DocumentVersion="$LATEST"
        )
    assert raised.value.response["Error"]["Code"] == "MaxDocumentSizeExceeded"


def test_update_document_keeps_the_display_name_when_omitted(sandbox):
    ssm = sandbox.client("ssm")
    ssm.create_document(
        Name="Fleet-Named", Content=_content("1"), DocumentType="Command", DisplayName="Fleet tools"
    )
    second = ssm.update_document(
        Name="Fleet-Named", Content=_content("2"), DocumentVersion="$LATEST"
    )
    assert second["DocumentDescription"]["DisplayName"] == "Fleet tools"
    third = ssm.update_document(
        Name="Fleet-Named", Content=_content("3"), DocumentVersion="$LATEST", DisplayName="Renamed"
    )
    assert third["DocumentDescription"]["DisplayName"] == "Renamed"


def test_a_deregistered_machine_needs_a_new_activation(sandbox):
    ids, instances, activation_id = registered_fleet(sandbox, 1)
    ssm = sandbox.client("ssm")
    # An activation with registrations to spare is published: the old one, still valid.
    ssm.delete_activation(ActivationId=activation_id)
    roomy, code = activate(ssm, limit=5)
    publish(sandbox, roomy, code)
    ssm.deregister_managed_instance(InstanceId=instances[0])
    first = boot(sandbox, ids)
    assert first["registered"] == 1
    again = first["results"][0]["instanceId"]
    ssm.deregister_managed_instance(InstanceId=again)
    refused = boot(sandbox, ids)
    assert refused["failed"] == 1 and "new activation" in refused["results"][0]["reason"]
    assert ssm.describe_instance_information()["InstanceInformationList"] == []
    fresh, fresh_code = activate(ssm, limit=1)
    publish(sandbox, fresh, fresh_code)
    assert boot(sandbox, ids)["registered"] == 1
