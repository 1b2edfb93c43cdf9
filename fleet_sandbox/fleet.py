"""The fleet simulator: WorkSpaces that boot, register with SSM, go offline and come back.

A simulated WorkSpace reads the activation the controller publishes (an SSM parameter holding JSON
``{"id", "code", "region", "expiry"}``) and registers with it exactly as the SSM agent would, so
expired, deleted and exhausted activations fail the way they fail on AWS. Stopping, terminating or
rebuilding a WorkSpace (through the WorkSpaces API or the admin API here) takes its managed
instance offline; a rebuilt WorkSpace comes back as a new ``mi-`` on its next boot.

Admin API (``?region=`` selects the region): POST /_sandbox/fleet/workspaces, /registration,
/boot, /stop, /start, /reboot, /rebuild, /terminate; GET /_sandbox/fleet. Scenario sections
``workspaces`` (a list of groups like the POST body) and ``registration``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from fleet_sandbox import admin, events, scenario
from fleet_sandbox.clock import clock
from fleet_sandbox.periodic import Periodic
from fleet_sandbox.shapes import service_model
from fleet_sandbox.ssm_activations import RegistrationError, register_instance
from fleet_sandbox.state import (
    attached,
    fleet_state,
    ssm_backend,
    workspaces_backend,
)
from fleet_sandbox.workspaces import (
    ACTIONS,
    change_state,
    ensure_identity,
    lifecycle_listener,
    normalise_tags,
    purge_terminated,
)

log = logging.getLogger(__name__)

_DIRECTORY_ID = re.compile(r"d-[0-9a-f]{10}")

DEFAULT_DIRECTORY_NAME = "corp.example.com"
DEFAULT_BUNDLE_ID = "wsb-sandbox001"
DEFAULT_USER_PREFIX = "user"
DEFAULT_OS = "WINDOWS_SERVER_2022"
DEFAULT_RUNNING_MODE = "AUTO_STOP"
DEFAULT_COMPUTE = "STANDARD"
MAX_GROUP_SIZE = 5000

# The platform the SSM agent reports for a WorkSpace's operating system.
_PLATFORMS = {
    "WINDOWS_SERVER_2016": ("Windows", "Microsoft Windows Server 2016 Datacenter", "10.0.14393"),
    "WINDOWS_SERVER_2019": ("Windows", "Microsoft Windows Server 2019 Datacenter", "10.0.17763"),
    "WINDOWS_SERVER_2022": ("Windows", "Microsoft Windows Server 2022 Datacenter", "10.0.20348"),
    "WINDOWS_SERVER_2025": ("Windows", "Microsoft Windows Server 2025 Datacenter", "10.0.26100"),
    "WINDOWS_10": ("Windows", "Microsoft Windows 10 Enterprise", "10.0.19045"),
    "WINDOWS_11": ("Windows", "Microsoft Windows 11 Enterprise", "10.0.22631"),
    "AMAZON_LINUX_2": ("Linux", "Amazon Linux", "2"),
    "UBUNTU_22_04": ("Linux", "Ubuntu", "22.04"),
    "UBUNTU_24_04": ("Linux", "Ubuntu", "24.04"),
    "RHEL_8": ("Linux", "Red Hat Enterprise Linux", "8.10"),
    "ROCKY_8": ("Linux", "Rocky Linux", "8.10"),
}


@dataclass
class Link:
    """Which managed instance a WorkSpace's agent is registered as (and was, before rebuilds)."""

    instance_region: str | None = None
    current: str | None = None
    history: list[str] = field(default_factory=list)
    activation_id: str | None = None  # the activation ``current`` registered with
    spent: set[str] = field(default_factory=set)  # activations this machine may not use again


