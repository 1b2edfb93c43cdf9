"""State the sandbox keeps beside moto's: activations, managed instances and their agents.

Extension state hangs off moto's own backend objects (one per account and region), so moto's reset
clears it with everything else and a second region is a second, independent fleet.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from fleet_sandbox.machine import AgentModel

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
    agent_version: str = "3.3.3572.0"  # ENV_VAR interpolation needs 3.3.2746.0 or later
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
