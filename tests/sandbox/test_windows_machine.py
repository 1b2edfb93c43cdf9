"""The simulated machine behaves more like Windows: uninstallers leave empty folders and keys,
uninstall keys can outlive their product, Windows Installer is busy right after boot (1618), and
only an agent new enough passes the rules as environment variables.

Everything goes through boto3 and the admin API: associations run the detection document, the
sandbox's agents answer it with the sandbox's own evaluator.
"""

from __future__ import annotations

import json
from datetime import datetime

from tests.sandbox._ssm_helpers import (
    APP_EXE,
    add_instance,
    agent_state,
    create_detection_document,
    publish_package,
    run_agents,
)

GUID = "{6F0D6C54-3C3A-4B5E-9C44-2A8E1B7D5A10}"
UNINSTALL = f"HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\{GUID}"
EFFECTS = {
    "files": [{"path": APP_EXE, "version": "3.2.0.0"}],
    "registry": [{"key": "SOFTWARE\\Acme\\Viewer", "valueName": "Edition", "value": "Pro"}],
    "msiProducts": [{"productCode": GUID, "version": "3.2.0", "displayName": "Acme Viewer"}],
}


def _associate(sandbox, document, rules, action="Install", tag="Acme"):
    return sandbox.client("ssm").create_association(
        Name=document,
        Parameters={"action": [action], "name": ["Acme"], "detectionRules": [json.dumps(rules)]},
        Targets=[{"Key": "tag:App", "Values": [tag]}],
    )["AssociationDescription"]["AssociationId"]


def _only_run(sandbox):
    [run] = run_agents(sandbox)
    return run


def _acme(sandbox, **behaviour):
    publish_package(sandbox, "Acme", "3.2.0")
    sandbox.admin.post("agent/effects", {"package": "Acme", "effects": EFFECTS})
    if behaviour:
        sandbox.admin.post("scenario", {"packages": {"Acme": behaviour}})


def test_an_uninstaller_leaves_its_folders_and_keys_empty(sandbox):
    instance = add_instance(1, {"App": "Acme"})
    _acme(sandbox)
    document = create_detection_document(sandbox)
    folder_rule = {"type": "folder", "path": "C:\\Program Files\\Acme"}
    install = _associate(sandbox, document, folder_rule)
    assert _only_run(sandbox)["status"] == "Success"
    machine = agent_state(sandbox, instance)
    assert machine["registry"][UNINSTALL]["DisplayVersion"] == {"type": "REG_SZ", "value": "3.2.0"}
    sandbox.client("ssm").delete_association(AssociationId=install)

    _associate(sandbox, document, folder_rule, action="Uninstall")
    run = _only_run(sandbox)
    # The folder is still there (empty), so a folder rule is still detected: a true answer.
    assert run["status"] == "Failed" and run["steps"][1]["exitCode"] == 1
    assert "folder C:\\Program Files\\Acme exists (folder found)" in run["steps"][1]["output"]
    machine = agent_state(sandbox, instance)
    assert machine["files"] == {"C:\\Program Files\\Acme": {"isDirectory": True}}
    assert machine["registry"] == {
        "HKLM\\SOFTWARE\\Acme": {},
        "HKLM\\SOFTWARE\\Acme\\Viewer": {},
    }  # the product's uninstall key went with the product
    assert machine["msiProducts"] == {} and machine["distributorPackages"] == {}


def test_an_orphaned_uninstall_key_does_not_make_an_msi_installed(sandbox):
    instance = add_instance(1, {"App": "Acme"})
    _acme(sandbox, outcome="silent")
    sandbox.admin.post(
        "agent/state",
        {
            "instanceId": instance,
            "registry": [
                {
                    "key": UNINSTALL.removeprefix("HKLM\\"),
                    "valueName": "DisplayVersion",
                    "value": "3.2.0",
                },
                {
                    "key": UNINSTALL.removeprefix("HKLM\\"),
                    "valueName": "WindowsInstaller",
                    "value": 1,
                },
            ],
        },
    )
    _associate(sandbox, create_detection_document(sandbox), {"type": "msi", "productCode": GUID})
    run = _only_run(sandbox)
    assert run["status"] == "Failed" and run["steps"][1]["exitCode"] == 1
    assert "product not installed, though an uninstall key names it" in run["summary"]


def test_windows_installer_is_busy_right_after_boot(sandbox):
    instance = add_instance(1, {"App": "Acme"})
    _acme(sandbox, windowsInstaller=True, busyRetrySeconds=300)
    sandbox.admin.post("agent/settings", {"installerBusyAfterBootSeconds": 900})
    _associate(sandbox, create_detection_document(sandbox), {"type": "msi", "productCode": GUID})
    run = _only_run(sandbox)
    assert run["status"] == "Failed"
    assert run["steps"][0]["status"] == "Failed"
    assert "exited with code 1618 (another installation is in progress" in run["steps"][0]["output"]
    assert agent_state(sandbox, instance)["msiProducts"] == {}

    sandbox.admin.post("clock/advance", {"seconds": 901})
    sandbox.client("ssm").start_associations_once(AssociationIds=[run["associationId"]])
    run = _only_run(sandbox)
    assert run["status"] == "Success", run["summary"]
    assert GUID in agent_state(sandbox, instance)["msiProducts"]


