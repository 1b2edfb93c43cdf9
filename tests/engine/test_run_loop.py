"""`run`: the loop as a process: metrics over HTTP, SIGTERM finishes the operation in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from controller.observability.http import ObservabilityServer
from controller.service.loop import DesiredStateTracker, LoopSettings, ReconcileLoop
from controller.service.source.directory import DirectorySource
from tests.engine.helpers import boot, controller, copy_example, load, make_fleet, writes


def _loop(directory, reconciler, settings: LoopSettings) -> ReconcileLoop:
    tracker = DesiredStateTracker(DirectorySource(directory), reconciler.metrics)
    tracker.refresh()
    return ReconcileLoop(tracker.current, reconciler, reconciler.metrics, settings)


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_loop_exposes_reconcile_and_fleet_metrics(sandbox, tmp_path):
    directory = copy_example(tmp_path / "desired")
    make_fleet(sandbox, finance=4, engineering=3)
    reconciler = controller(sandbox)
    reconciler.reconcile(load(directory))
    boot(sandbox)
    loop = _loop(directory, reconciler, LoopSettings(interval_seconds=0.05, max_iterations=2))
    with ObservabilityServer(
        reconciler.metrics, ready=lambda: loop.ready, host="127.0.0.1", port=0
    ) as server:
        assert urllib.request.urlopen(server.url + "/healthz").status == 200
        try:
            urllib.request.urlopen(server.url + "/readyz")
            raise AssertionError("not ready before the first reconcile")
        except urllib.error.HTTPError as error:
            assert error.code == 503
        loop.run()
        assert urllib.request.urlopen(server.url + "/readyz").status == 200
        samples = _samples(server.url + "/metrics")

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted({"target": "default", **labels}.items())))]

    assert value("fleet_reconciles_total", result="success") == 3
    assert value("fleet_managed_instances", ping_status="Online") == 7
    assert value("fleet_managed_resources", kind="TagSync") == 7
    assert value("fleet_drifted_resources", kind="TagSync") == 0  # applied on the first pass
    assert (
        value("fleet_apply_operations_total", kind="TagSync", action="update", result="success")
        == 7
    )
    assert value("fleet_activation_registrations", activation="workspaces") == 7
    assert value("fleet_activation_registration_limit", activation="workspaces") == 1000
    assert value("fleet_workspaces_not_onboarded", tagsync="finance") == 0
    assert samples[("fleet_desired_state_valid", ())] == 1


def test_observe_mode_reports_drift_and_writes_nothing(sandbox, tmp_path):
    directory = copy_example(tmp_path / "desired")
    make_fleet(sandbox, finance=2, engineering=0)
    reconciler = controller(sandbox)
    reconciler.reconcile(load(directory))
    boot(sandbox)
    sandbox.admin.reset_calls()
    settings = LoopSettings(interval_seconds=0, enforce=False, max_iterations=1)
    _loop(directory, reconciler, settings).run()
    assert (
        'fleet_drifted_resources{kind="TagSync",target="default"} 2.0' in reconciler.metrics.text()
    )
    assert writes(sandbox) == {}  # no write of any kind, not only no tag write
    assert sandbox.admin.call_counts("ssm")["DescribeInstanceInformation"] >= 1  # it did look


def test_sigterm_finishes_the_operation_in_flight_and_exits_0(sandbox, tmp_path):
    directory = copy_example(tmp_path / "desired")
    make_fleet(sandbox, finance=30, engineering=0)
    controller(sandbox).reconcile(load(directory))
    boot(sandbox)
    sandbox.admin.set_faults(
        [{"service": "ssm", "operation": "AddTagsToResource", "latency_ms": 150}]
    )
    sandbox.admin.reset_calls()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "controller.cli",
            "run",
            str(directory),
            "--endpoint-url",
            sandbox.endpoint,
            "--region",
            "us-east-1",
            "--controller-id",
            "test-controller",
            "--interval",
            "600",
            "--metrics-port",
            "0",
            "--log-format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while sandbox.admin.call_counts("ssm")["AddTagsToResource"] < 3:
        assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    reader.join(timeout=10)
    events = [json.loads(line) for line in lines if line.startswith("{")]
    applied = [
        e for e in events if e.get("event") == "operation applied" and e.get("kind") == "TagSync"
    ]
    served = sandbox.admin.call_counts("ssm")["AddTagsToResource"]
    assert 3 <= served < 30  # stopped early ...
    assert len(applied) == served  # ... and every operation started was finished and logged
    assert any(e.get("event") == "apply stopped" for e in events)
