"""AWS's clock, as the ``Date`` header of its responses tells it.

Activation expiry, grace periods and AWS's own timestamps (CreatedDate, ExpirationDate) are AWS's
time; the controller's host clock may be off by a minute or more (SigV4 tolerates five), and
comparing the two made every pass rotate the activation. So every response ``AwsApi`` receives
(errors too) is a sample of the skew, and "now" for deciding about AWS resources is the host's
clock corrected by the latest sample.

A ``Date`` header has whole seconds and the request took some time, so one sample is good to
about a second plus half the round trip: enough, since every comparison against AWS's time keeps
a tolerance of minutes (``CLOCK_TOLERANCE``). Until the first response the skew is unknown and
counts as zero.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

CLOCK_TOLERANCE = timedelta(minutes=5)
"""How far apart two clocks may be and still be read as agreeing (a skew SigV4 still accepts)."""


class AwsClock:
    def __init__(self, local: Callable[[], float] = time.time) -> None:
        self._local = local
        self._skew: float | None = None
        self._lock = threading.Lock()

    def local_time(self) -> float:
        return self._local()

    def observe(self, date_header: str | None, sent: float, received: float) -> None:
        """One response: its ``Date`` header and the host times the request left and came back."""
        if not date_header:
            return
        try:
            stamped = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return  # a proxy's odd header is no reason to fail a call
        # The header truncates to the second; its middle against the middle of the round trip.
        skew = stamped + 0.5 - (sent + received) / 2
        with self._lock:
            self._skew = skew

    @property
    def skew_seconds(self) -> float | None:
        """AWS's clock minus the host's (positive: AWS is ahead); None before any response."""
        with self._lock:
            return self._skew

    def now(self) -> datetime:
        """AWS's time now, as well as the latest response tells it (the host's before any)."""
        skew = self.skew_seconds or 0.0
        return datetime.fromtimestamp(self._local(), UTC) + timedelta(seconds=skew)


__all__ = ["CLOCK_TOLERANCE", "AwsClock"]
