"""Fixtures for the observability tests: logging state restored after each test, unique secrets."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator

import pytest
import structlog

from controller.observability.logging import QUIET_LOGGERS
from controller.observability.redaction import register_secret


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state; put it back so other tests see no change."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    config = structlog.get_config()
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    for name, lvl in quiet.items():
        logging.getLogger(name).setLevel(lvl)
    logging.captureWarnings(False)
    structlog.configure(**config)


@pytest.fixture
def secret() -> str:
    """A fresh activation-code-like secret, registered for redaction."""
    value = "AC" + secrets.token_hex(12)
    register_secret(value)
    return value
