"""Benchmark: 10,000 WorkSpaces with events, the live cache and O(pages) reads.

One sandbox fleet of 10,000 WorkSpaces (half in each example directory, all registered and
tagged), then:

1. zero-drift pass vs fleet-wide install failure: the example's acme-viewer Package and its
   Association on every instance; a pass before the agents ran it, and one after it failed on
   all 10,000 (no install effects: detection fails everywhere). Calls per pass, and the failure
   pass as a ratio of the zero-drift one (goal: within 5%).
2. ``run`` as an operator runs it (its own process, production rate limits on, the events queue
   and rules of deploy/events deployed with CloudFormation, a webhook secret), after its first
   relist:
   - reaction: 50 WorkSpace tag changes, one after the other; for each, seconds from the
     CreateTags call to the instance carrying the new value (median and max), AWS calls per event
     and per change (the controller's own count, SQS included), and relists triggered (goal 0);
   - a desired-state change by signed webhook (one TagSync's static tag, so 5,000 instances
     change): seconds to the first write and to the last.

Wall times against the sandbox are its overhead plus ours; the rate limits are the controller's
production ones (WorkSpaces 2 calls/s, SSM 10/s, tagging API 5/s).

    python -m benchmarks.events_scale [--size 10000] [--changes 50]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.fleet import EXAMPLE, desired_state, fake_credentials, make_reconciler, onboard
from controller.contract.ownership import WORKSPACE_ID_TAG
from controller.manifests import load_desired_state
from controller.observability.logging import configure_logging
from fleet_sandbox.client import SandboxClient
from fleet_sandbox.server import Sandbox

ROOT = Path(__file__).resolve().parent.parent
EVENTS_TEMPLATE = ROOT / "deploy" / "events" / "fleet-events.yaml"
PACKAGE = "acme-viewer"
ASSOCIATION = f"""\
apiVersion: fleet-controller/v1alpha1
kind: Association
metadata:
  name: install-acme-viewer
spec:
  package: {{name: {PACKAGE}, version: latest}}
  targets:
    tags:
      LineOfBusiness: [finance, engineering]
  complianceSeverity: HIGH
