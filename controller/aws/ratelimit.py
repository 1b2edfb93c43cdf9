"""Client-side rate limits per AWS service, below the documented API limits.

WorkSpaces allows about 2 calls/s with a burst of 5; hammering it only buys throttles. A token
bucket per service keeps the controller under such limits without a retry storm.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_RATES: dict[str, tuple[float, float]] = {
    # service: (calls per second, burst)
    "workspaces": (2.0, 5.0),
    "ssm": (10.0, 20.0),
    "resourcegroupstaggingapi": (5.0, 10.0),
    "s3": (50.0, 100.0),
}


class TokenBucket:
    def __init__(
        self,
        rate: float,
        burst: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")
        self._rate = rate
        self._burst = burst
        self._tokens = burst
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting for it if needed; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            self._tokens -= 1
            wait = -self._tokens / self._rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def try_acquire(self) -> float:
        """Take one token if one is there: 0.0 when taken, else the seconds until one will be.

        For admission control (the enrollment endpoint answers 429 with Retry-After instead of
        holding a request thread while a flood drains)."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self._rate


class RateLimiter:
    """One token bucket per service; services without a configured rate are not limited."""

    def __init__(self, rates: dict[str, tuple[float, float]] | None = None) -> None:
        self._buckets = {
            service: TokenBucket(rate, burst) for service, (rate, burst) in (rates or {}).items()
        }

    def acquire(self, service: str) -> float:
        bucket = self._buckets.get(service)
        return bucket.acquire() if bucket else 0.0
