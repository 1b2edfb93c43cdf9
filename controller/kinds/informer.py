"""TagSync's live cache: the fleet's WorkSpaces, managed instances and their tags, between passes.

client-go's informer, sized for this product: a full relist fills it, targeted reads after events
keep it fresh, and this controller's own writes are folded in as they succeed, so a new desired
state is diffed against it at once and an event costs a few calls instead of a relist.

It is also the answer to AWS's eventual consistency. Three sources disagree for a while:

- the full relist: complete, but the tagging API lags behind writes (minutes, AWS says "may") and
  keeps listing "previously tagged" resources that no longer exist;
- a targeted read after an event (DescribeWorkspaces / DescribeInstanceInformation by id,
  DescribeTags / ListTagsForResource per resource): consistent, for the few resources named;
- a write this controller made and AWS acknowledged.

The rules:

- Existence comes only from DescribeWorkspaces and DescribeInstanceInformation. A resource the
  tagging API lists and they do not is a ghost and never becomes live. A resource a consistent
  read found gone, or that this controller deregistered, is tombstoned for the consistency window:
  a lagging list that still shows it does not bring it back.
- A tag value known from a consistent source (a read, or an acknowledged write) is pinned: the
  relist yields to it, key by key, until the index shows the same value (it caught up, the pin is
  dropped) or the consistency window has passed (then the relist wins: someone may have changed it
  since, unseen). So a lagging index neither causes a second write nor phantom drift.
- A targeted read made after a relist started outranks that relist for its resource: an event
  handled during a long relist is not undone by the relist's older view.

Times are AWS's (``ctx.now``) for the window, and the host's monotonic clock for "after the relist
started"; the window is ``ctx.memory.consistency_window``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypeVar

from controller.kinds.matching import LiveInstance, LiveWorkspace

R = TypeVar("R", LiveWorkspace, LiveInstance)


@dataclass(slots=True)
class Pin:
    """Tag values of one resource known from a consistent source, and since when (AWS time)."""

    values: dict[str, str | None]  # key -> value (None: known absent)
    full: bool  # the whole tag set (a consistent read), not only the keys written
    at: datetime

    def apply(self, tags: Mapping[str, str]) -> dict[str, str]:
        if self.full:
            return {k: v for k, v in self.values.items() if v is not None}
        merged = dict(tags)
        for key, value in self.values.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return merged

    def settle(self, listed: Mapping[str, str], now: datetime, window: timedelta) -> bool:
        """Drop what the index now agrees with; True while something is still pinned."""
        if now - self.at > window:
            return False
        if self.full:
            return self.apply({}) != dict(listed)
        for key in [k for k, v in self.values.items() if listed.get(k) == v]:
            del self.values[key]
        return bool(self.values)


@dataclass
class Snapshot:
    """What the cache holds now: every live WorkSpace and instance (pins applied)."""

    workspaces: list[LiveWorkspace]
    instances: list[LiveInstance]
    tag_source: str


@dataclass
class Refreshed:
    """What a targeted read changed: resources found gone, and ones named but not visible yet."""

    gone_workspaces: set[str] = field(default_factory=set)
    gone_instances: set[str] = field(default_factory=set)
    unseen_workspaces: set[str] = field(default_factory=set)
    unseen_instances: set[str] = field(default_factory=set)


class FleetInformer:
    """The cache; every method is safe to call from the loop and the event worker at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workspaces: dict[str, LiveWorkspace] = {}
        self._instances: dict[str, LiveInstance] = {}
        self._pins: dict[str, Pin] = {}  # resource id -> pinned tag values
        self._refreshed: dict[str, float] = {}  # resource id -> monotonic time of a targeted read
        self._gone: dict[str, datetime] = {}  # tombstones: resource id -> when found gone
        self._tag_source = "tagging-api"
        self.relisted_at: datetime | None = None  # AWS time the last relist started
        self.relisted_monotonic: float | None = None

    @property
    def warm(self) -> bool:
        return self.relisted_at is not None

    # -- relist ------------------------------------------------------------------------------

    def relisted(
        self,
        workspaces: Iterable[LiveWorkspace],
        instances: Iterable[LiveInstance],
        tag_source: str,
        started: float,
        now: datetime,
        window: timedelta,
    ) -> Snapshot:
        """Fold a full relist (begun at monotonic ``started``, AWS time ``now``) into the cache."""
        with self._lock:
            self._gone = {k: at for k, at in self._gone.items() if now - at <= window}
            self._workspaces = self._merge(self._workspaces, workspaces, started, now, window)
            self._instances = self._merge(self._instances, instances, started, now, window)
            self._refreshed = {k: t for k, t in self._refreshed.items() if t > started}
            live = self._workspaces.keys() | self._instances.keys()
            self._pins = {k: pin for k, pin in self._pins.items() if k in live}
            self._tag_source = tag_source
            self.relisted_at = now
            self.relisted_monotonic = started
            return self._snapshot()

    def _merge(
        self,
        current: dict[str, R],
        listed: Iterable[R],
        started: float,
        now: datetime,
        window: timedelta,
    ) -> dict[str, R]:
        merged: dict[str, R] = {}
        for resource in listed:
            key = _key(resource)
            if key in self._gone:
                continue  # a ghost of something found gone: never live again
            if self._refreshed.get(key, -1.0) > started:
                if key in current:
                    merged[key] = current[key]  # a targeted read after the relist began wins
                continue
            pin = self._pins.get(key)
            if pin is not None:
                if pin.settle(resource.tags, now, window):
                    resource = replace(resource, tags=pin.apply(resource.tags))
                else:
                    del self._pins[key]
            merged[key] = resource
        for key, resource in current.items():  # read by a targeted pass while the relist ran
            if key not in merged and self._refreshed.get(key, -1.0) > started:
                merged[key] = resource
        return merged

    # -- targeted reads and own writes ---------------------------------------------------------

    def refreshed(
        self,
        named_workspaces: Iterable[str],
        named_instances: Iterable[str],
        workspaces: Iterable[LiveWorkspace],
        instances: Iterable[LiveInstance],
        now: datetime,
    ) -> Refreshed:
        """Fold a consistent read of the named resources in; those not found are gone (when the
        cache knew them) or not visible yet (a WorkSpace or registration AWS lists later)."""
        outcome = Refreshed()
        read_at = time.monotonic()
        with self._lock:
            for table, named, found, gone, unseen in (
                (
                    self._workspaces,
                    named_workspaces,
                    self._fold(self._workspaces, workspaces, read_at, now),
                    outcome.gone_workspaces,
                    outcome.unseen_workspaces,
                ),
                (
                    self._instances,
                    named_instances,
                    self._fold(self._instances, instances, read_at, now),
                    outcome.gone_instances,
                    outcome.unseen_instances,
                ),
            ):
                for key in set(named) - found:
                    if key in table:
                        self._forget(key, now)
                        gone.add(key)
                    else:
                        unseen.add(key)
        return outcome

    def _fold(
        self, table: dict[str, R], found: Iterable[R], read_at: float, now: datetime
    ) -> set[str]:
        """Store what a consistent read found (its tags pinned whole); the keys it found."""
        keys = set()
        for resource in found:
            key = _key(resource)
            self._gone.pop(key, None)
            table[key] = resource
            self._pins[key] = Pin(dict(resource.tags), full=True, at=now)
            self._refreshed[key] = read_at
            keys.add(key)
        return keys

    def wrote(
        self, instance_id: str, add: Mapping[str, str], remove: Iterable[str], now: datetime
    ) -> None:
        """AWS acknowledged a tag write: the instance carries it, whatever the index says."""
        with self._lock:
            pin = self._pins.get(instance_id)
            if pin is None:
                pin = self._pins[instance_id] = Pin({}, full=False, at=now)
            pin.values.update(add)
            pin.values.update(dict.fromkeys(remove))
            pin.at = now
            instance = self._instances.get(instance_id)
            if instance is not None:
                self._instances[instance_id] = replace(instance, tags=pin.apply(instance.tags))

    def deregistered(self, instance_id: str, now: datetime) -> None:
        with self._lock:
            self._forget(instance_id, now)

    def _forget(self, key: str, now: datetime) -> None:
        self._workspaces.pop(key, None)
        self._instances.pop(key, None)
        self._pins.pop(key, None)
        self._gone[key] = now

    # -- reading -------------------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> Snapshot:
        return Snapshot(
            list(self._workspaces.values()), list(self._instances.values()), self._tag_source
        )

    def instance(self, instance_id: str) -> LiveInstance | None:
        with self._lock:
            return self._instances.get(instance_id)

    def workspace(self, workspace_id: str) -> LiveWorkspace | None:
        with self._lock:
            return self._workspaces.get(workspace_id)

    def pinned(self) -> int:
        """Resources whose tags are pinned against the index (a gauge of how far it lags)."""
        with self._lock:
            return len(self._pins)


def _key(resource: LiveWorkspace | LiveInstance) -> str:
    return resource.workspace_id if isinstance(resource, LiveWorkspace) else resource.instance_id


__all__ = ["FleetInformer", "Pin", "Refreshed", "Snapshot"]
