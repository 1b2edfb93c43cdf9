"""Command-line value types: each refuses a bad value with one line saying what is allowed.

argparse turns an ``ArgumentTypeError`` into ``argument --max-deletes: <message>``, and the CLI
prints that as one line and exits 1 (not argparse's 2, which ``plan --detailed-exitcode`` means
"changes"). A value from the environment (``FLEET_CONTROLLER_ID``...) passes the same check.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import re
from collections.abc import Callable
from typing import NoReturn
from urllib.parse import urlsplit

from controller.aws.targets import QUEUE_URL, REGION

CONTROLLER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}")
"""The owner tag's value and the suffix of the detection document's name: 1 to 63 characters of
letters, digits, '_', '.' and '-' (characters the document name would rewrite could make two
controllers share one document; longer ids would be cut off there)."""

REPLICA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
MAX_APPLY_CONCURRENCY = 64
MAX_SANDBOX_WORKSPACES = 20_000
MAX_EVENTS_BATCH_SECONDS = 60.0
"""Events gathered longer than a minute would no longer be reconciled "within seconds"."""


def _number(text: str, kind: type[int] | type[float]) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r:.40}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r:.40}")
    return value


def int_range(low: int, high: int | None = None) -> type[int]:
    """An int in ``low``..``high`` (no upper bound when None)."""

    def check(text: str) -> int:
        value = int(_number(text, int))
        if value < low or (high is not None and value > high):
            allowed = f"{low} to {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value}")
        return value

    return check  # type: ignore[return-value]


def seconds(
    minimum: float = 0.0, *, inclusive: bool = False, maximum: float | None = None
) -> type[float]:
    """A finite number of seconds above ``minimum`` (or at least it, with ``inclusive``), and
    at most ``maximum`` when one is given."""

    def check(text: str) -> float:
        value = float(_number(text, float))
        too_small = value < minimum or (value == minimum and not inclusive)
        if too_small or (maximum is not None and value > maximum):
            bound = "at least" if inclusive else "more than"
            limit = f" and at most {maximum:g}" if maximum is not None else ""
            raise argparse.ArgumentTypeError(f"must be {bound} {minimum:g}{limit}, got {value:g}")
        return value

    return check  # type: ignore[return-value]


def fraction(text: str) -> float:
    """0 <= value < 1 (a jitter fraction)."""
    value = float(_number(text, float))
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 0 and less than 1, got {value:g}")
    return value


def matching(pattern: re.Pattern[str], allowed: str) -> Callable[[str], str]:
    """A string that ``pattern`` matches in full; ``allowed`` says what that is."""

    def check(text: str) -> str:
        if not pattern.fullmatch(text):
            shown = "an empty value" if not text else f"{text!r:.40} ({len(text)} characters)"
            raise argparse.ArgumentTypeError(f"must be {allowed}; got {shown}")
        return text

    return check


controller_id = matching(
    CONTROLLER_ID,
    "1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit (it is the owner"
    " tag on everything this controller creates)",
)
replica_id = matching(
    REPLICA_ID, "1 to 128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
)
region = matching(REGION, "an AWS Region name such as eu-west-1")
target_name = matching(
    CONTROLLER_ID, "a target name: 1 to 63 letters, digits, '_', '.' or '-' (as in --targets)"
)


queue_url = matching(
    re.compile(QUEUE_URL.pattern.strip("^$")),
    "an SQS queue URL such as https://sqs.eu-west-1.amazonaws.com/111122223333/fleet-events",
)


def endpoint_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r:.60} is not an http(s) URL with a host")
    return text


def network(text: str) -> str:
    """An IP network (CIDR) or a single address, as ``--enroll-trusted-proxy`` takes them."""
    try:
        ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an IP network or address: {text!r:.60}") from None
    return text


def log_level(text: str) -> str:
    if text.lower() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"must be one of {', '.join(LOG_LEVELS)}; got {text!r:.20}"
        )
    return text.lower()


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """``--help`` shows every option's default (argparse's own formatter skips options without
    help text and says nothing of a default already written into the help)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or not action.option_strings
            or default is None
            or default is False
            or default == []
            or default is argparse.SUPPRESS
        ):
            return text
        shown = "%(default)s" if not isinstance(default, float) or default % 1 else "%(default)g"
        return f"{text} (default: {shown})" if text else f"(default: {shown})"


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 1."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message}\n")
