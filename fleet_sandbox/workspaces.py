"""WorkSpaces as the controller sees them, where moto's model falls short.

moto's WorkSpaces have no ComputerName or IpAddress, ignore Limit/NextToken, let tags pile up as
duplicates (and crash on an unknown resource), and lack Stop/Start/Reboot/Rebuild and DeleteTags.
Here every WorkSpace gets a unique computer name (``WSAMZN-`` + 8 characters) and an IP address in
its directory's subnet; state changes follow the rules in the WorkSpaces API reference and are
announced to ``@lifecycle_listener`` functions (the fleet simulator moves the WorkSpace's managed
instance offline and online with them).
"""

from __future__ import annotations

import ipaddress
import secrets
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from botocore.model import StructureShape

from fleet_sandbox import paging, workspace_lifecycle
from fleet_sandbox.clock import clock
from fleet_sandbox.extension import Call, ServiceError, operation
from fleet_sandbox.shapes import service_model
from fleet_sandbox.state import attached, workspaces_backend
from fleet_sandbox.tagging import note_tagged

DESCRIBE_LIMIT = 25  # Limit: 1..25 (botocore model); 25 when omitted
MAX_TAGS_PER_RESOURCE = 50  # "Each WorkSpaces resource can have a maximum of 50 tags."
# "the TERMINATED state is returned only briefly before the WorkSpace directory metadata is
# cleaned up": after this long (sandbox clock) a terminated WorkSpace is gone from the API.
TERMINATED_RETENTION = timedelta(minutes=5)
_NAME_ALPHABET = string.ascii_uppercase + string.digits
_FALLBACK_NETWORK = "10.0.0.0/16"

Listener = Callable[[str, str, str, str], None]
"""(account_id, region, workspace_id, event) with event stopped|started|rebooted|rebuilt|terminated."""

_listeners: list[Listener] = []


def lifecycle_listener(listener: Listener) -> Listener:
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


