"""Run Command: SendCommand, ListCommands, ListCommandInvocations, GetCommandInvocation, CancelCommand.

moto's SendCommand accepts any document and answers a placeholder Success with TargetCount 0.
Here a command is validated like AWS validates it (the document exists and is a Command document,
its parameters fit the schema, instances exist), expands its targets (IDs, ``tag:``, ``tag-key``,
``InstanceIds *``) into one invocation per managed instance, and the simulated agents execute the
document's steps against their machines (``agent.execute``: scripts, packages, inventory, patches).

Execution is in waves, as the concurrency controls make it on AWS: each agent tick
(``POST /_sandbox/commands/run``, or the interactive sandbox's clockwork) finishes the invocations
that are In Progress, then sends the command to at most MaxConcurrency more Online instances. So a
client sees Pending -> In Progress -> a terminal status. Statuses follow the SSM model's own
definitions (botocore's StatusDetails documentation):
- an invocation whose instance is not Online is Delayed and retried on the next tick; one not sent
  before the command expires (TimeoutSeconds, default 3600 s, sandbox clock) is Delivery Timed Out;
- once more invocations failed than MaxErrors allows, the ones not yet sent are Terminated;
- the command is Success when every invocation succeeded, Failed when failures exceeded
  MaxErrors, Delivery Timed Out when as many timed out, Incomplete otherwise (Status Failed: the
  model has no Incomplete status, a sandbox decision), Cancelled after CancelCommand.
"""

from __future__ import annotations

import math
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet_sandbox import admin, agent, plugins, ssm_associations, ssm_documents
from fleet_sandbox.agent import StepResult
from fleet_sandbox.clock import clock
from fleet_sandbox.extension import Call, ServiceError, operation
from fleet_sandbox.periodic import Periodic
from fleet_sandbox.state import ManagedInstance, attached, fleet_state, ssm_backend

DEFAULT_TIMEOUT_SECONDS = 3600
DEFAULT_MAX_CONCURRENCY = "50"
DEFAULT_MAX_ERRORS = "0"
OUTPUT_LIMIT = 2500  # CommandPlugin.Output: "the first 2,500 characters"
CONTENT_LIMIT = 24000  # GetCommandInvocation StandardOutputContent: "up to 24,000 characters"
TERMINAL = {"Success", "Failed", "Cancelled", "TimedOut"}


@dataclass
class Invocation:
    instance_id: str
    instance_name: str
    status: str = "Pending"
    details: str = "Pending"
    steps: list[StepResult] = field(default_factory=list)
    plugin_names: list[str] = field(default_factory=list)
    started: datetime | None = None
    finished: datetime | None = None

    @property
    def response_code(self) -> int:
        if self.finished is None:
            return -1
        failed = [s for s in self.steps if s.status == "Failed"]
        return failed[0].exit_code if failed else 0


@dataclass
class Command:
    command_id: str
    document_name: str
    document_version: str
    document: dict[str, Any]
    parameters: dict[str, list[str]]
    resolved: dict[str, str | list[str]]
    request: dict[str, Any]
    requested: datetime
    timeout: timedelta
    max_concurrency: int
    max_errors: int
    invocations: dict[str, Invocation]
    status: str = "Pending"
    details: str = "Pending"

    @property
    def expires(self) -> datetime:
        return self.requested + self.timeout + timedelta(seconds=DEFAULT_TIMEOUT_SECONDS)


@dataclass
class CommandStore:
    commands: dict[str, Command] = field(default_factory=dict)  # in the order they were sent
    lock: threading.RLock = field(default_factory=threading.RLock)


def store(account_id: str, region: str) -> CommandStore:
    return attached(ssm_backend(account_id, region), CommandStore)


# --- SendCommand ---------------------------------------------------------------------------------


def _limit(text: str, targets: int, is_errors: bool) -> int:
    """MaxConcurrency / MaxErrors as a count of instances (a percentage of the target count)."""
    if text.endswith("%"):
        share = int(text[:-1]) * targets / 100
        return math.floor(share) if is_errors else max(1, math.ceil(share))
    return int(text)


