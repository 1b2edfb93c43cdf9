"""The simulated agents: when associations run, what installs do, and detection catching silence."""

from __future__ import annotations

import json

import pytest

from fleet_sandbox import agent as agent_module
from fleet_sandbox.client import AdminApiError
from fleet_sandbox.ssm_associations import store as association_store
from tests.sandbox._ssm_helpers import (
    ACCOUNT,
    APP_EXE,
    REGION,
    add_instance,
    admin_get,
    agent_state,
    create_detection_document,
    publish_package,
    run_agents,
)

CONFIGURE = "AWS-ConfigureAWSPackage"
ACME_EFFECTS = {
    "files": [{"path": APP_EXE, "version": "1.0.0", "size": 2048}],
    "registry": [
        {
            "hive": "HKLM",
            "key": "SOFTWARE\\Acme",
            "valueName": "DisplayVersion",
            "value": "1.0.0",
        }
    ],
    "services": [{"name": "AcmeSvc", "state": "Running", "startType": "Automatic"}],
}
ACME_RULES = json.dumps(
    {
        "allOf": [
            {"type": "file", "path": APP_EXE, "check": "version", "operator": "ge", "value": "1.0"},
            {"type": "service", "name": "AcmeSvc", "check": "state", "value": "Running"},
        ]
    }
)


@pytest.fixture(autouse=True)
def _responses_fit_their_shapes(sandbox):
    yield
    assert sandbox.admin.get("shape-violations")["violations"] == []


@pytest.fixture
def acme(sandbox):
    """One tagged Online instance and the Acme package whose installer leaves ACME_EFFECTS."""
    instance = add_instance(1, {"App": "Acme"})
    publish_package(sandbox, "Acme", "1.0.0")
    sandbox.admin.post("agent/effects", {"package": "Acme", "effects": ACME_EFFECTS})
    return instance


def _configure(ssm, action="Install", **extra):
    return ssm.create_association(
        Name=CONFIGURE,
        Parameters={"action": [action], "name": ["Acme"]},
        Targets=[{"Key": "tag:App", "Values": ["Acme"]}],
        **extra,
    )["AssociationDescription"]["AssociationId"]


def _detect(ssm, document, action="Install", rules=ACME_RULES, **extra):
    return ssm.create_association(
        Name=document,
        Parameters={"action": [action], "name": ["Acme"], "detectionRules": [rules]},
        Targets=[{"Key": "tag:App", "Values": ["Acme"]}],
        ComplianceSeverity="HIGH",
        **extra,
    )["AssociationDescription"]["AssociationId"]


def _status(ssm, instance, association_id):
    infos = ssm.describe_instance_associations_status(InstanceId=instance)[
        "InstanceAssociationStatusInfos"
    ]
    return next(i for i in infos if i["AssociationId"] == association_id)


def _runs(sandbox, association_id):
    return admin_get(sandbox, "agent/runs", associationId=association_id)


# --- the silent-failure core ---------------------------------------------------------------------


def test_silent_install_reports_success_while_the_app_is_missing(sandbox, acme):
    sandbox.admin.post("agent/outcome", {"package": "Acme", "outcome": "silent"})
    ssm = sandbox.client("ssm")
    association_id = _configure(ssm)
    run_agents(sandbox)
    assert _status(ssm, acme, association_id)["Status"] == "Success"
    overview = ssm.describe_association(AssociationId=association_id)["AssociationDescription"][
        "Overview"
    ]
    assert overview["Status"] == "Success"
    machine = agent_state(sandbox, acme)
    assert machine["distributorPackages"] == {"Acme": "1.0.0"}  # Distributor believes it
    assert machine["files"] == {} and machine["services"] == {}  # nothing was installed


