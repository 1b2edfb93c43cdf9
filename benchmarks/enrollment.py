"""Benchmark: WorkSpaces enrolling through the endpoint over HTTP, as the startup script does.

Two measurements against the sandbox, with the endpoint running in this process (its AWS calls
counted by its own recorder) and the sandbox's WorkSpaces asking from their own loopback addresses:

- latency (``--latency N``, default 200): N WorkSpaces boot at once and ask every half second
  while their backoff allows, under the endpoint's default rate limits (20 asks/s overall, burst
  100). Printed: boot -> registered-and-tagged per WorkSpace (median, max) and how the asks went.
  Registered means tagged: the tags arrive with the activation (checked on every instance).
- scale (``--scale N``, default 10,000): N WorkSpaces enroll (overall rate limit lifted: this
  counts calls, not the limit), then one Enrollment pass verifies and deletes the used
  activations. Printed: activations created and rotated (a shared activation registers at most
  1,000 machines, so N would need a chain of ceil(N/1000)), AWS calls per enrollment for asking
  and for cleaning up.

Wall times against the sandbox are its overhead and ours, not AWS latency.

    python -m benchmarks.enrollment [--latency 200] [--scale 10000]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.fleet import DIRECTORIES, EXAMPLE, fake_credentials
from controller.aws import AwsApi, AwsSettings, CallRecorder
from controller.engine.reconcile import Reconciler, ReconcileSettings
from controller.kinds.enrollment import EnrollmentKind
from controller.manifests import DesiredState, load_desired_state
from controller.observability.logging import configure_logging
from controller.observability.metrics import Metrics
from controller.service.enrollment.admission import Admission, AdmissionSettings
from controller.service.enrollment.directory import WorkspaceDirectory
from controller.service.enrollment.issuer import ActivationIssuer
from controller.service.enrollment.server import EnrollmentServer
from controller.service.enrollment.service import EnrollmentService, EnrollmentTarget
from fleet_sandbox.client import SandboxClient
from fleet_sandbox.enrolling import Enroller
from fleet_sandbox.server import Sandbox

CONTROLLER_ID = "benchmark"
MAX_GROUP = 5000  # the sandbox creates at most this many WorkSpaces per request


def desired_state(workdir: Path) -> DesiredState:
    for name in ("enrollment.yaml", "tagsync.yaml"):
        (workdir / name).write_text((EXAMPLE / name).read_text(encoding="utf-8"), encoding="utf-8")
    return load_desired_state(workdir)


def create_fleet(admin: SandboxClient, aws: AwsApi, size: int) -> None:
    if size > 1000:  # the standard tier registers at most 1,000 hybrid instances
        aws.call(
            "ssm",
            "UpdateServiceSetting",
            SettingId="/ssm/managed-instance/activation-tier",
            SettingValue="advanced",
        )
    half = size // 2
    for count, (directory, tags) in zip((half, size - half), DIRECTORIES.items(), strict=True):
        while count > 0:
            batch = min(count, MAX_GROUP)
            admin.post("fleet/workspaces", {"count": batch, "directoryId": directory, "tags": tags})
            count -= batch


class Endpoint:
    """The enrollment endpoint as ``run`` builds it, on a loopback port, its calls counted."""

    def __init__(self, sandbox_endpoint: str, desired: DesiredState, admission: AdmissionSettings):
        settings = AwsSettings(region="us-east-1", endpoint_url=sandbox_endpoint, rate_limits=None)
        self.recorder = CallRecorder()
        self.aws = AwsApi(settings, self.recorder)
        self.metrics = Metrics(controller_id=CONTROLLER_ID)
        target = EnrollmentTarget(
            "default", WorkspaceDirectory(self.aws), ActivationIssuer(self.aws, CONTROLLER_ID)
        )
        self.service = EnrollmentService(
            lambda: desired, [target], self.metrics, Admission(admission)
        )
        self.server = EnrollmentServer(self.service, "127.0.0.1", 0, max_in_flight=64).start()

    def results(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for family in self.metrics.registry.collect():
            if family.name == "fleet_enrollment_requests":
                for sample in family.samples:
                    if sample.name.endswith("_total") and sample.value:
                        counts[sample.labels["result"]] += int(sample.value)
        return counts

    def stop(self) -> None:
        self.server.stop()


def enroll_all(admin: SandboxClient, size: int, timeout: float) -> list[dict[str, Any]]:
    """Every WorkSpace asks (the sandbox's own clockwork, honouring backoff) until registered."""
    enroller = Enroller(0.5)
    enroller.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            rows = admin.get("fleet/enrollment")["workspaces"]
            if sum(1 for r in rows if r["registeredAt"]) >= size:
                return list(rows)
            time.sleep(0.5)
    finally:
        enroller.stop()
    raise RuntimeError(f"not every WorkSpace registered within {timeout:.0f}s")


def tagged(endpoint: str, wanted_key: str) -> int:
    """Instances carrying the TagSyncs' tags (one tagging-API walk)."""
    import boto3

    client = boto3.client(
        "resourcegroupstaggingapi", endpoint_url=endpoint, region_name="us-east-1"
    )
    count = 0
    for page in client.get_paginator("get_resources").paginate(
        ResourceTypeFilters=["ssm:managed-instance"], ResourcesPerPage=100
    ):
        for mapping in page["ResourceTagMappingList"]:
            keys = {t["Key"] for t in mapping.get("Tags", [])}
            count += wanted_key in keys and "fleet-controller/workspace-id" in keys
    return count


def latency(size: int) -> None:
    with tempfile.TemporaryDirectory() as work, Sandbox() as sandbox:
        admin = SandboxClient(sandbox.endpoint)
        admin.reset()  # one sandbox state per process: start each part from nothing
        desired = desired_state(Path(work))
        endpoint = Endpoint(sandbox.endpoint, desired, AdmissionSettings())
        try:
            create_fleet(admin, endpoint.aws, size)
            admin.post("fleet/enrollment", {"url": endpoint.server.url})
            started = time.perf_counter()
            rows = enroll_all(admin, size, timeout=600)
            wall = time.perf_counter() - started
            times = [r["registeredAt"] - r["bootedAt"] for r in rows]
            attempts = sum(r["attempts"] for r in rows)
            print(f"latency: {size} WorkSpaces boot at once, default rate limits (20/s, burst 100)")
            print(
                f"  boot -> registered and tagged: median {statistics.median(times):.2f} s,"
                f" max {max(times):.2f} s (all {size} within {wall:.1f} s)"
            )
            results = dict(sorted(endpoint.results().items()))
            print(f"  asks: {attempts} ({results})")
            print(
                f"  instances carrying their TagSync tags: {tagged(sandbox.endpoint, 'workspace:user')}/{size}"
            )
        finally:
            endpoint.stop()


def scale(size: int) -> None:
    with tempfile.TemporaryDirectory() as work, Sandbox() as sandbox:
        admin = SandboxClient(sandbox.endpoint)
        admin.reset()  # one sandbox state per process: start each part from nothing
        desired = desired_state(Path(work))
        lifted = AdmissionSettings(total_rate=1000.0, total_burst=1000.0)
        endpoint = Endpoint(sandbox.endpoint, desired, lifted)
        try:
            started = time.perf_counter()
            create_fleet(admin, endpoint.aws, size)
            created = time.perf_counter() - started
            endpoint.recorder.reset()
            admin.reset_calls()
            admin.post("fleet/enrollment", {"url": endpoint.server.url})
            started = time.perf_counter()
            enroll_all(admin, size, timeout=3600)
            enrolling = time.perf_counter() - started
            asking = endpoint.recorder.by_operation()
            sandbox_calls = admin.call_counts()
            activations = sandbox_calls["CreateActivation"]
            limits = Counter(
                a["RegistrationLimit"]
                for page in endpoint.aws.pages("ssm", "DescribeActivations", MaxResults=50)
                for a in page["ActivationList"]
            )
            endpoint.recorder.reset()
            reconciler = Reconciler(
                endpoint.aws,
                ReconcileSettings(controller_id=CONTROLLER_ID),
                Metrics(),
                kinds=[EnrollmentKind()],
            )
            started = time.perf_counter()
            _, result = reconciler.reconcile(desired)
            cleaning = time.perf_counter() - started
            cleanup = endpoint.recorder.by_operation()
        finally:
            endpoint.stop()
    asked = sum(asking.values())
    print(f"scale: {size:,} WorkSpaces (created in {created:.0f} s)")
    print(
        f"  enrolled in {enrolling:.0f} s: {activations:,} activations created, registration limits"
        f" {dict(limits)}, 0 rotations (one shared activation registers at most 1,000: a chain of"
        f" {math.ceil(size / 1000)})"
    )
    print(
        f"  AWS calls asking: {asked:,} = {asked / size:.3f} per enrollment {dict(sorted(asking.items()))}"
    )
    cleaned = sum(cleanup.values())
    print(
        f"  cleanup pass ({cleaning:.0f} s, {len(result.applied):,} activations deleted):"
        f" {cleaned:,} calls = {cleaned / size:.3f} per enrollment {dict(sorted(cleanup.items()))}"
    )
    print(f"  total: {(asked + cleaned) / size:.3f} AWS calls per enrolled WorkSpace")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=int, default=200, metavar="N")
    parser.add_argument("--scale", type=int, default=10000, metavar="N")
    args = parser.parse_args()
    configure_logging("console", "error")
    fake_credentials()
    if args.latency:
        latency(args.latency)
    if args.scale:
        scale(args.scale)


if __name__ == "__main__":
    main()
