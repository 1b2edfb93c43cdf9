"""State the sandbox keeps beside moto's: activations, managed instances and their agents.

Extension state hangs off moto's own backend objects (one per account and region), so moto's reset
clears it with everything else and a second region is a second, independent fleet.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")

_attach_lock = threading.Lock()


def attached(backend: Any, cls: type[T]) -> T:
    """The ``cls`` instance stored on a moto backend, created on first use."""
    key = f"_sandbox_{cls.__name__}"
    with _attach_lock:
        existing = backend.__dict__.get(key)
        if existing is None:
            existing = cls()
            backend.__dict__[key] = existing
        return existing  # type: ignore[no-any-return]


def ssm_backend(account_id: str, region: str) -> Any:
    from moto.ssm.models import ssm_backends

    return ssm_backends[account_id][region]


def workspaces_backend(account_id: str, region: str) -> Any:
    from moto.workspaces.models import workspaces_backends

    return workspaces_backends[account_id][region]


@dataclass
class Activation:
    activation_id: str
    code: str
    iam_role: str
    registration_limit: int
    expiration_date: datetime
    created_date: datetime
    description: str | None = None
    default_instance_name: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    registrations_count: int = 0


@dataclass
class InstalledFile:
    version: str | None = None
    size: int = 0
    is_directory: bool = False


@dataclass
class WindowsService:
    state: str = "Running"  # Running | Stopped | Paused ...
    start_type: str = "Automatic"  # Automatic | Manual | Disabled


@dataclass
class AgentModel:
    """What the simulated SSM agent can observe on its Windows machine.

    Keys are stored case-folded where Windows is case-insensitive (paths, registry keys, value
    names, service names); MSI product codes upper-case with braces.
    """

    files: dict[str, InstalledFile] = field(default_factory=dict)
    # (hive, key) -> value name -> value; hive is HKLM/HKCU/...; view "64" or "32" is part of key
    registry: dict[tuple[str, str, str], dict[str, str | int]] = field(default_factory=dict)
    services: dict[str, WindowsService] = field(default_factory=dict)
    msi_products: dict[str, str] = field(default_factory=dict)  # product code -> version
    # What aws:configurePackage believes is installed (Distributor's own record), name -> version.
    distributor_packages: dict[str, str] = field(default_factory=dict)
    # Outcome of a custom detection script, keyed by sha256 of its text: (exit code, stdout).
    script_results: dict[str, tuple[int, str]] = field(default_factory=dict)


@dataclass
class ManagedInstance:
    instance_id: str  # mi- + 17 hex
    activation_id: str
    computer_name: str  # FQDN, e.g. WSAMZN-ABC123.corp.example.com
    ip_address: str
    registration_date: datetime
    name: str | None = None  # the activation's DefaultInstanceName
    iam_role: str = ""
    ping_status: str = "Online"  # Online | ConnectionLost | Inactive
    last_ping: datetime | None = None
    platform_type: str = "Windows"
    platform_name: str = "Microsoft Windows Server 2022 Datacenter"
    platform_version: str = "10.0.20348"
    agent_version: str = "3.3.1142.0"
    workspace_id: str | None = None  # the simulator's link, invisible through the AWS API
    tags: dict[str, str] = field(default_factory=dict)
    agent: AgentModel = field(default_factory=AgentModel)


@dataclass
class FleetState:
    """Activations and managed instances of one account and region."""

    activations: dict[str, Activation] = field(default_factory=dict)
    instances: dict[str, ManagedInstance] = field(default_factory=dict)
    activation_tier: str = (
        "standard"  # the SSM service setting /ssm/managed-instance/activation-tier
    )
    activation_tier_modified: datetime | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)


def fleet_state(account_id: str, region: str) -> FleetState:
    return attached(ssm_backend(account_id, region), FleetState)
