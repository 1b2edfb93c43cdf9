"""The simulated SSM agents: run what State Manager has made due, as a real agent would.

An association is due on an instance while the instance's last run is older than the association's
trigger (see ``ssm_associations``); schedule ticks of the simulated clock raise that trigger here.
``run_due`` executes everything due right now on Online instances (others stay Pending) and is
what ``POST /_sandbox/agent/run`` calls, so tests decide exactly when agents act; ``AgentLoop``
calls it from a background thread for the interactive sandbox.

Running a Command document processes its steps in order with ``{{ parameter }}`` substitution.
``aws:configurePackage`` installs or uninstalls a Distributor package with the outcome configured
for it: ``success`` (Distributor records the version and the package's effects appear),
``failure`` (non-zero exit, nothing changes) or ``silent`` (exit 0 and Distributor records the
version, but the installer left nothing behind: AWS reports Success, the case detection exists
for). A package whose installer is Windows Installer's fails with 1618 (another installation in
progress) while the machine is still busy after booting, unless its install script's retries
outlast that. ``aws:runPowerShellScript`` whose script carries the detection evaluator's marker
is answered by the sandbox's own evaluator (``detection``, the specification implemented apart from
the controller), given the environment variables an agent of the instance's version would pass;
other scripts succeed without effect.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from fleet_sandbox import admin, detection, scenario, ssm_associations, ssm_documents
from fleet_sandbox.clock import clock
from fleet_sandbox.effects import (
    Effects,
    apply_effects,
    parse_effects,
    parse_machine,
    remove_effects,
)
from fleet_sandbox.extension import ServiceError
from fleet_sandbox.machine import AgentModel, machine_to_json
from fleet_sandbox.periodic import Periodic
from fleet_sandbox.schedule import Cron, ScheduleError, parse_schedule
from fleet_sandbox.state import (
    ManagedInstance,
    attached,
    fleet_state,
    ssm_backend,
)
from fleet_sandbox.workspaces import lifecycle_listener

DETECTION_MARKER = detection.MARKER
INSTALL_IN_PROGRESS = 1618  # ERROR_INSTALL_ALREADY_RUNNING: Windows Installer's mutex is held
OUTCOMES = ("success", "failure", "silent")
_PARAMETER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
_SUMMARY_MAX = 512


@dataclass
class PackageBehaviour:
    """How installing one package goes on the simulated machines."""

    outcome: str = "success"
    instance_outcomes: dict[str, str] = field(default_factory=dict)
    effects: Effects = field(default_factory=Effects)
    windows_installer: bool = False  # the installer runs msiexec (so it can meet exit code 1618)
    busy_retry_seconds: int = 0  # how long the install script retries 1618 before giving up

    def outcome_for(self, instance_id: str) -> str:
        return self.instance_outcomes.get(instance_id, self.outcome)


@dataclass
class StepResult:
    name: str
    action: str
    status: str  # Success | Failed | Skipped
    exit_code: int = 0
    output: str = ""


@dataclass
class RunRecord:
    execution_id: str
    association_id: str
    association_version: int
    instance_id: str
    document: str
    document_version: str
    status: str
    executed: datetime
    summary: str
    steps: list[StepResult]
    association_name: str | None = None
    trigger: int = 0  # which run of the association this was (see ssm_associations.execution_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "executionId": self.execution_id,
            "associationId": self.association_id,
            "associationVersion": self.association_version,
            "associationName": self.association_name,
            "instanceId": self.instance_id,
            "document": self.document,
            "documentVersion": self.document_version,
            "status": self.status,
            "executedAt": self.executed.isoformat(),
            "summary": self.summary,
            "steps": [
                {
                    "name": s.name,
                    "action": s.action,
                    "status": s.status,
                    "exitCode": s.exit_code,
                    "output": s.output,
                }
                for s in self.steps
            ],
        }


@dataclass
class AgentState:
    """Per account and region: package behaviour and the history of every run."""

    packages: dict[str, PackageBehaviour] = field(default_factory=dict)
    history: list[RunRecord] = field(default_factory=list)
    # Windows Installer is busy this long after a machine boots (updates, other installs).
    installer_busy_after_boot: timedelta = timedelta(0)
    lock: threading.RLock = field(default_factory=threading.RLock)


def agent_state(account_id: str, region: str) -> AgentState:
    return attached(ssm_backend(account_id, region), AgentState)


def behaviour(account_id: str, region: str, package: str) -> PackageBehaviour:
    state = agent_state(account_id, region)
    with state.lock:
        return state.packages.setdefault(package, PackageBehaviour())


# --- what is due ---------------------------------------------------------------------------------


def _tick(association: ssm_associations.Association, now: datetime) -> None:
    """Raise the trigger once when the schedule fired since it was last looked at."""
    expression = association.spec.get("ScheduleExpression")
    checked = association.schedule_checked or association.created
    if not expression or now <= checked:
        return
    try:
        schedule = parse_schedule(expression)
    except ScheduleError:
        return
    offset = timedelta(days=int(association.spec.get("ScheduleOffset") or 0))
    anchor = association.schedule_anchor or association.created
    if offset and isinstance(schedule, Cron):
        fired = schedule.fires_between(checked - offset, now - offset, anchor)
    else:
        fired = schedule.fires_between(checked, now, anchor)
    if fired:
        association.request_run()
    association.schedule_checked = now


def run_due(account_id: str, region: str) -> list[RunRecord]:
    """Run every association that is due on an Online instance, now; return what ran."""
    now = clock.now()
    associations = ssm_associations.store(account_id, region)
    fleet = fleet_state(account_id, region)
    records: list[RunRecord] = []
    with associations.lock, fleet.lock:
        for association in list(associations.associations.values()):
            _tick(association, now)
            for instance in ssm_associations.targeted(account_id, region, association.spec):
                if instance.ping_status != "Online":
                    continue
                previous = association.runs.get(instance.instance_id)
                if (previous.trigger if previous else 0) >= association.trigger:
                    continue
                records.append(_run(account_id, region, association, instance, now))
    state = agent_state(account_id, region)
    with state.lock:
        state.history.extend(records)
    return records


def run_due_everywhere() -> list[RunRecord]:
    """``run_due`` for every account and region that has associations (for a background loop)."""
    from moto.ssm.models import ssm_backends

    records: list[RunRecord] = []
    for account_id, regions in list(dict.items(ssm_backends)):
        for region, backend in list(dict.items(regions)):
            if f"_sandbox_{ssm_associations.AssociationStore.__name__}" in backend.__dict__:
                records.extend(run_due(account_id, region))
    return records


class AgentLoop(Periodic):
    """Runs ``run_due_everywhere`` every ``interval`` seconds in a daemon thread."""

    def __init__(self, interval: float = 5.0) -> None:
        super().__init__("sandbox-agents", interval, run_due_everywhere)


# --- running one association on one instance -----------------------------------------------------


@dataclass
class _Context:
    account_id: str
    region: str
    instance: ManagedInstance
    parameters: dict[str, str | list[str]]
    # Parameters the document declares with interpolationType ENV_VAR (passed as SSM_<name>).
    environment: frozenset[str] = frozenset()

    @property
    def agent(self) -> AgentModel:
        return self.instance.agent


def _run(
    account_id: str,
    region: str,
    association: ssm_associations.Association,
    instance: ManagedInstance,
    now: datetime,
) -> RunRecord:
    spec = association.spec
    execution_id = ssm_associations.execution_id(association)  # one per run of the association
    try:
        _, version = ssm_documents.resolve(
            account_id, region, spec["Name"], spec.get("DocumentVersion")
        )
    except ServiceError as error:
        steps = [StepResult("document", "resolve", "Failed", 1, error.message)]
        document_version = str(spec.get("DocumentVersion", "$DEFAULT"))
    else:
        document_version = str(version.number)
        definitions = version.parameter_definitions()
        parameters = resolve_parameters(definitions, spec.get("Parameters") or {})
        environment = frozenset(
            name
            for name, definition in definitions.items()
            if isinstance(definition, dict) and definition.get("interpolationType") == "ENV_VAR"
        )
        context = _Context(account_id, region, instance, parameters, environment)
        steps = execute(context, version.parsed)
    failed = [s for s in steps if s.status == "Failed"]
    status = "Failed" if failed else "Success"
    summary = _summary(steps)
    association.runs[instance.instance_id] = ssm_associations.InstanceRun(
        trigger=association.trigger,
        status=status,
        executed=now,
        association_version=association.current.number,
        document_version=document_version,
        summary=summary,
        error_code=str(failed[0].exit_code)[:10] if failed else "",
        execution_id=execution_id,
    )
    association.last_execution = now
    if status == "Success":
        association.last_success = now
    return RunRecord(
        execution_id=execution_id,
        association_id=association.association_id,
        association_version=association.current.number,
        association_name=spec.get("AssociationName"),
        instance_id=instance.instance_id,
        document=association.document,
        document_version=document_version,
        status=status,
        executed=now,
        summary=summary,
        steps=steps,
        trigger=association.trigger,
    )


def _summary(steps: list[StepResult]) -> str:
    """ExecutionSummary worded like the agent's, with the first failure's reason."""
    total = len(steps)
    skipped = sum(s.status == "Skipped" for s in steps)
    failed = [s for s in steps if s.status == "Failed"]
    text = (
        f"{total - skipped} out of {total} plugin{'s' if total != 1 else ''} processed, "
        f"{total - skipped - len(failed)} success, {len(failed)} failed, 0 timedout, "
        f"{skipped} skipped."
    )
    if failed:
        text += f" The operation {failed[0].action} failed because {failed[0].output}"
    if len(text) > _SUMMARY_MAX:
        text = text[: _SUMMARY_MAX - 3] + "..."
    return text


def resolve_parameters(
    definitions: dict[str, dict[str, Any]], given: dict[str, list[str]]
) -> dict[str, str | list[str]]:
    """Each parameter's value for substitution: given values, else the document's default."""
    resolved: dict[str, str | list[str]] = {}
    for name in set(definitions) | set(given):
        spec = definitions.get(name, {})
        values: Any = given.get(name)
        if values is None:
            values = spec.get("default", "")
        if spec.get("type") == "StringList":
            resolved[name] = [str(v) for v in values] if isinstance(values, list) else [str(values)]
        elif isinstance(values, list):
            resolved[name] = str(values[0]) if values else ""
        else:
            resolved[name] = (
                values
                if isinstance(values, str)
                else str(values).lower()
                if isinstance(values, bool)
                else str(values)
            )
    return resolved


def substitute(value: Any, parameters: dict[str, str | list[str]]) -> Any:
    """``{{ name }}`` replaced in every string; a list item that is only a StringList expands."""
    if isinstance(value, dict):
        return {k: substitute(v, parameters) for k, v in value.items()}
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            whole = _PARAMETER.fullmatch(item.strip()) if isinstance(item, str) else None
            if whole and isinstance(parameters.get(whole.group(1)), list):
                out.extend(parameters[whole.group(1)])
            else:
                out.append(substitute(item, parameters))
        return out
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            found = parameters.get(match.group(1))
            if found is None:
                return match.group(0)
            return "\n".join(found) if isinstance(found, list) else found

        return _PARAMETER.sub(replace, value)
    return value


def execute(context: _Context, document: dict[str, Any]) -> list[StepResult]:
    steps = document.get("mainSteps")
    if not isinstance(steps, list):  # schema 1.2: runtimeConfig plugins
        steps = [
            {"action": action, "name": action, "inputs": _first(config.get("properties"))}
            for action, config in (document.get("runtimeConfig") or {}).items()
        ]
    results: list[StepResult] = []
    stopped = False
    for step in steps:
        name, action = str(step.get("name", "")), str(step.get("action", ""))
        if stopped or not _precondition_holds(step.get("precondition"), context.instance):
            results.append(StepResult(name, action, "Skipped", 0, "Step was skipped."))
            continue
        inputs = substitute(step.get("inputs") or {}, context.parameters)
        result = _step(context, name, action, inputs)
        results.append(result)
        if result.status == "Failed" and step.get("onFailure") == "exit":
            stopped = True
        if result.status == "Success" and step.get("onSuccess") == "exit":
            stopped = True
    return results


def _first(properties: Any) -> dict[str, Any]:
    if isinstance(properties, list):
        return properties[0] if properties and isinstance(properties[0], dict) else {}
    return properties if isinstance(properties, dict) else {}


def _precondition_holds(precondition: Any, instance: ManagedInstance) -> bool:
    if not isinstance(precondition, dict):
        return True
    for operator, operands in precondition.items():
        if operator != "StringEquals" or not isinstance(operands, list) or len(operands) != 2:
            continue
        facts = {"platformType": instance.platform_type}
        left, right = (facts.get(str(o), str(o)) for o in operands)
        if left != right:
            return False
    return True


StepHandler = Callable[["_Context", str, str, dict[str, Any]], StepResult]
"""(context, step name, action, substituted inputs) -> the step's result."""

