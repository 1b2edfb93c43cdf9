"""The run orchestration: triggers coalesce, one failing target leaves the others alone, wiring."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from controller.aws import AwsApi, AwsSettings, CallRecorder
from controller.cli import build_parser, main, service_config
from controller.engine.reconcile import Reconciler, ReconcileSettings
from controller.observability.metrics import Metrics
from controller.service.loop import DesiredStateTracker, LoopSettings, ReconcileLoop
from controller.service.runtime import Runtime, Service
from controller.service.source import DirectorySource, Revision
from tests.runtime.helpers import (
    WaitingEvent,
    activations_dir,
    eventually,
    reconciler,
    sample,
)

ROOT = Path(__file__).resolve().parents[2]


class GatedSource(DirectorySource):
    """A directory whose reads, once ``gated``, each wait for the test to let them through: the
    test decides when a fetch ends, so triggers land inside it for certain, on any machine."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.gated = False
        self.entered = 0  # fetches started
        self._gate = threading.Semaphore(0)

    def fetch(self) -> Revision:
        self.entered += 1
        if self.gated and not self._gate.acquire(timeout=60):
            raise TimeoutError("the test never let this fetch through")
        return super().fetch()

    def let_one_through(self) -> None:
        self._gate.release()


def start(runtime: Runtime) -> threading.Thread:
    thread = threading.Thread(target=runtime.run, daemon=True)
    thread.start()
    return thread


def test_a_burst_of_triggers_coalesces_into_one_more_fetch_and_pass(sandbox, tmp_path):
    metrics = Metrics()
    source = GatedSource(activations_dir(tmp_path / "desired", "alpha"))
    tracker = DesiredStateTracker(source, metrics)
    tracker.refresh()
    settings = LoopSettings(interval_seconds=600)  # nothing happens on its own during the test
    loop_wake = WaitingEvent()
    loop = ReconcileLoop(
        tracker.current, reconciler(sandbox.endpoint, metrics), metrics, settings, wake=loop_wake
    )
    runtime = Runtime(tracker, {"default": loop}, settings)
    poller_wake = runtime._source_wake = WaitingEvent()  # observe the poller's idle point
    thread = start(runtime)

    def idle() -> bool:
        """The poller and the loop both wait with nothing set: no fetch or pass is due."""
        return poller_wake.idle and loop_wake.idle

    eventually(lambda: loop.completed == 1 and idle())
    fetches, passes = source.entered, loop.completed
    source.gated = True
    runtime.trigger()
    eventually(lambda: source.entered == fetches + 1)  # the fetch it caused is in progress
    for _ in range(20):
        runtime.trigger()  # every one of them during that fetch
    source.let_one_through()
    eventually(lambda: source.entered == fetches + 2)  # the burst: one more fetch
    source.let_one_through()
    eventually(idle)
    assert source.entered == fetches + 2  # 21 triggers, two fetches
    assert 1 <= loop.completed - passes <= 2  # a pass per fetch, or one for both
    runtime.request_stop()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_one_failing_target_does_not_stop_the_others(sandbox, tmp_path):
    metrics = Metrics(targets=["healthy", "unreachable"])
    tracker = DesiredStateTracker(
        DirectorySource(activations_dir(tmp_path / "d", "alpha")), metrics
    )
    tracker.refresh()
    broken_api = AwsApi(
        AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9", max_attempts=1),
        CallRecorder(),
    )
    settings = LoopSettings(interval_seconds=0.2, max_iterations=3)
    loops = {
        "healthy": ReconcileLoop(
            tracker.current,
            reconciler(sandbox.endpoint, metrics, target="healthy"),
            metrics,
            settings,
        ),
        "unreachable": ReconcileLoop(
            tracker.current,
            Reconciler(broken_api, ReconcileSettings(target="unreachable"), metrics),
            metrics,
            settings,
        ),
    }
    Runtime(tracker, loops, settings).run()  # returns once every loop ran its passes
    assert sample(metrics, "fleet_reconciles_total", target="healthy", result="success") == 3
    assert sample(metrics, "fleet_reconciles_total", target="unreachable", result="error") == 3
    assert sample(metrics, "fleet_reconciles_total", target="unreachable", result="success") == 0


def request(url: str, method: str = "GET", body: bytes = b"") -> int:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, parts.path, body=body)
        return connection.getresponse().status
    finally:
        connection.close()


def service(sandbox, tmp_path, *extra: str) -> Service:
    desired = activations_dir(tmp_path / "desired", "alpha")
    args = build_parser().parse_args(
        ["run", str(desired), "--endpoint-url", sandbox.endpoint, "--region", "us-east-1",
         "--metrics-host", "127.0.0.1", "--metrics-port", "0", *extra]
    )  # fmt: skip
    return Service.build(service_config(args))


def test_no_webhook_route_without_a_secret(sandbox, tmp_path, monkeypatch):
    monkeypatch.delenv("FLEET_WEBHOOK_SECRET", raising=False)
    with service(sandbox, tmp_path) as built:
        url = built.server.url
        assert request(f"{url}/webhook", "POST", b"{}") == 404
        assert request(f"{url}/readyz") == 503  # nothing reconciled yet
        assert request(f"{url}/healthz") == 200


