"""End to end: 200 WorkSpaces enroll with a running controller, each over HTTP from its own address.

``fleet-controller run`` serves the endpoint as in production (a subprocess, its own port); the
sandbox's WorkSpaces ask it from their loopback addresses and register with what they are given.
Their instances arrive tagged and joined, so no pass after their registration writes a tag.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import Controller, eventually, free_port
from tests.enrollment.helpers import CONTROLLER_ID, TAGSYNC_TAGS, desired_state, tags, workspaces

pytestmark = pytest.mark.timeout(300)

FLEET = 200


def test_200_workspaces_enroll_over_http_and_no_pass_after_writes_a_tag(sandbox, tmp_path: Path):
    desired = tmp_path / "desired"
    desired_state(desired)
    ids = workspaces(sandbox, FLEET)
    port = free_port()
    controller = Controller(
        [str(desired), "--endpoint-url", sandbox.endpoint, "--region", "us-east-1",
         "--interval", "300", "--requeue-seconds", "1",
         "--enroll-port", str(port), "--enroll-host", "127.0.0.1",
         "--enroll-burst-total", "500", "--controller-id", CONTROLLER_ID],
        tmp_path,
    )  # fmt: skip
    try:

        def passes() -> float:
            return (
                controller.value("fleet_reconciles_total", target="default", result="success") or 0
            )

        eventually(passes, 60, what="a first pass")
        sandbox.admin.post("fleet/enrollment", {"url": f"http://127.0.0.1:{port}/v1/enroll"})
        sandbox.admin.reset_calls()

        def all_registered() -> bool:
            sandbox.admin.post("fleet/enroll", {})  # whoever is not registered yet asks
            rows = sandbox.admin.get("fleet")["workspaces"]
            return sum(1 for r in rows if r["pingStatus"] == "Online") == FLEET

        eventually(all_registered, 120, interval=0.5, what=f"{FLEET} WorkSpaces registered")
        rows = {r["workspaceId"]: r for r in sandbox.admin.get("fleet")["workspaces"]}
        assert len({rows[w]["ipAddress"] for w in ids}) == FLEET  # each from its own address
        assert all(rows[w]["ipAddress"].startswith("127.") for w in ids)
        assert controller.value("fleet_enrollment_requests_total", result="issued") == FLEET

        after = passes()
        eventually(lambda: passes() >= after + 2, 60, what="two passes after the registrations")
        calls = sandbox.admin.call_counts("ssm")
        assert calls["AddTagsToResource"] == 0  # every instance registered with its tags
        assert calls["CreateActivation"] == FLEET
        tagging = sandbox.client("resourcegroupstaggingapi").get_resources(
            ResourceTypeFilters=["ssm:managed-instance"], ResourcesPerPage=100
        )
        first_page = tagging["ResourceTagMappingList"]
        assert len(first_page) == 100
        for mapping in first_page:
            assert TAGSYNC_TAGS.items() <= tags(mapping["Tags"]).items()
        assert (
            controller.value("fleet_workspaces_not_onboarded", target="default", tagsync="office")
            == 0
        )
        assert controller.value("fleet_drifted_resources", target="default", kind="TagSync") == 0
        # Every used activation was verified and deleted.
        eventually(
            lambda: sandbox.client("ssm").describe_activations()["ActivationList"] == [],
            60,
            what="used activations deleted",
        )
    finally:
        assert controller.stop() == 0


def test_the_readme_first_command_converges_in_minutes_not_intervals(tmp_path: Path):
    """`run desired-state --sandbox`: the 50 WorkSpaces enroll over HTTP, register tagged and
    report their installs long before the 5-minute interval would have come round."""
    from tests.e2e.harness import ROOT

    controller = Controller([str(ROOT / "desired-state"), "--sandbox"], tmp_path, name="first")
    try:

        def converged() -> bool:
            samples = controller.metrics()

            def total(name: str, **labels: str) -> float:
                return sum(
                    value
                    for (sample, found), value in samples.items()
                    if sample == name and set(labels.items()) <= set(found)
                )

            statuses: dict[str, dict[str, float]] = {}
            for (sample, found), value in samples.items():
                if sample == "fleet_association_instances":
                    labels = dict(found)
                    statuses.setdefault(labels["association"], {})[labels["status"]] = value
            installs = len(statuses) == 3 and all(
                s.get("Success", 0) > 0 and s.get("Pending", 0) == s.get("Failed", 0) == 0
                for s in statuses.values()
            )
            return (
                total("fleet_enrollment_requests_total", result="issued") == 50
                and total("fleet_managed_instances", ping_status="Online") == 50
                and total("fleet_workspaces_not_onboarded") == 0
                and installs
            )

        eventually(converged, 150, interval=0.5, what="50 enrolled, tagged, installs reported")
        assert (
            controller.value("fleet_enrollment_requests_total", result="refused_no_workspace") == 0
        )
    finally:
        assert controller.stop() == 0