def test_detection_document_reports_the_silent_failure_and_names_the_rule(sandbox, acme):
    sandbox.admin.post("agent/outcome", {"package": "Acme", "outcome": "silent"})
    ssm = sandbox.client("ssm")
    association_id = _detect(ssm, create_detection_document(sandbox))
    run_agents(sandbox)
    status = _status(ssm, acme, association_id)
    assert status["Status"] == "Failed"
    assert status["ErrorCode"] == "1"
    assert "not detected" in status["ExecutionSummary"]
    assert f"file {APP_EXE} version ge 1.0 (file missing)" in status["ExecutionSummary"]
    items = ssm.list_compliance_items(ResourceIds=[acme], ResourceTypes=["ManagedInstance"])[
        "ComplianceItems"
    ]
    assert [(i["Id"], i["Status"], i["Severity"]) for i in items] == [
        (association_id, "NON_COMPLIANT", "HIGH")
    ]
    overview = ssm.describe_association(AssociationId=association_id)["AssociationDescription"][
        "Overview"
    ]
    assert overview == {
        "Status": "Failed",
        "DetailedStatus": "Failed",
        "AssociationStatusAggregatedCount": {"Failed": 1},
    }
    steps = _runs(sandbox, association_id)["runs"][0]["steps"]
    assert [(s["name"], s["status"]) for s in steps] == [
        ("configurePackage", "Success"),
        ("detect", "Failed"),
    ]


def test_successful_install_is_detected_and_compliant(sandbox, acme):
    ssm = sandbox.client("ssm")
    association_id = _detect(ssm, create_detection_document(sandbox))
    run_agents(sandbox)
    assert _status(ssm, acme, association_id)["Status"] == "Success"
    machine = agent_state(sandbox, acme)
    assert machine["files"] == {
        "C:\\Program Files\\Acme": {"isDirectory": True},
        APP_EXE: {"version": "1.0.0.0", "size": 2048, "isDirectory": False},
    }
    assert machine["services"] == {
        "AcmeSvc": {"displayName": "AcmeSvc", "state": "Running", "startType": "Automatic"}
    }
    items = ssm.list_compliance_items(ResourceIds=[acme], ResourceTypes=["ManagedInstance"])[
        "ComplianceItems"
    ]
    assert items[0]["Status"] == "COMPLIANT"


def test_uninstall_removes_effects_and_a_silent_uninstall_is_still_detected(sandbox, acme):
    ssm = sandbox.client("ssm")
    document = create_detection_document(sandbox)
    install = _detect(ssm, document)
    run_agents(sandbox)
    ssm.delete_association(AssociationId=install)
    sandbox.admin.post("agent/outcome", {"package": "Acme", "outcome": "silent"})
    uninstall = _detect(ssm, document, action="Uninstall")
    run_agents(sandbox)
    status = _status(ssm, acme, uninstall)
    assert status["Status"] == "Failed"
    assert "still detected" in status["ExecutionSummary"]
    assert agent_state(sandbox, acme)["distributorPackages"] == {}
    # A real uninstall takes the files away and passes detection.
    sandbox.admin.post(
        "agent/state", {"instanceId": acme, "distributorPackages": {"Acme": "1.0.0"}}
    )
    sandbox.admin.post("agent/outcome", {"package": "Acme", "outcome": "success"})
    ssm.update_association(
        AssociationId=uninstall,
        Name=document,
        Parameters={"action": ["Uninstall"], "name": ["Acme"], "detectionRules": [ACME_RULES]},
        Targets=[{"Key": "tag:App", "Values": ["Acme"]}],
    )
    run_agents(sandbox)
    assert _status(ssm, acme, uninstall)["Status"] == "Success"
    # Like most uninstallers, it leaves the folder it created behind, empty.
    assert agent_state(sandbox, acme)["files"] == {"C:\\Program Files\\Acme": {"isDirectory": True}}


def test_failed_install_changes_nothing(sandbox, acme):
    sandbox.admin.post("agent/outcome", {"package": "Acme", "outcome": "failure"})
    ssm = sandbox.client("ssm")
    association_id = _configure(ssm)
    run_agents(sandbox)
    status = _status(ssm, acme, association_id)
    assert (status["Status"], status["ErrorCode"]) == ("Failed", "1")
    assert "aws:configurePackage failed" in status["ExecutionSummary"]
    assert agent_state(sandbox, acme)["distributorPackages"] == {}


def test_outcome_can_differ_per_instance(sandbox, acme):
    other = add_instance(2, {"App": "Acme"})
    sandbox.admin.post(
        "agent/outcome", {"package": "Acme", "outcome": "silent", "instanceIds": [other]}
    )
    ssm = sandbox.client("ssm")
    association_id = _detect(ssm, create_detection_document(sandbox))
    run_agents(sandbox)
    assert _status(ssm, acme, association_id)["Status"] == "Success"
    assert _status(ssm, other, association_id)["Status"] == "Failed"
    overview = ssm.describe_association(AssociationId=association_id)["AssociationDescription"][
        "Overview"
    ]
    assert overview["AssociationStatusAggregatedCount"] == {"Success": 1, "Failed": 1}


