"""Which managed instance is which WorkSpace (pure).

SSM knows nothing of WorkSpaces: a hybrid instance only reports its computer name (an FQDN) and
IP address. The first match is by computer name (the FQDN's host part, case-insensitive), then by
IP address; among several candidates the Online, most recently registered instance wins (a rebuilt
WorkSpace registers again and leaves its old instance behind). Once matched, the controller tags the
instance with ``fleet-controller/workspace-id``, and that tag is the join key from then on.

Private addresses repeat across networks, so an address alone does not make a machine the
WorkSpace: another team's server registered in the same account may report it. The IP fallback
takes an instance that reports no computer name or the WorkSpace's own, or one this controller
registered (its owner tag, copied from our activation); never one that reports another name and
is not ours.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.contract.ownership import OWNER_TAG, WORKSPACE_ID_TAG


@dataclass(frozen=True, slots=True)
class LiveWorkspace:
    workspace_id: str
    directory_id: str
    bundle_id: str
    state: str
    user_name: str
    computer_name: str
    ip_address: str
    running_mode: str = ""
    compute_type: str = ""
    operating_system: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LiveInstance:
    instance_id: str
    computer_name: str
    ip_address: str
    ping_status: str
    registration_date: datetime
    activation_id: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass
class Matches:
    by_workspace: dict[str, LiveInstance] = field(default_factory=dict)
    unmatched_instances: list[LiveInstance] = field(default_factory=list)
    how: dict[str, str] = field(
        default_factory=dict
    )  # workspace id -> join-tag | computer-name | ip


def host_part(computer_name: str) -> str:
    return computer_name.split(".", 1)[0].strip().lower()


def _preference(instance: LiveInstance) -> tuple[bool, datetime, str]:
    """Sort key: Online first, then most recently registered, then id for determinism."""
    return (instance.ping_status == "Online", instance.registration_date, instance.instance_id)


def _may_match_by_ip(instance: LiveInstance, workspace: LiveWorkspace, controller_id: str) -> bool:
    return (
        not instance.computer_name
        or same_computer(instance.computer_name, workspace)
        or instance.tags.get(OWNER_TAG) == controller_id
    )


def match_instances(
    workspaces: Iterable[LiveWorkspace],
    instances: Iterable[LiveInstance],
    order: tuple[str, ...] = ("computerName", "ipAddress"),
    controller_id: str = "",
) -> Matches:
    workspaces = list(workspaces)
    instances = list(instances)
    by_join: dict[str, list[LiveInstance]] = defaultdict(list)
    by_name: dict[str, list[LiveInstance]] = defaultdict(list)
    by_ip: dict[str, list[LiveInstance]] = defaultdict(list)
    for instance in instances:
        joined = instance.tags.get(WORKSPACE_ID_TAG)
        if joined:
            by_join[joined].append(instance)
        elif instance.computer_name or instance.ip_address:
            # An instance already joined to some WorkSpace is never re-matched by name or IP.
            if instance.computer_name:
                by_name[host_part(instance.computer_name)].append(instance)
            if instance.ip_address:
                by_ip[instance.ip_address].append(instance)

    matches = Matches()
    taken: set[str] = set()
    for workspace in sorted(workspaces, key=lambda w: w.workspace_id):
        candidates: list[tuple[str, LiveInstance]] = [
            ("join-tag", i) for i in by_join.get(workspace.workspace_id, [])
        ]
        if not any(i.ping_status == "Online" for _, i in candidates):
            # No live joined instance (never joined, or rebuilt): look for a new registration,
            # by each method in order; a later method is only a fallback.
            for method in order:
                found: list[LiveInstance] = []
                if method == "computerName" and workspace.computer_name:
                    found = by_name.get(host_part(workspace.computer_name), [])
                elif method == "ipAddress" and workspace.ip_address:
                    found = [
                        i
                        for i in by_ip.get(workspace.ip_address, [])
                        if _may_match_by_ip(i, workspace, controller_id)
                    ]
                found = [i for i in found if i.instance_id not in taken]
                if found:
                    how = "computer-name" if method == "computerName" else "ip"
                    candidates += [(how, i) for i in found]
                    break
        candidates = [(how, i) for how, i in candidates if i.instance_id not in taken]
        if not candidates:
            continue
        how, best = max(candidates, key=lambda pair: _preference(pair[1]))
        matches.by_workspace[workspace.workspace_id] = best
        matches.how[workspace.workspace_id] = how
        taken.add(best.instance_id)

    matches.unmatched_instances = sorted(
        (i for i in instances if i.instance_id not in taken),
        key=lambda i: i.instance_id,
    )
    return matches


def live_workspace(item: dict[str, Any], tags: dict[str, str]) -> LiveWorkspace:
    """A DescribeWorkspaces item and its tags as the matcher sees it."""
    properties = item.get("WorkspaceProperties", {}) or {}
    return LiveWorkspace(
        workspace_id=item["WorkspaceId"],
        directory_id=item.get("DirectoryId", ""),
        bundle_id=item.get("BundleId", ""),
        state=item.get("State", ""),
        user_name=item.get("UserName", ""),
        computer_name=item.get("ComputerName", ""),
        ip_address=item.get("IpAddress", ""),
        running_mode=properties.get("RunningMode", ""),
        compute_type=properties.get("ComputeTypeName", ""),
        operating_system=properties.get("OperatingSystemName", ""),
        tags=tags,
    )


# -- is this machine that WorkSpace? (the enrollment endpoint asks it of a caller, the Enrollment
# kind of the instance that registered with a WorkSpace's activation)


def same_computer(name: str, workspace: LiveWorkspace) -> bool:
    return bool(workspace.computer_name) and host_part(name) == host_part(workspace.computer_name)


def mismatch(name: str, address: str, workspace: LiveWorkspace) -> str | None:
    """Why a machine reporting ``name`` and ``address`` is not ``workspace`` (None: it is)."""
    problems = []
    if not same_computer(name, workspace):
        problems.append(
            f"reports computer name {name or '(none)'!r}, not {workspace.computer_name!r}"
        )
    if address != workspace.ip_address:
        problems.append(f"reports address {address or '(none)'}, not {workspace.ip_address}")
    return "; ".join(problems) or None
