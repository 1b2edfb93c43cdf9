"""The sandbox's simulated clock.

Activation expiry, schedule ticks, "registered at" times and every response's ``Date`` header all
read this clock, so a test can jump a day ahead without waiting. It starts at the real time and
only moves forward, with one exception: a skew (ahead of or behind real time, set before a test
acts) plays an AWS whose clock disagrees with the controller's, as a real account's may by a
minute (SigV4 tolerates five).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class SandboxClock:
    def __init__(self) -> None:
        self._offset = timedelta()
        self._skew = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset + self._skew

    def set_skew(self, seconds: float) -> datetime:
        """Run ``seconds`` ahead of real time (behind when negative), on top of any advance."""
        with self._lock:
            self._skew = timedelta(seconds=seconds)
        return self.now()

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta()
            self._skew = timedelta()


clock = SandboxClock()