def test_with_a_secret_the_webhook_is_mounted(sandbox, tmp_path, monkeypatch):
    monkeypatch.setenv("FLEET_WEBHOOK_SECRET", "a-secret-of-sufficient-length")
    with service(sandbox, tmp_path) as built:
        assert request(f"{built.server.url}/webhook", "POST", b"{}") == 401


def test_run_needs_exactly_one_source(tmp_path, capsys):
    assert main(["run", "--metrics-port", "0"]) == 1
    assert "run needs a desired-state directory or --git-url" in capsys.readouterr().err
    desired = activations_dir(tmp_path / "desired", "alpha")
    assert main(["run", str(desired), "--git-url", "file:///x", "--metrics-port", "0"]) == 1
    assert "not both" in capsys.readouterr().err


def test_a_bad_targets_file_stops_run_with_its_location(tmp_path, capsys):
    desired = activations_dir(tmp_path / "desired", "alpha")
    targets = tmp_path / "targets.yaml"
    targets.write_text("targets:\n  - name: a\n    region: nowhere\n")
    assert main(["run", str(desired), "--targets", str(targets), "--metrics-port", "0"]) == 1
    assert "targets.0.region" in capsys.readouterr().err


@pytest.mark.timeout(180)
def test_run_with_the_embedded_sandbox_still_works(tmp_path):
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox"}
    done = subprocess.run(
        [sys.executable, "-m", "controller.cli", "run", str(ROOT / "desired-state"), "--sandbox",
         "--interval", "0.5", "--iterations", "2", "--metrics-port", "0", "--log-format", "json"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=170, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"event": "embedded sandbox started"' in done.stderr
    reconciled = [line for line in done.stderr.splitlines() if '"event": "reconciled"' in line]
    assert len(reconciled) == 2
    assert '"target": "default"' in reconciled[0]


def test_an_invalid_directory_at_start_stops_run_with_located_errors(tmp_path, capsys):
    desired = activations_dir(tmp_path / "desired", "alpha")
    (desired / "alpha.yaml").write_text(
        (desired / "alpha.yaml").read_text().replace("iamRole", "iamRol")
    )
    assert main(["run", str(desired), "--metrics-port", "0"]) == 1
    err = capsys.readouterr().err
    assert "desired/alpha.yaml:6: Activation/alpha: spec.iamRol" in err


def test_a_missing_lease_table_is_an_error_at_start(sandbox, tmp_path, capsys):
    desired = activations_dir(tmp_path / "desired", "alpha")
    code = main(
        ["run", str(desired), "--endpoint-url", sandbox.endpoint, "--region", "us-east-1",
         "--lease-table", "no-such-table", "--metrics-port", "0"]
    )  # fmt: skip
    assert code == 1
    assert "lease table 'no-such-table' does not exist in us-east-1" in capsys.readouterr().err


def test_without_leases_this_replica_leads_every_target(sandbox, tmp_path):
    with service(sandbox, tmp_path) as built:
        assert sample(built.metrics, "fleet_leader", target="default") == 1


def test_a_bounded_run_that_never_read_its_git_source_exits_1(sandbox, tmp_path, capsys):
    """Hole 8 of issue 9: ``run --iterations 1`` with an unreachable git URL exited 0 having
    reconciled nothing, so a CI job or cron job running it looked green."""
    unreachable = f"file://{tmp_path / 'no-such-repository.git'}"
    sandbox.admin.reset_calls()
    code = main(
        ["run", "--git-url", unreachable, "--git-dir", str(tmp_path / "clone"),
         "--iterations", "1", "--interval", "0.1", "--endpoint-url", sandbox.endpoint,
         "--region", "us-east-1", "--metrics-port", "0", "--log-format", "json"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "error: no valid desired state was read from" in err
    assert "nothing was reconciled" in err
    assert sandbox.admin.calls() == []


def test_a_bounded_run_that_reconciled_exits_0(sandbox, tmp_path, capsys):
    desired = activations_dir(tmp_path / "desired", "alpha")
    code = main(
        ["run", str(desired), "--iterations", "1", "--endpoint-url", sandbox.endpoint,
         "--region", "us-east-1", "--metrics-port", "0", "--log-format", "json"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err[-2000:]


def test_a_bounded_run_whose_every_pass_failed_exits_1(sandbox, tmp_path, capsys):
    desired = activations_dir(tmp_path / "desired", "alpha")
    sandbox.admin.set_faults([{"service": "ssm", "deny_rate": 1.0}])
    try:
        code = main(
            ["run", str(desired), "--iterations", "2", "--interval", "0.1", "--endpoint-url",
             sandbox.endpoint, "--region", "us-east-1", "--metrics-port", "0",
             "--log-format", "json"]
        )  # fmt: skip
    finally:
        sandbox.admin.set_faults([])
    err = capsys.readouterr().err
    assert code == 1, err[-2000:]
    assert "every pass failed for target(s) default" in err
