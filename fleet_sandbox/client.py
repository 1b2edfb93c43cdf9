"""A small HTTP client for the sandbox's admin API, for tests, benchmarks and the CLI."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections import Counter
from typing import Any
from urllib.parse import urlencode


class AdminApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"sandbox admin API answered {status}: {message}")
        self.status = status


class SandboxClient:
    def __init__(
        self, endpoint: str, region: str = "us-east-1", account: str | None = None
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.region = region
        self.account = account

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, str] | None = None,
    ) -> Any:
        query = {**(query or {}), "region": self.region}
        if self.account:
            query["account"] = self.account
        url = f"{self.endpoint}/_sandbox/{path.lstrip('/')}?{urlencode(query)}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError):
                detail = json.loads(detail).get("error", detail)
            raise AdminApiError(error.code, detail) from None

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, body or {})

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("PUT", path, body)

    # Shortcuts used everywhere.
    def reset(self) -> None:
        self.post("reset")

    def calls(self) -> list[dict[str, Any]]:
        return list(self.get("calls")["calls"])

    def reset_calls(self) -> None:
        self.request("DELETE", "calls")

    def call_counts(self, service: str | None = None) -> Counter[str]:
        """Calls by operation (all outcomes), optionally for one service."""
        counts: Counter[str] = Counter()
        for row in self.calls():
            if service is None or row["service"] == service:
                counts[row["operation"]] += row["count"]
        return counts

    def set_faults(self, rules: list[dict[str, Any]], seed: int | None = None) -> None:
        body: dict[str, Any] = {"rules": rules}
        if seed is not None:
            body["seed"] = seed
        self.put("faults", body)

    def advance_clock(self, seconds: float) -> str:
        return str(self.post("clock/advance", {"seconds": seconds})["now"])

    def skew_clock(self, seconds: float) -> str:
        """Run the sandbox's clock (and its Date headers) ``seconds`` ahead of real time."""
        return str(self.post("clock/skew", {"seconds": seconds})["now"])
