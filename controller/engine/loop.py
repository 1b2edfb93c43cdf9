"""The long-running loop: load the desired state, reconcile, wait an interval with jitter, repeat.

An invalid revision is never applied: the loop keeps reconciling the last good one, sets the
validity metric to 0 and logs every error. A stop request (SIGTERM) lets the current operation
finish and then ends the loop.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from controller.engine.reconcile import Reconciler
from controller.manifests import DesiredState, InvalidDesiredState
from controller.observability.metrics import Metrics

log = structlog.get_logger("fleet_controller.loop")

DesiredStateSource = Callable[[], DesiredState]


@dataclass
class LoopSettings:
    interval_seconds: float = 300.0
    jitter_fraction: float = 0.1  # each wait is interval * (1 ± jitter)
    enforce: bool = True
    max_iterations: int | None = None  # for tests and one-shot runs


class ReconcileLoop:
    def __init__(
        self,
        source: DesiredStateSource,
        reconciler: Reconciler,
        metrics: Metrics,
        settings: LoopSettings,
        stop: threading.Event | None = None,
        wake: threading.Event | None = None,
    ) -> None:
        self.source = source
        self.reconciler = reconciler
        self.metrics = metrics
        self.settings = settings
        self.stop = stop or threading.Event()
        self.wake = wake or threading.Event()  # set to reconcile now (webhooks, tests)
        self.last_good: DesiredState | None = None
        self.completed = 0
        self._random = random.Random()

    def run(self) -> None:
        iterations = 0
        while not self.stop.is_set():
            self.run_once()
            iterations += 1
            if (
                self.settings.max_iterations is not None
                and iterations >= self.settings.max_iterations
            ):
                return
            self._wait()

    def run_once(self) -> None:
        desired = self._load()
        if desired is None:
            return
        try:
            plan, result = self.reconciler.reconcile(
                desired, enforce=self.settings.enforce, stop=self.stop
            )
        except Exception as error:
            log.error("reconcile failed", error=f"{type(error).__name__}: {error}")
            return
        self.completed += 1
        log.info(
            "reconciled",
            mode="enforce" if self.settings.enforce else "observe",
            operations=len(plan.operations),
            applied=len(result.applied),
            failed=len(result.failed),
            findings=len(plan.findings),
            refused=len(plan.refused),
            revision=desired.digest[:12],
        )

    def _load(self) -> DesiredState | None:
        try:
            desired = self.source()
        except InvalidDesiredState as invalid:
            self.metrics.set_desired_state(False)
            for error in invalid.errors:
                log.error("invalid desired state", error=str(error))
            if self.last_good is None:
                log.error("no valid desired state yet: nothing is reconciled")
            else:
                log.warning(
                    "keeping the last good desired state", revision=self.last_good.digest[:12]
                )
            return self.last_good
        self.metrics.set_desired_state(True, desired.digest[:12])
        self.last_good = desired
        return desired

    def _wait(self) -> None:
        jitter = self.settings.jitter_fraction
        seconds = self.settings.interval_seconds * (1 + self._random.uniform(-jitter, jitter))
        self.wake.wait(timeout=max(0.0, seconds))
        self.wake.clear()

    def request_stop(self) -> None:
        """Finish the current operation, then end the loop (the SIGTERM handler calls this)."""
        self.stop.set()
        self.wake.set()

    @property
    def ready(self) -> bool:
        return self.completed > 0
