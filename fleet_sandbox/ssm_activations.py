"""SSM hybrid activations, and the registration a machine's SSM agent performs with one.

moto has no activations. An activation can never be updated, its code is returned only once (at
create), and it stops registering machines when it expires (by the sandbox clock), is deleted, or
has registered ``RegistrationLimit`` machines; every instance that registers gets the activation's
tags. ``register_instance`` is what the fleet simulator calls when a WorkSpace boots.

Every code issued is remembered (``issued_codes()``, ``GET /_sandbox/issued-codes``) so the test
suite can prove that none of them ever appears in the controller's output (tests/secret_scan.py).
"""

from __future__ import annotations

import hmac
import os
import secrets
import string
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fleet_sandbox import admin, events, paging
from fleet_sandbox.clock import clock
from fleet_sandbox.extension import Call, ServiceError, operation
from fleet_sandbox.ssm_tags import check_tag_keys
from fleet_sandbox.state import Activation, ManagedInstance, fleet_state

MAX_VALIDITY = timedelta(days=30)
DEFAULT_VALIDITY = timedelta(hours=24)
DEFAULT_REGISTRATION_LIMIT = 1
DESCRIBE_DEFAULT_MAX_RESULTS = 50
# Standard tier: hybrid managed instances per account per Region (DESIGN.md, AWS service quotas).
STANDARD_TIER_INSTANCE_LIMIT = 1000
_CODE_ALPHABET = string.ascii_letters + string.digits + "+/"
_CODE_LENGTH = 20

ISSUED_CODES_ENV = "FLEET_SANDBOX_ISSUED_CODES_DIR"
"""When set (by the test suite's secret scan), every code issued is also appended to
``<dir>/<pid>.codes``, so codes issued by a sandbox in a process that has exited are still known."""

_issued_lock = threading.Lock()
_issued: list[str] = []  # never cleared, not even by a reset: a code stays a secret once issued