"""
SECRET = "benchmark-webhook-secret-0123456789"


def client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")


def sandbox_calls(admin: SandboxClient) -> Counter[str]:
    found: Counter[str] = Counter()
    for row in admin.calls():
        found[f"{row['service']}:{row['operation']}"] += row["count"]
    return found


# -- 1. install failure ------------------------------------------------------------------------


def install_failure(endpoint: str, admin: SandboxClient, workdir: Path, size: int) -> None:
    directory = workdir / "install"
    shutil.copytree(workdir / "tags", directory)
    shutil.copytree(EXAMPLE / "packages" / PACKAGE, directory / PACKAGE)
    (directory / "association.yaml").write_text(ASSOCIATION)
    desired = load_desired_state(directory)
    client(endpoint, "s3").create_bucket(Bucket="fleet-controller-packages-example")
    reconciler = make_reconciler(endpoint)
    _, result = reconciler.reconcile(desired)  # the package, the detection document, the link
    if not result.ok:
        raise RuntimeError(f"creating the install failed: {result.failed[:2]}")

    def one_pass() -> Counter[str]:
        admin.reset_calls()
        plan = reconciler.plan(desired)
        if plan.operations:
            raise RuntimeError(f"not a zero-drift pass: {plan.operations[:3]}")
        return sandbox_calls(admin)

    healthy = one_pass()
    for _ in range(20):  # the agents run it in waves (maxConcurrency): until nothing is pending
        admin.post("agent/run", {})
        overview = client(endpoint, "ssm").list_associations()["Associations"][0]["Overview"]
        counts = overview.get("AssociationStatusAggregatedCount", {})
        if counts.get("Failed", 0) + counts.get("Success", 0) >= size:
            break
    failing = one_pass()
    print(f"\n1. Fleet-wide install failure at {size:,} WorkSpaces ({counts})")
    print(f"   zero-drift pass: {sum(healthy.values())} calls; every install failed:"
          f" {sum(failing.values())} calls ({sum(failing.values()) / sum(healthy.values()):.4f}"
          " of the zero-drift pass)")  # fmt: skip
    extra = failing - healthy
    print(f"   the failure pass's extra calls: {dict(extra) or 'none'}")
    print(f"   pages: {dict(sorted(healthy.items()))}")


# -- 2. run with events ------------------------------------------------------------------------


def deploy_events(endpoint: str) -> str:
    cloudformation = client(endpoint, "cloudformation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cloudformation.create_stack(
            StackName="fleet-events", TemplateBody=EVENTS_TEMPLATE.read_text(encoding="utf-8")
        )
    outputs = cloudformation.describe_stacks(StackName="fleet-events")["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "EventsQueueUrl")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Controller:
    """``fleet-controller run`` in its own process, and its /metrics."""

    def __init__(self, endpoint: str, directory: Path, queue: str, workdir: Path) -> None:
        self.port = free_port()
        secret = workdir / "webhook-secret"
        secret.write_text(SECRET)
        environment = {**os.environ, "AWS_ACCESS_KEY_ID": "benchmark", "AWS_SECRET_ACCESS_KEY": "x"}
        self.log = (workdir / "run.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "controller.cli", "run", str(directory),
             "--endpoint-url", endpoint, "--region", "us-east-1", "--controller-id", "benchmark",
             "--metrics-host", "127.0.0.1", "--metrics-port", str(self.port),
             "--interval", "3600", "--relist-interval", "3600", "--events-queue-url", queue,
             "--webhook-secret-file", str(secret), "--log-format", "json",
             "--log-level", "warning"],
            env=environment, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            text = r.read().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def total(self, name: str, **labels: str) -> float:
        try:
            found = self.samples()
        except OSError:
            return 0.0
        return sum(
            value
            for (sample, sample_labels), value in found.items()
            if sample == name and set(labels.items()) <= set(sample_labels)
        )

    def webhook(self) -> None:
        body = json.dumps({"ref": "refs/heads/main", "after": uuid.uuid4().hex}).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/webhook",
            data=body,
            headers={
                "X-Hub-Signature-256": signature,
                "X-GitHub-Event": "push",
                "X-GitHub-Delivery": str(uuid.uuid4()),
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 202, answer.status

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=120)
        self.log.close()


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval)
    raise RuntimeError(f"not within {timeout:.0f} s: {check}")


def instances_by_workspace(endpoint: str) -> dict[str, str]:
    found: dict[str, str] = {}
    paginator = client(endpoint, "resourcegroupstaggingapi").get_paginator("get_resources")
    for page in paginator.paginate(ResourceTypeFilters=["ssm:managed-instance"]):
        for item in page["ResourceTagMappingList"]:
            tags = {t["Key"]: t["Value"] for t in item["Tags"]}
            if WORKSPACE_ID_TAG in tags:
                found[tags[WORKSPACE_ID_TAG]] = item["ResourceARN"].rsplit("/", 1)[-1]
    return found


def reaction(endpoint: str, controller: Controller, changes: int) -> None:
    mapping = instances_by_workspace(endpoint)
    chosen = random.Random(7).sample(sorted(mapping), changes)
    workspaces, ssm = client(endpoint, "workspaces"), client(endpoint, "ssm")
    calls_before = controller.total("fleet_aws_api_calls_total")
    events_before = controller.total("fleet_events_received_total")
    relists_before = controller.total("fleet_relist_duration_seconds_count")
    latencies = []
    for number, workspace_id in enumerate(chosen):
        value = f"cc-{number:04d}"
        started = time.perf_counter()
        workspaces.create_tags(
            ResourceId=workspace_id, Tags=[{"Key": "CostCenter", "Value": value}]
        )

        def written(instance: str = mapping[workspace_id], wanted: str = value) -> bool:
            listed = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance)
            return {"Key": "CostCenter", "Value": wanted} in listed["TagList"]

        wait_for(written, timeout=300, interval=0.1)
        latencies.append(time.perf_counter() - started)
    time.sleep(25)  # let the last change's echo events be read (a long poll is 20 s)
    calls = controller.total("fleet_aws_api_calls_total") - calls_before
    events = controller.total("fleet_events_received_total") - events_before
    relists = controller.total("fleet_relist_duration_seconds_count") - relists_before
    print(f"\n2a. Reaction to {changes} WorkSpace tag changes (production rate limits)")
    print(f"   tag change -> instance tag written: median {statistics.median(latencies):.2f} s,"
          f" max {max(latencies):.2f} s")  # fmt: skip
    print(
        f"   events received {events:.0f} ({events / changes:.1f} per change);"
        f" AWS calls {calls:.0f}: {calls / events:.2f} per event, {calls / changes:.2f} per"
        f" change (SQS receives and deletes included); full relists triggered: {relists:.0f}"
    )
    by_operation: Counter[str] = Counter()
    for (name, labels), value in controller.samples().items():
        if name == "fleet_aws_api_calls_total":
            label = dict(labels)
            by_operation[f"{label['service']}:{label['operation']}"] += int(value)
    print(f"   the controller's calls since it started: {dict(sorted(by_operation.items()))}")


def desired_change(
    admin: SandboxClient, directory: Path, controller: Controller, target: int
) -> None:
    """The finance TagSync's static tag changes: ``target`` instances (its half) are written."""
    tagsync = directory / "tagsync.yaml"
    tagsync.write_text(tagsync.read_text().replace("Compliance: sox", "Compliance: sox-2024"))
    before = sandbox_calls(admin)["ssm:AddTagsToResource"]
    relists_before = controller.total("fleet_relist_duration_seconds_count")
    started = time.perf_counter()
    controller.webhook()
    first = wait_for(
        lambda: sandbox_calls(admin)["ssm:AddTagsToResource"] > before and time.perf_counter(),
        timeout=600,
        interval=0.1,
    )
    print(f"\n2b. Desired-state change by webhook ({target:,} instances' static tag)")
    print(f"   first write after {first - started:.1f} s", flush=True)  # if the last is slow
    last = wait_for(
        lambda: (
            sandbox_calls(admin)["ssm:AddTagsToResource"] - before >= target and time.perf_counter()
        ),
        timeout=3600,
        interval=0.5,
    )
    relists = controller.total("fleet_relist_duration_seconds_count") - relists_before
    print(
        f"   last write after {last - started:.1f} s"
        f" ({target / (last - first):.1f} writes/s); relists triggered: {relists:.0f}"
    )


