"""A plan as text (terraform-plan style, coloured on a terminal), Markdown (PR comment) or JSON.

Every format shows the same truth: the changes, the findings, what was refused and what is blocked
(with why), and a summary that never says "No changes" beside a refusal. Every renderer passes
its output through ``redact_text`` as a last line of defence, although no secret ever enters a
plan in the first place.
"""

from __future__ import annotations

import json
from typing import Any

from controller.contract import Action, Blocked, FieldChange, Finding, Operation, Plan, Severity
from controller.observability.redaction import redact_text

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


def _value(value: Any) -> str:
    return "(none)" if value is None else json.dumps(value, default=str)


def _change_line(change: FieldChange) -> str:
    if change.before is None:
        return f"+ {change.field}: {_value(change.after)}"
    if change.after is None:
        return f"- {change.field}: {_value(change.before)}"
    return f"~ {change.field}: {_value(change.before)} -> {_value(change.after)}"


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
    return f"{finding.kind}/{finding.name}: {finding.message}{examples}"


def render_text(plan: Plan, colour: bool = False) -> str:
    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    lines: list[str] = []
    current_kind = None
    for operation in plan.operations:
        if operation.kind != current_kind:
            current_kind = operation.kind
            lines.append(paint(_BOLD, operation.kind))
        symbol = _SYMBOLS[operation.action]
        head = f"  {symbol} {operation.action.value} {operation.name} {operation.resource}"
        if operation.prune:
            head += " (prune)"
        lines.append(paint(_COLOURS[operation.action], head))
        if operation.reason:
            lines.append(f"      # {operation.reason}")
        lines += [f"      {_change_line(change)}" for change in operation.changes]
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
            lines += [f"    {_change_line(change)}" for change in operation.changes]
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
            {"field": c.field, "before": c.before, "after": c.after} for c in operation.changes
        ],
    }


def render_json(plan: Plan) -> str:
    return redact_text(json.dumps(plan_to_dict(plan), indent=2, default=str) + "\n")
