"""SSM documents through boto3: Package documents with S3 attachments, versions and their limits."""

from __future__ import annotations

import json

import pytest
import yaml
from botocore.exceptions import ClientError

from tests.sandbox._ssm_helpers import manifest, publish_package


@pytest.fixture(autouse=True)
def _responses_fit_their_shapes(sandbox):
    yield
    assert sandbox.admin.get("shape-violations")["violations"] == []


def _code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


COMMAND = {
    "schemaVersion": "2.2",
    "description": "Say hello",
    "parameters": {"greeting": {"type": "String", "default": "hello"}},
    "mainSteps": [
        {
            "action": "aws:runPowerShellScript",
            "name": "hello",
            "inputs": {"runCommand": ["Write-Output '{{ greeting }}'"]},
        }
    ],
}


def test_package_document_records_its_attachments(sandbox):
    created = publish_package(sandbox, "Acme", "1.0.0")
    assert created["DocumentType"] == "Package"
    assert created["VersionName"] == "1.0.0"
    assert created["AttachmentsInformation"] == [{"Name": "Acme.zip"}]
    ssm = sandbox.client("ssm")
    described = ssm.describe_document(Name="Acme")["Document"]
    assert (
        described["DocumentVersion"],
        described["DefaultVersion"],
        described["LatestVersion"],
    ) == ("1", "1", "1")
    assert described["PlatformTypes"] == ["Windows"]
    content = ssm.get_document(Name="Acme")["AttachmentsContent"][0]
    assert content["Name"] == "Acme.zip"
    assert content["Size"] == len(b"zip1.0.0")
    assert content["HashType"] == "Sha256" and len(content["Hash"]) == 64


def test_package_attachment_missing_from_s3_is_invalid_content(sandbox):
    s3, ssm = sandbox.client("s3"), sandbox.client("ssm")
    s3.create_bucket(Bucket="artifacts")
    with pytest.raises(ClientError) as raised:
        ssm.create_document(
            Name="Ghost",
            DocumentType="Package",
            Content=manifest("1.0", {"ghost.zip": b"never uploaded"}),
            Attachments=[{"Key": "SourceUrl", "Values": ["s3://artifacts/ghost"]}],
            VersionName="1.0",
        )
    assert _code(raised) == "InvalidDocumentContent"
    assert "ghost.zip" in raised.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as raised:
        ssm.describe_document(Name="Ghost")
    assert _code(raised) == "InvalidDocument"


def test_package_attachment_with_wrong_checksum_is_invalid_content(sandbox):
    s3, ssm = sandbox.client("s3"), sandbox.client("ssm")
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="acme/acme.zip", Body=b"tampered")
    with pytest.raises(ClientError) as raised:
        ssm.create_document(
            Name="Acme",
            DocumentType="Package",
            Content=manifest("1.0", {"acme.zip": b"original"}),
            Attachments=[{"Key": "SourceUrl", "Values": ["s3://artifacts/acme"]}],
        )
    assert _code(raised) == "InvalidDocumentContent"
    assert "sha256" in raised.value.response["Error"]["Message"]


def test_manifest_version_must_equal_version_name(sandbox):
    s3, ssm = sandbox.client("s3"), sandbox.client("ssm")
    s3.create_bucket(Bucket="artifacts")
    s3.put_object(Bucket="artifacts", Key="acme/acme.zip", Body=b"z")
    with pytest.raises(ClientError) as raised:
        ssm.create_document(
            Name="Acme",
            DocumentType="Package",
            Content=manifest("1.0", {"acme.zip": b"z"}),
            Attachments=[{"Key": "SourceUrl", "Values": ["s3://artifacts/acme"]}],
            VersionName="2.0",
        )
    assert _code(raised) == "InvalidDocumentContent"


def test_new_versions_are_numbered_and_only_promoted_explicitly(sandbox):
    ssm = sandbox.client("ssm")
    publish_package(sandbox, "Acme", "1.0.0")
    second = publish_package(sandbox, "Acme", "1.1.0")
    assert (second["DocumentVersion"], second["DefaultVersion"], second["LatestVersion"]) == (
        "2",
        "1",
        "2",
    )
    assert ssm.describe_document(Name="Acme")["Document"]["VersionName"] == "1.0.0"
    assert (
        ssm.describe_document(Name="Acme", DocumentVersion="$LATEST")["Document"]["VersionName"]
        == "1.1.0"
    )
    assert (
        ssm.describe_document(Name="Acme", VersionName="1.1.0")["Document"]["DocumentVersion"]
        == "2"
    )
    promoted = ssm.update_document_default_version(Name="Acme", DocumentVersion="2")["Description"]
    assert promoted == {"Name": "Acme", "DefaultVersion": "2", "DefaultVersionName": "1.1.0"}
    versions = ssm.list_document_versions(Name="Acme")["DocumentVersions"]
    assert [(v["DocumentVersion"], v["VersionName"], v["IsDefaultVersion"]) for v in versions] == [
        ("1", "1.0.0", False),
        ("2", "1.1.0", True),
    ]
    with pytest.raises(ClientError) as raised:
        ssm.update_document_default_version(Name="Acme", DocumentVersion="9")
    assert _code(raised) == "InvalidDocumentVersion"