def test_invalid_rules_fail_the_step_with_the_rule_error(sandbox, acme):
    ssm = sandbox.client("ssm")
    bad = json.dumps({"type": "registry", "hive": "HKXX", "key": "a", "check": "exists"})
    association_id = _detect(ssm, create_detection_document(sandbox), rules=bad)
    run_agents(sandbox)
    status = _status(ssm, acme, association_id)
    assert status["Status"] == "Failed"
    assert "hive" in status["ExecutionSummary"]


def test_pinned_package_version_and_upgrade_through_update_association(sandbox, acme):
    publish_package(sandbox, "Acme", "1.1.0")
    ssm = sandbox.client("ssm")
    association_id = ssm.create_association(
        Name=CONFIGURE,
        Parameters={"action": ["Install"], "name": ["Acme"], "version": ["1.0.0"]},
        Targets=[{"Key": "tag:App", "Values": ["Acme"]}],
    )["AssociationDescription"]["AssociationId"]
    run_agents(sandbox)
    assert agent_state(sandbox, acme)["distributorPackages"] == {"Acme": "1.0.0"}
    ssm.update_association(
        AssociationId=association_id,
        Name=CONFIGURE,
        Parameters={"action": ["Install"], "name": ["Acme"], "version": ["1.1.0"]},
        Targets=[{"Key": "tag:App", "Values": ["Acme"]}],
    )
    runs = run_agents(sandbox)
    assert [r["associationVersion"] for r in runs] == [2]
    assert agent_state(sandbox, acme)["distributorPackages"] == {"Acme": "1.1.0"}
    assert _status(ssm, acme, association_id)["AssociationVersion"] == "2"


# --- when associations are due ------------------------------------------------------------------


def test_created_association_runs_once_and_not_again_until_triggered(sandbox, acme):
    ssm = sandbox.client("ssm")
    association_id = _configure(ssm)
    assert len(run_agents(sandbox)) == 1
    assert run_agents(sandbox) == []
    assert _runs(sandbox, association_id)["counts"] == {association_id: 1}


def test_update_triggers_one_run_unless_apply_only_at_cron_interval(sandbox, acme):
    ssm = sandbox.client("ssm")
    association_id = _configure(ssm, ScheduleExpression="cron(0 8 ? * * *)")
    run_agents(sandbox)
    common = {
        "AssociationId": association_id,
        "Name": CONFIGURE,
        "Parameters": {"action": ["Install"], "name": ["Acme"]},
        "Targets": [{"Key": "tag:App", "Values": ["Acme"]}],
        "ScheduleExpression": "cron(0 8 ? * * *)",
    }
    ssm.update_association(**common)
    assert len(run_agents(sandbox)) == 1
    ssm.update_association(**common, ApplyOnlyAtCronInterval=True)
    assert run_agents(sandbox) == []
    assert _runs(sandbox, association_id)["counts"] == {association_id: 2}


def test_new_default_document_version_reruns_associations_that_follow_default(sandbox, acme):
    ssm = sandbox.client("ssm")
    document = create_detection_document(sandbox)
    follows_default = _detect(ssm, document)
    pinned = _detect(ssm, document, DocumentVersion="1")
    run_agents(sandbox)
    content = json.loads(ssm.get_document(Name=document)["Content"])
    content["description"] = "second revision"
    ssm.update_document(Name=document, Content=json.dumps(content), DocumentVersion="$LATEST")
    assert run_agents(sandbox) == []  # a new version alone is not the default
    ssm.update_document_default_version(Name=document, DocumentVersion="2")
    runs = run_agents(sandbox)
    assert [(r["associationId"], r["documentVersion"]) for r in runs] == [(follows_default, "2")]
    assert _runs(sandbox, pinned)["counts"] == {pinned: 1}


def test_cron_schedule_ticks_on_the_simulated_clock(sandbox, acme):
    ssm = sandbox.client("ssm")
    association_id = _configure(ssm, ScheduleExpression="cron(0 8 ? * * *)")
    run_agents(sandbox)
    sandbox.admin.advance_clock(60)
    assert run_agents(sandbox) == []
    sandbox.admin.advance_clock(24 * 3600)
    assert len(run_agents(sandbox)) == 1
    assert run_agents(sandbox) == []
    assert _runs(sandbox, association_id)["counts"] == {association_id: 2}