class RegistrationError(Exception):
    """A machine could not register; ``kind`` says why, the message never contains the code."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # unknown | expired | exhausted | code_mismatch | instance_limit
        self.message = message


def _parse_timestamp(value: Any) -> datetime:
    """JSON-protocol timestamps arrive as epoch seconds; accept ISO 8601 text as well."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    text = str(value)
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(
            "ValidationException", f"ExpirationDate '{text}' is not a valid timestamp"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _new_code() -> str:
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    _record_issued(code)
    return code


def _record_issued(code: str) -> None:
    with _issued_lock:
        _issued.append(code)
        directory = os.environ.get(ISSUED_CODES_ENV)
        if directory:
            with open(os.path.join(directory, f"{os.getpid()}.codes"), "a", encoding="utf-8") as f:
                f.write(code + "\n")


def issued_codes() -> list[str]:
    """Every activation code this process's sandbox has issued, in order (for the secret scan).

    The sandbox is the fake AWS: knowing its own codes is what lets the test suite prove the
    controller never printed one.
    """
    with _issued_lock:
        return list(_issued)


@admin.route("GET", "/_sandbox/issued-codes")
def _issued_codes_route(request: admin.AdminRequest) -> dict[str, Any]:
    """The codes issued so far, for a test process scanning output of a sandbox it did not start."""
    return {"codes": issued_codes()}


@operation("ssm", "CreateActivation")
def create_activation(call: Call) -> dict[str, Any]:
    params = call.params
    now = clock.now()
    if params.get("ExpirationDate") is None:
        expiry = now + DEFAULT_VALIDITY
    else:
        expiry = _parse_timestamp(params["ExpirationDate"])
        # AWS answers a business-rule violation of CreateActivation with ValidationException
        # (as it does for an IamRole it cannot find); the model lists no dedicated error for it.
        if expiry <= now:
            raise ServiceError(
                "ValidationException", "ExpirationDate must be a date and time in the future."
            )
        if expiry > now + MAX_VALIDITY:
            raise ServiceError(
                "ValidationException",
                "ExpirationDate cannot be more than 30 days in the future.",
            )
    tags = {tag["Key"]: tag["Value"] for tag in params.get("Tags") or []}
    check_tag_keys(list(tags))
    activation = Activation(
        activation_id=str(uuid.uuid4()),
        code=_new_code(),
        iam_role=params["IamRole"],
        registration_limit=params.get("RegistrationLimit") or DEFAULT_REGISTRATION_LIMIT,
        expiration_date=expiry,
        created_date=now,
        description=params.get("Description"),
        default_instance_name=params.get("DefaultInstanceName"),
        tags=tags,
    )
    fleet = fleet_state(call.account_id, call.region)
    with fleet.lock:
        fleet.activations[activation.activation_id] = activation
    return {"ActivationId": activation.activation_id, "ActivationCode": activation.code}


_FILTER_FIELDS = {
    "ActivationIds": lambda a: a.activation_id,
    "DefaultInstanceName": lambda a: a.default_instance_name,
    "IamRole": lambda a: a.iam_role,
}


def _describe(activation: Activation, now: datetime) -> dict[str, Any]:
    fields = {
        "ActivationId": activation.activation_id,
        "Description": activation.description,
        "DefaultInstanceName": activation.default_instance_name,
        "IamRole": activation.iam_role,
        "RegistrationLimit": activation.registration_limit,
        "RegistrationsCount": activation.registrations_count,
        "ExpirationDate": activation.expiration_date,
        "Expired": now >= activation.expiration_date,
        "CreatedDate": activation.created_date,
        "Tags": [{"Key": k, "Value": v} for k, v in activation.tags.items()],
    }
    return {key: value for key, value in fields.items() if value is not None}


@operation("ssm", "DescribeActivations")
def describe_activations(call: Call) -> dict[str, Any]:
    filters = call.params.get("Filters") or []
    for entry in filters:
        if not entry.get("FilterKey") or entry.get("FilterValues") is None:
            raise ServiceError("InvalidFilter", "Each filter needs a FilterKey and FilterValues.")
    fleet = fleet_state(call.account_id, call.region)
    with fleet.lock:
        activations = list(fleet.activations.values())
    selected = [
        a
        for a in activations
        if all(_FILTER_FIELDS[f["FilterKey"]](a) in f["FilterValues"] for f in filters)
    ]
    scope = paging.fingerprint("DescribeActivations", filters)
    chunk, token = paging.page(
        selected,
        call.params.get("NextToken"),
        call.params.get("MaxResults") or DESCRIBE_DEFAULT_MAX_RESULTS,
        scope,
        lambda: ServiceError("InvalidNextToken", "The specified token isn't valid."),
    )
    now = clock.now()
    result: dict[str, Any] = {"ActivationList": [_describe(a, now) for a in chunk]}
    if token:
        result["NextToken"] = token
    return result


@operation("ssm", "DeleteActivation")
def delete_activation(call: Call) -> dict[str, Any]:
    fleet = fleet_state(call.account_id, call.region)
    with fleet.lock:
        if fleet.activations.pop(call.params["ActivationId"], None) is None:
            raise ServiceError(
                "InvalidActivation",
                "The activation isn't valid. The activation might have been deleted, or the "
                "ActivationId and the ActivationCode don't match.",
            )
    return {}


def new_instance_id(existing: dict[str, ManagedInstance]) -> str:
    while True:
        candidate = "mi-" + secrets.token_hex(9)[:17]
        if candidate not in existing:
            return candidate


def register_instance(
    account_id: str,
    region: str,
    activation_id: str,
    activation_code: str,
    computer_name_fqdn: str,
    ip: str,
    workspace_id: str | None,
    platform: tuple[str, str, str] | None = None,
) -> ManagedInstance:
    """Register a machine the way the SSM agent does with an activation ID and code.

    Raises RegistrationError when AWS would refuse: unknown or deleted activation, a code that does
    not match, an expired or exhausted activation, or the account's standard-tier instance limit.
    ``platform`` is the (PlatformType, PlatformName, PlatformVersion) the agent reports.
    """
    fleet = fleet_state(account_id, region)
    now = clock.now()
    with fleet.lock:
        activation = fleet.activations.get(activation_id)
        if activation is None:
            raise RegistrationError(
                "unknown", f"activation {activation_id} does not exist (never created or deleted)"
            )
        if not hmac.compare_digest(activation.code.encode(), activation_code.encode()):
            raise RegistrationError(
                "code_mismatch", f"the activation code does not match activation {activation_id}"
            )
        if now >= activation.expiration_date:
            raise RegistrationError(
                "expired",
                f"activation {activation_id} expired at {activation.expiration_date.isoformat()}",
            )
        if activation.registrations_count >= activation.registration_limit:
            raise RegistrationError(
                "exhausted",
                f"activation {activation_id} has reached its registration limit "
                f"({activation.registration_limit})",
            )
        standard = fleet.activation_tier == "standard"
        if standard and len(fleet.instances) >= STANDARD_TIER_INSTANCE_LIMIT:
            raise RegistrationError(
                "instance_limit",
                f"the standard tier allows {STANDARD_TIER_INSTANCE_LIMIT} hybrid managed "
                "instances per account and Region",
            )
        activation.registrations_count += 1
        instance = ManagedInstance(
            instance_id=new_instance_id(fleet.instances),
            activation_id=activation_id,
            computer_name=computer_name_fqdn,
            ip_address=ip,
            registration_date=now,
            name=activation.default_instance_name,
            iam_role=activation.iam_role,
            ping_status="Online",
            last_ping=now,
            workspace_id=workspace_id,
            tags=dict(activation.tags),
        )
        if platform is not None:
            instance.platform_type, instance.platform_name, instance.platform_version = platform
        fleet.instances[instance.instance_id] = instance
    events.instance_registered(account_id, region, instance.instance_id)
    return instance
