"""Events reach the fleet through targeted passes: only what an event names is read, only what it
touches is written, an echo of the controller's own write costs nothing, and a resource not
visible yet is read again later.

The controller here is the Reconciler and the EventWorker `run` starts, driven one receive at a
time (``run_once``) against the sandbox, with the rules of deploy/events deployed into it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from controller.contract.ownership import WORKSPACE_ID_TAG
from controller.kinds.matching import LiveInstance
from controller.service.events import EventQueue, EventSettings, EventWorker
from controller.service.source.base import Revision
from tests.engine.helpers import boot, controller, copy_example, load, make_fleet, write
from tests.events.stack import aws_calls, deploy_events, drain

FINANCE = "d-9067a1b2c3"


@dataclass
class Setup:
    reconciler: Any
    worker: EventWorker
    desired: Any
    url: str


def _converged(
    sandbox, tmp_path, finance: int = 3, engineering: int = 2, prune: bool = False
) -> Setup:
    url = deploy_events(sandbox)
    directory = copy_example(tmp_path / "desired")
    desired = load(directory)
    make_fleet(sandbox, finance=finance, engineering=engineering)
    reconciler = controller(sandbox, prune=prune)
    reconciler.reconcile(desired)  # the activation
    boot(sandbox)
    _, result = reconciler.reconcile(desired)  # a relist: the cache is warm, instances tagged
    assert result.ok and len(result.applied) == finance + engineering
    drain(sandbox, url)  # what the setup itself caused
    revision = Revision(id="test", desired=desired)
    worker = EventWorker(
        EventQueue(reconciler.aws, url),
        reconciler,
        lambda: revision,
        reconciler.metrics,
        EventSettings(batch_seconds=0.2, retry_base_seconds=0.1),
    )
    sandbox.admin.reset_calls()
    return Setup(reconciler, worker, desired, url)


def _instance_of(sandbox, workspace_id: str) -> str:
    ssm = sandbox.client("ssm")
    for info in ssm.describe_instance_information(MaxResults=50)["InstanceInformationList"]:
        tags = ssm.list_tags_for_resource(
            ResourceType="ManagedInstance", ResourceId=info["InstanceId"]
        )["TagList"]
        if {"Key": WORKSPACE_ID_TAG, "Value": workspace_id} in tags:
            return str(info["InstanceId"])
    raise AssertionError(f"no instance carries {workspace_id}")


def _tags(sandbox, instance_id: str) -> dict[str, str]:
    listed = sandbox.client("ssm").list_tags_for_resource(
        ResourceType="ManagedInstance", ResourceId=instance_id
    )["TagList"]
    return {t["Key"]: t["Value"] for t in listed}


def _events(reconciler, outcome: str) -> float:
    total = 0.0
    for metric in reconciler.metrics.events_received_total.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels["outcome"] == outcome:
                total += sample.value
    return total


def test_a_workspace_tag_change_is_written_reading_only_that_workspace(sandbox, tmp_path):
    setup = _converged(sandbox, tmp_path)
    workspace = sandbox.client("workspaces").describe_workspaces()["Workspaces"][0]
    workspace_id = workspace["WorkspaceId"]
    instance = _instance_of(sandbox, workspace_id)
    sandbox.client("workspaces").create_tags(
        ResourceId=workspace_id, Tags=[{"Key": "CostCenter", "Value": "9999"}]
    )
    sandbox.admin.reset_calls()
    assert setup.worker.run_once(wait_seconds=1) == 1
    # One WorkSpace read by id, its tags read consistently, one write: no relist of anything.
    assert aws_calls(sandbox) == {
        "workspaces:DescribeWorkspaces": 1,
        "workspaces:DescribeTags": 1,
        "ssm:AddTagsToResource": 1,
    }
    assert _tags(sandbox, instance)["CostCenter"] == "9999"
    assert setup.reconciler.metrics.relists("default") == 2  # the setup's two passes, no more

    # The write comes back as two events (a Tag Change, a CloudTrail record): an echo of what
    # the cache holds, so they cost no AWS call.
    sandbox.admin.reset_calls()
    setup.worker.run_once(wait_seconds=1)
    assert aws_calls(sandbox) == {}
    assert _events(setup.reconciler, "echo") == 2


def test_two_events_of_one_change_and_a_burst_become_one_read(sandbox, tmp_path):
    setup = _converged(sandbox, tmp_path, finance=4, engineering=0)
    ids = [
        w["WorkspaceId"] for w in sandbox.client("workspaces").describe_workspaces()["Workspaces"]
    ]
    for workspace_id in ids:
        sandbox.client("workspaces").create_tags(
            ResourceId=workspace_id, Tags=[{"Key": "LineOfBusiness", "Value": "audit"}]
        )
    sandbox.admin.reset_calls()
    assert setup.worker.run_once(wait_seconds=1) == 4
    assert aws_calls(sandbox, without=("sqs", "sts")) == {
        "workspaces:DescribeWorkspaces": 1,  # four ids in one call
        "workspaces:DescribeTags": 4,
        "ssm:AddTagsToResource": 4,
    }
    assert {_tags(sandbox, _instance_of(sandbox, w))["LineOfBusiness"] for w in ids} == {"audit"}


def test_someone_elses_change_to_an_instance_is_repaired_and_a_foreign_key_left_alone(
    sandbox, tmp_path
):
    setup = _converged(sandbox, tmp_path)
    workspace_id = sandbox.client("workspaces").describe_workspaces()["Workspaces"][0][
        "WorkspaceId"
    ]
    instance = _instance_of(sandbox, workspace_id)
    ssm = sandbox.client("ssm")
    ssm.remove_tags_from_resource(
        ResourceType="ManagedInstance", ResourceId=instance, TagKeys=["CostCenter"]
    )
    ssm.add_tags_to_resource(
        ResourceType="ManagedInstance", ResourceId=instance, Tags=[{"Key": "Owner", "Value": "x"}]
    )
    setup.worker.run_once(wait_seconds=1)
    tags = _tags(sandbox, instance)
    assert "CostCenter" in tags and tags["Owner"] == "x"


def test_a_registration_not_visible_yet_is_read_again_until_it_is(sandbox, tmp_path):
    setup = _converged(sandbox, tmp_path, finance=1, engineering=0)
    sandbox.admin.put("consistency", {"lagSeconds": {"ssm": 120}})
    [workspace_id] = make_fleet(sandbox, finance=1, engineering=0)
    boot(sandbox)  # registers now; DescribeInstanceInformation shows it 120 s later
    setup.worker.run_once(wait_seconds=1)  # CreateWorkspaces and the registration: not visible
    unseen = dict(setup.worker._retries)
    assert any(key.startswith("mi-") for key in unseen), unseen
    sandbox.admin.advance_clock(130)
    for _ in range(50):  # the retry is due in 0.1 s: bounded, and it must happen
        setup.worker.run_once(wait_seconds=0.2)
        if not setup.worker._retries:
            break
    tags = _tags(sandbox, _instance_of(sandbox, workspace_id))
    assert tags["CostCenter"] == "4100" and tags["Compliance"] == "sox"


def test_a_terminated_workspace_and_a_deregistered_instance_leave_the_cache(sandbox, tmp_path):
    setup = _converged(sandbox, tmp_path, finance=2, engineering=0)
    ids = [
        w["WorkspaceId"] for w in sandbox.client("workspaces").describe_workspaces()["Workspaces"]
    ]
    gone = _instance_of(sandbox, ids[0])
    sandbox.client("ssm").deregister_managed_instance(InstanceId=gone)
    setup.worker.run_once(wait_seconds=1)
    informer = setup.worker.informer
    assert informer.instance(gone) is None
    # A relist that still lists it (a lagging DescribeInstanceInformation) does not bring it
    # back: the ghost is never live again.
    snapshot = informer.snapshot()
    ghost = LiveInstance(gone, "x", "10.0.0.9", "Online", datetime.now(UTC))
    informer.relisted(
        snapshot.workspaces,
        [*snapshot.instances, ghost],
        "tagging-api",
        0.0,
        datetime.now(UTC),
        timedelta(minutes=15),
    )
    assert informer.instance(gone) is None


def test_a_new_desired_state_starts_writing_from_the_cache_without_reading_the_fleet(
    sandbox, tmp_path
):
    setup = _converged(sandbox, tmp_path)
    directory = tmp_path / "desired"
    text = (directory / "tagsync.yaml").read_text()
    write(directory, "tagsync.yaml", text.replace("Compliance: sox", "Compliance: sox-2"))
    sandbox.admin.reset_calls()
    plan, result = setup.reconciler.reconcile(load(directory), cached=True)
    assert result.ok and len(result.applied) == 3  # the finance instances
    reads = {k: v for k, v in aws_calls(sandbox).items() if k.split(":")[0] != "ssm"}
    assert reads == {}, "a cached pass read WorkSpaces or the tagging API"
    # Exactly: the three writes and the Activation's own reads (it keeps no cache). The status
    # gauges re-read after the writes come from the cache, which holds them: no relist either.
    assert aws_calls(sandbox) == {
        "ssm:AddTagsToResource": 3,
        "ssm:DescribeActivations": 1,
        "ssm:DescribeParameters": 1,
        "ssm:ListTagsForResource": 1,
    }
    cached = setup.worker.informer.snapshot().instances
    assert sorted(i.tags.get("Compliance", "") for i in cached) == [""] * 2 + ["sox-2"] * 3
    # The next relist verifies: nothing left to do.
    sandbox.admin.reset_calls()
    plan, result = setup.reconciler.reconcile(load(directory))
    assert [op for op in plan.operations if op.kind == "TagSync"] == []


def test_unreadable_and_foreign_messages_are_counted_and_deleted(sandbox, tmp_path):
    setup = _converged(sandbox, tmp_path, finance=1, engineering=0)
    sqs = sandbox.client("sqs")
    for body in ("not json", "[1, 2]", '{"source": "aws.tag"}', "{" * 5000):
        sqs.send_message(QueueUrl=setup.url, MessageBody=body)
    sqs.send_message(
        QueueUrl=setup.url,
        MessageBody=(
            '{"source": "aws.tag", "detail-type": "Tag Change on Resource", "account":'
            ' "999999999999", "region": "us-east-1", "resources": ["arn:aws:ssm:us-east-1:'
            '999999999999:managed-instance/mi-0123456789abcdef0"], "detail": {"tags": {}}}'
        ),
    )
    sandbox.admin.reset_calls()
    setup.worker.run_once(wait_seconds=1)
    assert _events(setup.reconciler, "unreadable") == 4
    assert _events(setup.reconciler, "foreign") == 1
    assert aws_calls(sandbox, without=("sqs", "sts")) == {}
    assert drain(sandbox, setup.url) == []  # deleted: they do not come back


def test_a_cached_pass_never_deletes_what_a_missed_event_made_look_stale(sandbox, tmp_path):
    """The cache learns of a new instance (its registration event) but not of its WorkSpace
    (that event was lost): the instance looks stale. A cached pass must not deregister it; the
    relist finds the WorkSpace, and the instance is tagged, not deleted."""
    setup = _converged(sandbox, tmp_path, finance=1, engineering=0, prune=True)
    [workspace_id] = make_fleet(sandbox, finance=1, engineering=0)
    drain(sandbox, setup.url)  # the CreateWorkspaces event is lost
    [registered] = [r["instanceId"] for r in boot(sandbox)["results"] if r.get("instanceId")]
    setup.worker.run_once(wait_seconds=1)  # the registration: the instance, matched to nothing
    assert setup.worker.informer.instance(registered) is not None
    assert setup.worker.informer.workspace(workspace_id) is None
    plan, _ = setup.reconciler.reconcile(setup.desired, cached=True)
    assert [op for op in plan.operations if op.prune] == []
    assert registered in {
        i["InstanceId"]
        for i in sandbox.client("ssm").describe_instance_information()["InstanceInformationList"]
    }
    plan, result = setup.reconciler.reconcile(setup.desired)  # a relist
    assert result.ok and [op for op in plan.operations if op.prune] == []
    assert _tags(sandbox, registered)[WORKSPACE_ID_TAG] == workspace_id


def _queue_empty(sandbox, url: str) -> bool:
    attributes = sandbox.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return attributes == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
    }


def test_a_flood_of_replays_and_hostile_messages_costs_bounded_work_and_changes_nothing(
    sandbox, tmp_path
):
    """An outsider's worst: one real change's events replayed 60 times, a 250 KB nesting, an
    event naming 10,000 WorkSpaces, another account's event, all in one flood. The change is
    written once; the replays cost one consistent read in all; the hostile messages cost no AWS
    call, are counted and deleted (none comes back to hold the worker)."""
    setup = _converged(sandbox, tmp_path, finance=2, engineering=0)
    workspace_id = sandbox.client("workspaces").describe_workspaces()["Workspaces"][0][
        "WorkspaceId"
    ]
    instance = _instance_of(sandbox, workspace_id)
    sandbox.client("workspaces").create_tags(
        ResourceId=workspace_id, Tags=[{"Key": "CostCenter", "Value": "4242"}]
    )
    real = drain(sandbox, setup.url)
    assert len(real) == 2  # its Tag Change and its CloudTrail record
    hostile = [
        '{"source": "aws.tag", "detail-type": "Tag Change on Resource", "detail": '
        + "[" * 125_000
        + "]" * 125_000
        + "}",
        json.dumps(
            {
                "source": "aws.workspaces",
                "detail-type": "AWS API Call via CloudTrail",
                "account": real[0]["account"],
                "region": real[0]["region"],
                "detail": {
                    "eventName": "ModifyWorkspaceProperties",
                    "requestParameters": {
                        "workspaceId": " ".join(f"ws-{n:08x}" for n in range(10_000))
                    },
                },
            }
        ),
        json.dumps({**real[0], "account": "999999999999"}),
    ]
    sqs = sandbox.client("sqs")
    bodies = [json.dumps(event) for event in real] * 60 + hostile
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=setup.url,
            Entries=[
                {"Id": str(n), "MessageBody": body}
                for n, body in enumerate(bodies[start : start + 10])
            ],
        )
    sandbox.admin.reset_calls()
    for _ in range(len(bodies)):  # bounded: every receive takes at least one message
        if _queue_empty(sandbox, setup.url):
            break
        setup.worker.run_once(wait_seconds=0)
    assert _queue_empty(sandbox, setup.url)
    calls = aws_calls(sandbox)
    assert calls == {
        "workspaces:DescribeWorkspaces": 1,
        "workspaces:DescribeTags": 1,
        "ssm:AddTagsToResource": 1,
    }, calls
    assert _tags(sandbox, instance)["CostCenter"] == "4242"
    assert _events(setup.reconciler, "unreadable") == 2
    assert _events(setup.reconciler, "foreign") == 1
    # The controller's own write came back as two events too: echoes, read by nobody.
    sandbox.admin.reset_calls()
    setup.worker.run_once(wait_seconds=1)
    assert aws_calls(sandbox) == {}
    assert _events(setup.reconciler, "news") + _events(setup.reconciler, "echo") == 120 + 2


def test_made_up_ids_cost_one_read_each_and_wait_for_a_bounded_retry(sandbox, tmp_path):
    """A call that succeeds for none of its ids (TerminateWorkspaces answers 200 with every id
    failed) names ids that never appear: each is read once by id (25 a call), then waits to be
    read again as not visible yet, at most ``max_retries`` of them at once."""
    setup = _converged(sandbox, tmp_path, finance=1, engineering=0)
    worker = EventWorker(
        EventQueue(setup.reconciler.aws, setup.url),
        setup.reconciler,
        lambda: Revision(id="test", desired=setup.desired),
        setup.reconciler.metrics,
        # Retries far off: under load a second receive must not find one due already.
        EventSettings(batch_seconds=0.5, max_retries=100, retry_base_seconds=600),
    )
    made_up = [f"ws-{n:09x}" for n in range(150)]
    account = sandbox.client("sts").get_caller_identity()["Account"]
    for start in range(0, 150, 25):
        chunk = made_up[start : start + 25]
        detail = {
            "eventName": "TerminateWorkspaces",
            "requestParameters": {
                "terminateWorkspaceRequests": [{"workspaceId": i} for i in chunk]
            },
            "responseElements": {"failedRequests": [{"workspaceId": i} for i in chunk]},
        }
        sandbox.client("sqs").send_message(
            QueueUrl=setup.url,
            MessageBody=json.dumps(
                {
                    "source": "aws.workspaces",
                    "detail-type": "AWS API Call via CloudTrail",
                    "account": account,
                    "region": "us-east-1",
                    "detail": detail,
                }
            ),
        )
    sandbox.admin.reset_calls()
    for _ in range(6):  # bounded: at least one message a receive
        if _queue_empty(sandbox, setup.url):
            break
        worker.run_once(wait_seconds=0)
    assert _queue_empty(sandbox, setup.url)
    assert aws_calls(sandbox) == {"workspaces:DescribeWorkspaces": 150 // 25}
    assert len(worker._retries) == 100
