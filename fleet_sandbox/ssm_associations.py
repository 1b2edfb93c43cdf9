"""State Manager associations and their compliance, which moto does not have at all.

An association is a list of versions (each the request fields that defined it) plus what the
simulated agents reported per instance. UpdateAssociation follows the API reference literally:
every optional field the request omits becomes null in the new version (Name is kept, since an
association cannot exist without its document). Whether an association must run again is a
counter: creating, updating (unless ApplyOnlyAtCronInterval), a new default document version and
schedule ticks raise ``trigger``; an instance is due while the run it last made is older. The
agent (``agent.py``) runs what is due and writes ``InstanceRun`` records here; the Overview,
DescribeInstanceAssociationsStatus and compliance are all computed from those records.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.core.resource_tagging import TaggedResource
from moto.ssm.models import SimpleSystemManagerBackend

from fleet_sandbox import ssm_documents
from fleet_sandbox.clock import clock
from fleet_sandbox.extension import Call, ServiceError, operation
from fleet_sandbox.schedule import At, Cron, ScheduleError, association_schedule
from fleet_sandbox.shapes import operation_model
from fleet_sandbox.ssm_tags import check_tag_keys, tag_target
from fleet_sandbox.state import ManagedInstance, attached, fleet_state, ssm_backend
from fleet_sandbox.tagging import resource_source

MAX_ASSOCIATION_VERSIONS = 1000
ASSOCIATION_DOCUMENT_TYPES = ("Command", "Automation", "Policy")
_SUPPORTED_TARGET_KEYS = ("InstanceIds", "tag:<key>", "tag-key")
_SEVERITY_ORDER = ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED"]
_SEVERITY_FIELD = {
    "CRITICAL": "CriticalCount",
    "HIGH": "HighCount",
    "MEDIUM": "MediumCount",
    "LOW": "LowCount",
    "INFORMATIONAL": "InformationalCount",
    "UNSPECIFIED": "UnspecifiedCount",
}


def _members(operation: str, *path: str, output: bool = True) -> set[str]:
    """Member names of a (nested) shape of an SSM operation, to echo exactly what AWS returns."""
    model = operation_model("ssm", operation)
    shape: Any = model.output_shape if output else model.input_shape
    for name in path:
        shape = shape.members[name]
        if shape.type_name == "list":
            shape = shape.member
    return set(shape.members)


# Request fields a version keeps (everything CreateAssociation takes that describes the association).
_SPEC_FIELDS = _members("CreateAssociation", output=False) - {"Tags"}
_DESCRIPTION_FIELDS = _members("DescribeAssociation", "AssociationDescription")
_VERSION_FIELDS = _members("ListAssociationVersions", "AssociationVersions")
_LIST_FIELDS = _members("ListAssociations", "Associations")


@dataclass(frozen=True)
class AssociationVersion:
    number: int
    created: datetime
    spec: dict[str, Any]  # CreateAssociation request fields (without Tags); omitted = absent


@dataclass
class InstanceRun:
    """What the agent last reported for one association on one instance."""

    trigger: int  # the association trigger this run satisfied
    status: str  # Success | Failed
    executed: datetime
    association_version: int
    document_version: str
    summary: str
    error_code: str = ""
    execution_id: str = ""


@dataclass
class Association:
    association_id: str
    created: datetime
    versions: list[AssociationVersion]
    tags: dict[str, str] = field(default_factory=dict)
    trigger: int = 0  # raised when every target must run it again
    schedule_anchor: datetime | None = None  # schedule ticks are counted from here
    schedule_checked: datetime | None = None  # ticks up to here have raised the trigger
    runs: dict[str, InstanceRun] = field(default_factory=dict)  # instance id -> latest run
    last_execution: datetime | None = None
    last_success: datetime | None = None
    triggered: dict[int, datetime] = field(default_factory=dict)  # run number -> when requested

    @property
    def current(self) -> AssociationVersion:
        return self.versions[-1]

    @property
    def spec(self) -> dict[str, Any]:
        return self.current.spec

    @property
    def document(self) -> str:
        return str(self.spec["Name"])

    def request_run(self) -> None:
        self.trigger += 1
        self.triggered[self.trigger] = clock.now()


def execution_id(association: Association) -> str:
    """The ExecutionId of the association's current run: one per run, shared by its targets."""
    return str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"{association.association_id}/{association.trigger}")
    )


