"""``apply``'s progress on a terminal: one display at the bottom, the log printed above it.

A display drawn by hand (a carriage return and an erase code) once had the next log line run into
it, because the log and the display wrote to one terminal without knowing of each other. Here rich
owns the terminal while the display is shown, and the log handler writes through rich's console
(``logging.log_writer``), so a log line always lands above the display and the display is drawn
again below it. Off a terminal there is no display: the JSON log has one event per operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from controller.contract import Operation
from controller.observability.logging import log_writer
from controller.observability.redaction import redact_text


class _ThroughConsole:
    """A file-like object for the log handler: each write is printed above the live display."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def write(self, text: str) -> int:
        for line in text.rstrip("\n").split("\n"):
            self.console.print(Text.from_ansi(line), soft_wrap=True, highlight=False)
        return len(text)

    def flush(self) -> None:
        self.console.file.flush()


class ApplyProgress:
    """The bar, how many of how many operations are done, and the one just finished."""

    def __init__(self, progress: Progress, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task("applying", total=total)
        self._failed = 0

    def __call__(self, index: int, total: int, operation: Operation, error: str | None) -> None:
        self._failed += bool(error)
        description = f"{operation.action.value} {operation.kind} {operation.name}"
        if index >= total:
            description = f"applied {total - self._failed} of {total}"
        if self._failed:
            description += f" ({self._failed} failed)"
        self._progress.update(
            self._task, completed=index, total=total, description=redact_text(description)
        )


@contextmanager
def apply_progress(stream: TextIO, total: int, colour: bool) -> Iterator[ApplyProgress | None]:
    """The display on ``stream`` while the block runs, when ``stream`` is a terminal (else None)."""
    if not stream.isatty():
        yield None
        return
    console = Console(file=stream, force_terminal=True, no_color=not colour, highlight=False)
    progress = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with progress, log_writer(_ThroughConsole(console)):
        yield ApplyProgress(progress, total)


__all__ = ["ApplyProgress", "apply_progress"]
