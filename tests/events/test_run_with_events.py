"""``run --events-queue-url``: the service reacts to events between relists.

The real command line builds the service; the queue and rules are deploy/events's stack in the
sandbox. After the first pass (a relist: it creates the activation), the WorkSpaces register: the
registration events get their instances tagged with no second relist, and a tag changed on a
WorkSpace reaches its instance the same way, within a bounded wait.
"""

from __future__ import annotations

import threading

from controller.cli import build_parser, service_config
from controller.contract.ownership import WORKSPACE_ID_TAG
from controller.service.runtime import Service
from tests.engine.helpers import boot, copy_example, listed_instance_tags, make_fleet
from tests.events.stack import deploy_events
from tests.runtime.helpers import eventually, sample


def test_registrations_and_a_tag_change_are_reconciled_by_events_alone(sandbox, tmp_path):
    url = deploy_events(sandbox)
    desired = copy_example(tmp_path / "desired")
    workspaces = make_fleet(sandbox, finance=3, engineering=2)
    args = build_parser().parse_args(
        ["run", str(desired), "--endpoint-url", sandbox.endpoint, "--region", "us-east-1",
         "--metrics-host", "127.0.0.1", "--metrics-port", "0", "--interval", "3600",
         "--events-queue-url", url, "--relist-interval", "3600", "--events-batch-seconds", "0.2"]
    )  # fmt: skip
    with Service.build(service_config(args)) as service:
        runner = threading.Thread(target=service.run, daemon=True)
        runner.start()
        try:
            metrics = service.metrics
            assert metrics is not None
            # The first pass done (not merely its relist, which is counted before the pass creates
            # and publishes the activation the WorkSpaces boot with).
            eventually(
                lambda: sample(
                    metrics, "fleet_reconciles_total", target="default", result="success"
                )
            )
            assert sample(metrics, "fleet_relist_duration_seconds_count", target="default") == 1
            assert sandbox.client("ssm").describe_activations()["ActivationList"]
            registered = [r["instanceId"] for r in boot(sandbox)["results"] if r.get("instanceId")]
            assert len(registered) == 5

            def tagged() -> bool:
                tags = listed_instance_tags(sandbox)
                return len(tags) == 5 and all(WORKSPACE_ID_TAG in t for t in tags.values())

            eventually(tagged, timeout=60)
            sandbox.client("workspaces").create_tags(
                ResourceId=workspaces[0], Tags=[{"Key": "CostCenter", "Value": "7777"}]
            )

            def changed() -> bool:
                return any(
                    t.get(WORKSPACE_ID_TAG) == workspaces[0] and t.get("CostCenter") == "7777"
                    for t in listed_instance_tags(sandbox).values()
                )

            eventually(changed, timeout=60)
            assert metrics.relists("default") == 1  # events did it all
            assert (
                sample(
                    metrics, "fleet_targeted_reconciles_total", target="default", result="success"
                )
                or 0
            ) >= 2
            text = metrics.text()
            assert (
                'fleet_events_received_total{outcome="news",target="default",type="SSM Managed Instance Registration"} 5.0'
                in text
            )
            assert 'fleet_cache_age_seconds{target="default"}' in text
        finally:
            service.request_stop()
            runner.join(timeout=60)
        assert not runner.is_alive()