def test_version_name_is_unique_per_document(sandbox):
    publish_package(sandbox, "Acme", "1.0.0")
    with pytest.raises(ClientError) as raised:
        publish_package(sandbox, "Acme", "1.0.0", payload=b"different bytes")
    assert _code(raised) == "DuplicateDocumentVersionName"


def test_twenty_sixth_package_version_exceeds_the_limit(sandbox):
    ssm = sandbox.client("ssm")
    for minor in range(25):
        publish_package(sandbox, "Acme", f"1.{minor}")
    assert len(ssm.list_document_versions(Name="Acme")["DocumentVersions"]) == 25
    with pytest.raises(ClientError) as raised:
        publish_package(sandbox, "Acme", "1.25")
    assert _code(raised) == "DocumentVersionLimitExceeded"
    assert "too many versions" in raised.value.response["Error"]["Message"]
    # Pruning the oldest version makes room; its number is never reused.
    ssm.delete_document(Name="Acme", DocumentVersion="2")
    assert publish_package(sandbox, "Acme", "1.25")["DocumentVersion"] == "26"


def test_delete_one_version_keeps_the_rest(sandbox):
    ssm = sandbox.client("ssm")
    for version in ("1.0", "1.1", "1.2"):
        publish_package(sandbox, "Acme", version)
    ssm.delete_document(Name="Acme", VersionName="1.1")
    ssm.delete_document(Name="Acme", DocumentVersion="3")
    remaining = ssm.list_document_versions(Name="Acme")["DocumentVersions"]
    assert [v["DocumentVersion"] for v in remaining] == ["1"]
    assert ssm.describe_document(Name="Acme")["Document"]["LatestVersion"] == "1"
    with pytest.raises(ClientError) as raised:
        ssm.delete_document(Name="Acme", DocumentVersion="1")
    assert _code(raised) == "InvalidDocumentOperation"
    with pytest.raises(ClientError) as raised:
        ssm.delete_document(Name="Acme", DocumentVersion="7")
    assert _code(raised) == "InvalidDocument"
    ssm.delete_document(Name="Acme")
    with pytest.raises(ClientError) as raised:
        ssm.get_document(Name="Acme")
    assert _code(raised) == "InvalidDocument"


def test_update_only_from_the_latest_version_and_only_with_new_content(sandbox):
    ssm = sandbox.client("ssm")
    ssm.create_document(Name="Hello", Content=json.dumps(COMMAND), DocumentType="Command")
    changed = {**COMMAND, "description": "Say hello again"}
    assert (
        ssm.update_document(Name="Hello", Content=json.dumps(changed), DocumentVersion="1")[
            "DocumentDescription"
        ]["DocumentVersion"]
        == "2"
    )
    with pytest.raises(ClientError) as raised:
        ssm.update_document(
            Name="Hello", Content=json.dumps({**COMMAND, "description": "x"}), DocumentVersion="1"
        )
    assert _code(raised) == "InvalidDocumentVersion"
    with pytest.raises(ClientError) as raised:
        ssm.update_document(Name="Hello", Content=json.dumps(COMMAND), DocumentVersion="$LATEST")
    assert _code(raised) == "DuplicateDocumentContent"
    with pytest.raises(ClientError) as raised:
        ssm.update_document(Name="Nobody", Content=json.dumps(COMMAND), DocumentVersion="$LATEST")
    assert _code(raised) == "InvalidDocument"


def test_command_document_content_is_validated(sandbox):
    ssm = sandbox.client("ssm")
    with pytest.raises(ClientError) as raised:
        ssm.create_document(Name="Broken", Content="{not json", DocumentType="Command")
    assert _code(raised) == "InvalidDocumentContent"
    with pytest.raises(ClientError) as raised:
        ssm.create_document(
            Name="Old",
            Content=json.dumps({**COMMAND, "schemaVersion": "9.9"}),
            DocumentType="Command",
        )
    assert _code(raised) == "InvalidDocumentSchemaVersion"
    ssm.create_document(Name="Hello", Content=json.dumps(COMMAND), DocumentType="Command")
    with pytest.raises(ClientError) as raised:
        ssm.create_document(Name="Hello", Content=json.dumps(COMMAND), DocumentType="Command")
    assert _code(raised) == "DocumentAlreadyExists"


