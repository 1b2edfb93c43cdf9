"""Whether this process may write to a target now, and the ``stop`` event that asks it.

``Reconciler.apply`` checks ``stop.is_set()`` before every operation. ``WriteGate`` answers True
there when the caller stopped (SIGTERM) OR the lease is no longer held with margin, so a writer
whose lease lapses starts no further operation; the one in flight finishes. The loop of ``run``
and the one-shot ``apply`` use the same gate.
"""

from __future__ import annotations

import threading
from typing import Protocol

import structlog

log = structlog.get_logger("fleet_controller.leases")


class WriteGuard(Protocol):
    """Whether this process may write to a target now (it holds the lease with margin)."""

    def may_write(self) -> bool: ...


class WriteGate(threading.Event):
    """The ``stop`` handed to ``Reconciler.apply``: set when the caller stops OR the lease is gone."""

    def __init__(self, stop: threading.Event, guard: WriteGuard) -> None:
        super().__init__()
        self._stop = stop
        self._guard = guard

    def is_set(self) -> bool:
        if self._stop.is_set():
            return True
        if not self._guard.may_write():
            log.warning("lease not held with margin: no further operation is started")
            return True
        return False
