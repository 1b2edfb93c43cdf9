"""What the simulated agent does for the plugins of Amazon's documents (and any document using them).

Scripts (``aws:runPowerShellScript``, ``aws:runShellScript``, ``aws:psModule``) run against the
machine's simulated state: a result configured for the exact script text (the machine's
``scripts`` effects, keyed by sha256, as detection uses) wins; otherwise the script is read line by
line: ``Write-Output``/``Write-Host``/``echo`` lines are its output, ``exit N`` ends it with code N,
``throw`` fails it with exit code 1. Anything else succeeds silently: the sandbox cannot run code.

``aws:runPatchBaseline`` scans or installs against the machine's simulated missing patches (set
with ``POST /_sandbox/patches``) and reports Patch compliance, as Patch Manager does. The other
plugins (domain join, agent update, Docker, downloads) succeed and say what they would have done.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fleet_sandbox import admin, agent, machine, ssm_associations
from fleet_sandbox.agent import StepResult
from fleet_sandbox.clock import clock
from fleet_sandbox.machine import AgentModel
from fleet_sandbox.state import attached, fleet_state, ssm_backend

_OUTPUT = re.compile(r"^(?:Write-Output|Write-Host|echo)\s+(.*)$", re.IGNORECASE)
_EXIT = re.compile(r"^exit\s+(-?\d+)\s*;?$", re.IGNORECASE)
_THROW = re.compile(r"^throw\s+(.*)$", re.IGNORECASE)


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def script_text(commands: Any) -> str:
    return "\n".join(map(str, commands)) if isinstance(commands, list) else str(commands or "")


def run_script(agent_model: AgentModel, text: str) -> tuple[int, str]:
    """(exit code, output) of a script on a simulated machine: how the machine was told this
    script behaves (by its sha256, as for detection scripts), else what its simple lines say."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    configured = machine.script(agent_model, digest)
    if configured is not None:
        return configured.exit_code, "\n".join(filter(None, (configured.stdout, configured.stderr)))
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if (match := _EXIT.match(line)) is not None:
            return int(match.group(1)), "\n".join(lines)
        if (match := _THROW.match(line)) is not None:
            lines.append(_unquote(match.group(1)))
            return 1, "\n".join(lines)
        if (match := _OUTPUT.match(line)) is not None:
            lines.append(_unquote(match.group(1)))
    return 0, "\n".join(lines)


def _script(context: Any, name: str, action: str, inputs: dict[str, Any]) -> StepResult:
    code, output = run_script(context.agent, script_text(inputs.get("runCommand")))
    return StepResult(name, action, "Success" if code == 0 else "Failed", code, output)


for _action in ("aws:runPowerShellScript", "aws:runShellScript", "aws:psModule"):
    agent.STEP_HANDLERS[_action] = _script


def _says(message: str) -> agent.StepHandler:
    def handler(context: Any, name: str, action: str, inputs: dict[str, Any]) -> StepResult:
        return StepResult(name, action, "Success", 0, message.format(**inputs))

    return handler


agent.STEP_HANDLERS.update(
    {
        "aws:domainJoin": _says("Domain join to {directoryName} ({directoryId}) requested."),
        "aws:updateSsmAgent": _says("The SSM Agent is at the requested version."),
        "aws:updateAgent": _says("The agent is at the requested version."),
        "aws:configureDocker": _says("Docker: {action} done."),
        "aws:downloadContent": _says("Content downloaded from {sourceType}."),
        "aws:runDocument": _says("The downloaded document ran."),
        "aws:applications": _says("Application {action} of {source} done."),
        "aws:refreshAssociation": _says("Associations refreshed."),
    }
)


current_execution: ContextVar[str | None] = ContextVar("current_execution", default=None)
"""The Run Command or association execution a plugin runs for (its reports carry the ID)."""

# --- patching ------------------------------------------------------------------------------------


@dataclass
class PatchReport:
    operation: str
    missing: dict[str, str]  # KB -> severity, after the operation
    installed: int
    executed: datetime
    execution_id: str


