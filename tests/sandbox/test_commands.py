"""Run Command against the simulated fleet: targets, waves, error controls, statuses, output."""

from __future__ import annotations

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.sandbox._ssm_helpers import add_instance, publish_package
from tests.sandbox.fleetkit import registered_fleet

NO_RETRY = Config(retries={"total_max_attempts": 1})


def _tick(sandbox, rounds=1):
    return sandbox.admin.post("commands/run", {"rounds": rounds})["changed"]


def _send(sandbox, commands, **extra):
    arguments = {
        "DocumentName": "AWS-RunPowerShellScript",
        "Parameters": {"commands": commands},
        "Targets": [{"Key": "tag:Team", "Values": ["euc"]}],
    }
    arguments.update(extra)
    arguments = {k: v for k, v in arguments.items() if v is not None}
    return sandbox.client("ssm", config=NO_RETRY).send_command(**arguments)["Command"]


def _invocations(sandbox, command_id, details=False):
    rows = sandbox.client("ssm").list_command_invocations(CommandId=command_id, Details=details)
    return {row["InstanceId"]: row for row in rows["CommandInvocations"]}


def _command(sandbox, command_id):
    return sandbox.client("ssm").list_commands(CommandId=command_id)["Commands"][0]


def test_a_command_on_a_tag_runs_on_every_tagged_instance_and_reports_output(sandbox):
    _, instances, _ = registered_fleet(sandbox, 3, tags={"Team": "euc"})
    sent = _send(sandbox, ["Write-Output 'hello from the fleet'"], Comment="greet")
    assert sent["TargetCount"] == 3
    assert (sent["Status"], sent["StatusDetails"]) == ("Pending", "Pending")
    assert {r["Status"] for r in _invocations(sandbox, sent["CommandId"]).values()} == {"Pending"}
    _tick(sandbox)  # sent: In Progress
    assert _command(sandbox, sent["CommandId"])["Status"] == "InProgress"
    assert {r["Status"] for r in _invocations(sandbox, sent["CommandId"]).values()} == {
        "InProgress"
    }
    _tick(sandbox)  # finished
    command = _command(sandbox, sent["CommandId"])
    assert (command["Status"], command["CompletedCount"], command["ErrorCount"]) == (
        "Success",
        3,
        0,
    )
    rows = _invocations(sandbox, sent["CommandId"], details=True)
    assert set(rows) == set(instances)
    plugin = rows[instances[0]]["CommandPlugins"][0]
    assert (plugin["Name"], plugin["Status"], plugin["ResponseCode"]) == (
        "runPowerShellScript",
        "Success",
        0,
    )
    assert plugin["Output"] == "hello from the fleet"
    result = sandbox.client("ssm").get_command_invocation(
        CommandId=sent["CommandId"], InstanceId=instances[0]
    )
    assert result["StandardOutputContent"] == "hello from the fleet"
    assert result["Status"] == "Success" and result["ResponseCode"] == 0
    assert result["ExecutionElapsedTime"].startswith("PT")
    assert result["Comment"] == "greet"


def test_max_concurrency_sends_the_command_in_waves(sandbox):
    registered_fleet(sandbox, 3, tags={"Team": "euc"})
    sent = _send(sandbox, ["Write-Output ok"], MaxConcurrency="1")
    seen = []
    for _ in range(4):
        _tick(sandbox)
        statuses = sorted(r["Status"] for r in _invocations(sandbox, sent["CommandId"]).values())
        seen.append(statuses)
        assert statuses.count("InProgress") <= 1
    assert seen[0] == ["InProgress", "Pending", "Pending"]
    assert seen[1] == ["InProgress", "Pending", "Success"]
    assert seen[3] == ["Success", "Success", "Success"]


def test_past_max_errors_the_rest_is_terminated_and_the_command_fails(sandbox):
    registered_fleet(sandbox, 4, tags={"Team": "euc"})
    sent = _send(sandbox, ["Write-Output broken", "exit 3"], MaxConcurrency="1", MaxErrors="1")
    _tick(sandbox, rounds=10)
    rows = _invocations(sandbox, sent["CommandId"], details=True).values()
    details = sorted(r["StatusDetails"] for r in rows)
    assert details == ["Failed", "Failed", "Terminated", "Terminated"]
    failed = next(r for r in rows if r["StatusDetails"] == "Failed")
    assert failed["CommandPlugins"][0]["ResponseCode"] == 3
    command = _command(sandbox, sent["CommandId"])
    assert (command["Status"], command["StatusDetails"], command["ErrorCount"]) == (
        "Failed",
        "Failed",
        2,
    )


