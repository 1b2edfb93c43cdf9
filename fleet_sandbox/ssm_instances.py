"""Hybrid managed instances: DescribeInstanceInformation, DeregisterManagedInstance, their tags.

moto knows no managed instances. Instances are created by registration (ssm_activations) and read
here the way AWS serves them: tags are never part of DescribeInstanceInformation (they come from
ListTagsForResource or the tagging API), tag filters cannot be mixed with other filters, and pages
hold 10 instances unless MaxResults (5..50) says otherwise.

Modules that know more about an instance (association status) add output fields with
``@information_fields``; they are also what the AssociationStatus filter matches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from moto.core.resource_tagging import TaggedResource
from moto.ssm.models import SimpleSystemManagerBackend

from fleet_sandbox import consistency, paging
from fleet_sandbox.clock import clock
from fleet_sandbox.extension import Call, ServiceError, operation
from fleet_sandbox.ssm_tags import tag_target
from fleet_sandbox.state import (
    FleetState,
    ManagedInstance,
    attached,
    fleet_state,
    workspaces_backend,
)
from fleet_sandbox.tagging import resource_source
from fleet_sandbox.workspaces import purge_terminated

DEFAULT_MAX_RESULTS = 10  # "The default value is 10 items." (botocore ssm model)
RESOURCE_TYPE = "ManagedInstance"

InformationFields = Callable[[str, str, ManagedInstance, dict[str, Any]], dict[str, Any]]
"""(account_id, region, instance, memo) -> extra InstanceInformation members (None values
dropped); ``memo`` is shared by every instance of one request, for work done once per request."""

_information_fields: list[InformationFields] = []


def information_fields(provider: InformationFields) -> InformationFields:
    """Decorator: ``provider`` contributes fields to each instance's InstanceInformation."""
    if provider not in _information_fields:
        _information_fields.append(provider)
    return provider


_FILTER_KEYS = {
    "InstanceIds",
    "AgentVersion",
    "PingStatus",
    "PlatformTypes",
    "ActivationIds",
    "IamRole",
    "ResourceType",
    "AssociationStatus",
    "SourceIds",
    "SourceTypes",
}
_PING_STATUSES = {"Online", "ConnectionLost", "Inactive"}
_PLATFORM_TYPES = {"Windows", "Linux", "MacOS"}
_RESOURCE_TYPES = {"EC2Instance", "ManagedInstance"}
_ASSOCIATION_STATUSES = {"Success", "Pending", "Failed"}
_SOURCE_TYPE = "AWS::SSM::ManagedInstance"


def _is_tag_filter(key: str) -> bool:
    return key == "tag-key" or key.startswith("tag:")


def _bad_value(message: str) -> ServiceError:
    return ServiceError("InvalidInstanceInformationFilterValue", message)


