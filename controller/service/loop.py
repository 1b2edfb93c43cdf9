"""The long-running loop: keep the last good revision, reconcile it, wait an interval, repeat.

Two parts, because one desired-state source feeds many targets:

* ``DesiredStateTracker`` fetches and validates revisions. An invalid revision is never applied:
  the tracker keeps the last good one, sets the validity metric to 0 and logs every error; a
  source it cannot reach (network, credentials) keeps the last good one too.
* ``ReconcileLoop`` reconciles one target with the tracker's last good revision every interval
  (with jitter), or at once when its ``wake`` event is set (a new revision, a webhook, a lease
  just acquired). Repeated wakes while a pass runs coalesce into one more pass. A pass may ask
  for the next one sooner (a kind's requeue wish: an activation's renewal window, a grace
  period's end, registrations under way; or a resource's backoff ending): the loop honours the
  earliest, never sooner than ``min_requeue_seconds`` and never later than the interval.

With leases, a loop only reconciles while its ``WriteGuard`` says this replica may write to the
target, and checks it again before every operation it applies.

With events (``relist_interval_seconds``), a pass reads the whole fleet only when the last relist
is that old; the passes in between (the interval, a new revision, a requeue) diff against the
live cache that events keep fresh, so a new desired state starts writing at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import structlog

from controller.config import LoopSettings as LoopSettings  # re-exported: where the loop reads it
from controller.contract import Requeue
from controller.engine.reconcile import Reconciler
from controller.kinds.informer import FleetInformer
from controller.kinds.tagsync import KIND as TAGSYNC
from controller.observability.metrics import DEFAULT_TARGET, Metrics
from controller.observability.redaction import redact_text
from controller.observability.report import FindingJournal, log_finding_changes, pass_summary
from controller.service.ha.guard import WriteGate, WriteGuard
from controller.service.source.base import (
    DesiredStateSource,
    InvalidRevision,
    Revision,
    SourceUnavailable,
)

log = structlog.get_logger("fleet_controller.loop")


class Refresh(StrEnum):
    NEW = "new"  # a valid revision other than the one enforced so far
    SAME = "same"  # the revision enforced so far
    INVALID = "invalid"  # a revision that did not validate (nothing changes)
    UNAVAILABLE = "unavailable"  # the source could not be read (nothing changes)


class DesiredStateTracker:
    """The last good revision of one source, and the controller-wide desired-state metrics."""

    def __init__(self, source: DesiredStateSource, metrics: Metrics) -> None:
        self.source = source
        self.metrics = metrics
        self.last_good: Revision | None = None
        self._reported_invalid: str | None = None
        self._lock = threading.Lock()

    def refresh(self) -> Refresh:
        """Fetch and validate the newest revision; never raises for a bad or unreachable source."""
        with self._lock:
            try:
                revision = self.source.fetch()
            except InvalidRevision as invalid:
                self.metrics.set_desired_state_fetched(time.time())
                self._invalid(invalid)
                return Refresh.INVALID
            except SourceUnavailable as error:
                log.error(
                    "desired-state source unavailable: keeping the last good revision",
                    source=self.source.description,
                    error=redact_text(str(error)),
                    revision=self.last_good.id if self.last_good else None,
                )
                return Refresh.UNAVAILABLE
            self.metrics.set_desired_state_fetched(time.time())
            self._reported_invalid = None
            self.metrics.set_desired_state(True, revision.id)
            if self.last_good is not None and self.last_good.id == revision.id:
                return Refresh.SAME
            desired = revision.desired
            log.info(
                "desired state loaded",
                summary=(
                    f"desired state from {self.source.description}: "
                    f"{len(desired.manifests)} manifest(s) in {desired.files} file(s),"
                    f" revision {revision.id}"
                ),
                revision=revision.id,
                previous=self.last_good.id if self.last_good else None,
                manifests=len(revision.desired.manifests),
                files=revision.desired.files,
            )
            self.last_good = revision
            return Refresh.NEW

    def _invalid(self, invalid: InvalidRevision) -> None:
        self.metrics.set_desired_state(False)
        name = invalid.revision or "(working copy)"
        keeping = self.last_good.id if self.last_good else None
        if self._reported_invalid == name:
            log.warning("desired state still invalid", revision=name, keeping=keeping)
            return
        self._reported_invalid = name
        for error in invalid.errors:
            log.error("invalid desired state", revision=name, error=str(error))
        if self.last_good is None:
            log.error("no valid desired state yet: nothing is reconciled", revision=name)
        else:
            log.warning("keeping the last good desired state", revision=name, keeping=keeping)

    def current(self) -> Revision | None:
        return self.last_good


class ReconcileLoop:
    """Reconciles one target with the tracker's last good revision, every interval or on wake."""

    def __init__(
        self,
        desired: Callable[[], Revision | None],
        reconciler: Reconciler,
        metrics: Metrics,
        settings: LoopSettings,
        stop: threading.Event | None = None,
        wake: threading.Event | None = None,
        guard: WriteGuard | None = None,
        pending: Callable[[], bool] | None = None,
    ) -> None:
        self.desired = desired
        self.reconciler = reconciler
        self.metrics = metrics
        self.settings = settings
        self.stop = stop or threading.Event()
        self.wake = wake or threading.Event()  # set to reconcile now (webhooks, leases, tests)
        self.guard = guard
        self.pending = pending
        self.target = reconciler.settings.target
        self.completed = 0
        self.passes = 0
        self.last_revision: str | None = None
        self.requeue: Requeue | None = None  # what the last pass asked for
        self._reported = False  # whether this replica exports the target's status series
        self._random = random.Random()
        self._changed = False  # the last pass applied something
        self._requeues = 0  # consecutive short waits
        self.findings = FindingJournal()  # what this target's findings said last
        self._said: dict[str, Any] | None = None  # the last pass, for its log line

    def run(self) -> None:
        while not self.stop.is_set():
            self.run_once()
            self.passes += 1
            if self.stop.is_set() or (
                self.settings.max_iterations is not None
                and self.passes >= self.settings.max_iterations
            ):
                self._log_pass(None)
                return
            wait = self.next_wait()
            self._log_pass(wait)
            self._wait(wait)

    def run_once(self) -> None:
        self._changed = False
        self.requeue = None
        if not self.may_write():
            if self._reported:
                self.metrics.forget_target(self.target)
                self.reconciler.forget()
                self._reported = False
                log.info("not the lease holder: stopped reporting", target=self.target)
            return
        revision = self.desired()
        if revision is None:
            return
        stop = self.stop if self.guard is None else WriteGate(self.stop, self.guard)
        started = time.monotonic()
        try:
            plan, result = self.reconciler.reconcile(
                revision.desired, enforce=self.settings.enforce, stop=stop, cached=self.cached()
            )
        except Exception as error:
            log.error(
                "reconcile failed",
                target=self.target,
                revision=revision.id,
                error=redact_text(f"{type(error).__name__}: {error}"),
            )
            self._after_pass()
            return
        self.completed += 1
        self.metrics.set_cache_pinned(
            self.target, self.reconciler.memory.of(TAGSYNC, FleetInformer).pinned()
        )
        self._changed = bool(result.applied)
        self.last_revision = revision.id
        self.requeue = result.requeue
        self._after_pass()
        held = len(plan.errors) + len(plan.refused) + len(plan.blocked) + len(result.blocked)
        log_finding_changes(self.findings.update(plan.findings), log, target=self.target)
        self._said = {
            "number": self.completed,
            "operations": plan.operations,
            "outcome": result if self.settings.enforce else None,
            "held": held,
            "seconds": time.monotonic() - started,
            "fields": {
                "target": self.target,
                "mode": "enforce" if self.settings.enforce else "observe",
                "operations": len(plan.operations),
                "applied": len(result.applied),
                "failed": len(result.failed),
                "skipped": len(result.skipped),
                "deferred": len(result.deferred),
                "blocked": len(plan.blocked) + len(result.blocked),
                "findings": len(plan.findings),
                "refused": len(plan.errors) + len(plan.refused),
                "revision": revision.id,
                "requeue_in_seconds": (
                    round(self.requeue.after.total_seconds()) if self.requeue else None
                ),
                "requeue_reason": self.requeue.reason if self.requeue else None,
            },
        }

    def _log_pass(self, next_in: float | None) -> None:
        """The pass's one line: what changed, what was held, when the next pass comes."""
        said, self._said = self._said, None
        if said is None:
            return
        why = self._why_soon(next_in)
        summary = pass_summary(
            said["number"],
            said["operations"],
            said["outcome"],
            enforce=self.settings.enforce,
            held=said["held"],
            seconds=said["seconds"],
            next_in=next_in,
            next_why=why,
        )
        if self.target != DEFAULT_TARGET:
            summary = f"[{self.target}] {summary}"
        log.info(
            "reconciled",
            summary=summary,
            next_pass_in_seconds=round(next_in, 1) if next_in is not None else None,
            **said["fields"],
        )

    def cached(self) -> bool:
        """Whether the next pass may diff against the live cache instead of relisting."""
        interval = self.settings.relist_interval_seconds
        age = self.reconciler.relist_age()
        return interval is not None and age is not None and age < interval

    def _after_pass(self) -> None:
        self._reported = True
        if not self.may_write():  # lost the lease during the pass: what it saw is not ours to say
            self.metrics.forget_target(self.target)
            self.reconciler.forget()
            self._reported = False

    def _why_soon(self, next_in: float | None) -> str:
        """Why the next pass comes before the interval (empty when it does not)."""
        settings = self.settings
        if next_in is None or next_in >= settings.interval_seconds * (1 - settings.jitter_fraction):
            return ""
        if self.requeue is not None:
            wish = max(self.requeue.after.total_seconds(), settings.min_requeue_seconds)
            if abs(wish - next_in) < 1:
                return self.requeue.reason
        if self._changed:
            return "the last pass changed something"
        return "WorkSpaces enrolled recently: their registrations may be on the way"

    def may_write(self) -> bool:
        return self.guard is None or self.guard.may_write()

    def _wait(self, seconds: float | None = None) -> None:
        if self.wake.wait(timeout=self.next_wait() if seconds is None else seconds):
            self._requeues = 0  # woken (an enrollment, a push): the short requeue starts afresh
        self.wake.clear()

    def next_wait(self) -> float:
        """Seconds until the next pass: the interval (with jitter); sooner when the last pass
        asked for it (a kind's requeue, never sooner than ``min_requeue_seconds``); and, with
        ``requeue_seconds``, a short requeue after a pass that changed something or while
        ``pending`` says work is on its way (doubling while that repeats)."""
        jitter = self.settings.jitter_fraction
        seconds = self.settings.interval_seconds * (1 + self._random.uniform(-jitter, jitter))
        if self.requeue is not None:
            wish = max(self.requeue.after.total_seconds(), self.settings.min_requeue_seconds)
            seconds = min(seconds, wish)
        requeue = self.settings.requeue_seconds
        if requeue is None or not (self._changed or (self.pending is not None and self.pending())):
            self._requeues = 0
            return max(0.0, seconds)
        delay = float(requeue * 2 ** min(self._requeues, 30))
        self._requeues += 1
        return max(0.0, min(seconds, delay))

    def request_stop(self) -> None:
        """Finish the current operation, then end the loop (the SIGTERM handler calls this)."""
        self.stop.set()
        self.wake.set()

    @property
    def ready(self) -> bool:
        """Ready once it reconciled, or when another replica holds the target."""
        return self.completed > 0 or not self.may_write()
