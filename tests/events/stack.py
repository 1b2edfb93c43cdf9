"""deploy/events/fleet-events.yaml, deployed into the sandbox with CloudFormation (moto's), so the
rules the tests exercise are exactly the ones an operator deploys."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EVENTS_TEMPLATE = ROOT / "deploy" / "events" / "fleet-events.yaml"


def deploy_events(sandbox: Any, region: str | None = None) -> str:
    """Create the events stack; returns the queue URL it outputs."""
    cloudformation = sandbox.client("cloudformation", region=region)
    with warnings.catch_warnings():  # moto cannot create the queue policy; AWS needs it, not us
        warnings.simplefilter("ignore", UserWarning)
        cloudformation.create_stack(
            StackName="fleet-events", TemplateBody=EVENTS_TEMPLATE.read_text(encoding="utf-8")
        )
    stack = cloudformation.describe_stacks(StackName="fleet-events")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    return str(outputs["EventsQueueUrl"])


def drain(sandbox: Any, url: str, region: str | None = None) -> list[dict[str, Any]]:
    """Every event waiting in the queue (received and deleted), in the order SQS gave them."""
    sqs = sandbox.client("sqs", region=region)
    events: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return events
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def kinds(events: list[dict[str, Any]]) -> Counter[str]:
    """``detail-type`` (with the CloudTrail eventName) of each event."""
    return Counter(
        f"{e['detail-type']}:{e['detail']['eventName']}"
        if e["detail-type"] == "AWS API Call via CloudTrail"
        else e["detail-type"]
        for e in events
    )


def aws_calls(sandbox: Any, *, without: tuple[str, ...] = ("sqs", "sts")) -> Counter[str]:
    """Calls the sandbox served since its counter was reset, by service:operation (the queue's
    and the worker's one look at its own account left out)."""
    found: Counter[str] = Counter()
    for row in sandbox.admin.calls():
        if row["service"] not in without:
            found[f"{row['service']}:{row['operation']}"] += row["count"]
    return found
