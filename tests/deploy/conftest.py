"""The deploy tests' figures (the image's size, the build's time) in pytest's terminal summary."""

from __future__ import annotations

from typing import Any

from tests.deploy.image import FIGURES


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("container image")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
