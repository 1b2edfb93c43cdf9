"""Fault injection: latency, throttling, server errors and dropped connections per operation.

A rule matches a service and operation (``*`` for any) and carries rates in [0, 1]. ``deny``
answers AccessDeniedException, as a missing IAM permission would. ``reset`` drops
the connection before the sandbox acts; ``lost_response`` lets the sandbox act and then drops the
connection, the case where a client cannot know whether its write happened.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

from fleet_sandbox.traffic import ApiCall

_THROTTLE_CODES = {"resourcegroupstaggingapi": "ThrottledException", "s3": "SlowDown"}


@dataclass
class FaultRule:
    service: str = "*"
    operation: str = "*"
    latency_ms: int = 0
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    reset_rate: float = 0.0
    lost_response_rate: float = 0.0
    deny_rate: float = 0.0
    body_contains: str = ""  # only requests whose body holds this text (one resource's id)

    def matches(self, call: ApiCall, body: bytes = b"") -> bool:
        if self.body_contains and self.body_contains.encode() not in body:
            return False
        return self.service in ("*", call.service) and self.operation in ("*", call.operation)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        rule = cls(**data)
        for name in (
            "throttle_rate",
            "error_rate",
            "reset_rate",
            "lost_response_rate",
            "deny_rate",
        ):
            if not 0.0 <= float(getattr(rule, name)) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if rule.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        return rule


@dataclass(frozen=True)
class Fault:
    """What to do to one request: wait, then answer an error, drop it, or drop its response."""

    latency_ms: int = 0
    kind: str | None = None  # throttle | error | deny | reset | lost_response


class FaultInjector:
    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[FaultRule] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def set_rules(self, rules: list[FaultRule], seed: int | None = None) -> None:
        with self._lock:
            self._rules = list(rules)
            if seed is not None:
                self._random.seed(seed)

    def rules(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(rule) for rule in self._rules]

    def decide(self, call: ApiCall, body: bytes = b"") -> Fault:
        with self._lock:
            latency = 0
            for rule in self._rules:
                if not rule.matches(call, body):
                    continue
                latency += rule.latency_ms
                for kind, rate in (
                    ("deny", rule.deny_rate),
                    ("throttle", rule.throttle_rate),
                    ("error", rule.error_rate),
                    ("reset", rule.reset_rate),
                    ("lost_response", rule.lost_response_rate),
                ):
                    if rate and self._random.random() < rate:
                        return Fault(latency, kind)
            return Fault(latency, None)


def error_response(call: ApiCall, kind: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """The status, headers and body AWS sends for a throttle, a denial or a server error."""
    if kind == "throttle":
        code = _THROTTLE_CODES.get(call.service, "ThrottlingException")
        status = "503 Slow Down" if call.service == "s3" else "400 Bad Request"
        message = "Rate exceeded"
    elif kind == "deny":
        code = "AccessDenied" if call.service in ("s3", "sts") else "AccessDeniedException"
        status = "403 Forbidden" if call.service == "s3" else "400 Bad Request"
        message = f"User is not authorized to perform: {call.service}:{call.operation}"
    else:
        code = "InternalError" if call.service == "s3" else "InternalServerError"
        status = "500 Internal Server Error"
        message = "We encountered an internal error. Please try again."
    if call.service in ("s3", "sts"):
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
            f"<Message>{message}</Message></Error>"
        ).encode()
        if call.service == "sts":
            body = (
                f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
                f"<Message>{message}</Message></Error></ErrorResponse>"
            ).encode()
        headers = [("Content-Type", "application/xml")]
    else:
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    if kind == "throttle":
        headers.append(("Retry-After", "1"))
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body