@dataclass
class AssociationStore:
    associations: dict[str, Association] = field(default_factory=dict)  # in creation order
    lock: threading.RLock = field(default_factory=threading.RLock)


def store(account_id: str, region: str) -> AssociationStore:
    return attached(ssm_backend(account_id, region), AssociationStore)


def _missing(association_id: str | None = None) -> ServiceError:
    return ServiceError("AssociationDoesNotExist", "The specified association does not exist.")


def get(account_id: str, region: str, association_id: str) -> Association:
    association = store(account_id, region).associations.get(association_id)
    if association is None:
        raise _missing(association_id)
    return association


# --- targets -------------------------------------------------------------------------------------


def targeted(account_id: str, region: str, spec: dict[str, Any]) -> list[ManagedInstance]:
    """The managed instances an association version targets (any ping status), by id."""
    instances = fleet_state(account_id, region).instances
    if spec.get("InstanceId"):
        found = instances.get(spec["InstanceId"])
        return [found] if found is not None else []
    targets = spec.get("Targets") or []
    if not targets:
        return []
    return [
        instance
        for _, instance in sorted(instances.items())
        if all(_target_matches(target, instance) for target in targets)
    ]


def targets(spec: dict[str, Any], instance: ManagedInstance) -> bool:
    """Whether an association version targets this one instance (``targeted`` for one)."""
    if spec.get("InstanceId"):
        return bool(spec["InstanceId"] == instance.instance_id)
    chosen = spec.get("Targets") or []
    return bool(chosen) and all(_target_matches(target, instance) for target in chosen)


def _target_matches(target: dict[str, Any], instance: ManagedInstance) -> bool:
    key, values = target.get("Key", ""), target.get("Values") or []
    if key.lower() == "instanceids":
        return "*" in values or instance.instance_id in values
    if key.startswith("tag:"):
        value = instance.tags.get(key[4:])
        return value is not None and value in values
    if key == "tag-key":
        return any(v in instance.tags for v in values)
    return False


def _check_targets(spec: dict[str, Any], account_id: str, region: str) -> None:
    targets = spec.get("Targets")
    if spec.get("InstanceId"):
        if targets:
            raise ServiceError("InvalidTarget", "Specify either InstanceId or Targets, not both.")
        if spec["InstanceId"] not in fleet_state(account_id, region).instances:
            raise ServiceError(
                "InvalidInstanceId", f"Instance Id {spec['InstanceId']} is not valid."
            )
        return
    for target in targets or []:
        key, values = target.get("Key"), target.get("Values") or []
        if not key or not values:
            raise ServiceError("InvalidTarget", "Every target needs a Key and at least one value.")
        if not (
            key.lower() == "instanceids"
            or (key.startswith("tag:") and len(key) > 4)
            or key == "tag-key"
        ):
            raise ServiceError(
                "InvalidTarget",
                f"Target key {key} is not supported by the sandbox (use {', '.join(_SUPPORTED_TARGET_KEYS)}).",
            )


# --- status --------------------------------------------------------------------------------------


def instance_status(association: Association, instance_id: str) -> tuple[str, InstanceRun | None]:
    """(Pending | Success | Failed, the run behind it): Pending while a newer run is due."""
    run = association.runs.get(instance_id)
    if run is None or run.trigger < association.trigger:
        return "Pending", run
    return run.status, run


def overview(account_id: str, region: str, association: Association) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for instance in targeted(account_id, region, association.spec):
        status, _ = instance_status(association, instance.instance_id)
        counts[status] = counts.get(status, 0) + 1
    if counts.get("Failed"):
        status = "Failed"
    elif counts.get("Pending") or not counts:
        status = "Pending"
    else:
        status = "Success"
    return {"Status": status, "DetailedStatus": status, "AssociationStatusAggregatedCount": counts}


def _echo(spec: dict[str, Any], allowed: set[str]) -> dict[str, Any]:
    out = {k: v for k, v in spec.items() if k in allowed and v is not None}
    if "DocumentVersion" in allowed:
        out.setdefault("DocumentVersion", "$DEFAULT")
    if "ApplyOnlyAtCronInterval" in allowed:
        out.setdefault("ApplyOnlyAtCronInterval", False)
    return out