def _validation(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


def _targets(call: Call, instances: dict[str, ManagedInstance]) -> list[ManagedInstance]:
    params = call.params
    ids, targets = params.get("InstanceIds"), params.get("Targets")
    if ids and targets:
        raise _validation("Specify either InstanceIds or Targets, not both.")
    if not ids and not targets:
        raise _validation("Specify the instances to run the command on: InstanceIds or Targets.")
    if ids:
        if len(set(ids)) != len(ids):
            raise ServiceError("DuplicateInstanceId", "An instance ID is listed more than once.")
        unknown = [i for i in ids if i not in instances]
        if unknown:
            raise ServiceError(
                "InvalidInstanceId",
                f"Instances [[{', '.join(unknown)}]] not in a valid state for account "
                f"{call.account_id}",
            )
        return [instances[i] for i in ids]
    for target in targets or []:
        key = str(target.get("Key", ""))
        if not (key.lower() == "instanceids" or key.startswith("tag:") or key == "tag-key"):
            raise _validation(f"Target key {key} is not supported by the sandbox.")
    return ssm_associations.targeted(call.account_id, call.region, {"Targets": targets})


def _check_platforms(
    document: dict[str, Any], document_type: str, chosen: list[ManagedInstance]
) -> None:
    """UnsupportedPlatformType when a named instance's platform is not one the document runs on."""
    platforms = set(ssm_documents.platform_types(document_type, document))
    wrong = [i.instance_id for i in chosen if i.platform_type not in platforms]
    if wrong:
        raise ServiceError(
            "UnsupportedPlatformType",
            f"The document runs on {', '.join(sorted(platforms))}; {wrong[0]} is not one of them.",
        )


@operation("ssm", "SendCommand")
def send_command(call: Call) -> dict[str, Any]:
    params = call.params
    document = ssm_documents.find(call.account_id, call.region, params["DocumentName"])
    if document is None:
        raise ServiceError("InvalidDocument", f"Document {params['DocumentName']} does not exist.")
    if document.document_type != "Command":
        raise ServiceError(
            "InvalidDocument",
            f"{document.name} is a {document.document_type} document; Run Command runs Command "
            "documents.",
        )
    try:
        version = ssm_documents.select_version(document, params.get("DocumentVersion"))
    except ServiceError:
        raise ServiceError(
            "InvalidDocumentVersion",
            f"Document version {params.get('DocumentVersion')} of {document.name} does not exist.",
        ) from None
    given = params.get("Parameters") or {}
    definitions = version.parameter_definitions()
    ssm_associations.check_parameters(definitions, given)
    fleet = fleet_state(call.account_id, call.region)
    with fleet.lock:
        chosen = _targets(call, dict(fleet.instances))
    if params.get("InstanceIds"):
        _check_platforms(version.parsed, document.document_type, chosen)
    now = clock.now()
    concurrency = params.get("MaxConcurrency") or DEFAULT_MAX_CONCURRENCY
    errors = params.get("MaxErrors") or DEFAULT_MAX_ERRORS
    command = Command(
        command_id=str(uuid.uuid4()),
        document_name=document.name,
        document_version=str(version.number),
        document=version.parsed,
        parameters=given,
        resolved=agent.resolve_parameters(definitions, given),
        request=params,
        requested=now,
        timeout=timedelta(seconds=params.get("TimeoutSeconds") or DEFAULT_TIMEOUT_SECONDS),
        max_concurrency=_limit(concurrency, len(chosen), is_errors=False),
        max_errors=_limit(errors, len(chosen), is_errors=True),
        invocations={
            i.instance_id: Invocation(
                i.instance_id, i.computer_name, plugin_names=_plugins(version.parsed)
            )
            for i in chosen
        },
    )
    if not chosen:
        command.status, command.details = "Success", "Success"
    commands = store(call.account_id, call.region)
    with commands.lock:
        commands.commands[command.command_id] = command
    return {"Command": describe(command)}


def _plugins(document: dict[str, Any]) -> list[str]:
    steps = document.get("mainSteps")
    if isinstance(steps, list):
        return [str(s.get("name", "")) for s in steps if isinstance(s, dict)]
    return [str(action) for action in (document.get("runtimeConfig") or {})]


# --- the agents' side ----------------------------------------------------------------------------


def run_commands(account_id: str, region: str) -> int:
    """One tick of every agent: finish what is In Progress, send the next wave. Returns how many
    invocations changed state."""
    commands = store(account_id, region)
    fleet = fleet_state(account_id, region)
    changed = 0
    now = clock.now()
    with commands.lock, fleet.lock:
        for command in commands.commands.values():
            if command.status in TERMINAL:
                continue
            changed += _tick(account_id, region, command, fleet.instances, now)
            _settle(command)
    return changed


def _tick(
    account_id: str,
    region: str,
    command: Command,
    instances: dict[str, ManagedInstance],
    now: datetime,
) -> int:
    changed = 0
    for invocation in command.invocations.values():
        if invocation.status != "InProgress":
            continue
        instance = instances.get(invocation.instance_id)
        if instance is None or instance.ping_status != "Online":
            continue  # the agent is away: it finishes when it comes back, or the command expires
        _execute(account_id, region, command, invocation, instance, now)
        changed += 1
    waiting = [i for i in command.invocations.values() if i.status in ("Pending", "Delayed")]
    if now > command.expires:
        for invocation in waiting:
            invocation.status, invocation.details = "TimedOut", "Delivery Timed Out"
            invocation.finished = now
        return changed + len(waiting)
    if _failures(command) > command.max_errors:
        for invocation in waiting:
            invocation.status, invocation.details = "Cancelled", "Terminated"
            invocation.finished = now
        return changed + len(waiting)
    running = sum(1 for i in command.invocations.values() if i.status == "InProgress")
    for invocation in waiting:
        if running >= command.max_concurrency:
            break
        instance = instances.get(invocation.instance_id)
        if instance is None:
            invocation.status, invocation.details = "Failed", "Undeliverable"
            invocation.finished = now
        elif instance.ping_status != "Online":
            invocation.status, invocation.details = "Delayed", "Delayed"
            continue
        else:
            invocation.status, invocation.details = "InProgress", "InProgress"
            invocation.started = now
            running += 1
        changed += 1
    return changed


def _execute(
    account_id: str,
    region: str,
    command: Command,
    invocation: Invocation,
    instance: ManagedInstance,
    now: datetime,
) -> None:
    token = plugins.current_execution.set(command.command_id)
    try:
        context = agent._Context(account_id, region, instance, dict(command.resolved))
        invocation.steps = agent.execute(context, command.document)
    finally:
        plugins.current_execution.reset(token)
    failed = any(s.status == "Failed" for s in invocation.steps)
    invocation.status = invocation.details = "Failed" if failed else "Success"
    invocation.finished = now


def _failures(command: Command) -> int:
    return sum(
        1 for i in command.invocations.values() if i.details in ("Failed", "Execution Timed Out")
    )


def _settle(command: Command) -> None:
    """The command's own status from its invocations' (see the module docstring)."""
    invocations = list(command.invocations.values())
    counted = [i for i in invocations if i.details != "Undeliverable"]
    if any(i.status not in TERMINAL for i in invocations):
        started = any(i.status != "Pending" for i in invocations)
        command.status, command.details = (
            ("InProgress", "In Progress")
            if started
            else (
                "Pending",
                "Pending",
            )
        )
        return
    if command.status == "Cancelled":
        return
    timed_out = sum(1 for i in counted if i.details == "Delivery Timed Out")
    if all(i.status == "Success" for i in counted):
        command.status, command.details = "Success", "Success"
    elif _failures(command) > command.max_errors:
        command.status, command.details = "Failed", "Failed"
    elif timed_out and timed_out > command.max_errors:
        command.status, command.details = "TimedOut", "Delivery Timed Out"
    else:
        command.status, command.details = "Failed", "Incomplete"


class CommandLoop(Periodic):
    """Runs every region's commands every ``interval`` seconds (the interactive sandbox)."""

    def __init__(self, interval: float) -> None:
        super().__init__("sandbox-commands", interval, run_everywhere)


def run_everywhere() -> int:
    from moto.ssm.models import ssm_backends

    changed = 0
    for account_id, regions in list(dict.items(ssm_backends)):
        for region, backend in list(dict.items(regions)):
            if f"_sandbox_{CommandStore.__name__}" in backend.__dict__:
                changed += run_commands(account_id, region)
    return changed


# --- reading commands ----------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def describe(command: Command) -> dict[str, Any]:
    request = command.request
    invocations = list(command.invocations.values())
    item: dict[str, Any] = {
        "CommandId": command.command_id,
        "DocumentName": command.document_name,
        "DocumentVersion": command.document_version,
        "Comment": request.get("Comment", ""),
        "ExpiresAfter": command.expires,
        "Parameters": command.parameters,
        "InstanceIds": list(request.get("InstanceIds") or []),
        "Targets": list(request.get("Targets") or []),
        "RequestedDateTime": command.requested,
        "Status": command.status,
        "StatusDetails": command.details,
        "MaxConcurrency": request.get("MaxConcurrency") or DEFAULT_MAX_CONCURRENCY,
        "MaxErrors": request.get("MaxErrors") or DEFAULT_MAX_ERRORS,
        "TargetCount": len(invocations),
        "CompletedCount": sum(1 for i in invocations if i.status in TERMINAL),
        "ErrorCount": _failures(command),
        "DeliveryTimedOutCount": sum(1 for i in invocations if i.details == "Delivery Timed Out"),
        "TimeoutSeconds": int(command.timeout.total_seconds()),
    }
    for key in (
        "OutputS3Region",
        "OutputS3BucketName",
        "OutputS3KeyPrefix",
        "NotificationConfig",
        "CloudWatchOutputConfig",
        "AlarmConfiguration",
    ):
        if request.get(key) is not None:
            item[key] = request[key]
    if request.get("ServiceRoleArn"):
        item["ServiceRole"] = request["ServiceRoleArn"]
    return item


def _command(call: Call, command_id: str) -> Command:
    found = store(call.account_id, call.region).commands.get(command_id)
    if found is None:
        raise ServiceError("InvalidCommandId", f"The command ID {command_id} isn't valid.")
    return found


_FILTER_KEYS = {"InvokedAfter", "InvokedBefore", "Status", "ExecutionStage", "DocumentName"}


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError("InvalidFilterKey", f"{text} is not an ISO 8601 time.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _passes(command: Command, status: str, filters: list[dict[str, Any]]) -> bool:
    for item in filters:
        key, value = item["key"], item["value"]
        if key not in _FILTER_KEYS:
            raise ServiceError("InvalidFilterKey", f"The filter key {key} isn't valid.")
        if key == "InvokedAfter" and not command.requested >= _moment(value):
            return False
        if key == "InvokedBefore" and not command.requested <= _moment(value):
            return False
        if key == "Status" and status != value:
            return False
        if key == "DocumentName" and command.document_name != value:
            return False
        if key == "ExecutionStage":
            if value not in ("Executing", "Complete"):
                raise ServiceError("InvalidFilterKey", "ExecutionStage is Executing or Complete.")
            complete = status in TERMINAL
            if (value == "Complete") != complete:
                return False
    return True


def _check_instance(call: Call) -> str | None:
    instance_id = call.params.get("InstanceId")
    if instance_id and not instance_id.startswith(("mi-", "i-")):
        raise ServiceError("InvalidInstanceId", f"Instance Id {instance_id} is not valid.")
    return instance_id


@operation("ssm", "ListCommands")
def list_commands(call: Call) -> dict[str, Any]:
    params = call.params
    instance_id = _check_instance(call)
    commands = store(call.account_id, call.region)
    with commands.lock:
        chosen = (
            [_command(call, params["CommandId"])]
            if params.get("CommandId")
            else list(reversed(commands.commands.values()))  # newest first
        )
        rows = [
            describe(c)
            for c in chosen
            if (instance_id is None or instance_id in c.invocations)
            and _passes(c, c.status, params.get("Filters") or [])
        ]
    page, token = ssm_documents.paginate(
        rows, params.get("MaxResults"), params.get("NextToken"), default=50
    )
    result: dict[str, Any] = {"Commands": page}
    if token:
        result["NextToken"] = token
    return result


def _invocation_row(command: Command, invocation: Invocation, details: bool) -> dict[str, Any]:
    request = command.request
    row: dict[str, Any] = {
        "CommandId": command.command_id,
        "InstanceId": invocation.instance_id,
        "InstanceName": invocation.instance_name,
        "Comment": request.get("Comment", ""),
        "DocumentName": command.document_name,
        "DocumentVersion": command.document_version,
        "RequestedDateTime": command.requested,
        "Status": invocation.status,
        "StatusDetails": invocation.details,
        "TraceOutput": "",
        "StandardOutputUrl": "",
        "StandardErrorUrl": "",
        "CommandPlugins": [],
    }
    if request.get("ServiceRoleArn"):
        row["ServiceRole"] = request["ServiceRoleArn"]
    if details:
        row["CommandPlugins"] = [
            _plugin(command, invocation, name) for name in invocation.plugin_names
        ]
    return row


def _step_of(invocation: Invocation, name: str) -> StepResult | None:
    return next((s for s in invocation.steps if s.name == name), None)


def _plugin(command: Command, invocation: Invocation, name: str) -> dict[str, Any]:
    step = _step_of(invocation, name)
    plugin: dict[str, Any] = {"Name": name, "StandardOutputUrl": "", "StandardErrorUrl": ""}
    if step is None:
        pending = invocation.status if invocation.status not in ("Success", "Failed") else "Pending"
        plugin.update({"Status": pending, "StatusDetails": invocation.details, "ResponseCode": -1})
        return plugin
    status = {"Skipped": "Success"}.get(step.status, step.status)
    plugin.update(
        {
            "Status": status,
            "StatusDetails": status,
            "ResponseCode": step.exit_code,
            "ResponseStartDateTime": invocation.started or invocation.finished,
            "ResponseFinishDateTime": invocation.finished,
            "Output": step.output[:OUTPUT_LIMIT],
        }
    )
    for key in ("OutputS3Region", "OutputS3BucketName", "OutputS3KeyPrefix"):
        if command.request.get(key):
            plugin[key] = command.request[key]
    return plugin


@operation("ssm", "ListCommandInvocations")
def list_command_invocations(call: Call) -> dict[str, Any]:
    params = call.params
    instance_id = _check_instance(call)
    commands = store(call.account_id, call.region)
    with commands.lock:
        chosen = (
            [_command(call, params["CommandId"])]
            if params.get("CommandId")
            else list(reversed(commands.commands.values()))
        )
        rows = [
            _invocation_row(c, invocation, bool(params.get("Details")))
            for c in chosen
            for invocation in c.invocations.values()
            if (instance_id is None or invocation.instance_id == instance_id)
            and _passes(c, invocation.status, params.get("Filters") or [])
        ]
    page, token = ssm_documents.paginate(
        rows, params.get("MaxResults"), params.get("NextToken"), default=50
    )
    result: dict[str, Any] = {"CommandInvocations": page}
    if token:
        result["NextToken"] = token
    return result


@operation("ssm", "GetCommandInvocation")
def get_command_invocation(call: Call) -> dict[str, Any]:
    params = call.params
    with store(call.account_id, call.region).lock:
        command = _command(call, params["CommandId"])
        invocation = command.invocations.get(params["InstanceId"])
        if invocation is None:
            raise ServiceError(
                "InvocationDoesNotExist",
                f"The command {command.command_id} was not sent to {params['InstanceId']}.",
            )
        name = params.get("PluginName")
        if name is None:
            if len(invocation.plugin_names) != 1:
                raise ServiceError(
                    "InvalidPluginName",
                    "The document has more than one step: name the step with PluginName.",
                )
            name = invocation.plugin_names[0]
        elif name not in invocation.plugin_names:
            raise ServiceError("InvalidPluginName", f"The document has no step named {name}.")
        step = _step_of(invocation, name)
        result: dict[str, Any] = {
            "CommandId": command.command_id,
            "InstanceId": invocation.instance_id,
            "Comment": command.request.get("Comment", ""),
            "DocumentName": command.document_name,
            "DocumentVersion": command.document_version,
            "PluginName": name,
            "ResponseCode": -1 if step is None else step.exit_code,
            "Status": invocation.status if step is None else _plugin_status(step),
            "StatusDetails": invocation.details if step is None else _plugin_status(step),
            "StandardOutputContent": "",
            "StandardOutputUrl": "",
            "StandardErrorContent": "",
            "StandardErrorUrl": "",
            "ExecutionStartDateTime": "",
            "ExecutionElapsedTime": "",
            "ExecutionEndDateTime": "",
            "CloudWatchOutputConfig": command.request.get("CloudWatchOutputConfig")
            or {"CloudWatchOutputEnabled": False},
        }
        if step is not None and invocation.finished is not None:
            start = invocation.started or invocation.finished
            failed = step.status == "Failed"
            result.update(
                {
                    "StandardOutputContent": "" if failed else step.output[:CONTENT_LIMIT],
                    "StandardErrorContent": step.output[:CONTENT_LIMIT] if failed else "",
                    "ExecutionStartDateTime": _iso(start),
                    "ExecutionEndDateTime": _iso(invocation.finished),
                    "ExecutionElapsedTime": _elapsed(invocation.finished - start),
                }
            )
    return result


def _plugin_status(step: StepResult) -> str:
    return {"Skipped": "Success"}.get(step.status, step.status)


def _elapsed(duration: timedelta) -> str:
    """ISO 8601 duration, as ExecutionElapsedTime is given (PT0.5S)."""
    return f"PT{duration.total_seconds():.3f}S"


@operation("ssm", "CancelCommand")
def cancel_command(call: Call) -> dict[str, Any]:
    params = call.params
    commands = store(call.account_id, call.region)
    with commands.lock:
        command = _command(call, params["CommandId"])
        wanted = params.get("InstanceIds") or list(command.invocations)
        if len(set(wanted)) != len(wanted):
            raise ServiceError("DuplicateInstanceId", "An instance ID is listed more than once.")
        unknown = [i for i in wanted if i not in command.invocations]
        if unknown:
            raise ServiceError("InvalidInstanceId", f"Instance Id {unknown[0]} is not valid.")
        now = clock.now()
        for instance_id in wanted:
            invocation = command.invocations[instance_id]
            if invocation.status not in TERMINAL:
                invocation.status, invocation.details = "Cancelled", "Cancelled"
                invocation.finished = now
        if all(i.status in TERMINAL for i in command.invocations.values()):
            command.status, command.details = "Cancelled", "Cancelled"
        else:
            _settle(command)
    return {}


@admin.route("POST", "/_sandbox/commands/run")
def _run(request: admin.AdminRequest) -> dict[str, Any]:
    """Every agent takes one tick of Run Command work; ``rounds`` ticks in a row (default 1)."""
    rounds = request.field("rounds", int, 1)
    if not 1 <= rounds <= 1000:
        raise admin.AdminError(400, "'rounds' is 1 to 1000")
    changed = sum(run_commands(request.account_id, request.region) for _ in range(rounds))
    return {"changed": changed}