@dataclass
class FleetSim:
    """Simulator state of one account and region (hangs off moto's WorkSpaces backend)."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    default_directory_id: str | None = None
    directories_created: int = 0
    parameter_name: str | None = None
    links: dict[str, Link] = field(default_factory=dict)
    user_counters: dict[str, int] = field(default_factory=dict)


def sim_of(backend: Any) -> FleetSim:
    return attached(backend, FleetSim)


@cache
def _enum(shape_name: str) -> tuple[str, ...]:
    return tuple(service_model("workspaces").shape_for(shape_name).metadata["enum"])


@dataclass
class WorkspaceGroup:
    """A batch of WorkSpaces to create: the POST body and one entry of the scenario section."""

    count: int
    directory_id: str | None = None
    bundle_id: str = DEFAULT_BUNDLE_ID
    user_name_prefix: str = DEFAULT_USER_PREFIX
    tags: dict[str, str] = field(default_factory=dict)
    running_mode: str = DEFAULT_RUNNING_MODE
    compute_type: str = DEFAULT_COMPUTE
    os: str = DEFAULT_OS
    computer_name_prefix: str | None = None

    _FIELDS = {
        "count": "count",
        "directoryId": "directory_id",
        "bundleId": "bundle_id",
        "userNamePrefix": "user_name_prefix",
        "tags": "tags",
        "runningMode": "running_mode",
        "computeType": "compute_type",
        "os": "os",
        "computerNamePrefix": "computer_name_prefix",
    }

    @classmethod
    def from_dict(cls, data: Any) -> WorkspaceGroup:
        if not isinstance(data, dict):
            raise ValueError("a WorkSpaces group is a mapping")
        unknown = sorted(set(data) - set(cls._FIELDS))
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(cls._FIELDS)}"
            )
        count = data.get("count")
        if (
            isinstance(count, bool)
            or not isinstance(count, int)
            or not 1 <= count <= MAX_GROUP_SIZE
        ):
            raise ValueError(f"'count' must be an integer from 1 to {MAX_GROUP_SIZE}")
        values: dict[str, Any] = {"count": count}
        for key in ("directoryId", "bundleId", "userNamePrefix", "computerNamePrefix"):
            if data.get(key) is not None:
                if not isinstance(data[key], str) or not data[key]:
                    raise ValueError(f"'{key}' must be a non-empty string")
                values[cls._FIELDS[key]] = data[key]
        for key, shape in (
            ("runningMode", "RunningMode"),
            ("computeType", "Compute"),
            ("os", "OperatingSystemName"),
        ):
            if data.get(key) is not None:
                if data[key] not in _enum(shape):
                    raise ValueError(f"'{key}' must be one of {', '.join(_enum(shape))}")
                values[cls._FIELDS[key]] = data[key]
        tags = data.get("tags") or {}
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str | type(None)) for k, v in tags.items()
        ):
            raise ValueError("'tags' must map tag keys to string values")
        if len(tags) > 50:
            raise ValueError("a WorkSpace can have at most 50 tags")
        values["tags"] = {k: v or "" for k, v in tags.items()}
        return cls(**values)


# --- creating WorkSpaces ---------------------------------------------------------------------


def ensure_directory(account_id: str, region: str, directory_id: str | None = None) -> str:
    """A Simple AD directory registered with WorkSpaces (its own VPC and two subnets).

    Without an ID this is the fleet's default directory, created on first use. A well-formed ID
    that WorkSpaces does not know yet is created under that ID, so a scenario can name the
    directories its desired state selects (``d-`` + 10 hex digits).
    """
    from moto.ds.models import ds_backends
    from moto.ec2.models import ec2_backends

    backend = workspaces_backend(account_id, region)
    sim = sim_of(backend)
    with sim.lock:
        wanted = directory_id or sim.default_directory_id
        if wanted is not None and wanted in backend.workspace_directories:
            return wanted
        if directory_id is not None and not _DIRECTORY_ID.fullmatch(directory_id):
            raise ValueError(f"'{directory_id}' is not a directory ID (d- and 10 hex digits)")
        ec2 = ec2_backends[account_id][region]
        octet = sim.directories_created % 256
        vpc = ec2.create_vpc(cidr_block=f"10.{octet}.0.0/16")
        subnets = [
            ec2.create_subnet(vpc_id=vpc.id, cidr_block=cidr, availability_zone=f"{region}{zone}")
            for cidr, zone in ((f"10.{octet}.0.0/20", "a"), (f"10.{octet}.16.0/20", "b"))
        ]
        ds = ds_backends[account_id][region]
        created = ds.create_directory(
            region=region,
            name=DEFAULT_DIRECTORY_NAME,
            short_name="CORP",
            password="Sandbox-Passw0rd!",
            description="fleet simulator directory",
            size="Small",
            vpc_settings={"VpcId": vpc.id, "SubnetIds": [s.id for s in subnets]},
            tags=[],
        )
        sim.directories_created += 1
        if directory_id is not None and directory_id != created:
            _rename_directory(ds, created, directory_id)
            created = directory_id
        backend.register_workspace_directory(
            directory_id=created,
            subnet_ids=None,
            enable_self_service=False,
            tenancy=None,
            tags=[],
        )
        if directory_id is None:
            sim.default_directory_id = created
        return str(created)


def _rename_directory(ds: Any, old: str, new: str) -> None:
    """Give a directory moto just created the ID a scenario asked for."""
    directory = ds.directories.pop(old)
    for name, value in list(vars(directory).items()):
        if isinstance(value, str) and old in value:
            setattr(directory, name, value.replace(old, new))
    ds.directories[new] = directory


def create_workspaces(account_id: str, region: str, group: WorkspaceGroup) -> list[str]:
    """Create WorkSpaces through moto's backend, so the WorkSpaces API sees them."""
    backend = workspaces_backend(account_id, region)
    sim = sim_of(backend)
    directory_id = ensure_directory(account_id, region, group.directory_id)
    with sim.lock:
        first = sim.user_counters.get(group.user_name_prefix, 0) + 1
        sim.user_counters[group.user_name_prefix] = first + group.count - 1
        requests = [
            {
                "DirectoryId": directory_id,
                "UserName": f"{group.user_name_prefix}{first + n:04d}",
                "BundleId": group.bundle_id,
                "WorkspaceProperties": {
                    "RunningMode": group.running_mode,
                    "ComputeTypeName": group.compute_type,
                    "OperatingSystemName": group.os,
                },
                "Tags": [{"Key": k, "Value": v} for k, v in group.tags.items()],
            }
            for n in range(group.count)
        ]
        failed, pending = backend.create_workspaces(requests)
        if failed:
            raise ValueError(f"WorkSpaces refused the request: {failed[0].get('ErrorMessage')}")
        ids = [entry["WorkspaceId"] for entry in pending]
        events.api_call(
            account_id,
            region,
            "workspaces",
            "CreateWorkspaces",
            {"Workspaces": requests},
            {"FailedRequests": [], "PendingRequests": pending},
        )
        for n, workspace_id in enumerate(ids):
            workspace = backend.workspaces[workspace_id]
            workspace.tags = normalise_tags(workspace.tags)
            name = (
                f"{group.computer_name_prefix}{first + n:04d}"
                if group.computer_name_prefix
                else None
            )
            ensure_identity(backend, workspace, computer_name=name)
            sim.links[workspace_id] = Link()
        return ids


