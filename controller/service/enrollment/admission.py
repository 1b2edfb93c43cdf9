"""Admission control: how often one address, and everyone together, may ask.

A WorkSpace asks a handful of times in its life; a flood from one address is either a bug in a
startup script or someone probing. Each address gets a token bucket (kept for the most recent
``max_sources`` addresses, so a flood of spoofed sources cannot grow memory without bound), and
one more bucket caps the total, which bounds the AWS calls enrollment can cause.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from controller.aws.ratelimit import TokenBucket


@dataclass(frozen=True)
class AdmissionSettings:
    per_source_rate: float = 0.1  # one ask per 10 s per address, sustained
    per_source_burst: float = 5.0  # a script retrying quickly after a failure still gets in
    total_rate: float = 20.0  # every address together
    total_burst: float = 100.0  # a morning's boot storm is let through in bursts
    max_sources: int = 65536  # addresses remembered (least recently seen forgotten first)


@dataclass(frozen=True)
class Refusal:
    result: str  # rate_limited_source | rate_limited_total
    retry_after: float


class Admission:
    def __init__(
        self, settings: AdmissionSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._total = TokenBucket(settings.total_rate, settings.total_burst, clock=clock)
        self._sources: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def admit(self, source: str) -> Refusal | None:
        """None when ``source`` may ask now; otherwise why not and when to try again."""
        with self._lock:
            bucket = self._sources.get(source)
            if bucket is None:
                bucket = TokenBucket(
                    self.settings.per_source_rate, self.settings.per_source_burst, self._clock
                )
                self._sources[source] = bucket
                while len(self._sources) > self.settings.max_sources:
                    self._sources.popitem(last=False)
            else:
                self._sources.move_to_end(source)
        wait = bucket.try_acquire()
        if wait > 0:
            return Refusal("rate_limited_source", wait)
        wait = self._total.try_acquire()
        if wait > 0:
            return Refusal("rate_limited_total", wait)
        return None

    @property
    def sources(self) -> int:
        with self._lock:
            return len(self._sources)
