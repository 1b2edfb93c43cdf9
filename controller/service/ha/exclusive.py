"""A one-shot writer's lease: ``apply`` writes a target only while it holds the target's lease.

Hole 8 of issue 9: an ``apply`` beside a running ``run`` is two writers, and two writers create
duplicate associations that each run an install before they are collapsed. With a lease table
configured, ``apply`` takes the target's lease by the replicas' own rules (keeper.py): it takes
a lease nobody holds, or one whose (holder, version) stayed unchanged for a whole lease duration
on its own monotonic clock, and always with a conditional write, so of two writers exactly one
wins (watching for the holder's own lease duration when the lease says it is longer than
apply's). A lease that changes while it watches has a live holder: apply names it and changes
nothing.
While it applies, a thread renews the lease every retry period; ``may_write`` turns False once a
renew is overdue (the renew deadline after the last successful one was sent) or the lease was
taken, and the write gate then starts no further operation. The lease is released at the end,
so the replica that normally writes the target takes it back at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog
from botocore.exceptions import ClientError

from controller.observability.redaction import redact_text
from controller.service.ha.keeper import LeaseSettings
from controller.service.ha.table import LeaseConflict, LeaseRecord, LeaseTable, missing_table

log = structlog.get_logger("fleet_controller.leases")


class LeaseUnavailable(Exception):
    """Somebody else writes the target (or the lease table cannot be used): nothing was done."""


class ExclusiveLease:
    def __init__(
        self,
        table: LeaseTable,
        target: str,
        holder: str,
        settings: LeaseSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.table = table
        self.target = target
        self.holder = holder
        self.settings = settings
        self._clock = clock
        self._wall = wall_clock
        self._sleep = sleep
        self._record: LeaseRecord | None = None
        self._sent_at = 0.0
        self._lost = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # -- the guard ----------------------------------------------------------------------------------

    def may_write(self) -> bool:
        with self._lock:
            if self._record is None or self._lost:
                return False
            return self._clock() - self._sent_at < self.settings.renew_deadline_seconds

    # -- taking and giving back --------------------------------------------------------------------

    def acquire(self) -> None:
        """Take the lease or raise LeaseUnavailable naming who holds it."""
        try:
            self._acquire()
        except ClientError as error:
            missing = missing_table(self.table, error)
            if missing is not None:
                raise LeaseUnavailable(missing) from None
            raise LeaseUnavailable(
                f"the lease table {self.table.name!r} cannot be used: {redact_text(str(error))}"
            ) from None
        self._renewer = threading.Thread(target=self._renew, name="apply-lease", daemon=True)
        self._renewer.start()
        log.info("lease acquired for apply", target=self.target, holder=self.holder)

    def release(self) -> None:
        """Stop renewing and hand the lease back (call once no operation is in flight)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=self.settings.duration_seconds)
        with self._lock:
            record, self._record = self._record, None
            lost = self._lost
        if record is None or lost:
            return
        try:
            self.table.release(record)
            log.info("lease released", target=self.target)
        except Exception as error:  # it expires on its own
            log.warning("lease release failed", target=self.target, error=redact_text(str(error)))

    def __enter__(self) -> ExclusiveLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- steps ----------------------------------------------------------------------------------------

    def _acquire(self) -> None:
        seen = self.table.get(self.target)
        watching_since = self._clock()
        patience = seen.patience(self.settings.duration_seconds) if seen is not None else 0.0
        while seen is not None and self._clock() - watching_since < patience:
            log.info(
                "target lease exists: watching whether its holder renews it",
                target=self.target,
                holder=seen.holder,
                seconds=patience,
            )
            self._sleep(self.settings.retry_period_seconds)
            now = self.table.get(self.target)
            if now is not None and now.identity != seen.identity:
                raise self._held_by(now)
            seen = now  # None: released meanwhile, so nobody holds it
        sent = self._clock()
        try:
            if seen is None:
                record = self.table.create(
                    self.target, self.holder, self._wall(), self.settings.duration_seconds
                )
            else:  # unchanged for a whole lease duration: its holder is gone
                record = self.table.advance(
                    seen, self.holder, self._wall(), self.settings.duration_seconds
                )
        except LeaseConflict as conflict:
            raise self._held_by(conflict.current) from None
        with self._lock:
            self._record, self._sent_at = record, sent

    def _renew(self) -> None:
        while not self._stop.wait(self.settings.retry_period_seconds):
            with self._lock:
                record = self._record
            if record is None:
                return
            sent = self._clock()
            try:
                renewed = self.table.advance(
                    record, self.holder, self._wall(), self.settings.duration_seconds
                )
            except LeaseConflict as conflict:
                current = conflict.current
                if current is not None and current.holder == self.holder:
                    with self._lock:  # an earlier renew landed although its answer was lost
                        self._record = current
                    continue
                with self._lock:
                    self._lost = True
                holder = current.holder if current else "nobody"
                log.error("lease lost during apply", target=self.target, now_held_by=holder)
                return
            except Exception as error:
                log.warning("lease renew failed; retrying", error=redact_text(str(error)))
                continue
            with self._lock:
                if self._record is not None:
                    self._record, self._sent_at = renewed, sent

    def _held_by(self, record: LeaseRecord | None) -> LeaseUnavailable:
        holder = record.holder if record is not None else "another writer"
        return LeaseUnavailable(
            f"target {self.target!r} is being written by {holder!r} (its lease in table"
            f" {self.table.name!r} is held and renewed); nothing was applied. Stop that writer,"
            " or let it apply this change"
        )