def association_description(
    account_id: str,
    region: str,
    association: Association,
    version: AssociationVersion | None = None,
) -> dict[str, Any]:
    chosen = version or association.current
    result = _echo(chosen.spec, _DESCRIPTION_FIELDS)
    result.update(
        {
            "AssociationId": association.association_id,
            "AssociationVersion": str(chosen.number),
            "Date": association.created,
            "LastUpdateAssociationDate": association.current.created,
            "Overview": overview(account_id, region, association),
        }
    )
    if association.last_execution:
        result["LastExecutionDate"] = association.last_execution
    if association.last_success:
        result["LastSuccessfulExecutionDate"] = association.last_success
    return result


# --- validation ----------------------------------------------------------------------------------


def _validate_spec(account_id: str, region: str, spec: dict[str, Any]) -> None:
    document = ssm_documents.find(account_id, region, spec["Name"])
    if document is None:
        raise ServiceError("InvalidDocument", f"Document {spec['Name']} does not exist.")
    if document.document_type not in ASSOCIATION_DOCUMENT_TYPES:
        raise ServiceError(
            "InvalidDocument",
            f"Document {document.name} is a {document.document_type} document; associations run "
            f"{', '.join(ASSOCIATION_DOCUMENT_TYPES)} documents (install packages with AWS-ConfigureAWSPackage).",
        )
    try:
        version = ssm_documents.select_version(document, spec.get("DocumentVersion"))
    except ServiceError:
        raise ServiceError(
            "InvalidDocumentVersion",
            f"Document version {spec.get('DocumentVersion')} of {document.name} does not exist.",
        ) from None
    check_parameters(version.parameter_definitions(), spec.get("Parameters") or {})
    _check_targets(spec, account_id, region)
    _check_schedule(spec)


def check_parameters(definitions: dict[str, dict[str, Any]], given: dict[str, list[str]]) -> None:
    """InvalidParameters unless ``given`` fits the document's parameter definitions: no unknown
    names, every parameter without a default given, each value of its type (String one value,
    StringList many, Boolean true/false, Integer digits, StringMap a JSON object, MapList a JSON
    list of objects) and within allowedValues, allowedPattern (matched whole, Java dialect),
    minItems/maxItems and minChars/maxChars."""
    unknown = sorted(set(given) - set(definitions))
    if unknown:
        raise ServiceError(
            "InvalidParameters",
            f"Parameter(s) {', '.join(unknown)} are not defined in the document.",
        )
    for name, spec in definitions.items():
        values = given.get(name)
        if values is None:
            if "default" not in spec:
                raise ServiceError("InvalidParameters", f"Parameter {name} is required.")
            continue
        problem = _parameter_problem(spec, values)
        if problem:
            raise ServiceError("InvalidParameters", f"Parameter {name} {problem}.")


def _parameter_problem(spec: dict[str, Any], values: list[str]) -> str | None:
    import json

    import regex

    kind = spec.get("type", "String")
    if kind != "StringList" and len(values) != 1:
        return f"is a {kind} and takes exactly one value, got {len(values)}"
    if kind == "StringList":
        low, high = spec.get("minItems"), spec.get("maxItems")
        if low is not None and len(values) < int(low):
            return f"needs at least {low} item(s)"
        if high is not None and len(values) > int(high):
            return f"takes at most {high} item(s)"
    for value in values:
        if kind == "Boolean" and value not in ("true", "false"):
            return "must be true or false"
        if kind == "Integer" and not value.lstrip("-").isdigit():
            return "must be an integer"
        if kind in ("StringMap", "MapList"):
            try:
                parsed = json.loads(value)
            except ValueError:
                return f"must be a JSON {'object' if kind == 'StringMap' else 'list'}"
            if kind == "StringMap" and not isinstance(parsed, dict):
                return "must be a JSON object"
            if kind == "MapList" and not (
                isinstance(parsed, list) and all(isinstance(i, dict) for i in parsed)
            ):
                return "must be a JSON list of objects"
        low, high = spec.get("minChars"), spec.get("maxChars")
        if (low is not None and len(value) < int(low)) or (
            high is not None and len(value) > int(high)
        ):
            return f"must have {low or 0} to {high or 'any number of'} characters"
        allowed = spec.get("allowedValues")
        if allowed and value not in [str(a) for a in allowed]:
            return f"must be one of {', '.join(map(str, allowed))}"
        pattern = spec.get("allowedPattern")
        if pattern:
            try:
                compiled = regex.compile(str(pattern))
            except regex.error:
                continue  # a pattern AWS would have refused at CreateDocument
            if compiled.fullmatch(value) is None:
                return f"value does not match {pattern}"
    return None