def test_failures_within_max_errors_leave_the_command_incomplete(sandbox):
    registered_fleet(sandbox, 2, tags={"Team": "euc"})
    sent = _send(sandbox, ["throw 'disk full'"], MaxErrors="5")
    _tick(sandbox, rounds=3)
    command = _command(sandbox, sent["CommandId"])
    assert (command["Status"], command["StatusDetails"]) == ("Failed", "Incomplete")
    instance = next(iter(_invocations(sandbox, sent["CommandId"])))
    result = sandbox.client("ssm").get_command_invocation(
        CommandId=sent["CommandId"], InstanceId=instance
    )
    assert result["StandardErrorContent"] == "disk full" and result["ResponseCode"] == 1


def test_an_offline_instance_is_delayed_then_its_delivery_times_out(sandbox):
    ids, instances, _ = registered_fleet(sandbox, 1, tags={"Team": "euc"})
    sandbox.admin.post("fleet/stop", {"workspaceIds": ids})
    sent = _send(sandbox, ["Write-Output late"], TimeoutSeconds=30)
    _tick(sandbox)
    assert _invocations(sandbox, sent["CommandId"])[instances[0]]["Status"] == "Delayed"
    assert sent["ExpiresAfter"] > sent["RequestedDateTime"]
    sandbox.admin.advance_clock(3700)
    _tick(sandbox)
    row = _invocations(sandbox, sent["CommandId"])[instances[0]]
    assert (row["Status"], row["StatusDetails"]) == ("TimedOut", "Delivery Timed Out")
    command = _command(sandbox, sent["CommandId"])
    assert command["Status"] == "TimedOut" and command["DeliveryTimedOutCount"] == 1


def test_a_configured_script_result_is_what_the_machine_answers(sandbox):
    _, instances, _ = registered_fleet(sandbox, 1, tags={"Team": "euc"})
    script = "Get-Service Spooler | Select -Expand Status"
    sandbox.admin.post(
        "agent/state",
        {
            "instanceId": instances[0],
            "scripts": [{"script": script, "exitCode": 0, "stdout": "Running"}],
        },
    )
    sent = _send(sandbox, [script], InstanceIds=instances, Targets=None)
    _tick(sandbox, rounds=2)
    result = sandbox.client("ssm").get_command_invocation(
        CommandId=sent["CommandId"], InstanceId=instances[0]
    )
    assert result["StandardOutputContent"] == "Running"


def test_a_package_command_installs_through_the_same_path_as_associations(sandbox):
    _, instances, _ = registered_fleet(sandbox, 2, tags={"Team": "euc"})
    publish_package(sandbox, "Acme", "1.0.0")
    sent = sandbox.client("ssm").send_command(
        DocumentName="AWS-ConfigureAWSPackage",
        Parameters={"action": ["Install"], "name": ["Acme"]},
        Targets=[{"Key": "tag:Team", "Values": ["euc"]}],
    )["Command"]
    _tick(sandbox, rounds=2)
    assert _command(sandbox, sent["CommandId"])["Status"] == "Success"
    state = sandbox.admin.get("agent/state", instanceId=instances[0])
    assert state["distributorPackages"] == {"Acme": "1.0.0"}


