"""The clean reference runs, once for the crash tests, and the sandbox's own shape check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fleet_sandbox.client import SandboxClient
from tests.crash.fleet import FLOWS, PHASES, Target, converge, copy_example, snapshot


@pytest.fixture(scope="package")
def reference(sandbox_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Clean runs: the normalised live state after each phase of each flow, by (flow, phase)."""
    target = Target(sandbox_server.endpoint)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for flow, (setup, phases) in FLOWS.items():
        SandboxClient(sandbox_server.endpoint).reset()
        desired = copy_example(tmp_path_factory.mktemp(f"clean-{flow}") / "desired")
        setup(target)
        for name in phases:
            phase = PHASES[name]
            phase.before(target, desired)
            converge(desired, target)
            phase.after(target)
            found[(flow, name)] = snapshot(target)
    return found


@pytest.fixture(autouse=True)
def _responses_fit_their_shapes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every sandbox response a test caused must fit its botocore output shape."""
    sandbox = request.getfixturevalue("sandbox") if "sandbox" in request.fixturenames else None
    yield
    if sandbox is not None:
        assert sandbox.admin.get("shape-violations")["violations"] == []