STEP_HANDLERS: dict[str, StepHandler] = {}


def _step(context: _Context, name: str, action: str, inputs: dict[str, Any]) -> StepResult:
    if action == "aws:configurePackage":
        return _configure_package(context, name, action, inputs)
    if action == "aws:runPowerShellScript":
        commands = inputs.get("runCommand", [])
        script = "\n".join(map(str, commands)) if isinstance(commands, list) else str(commands)
        if DETECTION_MARKER in script:
            return _detection(context, name, action, script)
    handler = STEP_HANDLERS.get(action)  # plugins other modules simulate (scripts, inventory ...)
    if handler is not None:
        return handler(context, name, action, inputs)
    return StepResult(name, action, "Success", 0, "")


def _configure_package(
    context: _Context, name: str, action: str, inputs: dict[str, Any]
) -> StepResult:
    def fail(message: str, code: int = 1) -> StepResult:
        return StepResult(name, action, "Failed", code, message)

    def ok(message: str) -> StepResult:
        return StepResult(name, action, "Success", 0, message)

    package_name = str(inputs.get("name", ""))
    verb = str(inputs.get("action", ""))
    requested = str(inputs.get("version", "") or "")
    if verb not in ("Install", "Uninstall"):
        return fail(f"action must be Install or Uninstall, got {verb!r}")
    package = ssm_documents.find(context.account_id, context.region, package_name)
    if package is None or package.document_type != "Package":
        return fail(
            f"Package {package_name} was not found: there is no Distributor package of that name."
        )
    agent, key = context.agent, package.name
    behaviour_ = behaviour(context.account_id, context.region, key)
    outcome = behaviour_.outcome_for(context.instance.instance_id)
    installed = agent.distributor_packages.get(key)
    if verb == "Install":
        if requested:
            chosen = package.by_version_name(requested)
            if chosen is None:
                return fail(f"Package {key} version {requested} was not found.")
        else:
            chosen = package.version(package.default_version)
        target = chosen.version_name or str(chosen.number)
        if installed == target:
            return ok(f"{key} {target} is already installed.")
        busy_for = _installer_busy(context, behaviour_)
        if busy_for is not None and busy_for > behaviour_.busy_retry_seconds:
            return fail(
                f"Failed to install package; install status Failed: install script for {key}"
                f" {target} exited with code {INSTALL_IN_PROGRESS} (another installation is in"
                f" progress; it retried for {behaviour_.busy_retry_seconds} s).",
            )
        if outcome == "failure":
            return fail(
                f"Failed to install package; install status Failed: install script for {key} {target} exited with code 1."
            )
        if outcome == "success":
            if installed is not None:
                remove_effects(agent, behaviour_.effects)
            apply_effects(agent, behaviour_.effects)
        agent.distributor_packages[key] = target
        return ok(f"Successful installation of {key} {target}.")
    if installed is None or (requested and requested != installed):
        return ok(f"{key} {requested or ''} is not installed.".replace("  ", " "))
    if outcome == "failure":
        return fail(
            f"Failed to uninstall package; uninstall script for {key} {installed} exited with code 1."
        )
    if outcome == "success":
        remove_effects(agent, behaviour_.effects)
    del agent.distributor_packages[key]
    return ok(f"Successfully uninstalled {key} {installed}.")


