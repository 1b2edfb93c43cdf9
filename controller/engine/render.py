"""A plan as text (terraform-plan style, coloured on a terminal), Markdown (PR comment) or JSON.

Every format shows the same truth: the changes, the findings, what was refused and what is blocked
(with why), and a summary that never says "No changes" beside a refusal. Every renderer passes
its output through ``redact_text`` as a last line of defence, although no secret ever enters a
plan in the first place.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

import yaml

from controller.contract import Action, Blocked, FieldChange, Finding, Operation, Plan, Severity
from controller.observability.redaction import redact_text
from controller.observability.report import finding_subject

_SYMBOLS = {Action.CREATE: "+", Action.UPDATE: "~", Action.REPLACE: "-/+", Action.DELETE: "-"}
_COLOURS = {
    Action.CREATE: "\033[32m",
    Action.UPDATE: "\033[33m",
    Action.REPLACE: "\033[35m",
    Action.DELETE: "\033[31m",
}
_SEVERITY_SYMBOLS = {Severity.INFO: "i", Severity.WARNING: "!", Severity.ERROR: "x"}
_RESET = "\033[0m"
_BOLD = "\033[1m"


_SECRET_FIELD = re.compile(
    r"(secret|password|passwd|token|credential|activationcode|privatekey)", re.I
)
MASKED = "(secret, not shown)"
_INDENT = "      "


class _BlockDumper(yaml.SafeDumper):
    """YAML as a reviewer reads it: multi-line strings (scripts) as literal blocks."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_block)


