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
