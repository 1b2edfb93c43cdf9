"""Both renderers, captured as real output: registered secrets and secret-named keys never appear."""

from __future__ import annotations

import io
import json
import logging
import os
import select
from datetime import UTC, datetime

import pytest
import structlog

from controller.observability.logging import configure_logging, get_logger
from controller.observability.redaction import REDACTED


def _emit_everything(secret: str) -> None:
    """Log the secret every way a careless caller might."""
    log = get_logger("controller.kinds.activation")
    structlog.contextvars.bind_contextvars(target="eu-west-1")
    try:
        log.info("created activation %s", secret, activation_id="a-123")
        log.info(f"published code {secret}")
        log.info(
            "nested",
            result={"ActivationId": "a-123", "Codes": [secret, {"inner": (secret, 1)}]},
            status_code=200,
        )
        log.info("named", activation_code="never-registered-code-42")
        try:
            raise RuntimeError(f"CreateActivation returned {secret}")
        except RuntimeError:
            log.exception("apply failed", kind="Activation")
    finally:
        structlog.contextvars.clear_contextvars()


def _lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line]


def test_json_lines_never_contain_the_secret(secret: str) -> None:
    out = io.StringIO()
    configure_logging("json", stream=out)
    _emit_everything(secret)

    text = out.getvalue()
    assert secret not in text
    assert "never-registered-code-42" not in text
    events = [json.loads(line) for line in text.splitlines()]
    assert [e["event"] for e in events] == [
        f"created activation {REDACTED}",
        f"published code {REDACTED}",
        "nested",
        "named",
        "apply failed",
    ]
    first, _, nested, named, failed = events
    assert first["activation_id"] == "a-123"
    assert first["target"] == "eu-west-1"
    assert first["level"] == "info"
    assert first["logger"] == "controller.kinds.activation"
    stamp = datetime.fromisoformat(first["timestamp"])
    assert stamp.utcoffset() == UTC.utcoffset(None)
    assert first["timestamp"].endswith("Z")
    assert nested["result"] == {
        "ActivationId": "a-123",
        "Codes": [REDACTED, {"inner": [REDACTED, 1]}],
    }
    assert nested["status_code"] == 200
    assert named["activation_code"] == REDACTED
    assert failed["level"] == "error"
    assert "Traceback (most recent call last)" in failed["exception"]
    assert f"RuntimeError: CreateActivation returned {REDACTED}" in failed["exception"]


@pytest.mark.parametrize("colors", [False, True])
def test_console_lines_never_contain_the_secret(secret: str, colors: bool) -> None:
    out = io.StringIO()
    configure_logging("console", stream=out, colors=colors)
    _emit_everything(secret)

    text = out.getvalue()
    assert secret not in text
    assert "never-registered-code-42" not in text
    assert ("\x1b[" in text) is colors
    plain = text
    if colors:
        import re

        plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    lines = plain.splitlines()
    assert "created activation [REDACTED]" in lines[0]
    assert "[controller.kinds.activation]" in lines[0]
    assert "target=eu-west-1" in lines[0]
    assert "activation_code=[REDACTED]" in plain
    assert f"RuntimeError: CreateActivation returned {REDACTED}" in plain
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0])


def test_stdlib_libraries_share_the_pipeline_at_warning(secret: str) -> None:
    out = io.StringIO()
    configure_logging("json", level="debug", stream=out)
    logging.getLogger("botocore.endpoint").debug("request body has %s", secret)
    logging.getLogger("urllib3.connectionpool").info("connection to %s", secret)
    logging.getLogger("botocore.retries").warning("retrying after %s", secret)
    try:
        raise ConnectionError(f"reset while sending {secret}")
    except ConnectionError:
        logging.getLogger("urllib3").error("gave up", exc_info=True)
    logging.getLogger("controller.engine").debug("our own debug")

    assert secret not in out.getvalue()
    events = [json.loads(line) for line in _lines(out)]
    assert [(e["logger"], e["event"]) for e in events] == [
        ("botocore.retries", f"retrying after {REDACTED}"),
        ("urllib3", "gave up"),
        ("controller.engine", "our own debug"),
    ]
    assert f"ConnectionError: reset while sending {REDACTED}" in events[1]["exception"]
    assert events[0]["level"] == "warning"


def test_other_root_handlers_receive_only_redacted_events(secret: str) -> None:
    """pytest's log capture (or any handler someone adds) must not be a way around redaction."""
    seen: list[str] = []

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    configure_logging("json", stream=io.StringIO())
    spy = Spy()
    logging.getLogger().addHandler(spy)
    try:
        get_logger("controller.test").info("code is %s", secret, activation_code="unregistered-xyz")
    finally:
        logging.getLogger().removeHandler(spy)
    assert len(seen) == 1
    assert secret not in seen[0]
    assert "unregistered-xyz" not in seen[0]
    assert REDACTED in seen[0]


def test_reconfiguring_replaces_the_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", stream=first)
    configure_logging("json", level="warning", stream=second)
    log = get_logger("controller.test")
    log.info("below the new level")
    log.warning("once")
    assert first.getvalue() == ""
    assert [json.loads(line)["event"] for line in _lines(second)] == ["once"]


def test_auto_is_json_when_not_a_terminal() -> None:
    out = io.StringIO()
    configure_logging("auto", stream=out)
    get_logger("controller.test").info("piped", n=1)
    assert json.loads(out.getvalue())["event"] == "piped"


def test_auto_is_coloured_console_on_a_terminal(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    master, slave = os.openpty()
    tty = os.fdopen(slave, "w", encoding="utf-8")
    try:
        configure_logging("auto", stream=tty)
        get_logger("controller.test").info("on a terminal", code=secret)
        tty.flush()
        received = b""
        while b"\n" not in received:
            readable, _, _ = select.select([master], [], [], 10)
            assert readable, "nothing written to the terminal"
            received += os.read(master, 65536)
    finally:
        tty.close()
        os.close(master)
    text = received.decode()
    assert "on a terminal" in text
    assert "\x1b[" in text  # coloured
    assert not text.lstrip().startswith("{")
    assert secret not in text


def test_unknown_format_and_level_are_rejected() -> None:
    with pytest.raises(ValueError):
        configure_logging("xml", stream=io.StringIO())
    with pytest.raises(ValueError):
        configure_logging("json", level="loud", stream=io.StringIO())
