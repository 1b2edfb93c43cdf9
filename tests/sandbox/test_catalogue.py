"""The Amazon-owned documents admins use most: listed, described, and enforced as AWS does."""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.sandbox._ssm_helpers import add_instance

NO_RETRY = Config(retries={"total_max_attempts": 1})
MOST_USED = {
    "AWS-RunPatchBaseline",
    "AWS-GatherSoftwareInventory",
    "AWS-UpdateSSMAgent",
    "AWS-RunPowerShellScript",
    "AWS-RunShellScript",
    "AWS-ConfigureAWSPackage",
    "AWS-JoinDirectoryServiceDomain",
    "AWS-InstallApplication",
    "AWS-ConfigureWindowsUpdate",
    "AWS-InstallWindowsUpdates",
    "AWS-RunRemoteScript",
    "AWS-RefreshAssociation",
    "AWS-ApplyPatchBaseline",
    "AWS-InstallPowerShellModule",
    "AWS-FindWindowsUpdates",
}


def _associate(sandbox, name, parameters):
    add_instance(1, {"Role": "vdi"})
    return sandbox.client("ssm", config=NO_RETRY).create_association(
        Name=name, Parameters=parameters, Targets=[{"Key": "tag:Role", "Values": ["vdi"]}]
    )


def test_at_least_15_amazon_command_documents_are_listed(sandbox):
    ssm = sandbox.client("ssm")
    pages = ssm.get_paginator("list_documents").paginate(
        Filters=[
            {"Key": "Owner", "Values": ["Amazon"]},
            {"Key": "DocumentType", "Values": ["Command"]},
        ]
    )
    names = {d["Name"] for page in pages for d in page["DocumentIdentifiers"]}
    assert names >= MOST_USED
    assert len(names) >= 15


def test_a_catalogue_document_describes_its_parameters_and_platforms(sandbox):
    ssm = sandbox.client("ssm")
    described = ssm.describe_document(Name="AWS-RunPatchBaseline")["Document"]
    assert described["Owner"] == "Amazon"
    assert described["DocumentType"] == "Command"
    assert described["SchemaVersion"] == "2.2"
    parameters = {p["Name"]: p for p in described["Parameters"]}
    assert "DefaultValue" not in parameters["Operation"]  # required
    assert parameters["RebootOption"]["DefaultValue"] == "RebootIfNeeded"
    assert set(described["PlatformTypes"]) >= {"Windows", "Linux"}
    powershell = ssm.describe_document(Name="AWS-RunPowerShellScript")["Document"]
    assert powershell["PlatformTypes"] == ["Windows"]
    content = ssm.get_document(Name="AWS-GatherSoftwareInventory")["Content"]
    assert "aws:softwareInventory" in content


def test_an_amazon_document_cannot_be_changed_or_deleted(sandbox):
    ssm = sandbox.client("ssm", config=NO_RETRY)
    with pytest.raises(ClientError) as raised:
        ssm.delete_document(Name="AWS-RunPatchBaseline")
    assert raised.value.response["Error"]["Code"] == "InvalidDocumentOperation"


def test_an_association_on_a_patch_scan_validates_its_parameters(sandbox):
    described = _associate(sandbox, "AWS-RunPatchBaseline", {"Operation": ["Scan"]})
    assert described["AssociationDescription"]["Name"] == "AWS-RunPatchBaseline"


@pytest.mark.parametrize(
    ("name", "parameters", "why"),
    [
        ("AWS-RunPatchBaseline", {}, "Operation is required"),
        ("AWS-RunPatchBaseline", {"Operation": ["Patch"]}, "not an allowed value"),
        ("AWS-RunPatchBaseline", {"Operation": ["Scan", "Install"]}, "a String takes one value"),
        ("AWS-RunPatchBaseline", {"Operation": ["Scan"], "SnapshotId": ["not-a-guid"]}, "pattern"),
        ("AWS-RunPowerShellScript", {"commands": []}, "minItems 1"),
        ("AWS-RunPowerShellScript", {"commands": ["dir"], "executionTimeout": ["172801"]}, "max"),
        ("AWS-UpdateSSMAgent", {"version": ["latest"]}, "version pattern"),
        (
            "AWS-JoinDirectoryServiceDomain",
            {"directoryName": ["corp.example.com"]},
            "no directoryId",
        ),
        (
            "AWS-RunRemoteScript",
            {"sourceType": ["S3"], "sourceInfo": ["[1]"], "commandLine": ["x"]},
            "StringMap",
        ),
        ("AWS-GatherSoftwareInventory", {"colour": ["red"]}, "unknown parameter"),
    ],
)
def test_parameters_that_break_the_schema_are_refused(sandbox, name, parameters, why):
    with pytest.raises(ClientError) as raised:
        _associate(sandbox, name, parameters)
    assert raised.value.response["Error"]["Code"] == "InvalidParameters", why
    assert sandbox.client("ssm").list_associations()["Associations"] == []


def test_defaults_fill_what_is_omitted(sandbox):
    _associate(sandbox, "AWS-GatherSoftwareInventory", {})
    _associate(
        sandbox,
        "AWS-JoinDirectoryServiceDomain",
        {"directoryId": ["d-9067a1b2c3"], "directoryName": ["corp.example.com"]},
    )
    _associate(
        sandbox,
        "AWS-RunPowerShellScript",
        {"commands": ["Get-Service"], "executionTimeout": ["172800"]},
    )