@dataclass
class PatchState:
    """Per account and region: the patches each machine lacks and its last patch report."""

    missing: dict[str, dict[str, str]] = field(default_factory=dict)  # instance -> KB -> severity
    reports: dict[str, PatchReport] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


def patch_state(account_id: str, region: str) -> PatchState:
    return attached(ssm_backend(account_id, region), PatchState)


_SEVERITIES = ("Critical", "Important", "Moderate", "Low", "Unspecified")
_COMPLIANCE_SEVERITY = {
    "Critical": "CRITICAL",
    "Important": "HIGH",
    "Moderate": "MEDIUM",
    "Low": "LOW",
    "Unspecified": "UNSPECIFIED",
}


def _patch(context: Any, name: str, action: str, inputs: dict[str, Any]) -> StepResult:
    operation = str(inputs.get("operation", "Scan"))
    state = patch_state(context.account_id, context.region)
    instance_id = context.instance.instance_id
    with state.lock:
        missing = dict(state.missing.get(instance_id, {}))
        installed = 0
        if operation == "Install":
            installed = len(missing)
            missing = {}
            state.missing[instance_id] = {}
        state.reports[instance_id] = PatchReport(
            operation, missing, installed, clock.now(), current_execution.get() or str(uuid.uuid4())
        )
    text = (
        f"Patch {operation}: {len(missing)} missing, {installed} installed"
        + (f" ({', '.join(sorted(missing))})" if missing else "")
        + "."
    )
    return StepResult(name, action, "Success", 0, text)


agent.STEP_HANDLERS["aws:runPatchBaseline"] = _patch


@ssm_associations.compliance_provider
def _patch_compliance(account_id: str, region: str, instance_id: str) -> list[dict[str, Any]]:
    """Patch compliance as Patch Manager reports it: one item per missing patch (NON_COMPLIANT,
    the patch's severity), or one COMPLIANT item when nothing is missing."""
    state = patch_state(account_id, region)
    with state.lock:
        report = state.reports.get(instance_id)
    if report is None:
        return []
    summary = {
        "ExecutionTime": report.executed,
        "ExecutionId": report.execution_id,
        "ExecutionType": "Command",
    }
    base = {"ComplianceType": "Patch", "ResourceType": "ManagedInstance", "ResourceId": instance_id}
    if not report.missing:
        return [
            {
                **base,
                "Id": "baseline",
                "Title": "All approved patches are installed",
                "Status": "COMPLIANT",
                "Severity": "UNSPECIFIED",
                "ExecutionSummary": summary,
                "Details": {"Operation": report.operation},
            }
        ]
    return [
        {
            **base,
            "Id": kb,
            "Title": kb,
            "Status": "NON_COMPLIANT",
            "Severity": _COMPLIANCE_SEVERITY.get(severity, "UNSPECIFIED"),
            "ExecutionSummary": summary,
            "Details": {"PatchState": "Missing", "Classification": "SecurityUpdates"},
        }
        for kb, severity in sorted(report.missing.items())
    ]


@admin.route("POST", "/_sandbox/patches")
def _set_missing(request: admin.AdminRequest) -> dict[str, Any]:
    """``{"instanceIds": [...], "missing": {"KB5031364": "Critical"}}``: what those machines lack."""
    instance_ids = request.field("instanceIds", list)
    missing = request.field("missing", dict)
    for kb, severity in missing.items():
        if not re.fullmatch(r"KB\d{6,8}", str(kb)) or severity not in _SEVERITIES:
            raise admin.AdminError(
                400, f"missing patches map KB numbers to one of {', '.join(_SEVERITIES)}"
            )
    instances = fleet_state(request.account_id, request.region).instances
    unknown = [i for i in instance_ids if i not in instances]
    if unknown:
        raise admin.AdminError(404, f"no managed instance {unknown[0]}")
    state = patch_state(request.account_id, request.region)
    with state.lock:
        for instance_id in instance_ids:
            state.missing[instance_id] = dict(missing)
    return {"instanceIds": instance_ids, "missing": missing}
