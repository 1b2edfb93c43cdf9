"""The detection specification's data (controller/detection/spec.yaml), as the tests read it.

The file is read as YAML, never through the controller's code, so a test that holds an
implementation to the specification does not also hold it to the controller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILE = ROOT / "controller" / "detection" / "spec.yaml"
SPEC_TEXT = ROOT / "controller" / "detection" / "SPEC.md"
EVALUATOR = ROOT / "controller" / "detection" / "evaluator.ps1"
PLACEHOLDER = re.compile(r"\{[A-Za-z0-9]+\}")


@dataclass(frozen=True)
class Case:
    name: str
    rule: Any
    verdict: str
    machine: dict[str, Any] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    refusal: str | None = None
    covers: str | None = None
    agent_version: str | None = None


@cache
def spec() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(SPEC_FILE.read_text(encoding="utf-8"))
    return data


def _expand(value: Any) -> Any:
    """``{repeat: '#', times: N}`` stands for a long string (the size-bound cases)."""
    if isinstance(value, dict):
        if set(value) == {"repeat", "times"}:
            return str(value["repeat"]) * int(value["times"])
        return {key: _expand(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item) for item in value]
    return value


@cache
def cases() -> tuple[Case, ...]:
    found = []
    for entry in spec()["cases"]:
        found.append(
            Case(
                name=entry["name"],
                rule=_expand(entry["rule"]),
                verdict=entry["verdict"],
                machine=entry.get("machine") or {},
                reasons=tuple(entry.get("reasons") or ()),
                refusal=entry.get("refusal"),
                covers=entry.get("covers"),
                agent_version=entry.get("agentVersion"),
            )
        )
    return tuple(found)


def cases_where(*verdicts: str) -> list[Case]:
    return [case for case in cases() if case.verdict in verdicts]


def template(text: str) -> str:
    """A reason template with its placeholders made anonymous: ``found {size}`` -> ``found {}``."""
    return PLACEHOLDER.sub("{}", text)


def observations(rule_type: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = spec()["ruleTypes"][rule_type]["observations"]
    return found


def template_matches(pattern: str, text: str) -> bool:
    """Whether ``text`` is ``pattern`` with each ``{}`` standing for some non-empty text."""
    parts = [re.escape(part) for part in template(pattern).split("{}")]
    return re.fullmatch("(.+?)".join(parts), text, re.S) is not None


def leaf_type(rule: Any) -> str:
    return str(rule["type"])
