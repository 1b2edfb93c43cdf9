"""What a kind may keep between passes, and what an event-driven pass asks a kind to look at.

Kinds are shared (one instance of each, for every target), so anything a kind remembers between
passes (the live cache TagSync keeps) lives here instead: one ``KindMemory`` per Reconciler, that
is per target, handed to every step in ``Context.memory``. A kind takes its slot with
``memory.of(KIND, factory)``; nothing else reads it.

``Changes`` names the resources an event said something about (WorkSpaces and managed instances,
by id). A targeted pass (``Kind.observe_changes``) reads only those, never the fleet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar

T = TypeVar("T")
LiveT = TypeVar("LiveT")

DEFAULT_CONSISTENCY_WINDOW = timedelta(minutes=15)
"""How long a value this controller wrote or read consistently outranks what an eventually
consistent bulk read (the tagging API) says about it; see the README's *Live cache* section."""


@dataclass
class KindMemory:
    """Per-target state kept between passes, one slot per kind."""

    consistency_window: timedelta = DEFAULT_CONSISTENCY_WINDOW
    _slots: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def of(self, kind: str, factory: Callable[[], T]) -> T:
        """The kind's slot, made by ``factory`` the first time it is asked for."""
        with self._lock:
            if kind not in self._slots:
                self._slots[kind] = factory()
            slot: T = self._slots[kind]
            return slot

    def clear(self) -> None:
        """Forget everything (a replica that lost its lease must not trust what it saw)."""
        with self._lock:
            self._slots.clear()


@dataclass(frozen=True)
class Changes:
    """Resources an event named: read them (and only them) again, and reconcile what they touch."""

    workspaces: frozenset[str] = frozenset()
    instances: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.workspaces or self.instances)

    def __or__(self, other: Changes) -> Changes:
        return Changes(self.workspaces | other.workspaces, self.instances | other.instances)

    def __len__(self) -> int:
        return len(self.workspaces) + len(self.instances)


@dataclass
class Targeted(Generic[LiveT]):
    """What ``observe_changes`` found: the live state to diff (limited to what the changes touch)
    and the resources named but not visible yet (a registration AWS lists a little later)."""

    live: LiveT
    not_visible: Changes = field(default_factory=Changes)


__all__ = ["DEFAULT_CONSISTENCY_WINDOW", "Changes", "KindMemory", "Targeted"]
