"""SSM service settings the fleet depends on: the managed-instance activation tier.

The standard tier allows 1,000 hybrid managed instances per account and Region; a larger fleet
needs the advanced tier (``/ssm/managed-instance/activation-tier`` = ``advanced``). Other settings
answer ServiceSettingNotFound: the sandbox does not pretend to know them.
"""

from __future__ import annotations

from typing import Any

from fleet_sandbox.clock import clock
from fleet_sandbox.extension import Call, ServiceError, operation
from fleet_sandbox.state import fleet_state

ACTIVATION_TIER = "/ssm/managed-instance/activation-tier"
TIERS = ("standard", "advanced")


def _setting_path(call: Call) -> str:
    setting_id: str = call.params["SettingId"]
    marker = ":servicesetting"
    path = setting_id.split(marker, 1)[1] if marker in setting_id else setting_id
    if path != ACTIVATION_TIER:
        raise ServiceError(
            "ServiceSettingNotFound", f"The service setting {setting_id} is not found"
        )
    return path


def _describe(call: Call, path: str) -> dict[str, Any]:
    fleet = fleet_state(call.account_id, call.region)
    return {
        "SettingId": path,
        "SettingValue": fleet.activation_tier,
        "LastModifiedDate": fleet.activation_tier_modified or clock.now(),
        "LastModifiedUser": "System" if fleet.activation_tier_modified is None else "sandbox",
        "ARN": f"arn:aws:ssm:{call.region}:{call.account_id}:servicesetting{path}",
        "Status": "Default" if fleet.activation_tier_modified is None else "Customized",
    }


@operation("ssm", "GetServiceSetting")
def get_service_setting(call: Call) -> dict[str, Any]:
    return {"ServiceSetting": _describe(call, _setting_path(call))}


@operation("ssm", "UpdateServiceSetting")
def update_service_setting(call: Call) -> dict[str, Any]:
    _setting_path(call)
    value = call.params["SettingValue"]
    if value not in TIERS:
        raise ServiceError(
            "ValidationException", f"SettingValue must be one of {', '.join(TIERS)}: {value}"
        )
    fleet = fleet_state(call.account_id, call.region)
    with fleet.lock:
        fleet.activation_tier = value
        fleet.activation_tier_modified = clock.now()
    return {}