def _check_schedule(spec: dict[str, Any]) -> None:
    """The association schedule rules (see ``schedule``): ApplyOnlyAtCronInterval needs a cron or
    at() expression, ScheduleOffset needs a cron expression and ApplyOnlyAtCronInterval ("To use
    offsets with associations, you must specify the --apply-only-at-cron-interval option")."""
    expression = spec.get("ScheduleExpression")
    schedule = None
    if expression is not None:
        try:
            schedule = association_schedule(expression)
        except ScheduleError as error:
            raise ServiceError(
                "InvalidSchedule",
                f"The schedule is invalid. Verify your cron or rate expression and try again. {error}",
            ) from None
    if spec.get("ApplyOnlyAtCronInterval") and not isinstance(schedule, Cron | At):
        raise ServiceError(
            "InvalidSchedule",
            "ApplyOnlyAtCronInterval needs a cron or at() ScheduleExpression (it isn't supported "
            "for rate expressions).",
        )
    if spec.get("ScheduleOffset") is not None:
        if not isinstance(schedule, Cron):
            raise ServiceError(
                "InvalidSchedule", "ScheduleOffset is supported for cron expressions only."
            )
        if not spec.get("ApplyOnlyAtCronInterval"):
            raise ServiceError(
                "InvalidSchedule",
                "ScheduleOffset can only be used together with ApplyOnlyAtCronInterval.",
            )


# --- handlers ------------------------------------------------------------------------------------


def _spec_from(params: dict[str, Any]) -> dict[str, Any]:
    spec = {k: v for k, v in params.items() if k in _SPEC_FIELDS and v is not None}
    spec["Name"] = ssm_documents.document_name(spec["Name"])
    return spec


@operation("ssm", "CreateAssociation")
def create_association(call: Call) -> dict[str, Any]:
    spec = _spec_from(call.params)
    tags = {tag["Key"]: tag["Value"] for tag in call.params.get("Tags") or []}
    check_tag_keys(list(tags))
    associations = store(call.account_id, call.region)
    with associations.lock:
        _validate_spec(call.account_id, call.region, spec)
        if spec.get("InstanceId") and any(
            a.spec.get("InstanceId") == spec["InstanceId"] and a.document == spec["Name"]
            for a in associations.associations.values()
        ):
            raise ServiceError(
                "AssociationAlreadyExists", "The specified association already exists."
            )
        now = clock.now()
        association = Association(
            association_id=str(uuid.uuid4()),
            created=now,
            versions=[AssociationVersion(1, now, spec)],
            tags=tags,
            schedule_anchor=now,
            schedule_checked=now,
        )
        if not spec.get("ApplyOnlyAtCronInterval"):
            association.request_run()
        associations.associations[association.association_id] = association
        return {
            "AssociationDescription": association_description(
                call.account_id, call.region, association
            )
        }


@operation("ssm", "UpdateAssociation")
def update_association(call: Call) -> dict[str, Any]:
    params = call.params
    associations = store(call.account_id, call.region)
    with associations.lock:
        association = get(call.account_id, call.region, params["AssociationId"])
        expected = params.get("AssociationVersion")
        if expected not in (None, "$LATEST") and expected != str(association.current.number):
            raise ServiceError(
                "InvalidAssociationVersion",
                f"The version you specified ({expected}) isn't valid: the latest version is "
                f"{association.current.number}. Use ListAssociationVersions to view all versions "
                "of an association according to the association ID. Or, use the $LATEST parameter "
                "to view the latest version of the association.",
            )
        if len(association.versions) >= MAX_ASSOCIATION_VERSIONS:
            raise ServiceError(
                "AssociationVersionLimitExceeded",
                "You have reached the maximum number versions allowed for an association. Each "
                f"association has a limit of {MAX_ASSOCIATION_VERSIONS:,} versions.",
            )
        spec = _spec_from({"Name": association.document, **params})
        if association.spec.get("InstanceId"):  # a legacy association stays on its instance
            spec["InstanceId"] = association.spec["InstanceId"]
        _validate_spec(call.account_id, call.region, spec)
        now = clock.now()
        association.versions.append(AssociationVersion(association.current.number + 1, now, spec))
        association.schedule_anchor = now
        association.schedule_checked = now
        if not spec.get("ApplyOnlyAtCronInterval"):
            association.request_run()
        return {
            "AssociationDescription": association_description(
                call.account_id, call.region, association
            )
        }


