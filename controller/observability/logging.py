"""One logging pipeline for the controller's own events and for every library that uses stdlib logging.

structlog events and stdlib records (boto3, botocore, urllib3, ...) both end in one stdlib handler
whose ``ProcessorFormatter`` renders JSON lines (containers, CI) or a coloured console line (a
terminal). Secret redaction is the last processor before the renderer on both paths, and also runs
before a structlog event is handed to stdlib, so any other handler attached to the root logger
(pytest's log capture, for one) only ever sees redacted events.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import Processor

from controller.observability.redaction import redact_event, redact_text

LogFormat = Literal["auto", "json", "console"]

# Chatty libraries that log request details at DEBUG/INFO: only their warnings are worth a line.
QUIET_LOGGERS = ("boto3", "botocore", "urllib3", "s3transfer", "werkzeug")

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

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if resolved == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=use_colors)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
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


def get_logger(name: str | None = None, **initial: Any) -> structlog.stdlib.BoundLogger:
    """A structlog logger bound to ``initial`` values; typed for mypy."""
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name, **initial)
    return logger
