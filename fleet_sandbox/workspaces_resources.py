"""The other taggable WorkSpaces resources: bundles, IP access control groups, connection aliases.

WorkSpaces tags apply to directories, images, bundles, IP groups and connection aliases as well as
to WorkSpaces. moto models none of the last three, so here: IP groups (CreateIpGroup,
DescribeIpGroups, DeleteIpGroup), connection aliases (CreateConnectionAlias,
DescribeConnectionAliases, DeleteConnectionAlias) and the bundles the fleet's WorkSpaces use (a
bundle exists once a WorkSpace names it). All of them take CreateTags/DescribeTags/DeleteTags and
appear in the tagging API as ``workspaces:workspacebundle``, ``workspaces:workspaceipgroup`` and
``workspaces:connectionalias``.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from moto.core.resource_tagging import TaggedResource
from moto.workspaces.models import WorkSpacesBackend

from fleet_sandbox import paging
from fleet_sandbox.extension import Call, ServiceError, operation
from fleet_sandbox.state import attached, workspaces_backend
from fleet_sandbox.tagging import resource_source
from fleet_sandbox.workspaces import normalise_tags, tagged_resource_lookup

_ID_ALPHABET = string.ascii_lowercase + string.digits


@dataclass
class Taggable:
    resource_id: str
    tags: list[dict[str, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Resources:
    ip_groups: dict[str, Taggable] = field(default_factory=dict)
    aliases: dict[str, Taggable] = field(default_factory=dict)
    bundles: dict[str, Taggable] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


def resources(backend: Any) -> Resources:
    return attached(backend, Resources)


def _new_id(prefix: str, taken: dict[str, Taggable]) -> str:
    while True:
        candidate = prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(9))
        if candidate not in taken:
            return candidate


def _bundles(backend: Any) -> dict[str, Taggable]:
    """Every bundle a WorkSpace uses exists (with the tags given to it so far)."""
    known = resources(backend)
    with known.lock:
        for workspace in list(backend.workspaces.values()):
            if workspace.bundle_id and workspace.bundle_id not in known.bundles:
                known.bundles[workspace.bundle_id] = Taggable(workspace.bundle_id)
        return known.bundles


@tagged_resource_lookup
def _lookup(backend: Any, resource_id: str) -> Any:
    known = resources(backend)
    table = (
        _bundles(backend)
        if resource_id.startswith("wsb-")
        else known.ip_groups
        if resource_id.startswith("wsipg-")
        else known.aliases
        if resource_id.startswith("wsca-")
        else {}
    )
    return table.get(resource_id)


# --- IP access control groups ---------------------------------------------------------------------


@operation("workspaces", "CreateIpGroup")
def create_ip_group(call: Call) -> dict[str, Any]:
    params = call.params
    known = resources(workspaces_backend(call.account_id, call.region))
    with known.lock:
        if any(g.details["groupName"] == params["GroupName"] for g in known.ip_groups.values()):
            raise ServiceError(
                "ResourceAlreadyExistsException", f"The IP group {params['GroupName']} exists."
            )
        group_id = _new_id("wsipg-", known.ip_groups)
        known.ip_groups[group_id] = Taggable(
            group_id,
            normalise_tags(params.get("Tags")),
            {
                "groupName": params["GroupName"],
                "groupDesc": params.get("GroupDesc", ""),
                "userRules": list(params.get("UserRules") or []),
            },
        )
    return {"GroupId": group_id}


@operation("workspaces", "DescribeIpGroups")
def describe_ip_groups(call: Call) -> dict[str, Any]:
    params = call.params
    known = resources(workspaces_backend(call.account_id, call.region))
    wanted = params.get("GroupIds")
    with known.lock:
        rows = [
            {"groupId": g.resource_id, **g.details}
            for g in known.ip_groups.values()
            if wanted is None or g.resource_id in wanted
        ]
    chunk, token = paging.page(
        rows,
        params.get("NextToken"),
        params.get("MaxResults") or 25,
        paging.fingerprint("DescribeIpGroups", wanted),
        lambda: ServiceError("InvalidParameterValuesException", "The NextToken is not valid."),
    )
    result: dict[str, Any] = {"Result": chunk}
    if token:
        result["NextToken"] = token
    return result


@operation("workspaces", "DeleteIpGroup")
def delete_ip_group(call: Call) -> dict[str, Any]:
    known = resources(workspaces_backend(call.account_id, call.region))
    with known.lock:
        if known.ip_groups.pop(call.params["GroupId"], None) is None:
            raise ServiceError(
                "ResourceNotFoundException",
                f"The IP group {call.params['GroupId']} does not exist.",
            )
    return {}


# --- connection aliases ---------------------------------------------------------------------------


@operation("workspaces", "CreateConnectionAlias")
def create_connection_alias(call: Call) -> dict[str, Any]:
    params = call.params
    known = resources(workspaces_backend(call.account_id, call.region))
    with known.lock:
        if any(
            a.details["ConnectionString"] == params["ConnectionString"]
            for a in known.aliases.values()
        ):
            raise ServiceError(
                "ResourceAlreadyExistsException",
                f"A connection alias for {params['ConnectionString']} exists.",
            )
        alias_id = _new_id("wsca-", known.aliases)
        known.aliases[alias_id] = Taggable(
            alias_id,
            normalise_tags(params.get("Tags")),
            {
                "ConnectionString": params["ConnectionString"],
                "State": "CREATED",
                "OwnerAccountId": call.account_id,
            },
        )
    return {"AliasId": alias_id}


@operation("workspaces", "DescribeConnectionAliases")
def describe_connection_aliases(call: Call) -> dict[str, Any]:
    params = call.params
    if params.get("AliasIds") and params.get("ResourceId"):
        raise ServiceError(
            "InvalidParameterValuesException", "Specify AliasIds or ResourceId, not both."
        )
    known = resources(workspaces_backend(call.account_id, call.region))
    wanted = params.get("AliasIds")
    with known.lock:
        rows = [
            {"AliasId": a.resource_id, **a.details}
            for a in known.aliases.values()
            if (wanted is None or a.resource_id in wanted) and not params.get("ResourceId")
        ]
    chunk, token = paging.page(
        rows,
        params.get("NextToken"),
        params.get("Limit") or 25,
        paging.fingerprint("DescribeConnectionAliases", wanted),
        lambda: ServiceError("InvalidParameterValuesException", "The NextToken is not valid."),
    )
    result: dict[str, Any] = {"ConnectionAliases": chunk}
    if token:
        result["NextToken"] = token
    return result


@operation("workspaces", "DeleteConnectionAlias")
def delete_connection_alias(call: Call) -> dict[str, Any]:
    known = resources(workspaces_backend(call.account_id, call.region))
    with known.lock:
        if known.aliases.pop(call.params["AliasId"], None) is None:
            raise ServiceError(
                "ResourceNotFoundException",
                f"The connection alias {call.params['AliasId']} does not exist.",
            )
    return {}


# --- the tagging API ------------------------------------------------------------------------------


@resource_source(WorkSpacesBackend)
def _tagged(backend: Any) -> Iterator[TaggedResource]:
    prefix = f"arn:aws:workspaces:{backend.region_name}:{backend.account_id}"
    known = resources(backend)
    with known.lock:
        tables = (
            ("workspacebundle", list(_bundles(backend).values())),
            ("workspaceipgroup", list(known.ip_groups.values())),
            ("connectionalias", list(known.aliases.values())),
        )
    for kind, items in tables:
        for item in items:
            yield TaggedResource(
                arn=f"{prefix}:{kind}/{item.resource_id}",
                tags={t["Key"]: t["Value"] for t in item.tags},
                resource_type=f"workspaces:{kind}",
            )