def _find(call: Call) -> Association:
    params = call.params
    associations = store(call.account_id, call.region)
    if params.get("AssociationId"):
        return get(call.account_id, call.region, params["AssociationId"])
    if params.get("Name") and params.get("InstanceId"):
        name = ssm_documents.document_name(params["Name"])
        for association in associations.associations.values():
            if (
                association.document == name
                and association.spec.get("InstanceId") == params["InstanceId"]
            ):
                return association
        raise _missing()
    raise ServiceError("ValidationException", "Specify AssociationId, or Name and InstanceId.")


@operation("ssm", "StartAssociationsOnce")
def start_associations_once(call: Call) -> dict[str, Any]:
    """Run the associations once, now, on all their targets (what a new default package version
    needs, since AWS does not re-run an association when a package it installs changes)."""
    associations = store(call.account_id, call.region)
    with associations.lock:
        found = [
            associations.associations.get(association_id)
            for association_id in call.params["AssociationIds"]
        ]
        if any(association is None for association in found):
            raise _missing()
        for association in found:
            assert association is not None
            association.request_run()
    return {}


@operation("ssm", "DescribeAssociation")
def describe_association(call: Call) -> dict[str, Any]:
    association = _find(call)
    requested = call.params.get("AssociationVersion")
    version = None
    if requested not in (None, "$LATEST"):
        version = next((v for v in association.versions if str(v.number) == requested), None)
        if version is None:
            raise ServiceError(
                "InvalidAssociationVersion",
                f"Association version {requested} does not exist. Use ListAssociationVersions to "
                "view all versions of an association according to the association ID.",
            )
    return {
        "AssociationDescription": association_description(
            call.account_id, call.region, association, version
        )
    }


@operation("ssm", "DeleteAssociation")
def delete_association(call: Call) -> None:
    associations = store(call.account_id, call.region)
    with associations.lock:
        association = _find(call)
        del associations.associations[association.association_id]


@operation("ssm", "ListAssociationVersions")
def list_association_versions(call: Call) -> dict[str, Any]:
    association = get(call.account_id, call.region, call.params["AssociationId"])
    rows = []
    for version in association.versions:
        row = _echo(version.spec, _VERSION_FIELDS)
        row.update(
            {
                "AssociationId": association.association_id,
                "AssociationVersion": str(version.number),
                "CreatedDate": version.created,
            }
        )
        rows.append(row)
    page, token = ssm_documents.paginate(
        rows, call.params.get("MaxResults"), call.params.get("NextToken"), default=50
    )
    return _page("AssociationVersions", page, token)


def _page(key: str, rows: list[Any], token: str | None) -> dict[str, Any]:
    result: dict[str, Any] = {key: rows}
    if token:
        result["NextToken"] = token
    return result


@operation("ssm", "ListAssociations")
def list_associations(call: Call) -> dict[str, Any]:
    filters = call.params.get("AssociationFilterList") or []
    rows = []
    for association in list(store(call.account_id, call.region).associations.values()):
        summary = overview(call.account_id, call.region, association)
        if not all(
            _association_filter(f["key"], f["value"], association, summary) for f in filters
        ):
            continue
        row = _echo(association.spec, _LIST_FIELDS)
        row.update(
            {
                "AssociationId": association.association_id,
                "AssociationVersion": str(association.current.number),
                "Overview": summary,
            }
        )
        if association.last_execution:
            row["LastExecutionDate"] = association.last_execution
        rows.append(row)
    page, token = ssm_documents.paginate(
        rows, call.params.get("MaxResults"), call.params.get("NextToken"), default=50
    )
    return _page("Associations", page, token)


def _association_filter(
    key: str, value: str, association: Association, summary: dict[str, Any]
) -> bool:
    spec = association.spec
    if key == "Name":
        return association.document == ssm_documents.document_name(value)
    if key == "AssociationId":
        return association.association_id == value
    if key == "AssociationName":
        return spec.get("AssociationName") == value
    if key == "InstanceId":  # only legacy associations made with InstanceId, as AWS documents
        return spec.get("InstanceId") == value
    if key == "AssociationStatusName":
        return bool(summary["Status"] == value)
    if key in ("LastExecutedBefore", "LastExecutedAfter"):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ServiceError(
                "ValidationException", f"{key} needs an ISO 8601 time, got {value}."
            ) from None
        if association.last_execution is None:
            return False
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=association.last_execution.tzinfo)
        return (
            association.last_execution < moment
            if key == "LastExecutedBefore"
            else association.last_execution > moment
        )
    return False  # ResourceGroupName, CloudConnectorId: the sandbox has none


