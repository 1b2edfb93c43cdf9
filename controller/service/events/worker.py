"""One target's event worker: receive, batch, reconcile what the events name, delete.

controller-runtime's source -> handler -> workqueue -> Reconcile, in one thread per target:

- receive: long-polls the queue (20 s) while this replica may write to the target (with leases,
  only the holder consumes; the others leave the messages to it) and the cache is warm (the loop's
  first relist filled it);
- batch: after the first message, keeps receiving for ``batch_seconds`` (or until ``max_batch``
  resources), so a burst becomes one pass and a change's two events (its Tag Change and its
  CloudTrail record) one read; an event that is an echo of what the cache holds costs nothing;
- reconcile: ``Reconciler.reconcile_changes`` reads only the named resources and applies what
  they need;
- delete: only after the pass, so a crash leaves the messages to be delivered again;
- requeue: a resource named but not visible yet (a registration DescribeInstanceInformation lists
  a little later, a WorkSpace just created) is read again after 5 s, 10 s, 20 s ... up to the
  consistency window (for at most ``max_retries`` resources at once), then left to the relist.

An unreadable message (not JSON, not an event the rules deliver, too deep, too large) or one from
another account or Region is counted, logged without its body, and deleted: it must not come
back forever.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from controller.contract import Changes
from controller.engine.reconcile import Reconciler
from controller.kinds.informer import FleetInformer
from controller.kinds.tagsync import KIND as TAGSYNC
from controller.observability.metrics import Metrics
from controller.observability.redaction import redact_text
from controller.service.events.news import is_news
from controller.service.events.notice import BadEvent, parse_event
from controller.service.events.queue import MAX_WAIT_SECONDS, EventQueue, Message
from controller.service.ha.guard import WriteGate, WriteGuard
from controller.service.source.base import Revision

log = structlog.get_logger("fleet_controller.events")


@dataclass(frozen=True)
class EventSettings:
    batch_seconds: float = 1.0  # after the first message, how long to gather more
    max_batch: int = 200  # resources per targeted pass
    retry_base_seconds: float = 5.0  # a resource not visible yet: read again after 5, 10, 20 s...
    retry_max_seconds: float = 120.0
    idle_seconds: float = 1.0  # how often to look again while not allowed or not ready
    # Resources waiting to be read again: events can name ids that never appear (a call that
    # failed for some of its ids still succeeds); past this many, the relist finds the rest.
    max_retries: int = 1000


@dataclass
class _Retry:
    attempts: int
    due: float
    first: float


@dataclass
class _Batch:
    messages: list[Message] = field(default_factory=list)
    changes: Changes = field(default_factory=Changes)


class EventWorker:
    def __init__(
        self,
        queue: EventQueue,
        reconciler: Reconciler,
        desired: Callable[[], Revision | None],
        metrics: Metrics,
        settings: EventSettings | None = None,
        *,
        enforce: bool = True,
        guard: WriteGuard | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.queue = queue
        self.reconciler = reconciler
        self.desired = desired
        self.metrics = metrics
        self.settings = settings or EventSettings()
        self.enforce = enforce
        self.guard = guard
        self.stop = stop or threading.Event()
        self.target = reconciler.settings.target
        self.passes = 0  # targeted passes run (tests and benchmarks read it)
        self._retries: dict[str, _Retry] = {}
        self._region = reconciler.aws.region
        self._account: str | None = None

    @property
    def informer(self) -> FleetInformer:
        return self.reconciler.memory.of(TAGSYNC, FleetInformer)

    def may_write(self) -> bool:
        return self.guard is None or self.guard.may_write()

    def ready(self) -> bool:
        return self.desired() is not None and self.informer.warm and self.may_write()

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            if not self.ready():
                self.stop.wait(self.settings.idle_seconds)
                continue
            try:
                self.run_once()
                failures = 0
            except Exception as error:  # AWS unreachable, a bug: never end the thread
                failures += 1
                log.error(
                    "event pass failed",
                    target=self.target,
                    error=redact_text(f"{type(error).__name__}: {error}"),
                )
                self.stop.wait(min(60.0, self.settings.idle_seconds * 2**failures))

    def run_once(self, wait_seconds: float | None = None) -> int:
        """Receive one batch (waiting up to ``wait_seconds``), reconcile it; the resources it
        reconciled."""
        batch = self._receive(self._wait() if wait_seconds is None else wait_seconds)
        batch.changes |= self._due()
        if batch.changes:
            self._reconcile(batch.changes)
        if batch.messages:
            self.queue.delete(batch.messages)
        return len(batch.changes)

    # -- receiving ---------------------------------------------------------------------------

    def _wait(self) -> float:
        if not self._retries:
            return MAX_WAIT_SECONDS
        soonest = min(r.due for r in self._retries.values()) - time.monotonic()
        return max(0.0, min(MAX_WAIT_SECONDS, soonest))

    def _receive(self, wait: float) -> _Batch:
        batch = _Batch()
        messages = self.queue.receive(wait)
        deadline = time.monotonic() + self.settings.batch_seconds
        while messages:
            for message in messages:
                batch.messages.append(message)
                batch.changes |= self._read(message)
            remaining = deadline - time.monotonic()
            if remaining <= 0 or len(batch.changes) >= self.settings.max_batch:
                break
            messages = self.queue.receive(min(remaining, 1.0))
        return batch

    def _read(self, message: Message) -> Changes:
        try:
            notice = parse_event(message.body)
        except BadEvent as problem:
            self.metrics.record_event(self.target, "unreadable", "unreadable")
            log.warning("unreadable event deleted", target=self.target, why=str(problem))
            return Changes()
        if notice.region != self._region or notice.account != self._account_id():
            self.metrics.record_event(self.target, notice.type, "foreign")
            log.warning(
                "event for another account or Region deleted",
                target=self.target,
                account=notice.account,
                region=notice.region,
            )
            return Changes()
        if not notice.changes:
            self.metrics.record_event(self.target, notice.type, "nothing")
            return Changes()
        if not is_news(notice, self.informer):
            self.metrics.record_event(self.target, notice.type, "echo")
            return Changes()
        self.metrics.record_event(self.target, notice.type, "news")
        return notice.changes

    def _account_id(self) -> str:
        if self._account is None:
            self._account = self.reconciler.aws.account_id()
        return self._account

    # -- reconciling -------------------------------------------------------------------------

    def _reconcile(self, changes: Changes) -> None:
        revision = self.desired()
        if revision is None:
            return
        started = time.monotonic()
        stop = self.stop if self.guard is None else WriteGate(self.stop, self.guard)
        try:
            outcome = self.reconciler.reconcile_changes(
                revision.desired, changes, enforce=self.enforce, stop=stop
            )
        except Exception:
            self.metrics.record_targeted(self.target, "error", time.monotonic() - started)
            raise
        self.passes += 1
        result = outcome.result
        clean = outcome.plan.ok and result.ok and not result.skipped
        self.metrics.record_targeted(
            self.target, "success" if clean else "error", time.monotonic() - started
        )
        for key in [*changes.workspaces, *changes.instances]:
            if key not in outcome.not_visible.workspaces | outcome.not_visible.instances:
                self._retries.pop(key, None)
        self._schedule(outcome.not_visible)
        log.info(
            "targeted reconcile",
            target=self.target,
            workspaces=len(changes.workspaces),
            instances=len(changes.instances),
            applied=len(result.applied),
            failed=len(result.failed),
            not_visible=len(outcome.not_visible),
        )

    def _schedule(self, unseen: Changes) -> None:
        now = time.monotonic()
        window = self.reconciler.memory.consistency_window.total_seconds()
        for key in [*unseen.workspaces, *unseen.instances]:
            if key not in self._retries and len(self._retries) >= self.settings.max_retries:
                continue
            retry = self._retries.get(key) or _Retry(0, now, now)
            if now - retry.first > window:
                self._retries.pop(key, None)  # the relist will find it
                continue
            delay = min(
                self.settings.retry_max_seconds,
                self.settings.retry_base_seconds * 2**retry.attempts,
            )
            self._retries[key] = _Retry(retry.attempts + 1, now + delay, retry.first)

    def _due(self) -> Changes:
        now = time.monotonic()
        due = [key for key, retry in self._retries.items() if retry.due <= now]
        return Changes(
            frozenset(k for k in due if k.startswith("ws-")),
            frozenset(k for k in due if k.startswith("mi-")),
        )


__all__ = ["EventSettings", "EventWorker"]
