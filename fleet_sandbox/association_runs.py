"""What an association's runs look like from outside: executions, their targets, and the
association fields of DescribeInstanceInformation.

An execution is one run of an association (creation, an update, a schedule tick, a new default
document version, StartAssociationsOnce): one ExecutionId shared by every target that ran it
(``ssm_associations.execution_id``). Its status is Pending until a target ran it, InProgress while
some targets are still due, then Failed if any target failed, else Success; ResourceCountByStatus
is AWS's ``{Success=2, Failed=1}`` text. An instance's AssociationStatus is Failed when any of its
associations failed there, Pending when any is still due, Success otherwise (absent without
associations); that field is also what DescribeInstanceInformation's AssociationStatus filter
matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fleet_sandbox import agent, ssm_associations, ssm_documents
from fleet_sandbox.extension import Call, ServiceError, operation
from fleet_sandbox.ssm_instances import information_fields
from fleet_sandbox.state import ManagedInstance


@dataclass
class _Target:
    instance_id: str
    status: str
    executed: datetime | None
    version: int


@dataclass
class _Execution:
    execution_id: str
    association_id: str
    version: int
    created: datetime
    targets: list[_Target] = field(default_factory=list)

    @property
    def status(self) -> str:
        statuses = {t.status for t in self.targets}
        if "Pending" in statuses:
            return "InProgress" if statuses - {"Pending"} else "Pending"
        return "Failed" if "Failed" in statuses else "Success"

    @property
    def last(self) -> datetime | None:
        times = [t.executed for t in self.targets if t.executed is not None]
        return max(times) if times else None

    def counts(self) -> str:
        tally: dict[str, int] = {}
        for target in self.targets:
            tally[target.status] = tally.get(target.status, 0) + 1
        return "{" + ", ".join(f"{k}={v}" for k, v in sorted(tally.items())) + "}"


def executions(account_id: str, region: str, association_id: str) -> list[_Execution]:
    """The association's executions, newest first."""
    association = ssm_associations.get(account_id, region, association_id)
    state = agent.agent_state(account_id, region)
    with state.lock:
        records = [r for r in state.history if r.association_id == association_id]
    found: dict[str, _Execution] = {}
    for record in records:
        execution = found.setdefault(
            record.execution_id,
            _Execution(
                record.execution_id, association_id, record.association_version, record.executed
            ),
        )
        requested = association.triggered.get(record.trigger, record.executed)
        execution.created = min(execution.created, requested)
        execution.targets.append(
            _Target(record.instance_id, record.status, record.executed, record.association_version)
        )
    if association.trigger > 0:
        current = ssm_associations.execution_id(association)
        execution = found.setdefault(
            current,
            _Execution(
                current,
                association_id,
                association.current.number,
                association.triggered.get(association.trigger, association.current.created),
            ),
        )
        ran = {t.instance_id for t in execution.targets}
        for instance in ssm_associations.targeted(account_id, region, association.spec):
            if instance.instance_id not in ran:
                execution.targets.append(
                    _Target(instance.instance_id, "Pending", None, association.current.number)
                )
    return sorted(found.values(), key=lambda e: e.created, reverse=True)


def _time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(
            "ValidationException", f"CreatedTime needs an ISO 8601 time: {value}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _passes(execution: _Execution, filters: list[dict[str, Any]]) -> bool:
    for item in filters:
        key, value, kind = item["Key"], item["Value"], item["Type"]
        if key == "CreatedTime":
            moment = _time(value)
            ok = {
                "EQUAL": execution.created == moment,
                "LESS_THAN": execution.created < moment,
                "GREATER_THAN": execution.created > moment,
            }[kind]
        else:
            actual = execution.execution_id if key == "ExecutionId" else execution.status
            if kind != "EQUAL":
                raise ServiceError(
                    "ValidationException", f"The {key} filter only compares with EQUAL."
                )
            ok = actual == value
        if not ok:
            return False
    return True


@operation("ssm", "DescribeAssociationExecutions")
def describe_association_executions(call: Call) -> dict[str, Any]:
    params = call.params
    rows = []
    for execution in executions(call.account_id, call.region, params["AssociationId"]):
        if not _passes(execution, params.get("Filters") or []):
            continue
        row: dict[str, Any] = {
            "AssociationId": execution.association_id,
            "AssociationVersion": str(execution.version),
            "ExecutionId": execution.execution_id,
            "Status": execution.status,
            "DetailedStatus": execution.status,
            "CreatedTime": execution.created,
            "ResourceCountByStatus": execution.counts(),
        }
        if execution.last is not None:
            row["LastExecutionDate"] = execution.last
        rows.append(row)
    page, token = ssm_documents.paginate(
        rows, params.get("MaxResults"), params.get("NextToken"), default=50
    )
    result: dict[str, Any] = {"AssociationExecutions": page}
    if token:
        result["NextToken"] = token
    return result


@operation("ssm", "DescribeAssociationExecutionTargets")
def describe_association_execution_targets(call: Call) -> dict[str, Any]:
    params = call.params
    found = {
        e.execution_id: e for e in executions(call.account_id, call.region, params["AssociationId"])
    }
    execution = found.get(params["ExecutionId"])
    if execution is None:
        raise ServiceError(
            "AssociationExecutionDoesNotExist",
            f"The execution {params['ExecutionId']} of this association does not exist.",
        )
    rows = []
    for target in sorted(execution.targets, key=lambda t: t.instance_id):
        fields = {"Status": target.status, "ResourceId": target.instance_id}
        fields["ResourceType"] = "ManagedInstance"
        if any(fields[f["Key"]] != f["Value"] for f in params.get("Filters") or []):
            continue
        row: dict[str, Any] = {
            "AssociationId": execution.association_id,
            "AssociationVersion": str(target.version),
            "ExecutionId": execution.execution_id,
            "ResourceId": target.instance_id,
            "ResourceType": "ManagedInstance",
            "Status": target.status,
            "DetailedStatus": target.status,
        }
        if target.executed is not None:
            row["LastExecutionDate"] = target.executed
            row["OutputSource"] = {
                "OutputSourceId": execution.execution_id,
                "OutputSourceType": "RunCommand",
            }
        rows.append(row)
    page, token = ssm_documents.paginate(
        rows, params.get("MaxResults"), params.get("NextToken"), default=50
    )
    result: dict[str, Any] = {"AssociationExecutionTargets": page}
    if token:
        result["NextToken"] = token
    return result


@information_fields
def _association_fields(
    account_id: str, region: str, instance: ManagedInstance, memo: dict[str, Any]
) -> dict[str, Any]:
    associations = memo.get("associations")
    if associations is None:
        associations = memo["associations"] = list(
            ssm_associations.all_associations(account_id, region)
        )
    statuses: dict[str, int] = {}
    last: datetime | None = None
    last_success: datetime | None = None
    for association in associations:
        if not ssm_associations.targets(association.spec, instance):
            continue
        status, run = ssm_associations.instance_status(association, instance.instance_id)
        statuses[status] = statuses.get(status, 0) + 1
        if run is not None:
            last = max(last, run.executed) if last else run.executed
            if run.status == "Success":
                last_success = max(last_success, run.executed) if last_success else run.executed
    if not statuses:
        return {}
    overall = (
        "Failed" if "Failed" in statuses else "Pending" if "Pending" in statuses else "Success"
    )
    return {
        "AssociationStatus": overall,
        "LastAssociationExecutionDate": last,
        "LastSuccessfulAssociationExecutionDate": last_success,
        "AssociationOverview": {
            "DetailedStatus": overall,
            "InstanceAssociationStatusAggregatedCount": statuses,
        },
    }