@operation("ssm", "DescribeInstanceAssociationsStatus")
def describe_instance_associations_status(call: Call) -> dict[str, Any]:
    instance_id = call.params["InstanceId"]
    if instance_id not in fleet_state(call.account_id, call.region).instances:
        raise ServiceError("InvalidInstanceId", f"Instance Id {instance_id} is not valid.")
    rows = [
        _instance_status_info(association, instance_id)
        for association in associations_on(call.account_id, call.region, instance_id)
    ]
    page, token = ssm_documents.paginate(
        rows, call.params.get("MaxResults"), call.params.get("NextToken"), default=50
    )
    return _page("InstanceAssociationStatusInfos", page, token)


def targets_index(account_id: str, region: str) -> dict[str, set[str]]:
    """Association id -> the ids of the instances it targets now (one pass for bulk reads)."""
    return {
        association.association_id: {
            i.instance_id for i in targeted(account_id, region, association.spec)
        }
        for association in list(store(account_id, region).associations.values())
    }


def associations_on(
    account_id: str, region: str, instance_id: str, index: dict[str, set[str]] | None = None
) -> list[Association]:
    """The associations that currently target an instance."""
    index = index if index is not None else targets_index(account_id, region)
    return [
        association
        for association in list(store(account_id, region).associations.values())
        if instance_id in index.get(association.association_id, set())
    ]


def _instance_status_info(association: Association, instance_id: str) -> dict[str, Any]:
    status, run = instance_status(association, instance_id)
    info: dict[str, Any] = {
        "AssociationId": association.association_id,
        "Name": association.document,
        "InstanceId": instance_id,
        "Status": status,
        "DetailedStatus": status,
    }
    if association.spec.get("AssociationName"):
        info["AssociationName"] = association.spec["AssociationName"]
    if status == "Pending" or run is None:
        info["AssociationVersion"] = str(association.current.number)
        info["DocumentVersion"] = association.spec.get("DocumentVersion", "$DEFAULT")
        info["ExecutionSummary"] = (
            "The association is pending: it has not run on this instance yet."
        )
        if run is not None:
            info["ExecutionDate"] = run.executed
        return info
    info.update(
        {
            "AssociationVersion": str(run.association_version),
            "DocumentVersion": run.document_version,
            "ExecutionDate": run.executed,
            "ExecutionSummary": run.summary,
        }
    )
    if run.error_code:
        info["ErrorCode"] = run.error_code
    return info


# --- compliance ----------------------------------------------------------------------------------


ComplianceProvider = Callable[[str, str, str], list[dict[str, Any]]]
"""(account_id, region, instance_id) -> more ComplianceItems (Patch, Custom:...) of the instance."""

_compliance_providers: list[ComplianceProvider] = []


def compliance_provider(provider: ComplianceProvider) -> ComplianceProvider:
    """Decorator: ``provider`` adds compliance items of another type than Association."""
    if provider not in _compliance_providers:
        _compliance_providers.append(provider)
    return provider


def compliance_items(
    account_id: str, region: str, instance_id: str, index: dict[str, set[str]] | None = None
) -> list[dict[str, Any]]:
    """Compliance of one instance: Association (as State Manager reports it, SyncCompliance AUTO)
    and whatever other types the providers report."""
    items = []
    for association in associations_on(account_id, region, instance_id, index):
        spec = association.spec
        run = association.runs.get(instance_id)
        if run is None or spec.get("SyncCompliance") == "MANUAL":
            continue
        items.append(
            {
                "ComplianceType": "Association",
                "ResourceType": "ManagedInstance",
                "ResourceId": instance_id,
                "Id": association.association_id,
                "Title": spec.get("AssociationName", ""),
                "Status": "COMPLIANT" if run.status == "Success" else "NON_COMPLIANT",
                "Severity": spec.get("ComplianceSeverity", "UNSPECIFIED"),
                "ExecutionSummary": {
                    "ExecutionTime": run.executed,
                    "ExecutionId": run.execution_id,
                    "ExecutionType": "Command",
                },
                "Details": {
                    "DocumentName": association.document,
                    "DocumentVersion": run.document_version,
                },
            }
        )
    for provider in list(_compliance_providers):
        items.extend(provider(account_id, region, instance_id))
    return items


