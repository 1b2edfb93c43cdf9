"""Shared fixtures: one sandbox HTTP server per test session, reset before every test that uses it.

Tests reach it exactly as production reaches AWS: boto3 clients with an endpoint URL.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings

from fleet_sandbox.client import SandboxClient
from fleet_sandbox.server import Sandbox

# Property tests judge answers, never speed: on 2 busy cores one example can take longer than
# hypothesis's 200 ms deadline, and generating inputs can trip its "too slow" health check. Both
# are timing, so both are off for every property test (a test's own settings replace only what
# they name).
settings.register_profile(
    "suite", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("suite")


pytest_plugins = ["tests.secret_scan"]  # every code the sandbox issues is looked for in all output

# Never let a test reach a real account.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)

# Package builds go to a cache of this session (inherited by controller subprocesses), never to
# the home directory; a test that needs its own passes a BuildCache explicitly.
if "FLEET_BUILD_CACHE" not in os.environ:
    _build_cache = tempfile.mkdtemp(prefix="fleet-test-builds-")
    os.environ["FLEET_BUILD_CACHE"] = _build_cache
    atexit.register(shutil.rmtree, _build_cache, True)


@dataclass
class SandboxHandle:
    endpoint: str
    admin: SandboxClient
    region: str = "us-east-1"

    def client(self, service: str, region: str | None = None, **kwargs: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region or self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            **kwargs,
        )


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    server = Sandbox()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: Sandbox) -> SandboxHandle:
    admin = SandboxClient(sandbox_server.endpoint)
    admin.reset()
    return SandboxHandle(endpoint=sandbox_server.endpoint, admin=admin)


@pytest.fixture(autouse=True, scope="session")
def _redacting_logs() -> None:
    """Every log line in the suite goes through the production pipeline (with redaction)."""
    from controller.observability.logging import configure_logging

    configure_logging("json", "info")