# --- booting: registration with the published activation -------------------------------------


@dataclass(frozen=True)
class Published:
    activation_id: str
    code: str
    region: str


def read_registration(account_id: str, region: str, parameter_name: str | None) -> Published:
    """The activation a WorkSpace finds in the published parameter (RegistrationError if none)."""
    if not parameter_name:
        raise RegistrationError(
            "parameter",
            "no registration parameter is configured (POST /_sandbox/fleet/registration)",
        )
    parameter = ssm_backend(account_id, region).get_parameter(parameter_name)
    if parameter is None:
        raise RegistrationError("parameter", f"parameter {parameter_name} does not exist")
    text = parameter.decrypt(parameter.value)
    try:
        data = json.loads(text or "")
        published = Published(str(data["id"]), str(data["code"]), str(data.get("region") or region))
    except (ValueError, KeyError, TypeError):
        raise RegistrationError(
            "parameter",
            f"parameter {parameter_name} does not hold JSON with 'id' and 'code'",
        ) from None
    from moto.ssm.models import ssm_backends

    if published.region not in ssm_backends[account_id]:
        raise RegistrationError(
            "parameter", f"parameter {parameter_name} names an unknown region {published.region}"
        )
    return published


def _live(account_id: str, link: Link) -> bool:
    if not link.current or not link.instance_region:
        return False
    return link.current in fleet_state(account_id, link.instance_region).instances


def _platform(workspace: Any) -> tuple[str, str, str] | None:
    """(type, name, version) the agent reports for the WorkSpace's operating system."""
    os_name = (workspace.workspace_properties or {}).get("OperatingSystemName")
    return _PLATFORMS.get(os_name or "")


