"""An admin's day against the sandbox, with the AWS CLI: a client nobody here wrote.

Each step runs ``aws`` (awscli, from the dev extra) as a subprocess with ``--endpoint-url`` and
checks the JSON it prints: a patch-scan association, an inventory query for an application, Run
Command on a tag, compliance summaries, and a SecureString read without decryption.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.sandbox.fleetkit import registered_fleet

UNINSTALL = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\ContosoNotes"


@pytest.fixture
def aws(sandbox, tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_PAGER": "",
    }

    def run(*arguments: str) -> Any:
        command = [sys.executable, "-m", "awscli", *arguments, "--endpoint-url", sandbox.endpoint]
        command += ["--output", "json"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (arguments, done.stderr)
        return json.loads(done.stdout) if done.stdout.strip() else None

    return run


def test_an_admins_day_with_the_aws_cli(sandbox, aws):
    _, instances, _ = registered_fleet(sandbox, 3, tags={"Team": "euc"})
    sandbox.admin.post(
        "agent/state",
        {
            "instanceId": instances[0],
            "registry": [
                {
                    "hive": "HKLM",
                    "key": UNINSTALL,
                    "valueName": "DisplayName",
                    "value": "Contoso Notes",
                },
                {"hive": "HKLM", "key": UNINSTALL, "valueName": "DisplayVersion", "value": "8.1.4"},
            ],
        },
    )
    sandbox.admin.post(
        "patches", {"instanceIds": [instances[1]], "missing": {"KB5031364": "Important"}}
    )

    # 1. A nightly patch scan for the team's WorkSpaces.
    scan = aws(
        "ssm",
        "create-association",
        "--name",
        "AWS-RunPatchBaseline",
        "--association-name",
        "nightly-scan",
        "--parameters",
        "Operation=Scan",
        "--targets",
        "Key=tag:Team,Values=euc",
        "--schedule-expression",
        "cron(0 2 ? * * *)",
        "--compliance-severity",
        "HIGH",
    )["AssociationDescription"]
    assert scan["Name"] == "AWS-RunPatchBaseline"
    assert scan["Parameters"] == {"Operation": ["Scan"]}
    assert scan["Overview"]["Status"] == "Pending"
    assert scan["Overview"]["AssociationStatusAggregatedCount"] == {"Pending": 3}

    # 2. Inventory, then which machines have Contoso Notes.
    aws(
        "ssm",
        "create-association",
        "--name",
        "AWS-GatherSoftwareInventory",
        "--targets",
        "Key=InstanceIds,Values=*",
        "--schedule-expression",
        "rate(12 hours)",
    )
    sandbox.admin.post("agent/run")
    found = aws(
        "ssm",
        "get-inventory",
        "--filters",
        "Key=AWS:Application.Name,Values=Contoso Notes,Type=Equal",
    )["Entities"]
    assert [entity["Id"] for entity in found] == [instances[0]]
    assert found[0]["Data"]["AWS:InstanceInformation"]["Content"][0]["PlatformType"] == "Windows"
    entries = aws(
        "ssm",
        "list-inventory-entries",
        "--instance-id",
        instances[0],
        "--type-name",
        "AWS:Application",
    )
    assert entries["TypeName"] == "AWS:Application"
    assert [(e["Name"], e["Version"]) for e in entries["Entries"]] == [("Contoso Notes", "8.1.4")]

    # 3. Run Command on the tag.
    sent = aws(
        "ssm",
        "send-command",
        "--document-name",
        "AWS-RunPowerShellScript",
        "--targets",
        "Key=tag:Team,Values=euc",
        "--parameters",
        'commands=["Write-Output ready"]',
        "--comment",
        "check the team's WorkSpaces",
        "--max-concurrency",
        "2",
    )["Command"]
    assert (sent["TargetCount"], sent["Status"], sent["MaxConcurrency"]) == (3, "Pending", "2")
    sandbox.admin.post("commands/run", {"rounds": 4})
    invocations = aws(
        "ssm", "list-command-invocations", "--command-id", sent["CommandId"], "--details"
    )["CommandInvocations"]
    assert sorted(i["InstanceId"] for i in invocations) == sorted(instances)
    assert {i["Status"] for i in invocations} == {"Success"}
    assert {i["CommandPlugins"][0]["Output"] for i in invocations} == {"ready"}
    one = aws(
        "ssm",
        "get-command-invocation",
        "--command-id",
        sent["CommandId"],
        "--instance-id",
        instances[2],
    )
    assert (one["Status"], one["ResponseCode"], one["StandardOutputContent"]) == (
        "Success",
        0,
        "ready",
    )
    listed = aws("ssm", "list-commands", "--command-id", sent["CommandId"])["Commands"][0]
    assert (listed["Status"], listed["CompletedCount"], listed["ErrorCount"]) == ("Success", 3, 0)

    # 4. Compliance: one WorkSpace misses a patch.
    summaries = {
        s["ComplianceType"]: s
        for s in aws("ssm", "list-compliance-summaries")["ComplianceSummaryItems"]
    }
    assert summaries["Patch"]["NonCompliantSummary"]["NonCompliantCount"] == 1
    assert summaries["Patch"]["NonCompliantSummary"]["SeveritySummary"]["HighCount"] == 1
    assert summaries["Patch"]["CompliantSummary"]["CompliantCount"] == 2
    assert summaries["Association"]["CompliantSummary"]["CompliantCount"] == 3
    resources = aws(
        "ssm",
        "list-resource-compliance-summaries",
        "--filters",
        "Key=ComplianceType,Values=Patch,Type=EQUAL",
    )["ResourceComplianceSummaryItems"]
    non_compliant = [r["ResourceId"] for r in resources if r["Status"] == "NON_COMPLIANT"]
    assert non_compliant == [instances[1]]
    status = aws(
        "ssm",
        "describe-instance-information",
        "--filters",
        "Key=AssociationStatus,Values=Success",
    )["InstanceInformationList"]
    assert len(status) == 3 and all(i["SourceType"] == "AWS::SSM::ManagedInstance" for i in status)

    # 5. A SecureString read without decryption shows no secret.
    aws(
        "ssm",
        "put-parameter",
        "--name",
        "/euc/service-account",
        "--type",
        "SecureString",
        "--value",
        "Tr0ub4dor&3",
    )
    hidden = aws("ssm", "get-parameter", "--name", "/euc/service-account")["Parameter"]
    assert hidden["Type"] == "SecureString"
    assert "Tr0ub4dor" not in hidden["Value"]
    clear = aws("ssm", "get-parameter", "--name", "/euc/service-account", "--with-decryption")[
        "Parameter"
    ]
    assert clear["Value"] == "Tr0ub4dor&3"


def test_the_cli_sees_aws_shaped_errors(sandbox, aws, tmp_path):
    env_fail = subprocess.run(
        [
            sys.executable,
            "-m",
            "awscli",
            "ssm",
            "send-command",
            "--document-name",
            "No-Such-Document",
            "--instance-ids",
            "mi-00000000000000001",
            "--endpoint-url",
            sandbox.endpoint,
        ],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "config"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert env_fail.returncode == 255  # awscli v1: a service error
    assert "InvalidDocument" in env_fail.stderr