_ITEM_FILTER_KEYS = {
    "ComplianceType",
    "Status",
    "Severity",
    "Id",
    "Title",
    "ExecutionId",
    "ResourceId",
    "ResourceType",
}
_SUMMARY_FILTER_KEYS = {"ComplianceType", "Status", "OverallSeverity", "ResourceId", "ResourceType"}


def _filter_value(row: dict[str, Any], key: str) -> str:
    if key == "ExecutionId":
        return str(row.get("ExecutionSummary", {}).get("ExecutionId", ""))
    return str(row.get(key, ""))


def _passes(row: dict[str, Any], filters: list[dict[str, Any]], allowed: set[str]) -> bool:
    for item in filters:
        key, values, kind = item.get("Key", ""), item.get("Values") or [], item.get("Type", "EQUAL")
        if key not in allowed:
            raise ServiceError("InvalidFilter", f"The filter key {key} is not valid.")
        actual = _filter_value(row, key)
        if kind == "EQUAL":
            ok = actual in values
        elif kind == "NOT_EQUAL":
            ok = actual not in values
        elif kind == "BEGIN_WITH":
            ok = any(actual.startswith(v) for v in values)
        elif kind == "LESS_THAN":
            ok = any(actual < v for v in values)
        else:
            ok = any(actual > v for v in values)
        if not ok:
            return False
    return True


def _check_resource_types(types: list[str] | None) -> None:
    for kind in types or []:
        if kind != "ManagedInstance":
            raise ServiceError(
                "InvalidResourceType", f"The resource type {kind} isn't valid: use ManagedInstance."
            )


@operation("ssm", "ListComplianceItems")
def list_compliance_items(call: Call) -> dict[str, Any]:
    params = call.params
    _check_resource_types(params.get("ResourceTypes"))
    resource_ids = params.get("ResourceIds")
    instances = fleet_state(call.account_id, call.region).instances
    if resource_ids is not None:
        if len(resource_ids) > 1:
            raise ServiceError(
                "ValidationException", "You can only specify one resource ID per call."
            )
        if resource_ids[0] not in instances:
            raise ServiceError(
                "InvalidResourceId", f"The resource ID {resource_ids[0]} isn't valid."
            )
    ids = resource_ids or sorted(instances)
    index = targets_index(call.account_id, call.region)
    rows = [
        item
        for instance_id in ids
        for item in compliance_items(call.account_id, call.region, instance_id, index)
        if _passes(item, params.get("Filters") or [], _ITEM_FILTER_KEYS)
    ]
    page, token = ssm_documents.paginate(
        rows, params.get("MaxResults"), params.get("NextToken"), default=10
    )
    return _page("ComplianceItems", page, token)


@operation("ssm", "ListResourceComplianceSummaries")
def list_resource_compliance_summaries(call: Call) -> dict[str, Any]:
    params = call.params
    rows = []
    for summary in resource_summaries(call.account_id, call.region):
        if _passes(summary, params.get("Filters") or [], _SUMMARY_FILTER_KEYS):
            rows.append(summary)
    page, token = ssm_documents.paginate(
        rows, params.get("MaxResults"), params.get("NextToken"), default=10
    )
    return _page("ResourceComplianceSummaryItems", page, token)


@operation("ssm", "ListComplianceSummaries")
def list_compliance_summaries(call: Call) -> dict[str, Any]:
    """Per compliance type, how many resources are compliant and not (by overall severity)."""
    params = call.params
    by_type: dict[str, list[dict[str, Any]]] = {}
    for summary in resource_summaries(call.account_id, call.region):
        if _passes(summary, params.get("Filters") or [], _SUMMARY_FILTER_KEYS):
            by_type.setdefault(summary["ComplianceType"], []).append(summary)
    rows = []
    for compliance_type, summaries in sorted(by_type.items()):
        compliant = [s for s in summaries if s["Status"] == "COMPLIANT"]
        non_compliant = [s for s in summaries if s["Status"] == "NON_COMPLIANT"]
        rows.append(
            {
                "ComplianceType": compliance_type,
                "CompliantSummary": {
                    "CompliantCount": len(compliant),
                    "SeveritySummary": _severity_counts(compliant, "OverallSeverity"),
                },
                "NonCompliantSummary": {
                    "NonCompliantCount": len(non_compliant),
                    "SeveritySummary": _severity_counts(non_compliant, "OverallSeverity"),
                },
            }
        )
    page, token = ssm_documents.paginate(
        rows, params.get("MaxResults"), params.get("NextToken"), default=10
    )
    return _page("ComplianceSummaryItems", page, token)


