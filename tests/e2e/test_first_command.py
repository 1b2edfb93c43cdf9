"""The README's two commands from a clean clone, as a new user runs them.

The first command is run for real: a fresh clone, a fresh venv, the install exactly as the README
writes it (the ``sandbox`` extra, not the development toolchain), then the controller against its
embedded sandbox until the demo fleet converged, as its own /metrics tell (every WorkSpace enrolled,
Online and tagged, every install reported). At 60 s or later its /metrics are read and held
against the sandbox itself, read with boto3 (never through the controller's code): every series
the README documents is there, and what it says is true. Ctrl-C (SIGINT) stops it, exit 0.
The second command's install is run in the same clone, and its test suite collects there.

Install time depends on pip's cache (per machine, pip's own); the figures are printed (``-s``)
and measured for the README by ``python -m benchmarks.first_command --clean-clone``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import ROOT, eventually, free_port, http_get

pytestmark = pytest.mark.timeout(1200)

WORKSPACES = 50  # the demo fleet (--sandbox-workspaces' default)
MANIFESTS = {  # desired-state/: manifests per kind (the detection document is implied)
    "Activation": 1,
    "Enrollment": 1,
    "TagSync": 2,
    "Package": 3,
    "Association": 3,
    "DetectionDocument": 1,
}
# Documented series that have nothing to count in the demo, and why.
NOTHING_TO_COUNT = {
    "webhook_requests_total": "the demo has no webhook",
    "aws_api_retries_total": "the sandbox answers every call the first time",
    "events_received_total": "the demo reads no events queue (its labels are the events' own)",
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def readme_commands(root: Path) -> list[str]:
    text = (root / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def documented_series(root: Path) -> set[str]:
    """``fleet_<name>`` for every series the README's Metrics section names."""
    text = (root / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Metrics") :]
    section = section[: section.index("\n## ", 5)]
    names = re.findall(r"`([a-z]+(?:_[a-z]+)*)(\{[^}`]*\})?`", section)
    return {f"fleet_{name}" for name, labels in names if "_" in name or labels}


def scrape(url: str) -> Samples:
    try:
        status, body = http_get(url, timeout=5)
    except OSError:
        return {}
    if status != 200:
        return {}
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, found), value in samples.items()
        if sample == name and set(labels.items()) <= set(found)
    )