def _installer_busy(context: _Context, behaviour_: PackageBehaviour) -> int | None:
    """Seconds Windows Installer stays busy from now (None when it is free or not involved)."""
    if not behaviour_.windows_installer:
        return None
    busy = agent_state(context.account_id, context.region).installer_busy_after_boot
    booted = context.agent.booted_at or context.instance.registration_date
    left = (booted + busy - clock.now()).total_seconds()
    return int(left) + 1 if left > 0 else None


def _detection(context: _Context, name: str, action: str, script: str) -> StepResult:
    """The evaluator's step, answered by the sandbox's own implementation of the specification.

    The agent sets ``SSM_<parameter>`` for the parameters the document declares with
    interpolationType ENV_VAR, from version 3.3.2746.0 on; older agents set none."""
    if detection.evaluator_version(script) != detection.SPEC_VERSION:
        return StepResult(
            name,
            action,
            "Failed",
            1,
            f"the sandbox evaluates detection specification v{detection.SPEC_VERSION}; this"
            " document's evaluator declares another version",
        )

    def variable(name: str) -> str | None:
        if name not in context.environment:
            return None
        if not detection.agent_version_ok(context.instance.agent_version):
            return None
        value = context.parameters.get(name, "")
        return "\n".join(value) if isinstance(value, list) else value

    code, output = detection.run(variable("detectionRules"), variable("action"), context.agent)
    return StepResult(name, action, "Success" if code == 0 else "Failed", code, output)