def _filters(params: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Both filter styles as (key, values), checked the way AWS checks them."""
    legacy = params.get("InstanceInformationFilterList") or []
    current = params.get("Filters") or []
    if legacy and current:
        raise ServiceError(
            "ValidationException",
            "InstanceInformationFilterList and Filters cannot be used in the same request.",
        )
    pairs = [(f["key"], list(f["valueSet"])) for f in legacy] + [
        (f["Key"], list(f["Values"])) for f in current
    ]
    for key, _ in pairs:
        if key not in _FILTER_KEYS and not _is_tag_filter(key):
            raise ServiceError("InvalidFilterKey", f"The filter key {key} isn't valid.")
    tag_keys = [key for key, _ in pairs if _is_tag_filter(key)]
    if tag_keys and len(tag_keys) != len(pairs):
        raise ServiceError(
            "ValidationException", "Cannot mix tag or inventory filter with any other filter."
        )
    for key, values in pairs:
        if key == "ResourceType":
            if len(values) != 1:
                raise _bad_value("ResourceType filter may contain only one value.")
            if values[0] not in _RESOURCE_TYPES:
                raise _bad_value(
                    "ResourceType filter is invalid, valid values are EC2Instance, ManagedInstance"
                )
        checks = {
            "PingStatus": _PING_STATUSES,
            "PlatformTypes": _PLATFORM_TYPES,
            "AssociationStatus": _ASSOCIATION_STATUSES,
        }
        allowed = checks.get(key)
        if allowed is not None:
            wrong = [v for v in values if v not in allowed]
            if wrong:
                raise _bad_value(
                    f"{key} filter value {wrong[0]} is invalid, valid values are "
                    + ", ".join(sorted(allowed))
                )
    return pairs


def _extras(
    account_id: str, region: str, instance: ManagedInstance, memo: dict[str, Any]
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    for provider in _information_fields:
        extra.update(provider(account_id, region, instance, memo))
    return {key: value for key, value in extra.items() if value is not None}


def _matches(instance: ManagedInstance, extra: dict[str, Any], key: str, values: list[str]) -> bool:
    if key == "tag-key":
        return any(v in instance.tags for v in values)
    if key.startswith("tag:"):
        return instance.tags.get(key[4:]) in values
    field_values: dict[str, str | None] = {
        "InstanceIds": instance.instance_id,
        "AgentVersion": instance.agent_version,
        "PingStatus": instance.ping_status,
        "PlatformTypes": instance.platform_type,
        "ActivationIds": instance.activation_id,
        "IamRole": instance.iam_role,
        "ResourceType": RESOURCE_TYPE,
        "AssociationStatus": extra.get("AssociationStatus"),
        "SourceIds": instance.instance_id,
        "SourceTypes": _SOURCE_TYPE,
    }
    return field_values[key] in values


def describe(instance: ManagedInstance, now: datetime, extra: dict[str, Any]) -> dict[str, Any]:
    """An instance as InstanceInformation; an Online agent has just pinged, a lost one has not."""
    last_ping = now if instance.ping_status == "Online" else (instance.last_ping or now)
    info: dict[str, Any] = {
        "InstanceId": instance.instance_id,
        "PingStatus": instance.ping_status,
        "LastPingDateTime": last_ping,
        "AgentVersion": instance.agent_version,
        "IsLatestVersion": False,
        "PlatformType": instance.platform_type,
        "PlatformName": instance.platform_name,
        "PlatformVersion": instance.platform_version,
        "ActivationId": instance.activation_id,
        "IamRole": instance.iam_role,
        "RegistrationDate": instance.registration_date,
        "ResourceType": RESOURCE_TYPE,
        "Name": instance.name,
        "IPAddress": instance.ip_address,
        "ComputerName": instance.computer_name,
        "SourceId": instance.instance_id,
        "SourceType": _SOURCE_TYPE,
    }
    info.update(extra)
    return {key: value for key, value in info.items() if value is not None}


@operation("ssm", "DescribeInstanceInformation")
def describe_instance_information(call: Call) -> dict[str, Any]:
    filters = _filters(call.params)
    # WorkSpaces going down take their agents' pings with them, minutes later.
    purge_terminated(workspaces_backend(call.account_id, call.region))
    fleet = fleet_state(call.account_id, call.region)
    with fleet.lock:
        instances = list(fleet.instances.values())
    not_yet = consistency.hidden_since("ssm")  # a just-registered instance takes a while to show
    if not_yet is not None:
        instances = [i for i in instances if i.registration_date <= not_yet]
    requested_ids = {v for key, values in filters if key == "InstanceIds" for v in values}
    unknown = sorted(requested_ids - {i.instance_id for i in instances})
    if unknown:
        raise ServiceError("InvalidInstanceId", f"Instance Id {unknown[0]} is not valid.")
    # Extra fields cost a look at every association: computed for filtering only when a filter
    # needs them, else only for the page returned.
    memo: dict[str, Any] = {}
    needs_extra = any(key == "AssociationStatus" for key, _ in filters)
    selected = []
    for instance in instances:
        extra = _extras(call.account_id, call.region, instance, memo) if needs_extra else {}
        if all(_matches(instance, extra, key, values) for key, values in filters):
            selected.append(instance)
    scope = paging.fingerprint("DescribeInstanceInformation", filters)
    chunk, token = paging.page(
        selected,
        call.params.get("NextToken"),
        call.params.get("MaxResults") or DEFAULT_MAX_RESULTS,
        scope,
        lambda: ServiceError("InvalidNextToken", "The specified token isn't valid."),
    )
    now = clock.now()
    result: dict[str, Any] = {
        "InstanceInformationList": [
            describe(i, now, _extras(call.account_id, call.region, i, memo)) for i in chunk
        ]
    }
    if token:
        result["NextToken"] = token
    return result


@operation("ssm", "DeregisterManagedInstance")
def deregister_managed_instance(call: Call) -> dict[str, Any]:
    instance_id = call.params["InstanceId"]
    fleet = fleet_state(call.account_id, call.region)
    with fleet.lock:
        if fleet.instances.pop(instance_id, None) is None:
            raise ServiceError("InvalidInstanceId", f"Instance Id {instance_id} is not valid.")
    return {}


@tag_target("ManagedInstance")
def _instance_tags(account_id: str, region: str, resource_id: str) -> dict[str, str]:
    fleet = fleet_state(account_id, region)
    with fleet.lock:
        instance = fleet.instances.get(resource_id)
    if instance is None:
        raise ServiceError(
            "InvalidResourceId",
            f"The resource ID {resource_id} isn't valid. Verify that you entered the correct ID.",
        )
    return instance.tags


def instance_arn(partition: str, region: str, account_id: str, instance_id: str) -> str:
    return f"arn:{partition}:ssm:{region}:{account_id}:managed-instance/{instance_id}"


@resource_source(SimpleSystemManagerBackend)
def _tagged_instances(backend: Any) -> Iterator[TaggedResource]:
    fleet = attached(backend, FleetState)
    with fleet.lock:
        instances = list(fleet.instances.values())
    for instance in instances:
        yield TaggedResource(
            arn=instance_arn(
                backend.partition, backend.region_name, backend.account_id, instance.instance_id
            ),
            tags=dict(instance.tags),
            resource_type="ssm:managed-instance",
        )