def run(size: int, changes: int) -> None:
    configure_logging("json", "warning")
    fake_credentials()
    with Sandbox() as sandbox, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        admin = SandboxClient(sandbox.endpoint)
        tags = workdir / "tags"
        tags.mkdir()
        desired = desired_state(tags)
        started = time.perf_counter()
        onboard(admin, make_reconciler(sandbox.endpoint, only_activations=True), desired, size)
        _, result = make_reconciler(sandbox.endpoint).reconcile(desired)
        if not result.ok:
            raise RuntimeError(f"tagging failed: {result.failed[:2]}")
        print(f"{size:,} WorkSpaces registered and tagged in {time.perf_counter() - started:.0f} s"
              " (not measured)")  # fmt: skip
        install_failure(sandbox.endpoint, admin, workdir, size)

        queue = deploy_events(sandbox.endpoint)
        controller = Controller(sandbox.endpoint, tags, queue, workdir)
        try:
            began = time.perf_counter()
            wait_for(lambda: controller.total("fleet_reconciles_total") >= 1, timeout=3600)
            relist = controller.total("fleet_relist_duration_seconds_sum")
            print(f"\n2. run: first pass (a relist) done after {time.perf_counter() - began:.0f} s;"
                  f" relist {relist:.0f} s")  # fmt: skip
            reaction(sandbox.endpoint, controller, changes)
            desired_change(admin, tags, controller, size // 2)
        finally:
            controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--changes", type=int, default=50)
    arguments = parser.parse_args()
    run(arguments.size, arguments.changes)


if __name__ == "__main__":
    main()