def test_cancel_stops_what_has_not_run(sandbox):
    registered_fleet(sandbox, 2, tags={"Team": "euc"})
    sent = _send(sandbox, ["Write-Output never"])
    sandbox.client("ssm").cancel_command(CommandId=sent["CommandId"])
    assert {r["Status"] for r in _invocations(sandbox, sent["CommandId"]).values()} == {"Cancelled"}
    assert _command(sandbox, sent["CommandId"])["Status"] == "Cancelled"
    assert _tick(sandbox) == 0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"DocumentName": "No-Such-Document"}, "InvalidDocument"),
        ({"DocumentName": "Acme", "Parameters": {}}, "InvalidDocument"),
        ({"DocumentVersion": "9"}, "InvalidDocumentVersion"),
        ({"Parameters": {}}, "InvalidParameters"),
        ({"Parameters": {"commands": ["x"], "colour": ["red"]}}, "InvalidParameters"),
        ({"Targets": None, "InstanceIds": ["mi-0123456789abcdef0"]}, "InvalidInstanceId"),
        ({"Targets": None}, "ValidationException"),
        ({"InstanceIds": ["mi-0123456789abcdef0"]}, "ValidationException"),
        ({"MaxConcurrency": "0"}, "ValidationException"),
        (
            {"DocumentName": "AWS-RunShellScript", "Targets": None, "InstanceIds": "FIRST"},
            "UnsupportedPlatformType",
        ),
    ],
)
def test_bad_commands_are_refused_and_nothing_is_sent(sandbox, change, code):
    _, instances, _ = registered_fleet(sandbox, 1, tags={"Team": "euc"})
    publish_package(sandbox, "Acme", "1.0.0")
    arguments = {
        "DocumentName": "AWS-RunPowerShellScript",
        "Parameters": {"commands": ["Write-Output x"]},
        "Targets": [{"Key": "tag:Team", "Values": ["euc"]}],
        **change,
    }
    if arguments.get("InstanceIds") == "FIRST":
        arguments["InstanceIds"] = instances
    arguments = {k: v for k, v in arguments.items() if v is not None}
    with pytest.raises(ClientError) as raised:
        sandbox.client("ssm", config=NO_RETRY).send_command(**arguments)
    assert raised.value.response["Error"]["Code"] == code
    assert sandbox.client("ssm").list_commands()["Commands"] == []


def test_a_multi_step_invocation_needs_a_plugin_name(sandbox):
    _, instances, _ = registered_fleet(sandbox, 1, tags={"Team": "euc"})
    ssm = sandbox.client("ssm", config=NO_RETRY)
    sent = ssm.send_command(
        DocumentName="AWS-RunPatchBaseline",
        Parameters={"Operation": ["Scan"]},
        InstanceIds=instances,
    )["Command"]
    _tick(sandbox, rounds=2)
    with pytest.raises(ClientError) as raised:
        ssm.get_command_invocation(CommandId=sent["CommandId"], InstanceId=instances[0])
    assert raised.value.response["Error"]["Code"] == "InvalidPluginName"
    linux_step = ssm.get_command_invocation(
        CommandId=sent["CommandId"], InstanceId=instances[0], PluginName="PatchLinux"
    )
    assert linux_step["Status"] == "Success"  # skipped on Windows: precondition
    windows_step = ssm.get_command_invocation(
        CommandId=sent["CommandId"], InstanceId=instances[0], PluginName="PatchWindows"
    )
    assert "Patch Scan: 0 missing" in windows_step["StandardOutputContent"]


def test_list_commands_filters_and_unknown_ids(sandbox):
    registered_fleet(sandbox, 1, tags={"Team": "euc"})
    first = _send(sandbox, ["Write-Output one"])
    _tick(sandbox, rounds=2)
    second = _send(sandbox, ["Write-Output two"])
    ssm = sandbox.client("ssm", config=NO_RETRY)
    listed = [c["CommandId"] for c in ssm.list_commands()["Commands"]]
    assert listed == [second["CommandId"], first["CommandId"]]
    done = ssm.list_commands(Filters=[{"key": "Status", "value": "Success"}])["Commands"]
    assert [c["CommandId"] for c in done] == [first["CommandId"]]
    running = ssm.list_commands(Filters=[{"key": "ExecutionStage", "value": "Executing"}])
    assert [c["CommandId"] for c in running["Commands"]] == [second["CommandId"]]
    with pytest.raises(ClientError) as raised:
        ssm.list_commands(CommandId="00000000-0000-0000-0000-000000000000")
    assert raised.value.response["Error"]["Code"] == "InvalidCommandId"
    with pytest.raises(ClientError) as raised:
        ssm.get_command_invocation(CommandId=first["CommandId"], InstanceId=add_instance(9))
    assert raised.value.response["Error"]["Code"] == "InvocationDoesNotExist"