def test_describe_reports_parameters_and_get_converts_formats(sandbox):
    ssm = sandbox.client("ssm")
    ssm.create_document(
        Name="Hello", Content=json.dumps(COMMAND), DocumentType="Command", DocumentFormat="JSON"
    )
    described = ssm.describe_document(Name="Hello")["Document"]
    assert described["Parameters"] == [
        {"Name": "greeting", "Type": "String", "DefaultValue": "hello"}
    ]
    assert described["PlatformTypes"] == ["Windows"]
    as_yaml = ssm.get_document(Name="Hello", DocumentFormat="YAML")
    assert as_yaml["DocumentFormat"] == "YAML"
    assert yaml.safe_load(as_yaml["Content"]) == COMMAND


def test_stock_configure_aws_package_is_amazon_owned_and_visible(sandbox):
    ssm = sandbox.client("ssm")
    described = ssm.describe_document(Name="AWS-ConfigureAWSPackage")["Document"]
    assert described["Owner"] == "Amazon"
    assert described["DocumentType"] == "Command" and described["SchemaVersion"] == "2.2"
    assert {p["Name"] for p in described["Parameters"]} == {
        "action",
        "name",
        "version",
        "installationType",
        "additionalArguments",
    }
    content = json.loads(ssm.get_document(Name="AWS-ConfigureAWSPackage")["Content"])
    assert content["mainSteps"][0]["action"] == "aws:configurePackage"
    amazon = ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Amazon"]}])[
        "DocumentIdentifiers"
    ]
    assert "AWS-ConfigureAWSPackage" in [d["Name"] for d in amazon]
    own = ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])["DocumentIdentifiers"]
    assert own == []
    with pytest.raises(ClientError) as raised:
        ssm.delete_document(Name="AWS-ConfigureAWSPackage")
    assert _code(raised) == "InvalidDocumentOperation"
    with pytest.raises(ClientError) as raised:
        ssm.create_document(Name="AWS-Mine", Content=json.dumps(COMMAND), DocumentType="Command")
    assert _code(raised) == "ValidationException"


def test_list_documents_filters_and_paginates(sandbox):
    ssm = sandbox.client("ssm")
    for index in range(5):
        ssm.create_document(
            Name=f"Cmd-{index}",
            Content=json.dumps({**COMMAND, "description": str(index)}),
            DocumentType="Command",
        )
    publish_package(sandbox, "Acme", "1.0")
    packages = ssm.list_documents(Filters=[{"Key": "DocumentType", "Values": ["Package"]}])[
        "DocumentIdentifiers"
    ]
    assert [(d["Name"], d["VersionName"]) for d in packages] == [("Acme", "1.0")]
    names, token = [], None
    while True:
        kwargs = {"Filters": [{"Key": "Owner", "Values": ["Self"]}], "MaxResults": 2}
        page = ssm.list_documents(**kwargs, **({"NextToken": token} if token else {}))
        assert len(page["DocumentIdentifiers"]) <= 2
        names += [d["Name"] for d in page["DocumentIdentifiers"]]
        token = page.get("NextToken")
        if not token:
            break
    assert names == ["Acme", "Cmd-0", "Cmd-1", "Cmd-2", "Cmd-3", "Cmd-4"]
    with pytest.raises(ClientError) as raised:
        ssm.list_documents(NextToken="garbage!")
    assert _code(raised) == "InvalidNextToken"


def test_document_tags_at_create_and_through_the_tagging_calls(sandbox):
    ssm = sandbox.client("ssm")
    ssm.create_document(
        Name="Hello",
        Content=json.dumps(COMMAND),
        DocumentType="Command",
        Tags=[{"Key": "owner", "Value": "fleet"}],
    )
    ssm.add_tags_to_resource(
        ResourceType="Document", ResourceId="Hello", Tags=[{"Key": "team", "Value": "euc"}]
    )
    tags = ssm.list_tags_for_resource(ResourceType="Document", ResourceId="Hello")["TagList"]
    assert tags == [{"Key": "owner", "Value": "fleet"}, {"Key": "team", "Value": "euc"}]
    assert ssm.describe_document(Name="Hello")["Document"]["Tags"] == tags
    with pytest.raises(ClientError) as raised:
        ssm.list_tags_for_resource(ResourceType="Document", ResourceId="Nope")
    assert _code(raised) == "InvalidResourceId"
