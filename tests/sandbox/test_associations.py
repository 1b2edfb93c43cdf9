"""State Manager associations and Association compliance through boto3 against the sandbox."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.sandbox._ssm_helpers import add_instance, publish_package, run_agents

CONFIGURE = "AWS-ConfigureAWSPackage"


@pytest.fixture(autouse=True)
def _responses_fit_their_shapes(sandbox):
    yield
    assert sandbox.admin.get("shape-violations")["violations"] == []


def _code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


def _install(package: str = "Acme", **extra):
    arguments = {
        "Name": CONFIGURE,
        "Parameters": {"action": ["Install"], "name": [package]},
        "Targets": [{"Key": "tag:App", "Values": [package]}],
    }
    arguments.update(extra)
    return arguments


FULL = {
    "ScheduleExpression": "cron(0 8 ? * * *)",
    "AssociationName": "acme-install",
    "MaxConcurrency": "10%",
    "MaxErrors": "5",
    "ComplianceSeverity": "HIGH",
    "SyncCompliance": "AUTO",
    "ApplyOnlyAtCronInterval": False,
}


def test_create_association_echoes_its_definition_with_a_pending_overview(sandbox):
    add_instance(1, {"App": "Acme"})
    add_instance(2, {"App": "Acme"})
    add_instance(3, {"App": "Other"})
    ssm = sandbox.client("ssm")
    described = ssm.create_association(**_install(**FULL))["AssociationDescription"]
    for key, value in FULL.items():
        assert described[key] == value
    assert described["Name"] == CONFIGURE
    assert described["DocumentVersion"] == "$DEFAULT"
    assert described["AssociationVersion"] == "1"
    assert described["Parameters"] == {"action": ["Install"], "name": ["Acme"]}
    assert described["Overview"] == {
        "Status": "Pending",
        "DetailedStatus": "Pending",
        "AssociationStatusAggregatedCount": {"Pending": 2},
    }
    again = ssm.describe_association(AssociationId=described["AssociationId"])[
        "AssociationDescription"
    ]
    assert again["Targets"] == [{"Key": "tag:App", "Values": ["Acme"]}]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"Name": "NoSuchDocument"}, "InvalidDocument"),
        ({"DocumentVersion": "7"}, "InvalidDocumentVersion"),
        (
            {"Parameters": {"action": ["Install"], "name": ["Acme"], "colour": ["red"]}},
            "InvalidParameters",
        ),
        ({"Parameters": {"name": ["Acme"]}}, "InvalidParameters"),
        ({"Parameters": {"action": ["Reinstall"], "name": ["Acme"]}}, "InvalidParameters"),
        ({"ScheduleExpression": "cron(0 8 * * * *)"}, "InvalidSchedule"),
        ({"ScheduleExpression": "rate(5 minutes)"}, "InvalidSchedule"),
        ({"ScheduleExpression": "every morning"}, "InvalidSchedule"),
        ({"ScheduleExpression": "rate(1 day)", "ApplyOnlyAtCronInterval": True}, "InvalidSchedule"),
        ({"Targets": [{"Key": "resource-groups:Name", "Values": ["rg"]}]}, "InvalidTarget"),
        (
            {"Targets": [{"Key": f"tag:K{i}", "Values": ["v"]} for i in range(6)]},
            "ValidationException",
        ),
        (
            {"Targets": [{"Key": "tag:App", "Values": [f"v{i}" for i in range(51)]}]},
            "ValidationException",
        ),
        ({"MaxErrors": "lots"}, "ValidationException"),
    ],
)
def test_create_association_rejects_what_aws_rejects(sandbox, change, code):
    with pytest.raises(ClientError) as raised:
        sandbox.client("ssm").create_association(**_install(**change))
    assert _code(raised) == code


def test_limits_at_the_edge_are_accepted(sandbox):
    ssm = sandbox.client("ssm")
    targets = [{"Key": f"tag:K{i}", "Values": [f"v{j}" for j in range(50)]} for i in range(5)]
    created = ssm.create_association(
        **_install(Targets=targets, ScheduleExpression="rate(30 minutes)")
    )
    assert len(created["AssociationDescription"]["Targets"]) == 5


def test_package_documents_cannot_be_associated_directly(sandbox):
    publish_package(sandbox, "Acme", "1.0")
    with pytest.raises(ClientError) as raised:
        sandbox.client("ssm").create_association(
            Name="Acme", Targets=[{"Key": "InstanceIds", "Values": ["*"]}]
        )
    assert _code(raised) == "InvalidDocument"


def test_update_association_nulls_every_omitted_field_and_bumps_the_version(sandbox):
    ssm = sandbox.client("ssm")
    created = ssm.create_association(**_install(**FULL))["AssociationDescription"]
    association_id = created["AssociationId"]
    updated = ssm.update_association(
        AssociationId=association_id,
        Name=CONFIGURE,
        Parameters={"action": ["Install"], "name": ["Acme"]},
        Targets=[{"Key": "tag:App", "Values": ["Acme"]}],
    )["AssociationDescription"]
    assert updated["AssociationVersion"] == "2"
    for key in (
        "ScheduleExpression",
        "AssociationName",
        "MaxConcurrency",
        "MaxErrors",
        "ComplianceSeverity",
        "SyncCompliance",
    ):
        assert key not in updated, key
    assert updated["ApplyOnlyAtCronInterval"] is False
    # Even the targets go when omitted; omitted parameters fall back to the document's defaults,
    # so leaving out a required one is refused.
    bare = ssm.update_association(
        AssociationId=association_id, Parameters={"action": ["Install"], "name": ["Acme"]}
    )["AssociationDescription"]
    assert bare["AssociationVersion"] == "3"
    assert "Targets" not in bare
    assert bare["Name"] == CONFIGURE
    with pytest.raises(ClientError) as raised:
        ssm.update_association(AssociationId=association_id)
    assert _code(raised) == "InvalidParameters"
    versions = ssm.list_association_versions(AssociationId=association_id)["AssociationVersions"]
    assert [v["AssociationVersion"] for v in versions] == ["1", "2", "3"]
    assert versions[0]["ScheduleExpression"] == FULL["ScheduleExpression"]
    assert versions[0]["AssociationName"] == FULL["AssociationName"]
    old = ssm.describe_association(AssociationId=association_id, AssociationVersion="1")[
        "AssociationDescription"
    ]
    assert old["AssociationVersion"] == "1" and old["MaxErrors"] == "5"


def test_association_version_is_an_optimistic_check(sandbox):
    ssm = sandbox.client("ssm")
    association_id = ssm.create_association(**_install())["AssociationDescription"]["AssociationId"]
    ssm.update_association(AssociationId=association_id, AssociationVersion="1", **_install())
    with pytest.raises(ClientError) as raised:
        ssm.update_association(AssociationId=association_id, AssociationVersion="1", **_install())
    assert _code(raised) == "InvalidAssociationVersion"
    ssm.update_association(AssociationId=association_id, AssociationVersion="$LATEST", **_install())
    ssm.update_association(AssociationId=association_id, AssociationVersion="3", **_install())
    assert (
        ssm.describe_association(AssociationId=association_id)["AssociationDescription"][
            "AssociationVersion"
        ]
        == "4"
    )
    with pytest.raises(ClientError) as raised:
        ssm.describe_association(AssociationId=association_id, AssociationVersion="9")
    assert _code(raised) == "InvalidAssociationVersion"


def test_an_association_holds_at_most_a_thousand_versions(sandbox):
    ssm = sandbox.client("ssm")
    association_id = ssm.create_association(**_install())["AssociationDescription"]["AssociationId"]
    for _ in range(999):
        ssm.update_association(AssociationId=association_id, **_install())
    with pytest.raises(ClientError) as raised:
        ssm.update_association(AssociationId=association_id, **_install())
    assert _code(raised) == "AssociationVersionLimitExceeded"
    assert (
        ssm.describe_association(AssociationId=association_id)["AssociationDescription"][
            "AssociationVersion"
        ]
        == "1000"
    )


def test_unknown_associations_do_not_exist(sandbox):
    ssm = sandbox.client("ssm")
    missing = "00000000-0000-0000-0000-000000000000"
    for call in (
        lambda: ssm.describe_association(AssociationId=missing),
        lambda: ssm.update_association(AssociationId=missing, **_install()),
        lambda: ssm.delete_association(AssociationId=missing),
        lambda: ssm.list_association_versions(AssociationId=missing),
    ):
        with pytest.raises(ClientError) as raised:
            call()
        assert _code(raised) == "AssociationDoesNotExist"


def test_delete_association(sandbox):
    ssm = sandbox.client("ssm")
    association_id = ssm.create_association(**_install())["AssociationDescription"]["AssociationId"]
    ssm.delete_association(AssociationId=association_id)
    assert ssm.list_associations()["Associations"] == []


def test_list_associations_filters_and_paginates(sandbox):
    ssm = sandbox.client("ssm")
    ids = [
        ssm.create_association(**_install(f"App{i}", AssociationName=f"app-{i}"))[
            "AssociationDescription"
        ]["AssociationId"]
        for i in range(5)
    ]
    seen, token = [], None
    while True:
        page = ssm.list_associations(MaxResults=2, **({"NextToken": token} if token else {}))
        assert len(page["Associations"]) <= 2
        seen += [a["AssociationId"] for a in page["Associations"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == ids
    by_name = ssm.list_associations(
        AssociationFilterList=[{"key": "AssociationName", "value": "app-3"}]
    )["Associations"]
    assert [a["AssociationId"] for a in by_name] == [ids[3]]
    assert by_name[0]["Overview"]["Status"] == "Pending"
    by_document = ssm.list_associations(AssociationFilterList=[{"key": "Name", "value": CONFIGURE}])
    assert len(by_document["Associations"]) == 5
    assert (
        ssm.list_associations(
            AssociationFilterList=[{"key": "AssociationStatusName", "value": "Success"}]
        )["Associations"]
        == []
    )
    with pytest.raises(ClientError) as raised:
        ssm.list_associations(NextToken="not-a-token")
    assert _code(raised) == "InvalidNextToken"


def test_instance_association_status_is_pending_until_the_agent_runs(sandbox):
    online = add_instance(1, {"App": "Acme"})
    offline = add_instance(2, {"App": "Acme"}, ping_status="ConnectionLost")
    publish_package(sandbox, "Acme", "1.0")
    ssm = sandbox.client("ssm")
    association_id = ssm.create_association(**_install(AssociationName="acme"))[
        "AssociationDescription"
    ]["AssociationId"]
    before = ssm.describe_instance_associations_status(InstanceId=online)[
        "InstanceAssociationStatusInfos"
    ]
    assert [(s["AssociationId"], s["Status"]) for s in before] == [(association_id, "Pending")]
    run_agents(sandbox)
    after = ssm.describe_instance_associations_status(InstanceId=online)[
        "InstanceAssociationStatusInfos"
    ][0]
    assert after["Status"] == after["DetailedStatus"] == "Success"
    assert after["AssociationName"] == "acme" and after["DocumentVersion"] == "1"
    assert after["ExecutionSummary"].startswith("1 out of 1 plugin processed, 1 success")
    waiting = ssm.describe_instance_associations_status(InstanceId=offline)[
        "InstanceAssociationStatusInfos"
    ][0]
    assert waiting["Status"] == "Pending"
    overview = ssm.describe_association(AssociationId=association_id)["AssociationDescription"][
        "Overview"
    ]
    assert overview["AssociationStatusAggregatedCount"] == {"Success": 1, "Pending": 1}
    assert overview["Status"] == "Pending"
    with pytest.raises(ClientError) as raised:
        ssm.describe_instance_associations_status(InstanceId="mi-0123456789abcdef0")
    assert _code(raised) == "InvalidInstanceId"


def test_association_compliance_items_and_summaries(sandbox):
    good = add_instance(1, {"App": "Acme"})
    bad = add_instance(2, {"App": "Acme"})
    publish_package(sandbox, "Acme", "1.0")
    sandbox.admin.post(
        "agent/outcome", {"package": "Acme", "outcome": "failure", "instanceIds": [bad]}
    )
    ssm = sandbox.client("ssm")
    association_id = ssm.create_association(
        **_install(ComplianceSeverity="CRITICAL", AssociationName="acme")
    )["AssociationDescription"]["AssociationId"]
    assert (
        ssm.list_compliance_items(ResourceIds=[good], ResourceTypes=["ManagedInstance"])[
            "ComplianceItems"
        ]
        == []
    )
    run_agents(sandbox)
    item = ssm.list_compliance_items(ResourceIds=[good], ResourceTypes=["ManagedInstance"])[
        "ComplianceItems"
    ][0]
    assert (item["ComplianceType"], item["Id"], item["Status"], item["Severity"]) == (
        "Association",
        association_id,
        "COMPLIANT",
        "CRITICAL",
    )
    assert item["Details"] == {"DocumentName": CONFIGURE, "DocumentVersion": "1"}
    failing = ssm.list_compliance_items(
        ResourceIds=[bad],
        ResourceTypes=["ManagedInstance"],
        Filters=[{"Key": "ComplianceType", "Values": ["Association"], "Type": "EQUAL"}],
    )["ComplianceItems"]
    assert [i["Status"] for i in failing] == ["NON_COMPLIANT"]
    summaries = ssm.list_resource_compliance_summaries(
        Filters=[{"Key": "ComplianceType", "Values": ["Association"], "Type": "EQUAL"}]
    )["ResourceComplianceSummaryItems"]
    by_instance = {s["ResourceId"]: s for s in summaries}
    assert by_instance[good]["Status"] == "COMPLIANT"
    assert by_instance[bad]["Status"] == "NON_COMPLIANT"
    assert by_instance[bad]["OverallSeverity"] == "CRITICAL"
    assert by_instance[bad]["NonCompliantSummary"]["NonCompliantCount"] == 1
    assert by_instance[bad]["NonCompliantSummary"]["SeveritySummary"]["CriticalCount"] == 1
    only_bad = ssm.list_resource_compliance_summaries(
        Filters=[{"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"}]
    )
    assert [s["ResourceId"] for s in only_bad["ResourceComplianceSummaryItems"]] == [bad]
    with pytest.raises(ClientError) as raised:
        ssm.list_compliance_items(ResourceIds=[good], ResourceTypes=["Workspace"])
    assert _code(raised) == "InvalidResourceType"
    with pytest.raises(ClientError) as raised:
        ssm.list_compliance_items(
            ResourceIds=[good], Filters=[{"Key": "Colour", "Values": ["red"]}]
        )
    assert _code(raised) == "InvalidFilter"


def test_manual_sync_compliance_reports_nothing(sandbox):
    instance = add_instance(1, {"App": "Acme"})
    publish_package(sandbox, "Acme", "1.0")
    ssm = sandbox.client("ssm")
    ssm.create_association(**_install(SyncCompliance="MANUAL"))
    run_agents(sandbox)
    assert (
        ssm.list_compliance_items(ResourceIds=[instance], ResourceTypes=["ManagedInstance"])[
            "ComplianceItems"
        ]
        == []
    )


def test_association_tags(sandbox):
    ssm = sandbox.client("ssm")
    association_id = ssm.create_association(
        **_install(Tags=[{"Key": "fleet-controller/owner", "Value": "prod"}])
    )["AssociationDescription"]["AssociationId"]
    ssm.add_tags_to_resource(
        ResourceType="Association",
        ResourceId=association_id,
        Tags=[{"Key": "team", "Value": "euc"}],
    )
    ssm.remove_tags_from_resource(
        ResourceType="Association", ResourceId=association_id, TagKeys=["team"]
    )
    tags = ssm.list_tags_for_resource(ResourceType="Association", ResourceId=association_id)[
        "TagList"
    ]
    assert tags == [{"Key": "fleet-controller/owner", "Value": "prod"}]
    with pytest.raises(ClientError) as raised:
        ssm.list_tags_for_resource(
            ResourceType="Association", ResourceId="00000000-0000-0000-0000-000000000000"
        )
    assert _code(raised) == "InvalidResourceId"


def test_legacy_instance_association(sandbox):
    instance = add_instance(1)
    publish_package(sandbox, "Acme", "1.0")
    ssm = sandbox.client("ssm")
    created = ssm.create_association(
        Name=CONFIGURE, InstanceId=instance, Parameters={"action": ["Install"], "name": ["Acme"]}
    )
    assert created["AssociationDescription"]["InstanceId"] == instance
    with pytest.raises(ClientError) as raised:
        ssm.create_association(
            Name=CONFIGURE,
            InstanceId=instance,
            Parameters={"action": ["Install"], "name": ["Acme"]},
        )
    assert _code(raised) == "AssociationAlreadyExists"
    assert (
        ssm.describe_association(Name=CONFIGURE, InstanceId=instance)["AssociationDescription"][
            "AssociationId"
        ]
        == created["AssociationDescription"]["AssociationId"]
    )
    listed = ssm.list_associations(
        AssociationFilterList=[{"key": "InstanceId", "value": instance}]
    )["Associations"]
    assert len(listed) == 1
    with pytest.raises(ClientError) as raised:
        ssm.create_association(
            Name=CONFIGURE,
            InstanceId="mi-0123456789abcdef0",
            Parameters={"action": ["Install"], "name": ["Acme"]},
        )
    assert _code(raised) == "InvalidInstanceId"


def test_deleting_a_document_deletes_its_associations(sandbox):
    ssm = sandbox.client("ssm")
    content = {
        "schemaVersion": "2.2",
        "mainSteps": [
            {
                "action": "aws:runPowerShellScript",
                "name": "noop",
                "inputs": {"runCommand": ["exit 0"]},
            }
        ],
    }
    ssm.create_document(Name="Noop", Content=json.dumps(content), DocumentType="Command")
    ssm.create_association(Name="Noop", Targets=[{"Key": "InstanceIds", "Values": ["*"]}])
    ssm.delete_document(Name="Noop")
    assert ssm.list_associations()["Associations"] == []