def test_apply_only_at_cron_interval_waits_for_the_first_tick(sandbox, acme):
    ssm = sandbox.client("ssm")
    association_id = _configure(
        ssm, ScheduleExpression="cron(0 8 ? * * *)", ApplyOnlyAtCronInterval=True
    )
    assert run_agents(sandbox) == []
    assert _status(ssm, acme, association_id)["Status"] == "Pending"
    sandbox.admin.advance_clock(24 * 3600)
    assert len(run_agents(sandbox)) == 1
    assert _status(ssm, acme, association_id)["Status"] == "Success"


def test_rate_schedule(sandbox, acme):
    ssm = sandbox.client("ssm")
    association_id = _configure(ssm, ScheduleExpression="rate(30 minutes)")
    run_agents(sandbox)
    sandbox.admin.advance_clock(20 * 60)
    assert run_agents(sandbox) == []
    sandbox.admin.advance_clock(11 * 60)
    assert len(run_agents(sandbox)) == 1
    sandbox.admin.advance_clock(29 * 60)
    assert len(run_agents(sandbox)) == 1
    assert _runs(sandbox, association_id)["counts"] == {association_id: 3}


def test_offline_instances_wait_and_new_targets_run(sandbox, acme):
    from fleet_sandbox.state import fleet_state

    offline = add_instance(2, {"App": "Acme"}, ping_status="ConnectionLost")
    untagged = add_instance(3)
    ssm = sandbox.client("ssm")
    association_id = _configure(ssm)
    assert [r["instanceId"] for r in run_agents(sandbox)] == [acme]
    assert _status(ssm, offline, association_id)["Status"] == "Pending"
    fleet = fleet_state(ACCOUNT, REGION)
    fleet.instances[offline].ping_status = "Online"
    fleet.instances[untagged].tags["App"] = "Acme"
    assert sorted(r["instanceId"] for r in run_agents(sandbox)) == [offline, untagged]
    overview = ssm.describe_association(AssociationId=association_id)["AssociationDescription"][
        "Overview"
    ]
    assert overview["AssociationStatusAggregatedCount"] == {"Success": 3}


def test_run_due_everywhere_covers_every_region(sandbox, acme):
    ssm = sandbox.client("ssm")
    _configure(ssm)
    records = agent_module.run_due_everywhere()
    assert [(r.instance_id, r.status) for r in records] == [(acme, "Success")]
    assert association_store(ACCOUNT, REGION).associations  # the state it ran from is the sandbox's


def test_agent_loop_starts_and_stops_cleanly():
    loop = agent_module.AgentLoop(interval=3600)
    loop.start()
    thread = loop._thread
    assert thread is not None and thread.is_alive()
    loop.stop()
    assert not thread.is_alive()


# --- admin API and scenario ----------------------------------------------------------------------


def test_agent_state_can_be_set_and_read(sandbox, acme):
    sandbox.admin.post(
        "agent/state",
        {
            "instanceId": acme,
            "files": [{"path": "C:\\Tools\\tool.exe", "version": "3.1"}],
            "msiProducts": [
                {"productCode": "{1A2B3C4D-0000-1111-2222-333344445555}", "version": "3.1"}
            ],
            "scripts": [{"script": "Get-Tool", "exitCode": 0, "stdout": "ok"}],
        },
    )
    machine = agent_state(sandbox, acme)
    assert machine["files"]["C:\\Tools\\tool.exe"]["version"] == "3.1.0.0"
    assert machine["msiProducts"] == {
        "{1A2B3C4D-0000-1111-2222-333344445555}": {"state": "installed", "version": "3.1"}
    }
    uninstall_key = (
        "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\"
        "{1A2B3C4D-0000-1111-2222-333344445555}"
    )
    assert machine["registry"][uninstall_key]["WindowsInstaller"] == {
        "type": "REG_DWORD",
        "value": 1,
    }
    assert len(machine["scripts"]) == 1
    assert machine["agentVersion"] == "3.3.3572.0"
    cleared = sandbox.admin.post(
        "agent/state", {"instanceId": acme, "replace": True, "agentVersion": "3.2.1377.0"}
    )
    assert cleared["files"] == {} and cleared["msiProducts"] == {}
    assert cleared["agentVersion"] == "3.2.1377.0"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("agent/outcome", {"package": "Acme", "outcome": "sometimes"}, 400),
        (
            "agent/effects",
            {"package": "Acme", "effects": {"files": [{"path": "x", "colour": 1}]}},
            400,
        ),
        (
            "agent/effects",
            {"package": "Acme", "effects": {"registry": [{"hive": "HKXX", "key": "a"}]}},
            400,
        ),
        ("agent/state", {"instanceId": "mi-0123456789abcdef0"}, 404),
        (
            "agent/effects",
            {
                "package": "Acme",
                "effects": {
                    "registry": [{"key": "a", "valueName": "v", "type": "REG_DWORD", "value": -1}]
                },
            },
            400,
        ),
        ("agent/settings", {"installerBusyAfterBootSeconds": -5}, 400),
    ],
)
def test_admin_api_rejects_bad_input(sandbox, path, body, status):
    with pytest.raises(AdminApiError) as raised:
        sandbox.admin.post(path, body)
    assert raised.value.status == status