# --- admin API -----------------------------------------------------------------------------------


def _instance(request: admin.AdminRequest, instance_id: str) -> ManagedInstance:
    instance = fleet_state(request.account_id, request.region).instances.get(instance_id)
    if instance is None:
        raise admin.AdminError(404, f"no managed instance {instance_id}")
    return instance


def set_outcome(
    account_id: str, region: str, package: str, outcome: str, instance_ids: list[str] | None = None
) -> None:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    config = behaviour(account_id, region, package)
    if instance_ids:
        for instance_id in instance_ids:
            config.instance_outcomes[instance_id] = outcome
    else:
        config.outcome = outcome


def set_effects(account_id: str, region: str, package: str, effects: Any) -> None:
    try:
        parsed = parse_effects(effects)
    except ValidationError as error:
        raise ValueError(f"effects of {package}: {_pydantic_message(error)}") from None
    behaviour(account_id, region, package).effects = parsed


def _pydantic_message(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_url=False)
    )


@admin.route("POST", "/_sandbox/agent/outcome")
def _post_outcome(request: admin.AdminRequest) -> dict[str, Any]:
    instance_ids = request.field("instanceIds", list, None)
    set_outcome(
        request.account_id,
        request.region,
        request.field("package", str),
        request.field("outcome", str),
        instance_ids,
    )
    return {}


