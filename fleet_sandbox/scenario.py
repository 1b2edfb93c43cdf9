"""Scenario files: a YAML description of a sandbox fleet, applied at start or through the admin API.

Each top-level section is handled by the module that owns that part of the simulation, registered
with ``@section("workspaces")``; an unknown section is an error naming it, so a typo never passes
silently.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from fleet_sandbox import admin

SectionHandler = Callable[[Any, str, str], None]
"""(section value, account_id, region) -> None; raises ValueError with a clear message."""

_sections: dict[str, SectionHandler] = {}
# Sections are applied in this order when present, so later ones can rely on earlier ones.
ORDER: list[str] = []


def section(name: str) -> Callable[[SectionHandler], SectionHandler]:
    def register(handler: SectionHandler) -> SectionHandler:
        _sections[name] = handler
        if name not in ORDER:
            ORDER.append(name)
        return handler

    return register


def apply_scenario(data: Any, account_id: str, region: str, source: str = "scenario") -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a scenario is a mapping of sections")
    unknown = sorted(set(data) - set(_sections))
    if unknown:
        raise ValueError(
            f"{source}: unknown section(s) {', '.join(unknown)}; known: {', '.join(sorted(_sections))}"
        )
    for name in ORDER:
        if name in data:
            try:
                _sections[name](data[name], account_id, region)
            except ValueError as error:
                raise ValueError(f"{source}: section '{name}': {error}") from None


def load_scenario_file(path: str | Path, account_id: str, region: str) -> None:
    text = Path(path).read_text(encoding="utf-8")
    apply_scenario(yaml.safe_load(text) or {}, account_id, region, source=str(path))


@admin.route("POST", "/_sandbox/scenario")
def _apply(request: admin.AdminRequest) -> dict[str, Any]:
    try:
        apply_scenario(request.body, request.account_id, request.region)
    except ValueError as error:
        raise admin.AdminError(400, str(error)) from None
    return {}
