"""Small builders shared by the runtime tests: desired state on disk, a reconciler on the sandbox."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.aws import AwsApi, AwsSettings, CallRecorder
from controller.engine.reconcile import Reconciler, ReconcileSettings
from controller.observability.metrics import Metrics

CONTROLLER_ID = "runtime-test"


def activation(name: str, parameter: str | None = None) -> str:
    return f"""apiVersion: fleet-controller/v1alpha1
kind: Activation
metadata:
  name: {name}
spec:
  iamRole: SSMServiceRole
  registrationLimit: 10
  publish:
    parameterName: {parameter or f"/fleet-controller/activations/{name}"}
"""


def activations_dir(directory: Path, *names: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / f"{name}.yaml").write_text(activation(name), encoding="utf-8")
    return directory


def reconciler(
    endpoint: str, metrics: Metrics, target: str = "default", region: str = "us-east-1"
) -> Reconciler:
    api = AwsApi(
        AwsSettings(region=region, endpoint_url=endpoint, rate_limits=None, max_attempts=1),
        CallRecorder(),
        sleep=lambda seconds: None,
    )
    return Reconciler(api, ReconcileSettings(controller_id=CONTROLLER_ID, target=target), metrics)


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def eventually(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """``check()``'s first truthy result within ``timeout`` seconds (else the last one, failed)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:.0f}s: {check.__name__}")
        time.sleep(interval)


TABLE = "fleet-controller-leases"
"""The lease table of the ``table`` fixture (tests/runtime/conftest.py)."""


def api(endpoint: str) -> AwsApi:
    """An AwsApi for lease calls in tests: one attempt, short timeouts, no sleeping."""
    return AwsApi(
        AwsSettings(
            region="us-east-1",
            endpoint_url=endpoint,
            rate_limits=None,
            max_attempts=1,
            connect_timeout_seconds=1,
            # Generous: under a loaded machine the sandbox may answer slowly, and a timed-out
            # call would look like a lost lease; these tests are about order, not latency.
            read_timeout_seconds=60,
        ),
        CallRecorder(),
        sleep=lambda seconds: None,
    )


class WaitingEvent(threading.Event):
    """An Event that tells whether a thread is blocked in ``wait`` on it.

    A loop (or the poller) blocked in ``wait`` with the event clear has nothing left to do until
    someone sets it: the observable point a test waits for before asserting that nothing more
    happened, instead of sleeping and hoping.
    """

    def __init__(self) -> None:
        super().__init__()
        self._count_lock = threading.Lock()
        self._waiters = 0

    def wait(self, timeout: float | None = None) -> bool:
        with self._count_lock:
            self._waiters += 1
        try:
            return super().wait(timeout)
        finally:
            with self._count_lock:
                self._waiters -= 1

    @property
    def idle(self) -> bool:
        """A thread waits on it and nothing has set it."""
        with self._count_lock:
            return self._waiters > 0 and not self.is_set()
