"""Every sandbox response these tests caused must fit its botocore output shape."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _responses_fit_their_shapes(request: pytest.FixtureRequest) -> Iterator[None]:
    sandbox = request.getfixturevalue("sandbox") if "sandbox" in request.fixturenames else None
    yield
    if sandbox is not None:
        assert sandbox.admin.get("shape-violations")["violations"] == []
