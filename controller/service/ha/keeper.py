"""One replica's side of leader election: announce, renew, take a fair share, give up the excess.

Timings follow controller-runtime's defaults: a lease lasts 15 s, its holder must renew it within
10 s (the renew deadline) and retries every 2 s. Two rules make "one writer per target" hold
without trusting clocks across machines:

* A replica takes over a lease only after it has seen the lease's (holder, version) unchanged
  for a whole lease duration on its own monotonic clock (client-go's rule), and only with a
  conditional write on that (holder, version): a holder that renewed in the meantime wins. The
  duration is the longer of its own and the one the holder wrote into the lease, so replicas
  started with different ``--lease-duration``s (a rollout that changes it) keep the rule.
* A holder may write only until renew deadline after it *sent* its last successful renew. Any
  observer saw that renew's version no earlier than it was sent, so it cannot take over before
  sent + lease duration: the holder stops starting operations at least ``duration - deadline``
  (5 s) before anyone else can start.

A replica that is above its fair share stops renewing the excess (and stops writing to it at
once); the leases expire and replicas below their share take them. Nothing is ever stolen.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import structlog

from controller.aws import AwsApi, AwsSettings, CallRecorder
from controller.observability.metrics import Metrics
from controller.observability.redaction import redact_text
from controller.service.ha.sharding import plan_balance
from controller.service.ha.table import (
    KIND_REPLICA,
    LeaseConflict,
    LeaseRecord,
    LeaseTable,
    replica_key,
)

log = structlog.get_logger("fleet_controller.leases")

Clock = Callable[[], float]
TargetCallback = Callable[[str], None]

# A heartbeat item unchanged for this many lease durations belongs to a replica long gone.
_DEAD_REPLICA_CLEANUP_DURATIONS = 4


@dataclass(frozen=True)
class LeaseSettings:
    duration_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_period_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period_seconds < self.renew_deadline_seconds < self.duration_seconds:
            raise ValueError(
                "lease timings need 0 < retry period < renew deadline < lease duration "
                f"(got {self.retry_period_seconds}, {self.renew_deadline_seconds}, "
                f"{self.duration_seconds})"
            )


def lease_api(base: AwsSettings, settings: LeaseSettings, recorder: CallRecorder) -> AwsApi:
    """The AwsApi for lease calls: fail fast, since a lease call that hangs past the retry period
    is worth less than the next try; no rate limit (a few calls per retry period)."""
    retry = settings.retry_period_seconds
    fast = replace(
        base,
        max_attempts=2,
        backoff_base_seconds=min(0.1, retry / 4),
        backoff_max_seconds=retry / 2,
        connect_timeout_seconds=max(0.5, retry),
        read_timeout_seconds=max(1.0, retry * 2),
        rate_limits=None,
    )
    return AwsApi(fast, recorder)


@dataclass
class _Held:
    record: LeaseRecord
    sent_at: float  # monotonic time the last successful write of this lease was sent
    lapsed: bool = False  # renew deadline passed without a successful renew (logged once)


@dataclass
class _Seen:
    record: LeaseRecord
    since: float  # monotonic time this (holder, version) was first seen


class _Guard:
    def __init__(self, keeper: LeaseKeeper, target: str) -> None:
        self._keeper = keeper
        self._target = target

    def may_write(self) -> bool:
        return self._keeper.may_write(self._target)


class LeaseKeeper:
    """Keeps this replica's leases; ``tick`` is one cycle, ``run`` repeats it every retry period."""

    def __init__(
        self,
        table: LeaseTable,
        replica_id: str,
        targets: Sequence[str],
        settings: LeaseSettings,
        metrics: Metrics | None = None,
        *,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
        on_acquired: TargetCallback | None = None,
        on_lost: TargetCallback | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.table = table
        self.replica_id = replica_id
        self.targets = list(targets)
        self.settings = settings
        self.metrics = metrics
        self._clock = clock
        self._wall = wall_clock
        self._on_acquired = on_acquired or (lambda target: None)
        self._on_lost = on_lost or (lambda target: None)
        self._rng = rng or random.Random()
        self._held: dict[str, _Held] = {}
        self._seen: dict[str, _Seen] = {}
        self._beats = 0
        self._ticks = 0
        self._stopped = False
        self._lock = threading.Lock()

    # -- what the rest of the controller asks ------------------------------------------------------

    def may_write(self, target: str) -> bool:
        """True while this replica holds ``target``'s lease within the renew deadline."""
        with self._lock:
            held = self._held.get(target)
            if held is None or self._stopped:
                return False
            return self._clock() - held.sent_at < self.settings.renew_deadline_seconds

    def guard(self, target: str) -> _Guard:
        return _Guard(self, target)

    def holding(self) -> list[str]:
        """Targets this replica may write to now."""
        return [t for t in self.targets if self.may_write(t)]

    # -- the cycle ---------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Tick every retry period until ``stop``; then stop writing (release is separate)."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception as error:  # never let the keeper die: its leases would lapse
                log.error(
                    "lease cycle failed", error=redact_text(f"{type(error).__name__}: {error}")
                )
            stop.wait(self.settings.retry_period_seconds)

    def tick(self) -> None:
        """One cycle. Only the keeper's thread calls it; ``_lock`` guards what workers read
        (``_held``), and is never held across a call to DynamoDB."""
        if self._stopped:
            return
        self._ticks += 1
        self._renew()
        self._heartbeat()
        observed = self._observe()
        if observed and self._ticks > 1:  # the first cycle only announces this replica
            self._balance()
        self._report()

    def _renew(self) -> None:
        with self._lock:
            held_now = sorted(self._held.items())
        for target, held in held_now:
            sent = self._clock()
            try:
                record = self.table.advance(
                    held.record, self.replica_id, self._wall(), self.settings.duration_seconds
                )
            except LeaseConflict as conflict:
                current = conflict.current
                if current is not None and current.holder == self.replica_id:
                    # An earlier renew landed although its answer was lost: adopt its version.
                    # The deadline still counts from the last renew known to have been sent.
                    with self._lock:
                        held.record = current
                    continue
                self._lose(target, f"taken by {current.holder}" if current else "released")
                continue
            except Exception as error:
                self._renew_failed(target, held, error)
                continue
            with self._lock:
                held.record = record
                held.sent_at = sent
                regained, held.lapsed = held.lapsed, False
            if regained:
                log.info("lease renewed again after its deadline", target=target)
                self._on_acquired(target)

    def _renew_failed(self, target: str, held: _Held, error: Exception) -> None:
        overdue = self._clock() - held.sent_at >= self.settings.renew_deadline_seconds
        if overdue and not held.lapsed:
            held.lapsed = True
            log.error(
                "lease renew deadline passed: no further writes to this target",
                target=target,
                error=redact_text(f"{type(error).__name__}: {error}"),
            )
            self._on_lost(target)
        elif not overdue:
            log.warning(
                "lease renew failed; retrying",
                target=target,
                error=redact_text(f"{type(error).__name__}: {error}"),
            )

    def _heartbeat(self) -> None:
        self._beats += 1
        try:
            self.table.heartbeat(
                self.replica_id, self._beats, self._wall(), self.settings.duration_seconds
            )
        except Exception as error:
            log.warning("heartbeat failed", error=redact_text(f"{type(error).__name__}: {error}"))

    def _observe(self) -> bool:
        try:
            records = self.table.scan()
        except Exception as error:
            log.warning(
                "lease table scan failed", error=redact_text(f"{type(error).__name__}: {error}")
            )
            return False
        now = self._clock()
        for key, record in records.items():
            seen = self._seen.get(key)
            if seen is None or seen.record.identity != record.identity:
                self._seen[key] = _Seen(record, now)
        for key in list(self._seen):
            if key not in records:
                del self._seen[key]
        return True

    def _expired(self, key: str) -> bool:
        seen = self._seen.get(key)
        return seen is not None and self._clock() - seen.since >= self._patience(seen.record)

    def _patience(self, record: LeaseRecord) -> float:
        return record.patience(self.settings.duration_seconds)

    def _live_replicas(self) -> set[str]:
        live = {self.replica_id}
        for key, seen in list(self._seen.items()):
            if seen.record.kind != KIND_REPLICA or seen.record.holder == self.replica_id:
                continue
            age = self._clock() - seen.since
            if age < self._patience(seen.record):
                live.add(seen.record.holder)
            elif age >= self._patience(seen.record) * _DEAD_REPLICA_CLEANUP_DURATIONS:
                self._forget_replica(key, seen.record)
        return live

    def _forget_replica(self, key: str, record: LeaseRecord) -> None:
        try:
            self.table.release(record)
            log.info("removed the heartbeat of a replica long gone", replica=record.holder)
        except Exception:  # a conflict means it came back; anything else: next time
            return
        self._seen.pop(key, None)

    def _balance(self) -> None:
        live = self._live_replicas()
        absent = {t for t in self.targets if t not in self._seen}
        expired = {t for t in self.targets if t in self._seen and self._expired(t)}
        others = dict.fromkeys(live - {self.replica_id}, 0)
        for target in self.targets:
            seen = self._seen.get(target)
            if seen is not None and seen.record.holder in others and target not in expired:
                others[seen.record.holder] += 1
        with self._lock:
            held = set(self._held)
        plan = plan_balance(self.targets, held, absent, expired, len(live), others, self._rng)
        replicas = len(live)
        for target in plan.shed:
            # Stop renewing: writes stop now, and the lease expires for the others.
            with self._lock:
                self._held.pop(target, None)
            log.info(
                "lease given up to rebalance", target=target, share=plan.share, replicas=replicas
            )
            self._on_lost(target)
        taken = 0
        for target in plan.acquire:
            if taken >= plan.wanted:
                break
            if self._acquire(target):
                taken += 1

    def _acquire(self, target: str) -> bool:
        seen = self._seen.get(target)
        sent = self._clock()
        try:
            if seen is None:
                record = self.table.create(
                    target, self.replica_id, self._wall(), self.settings.duration_seconds
                )
            else:
                record = self.table.advance(
                    seen.record, self.replica_id, self._wall(), self.settings.duration_seconds
                )
        except LeaseConflict as conflict:
            if conflict.current is not None:
                self._seen[target] = _Seen(conflict.current, self._clock())
            return False
        except Exception as error:
            log.warning(
                "lease acquire failed",
                target=target,
                error=redact_text(f"{type(error).__name__}: {error}"),
            )
            return False
        with self._lock:
            if self._stopped:  # stopped while the write was in flight: let it expire
                return False
            self._held[target] = _Held(record, sent)
        self._seen[target] = _Seen(record, sent)
        log.info(
            "lease acquired",
            target=target,
            previous=seen.record.holder if seen else None,
            version=record.version,
        )
        self._on_acquired(target)
        return True

    def _lose(self, target: str, why: str) -> None:
        with self._lock:
            self._held.pop(target, None)
        log.warning("lease lost", target=target, reason=why)
        self._on_lost(target)

    def _report(self) -> None:
        if self.metrics is None:
            return
        for target in self.targets:
            self.metrics.set_leader(target, self.may_write(target))

    # -- shutdown ------------------------------------------------------------------------------------

    def stop(self, release: bool = True) -> None:
        """Stop writing; with ``release``, hand every lease over at once (call after the workers
        stopped, so no operation is in flight) and withdraw this replica's heartbeat."""
        with self._lock:
            self._stopped = True
            held = dict(self._held)
            self._held.clear()
        if self.metrics is not None:
            for target in self.targets:
                self.metrics.set_leader(target, False)
        if not release:
            return
        for target, lease in held.items():
            try:
                self.table.release(lease.record)
                log.info("lease released", target=target)
            except Exception as error:
                log.warning("lease release failed", target=target, error=redact_text(str(error)))
        try:
            beat = self.table.get(replica_key(self.replica_id))
            if beat is not None and beat.holder == self.replica_id:
                self.table.release(beat)
        except Exception as error:
            log.warning("heartbeat removal failed", error=redact_text(str(error)))
