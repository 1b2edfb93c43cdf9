"""Counts every AWS request attempt by service, operation and outcome.

``AwsApi`` reports each attempt here and nowhere else, so the metrics, the benchmarks and the
"zero writes when nothing drifted" tests all read the same numbers.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

from controller.aws.errors import Outcome

READ_PREFIXES = ("Describe", "List", "Get", "Head", "Query", "Scan")

Listener = Callable[[str, str, Outcome], None]


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES)


class CallRecorder:
    def __init__(self) -> None:
        self._calls: Counter[tuple[str, str, Outcome]] = Counter()
        self._retries: Counter[tuple[str, str]] = Counter()
        self._listeners: list[Listener] = []
        self._retry_listeners: list[Callable[[str, str], None]] = []
        self._lock = threading.Lock()

    def subscribe(
        self, on_call: Listener, on_retry: Callable[[str, str], None] | None = None
    ) -> None:
        self._listeners.append(on_call)
        if on_retry is not None:
            self._retry_listeners.append(on_retry)

    def record(self, service: str, operation: str, outcome: Outcome) -> None:
        with self._lock:
            self._calls[(service, operation, outcome)] += 1
        for listener in self._listeners:
            listener(service, operation, outcome)

    def record_retry(self, service: str, operation: str) -> None:
        with self._lock:
            self._retries[(service, operation)] += 1
        for listener in self._retry_listeners:
            listener(service, operation)

    def by_operation(self) -> Counter[str]:
        """Attempts per ``service:Operation``, all outcomes."""
        counts: Counter[str] = Counter()
        with self._lock:
            for (service, operation, _), count in self._calls.items():
                counts[f"{service}:{operation}"] += count
        return counts

    def writes(self) -> int:
        with self._lock:
            return sum(n for (_, operation, _), n in self._calls.items() if not is_read(operation))

    def reads(self) -> int:
        with self._lock:
            return sum(n for (_, operation, _), n in self._calls.items() if is_read(operation))

    def retries(self) -> int:
        with self._lock:
            return sum(self._retries.values())

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._retries.clear()
