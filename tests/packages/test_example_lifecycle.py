"""The three example packages on the simulated demo fleet, through the controller, for a whole life:
install (Windows Installer busy right after boot: 1618, then a later run succeeds), detection that
orphaned uninstall keys do not fool, uninstall (leftover empty folders do not fool it either),
re-install, and a re-run that changes nothing."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import yaml

from tests.engine.helpers import EXAMPLE, PARAMETER, boot, controller, instance_tags, load
from tests.packages.helpers import agent_state, run_agents

ACME = "{6F0D6C54-3C3A-4B5E-9C44-2A8E1B7D5A10}"
UNINSTALL = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"
NAMES = ("install-acme-viewer", "install-contoso-notes", "install-fabrikam-agent")


def _by_association(runs):
    found: dict[str, dict[str, dict]] = {}
    for run in runs:
        found.setdefault(run["associationName"], {})[run["instanceId"]] = run
    return found


def _statuses(runs_of):
    return {run["status"] for run in runs_of.values()}


def _with_action(directory: Path, action: str) -> None:
    path = directory / "packages" / "associations.yaml"
    documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    for document in documents:
        document["spec"]["package"]["action"] = action
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False), encoding="utf-8")


def test_install_detect_uninstall_reinstall_with_1618_and_orphaned_keys(sandbox, tmp_path):
    demo = resources.files("fleet_sandbox").joinpath("scenarios", "demo.yaml")
    sandbox.admin.post("scenario", yaml.safe_load(demo.read_text(encoding="utf-8")))
    sandbox.admin.post("fleet/registration", {"parameterName": PARAMETER})
    # A longer busy spell after boot than Acme's install script retries for (300 s).
    sandbox.admin.post("agent/settings", {"installerBusyAfterBootSeconds": 900})
    desired = shutil.copytree(EXAMPLE, tmp_path / "desired")
    reconciler = controller(sandbox)
    assert reconciler.reconcile(load(desired))[1].ok
    boot(sandbox)
    assert reconciler.reconcile(load(desired))[1].ok  # tags copied: the associations target them

    finance = sorted(
        i for i, t in instance_tags(sandbox).items() if t.get("LineOfBusiness") == "finance"
    )
    contoso_orphan, acme_orphan = finance[0], finance[1]
    # An uninstall key that outlived its application, and an installer that then fails silently.
    sandbox.admin.post(
        "agent/state",
        {
            "instanceId": contoso_orphan,
            "registry": [
                {"key": f"{UNINSTALL}\\ContosoNotes", "use32BitView": True,
                 "valueName": "DisplayVersion", "value": "8.1.4"},
            ],
        },
    )  # fmt: skip
    sandbox.admin.post(
        "agent/state",
        {
            "instanceId": acme_orphan,
            "registry": [
                {"key": f"{UNINSTALL}\\{ACME}", "valueName": "DisplayVersion", "value": "3.2.0"},
                {"key": f"{UNINSTALL}\\{ACME}", "valueName": "WindowsInstaller", "value": 1},
            ],
        },
    )
    for package, instance in (("ContosoNotes", contoso_orphan), ("AcmeViewer", acme_orphan)):
        sandbox.admin.post(
            "agent/outcome", {"package": package, "outcome": "silent", "instanceIds": [instance]}
        )

    # First run, right after boot: Acme's msiexec meets 1618 for longer than it retries.
    first = _by_association(run_agents(sandbox))
    assert set(first) == set(NAMES)
    for run in first["install-acme-viewer"].values():
        configure, detect = run["steps"]
        assert (configure["status"], detect["status"]) == ("Failed", "Skipped")
        assert "exited with code 1618" in configure["output"]
    assert _statuses(first["install-fabrikam-agent"]) == {"Success"}
    contoso = first["install-contoso-notes"]
    assert {i for i, r in contoso.items() if r["status"] == "Failed"} == {contoso_orphan}
    failed = contoso[contoso_orphan]["steps"][1]
    assert failed["exitCode"] == 1
    # The orphaned key holds (so it is not among the reasons); the file says otherwise.
    assert failed["output"] == (
        "detection after Install: the package is not detected: file"
        " %ProgramFiles(x86)%\\Contoso\\Notes\\notes.exe exists (file missing)"
    )

    # Later (Windows Installer free again), State Manager runs Acme's association again.
    sandbox.admin.post("clock/advance", {"seconds": 901})
    ssm = sandbox.client("ssm")
    ids = {
        a["AssociationName"]: a["AssociationId"] for a in ssm.list_associations()["Associations"]
    }
    ssm.start_associations_once(AssociationIds=[ids["install-acme-viewer"]])
    acme = _by_association(run_agents(sandbox))["install-acme-viewer"]
    assert {i for i, r in acme.items() if r["status"] == "Failed"} == {acme_orphan}
    assert "product not installed, though an uninstall key names it" in acme[acme_orphan]["summary"]
    healthy = next(i for i in acme if i != acme_orphan)
    assert acme[healthy]["steps"][1]["output"].startswith("Detected: msi " + ACME)
    assert ACME in agent_state(sandbox, healthy)["msiProducts"]

    # Uninstall everything: the uninstallers leave empty folders, which detection does not count.
    for package, instance in (("ContosoNotes", contoso_orphan), ("AcmeViewer", acme_orphan)):
        sandbox.admin.post(
            "agent/outcome", {"package": package, "outcome": "success", "instanceIds": [instance]}
        )
    _with_action(desired, "Uninstall")
    assert reconciler.reconcile(load(desired))[1].ok
    removed = _by_association(run_agents(sandbox))
    for name in NAMES:
        assert _statuses(removed[name]) == {"Success"}, name
        for run in removed[name].values():
            assert run["steps"][1]["output"].startswith("Not detected, as expected after Uninstall")
    machine = agent_state(sandbox, healthy)
    assert machine["msiProducts"] == {} and machine["distributorPackages"] == {}
    assert "C:\\Program Files\\Acme\\Viewer" in machine["files"]  # left behind, empty
    assert not any(path.endswith(".exe") for path in machine["files"])

    # Re-install, then run again: nothing changes and everything is still detected.
    _with_action(desired, "Install")
    assert reconciler.reconcile(load(desired))[1].ok
    again = _by_association(run_agents(sandbox))
    for name in NAMES:
        assert _statuses(again[name]) == {"Success"}, name
    ssm.start_associations_once(AssociationIds=list(ids.values()))
    rerun = run_agents(sandbox)
    assert len(rerun) == 50 + 30 + 20
    for run in rerun:
        assert run["status"] == "Success"
        assert "is already installed" in run["steps"][0]["output"]
        assert run["steps"][1]["output"].startswith("Detected: ")
