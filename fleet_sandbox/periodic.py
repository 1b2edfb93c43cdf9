"""A background thread that calls one action every few seconds: the simulated fleet's clockwork.

The interactive sandbox needs two of them (WorkSpaces registering as soon as an activation is
published, agents running due associations); tests call the same actions through the admin API
instead, so they decide exactly when the fleet acts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class Periodic:
    """Calls ``action`` every ``interval`` seconds until stopped. A tick that raises is logged and
    the next tick tries again: one bad association or registration must not end the thread."""

    def __init__(self, name: str, interval: float, action: Callable[[], Any]) -> None:
        self.name = name
        self.interval = interval
        self._action = action
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._action()
            except Exception:
                log.exception("%s tick failed", self.name)


def fleet_clockwork(interval: float) -> list[Periodic]:
    """Started: WorkSpaces register with the published activation or enroll at the endpoint,
    agents run what is due and the commands sent to them."""
    from fleet_sandbox.agent import AgentLoop
    from fleet_sandbox.enrolling import Enroller
    from fleet_sandbox.fleet import AutoRegistrar
    from fleet_sandbox.ssm_commands import CommandLoop

    workers: list[Periodic] = [
        AutoRegistrar(interval),
        Enroller(interval),
        AgentLoop(interval),
        CommandLoop(interval),
    ]
    for worker in workers:
        worker.start()
    return workers
