"""One logging pipeline for the controller's own events and for every library that uses stdlib logging.

structlog events and stdlib records (boto3, botocore, urllib3, ...) both end in one stdlib handler
whose ``ProcessorFormatter`` renders JSON lines (containers, CI) or a coloured console line (a
terminal). Secret redaction is the last processor before the renderer on both paths, and also runs
before a structlog event is handed to stdlib, so any other handler attached to the root logger
(pytest's log capture, for one) only ever sees redacted events.

Two audiences, one event. JSON lines carry every field for machines. On a console, a person reads:
an event with a ``summary`` (a sentence in a WorkSpaces admin's words) is shown as that sentence,
and an info event marked ``detail=True`` (one line per applied operation or per enrollment, which
the pass summary and the progress display already tell) is left out. ``--log-level debug`` shows
both the way JSON does.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import Processor

from controller.observability.redaction import redact_event, redact_text

LogFormat = Literal["auto", "json", "console"]

# Chatty libraries that log request details at DEBUG/INFO: only their warnings are worth a line.
QUIET_LOGGERS = ("boto3", "botocore", "urllib3", "s3transfer", "werkzeug")

SUMMARY_KEY = "summary"
"""An event's sentence for a person: the console shows it instead of the event's fields."""
DETAIL_KEY = "detail"
"""``detail=True`` on an info event: one of many that a summary already tells (console leaves it out)."""

_HANDLER_MARK = "_fleet_controller_handler"

LOG_TEE_ENV = "FLEET_LOG_TEE_DIR"
"""Test support: when set, every rendered line is also appended to ``<dir>/<pid>.log``.

The test suite's secret scan sets it so that log lines of controller subprocesses (whose stderr a
test may read and drop) are scanned too. Unset, as in production, it changes nothing.
"""


class _RedactingStreamHandler(logging.StreamHandler[TextIO]):
    """A stream handler whose own error report cannot leak the record it failed on.

    The stdlib default prints the whole record (message and arguments) to stderr.
    """

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        try:
            self.stream.write(
                redact_text(f"logging error in {record.name}: {type(exc).__name__}: {exc}") + "\n"
            )
            self.flush()
        except Exception:  # the stream itself is broken; there is nowhere left to report to
            pass


class _RedactingTeeHandler(logging.FileHandler, _RedactingStreamHandler):
    """The ``LOG_TEE_ENV`` copy of every line: a file, with the same redacted error report."""


def _parse_level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(level.upper())
    if not isinstance(value, int):
        raise ValueError(
            f"unknown log level {level!r}; use debug, info, warning, error or critical"
        )
    return value


def _resolve_format(fmt: str, stream: TextIO) -> Literal["json", "console"]:
    if fmt == "auto":
        return "console" if _isatty(stream) else "json"
    if fmt in ("json", "console"):
        return fmt  # type: ignore[return-value]
    raise ValueError(f"unknown log format {fmt!r}; use auto, json or console")


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def configure_logging(
    format: LogFormat | str = "auto",
    level: str | int = "info",
    *,
    stream: TextIO | None = None,
    colors: bool | None = None,
) -> None:
    """Route structlog and stdlib logging through one redacting pipeline to ``stream`` (stderr).

    ``auto`` renders JSON lines unless the stream is a terminal. ``colors`` defaults to "stream is
    a terminal and NO_COLOR is unset". Calling it again replaces the previous configuration.
    """
    out = stream if stream is not None else sys.stderr
    resolved = _resolve_format(format, out)
    numeric_level = _parse_level(level)
    use_colors = colors if colors is not None else (_isatty(out) and "NO_COLOR" not in os.environ)

    verbose = numeric_level <= logging.DEBUG
    stamp = (
        structlog.processors.TimeStamper(fmt="iso", utc=True)
        if resolved == "json"
        else structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False)
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        stamp,
    ]
    renderer: Processor
    if resolved == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = _SentenceRenderer(colors=use_colors, verbose=verbose)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            _DetailFilter(drop=resolved == "console" and not verbose),
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_event,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Reconfiguration (tests, the CLI switching format) must reach loggers already in use.
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.processors.format_exc_info],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_event,  # last before rendering: nothing reaches the renderer unredacted
            renderer,
        ],
    )
    handlers: list[logging.Handler] = [_RedactingStreamHandler(out)]
    tee_dir = os.environ.get(LOG_TEE_ENV)
    if tee_dir:
        path = os.path.join(tee_dir, f"{os.getpid()}.log")
        handlers.append(_RedactingTeeHandler(path, encoding="utf-8", delay=True))

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.setFormatter(formatter)
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    root.setLevel(numeric_level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, numeric_level))
    logging.captureWarnings(True)


class _DetailFilter:
    """Leaves out ``detail=True`` info events on a console (unless debugging); drops the mark."""

    def __init__(self, drop: bool) -> None:
        self.drop = drop

    def __call__(
        self, logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        detail = event.pop(DETAIL_KEY, False)
        if detail and self.drop and method == "info":
            raise structlog.DropEvent
        return event


_LEVEL_MARKS = {"warning": "!", "error": "x", "critical": "x", "exception": "x"}
_LEVEL_COLOURS = {"warning": "\033[33m", "error": "\033[31m", "critical": "\033[31m"}


class _SentenceRenderer:
    """The console: an event with a summary as ``HH:MM:SS  sentence`` (a mark for warnings and
    errors), any other event as structlog's key=value line (also every event when verbose)."""

    def __init__(self, colors: bool, verbose: bool) -> None:
        self.colors = colors
        self.verbose = verbose
        self._fields = structlog.dev.ConsoleRenderer(colors=colors)

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        summary = event.get(SUMMARY_KEY)
        if not isinstance(summary, str) or self.verbose:
            return str(self._fields(logger, method, event))
        level = str(event.get("level", method))
        line = f"{event.get('timestamp', '')}  {_LEVEL_MARKS.get(level, ' ')} {summary}"
        colour = _LEVEL_COLOURS.get(level)
        if self.colors and colour:
            line = f"{colour}{line}\033[0m"
        exception = event.get("exception")
        return f"{line}\n{exception}" if exception else line


@contextmanager
def log_writer(stream: Any) -> Iterator[None]:
    """While the block runs, the log's own handler writes to ``stream`` (apply's progress display
    routes it through rich, so a line lands above the display, never into it)."""
    handlers = [
        h
        for h in logging.getLogger().handlers
        if getattr(h, _HANDLER_MARK, False) and type(h) is _RedactingStreamHandler
    ]
    previous = [h.setStream(stream) for h in handlers]
    try:
        yield
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            if old is not None:
                handler.setStream(old)


def get_logger(name: str | None = None, **initial: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger bound to ``initial`` values; typed for mypy."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name, **initial)
    return logger