def by_label(samples: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    return {
        tuple(dict(found).get(k, "") for k in keys): value
        for (sample, found), value in samples.items()
        if sample == name
    }


def converged(samples: Samples) -> bool:
    """Every WorkSpace enrolled, Online and tagged, every install reported, nothing drifted."""
    installs = by_label(samples, "fleet_association_instances", "association", "status")
    names = {association for association, _ in installs}
    reported = len(names) == MANIFESTS["Association"] and all(
        installs.get((n, "Success"), 0) > 0
        and installs.get((n, "Pending"), 0) == installs.get((n, "Failed"), 0) == 0
        for n in names
    )
    return (
        total(samples, "fleet_enrollment_requests_total", result="issued") == WORKSPACES
        and total(samples, "fleet_managed_instances", ping_status="Online") == WORKSPACES
        and any(name == "fleet_workspaces_not_onboarded" for name, _ in samples)
        and total(samples, "fleet_workspaces_not_onboarded") == 0
        and total(samples, "fleet_drifted_resources") == 0
        and reported
    )


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed tree, cloned as a new user would."""
    where = tmp_path_factory.mktemp("clean") / "fleet-controller"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(where)], check=True)
    return where


@pytest.fixture(scope="module")
def demo(clone: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The first command: install timed and sized, then the demo running on a free port."""
    install, _, command = readme_commands(clone)[0].rpartition(" && ")
    assert "'.[sandbox]'" in install and command.startswith(".venv/bin/fleet-controller run")
    started = time.monotonic()
    done = subprocess.run(["bash", "-c", install], cwd=clone, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    installed = time.monotonic() - started
    listed = subprocess.run(
        [str(clone / ".venv/bin/python"), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    packages = {p["name"].lower() for p in json.loads(listed.stdout)}
    size = sum(f.stat().st_size for f in (clone / ".venv").rglob("*") if f.is_file())
    print(f"\ninstall: {installed:.1f} s, {len(packages)} packages, {size / 1e6:.0f} MB")

    port = free_port()
    log_path = tmp_path_factory.mktemp("demo") / "demo.log"
    with log_path.open("wb") as log:
        # The README's command, on a free metrics port (tests share this machine).
        process = subprocess.Popen(
            ["bash", "-c", f"exec {command} --metrics-port {port}"],
            cwd=clone,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_user_environment(),
        )
        try:
            yield {
                "process": process,
                "started": time.monotonic(),
                "url": f"http://127.0.0.1:{port}/metrics",
                "log": log_path,
                "packages": packages,
            }
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def _user_environment() -> dict[str, str]:
    """This machine's environment without this test run's Python and AWS settings."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "AWS_PROFILE", "AWS_ENDPOINT_URL"}
    environment = {k: v for k, v in os.environ.items() if k not in drop}
    return {**environment, "PYTHONUNBUFFERED": "1"}


def events(log: Path) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            found.append(entry)
    return found


def test_the_first_command_installs_only_what_running_needs(demo):
    packages = demo["packages"]
    assert {"moto", "flask", "rich", "boto3"} <= packages
    # The development toolchain and moto's every-service dependencies stay out.
    assert not packages & {"pytest", "mypy", "ruff", "hypothesis", "cfn-lint", "sympy", "docker"}


def test_the_demo_converges_and_its_metrics_at_60_s_are_there_and_true(demo):
    process, url = demo["process"], demo["url"]

    def reached() -> bool:
        if process.poll() is not None:
            raise AssertionError(demo["log"].read_text()[-5000:])
        return converged(scrape(url))

    eventually(reached, 300, interval=0.5, what="the demo fleet converged")
    print(f"converged {time.monotonic() - demo['started']:.1f} s after the start")
    wait = 60 - (time.monotonic() - demo["started"])
    if wait > 0:
        time.sleep(wait)  # the moment: /metrics at +60 s (a point in time, not a bound)
    samples = scrape(url)
    assert converged(samples)  # still: nothing undid it

    names = {name for name, _ in samples}
    families = {re.sub(r"_(created|count|sum|bucket)$", "", n) for n in names}
    families |= {n.removesuffix("_total") for n in families}
    families |= {f"{n}_total" for n in families}
    missing = documented_series(ROOT) - families - {f"fleet_{n}" for n in NOTHING_TO_COUNT}
    assert missing == set(), f"documented but without a sample at +60 s: {sorted(missing)}"

    [endpoint] = {e["endpoint"] for e in events(demo["log"]) if "endpoint" in e}
    truth = Truth(endpoint)
    assert truth.online == WORKSPACES
    assert total(samples, "fleet_managed_instances", ping_status="Online") == truth.online
    for status in ("ConnectionLost", "Inactive"):
        assert total(samples, "fleet_managed_instances", ping_status=status) == truth.pings.get(
            status, 0
        )

    managed = by_label(samples, "fleet_managed_resources", "kind")
    assert managed == {
        ("Activation",): truth.owned_activations("Activation"),
        ("Enrollment",): truth.owned_activations("Enrollment"),
        ("Package",): truth.owned_documents("Package"),
        ("DetectionDocument",): truth.owned_documents("Command"),
        ("Association",): len(truth.associations),
        ("TagSync",): truth.joined_workspaces(),
    }
    assert all(managed[(kind,)] > 0 for kind in MANIFESTS if kind != "Enrollment")

    healthy = by_label(samples, "fleet_resources", "kind", "health")
    for kind, count in MANIFESTS.items():
        assert healthy[(kind, "Healthy")] == count, kind

    activation = truth.activation("Activation/workspaces")
    labels = {"activation": "workspaces"}
    assert total(samples, "fleet_activation_expiry_timestamp_seconds", **labels) == pytest.approx(
        activation["ExpirationDate"].timestamp(), abs=1
    )
    assert (
        total(samples, "fleet_activation_registrations", **labels)
        == (activation["RegistrationsCount"])
    )
    assert (
        total(samples, "fleet_activation_registration_limit", **labels)
        == (activation["RegistrationLimit"])
    )

    installs = by_label(samples, "fleet_association_instances", "association", "status")
    assert {name for name, _ in installs} == set(truth.associations)
    for name, counts in truth.associations.items():
        for status in ("Success", "Failed", "Pending"):
            assert installs[(name, status)] == counts.get(status, 0), (name, status)

    enrollments = by_label(samples, "fleet_enrollment_activations", "state")
    assert enrollments[("waiting",)] == truth.waiting_enrollment_activations()
    assert total(samples, "fleet_enrollment_requests_total", result="issued") == WORKSPACES
    assert total(samples, "fleet_impostor_instances") == 0
    assert total(samples, "fleet_stale_instances") == 0
    assert total(samples, "fleet_package_noncompliant_instances") == 0
    assert len(by_label(samples, "fleet_package_noncompliant_instances", "package")) == 3
    assert total(samples, "fleet_refused_resources") == 0
    assert total(samples, "fleet_desired_state_valid") == 1
    assert len(by_label(samples, "fleet_desired_state_info", "revision")) == 1
    assert total(samples, "fleet_reconciles_total", result="success") >= 2
    assert total(samples, "fleet_reconciles_total", result="error") == 0
    assert total(samples, "fleet_apply_operations_total", result="success") > 0
    assert total(samples, "fleet_apply_operations_total", result="error") == 0
    assert total(samples, "fleet_aws_api_calls_total", outcome="success") > 0
    assert abs(total(samples, "fleet_aws_clock_skew_seconds")) < 60
    assert total(samples, "fleet_leader") == 1
    assert total(samples, "fleet_managed_instance_quota") == 1000
    finished = total(samples, "fleet_last_successful_reconcile_timestamp_seconds")
    assert time.time() - 120 < finished <= time.time()


def test_ctrl_c_stops_the_demo_cleanly(demo):
    process = demo["process"]
    assert process.poll() is None
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 0
    said = [e.get("event") for e in events(demo["log"])]
    assert "stop requested" in said and said[-1] == "stopped"
    assert not any(e.get("level") in ("error", "critical") for e in events(demo["log"]))
    # The sandbox's own chatter (each simulated WorkSpace registering) is off unless asked for.
    assert not any(
        str(e.get("logger", "")).startswith("fleet_sandbox") for e in events(demo["log"])
    )


def test_the_second_command_installs_the_toolchain_and_its_suite_collects(clone, demo):
    second = readme_commands(clone)[1]
    install, _, command = second.rpartition(" && ")
    assert "'.[dev]'" in install and command == ".venv/bin/python -m pytest"
    done = subprocess.run(["bash", "-c", install], cwd=clone, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    collected = subprocess.run(
        [*shlex.split(command), "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=clone,
        capture_output=True,
        text=True,
    )
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    count = re.search(r"(\d+) tests? collected", collected.stdout)
    assert count and int(count.group(1)) > 500, collected.stdout[-500:]


class Truth:
    """The sandbox as boto3 reads it: what the metrics must agree with."""

    def __init__(self, endpoint: str) -> None:
        session = boto3.Session(
            aws_access_key_id="sandbox", aws_secret_access_key="sandbox", region_name="us-east-1"
        )
        self.ssm = session.client("ssm", endpoint_url=endpoint)
        self.workspaces_api = session.client("workspaces", endpoint_url=endpoint)
        self.instances = [
            i
            for page in self.ssm.get_paginator("describe_instance_information").paginate()
            for i in page["InstanceInformationList"]
        ]
        self.pings = Counter(i["PingStatus"] for i in self.instances)
        self.online = self.pings["Online"]
        self.activations = [
            {**a, "tags": {t["Key"]: t["Value"] for t in a.get("Tags", [])}}
            for page in self.ssm.get_paginator("describe_activations").paginate()
            for a in page["ActivationList"]
        ]
        self.associations: dict[str, dict[str, int]] = {}
        for page in self.ssm.get_paginator("list_associations").paginate():
            for listed in page["Associations"]:
                described = self.ssm.describe_association(AssociationId=listed["AssociationId"])
                description = described["AssociationDescription"]
                counts = description["Overview"].get("AssociationStatusAggregatedCount", {})
                self.associations[description["AssociationName"]] = counts

    def _tags(self, kind: str, resource: str) -> dict[str, str]:
        listed = self.ssm.list_tags_for_resource(ResourceType=kind, ResourceId=resource)
        return {t["Key"]: t["Value"] for t in listed["TagList"]}

    def owned_activations(self, kind: str) -> int:
        return sum(
            1
            for a in self.activations
            if a["tags"].get("fleet-controller/manifest", "").startswith(f"{kind}/")
            and a["tags"].get("fleet-controller/owner") == "fleet-controller"
        )

    def activation(self, manifest: str) -> dict[str, Any]:
        [found] = [
            a for a in self.activations if a["tags"].get("fleet-controller/manifest") == manifest
        ]
        assert isinstance(found["ExpirationDate"], datetime)
        return found

    def waiting_enrollment_activations(self) -> int:
        return sum(
            1
            for a in self.activations
            if a["tags"].get("fleet-controller/manifest", "").startswith("Enrollment/")
            and a["RegistrationsCount"] == 0
            and not a.get("Expired")
        )

    def owned_documents(self, document_type: str) -> int:
        found = 0
        filters = [
            {"Key": "Owner", "Values": ["Self"]},
            {"Key": "DocumentType", "Values": [document_type]},
        ]
        for page in self.ssm.get_paginator("list_documents").paginate(Filters=filters):
            for document in page["DocumentIdentifiers"]:
                tags = self._tags("Document", document["Name"])
                found += tags.get("fleet-controller/owner") == "fleet-controller"
        return found

    def joined_workspaces(self) -> int:
        """WorkSpaces whose instance carries their ID in the join tag."""
        workspaces = {
            w["WorkspaceId"]
            for page in self.workspaces_api.get_paginator("describe_workspaces").paginate()
            for w in page["Workspaces"]
        }
        assert len(workspaces) == WORKSPACES
        joined = {
            self._tags("ManagedInstance", i["InstanceId"]).get("fleet-controller/workspace-id")
            for i in self.instances
        }
        return len(workspaces & joined)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-s"]))