def boot(
    account_id: str, region: str, workspace_ids: list[str] | None = None
) -> list[dict[str, Any]]:
    """Every AVAILABLE WorkSpace without a live managed instance registers with the activation.

    Returns one entry per WorkSpace that tried (and, for WorkSpaces named explicitly, per one that
    was skipped): ``{"workspaceId", "status": registered|failed|skipped, "instanceId"|"reason"}``.
    """
    backend = workspaces_backend(account_id, region)
    purge_terminated(backend)
    sim = sim_of(backend)
    explicit = workspace_ids is not None
    results: list[dict[str, Any]] = []
    with sim.lock:
        published: Published | None = None
        problem: RegistrationError | None = None
        targets = workspace_ids if workspace_ids is not None else list(backend.workspaces)
        for workspace_id in targets:
            workspace = backend.workspaces.get(workspace_id)
            if workspace is None:
                results.append(_result(workspace_id, "failed", reason="no such WorkSpace"))
                continue
            link = sim.links.setdefault(workspace_id, Link())
            if workspace.state != "AVAILABLE" or _live(account_id, link):
                if explicit:
                    reason = (
                        f"already registered as {link.current}"
                        if workspace.state == "AVAILABLE"
                        else f"the WorkSpace is {workspace.state}"
                    )
                    results.append(_result(workspace_id, "skipped", reason=reason))
                continue
            if published is None and problem is None:
                try:
                    published = read_registration(account_id, region, sim.parameter_name)
                except RegistrationError as error:
                    problem = error
            if problem is not None or published is None:
                results.append(_result(workspace_id, "failed", reason=str(problem)))
                continue
            if link.current and link.activation_id:
                # Deregistered while its agent kept the registration: "If you want to reregister
                # ..., you must use a different Activation Code and Activation ID than used to
                # register the machine previously." (DeregisterManagedInstance)
                link.spent.add(link.activation_id)
            if published.activation_id in link.spent:
                reason = (
                    f"this machine was deregistered from activation {published.activation_id}; "
                    "re-registering needs a new activation"
                )
                results.append(_result(workspace_id, "failed", reason=reason))
                continue
            ensure_identity(backend, workspace)
            directory = backend.workspace_directories.get(workspace.directory_id)
            domain = directory.directory_name if directory is not None else DEFAULT_DIRECTORY_NAME
            try:
                instance = register_instance(
                    account_id,
                    published.region,
                    published.activation_id,
                    published.code,
                    f"{workspace.computer_name}.{domain}",
                    workspace.ip_address,
                    workspace_id,
                    platform=_platform(workspace),
                )
            except RegistrationError as error:
                results.append(_result(workspace_id, "failed", reason=error.message))
                continue
            link.current, link.instance_region = instance.instance_id, published.region
            link.activation_id = published.activation_id
            link.history.append(instance.instance_id)
            results.append(_result(workspace_id, "registered", instance_id=instance.instance_id))
    return results


def _result(
    workspace_id: str, status: str, instance_id: str | None = None, reason: str | None = None
) -> dict[str, Any]:
    entry = {
        "workspaceId": workspace_id,
        "status": status,
        "instanceId": instance_id,
        "reason": reason,
    }
    return {k: v for k, v in entry.items() if v is not None}


@lifecycle_listener
def _follow_workspace(account_id: str, region: str, workspace_id: str, event: str) -> None:
    """The managed instance goes offline and online with its WorkSpace."""
    sim = sim_of(workspaces_backend(account_id, region))
    with sim.lock:
        link = sim.links.get(workspace_id)
        if link is None or not link.current or not link.instance_region:
            return
        fleet = fleet_state(account_id, link.instance_region)
        now = clock.now()
        with fleet.lock:
            instance = fleet.instances.get(link.current)
            if instance is not None:
                if event == "started":
                    instance.ping_status, instance.last_ping = "Online", now
                elif event == "rebooted":
                    instance.last_ping = now
                else:  # stopped, rebuilt, terminated
                    instance.ping_status, instance.last_ping = "ConnectionLost", now
        if event in ("rebuilt", "terminated"):
            link.current = None  # a rebuilt disk has lost the agent's registration


# --- background auto-registration -------------------------------------------------------------


class AutoRegistrar(Periodic):
    """Boots every region with a registration parameter every ``interval`` seconds.

    Used by the interactive sandbox so WorkSpaces register as soon as the controller publishes an
    activation; tests call ``boot`` through the admin API instead.
    """

    def __init__(self, interval: float) -> None:
        super().__init__("fleet-autoregister", interval, self.run_once)

    def run_once(self) -> int:
        from moto.workspaces.models import workspaces_backends

        registered = 0
        try:
            backends = list(workspaces_backends.iter_backends())
        except RuntimeError:  # the backend dicts changed under us (a reset): try next tick
            return 0
        for account_id, region, backend in backends:
            sim = backend.__dict__.get(f"_sandbox_{FleetSim.__name__}")
            if sim is None or not sim.parameter_name:
                continue
            for result in boot(account_id, region):
                if result["status"] == "registered":
                    registered += 1
                    log.info("%s registered as %s", result["workspaceId"], result["instanceId"])
        return registered


# --- admin API and scenario -------------------------------------------------------------------


def _ids(request: admin.AdminRequest, required: bool) -> list[str] | None:
    ids = request.field("workspaceIds", list, ... if required else None)
    if ids is not None and not all(isinstance(i, str) for i in ids):
        raise admin.AdminError(400, "'workspaceIds' must be a list of WorkSpace IDs")
    return ids  # type: ignore[no-any-return]