def _severity_counts(group: list[dict[str, Any]], key: str) -> dict[str, int]:
    counts = dict.fromkeys(_SEVERITY_FIELD.values(), 0)
    for item in group:
        counts[_SEVERITY_FIELD[item[key]]] += 1
    return counts


def resource_summaries(account_id: str, region: str) -> list[dict[str, Any]]:
    """One summary per instance and compliance type, as ListResourceComplianceSummaries lists."""
    rows = []
    index = targets_index(account_id, region)
    for instance_id in sorted(fleet_state(account_id, region).instances):
        by_type: dict[str, list[dict[str, Any]]] = {}
        for item in compliance_items(account_id, region, instance_id, index):
            by_type.setdefault(item["ComplianceType"], []).append(item)
        for compliance_type, items in sorted(by_type.items()):
            rows.append(_summary(instance_id, items, compliance_type))
    return rows


def _summary(
    instance_id: str, items: list[dict[str, Any]], compliance_type: str = "Association"
) -> dict[str, Any]:
    compliant = [i for i in items if i["Status"] == "COMPLIANT"]
    non_compliant = [i for i in items if i["Status"] == "NON_COMPLIANT"]

    ranked = non_compliant or items
    overall = min((i["Severity"] for i in ranked), key=_SEVERITY_ORDER.index)
    latest = max(items, key=lambda i: i["ExecutionSummary"]["ExecutionTime"])
    return {
        "ComplianceType": compliance_type,
        "ResourceType": "ManagedInstance",
        "ResourceId": instance_id,
        "Status": "NON_COMPLIANT" if non_compliant else "COMPLIANT",
        "OverallSeverity": overall,
        "ExecutionSummary": latest["ExecutionSummary"],
        "CompliantSummary": {
            "CompliantCount": len(compliant),
            "SeveritySummary": _severity_counts(compliant, "Severity"),
        },
        "NonCompliantSummary": {
            "NonCompliantCount": len(non_compliant),
            "SeveritySummary": _severity_counts(non_compliant, "Severity"),
        },
    }


# --- tags and document changes ------------------------------------------------------------------


@resource_source(SimpleSystemManagerBackend)
def _tagged_associations(backend: Any) -> Iterator[TaggedResource]:
    associations = attached(backend, AssociationStore)
    with associations.lock:
        owned = [(a.association_id, dict(a.tags)) for a in associations.associations.values()]
    for association_id, tags in owned:
        yield TaggedResource(
            arn=f"arn:aws:ssm:{backend.region_name}:{backend.account_id}:association/{association_id}",
            tags=tags,
            resource_type="ssm:association",
        )


@tag_target("Association")
def _association_tags(account_id: str, region: str, resource_id: str) -> dict[str, str]:
    association = store(account_id, region).associations.get(resource_id)
    if association is None:
        raise ServiceError(
            "InvalidResourceId",
            "The resource ID isn't valid. Verify that you entered the correct ID and try again.",
        )
    return association.tags


@ssm_documents.on_change
def _document_changed(account_id: str, region: str, name: str, event: str) -> None:
    """A new default (or latest) version re-runs the associations that follow it; deleting a
    document deletes its associations, as DeleteDocument's reference says."""
    associations = store(account_id, region)
    with associations.lock:
        for association_id, association in list(associations.associations.items()):
            if association.document != name:
                continue
            if event == "deleted":
                del associations.associations[association_id]
                continue
            follows = association.spec.get("DocumentVersion", "$DEFAULT")
            if (
                (event == "default_changed" and follows == "$DEFAULT")
                or (event == "latest_changed" and follows == "$LATEST")
            ) and not association.spec.get("ApplyOnlyAtCronInterval"):
                association.request_run()


def all_associations(account_id: str, region: str) -> Iterable[Association]:
    return list(store(account_id, region).associations.values())