@admin.route("POST", "/_sandbox/agent/effects")
def _post_effects(request: admin.AdminRequest) -> dict[str, Any]:
    set_effects(
        request.account_id,
        request.region,
        request.field("package", str),
        request.field("effects", dict),
    )
    return {}


@admin.route("GET", "/_sandbox/agent/packages")
def _get_packages(request: admin.AdminRequest) -> dict[str, Any]:
    state = agent_state(request.account_id, request.region)
    with state.lock:
        return {
            "packages": {
                name: {
                    "outcome": config.outcome,
                    "instanceOutcomes": dict(config.instance_outcomes),
                    "effects": config.effects.model_dump(by_alias=True, exclude_none=True),
                    "windowsInstaller": config.windows_installer,
                    "busyRetrySeconds": config.busy_retry_seconds,
                }
                for name, config in sorted(state.packages.items())
            }
        }


@admin.route("GET", "/_sandbox/agent/state")
def _get_state(request: admin.AdminRequest) -> dict[str, Any]:
    instance_id = request.query.get("instanceId")
    if not instance_id:
        raise admin.AdminError(400, "missing query parameter 'instanceId'")
    instance = _instance(request, instance_id)
    with fleet_state(request.account_id, request.region).lock:
        return _machine_json(instance)


@admin.route("POST", "/_sandbox/agent/state")
def _post_state(request: admin.AdminRequest) -> dict[str, Any]:
    """Set what is on a machine: ``replace`` clears it first, ``remove`` takes effects away, the
    rest of the body (files, folders, registry, services, msiProducts, scripts, environment,
    windowsInstaller) is added, ``distributorPackages`` sets Distributor's record and
    ``agentVersion`` the SSM Agent's version."""
    instance = _instance(request, request.field("instanceId", str))
    own = ("instanceId", "replace", "remove", "distributorPackages", "agentVersion")
    body = {k: v for k, v in request.body.items() if k not in own}
    packages = request.field("distributorPackages", dict, None)
    agent_version = request.field("agentVersion", str, None)
    if agent_version is not None and not re.fullmatch(r"\d+(\.\d+){1,3}", agent_version):
        raise admin.AdminError(400, f"agentVersion is a dotted version, got {agent_version!r}")
    try:
        adding = parse_machine(body)
        removing = parse_effects(request.field("remove", dict, None))
    except ValidationError as error:
        raise admin.AdminError(400, _pydantic_message(error)) from None
    with fleet_state(request.account_id, request.region).lock:
        if request.field("replace", bool, False):
            instance.agent = AgentModel()
        if agent_version is not None:
            instance.agent_version = agent_version
        remove_effects(instance.agent, removing)
        apply_effects(instance.agent, adding)
        if packages is not None:
            for name, version in packages.items():
                if version is None:
                    instance.agent.distributor_packages.pop(name, None)
                else:
                    instance.agent.distributor_packages[name] = str(version)
        return _machine_json(instance)


def _machine_json(instance: ManagedInstance) -> dict[str, Any]:
    return {
        "instanceId": instance.instance_id,
        "agentVersion": instance.agent_version,
        **machine_to_json(instance.agent),
    }