@admin.route("POST", "/_sandbox/fleet/workspaces")
def _post_workspaces(request: admin.AdminRequest) -> dict[str, Any]:
    try:
        group = WorkspaceGroup.from_dict(request.body)
        ids = create_workspaces(request.account_id, request.region, group)
    except ValueError as error:
        raise admin.AdminError(400, str(error)) from None
    return {"workspaceIds": ids}


def set_registration(account_id: str, region: str, parameter_name: str) -> None:
    sim = sim_of(workspaces_backend(account_id, region))
    with sim.lock:
        sim.parameter_name = parameter_name


@admin.route("POST", "/_sandbox/fleet/registration")
def _post_registration(request: admin.AdminRequest) -> dict[str, Any]:
    name = request.field("parameterName", str)
    if not name:
        raise admin.AdminError(400, "'parameterName' must not be empty")
    set_registration(request.account_id, request.region, name)
    return {"parameterName": name}


@admin.route("POST", "/_sandbox/fleet/boot")
def _post_boot(request: admin.AdminRequest) -> dict[str, Any]:
    results = boot(request.account_id, request.region, _ids(request, required=False))
    return {
        "results": results,
        "registered": sum(1 for r in results if r["status"] == "registered"),
        "failed": sum(1 for r in results if r["status"] == "failed"),
    }


def _power_route(action: str) -> None:
    def handler(request: admin.AdminRequest) -> dict[str, Any]:
        results = []
        operation = f"{action.title()}Workspaces"
        for workspace_id in _ids(request, required=True) or []:
            error = change_state(
                request.account_id, request.region, workspace_id, action, force=True
            )
            if error is None:
                # The switch stands for an admin calling the API: AWS records that call.
                events.api_call(
                    request.account_id,
                    request.region,
                    "workspaces",
                    operation,
                    {f"{action.title()}WorkspaceRequests": [{"WorkspaceId": workspace_id}]},
                    {"FailedRequests": []},
                )
                results.append({"workspaceId": workspace_id, "status": "ok"})
            else:
                results.append(
                    {
                        "workspaceId": workspace_id,
                        "status": "failed",
                        "errorCode": error[0],
                        "reason": error[1],
                    }
                )
        return {"results": results}

    admin.route("POST", f"/_sandbox/fleet/{action}")(handler)


for _action in ACTIONS:
    _power_route(_action)


@admin.route("GET", "/_sandbox/fleet")
def _get_fleet(request: admin.AdminRequest) -> dict[str, Any]:
    backend = workspaces_backend(request.account_id, request.region)
    purge_terminated(backend)
    sim = sim_of(backend)
    rows = []
    with sim.lock:
        for workspace in list(backend.workspaces.values()):
            ensure_identity(backend, workspace)
            link = sim.links.get(workspace.workspace_id) or Link()
            ping = None
            if link.current and link.instance_region:
                instance = fleet_state(request.account_id, link.instance_region).instances.get(
                    link.current
                )
                ping = instance.ping_status if instance is not None else None
            rows.append(
                {
                    "workspaceId": workspace.workspace_id,
                    "state": workspace.state,
                    "computerName": workspace.computer_name,
                    "ipAddress": workspace.ip_address,
                    "userName": workspace.user_name,
                    "directoryId": workspace.directory_id,
                    "bundleId": workspace.bundle_id,
                    "instanceId": link.current if ping is not None else None,
                    "pingStatus": ping,
                    "instanceIds": list(link.history),
                }
            )
        parameter = sim.parameter_name
    return {"workspaces": rows, "registration": {"parameterName": parameter}}


@scenario.section("workspaces")
def _scenario_workspaces(value: Any, account_id: str, region: str) -> None:
    if not isinstance(value, list):
        raise ValueError("'workspaces' is a list of groups like {count: 10, tags: {...}}")
    for index, group in enumerate(value):
        try:
            create_workspaces(account_id, region, WorkspaceGroup.from_dict(group))
        except ValueError as error:
            raise ValueError(f"group {index + 1}: {error}") from None


@scenario.section("registration")
def _scenario_registration(value: Any, account_id: str, region: str) -> None:
    if not isinstance(value, dict) or set(value) != {"parameterName"}:
        raise ValueError("'registration' is {parameterName: /the/published/parameter}")
    if not isinstance(value["parameterName"], str) or not value["parameterName"]:
        raise ValueError("'parameterName' must be a non-empty string")
    set_registration(account_id, region, value["parameterName"])
