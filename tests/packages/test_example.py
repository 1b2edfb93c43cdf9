"""The example desired state on the demo fleet: three packages installed and detected, at 08:00,
08:05 and 08:10, and ``plan`` showing install health beside drift."""

from __future__ import annotations

from importlib import resources

import yaml

from controller.cli import main
from tests.engine.helpers import EXAMPLE, PARAMETER, boot, controller, load, writes
from tests.packages.helpers import CONTROLLER_ID, run_agents


def test_the_example_installs_three_packages_on_the_demo_fleet(sandbox, capsys):
    demo = resources.files("fleet_sandbox").joinpath("scenarios", "demo.yaml")
    sandbox.admin.post("scenario", yaml.safe_load(demo.read_text(encoding="utf-8")))
    sandbox.admin.post("fleet/registration", {"parameterName": PARAMETER})
    desired = load(EXAMPLE)
    reconciler = controller(sandbox)
    _, first = reconciler.reconcile(desired)
    assert first.ok, first.failed
    boot(sandbox)
    _, second = reconciler.reconcile(desired)  # tags copied: the associations now target them
    assert second.ok, second.failed
    runs = run_agents(sandbox)
    by_association: dict[str, set[str]] = {}
    for run in runs:
        by_association.setdefault(run["associationName"], set()).add(run["status"])
    assert by_association == {
        "install-acme-viewer": {"Success"},
        "install-contoso-notes": {"Success"},
        "install-fabrikam-agent": {"Success"},
    }
    assert all(run["steps"][1]["output"].startswith("Detected: ") for run in runs)
    assert len(runs) == 50 + 30 + 20  # everyone, the finance line, the engineering line

    ssm = sandbox.client("ssm")
    schedules = {
        a["AssociationName"]: a["ScheduleExpression"]
        for a in ssm.list_associations()["Associations"]
    }
    assert schedules == {
        "install-acme-viewer": "cron(0 8 ? * * *)",
        "install-contoso-notes": "cron(5 8 ? * * *)",
        "install-fabrikam-agent": "cron(10 8 ? * * *)",
    }

    sandbox.admin.reset_calls()
    capsys.readouterr()
    code = main(
        [
            "plan",
            str(EXAMPLE),
            "--endpoint-url",
            sandbox.endpoint,
            "--region",
            sandbox.region,
            "--controller-id",
            CONTROLLER_ID,
            "--detailed-exitcode",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "No changes." in out
    assert "install health of package AcmeViewer: 50 Success, 0 Failed, 0 Pending" in out
    assert "install health of package ContosoNotes: 30 Success, 0 Failed, 0 Pending" in out
    assert writes(sandbox) == {}


def test_the_example_validates_with_the_cli(capsys):
    assert main(["validate", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "3 Package" in out and "3 Association" in out