@dataclass
class WorkspacesExtra:
    """Identity bookkeeping beside moto's WorkSpaces backend (names and addresses stay unique)."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    names: set[str] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    next_host: dict[str, int] = field(default_factory=dict)
    placements: int = 0
    terminated_at: dict[str, datetime] = field(default_factory=dict)
    address_pool: str | None = None  # a CIDR every address comes from instead of the subnets


def extra_of(backend: Any) -> WorkspacesExtra:
    return attached(backend, WorkspacesExtra)


def _subnet_cidrs(backend: Any, directory_id: str, extra: WorkspacesExtra) -> list[tuple[str, str]]:
    """(subnet id, CIDR) of the WorkSpace's directory, as moto's EC2 knows them.

    Addresses EC2 already gave to network interfaces there (the directory's DNS servers) are
    marked used, so a WorkSpace never shares one.
    """
    directory = backend.workspace_directories.get(directory_id)
    if directory is None:
        return []
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[backend.account_id][backend.region_name]
    found = []
    for subnet_id in directory.subnet_ids or []:
        try:
            found.append((subnet_id, ec2.get_subnet(subnet_id).cidr_block))
        except Exception:  # a subnet deleted behind the directory's back: skip it
            continue
    for eni in list(getattr(ec2, "enis", {}).values()):
        if getattr(eni, "private_ip_address", None):
            extra.addresses.add(eni.private_ip_address)
    return found


def _allocate_address(extra: WorkspacesExtra, cidr: str) -> str | None:
    network = ipaddress.ip_network(cidr, strict=False)
    host = extra.next_host.get(cidr, 4)  # AWS reserves the first four addresses of a subnet
    while host < network.num_addresses - 1:
        candidate = str(network.network_address + host)
        host += 1
        if candidate not in extra.addresses:
            extra.next_host[cidr] = host
            extra.addresses.add(candidate)
            return candidate
    extra.next_host[cidr] = host
    return None


def new_computer_name(extra: WorkspacesExtra) -> str:
    while True:
        name = "WSAMZN-" + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(8))
        if name not in extra.names:
            return name


def ensure_identity(backend: Any, workspace: Any, computer_name: str | None = None) -> None:
    """Give a WorkSpace its computer name, subnet and IP address if it has none yet."""
    extra = extra_of(backend)
    with extra.lock:
        if not workspace.computer_name:
            workspace.computer_name = computer_name or new_computer_name(extra)
        extra.names.add(workspace.computer_name)
        if getattr(workspace, "ip_address", ""):
            return
        pool = extra.address_pool
        subnets = [] if pool else _subnet_cidrs(backend, workspace.directory_id, extra)
        address = None
        for attempt in range(len(subnets)):
            subnet_id, cidr = subnets[(extra.placements + attempt) % len(subnets)]
            address = _allocate_address(extra, cidr)
            if address is not None:
                workspace.subnet_id = subnet_id
                break
        extra.placements += 1
        if address is None:
            address = _allocate_address(extra, pool or _FALLBACK_NETWORK)
        workspace.ip_address = address or ""


def normalise_tags(tags: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """WorkSpaces tag values are optional; store a missing one as "" (one entry per key)."""
    merged: dict[str, str] = {}
    for tag in tags or []:
        merged[tag["Key"]] = tag.get("Value") or ""
    return [{"Key": k, "Value": v} for k, v in merged.items()]


def _notify(account_id: str, region: str, workspace_id: str, event: str) -> None:
    for listener in list(_listeners):
        listener(account_id, region, workspace_id, event)


def _reached(backend: Any, workspace: Any, state: str) -> None:
    if state == "TERMINATED":
        extra = extra_of(backend)
        with extra.lock:
            extra.terminated_at[workspace.workspace_id] = clock.now()


def purge_terminated(backend: Any) -> None:
    """Catch up with the clock: finish due transitions (``workspace_lifecycle``), then drop
    WorkSpaces whose TERMINATED state has outlived its brief visibility."""
    workspace_lifecycle.settle(
        backend, _notify, lambda workspace, state: _reached(backend, workspace, state)
    )
    extra = extra_of(backend)
    now = clock.now()
    with extra.lock:
        for workspace_id, when in list(extra.terminated_at.items()):
            if now - when > TERMINATED_RETENTION:
                backend.workspaces.pop(workspace_id, None)
                del extra.terminated_at[workspace_id]


@cache
def _property_members() -> frozenset[str]:
    shape = service_model("workspaces").shape_for("WorkspaceProperties")
    assert isinstance(shape, StructureShape)
    return frozenset(shape.members)


def describe(workspace: Any) -> dict[str, Any]:
    """A WorkSpace as DescribeWorkspaces returns it."""
    properties = {
        k: v
        for k, v in (workspace.workspace_properties or {}).items()
        if k in _property_members() and v not in (None, "")
    }
    item: dict[str, Any] = {
        "WorkspaceId": workspace.workspace_id,
        "DirectoryId": workspace.directory_id,
        "UserName": workspace.user_name,
        "IpAddress": getattr(workspace, "ip_address", "") or None,
        "State": workspace.state,
        "BundleId": workspace.bundle_id,
        "SubnetId": getattr(workspace, "subnet_id", "") or None,
        "ErrorMessage": workspace.error_message or None,
        "ErrorCode": workspace.error_code or None,
        "ComputerName": workspace.computer_name or None,
        "VolumeEncryptionKey": workspace.volume_encryption_key or None,
        "WorkspaceProperties": properties,
        "ModificationStates": list(workspace.modification_states or []),
    }
    for attribute, member in (
        ("user_volume_encryption_enabled", "UserVolumeEncryptionEnabled"),
        ("root_volume_encryption_enabled", "RootVolumeEncryptionEnabled"),
    ):
        value = getattr(workspace, attribute, None)
        if isinstance(value, bool):
            item[member] = value
    return {k: v for k, v in item.items() if v is not None}


_SELECTORS = ("WorkspaceIds", "DirectoryId", "BundleId", "WorkspaceName")


@operation("workspaces", "DescribeWorkspaces")
def describe_workspaces(call: Call) -> dict[str, Any]:
    params = call.params
    given = [name for name in _SELECTORS if params.get(name)]
    if len(given) > 1:
        raise ServiceError(
            "InvalidParameterValuesException",
            "An invalid number of parameters provided with DescribeWorkspaces. Only one of the "
            "following are allowed to be specified: BundleId, DirectoryId, WorkSpaceIds, Filters.",
        )
    if params.get("UserName") and not params.get("DirectoryId"):
        raise ServiceError(
            "InvalidParameterValuesException",
            "The DirectoryId parameter is required when UserName is used.",
        )
    backend = workspaces_backend(call.account_id, call.region)
    purge_terminated(backend)
    selected = []
    for workspace in list(backend.workspaces.values()):
        if not workspace_lifecycle.visible(backend, workspace.workspace_id):
            continue  # just created: not listed yet
        if params.get("WorkspaceIds") and workspace.workspace_id not in params["WorkspaceIds"]:
            continue
        if params.get("DirectoryId") and workspace.directory_id != params["DirectoryId"]:
            continue
        if params.get("UserName") and workspace.user_name != params["UserName"]:
            continue
        if params.get("BundleId") and workspace.bundle_id != params["BundleId"]:
            continue
        if params.get("WorkspaceName"):
            continue  # user-decoupled WorkSpaces are not simulated
        selected.append(workspace)
    scope = paging.fingerprint("DescribeWorkspaces", {k: params.get(k) for k in _SELECTORS})
    chunk, token = paging.page(
        selected,
        params.get("NextToken"),
        params.get("Limit") or DESCRIBE_LIMIT,
        scope,
        lambda: ServiceError("InvalidParameterValuesException", "The NextToken is not valid."),
    )
    for workspace in chunk:
        ensure_identity(backend, workspace)
    result: dict[str, Any] = {"Workspaces": [describe(w) for w in chunk]}
    if token:
        result["NextToken"] = token
    return result


@operation("workspaces", "CreateWorkspaces")
def create_workspaces(call: Call) -> Any:
    """moto creates them (AVAILABLE at once); here each gets its identity and de-duplicated tags
    and starts PENDING, unlisted for a moment (``workspace_lifecycle``)."""
    backend = workspaces_backend(call.account_id, call.region)
    before = set(backend.workspaces)
    answer = call.delegate()
    for workspace in list(backend.workspaces.values()):
        workspace.tags = normalise_tags(workspace.tags)
        ensure_identity(backend, workspace)
        if workspace.workspace_id not in before:
            workspace_lifecycle.created(backend, workspace)
    return answer


# --- tags: one resource per call -------------------------------------------------------------


TaggedLookup = Callable[[Any, str], Any]
"""(backend, resource id) -> a resource with a ``tags`` list, or None (other modules' types)."""

_lookups: list[TaggedLookup] = []


def tagged_resource_lookup(lookup: TaggedLookup) -> TaggedLookup:
    if lookup not in _lookups:
        _lookups.append(lookup)
    return lookup


def _tagged(backend: Any, resource_id: str) -> Any:
    purge_terminated(backend)
    tables = {
        "ws-": backend.workspaces,
        "d-": backend.workspace_directories,
        "wsi-": backend.workspace_images,
    }
    for prefix, table in tables.items():
        if resource_id.startswith(prefix) and resource_id in table:
            return table[resource_id]
    for lookup in list(_lookups):
        found = lookup(backend, resource_id)
        if found is not None:
            return found
    raise ServiceError(
        "ResourceNotFoundException", f"The resource {resource_id} could not be found."
    )


def resource_tags(call: Call, resource_id: str) -> dict[str, str]:
    """A WorkSpaces resource's tags now (ResourceNotFoundException when there is none)."""
    backend = workspaces_backend(call.account_id, call.region)
    return {t["Key"]: t["Value"] for t in normalise_tags(_tagged(backend, resource_id).tags)}


@operation("workspaces", "DescribeTags")
def describe_tags(call: Call) -> dict[str, Any]:
    backend = workspaces_backend(call.account_id, call.region)
    resource = _tagged(backend, call.params["ResourceId"])
    return {"TagList": normalise_tags(resource.tags)}


@operation("workspaces", "CreateTags")
def create_tags(call: Call) -> dict[str, Any]:
    backend = workspaces_backend(call.account_id, call.region)
    resource = _tagged(backend, call.params["ResourceId"])
    new = normalise_tags(call.params["Tags"])
    reserved = [t["Key"] for t in new if t["Key"].lower().startswith("aws:")]
    if reserved:
        raise ServiceError(
            "InvalidParameterValuesException",
            f"Tag keys beginning with 'aws:' are reserved: {', '.join(reserved)}",
        )
    with extra_of(backend).lock:
        merged = {t["Key"]: t["Value"] for t in normalise_tags(resource.tags)}
        merged.update({t["Key"]: t["Value"] for t in new})
        if len(merged) > MAX_TAGS_PER_RESOURCE:
            raise ServiceError(
                "ResourceLimitExceededException",
                f"The resource {call.params['ResourceId']} can have at most "
                f"{MAX_TAGS_PER_RESOURCE} tags.",
            )
        resource.tags = [{"Key": k, "Value": v} for k, v in merged.items()]
    return {}


@operation("workspaces", "DeleteTags")
def delete_tags(call: Call) -> dict[str, Any]:
    backend = workspaces_backend(call.account_id, call.region)
    resource = _tagged(backend, call.params["ResourceId"])
    doomed = set(call.params["TagKeys"])
    with extra_of(backend).lock:
        resource.tags = [t for t in normalise_tags(resource.tags) if t["Key"] not in doomed]
    note_tagged(call.account_id, call.region, workspaces_arn(call, call.params["ResourceId"]))
    return {}


_ARN_TYPES = {
    "ws-": "workspace",
    "d-": "directory",
    "wsi-": "workspaceimage",
    "wsb-": "workspacebundle",
    "wsipg-": "workspaceipgroup",
    "wsca-": "connectionalias",
}


def workspaces_arn(call: Call, resource_id: str) -> str:
    kind = next(t for p, t in _ARN_TYPES.items() if resource_id.startswith(p))
    return f"arn:aws:workspaces:{call.region}:{call.account_id}:{kind}/{resource_id}"


# --- state changes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    allowed_states: frozenset[str] | None  # None: every state but the excluded ones
    excluded_states: frozenset[str]
    needs_stoppable_mode: bool
    target: str
    event: str


_RULES = {
    # "You cannot stop a WorkSpace unless it has a running mode of AutoStop or Manual and a state
    # of AVAILABLE, IMPAIRED, UNHEALTHY, or ERROR."
    "stop": _Rule(
        frozenset({"AVAILABLE", "IMPAIRED", "UNHEALTHY", "ERROR"}),
        frozenset(),
        True,
        "STOPPED",
        "stopped",
    ),
    # "... unless it has a running mode of AutoStop or Manual and a state of STOPPED."
    "start": _Rule(frozenset({"STOPPED"}), frozenset(), True, "AVAILABLE", "started"),
    # "You cannot reboot a WorkSpace unless its state is AVAILABLE, UNHEALTHY, or REBOOTING."
    "reboot": _Rule(
        frozenset({"AVAILABLE", "UNHEALTHY", "REBOOTING"}),
        frozenset(),
        False,
        "AVAILABLE",
        "rebooted",
    ),
    # "... unless its state is AVAILABLE, ERROR, UNHEALTHY, STOPPED, or REBOOTING."
    "rebuild": _Rule(
        frozenset({"AVAILABLE", "ERROR", "UNHEALTHY", "STOPPED", "REBOOTING"}),
        frozenset(),
        False,
        "AVAILABLE",
        "rebuilt",
    ),
    # "You can terminate a WorkSpace that is in any state except SUSPENDED."
    "terminate": _Rule(None, frozenset({"SUSPENDED"}), False, "TERMINATED", "terminated"),
}
ACTIONS = tuple(_RULES)


def change_state(
    account_id: str, region: str, workspace_id: str | None, action: str, force: bool = False
) -> tuple[str, str] | None:
    """Apply ``action`` to one WorkSpace: None on success, else (ErrorCode, ErrorMessage).

    Through the API the change takes time (``workspace_lifecycle``). ``force`` (the fleet
    simulator's power switch) acts at once and ignores the running-mode rule, so an ALWAYS_ON
    WorkSpace can be taken down; the state rules still apply.
    """
    rule = _RULES[action]
    backend = workspaces_backend(account_id, region)
    purge_terminated(backend)
    extra = extra_of(backend)
    with extra.lock:
        workspace = backend.workspaces.get(workspace_id) if workspace_id else None
        if workspace is None:
            return "ResourceNotFoundException", f"The WorkSpace {workspace_id} could not be found."
        if action == "terminate" and workspace.state in ("TERMINATED", "TERMINATING"):
            return None
        state = workspace.state
        if state in rule.excluded_states or (
            rule.allowed_states is not None and state not in rule.allowed_states
        ):
            return (
                "InvalidResourceStateException",
                f"The WorkSpace {workspace_id} is {state}; it cannot be {rule.event} from that state.",
            )
        mode = (workspace.workspace_properties or {}).get("RunningMode", "ALWAYS_ON")
        if rule.needs_stoppable_mode and not force and mode not in ("AUTO_STOP", "MANUAL"):
            return (
                "UnsupportedWorkspaceConfigurationException",
                f"The WorkSpace {workspace_id} has running mode {mode}; only AUTO_STOP and MANUAL "
                f"WorkSpaces can be {rule.event}.",
            )
        if not force:  # the WorkSpaces API: asynchronous, on the sandbox clock
            workspace_lifecycle.begin(backend, workspace, action, rule.target, rule.event)
            return None
        workspace.state = rule.target
        if rule.target == "TERMINATED":
            extra.terminated_at[workspace.workspace_id] = clock.now()
    _notify(account_id, region, workspace.workspace_id, rule.event)
    return None


def _batch(call: Call, requests_key: str, action: str) -> dict[str, Any]:
    failed = []
    for request in call.params[requests_key]:
        workspace_id = request.get("WorkspaceId")
        error = change_state(call.account_id, call.region, workspace_id, action)
        if error is not None:
            entry = {"WorkspaceId": workspace_id, "ErrorCode": error[0], "ErrorMessage": error[1]}
            failed.append({k: v for k, v in entry.items() if v is not None})
    return {"FailedRequests": failed}


@operation("workspaces", "StopWorkspaces")
def stop_workspaces(call: Call) -> dict[str, Any]:
    return _batch(call, "StopWorkspaceRequests", "stop")


@operation("workspaces", "StartWorkspaces")
def start_workspaces(call: Call) -> dict[str, Any]:
    return _batch(call, "StartWorkspaceRequests", "start")


@operation("workspaces", "RebootWorkspaces")
def reboot_workspaces(call: Call) -> dict[str, Any]:
    return _batch(call, "RebootWorkspaceRequests", "reboot")


@operation("workspaces", "RebuildWorkspaces")
def rebuild_workspaces(call: Call) -> dict[str, Any]:
    return _batch(call, "RebuildWorkspaceRequests", "rebuild")


@operation("workspaces", "TerminateWorkspaces")
def terminate_workspaces(call: Call) -> dict[str, Any]:
    return _batch(call, "TerminateWorkspaceRequests", "terminate")
