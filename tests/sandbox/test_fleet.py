"""The fleet simulator (admin API, scenario sections, auto-registration, ``run_sandbox``) and the
fidelity check over every operation this part of the sandbox serves."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import botocore.exceptions
import pytest
from botocore.config import Config

from fleet_sandbox import extension
from fleet_sandbox.client import AdminApiError
from fleet_sandbox.fleet import AutoRegistrar
from fleet_sandbox.main import DEFAULT_REGISTRATION_PARAMETER
from fleet_sandbox.shapes import validate_output
from tests.sandbox.fleetkit import (
    PARAMETER,
    activate,
    boot,
    error_code,
    fleet_row,
    ping_status,
    publish,
    registered_fleet,
    workspaces,
)

SCENARIO = Path(__file__).parent / "scenarios" / "fleet.yaml"


def test_created_workspaces_are_listed_with_their_identity(sandbox):
    ids = workspaces(sandbox, 3, tags={"team": "euc"})
    listing = sandbox.admin.get("fleet")
    rows = {r["workspaceId"]: r for r in listing["workspaces"]}
    assert sorted(rows) == sorted(ids)
    for row in rows.values():
        assert row["state"] == "AVAILABLE"
        assert row["computerName"].startswith("WSAMZN-") and row["ipAddress"]
        assert row["instanceId"] is None and row["instanceIds"] == []
    tags = sandbox.client("workspaces").describe_tags(ResourceId=ids[0])["TagList"]
    assert tags == [{"Key": "team", "Value": "euc"}]


@pytest.mark.parametrize(
    "body",
    [
        {"count": 0},
        {"count": "3"},
        {"count": 1, "colour": "blue"},
        {"count": 1, "os": "WINDOWS_95"},
        {"count": 1, "runningMode": "SOMETIMES"},
        {"count": 1, "tags": ["a"]},
        {"count": 1, "directoryId": "d-xyz"},
    ],
)
def test_bad_workspace_groups_are_refused(sandbox, body):
    with pytest.raises(AdminApiError) as raised:
        sandbox.admin.post("fleet/workspaces", body)
    assert raised.value.status == 400
    assert sandbox.admin.get("fleet")["workspaces"] == []


def test_a_named_directory_is_created_on_first_use(sandbox):
    finance = workspaces(sandbox, 2, directoryId="d-9067a1b2c3")
    engineering = workspaces(sandbox, 1, directoryId="d-9067d4e5f6")
    finance += workspaces(sandbox, 1, directoryId="d-9067a1b2c3")
    client = sandbox.client("workspaces")
    directories = client.describe_workspace_directories()["Directories"]
    assert sorted(d["DirectoryId"] for d in directories) == ["d-9067a1b2c3", "d-9067d4e5f6"]

    def in_directory(directory_id):
        found = client.describe_workspaces(DirectoryId=directory_id)["Workspaces"]
        return sorted(w["WorkspaceId"] for w in found), {
            w["IpAddress"].split(".")[1] for w in found
        }

    assert in_directory("d-9067a1b2c3")[0] == sorted(finance)
    assert in_directory("d-9067d4e5f6")[0] == engineering
    # Each directory has its own VPC, so their address ranges differ.
    assert in_directory("d-9067a1b2c3")[1].isdisjoint(in_directory("d-9067d4e5f6")[1])


def test_boot_without_a_usable_parameter_fails_each_workspace_with_a_reason(sandbox):
    ids = workspaces(sandbox, 2)
    result = boot(sandbox)
    assert result["failed"] == 2
    assert "no registration parameter" in result["results"][0]["reason"]
    sandbox.admin.post("fleet/registration", {"parameterName": PARAMETER})
    result = boot(sandbox)
    assert "does not exist" in result["results"][0]["reason"]
    sandbox.client("ssm").put_parameter(Name=PARAMETER, Value="not json", Type="SecureString")
    result = boot(sandbox)
    assert {r["workspaceId"] for r in result["results"]} == set(ids)
    assert all("does not hold JSON" in r["reason"] for r in result["results"])
    sandbox.client("ssm").put_parameter(
        Name=PARAMETER,
        Value='{"id": "x", "code": "y", "region": "mars-north-9"}',
        Type="SecureString",
        Overwrite=True,
    )
    assert "unknown region" in boot(sandbox)["results"][0]["reason"]


def test_boot_registers_only_available_workspaces_without_a_live_instance(sandbox):
    ids, instances, _ = registered_fleet(sandbox, 2)
    activation_id, code = activate(sandbox.client("ssm"), limit=10)
    publish(sandbox, activation_id, code)
    assert boot(sandbox)["results"] == []  # everyone is registered already
    explicit = boot(sandbox, [ids[0], "ws-000000000"])["results"]
    assert explicit[0] == {
        "workspaceId": ids[0],
        "status": "skipped",
        "reason": f"already registered as {instances[0]}",
    }
    assert explicit[1]["status"] == "failed"


def test_stop_and_start_move_the_instance_offline_and_back(sandbox):
    ids, instances, _ = registered_fleet(sandbox, 1)
    sandbox.admin.post("fleet/stop", {"workspaceIds": ids})
    assert fleet_row(sandbox, ids[0])["state"] == "STOPPED"
    assert ping_status(sandbox, instances[0]) == "ConnectionLost"
    assert boot(sandbox)["results"] == []  # a stopped WorkSpace does not boot
    sandbox.admin.post("fleet/start", {"workspaceIds": ids})
    assert fleet_row(sandbox, ids[0])["state"] == "AVAILABLE"
    assert ping_status(sandbox, instances[0]) == "Online"


def test_the_workspaces_api_drives_the_instance_too_on_the_agents_timing(sandbox):
    ids, instances, _ = registered_fleet(sandbox, 1)
    client = sandbox.client("workspaces")
    client.stop_workspaces(StopWorkspaceRequests=[{"WorkspaceId": ids[0]}])
    assert ping_status(sandbox, instances[0]) == "Online"  # the agent has not missed a ping yet
    sandbox.admin.advance_clock(4 * 60)
    assert fleet_row(sandbox, ids[0])["state"] == "STOPPED"
    assert ping_status(sandbox, instances[0]) == "Online"
    sandbox.admin.advance_clock(61)  # five minutes after the stop
    assert ping_status(sandbox, instances[0]) == "ConnectionLost"
    client.start_workspaces(StartWorkspaceRequests=[{"WorkspaceId": ids[0]}])
    assert ping_status(sandbox, instances[0]) == "ConnectionLost"  # still STARTING
    sandbox.admin.advance_clock(121)
    assert ping_status(sandbox, instances[0]) == "Online"


def test_a_rebuild_through_the_api_loses_the_instance_and_registers_anew(sandbox):
    ids, instances, _ = registered_fleet(sandbox, 1)
    ssm = sandbox.client("ssm")
    activation_id, code = activate(ssm, limit=1)
    publish(sandbox, activation_id, code)
    sandbox.client("workspaces").rebuild_workspaces(
        RebuildWorkspaceRequests=[{"WorkspaceId": ids[0]}]
    )
    assert fleet_row(sandbox, ids[0])["state"] == "REBUILDING"
    assert boot(sandbox)["registered"] == 0
    sandbox.admin.advance_clock(5 * 60 + 1)
    assert ping_status(sandbox, instances[0]) == "ConnectionLost"
    assert boot(sandbox)["registered"] == 0  # still REBUILDING
    sandbox.admin.advance_clock(25 * 60)
    assert fleet_row(sandbox, ids[0])["state"] == "AVAILABLE"
    assert boot(sandbox)["registered"] == 1


def test_the_admin_power_switch_stops_always_on_workspaces(sandbox):
    ids, instances, _ = registered_fleet(sandbox, 1, runningMode="ALWAYS_ON")
    result = sandbox.admin.post("fleet/stop", {"workspaceIds": [*ids, "ws-000000000"]})["results"]
    assert result[0] == {"workspaceId": ids[0], "status": "ok"}
    assert result[1]["status"] == "failed" and result[1]["errorCode"] == "ResourceNotFoundException"
    assert ping_status(sandbox, instances[0]) == "ConnectionLost"


def test_rebuild_loses_the_registration_and_the_next_boot_makes_a_new_instance(sandbox):
    ssm = sandbox.client("ssm")
    ids = workspaces(sandbox, 1)
    activation_id, code = activate(ssm, limit=2, tags={"team": "euc"})
    publish(sandbox, activation_id, code)
    old = boot(sandbox)["results"][0]["instanceId"]
    sandbox.admin.post("fleet/rebuild", {"workspaceIds": ids})
    assert ping_status(sandbox, old) == "ConnectionLost"
    assert fleet_row(sandbox, ids[0])["instanceId"] is None
    new = boot(sandbox)["results"][0]["instanceId"]
    assert new != old and ping_status(sandbox, new) == "Online"
    old_info, new_info = (
        ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [i]}])[
            "InstanceInformationList"
        ][0]
        for i in (old, new)
    )
    assert new_info["ComputerName"] == old_info["ComputerName"]
    assert new_info["IPAddress"] == old_info["IPAddress"]
    assert fleet_row(sandbox, ids[0])["instanceIds"] == [old, new]
    assert ssm.describe_activations()["ActivationList"][0]["RegistrationsCount"] == 2


def test_terminate_ends_the_workspace_and_its_instance(sandbox):
    ids, instances, _ = registered_fleet(sandbox, 2)
    sandbox.admin.post("fleet/terminate", {"workspaceIds": ids[:1]})
    assert fleet_row(sandbox, ids[0])["state"] == "TERMINATED"
    assert ping_status(sandbox, instances[0]) == "ConnectionLost"
    assert ping_status(sandbox, instances[1]) == "Online"
    assert boot(sandbox)["results"] == []


def test_a_deregistered_instance_is_replaced_on_the_next_boot_with_a_new_activation(sandbox):
    ssm = sandbox.client("ssm")
    ids = workspaces(sandbox, 1)
    activation_id, code = activate(ssm, limit=2)
    publish(sandbox, activation_id, code)
    first = boot(sandbox)["results"][0]["instanceId"]
    ssm.deregister_managed_instance(InstanceId=first)
    # "you must use a different Activation Code and Activation ID than used to register the
    # machine previously" (DeregisterManagedInstance): the same activation is refused.
    assert boot(sandbox)["results"][0]["status"] == "failed"
    activation_id, code = activate(ssm, limit=1)
    publish(sandbox, activation_id, code)
    second = boot(sandbox)["results"][0]["instanceId"]
    assert second != first
    assert fleet_row(sandbox, ids[0])["instanceId"] == second


def test_the_published_parameter_can_be_rotated(sandbox):
    ssm = sandbox.client("ssm")
    workspaces(sandbox, 3)
    old_id, old_code = activate(ssm, limit=1)
    publish(sandbox, old_id, old_code)
    assert boot(sandbox)["registered"] == 1
    new_id, new_code = activate(ssm, limit=5)
    publish(sandbox, new_id, new_code)
    assert boot(sandbox)["registered"] == 2
    counts = {
        a["ActivationId"]: a["RegistrationsCount"]
        for a in ssm.describe_activations()["ActivationList"]
    }
    assert counts == {old_id: 1, new_id: 2}


def test_fleets_are_per_region(sandbox):
    workspaces(sandbox, 2)
    assert sandbox.admin.request("GET", "fleet")["workspaces"]
    from fleet_sandbox.client import SandboxClient

    other = SandboxClient(sandbox.endpoint, region="eu-west-1")
    assert other.get("fleet")["workspaces"] == []


def test_scenario_sections_create_the_fleet_and_point_it_at_the_parameter(sandbox):
    import yaml

    sandbox.admin.post("scenario", yaml.safe_load(SCENARIO.read_text()))
    listing = sandbox.admin.get("fleet")
    assert len(listing["workspaces"]) == 12
    assert listing["registration"] == {"parameterName": PARAMETER}
    activation_id, code = activate(sandbox.client("ssm"), limit=20)
    sandbox.client("ssm").put_parameter(
        Name=PARAMETER,
        Type="SecureString",
        Value=f'{{"id": "{activation_id}", "code": "{code}", "region": "us-east-1"}}',
    )
    assert boot(sandbox)["registered"] == 12
    tagged = sandbox.client("resourcegroupstaggingapi").get_resources(
        ResourceTypeFilters=["workspaces:workspace"],
        TagFilters=[{"Key": "pool", "Values": ["design"]}],
    )
    assert len(tagged["ResourceTagMappingList"]) == 2


@pytest.mark.parametrize(
    "document",
    [
        {"workspaces": {"count": 2}},
        {"workspaces": [{"count": 2, "flavour": "x"}]},
        {"registration": {"parameter": "/x"}},
    ],
)
def test_bad_scenario_sections_are_refused_with_the_section_named(sandbox, document):
    with pytest.raises(AdminApiError) as raised:
        sandbox.admin.post("scenario", document)
    assert raised.value.status == 400
    assert next(iter(document)) in str(raised.value)


def test_auto_registration_boots_every_region_with_a_parameter(sandbox):
    workspaces(sandbox, 3)
    activation_id, code = activate(sandbox.client("ssm"), limit=3)
    publish(sandbox, activation_id, code)
    from fleet_sandbox.client import SandboxClient

    SandboxClient(sandbox.endpoint, region="eu-west-1").post("fleet/workspaces", {"count": 2})
    registrar = AutoRegistrar(interval=3600)
    assert registrar.run_once() == 3  # eu-west-1 has no parameter configured: left alone
    assert registrar.run_once() == 0


# --- fidelity ----------------------------------------------------------------------------------


def _strip(response):
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


SERVED = {
    ("ssm", "CreateActivation"),
    ("ssm", "DescribeActivations"),
    ("ssm", "DeleteActivation"),
    ("ssm", "DescribeInstanceInformation"),
    ("ssm", "DeregisterManagedInstance"),
    ("workspaces", "DescribeWorkspaces"),
    ("workspaces", "CreateWorkspaces"),
    ("workspaces", "DescribeTags"),
    ("workspaces", "CreateTags"),
    ("workspaces", "DeleteTags"),
    ("workspaces", "StopWorkspaces"),
    ("workspaces", "StartWorkspaces"),
    ("workspaces", "RebootWorkspaces"),
    ("workspaces", "RebuildWorkspaces"),
    ("workspaces", "TerminateWorkspaces"),
    ("resourcegroupstaggingapi", "GetResources"),
}


def test_every_operation_answers_within_its_output_shape(sandbox):
    """Drive each operation this part adds; botocore must parse every answer and the sandbox must
    have refused none for breaking its shape."""
    ssm = sandbox.client("ssm")
    ws = sandbox.client("workspaces")
    tagging = sandbox.client("resourcegroupstaggingapi")
    answers = []

    def record(service, operation, response):
        answers.append((service, operation, _strip(response)))

    ids = workspaces(sandbox, 4, tags={"team": "euc"})
    activation_id, code = activate(ssm, limit=4, tags={"team": "euc"}, Description="d")
    record("ssm", "CreateActivation", {"ActivationId": activation_id, "ActivationCode": code})
    publish(sandbox, activation_id, code)
    instances = [r["instanceId"] for r in boot(sandbox)["results"]]
    record("ssm", "DescribeActivations", ssm.describe_activations(MaxResults=1))
    record("ssm", "DescribeInstanceInformation", ssm.describe_instance_information(MaxResults=5))
    target = {"ResourceType": "ManagedInstance", "ResourceId": instances[0]}
    record(
        "ssm",
        "AddTagsToResource",
        ssm.add_tags_to_resource(**target, Tags=[{"Key": "a", "Value": "b"}]),
    )
    record("ssm", "ListTagsForResource", ssm.list_tags_for_resource(**target))
    record("ssm", "RemoveTagsFromResource", ssm.remove_tags_from_resource(**target, TagKeys=["a"]))
    record(
        "ssm", "DeregisterManagedInstance", ssm.deregister_managed_instance(InstanceId=instances[3])
    )
    record("workspaces", "DescribeWorkspaces", ws.describe_workspaces(Limit=2))
    directory_id = ws.describe_workspace_directories()["Directories"][0]["DirectoryId"]
    record(
        "workspaces",
        "CreateWorkspaces",
        ws.create_workspaces(
            Workspaces=[
                {"DirectoryId": directory_id, "UserName": "eve", "BundleId": "wsb-sandbox001"}
            ]
        ),
    )
    record("workspaces", "CreateTags", ws.create_tags(ResourceId=ids[0], Tags=[{"Key": "x"}]))
    record("workspaces", "DescribeTags", ws.describe_tags(ResourceId=ids[0]))
    record("workspaces", "DeleteTags", ws.delete_tags(ResourceId=ids[0], TagKeys=["x"]))
    for operation, method, key in (
        ("StopWorkspaces", ws.stop_workspaces, "StopWorkspaceRequests"),
        ("StartWorkspaces", ws.start_workspaces, "StartWorkspaceRequests"),
        ("RebootWorkspaces", ws.reboot_workspaces, "RebootWorkspaceRequests"),
        ("RebuildWorkspaces", ws.rebuild_workspaces, "RebuildWorkspaceRequests"),
        ("TerminateWorkspaces", ws.terminate_workspaces, "TerminateWorkspaceRequests"),
    ):
        record("workspaces", operation, method(**{key: [{"WorkspaceId": ids[1]}]}))
    record(
        "workspaces",
        "StopWorkspaces",
        ws.stop_workspaces(StopWorkspaceRequests=[{"WorkspaceId": "ws-000000000"}]),
    )
    record(
        "resourcegroupstaggingapi",
        "GetResources",
        tagging.get_resources(ResourcesPerPage=2, IncludeComplianceDetails=True),
    )
    record("ssm", "DeleteActivation", ssm.delete_activation(ActivationId=activation_id))

    assert sandbox.admin.get("shape-violations")["violations"] == []
    for service, operation, response in answers:
        assert validate_output(service, operation, response) == [], (service, operation)
    operations = {(s, o) for s, o, _ in answers}
    assert operations >= SERVED


def test_a_response_that_breaks_its_shape_is_refused_and_recorded(sandbox):
    original = extension._handlers[("ssm", "DescribeActivations")]

    def broken(call):
        return {"ActivationList": [{"ActivationId": 42, "Colour": "blue"}]}

    extension.operation("ssm", "DescribeActivations")(broken)
    extension.install()
    try:
        ssm = sandbox.client("ssm", config=Config(retries={"total_max_attempts": 1}))
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            ssm.describe_activations()
        assert error_code(raised) == "InternalFailure"
        violations = sandbox.admin.get("shape-violations")["violations"]
        assert any("ActivationId" in v for v in violations)
        assert any("Colour" in v for v in violations)
    finally:
        extension.operation("ssm", "DescribeActivations")(original)
        extension.install()
    assert sandbox.client("ssm").describe_activations()["ActivationList"] == []


# --- run_sandbox -------------------------------------------------------------------------------


def test_run_sandbox_serves_a_registering_fleet_and_stops_on_ctrl_c(tmp_path):
    """The foreground sandbox in its own process: it prints the endpoint, WorkSpaces register once
    an activation is published, and SIGINT stops it cleanly."""
    import boto3

    script = (
        "from fleet_sandbox.main import run_sandbox; "
        "raise SystemExit(run_sandbox(port=0, workspaces=5, auto_register_seconds=0.2))"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
    )
    try:
        lines = []
        for line in process.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.startswith("export AWS_ENDPOINT_URL="):
                break
        endpoint = lines[-1].strip().split("=", 1)[1]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", endpoint)
        assert any("ready in" in line for line in lines)
        ssm = boto3.client(
            "ssm",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        activation_id, code = activate(ssm, limit=5)
        ssm.put_parameter(
            Name=DEFAULT_REGISTRATION_PARAMETER,
            Type="SecureString",
            Value=f'{{"id": "{activation_id}", "code": "{code}", "region": "us-east-1"}}',
        )
        for _ in range(300):  # until the background registrar has booted all five
            found = ssm.describe_instance_information(MaxResults=50)["InstanceInformationList"]
            if len(found) == 5:
                break
            time.sleep(0.1)
        assert len(found) == 5
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
        assert process.returncode == 0
        assert "sandbox stopped" in rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _banner(tmp_path, workspaces, scenario=None):
    """run_sandbox's banner, from a sandbox started and stopped on a thread of this process."""
    import io
    import threading

    from fleet_sandbox.main import run_sandbox

    out, stop = io.StringIO(), threading.Event()
    done = threading.Event()

    def serve():
        run_sandbox(
            port=0,
            workspaces=workspaces,
            scenario=scenario,
            auto_register_seconds=0,
            stop_event=stop,
            out=out,
        )
        done.set()

    thread = threading.Thread(target=serve)
    thread.start()
    for _ in range(600):
        if "register with" in out.getvalue():
            break
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=30)
    assert done.is_set()
    return out.getvalue()


def test_sandbox_without_a_scenario_serves_the_demo_fleet_and_counts_it(sandbox, tmp_path):
    text = _banner(tmp_path, 10)
    assert "10 WorkSpaces from the demo scenario" in text
    assert DEFAULT_REGISTRATION_PARAMETER in text
    rows = sandbox.admin.get("fleet")["workspaces"]
    assert sorted({r["directoryId"] for r in rows}) == ["d-9067a1b2c3", "d-9067d4e5f6"]
    tags = sandbox.client("workspaces").describe_tags(ResourceId=rows[0]["workspaceId"])["TagList"]
    assert {t["Key"] for t in tags} >= {"CostCenter", "LineOfBusiness"}


def test_the_banner_counts_a_scenario_fleet(sandbox, tmp_path):
    scenario = tmp_path / "three.yaml"
    scenario.write_text("workspaces:\n  - count: 3\n    userNamePrefix: lab\n", encoding="utf-8")
    text = _banner(tmp_path, 50, scenario)
    assert f"3 WorkSpaces from {scenario}" in text