def _decoded(value: Any) -> Any:
    """``value`` with JSON held in strings (SSM parameters carry detection rules so) decoded,
    and secret-named fields masked."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            inner = json.loads(value)
        except ValueError:
            return value
        return _decoded(inner) if isinstance(inner, dict | list) else value
    if isinstance(value, dict):
        return {
            k: (MASKED if _SECRET_FIELD.search(str(k)) else _decoded(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_decoded(v) for v in value]
    return value


def _structured(value: Any) -> bool:
    return isinstance(value, dict | list) and bool(value)


def _value(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, default=str)


def _yaml_lines(value: Any) -> list[str]:
    text = yaml.dump(
        value, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return text.rstrip("\n").split("\n")


def _leaves(value: Any, path: str) -> dict[str, Any]:
    """Every leaf of a structured value by its path (``detectionRules.allOf[0].version``)."""
    if isinstance(value, dict) and value:
        found: dict[str, Any] = {}
        for key, inner in value.items():
            found.update(_leaves(inner, f"{path}.{key}"))
        return found
    if isinstance(value, list) and value:
        found = {}
        for index, inner in enumerate(value):
            found.update(_leaves(inner, f"{path}[{index}]"))
        return found
    return {path: value}


_ABSENT = object()


def change_lines(change: FieldChange) -> list[str]:
    """One field change as plan lines: a scalar on one line; a structured value (a dict, a
    list, JSON in a string) as YAML below its field; an update of one field by field."""
    if _SECRET_FIELD.search(change.field):
        symbol = "+" if change.before is None else "-" if change.after is None else "~"
        return [f"{symbol} {change.field}: {MASKED}"]
    before, after = _decoded(change.before), _decoded(change.after)
    if _structured(before) and _structured(after):
        old, new = _leaves(before, change.field), _leaves(after, change.field)
        lines = []
        for path in [*old, *(p for p in new if p not in old)]:
            if old.get(path, _ABSENT) == new.get(path, _ABSENT):
                continue
            lines += change_lines(FieldChange(path, old.get(path), new.get(path)))
        return lines
    for symbol, value, other in (("+", after, before), ("-", before, after)):
        if _structured(value) and other is None:
            return [f"{symbol} {change.field}:"] + [f"    {line}" for line in _yaml_lines(value)]
    if before is None:
        return [f"+ {change.field}: {_value(after)}"]
    if after is None:
        return [f"- {change.field}: {_value(before)}"]
    return [f"~ {change.field}: {_value(before)} -> {_value(after)}"]


def refused_count(plan: Plan) -> int:
    """Refusals: error findings and prune-guard refusals."""
    return len(plan.errors) + len(plan.refused)


def summary_line(plan: Plan) -> str:
    counts = plan.counts()
    held = ""
    if not plan.ok:
        held = f"{refused_count(plan)} refused, {len(plan.blocked)} blocked"
    if not plan.has_changes:
        if held:
            return f"No changes can be applied: {held}. The desired state is not in force."
        return "No changes. Live state matches the desired state."
    changes = (
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['replace']} to replace, {counts['delete']} to delete"
    )
    return f"{changes}; {held}." if held else f"{changes}."


def _blocked_line(blocked: Blocked) -> str:
    operation = blocked.operation
    return (
        f"{operation.action.value} {operation.kind}/{operation.name} {operation.resource}:"
        f" {blocked.why}"
    )


def _finding_line(finding: Finding) -> str:
    examples = f" (e.g. {', '.join(finding.examples)})" if finding.examples else ""
    return f"{finding_subject(finding, '/')}: {finding.message}{examples}"


def render_text(plan: Plan, colour: bool = False) -> str:
    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    lines: list[str] = []
    by_kind: dict[str, list[Operation]] = defaultdict(list)
    for operation in plan.operations:  # in apply order; each kind under its own heading
        by_kind[operation.kind].append(operation)
    for kind, operations in by_kind.items():
        lines.append(paint(_BOLD, kind))
        for operation in operations:
            symbol = _SYMBOLS[operation.action]
            head = f"  {symbol} {operation.action.value} {operation.name} {operation.resource}"
            if operation.prune:
                head += " (prune)"
            lines.append(paint(_COLOURS[operation.action], head))
            if operation.reason:
                lines.append(f"{_INDENT}# {operation.reason}")
            for change in operation.changes:
                lines += [f"{_INDENT}{line}" for line in change_lines(change)]
    if plan.findings:
        lines.append(paint(_BOLD, "Findings"))
        lines += [f"  {_SEVERITY_SYMBOLS[f.severity]} {_finding_line(f)}" for f in plan.findings]
    if plan.blocked:
        lines.append(paint(_BOLD, "Blocked (not applied)"))
        lines += [f"  # {_blocked_line(b)}" for b in plan.blocked]
    for refusal in plan.refused:
        lines.append(paint(_COLOURS[Action.DELETE], f"Refused: {refusal}"))
    lines.append(paint(_BOLD, summary_line(plan)))
    return redact_text("\n".join(lines) + "\n")


def render_markdown(plan: Plan) -> str:
    lines = ["### fleet-controller plan", "", f"**{summary_line(plan)}**", ""]
    if plan.operations:
        lines += ["| | Kind | Name | Resource | Why |", "|---|---|---|---|---|"]
        for operation in plan.operations:
            lines.append(
                f"| `{_SYMBOLS[operation.action]}` {operation.action.value} | {operation.kind} | "
                f"{_md(operation.name)} | `{operation.resource}` | {_md(operation.reason)} |"
            )
        lines += ["", "<details><summary>Field changes</summary>", "", "```diff"]
        for operation in plan.operations:
            lines.append(f"{_SYMBOLS[operation.action][0]} {operation.title}")
            for change in operation.changes:
                lines += [f"    {line}" for line in change_lines(change)]
        lines += ["```", "", "</details>", ""]
    if plan.findings:
        lines += ["#### Findings", ""]
        lines += [f"- **{f.severity.value}** {_md(_finding_line(f))}" for f in plan.findings]
        lines.append("")
    if plan.blocked:
        lines += ["#### Blocked (not applied)", "", "| Kind | Name | Resource | Why |"]
        lines.append("|---|---|---|---|")
        for blocked in plan.blocked:
            operation = blocked.operation
            lines.append(
                f"| {operation.kind} | {_md(operation.name)} | `{operation.resource}` |"
                f" {_md(blocked.why)} |"
            )
        lines.append("")
    if plan.refused:
        lines += ["#### Refused", ""] + [f"- {_md(r)}" for r in plan.refused] + [""]
    if plan.desired_digest:
        lines.append(f"<sub>desired state digest `{plan.desired_digest[:12]}`</sub>")
    return redact_text("\n".join(lines) + "\n")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return {
        "summary": plan.counts()
        | {
            "changes": plan.has_changes,
            "ok": plan.ok,
            "refused": refused_count(plan),
            "blocked": len(plan.blocked),
        },
        "operations": [_operation_dict(op) for op in plan.operations],
        "findings": [
            {
                "kind": f.kind,
                "name": f.name,
                "severity": f.severity.value,
                "message": f.message,
                "count": f.count,
                "examples": list(f.examples),
            }
            for f in plan.findings
        ],
        "refused": list(plan.refused),
        "blocked": [_operation_dict(b.operation) | {"why": b.why} for b in plan.blocked],
        "desiredDigest": plan.desired_digest,
    }


def _operation_dict(operation: Operation) -> dict[str, Any]:
    return {
        "kind": operation.kind,
        "name": operation.name,
        "action": operation.action.value,
        "resource": operation.resource,
        "reason": operation.reason,
        "prune": operation.prune,
        "changes": [
            {"field": c.field, "before": c.before, "after": c.after}
            if not _SECRET_FIELD.search(c.field)
            else {"field": c.field, "before": MASKED, "after": MASKED}
            for c in operation.changes
        ],
    }


def render_json(plan: Plan) -> str:
    return redact_text(json.dumps(plan_to_dict(plan), indent=2, default=str) + "\n")