def test_a_script_that_retries_outlasts_a_short_busy_spell(sandbox):
    add_instance(1, {"App": "Acme"})
    _acme(sandbox, windowsInstaller=True, busyRetrySeconds=300)
    sandbox.admin.post("agent/settings", {"installerBusyAfterBootSeconds": 120})
    _associate(sandbox, create_detection_document(sandbox), {"type": "msi", "productCode": GUID})
    assert _only_run(sandbox)["status"] == "Success"


def test_an_installer_that_is_not_msiexec_never_meets_1618(sandbox):
    add_instance(1, {"App": "Acme"})
    _acme(sandbox, windowsInstaller=False)
    sandbox.admin.post("agent/settings", {"installerBusyAfterBootSeconds": 900})
    _associate(sandbox, create_detection_document(sandbox), {"type": "msi", "productCode": GUID})
    assert _only_run(sandbox)["status"] == "Success"


def test_an_agent_older_than_3_3_2746_passes_no_rules(sandbox):
    instance = add_instance(1, {"App": "Acme"})
    _acme(sandbox)
    sandbox.admin.post("agent/state", {"instanceId": instance, "agentVersion": "3.3.1142.0"})
    _associate(sandbox, create_detection_document(sandbox), {"type": "msi", "productCode": GUID})
    run = _only_run(sandbox)
    assert run["status"] == "Failed" and run["steps"][1]["exitCode"] == 3
    assert "SSM Agent 3.3.2746.0 or later is required" in run["steps"][1]["output"]
    described = sandbox.client("ssm").describe_instance_information()["InstanceInformationList"]
    assert described[0]["AgentVersion"] == "3.3.1142.0"


def test_parameters_not_declared_env_var_are_not_environment_variables(sandbox):
    from tests.sandbox._ssm_helpers import DETECTION_DOCUMENT

    add_instance(1, {"App": "Acme"})
    _acme(sandbox)
    content = json.loads(json.dumps(DETECTION_DOCUMENT))
    del content["parameters"]["detectionRules"]["interpolationType"]
    sandbox.client("ssm").create_document(
        Name="Spliced-Detection", Content=json.dumps(content), DocumentType="Command"
    )
    _associate(sandbox, "Spliced-Detection", {"type": "msi", "productCode": GUID})
    assert _only_run(sandbox)["steps"][1]["exitCode"] == 3


def test_a_document_carrying_another_evaluator_version_is_not_answered(sandbox):
    from tests.sandbox._ssm_helpers import DETECTION_DOCUMENT

    add_instance(1, {"App": "Acme"})
    _acme(sandbox)
    content = json.loads(json.dumps(DETECTION_DOCUMENT))
    commands = content["mainSteps"][1]["inputs"]["runCommand"]
    commands[0] = commands[0].replace(" v2", " v1")
    sandbox.client("ssm").create_document(
        Name="Old-Detection", Content=json.dumps(content), DocumentType="Command"
    )
    _associate(sandbox, "Old-Detection", {"type": "msi", "productCode": GUID})
    run = _only_run(sandbox)
    assert run["status"] == "Failed"
    assert "evaluates detection specification v2" in run["summary"]


def test_a_rebooted_workspace_boots_its_machine_again(sandbox):
    from tests.sandbox.fleetkit import registered_fleet

    ids, [instance], _ = registered_fleet(sandbox, 1)
    assert agent_state(sandbox, instance)["bootedAt"] is None  # first boot: its registration
    sandbox.admin.post("clock/advance", {"seconds": 3600})
    workspaces = sandbox.client("workspaces")
    workspaces.reboot_workspaces(RebootWorkspaceRequests=[{"WorkspaceId": ids[0]}])
    assert agent_state(sandbox, instance)["bootedAt"] is None  # still REBOOTING
    # The reboot takes minutes on the sandbox clock; the machine boots when it is AVAILABLE.
    before = datetime.fromisoformat(sandbox.admin.post("clock/advance", {"seconds": 181})["now"])
    [workspace] = workspaces.describe_workspaces(WorkspaceIds=[ids[0]])["Workspaces"]
    assert workspace["State"] == "AVAILABLE"
    booted = datetime.fromisoformat(agent_state(sandbox, instance)["bootedAt"])
    after = datetime.fromisoformat(sandbox.admin.get("clock")["now"])
    assert before <= booted <= after
