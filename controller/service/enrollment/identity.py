"""Is this machine that WorkSpace? One answer for the endpoint and for impostor detection.

A WorkSpace is known by its computer name and its IP address (DescribeWorkspaces). The endpoint
asks it of a caller (claimed name, source address); the Enrollment kind asks it of the instance that
registered with a WorkSpace's activation (the ComputerName and IPAddress its agent reports). Names
compare case-insensitively on the host part, since the agent reports an FQDN and Windows upper-cases
NetBIOS names.
"""

from __future__ import annotations

from controller.kinds.matching import LiveWorkspace, host_part


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
