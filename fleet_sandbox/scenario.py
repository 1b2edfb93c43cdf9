"""Scenario files: a YAML description of a sandbox fleet, applied at start or through the admin API.

Each top-level section is handled by the module that owns that part of the simulation, registered
with ``@section("workspaces")``; an unknown section is an error naming it, so a typo never passes
silently.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
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


DEMO_SCENARIO = "demo.yaml"


def demo_scenario(total: int) -> dict[str, Any]:
    """The built-in demo fleet (matching desired-state/), its groups scaled to ``total``
    WorkSpaces in their given proportions."""
    text = resources.files("fleet_sandbox").joinpath("scenarios", DEMO_SCENARIO)
    data: dict[str, Any] = yaml.safe_load(text.read_text(encoding="utf-8"))
    groups = data.get("workspaces") or []
    weights = [int(group.get("count", 1)) for group in groups]
    if total <= 0:
        data.pop("workspaces", None)
        return data
    if not groups or sum(weights) == 0:
        return data
    assigned = 0
    for index, group in enumerate(groups):
        if index == len(groups) - 1:
            group["count"] = max(0, total - assigned)
        else:
            group["count"] = total * weights[index] // sum(weights)
            assigned += group["count"]
    data["workspaces"] = [g for g in groups if g["count"] > 0]
    return data