def set_busy_after_boot(account_id: str, region: str, seconds: int) -> None:
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 <= seconds <= 86400:
        raise ValueError(f"installerBusyAfterBootSeconds is 0 to 86400, got {seconds!r}")
    state = agent_state(account_id, region)
    with state.lock:
        state.installer_busy_after_boot = timedelta(seconds=seconds)


@admin.route("POST", "/_sandbox/agent/settings")
def _post_settings(request: admin.AdminRequest) -> dict[str, Any]:
    """``{"installerBusyAfterBootSeconds": N}``: how long after a boot msiexec meets 1618."""
    set_busy_after_boot(
        request.account_id, request.region, request.field("installerBusyAfterBootSeconds", int)
    )
    return {}


@lifecycle_listener
def _note_boot(account_id: str, region: str, workspace_id: str, event: str) -> None:
    """A WorkSpace that starts or reboots boots its machine again (and Windows Installer is busy)."""
    if event not in ("started", "rebooted"):
        return
    fleet = fleet_state(account_id, region)
    with fleet.lock:
        for instance in fleet.instances.values():
            if instance.workspace_id == workspace_id:
                instance.agent.booted_at = clock.now()


@admin.route("POST", "/_sandbox/agent/run")
def _post_run(request: admin.AdminRequest) -> dict[str, Any]:
    return {"runs": [record.to_json() for record in run_due(request.account_id, request.region)]}


@admin.route("GET", "/_sandbox/agent/runs")
def _get_runs(request: admin.AdminRequest) -> dict[str, Any]:
    state = agent_state(request.account_id, request.region)
    wanted_association = request.query.get("associationId")
    wanted_instance = request.query.get("instanceId")
    with state.lock:
        records = [
            r
            for r in state.history
            if (not wanted_association or r.association_id == wanted_association)
            and (not wanted_instance or r.instance_id == wanted_instance)
        ]
    counts: dict[str, int] = {}
    for record in records:
        counts[record.association_id] = counts.get(record.association_id, 0) + 1
    return {"runs": [r.to_json() for r in records], "counts": counts}


@scenario.section("packages")
def _scenario_packages(section: Any, account_id: str, region: str) -> None:
    """``packages: {name: {outcome: silent, instanceOutcomes: {mi-..: failure}, effects: {...},
    windowsInstaller: true, busyRetrySeconds: 300}}``."""
    if not isinstance(section, dict):
        raise ValueError("'packages' maps package names to {outcome, instanceOutcomes, effects}")
    for name, config in section.items():
        if not isinstance(config, dict):
            raise ValueError(f"package {name}: expected a mapping")
        fields = {"outcome", "instanceOutcomes", "effects", "windowsInstaller", "busyRetrySeconds"}
        unknown = set(config) - fields
        if unknown:
            raise ValueError(f"package {name}: unknown field(s) {', '.join(sorted(unknown))}")
        if "effects" in config:
            set_effects(account_id, region, name, config["effects"])
        if "outcome" in config:
            set_outcome(account_id, region, name, str(config["outcome"]))
        for instance_id, outcome in (config.get("instanceOutcomes") or {}).items():
            set_outcome(account_id, region, name, str(outcome), [instance_id])
        if "windowsInstaller" in config or "busyRetrySeconds" in config:
            current = behaviour(account_id, region, name)
            set_installer(
                account_id,
                region,
                name,
                config.get("windowsInstaller", current.windows_installer),
                config.get("busyRetrySeconds", current.busy_retry_seconds),
            )


def set_installer(
    account_id: str, region: str, package: str, windows_installer: Any, busy_retry_seconds: Any
) -> None:
    """Whether a package's installer is msiexec, and how long its script retries 1618."""
    if not isinstance(windows_installer, bool):
        raise ValueError(f"package {package}: windowsInstaller is true or false")
    if type(busy_retry_seconds) is not int or not 0 <= busy_retry_seconds <= 3600:
        raise ValueError(f"package {package}: busyRetrySeconds is 0 to 3600")
    config = behaviour(account_id, region, package)
    config.windows_installer, config.busy_retry_seconds = windows_installer, busy_retry_seconds


@scenario.section("agents")
def _scenario_agents(section: Any, account_id: str, region: str) -> None:
    """``agents: {installerBusyAfterBootSeconds: 120}``."""
    if not isinstance(section, dict) or set(section) - {"installerBusyAfterBootSeconds"}:
        raise ValueError("'agents' takes {installerBusyAfterBootSeconds: seconds}")
    if "installerBusyAfterBootSeconds" in section:
        set_busy_after_boot(account_id, region, section["installerBusyAfterBootSeconds"])
