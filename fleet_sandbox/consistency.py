"""Eventual consistency, opt-in: what AWS's read paths show lags behind what was written.

AWS documents that the tagging API lags behind tag writes and that GetResources may return
"previously tagged" resources that no longer exist; a just-registered instance may take a while
to appear in DescribeInstanceInformation. The sandbox is exact by default. With consistency on
(``PUT /_sandbox/consistency`` or a scenario's ``consistency`` section):

- ``lagSeconds: {service: seconds}``: ``resourcegroupstaggingapi`` serves the tags as they were
  that long ago (sandbox clock); ``ssm`` hides instances registered less than that long ago
  from DescribeInstanceInformation.
- ``ghostSeconds``: a deleted resource keeps coming back from GetResources, as previously tagged
  (``"Tags": []``), for that long after its deletion became visible.
- ``shortPages``: GetResources pages come short or empty while still carrying a token.

How: every change to the tagged resources is logged with the sandbox time the sandbox first saw
it. The log is fed after every successful write request (the middleware's after-call hook) and
before every read; a read at time T with lag L is answered from the log as of T - L. Resources
present when consistency was switched on count as always having been there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet_sandbox import admin, scenario
from fleet_sandbox.clock import clock
from fleet_sandbox.middleware import after_call
from fleet_sandbox.server import on_reset
from fleet_sandbox.traffic import ApiCall

SERVICES = ("resourcegroupstaggingapi", "ssm")
MAX_SECONDS = 7 * 24 * 3600
_BEGINNING = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Settings:
    lag_seconds: dict[str, float] = field(default_factory=dict)
    ghost_seconds: float = 0.0
    short_pages: bool = False

    @property
    def active(self) -> bool:
        return bool(self.lag_seconds) or self.ghost_seconds > 0

    def lag(self, service: str) -> timedelta:
        return timedelta(seconds=self.lag_seconds.get(service, 0.0))

    def to_json(self) -> dict[str, Any]:
        return {
            "lagSeconds": dict(self.lag_seconds),
            "ghostSeconds": self.ghost_seconds,
            "shortPages": self.short_pages,
        }

    @classmethod
    def from_json(cls, data: Any) -> Settings:
        if not isinstance(data, dict):
            raise ValueError("consistency is {lagSeconds: {service: s}, ghostSeconds, shortPages}")
        unknown = sorted(set(data) - {"lagSeconds", "ghostSeconds", "shortPages"})
        if unknown:
            raise ValueError(f"unknown consistency field(s): {', '.join(unknown)}")
        lags = data.get("lagSeconds") or {}
        if not isinstance(lags, dict):
            raise ValueError("'lagSeconds' maps a service to seconds")
        for service, seconds in lags.items():
            if service not in SERVICES:
                raise ValueError(
                    f"'lagSeconds' knows the services {', '.join(SERVICES)}, not {service!r}"
                )
            _check_seconds(f"lagSeconds.{service}", seconds)
        ghost = data.get("ghostSeconds", 0)
        _check_seconds("ghostSeconds", ghost)
        short = data.get("shortPages", False)
        if not isinstance(short, bool):
            raise ValueError("'shortPages' is true or false")
        return cls({k: float(v) for k, v in lags.items() if v}, float(ghost), short)


def _check_seconds(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= MAX_SECONDS
    ):
        raise ValueError(f"'{name}' must be a number of seconds from 0 to {MAX_SECONDS}")


@dataclass(frozen=True)
class Seen:
    """One resource as a read path may show it."""

    arn: str
    resource_type: str
    tags: dict[str, str]


@dataclass
class _Entry:
    since: datetime  # when the sandbox first saw this state (_BEGINNING: before consistency)
    resource: Seen | None  # None: deleted


@dataclass
class _Log:
    history: dict[str, list[_Entry]] = field(default_factory=dict)


_lock = threading.RLock()
_settings = Settings()
_logs: dict[tuple[str, str], _Log] = {}

Source = Callable[[str, str], Iterable[Seen]]
_source: Source | None = None


def set_source(source: Source) -> None:
    """Where the current truth comes from (the tagging module registers it)."""
    global _source
    _source = source


def settings() -> Settings:
    with _lock:
        return _settings


def configure(new: Settings) -> None:
    global _settings
    with _lock:
        _settings = new
        _logs.clear()


@on_reset
def reset() -> None:
    configure(Settings())


_READS = ("Get", "List", "Describe", "Search")


@after_call
def _after(call: ApiCall, status: str) -> None:
    """A write that succeeded may have changed tags: log it now, at the time it happened."""
    if status.startswith("2") and not call.operation.startswith(_READS):
        observe(admin.DEFAULT_ACCOUNT_ID, call.region)


def observe(account_id: str, region: str) -> None:
    """Log what changed since the last look (no-op while consistency is off)."""
    if not settings().active or _source is None:
        return
    current = {seen.arn: seen for seen in _source(account_id, region)}
    now = clock.now()
    with _lock:
        log = _logs.get((account_id, region))
        first = log is None
        if log is None:
            log = _logs[(account_id, region)] = _Log()
        since = _BEGINNING if first else now
        for arn, seen in current.items():
            entries = log.history.setdefault(arn, [])
            if not entries or entries[-1].resource != seen:
                entries.append(_Entry(since, seen))
        for arn, entries in log.history.items():
            if arn not in current and entries[-1].resource is not None:
                entries.append(_Entry(now, None))
        _prune(log, now)


def _prune(log: _Log, now: datetime) -> None:
    """Forget what no read can still be shown: keep the last entry at or before the horizon."""
    current = settings()
    horizon = (
        now
        - max((current.lag(s) for s in SERVICES), default=timedelta())
        - timedelta(seconds=current.ghost_seconds)
        - timedelta(minutes=1)
    )
    for arn in list(log.history):
        entries = log.history[arn]
        keep = 0
        for index, entry in enumerate(entries):
            if entry.since <= horizon:
                keep = index
        del entries[:keep]
        if len(entries) == 1 and entries[0].resource is None:
            del log.history[arn]


def view(account_id: str, region: str, service: str) -> list[Seen] | None:
    """What ``service`` shows now, or None when consistency is off (the caller reads the truth)."""
    current = settings()
    if not current.active or _source is None:
        return None
    observe(account_id, region)
    now = clock.now()
    moment = now - current.lag(service)
    ghost = timedelta(seconds=current.ghost_seconds)
    shown: list[Seen] = []
    with _lock:
        log = _logs.get((account_id, region), _Log())
        for arn, entries in log.history.items():
            state = None
            for entry in entries:
                if entry.since <= moment:
                    state = entry
            if state is None:
                continue
            if state.resource is not None:
                shown.append(state.resource)
                continue
            last = next((e.resource for e in reversed(entries) if e.resource is not None), None)
            if last is not None and moment - state.since < ghost:
                shown.append(Seen(arn, last.resource_type, {}))
    return shown


def hidden_since(service: str) -> datetime | None:
    """Items created after this moment are not visible yet to ``service`` (None: all are)."""
    lag = settings().lag(service)
    return clock.now() - lag if lag else None


@admin.route("GET", "/_sandbox/consistency")
def _get(request: admin.AdminRequest) -> dict[str, Any]:
    return settings().to_json()


@admin.route("PUT", "/_sandbox/consistency")
def _put(request: admin.AdminRequest) -> dict[str, Any]:
    try:
        configure(Settings.from_json(request.body))
    except ValueError as error:
        raise admin.AdminError(400, str(error)) from None
    observe(request.account_id, request.region)
    return settings().to_json()


@scenario.section("consistency")
def _scenario(section: Any, account_id: str, region: str) -> None:
    configure(Settings.from_json(section))
