"""WorkSpaces take time: the intermediate states of the WorkSpaces API, on the sandbox clock.

A request through the WorkSpaces API (CreateWorkspaces, Stop/Start/Reboot/Rebuild/Terminate) puts
the WorkSpace in its intermediate state (PENDING, STOPPING, STARTING, REBOOTING, REBUILDING,
TERMINATING) and it reaches the final state after ``DURATIONS`` on the sandbox clock (advance it to
skip ahead). A new WorkSpace is not listed by DescribeWorkspaces for ``INVISIBLE_AFTER_CREATE``.

The SSM side follows with the agent's timing, not the WorkSpace's: a WorkSpace going down (stop,
rebuild, terminate) takes its agent with it at once, but the managed instance's PingStatus turns
ConnectionLost only ``PING_LOST_AFTER`` later, when the agent has missed its pings; a WorkSpace
coming up (start, reboot) has its agent ping as soon as it is AVAILABLE.

The durations are the sandbox's choice of a realistic order of magnitude (AWS publishes no exact
figures): PENDING 20 min, STARTING and STOPPING 2 min, REBOOTING 3 min, REBUILDING 30 min,
TERMINATING 5 min, PingStatus 5 min. The fleet simulator's admin power switch
(``POST /_sandbox/fleet/stop`` ...) stays instantaneous, for tests that only need the outcome.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fleet_sandbox.clock import clock
from fleet_sandbox.state import attached

DURATIONS = {
    "PENDING": timedelta(minutes=20),
    "STARTING": timedelta(minutes=2),
    "STOPPING": timedelta(minutes=2),
    "REBOOTING": timedelta(minutes=3),
    "REBUILDING": timedelta(minutes=30),
    "TERMINATING": timedelta(minutes=5),
}
INTERMEDIATE = {
    "start": "STARTING",
    "stop": "STOPPING",
    "reboot": "REBOOTING",
    "rebuild": "REBUILDING",
    "terminate": "TERMINATING",
}
PING_LOST_AFTER = timedelta(minutes=5)
INVISIBLE_AFTER_CREATE = timedelta(seconds=30)
_GOING_DOWN = {"stopped", "rebuilt", "terminated"}


@dataclass
class _Due:
    at: datetime
    workspace_id: str
    final_state: str | None = None  # set the WorkSpace to this
    event: str | None = None  # then tell the lifecycle listeners this


@dataclass
class Lifecycle:
    """Pending transitions of one account and region (hangs off moto's WorkSpaces backend)."""

    due: list[_Due] = field(default_factory=list)
    hidden_until: dict[str, datetime] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


def lifecycle(backend: Any) -> Lifecycle:
    return attached(backend, Lifecycle)


def begin(backend: Any, workspace: Any, action: str, final_state: str, event: str) -> None:
    """Start ``action``: the intermediate state now, the final state and the event later."""
    now = clock.now()
    intermediate = INTERMEDIATE[action]
    workspace.state = intermediate
    done = now + DURATIONS[intermediate]
    state = lifecycle(backend)
    with state.lock:
        state.due = [d for d in state.due if d.workspace_id != workspace.workspace_id]
        state.due.append(_Due(done, workspace.workspace_id, final_state=final_state))
        heard = now + PING_LOST_AFTER if event in _GOING_DOWN else done
        state.due.append(_Due(heard, workspace.workspace_id, event=event))


def created(backend: Any, workspace: Any) -> None:
    """A WorkSpace CreateWorkspaces just made: hidden for a moment, then PENDING, then AVAILABLE."""
    now = clock.now()
    workspace.state = "PENDING"
    state = lifecycle(backend)
    with state.lock:
        state.hidden_until[workspace.workspace_id] = now + INVISIBLE_AFTER_CREATE
        state.due.append(_Due(now + DURATIONS["PENDING"], workspace.workspace_id, "AVAILABLE"))


def visible(backend: Any, workspace_id: str) -> bool:
    state = lifecycle(backend)
    with state.lock:
        until = state.hidden_until.get(workspace_id)
    return until is None or clock.now() >= until


Notify = Callable[[str, str, str, str], None]


def settle(backend: Any, notify: Notify, on_final: Callable[[Any, str], None]) -> None:
    """Apply every transition that is due by now, in time order."""
    now = clock.now()
    state = lifecycle(backend)
    with state.lock:
        ready = sorted((d for d in state.due if d.at <= now), key=lambda d: d.at)
        state.due = [d for d in state.due if d.at > now]
        for workspace_id, until in list(state.hidden_until.items()):
            if until <= now:
                del state.hidden_until[workspace_id]
    for due in ready:
        workspace = backend.workspaces.get(due.workspace_id)
        if due.final_state is not None and workspace is not None:
            workspace.state = due.final_state
            on_final(workspace, due.final_state)
        if due.event is not None:
            notify(backend.account_id, backend.region_name, due.workspace_id, due.event)
