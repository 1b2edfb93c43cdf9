"""Per-resource exponential backoff across reconcile passes.

A resource whose operation keeps failing (a permission missing for one instance, a document AWS
refuses) must neither stall the rest of the fleet nor be hammered every pass. One failure is
retried on the next pass (it may have been a conflict the next observation resolves); from the
second failure in a row, each attempt waits twice as long as the last (with jitter), up to a
ceiling. A success forgets the resource.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from controller.contract import Operation


@dataclass(frozen=True)
class BackoffSettings:
    base_seconds: float = 60.0
    max_seconds: float = 3600.0
    jitter_fraction: float = 0.2


@dataclass
class _State:
    failures: int
    retry_at: float


def resource_key(operation: Operation) -> tuple[str, str, str, str, str]:
    """What one backoff entry is about: a new resource has no id yet, so its manifest names it;
    two steps on one resource (prune versions, start followers) back off apart."""
    return (
        operation.kind,
        operation.name,
        operation.action.value,
        operation.resource,
        operation.step,
    )


class ResourceBackoff:
    def __init__(
        self,
        settings: BackoffSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings or BackoffSettings()
        self._clock = clock
        self._random = rng or random.Random()
        self._states: dict[tuple[str, str, str, str, str], _State] = {}
        self._lock = threading.Lock()

    def wait_remaining(self, operation: Operation) -> float:
        """Seconds before this operation may be tried again (0 when it may run now)."""
        with self._lock:
            state = self._states.get(resource_key(operation))
            return max(0.0, state.retry_at - self._clock()) if state else 0.0

    def failed(self, operation: Operation) -> float:
        """Record a failure; returns the delay before the next attempt."""
        with self._lock:
            key = resource_key(operation)
            failures = self._states[key].failures + 1 if key in self._states else 1
            delay = 0.0
            if failures > 1:
                ceiling = self.settings.max_seconds
                delay = min(ceiling, self.settings.base_seconds * 2.0 ** (failures - 2))
                jitter = self.settings.jitter_fraction
                delay *= 1 + self._random.uniform(-jitter, jitter)
            self._states[key] = _State(failures, self._clock() + delay)
            return delay

    def earliest_retry(self) -> float | None:
        """Seconds until the first resource in backoff may be tried again (None: none waits)."""
        with self._lock:
            now = self._clock()
            waits = [s.retry_at - now for s in self._states.values() if s.retry_at > now]
            return min(waits) if waits else None

    def succeeded(self, operation: Operation) -> None:
        with self._lock:
            self._states.pop(resource_key(operation), None)

    def failures(self, operation: Operation) -> int:
        with self._lock:
            state = self._states.get(resource_key(operation))
            return state.failures if state else 0
