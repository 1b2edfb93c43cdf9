"""Which AWS operation an HTTP request is, and a counter of every call by service and operation.

Benchmarks and tests assert on these counts ("a zero-drift reconcile makes zero writes"), so every
request that reaches the sandbox is counted, including the ones a fault answered.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

# SigV4 signing name -> botocore client name, where they differ.
_SIGNING_NAMES = {"tagging": "resourcegroupstaggingapi"}
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


@dataclass(frozen=True)
class ApiCall:
    service: str  # botocore client name: ssm, workspaces, resourcegroupstaggingapi, s3, ...
    operation: str  # botocore operation name: CreateActivation, PutObject, ...
    region: str


def identify(environ: dict[str, Any], body: bytes) -> ApiCall | None:
    """The operation a request asks for, from its signature scope and target/action/route."""
    match = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        return None
    region, signing_name = match.group(1), match.group(2)
    service = _SIGNING_NAMES.get(signing_name, signing_name)
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return ApiCall(service, target.rsplit(".", 1)[-1], region)
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if not action and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form"):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    if action:
        return ApiCall(service, action[0], region)
    if service == "s3":
        return ApiCall(service, _s3_operation(environ), region)
    return ApiCall(
        service, f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}", region
    )


def _s3_operation(environ: dict[str, Any]) -> str:
    """The S3 operations the controller uses, from method and path (path-style addressing)."""
    method = str(environ.get("REQUEST_METHOD", "GET"))
    parts = [p for p in environ.get("PATH_INFO", "/").split("/") if p]
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    has_key = len(parts) > 1
    if not parts:
        return "ListBuckets"
    if has_key:
        return {
            "GET": "GetObject",
            "PUT": "PutObject",
            "HEAD": "HeadObject",
            "DELETE": "DeleteObject",
        }.get(method, method)
    if method == "GET":
        return "ListObjectsV2" if "list-type" in query else "ListObjects"
    return {
        "PUT": "CreateBucket",
        "HEAD": "HeadBucket",
        "DELETE": "DeleteBucket",
        "POST": "DeleteObjects",
    }.get(method, method)


class CallCounter:
    """Counts calls by (service, operation, outcome); outcome is the HTTP status or fault name."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def record(self, call: ApiCall, outcome: str) -> None:
        with self._lock:
            self._counts[(call.service, call.operation, outcome)] += 1

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"service": s, "operation": o, "outcome": outcome, "count": n}
                for (s, o, outcome), n in sorted(self._counts.items())
            ]

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