def test_scenario_packages_section(sandbox, acme):
    sandbox.admin.post(
        "scenario",
        {
            "packages": {
                "Acme": {
                    "outcome": "silent",
                    "instanceOutcomes": {acme: "failure"},
                    "effects": ACME_EFFECTS,
                }
            }
        },
    )
    configured = sandbox.admin.get("agent/packages")["packages"]["Acme"]
    assert configured["outcome"] == "silent"
    assert configured["instanceOutcomes"] == {acme: "failure"}
    assert configured["effects"]["files"][0]["path"] == APP_EXE
    with pytest.raises(AdminApiError):
        sandbox.admin.post(
            "scenario", {"packages": {"Acme": {"outcome": "silent", "colour": "red"}}}
        )


# --- fidelity ------------------------------------------------------------------------------------

ADDED_OPERATIONS = {
    "CreateDocument",
    "UpdateDocument",
    "DescribeDocument",
    "GetDocument",
    "ListDocuments",
    "ListDocumentVersions",
    "UpdateDocumentDefaultVersion",
    "DeleteDocument",
    "CreateAssociation",
    "UpdateAssociation",
    "DescribeAssociation",
    "ListAssociations",
    "ListAssociationVersions",
    "DescribeInstanceAssociationsStatus",
    "ListComplianceItems",
    "ListResourceComplianceSummaries",
    "DeleteAssociation",
}


def test_every_added_operation_answers_within_its_output_shape(sandbox, acme):
    sandbox.admin.reset_calls()
    ssm = sandbox.client("ssm")
    publish_package(sandbox, "Acme", "1.1.0")
    document = create_detection_document(sandbox)
    ssm.describe_document(Name="Acme", VersionName="1.1.0")
    ssm.get_document(Name="Acme", DocumentVersion="2")
    ssm.list_documents()
    ssm.list_document_versions(Name="Acme")
    ssm.update_document_default_version(Name="Acme", DocumentVersion="2")
    association_id = _detect(
        ssm,
        document,
        ScheduleExpression="cron(0 8 ? * * *)",
        AssociationName="acme",
        MaxConcurrency="50%",
        MaxErrors="1",
        SyncCompliance="AUTO",
        Tags=[{"Key": "owner", "Value": "fleet"}],
    )
    run_agents(sandbox)
    ssm.update_association(
        AssociationId=association_id,
        AssociationVersion="1",
        Name=document,
        Parameters={"action": ["Install"], "name": ["Acme"], "detectionRules": [ACME_RULES]},
        Targets=[{"Key": "tag:App", "Values": ["Acme"]}],
        ScheduleExpression="cron(0 8 ? * * *)",
    )
    run_agents(sandbox)
    ssm.describe_association(AssociationId=association_id)
    ssm.list_associations()
    ssm.list_association_versions(AssociationId=association_id)
    ssm.describe_instance_associations_status(InstanceId=acme)
    ssm.list_compliance_items(ResourceIds=[acme], ResourceTypes=["ManagedInstance"])
    ssm.list_resource_compliance_summaries()
    ssm.delete_association(AssociationId=association_id)
    ssm.delete_document(Name="Acme", DocumentVersion="1")
    answered = {
        row["operation"]
        for row in sandbox.admin.calls()
        if row["service"] == "ssm" and row["outcome"] == "200"
    }
    missing = ADDED_OPERATIONS - answered
    assert not missing
    assert sandbox.admin.get("shape-violations")["violations"] == []
