"""Helpers for the fleet tests: activations, the published parameter, WorkSpaces that boot.

Everything goes through the sandbox's HTTP endpoint (boto3 and the admin API), as production does.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions
import pytest
from botocore.config import Config

PARAMETER = "/fleet-controller/activation"


def unchecked(sandbox: Any, service: str) -> Any:
    """A client that lets out-of-range values through, so the sandbox (not botocore) judges them,
    and that does not retry, so call counts stay exact."""
    return sandbox.client(
        service,
        config=Config(parameter_validation=False, retries={"total_max_attempts": 1}),
    )


def error_code(raised: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


def activate(
    ssm: Any, limit: int = 1, tags: dict[str, str] | None = None, **extra: Any
) -> tuple[str, str]:
    answer = ssm.create_activation(
        IamRole="SSMServiceRole",
        RegistrationLimit=limit,
        Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        **extra,
    )
    return answer["ActivationId"], answer["ActivationCode"]


def publish(sandbox: Any, activation_id: str, code: str, name: str = PARAMETER) -> None:
    """Publish the activation the way the controller does and point the fleet at it."""
    value = json.dumps({"id": activation_id, "code": code, "region": sandbox.region, "expiry": ""})
    sandbox.client("ssm").put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)
    sandbox.admin.post("fleet/registration", {"parameterName": name})


def workspaces(sandbox: Any, count: int, **body: Any) -> list[str]:
    return list(sandbox.admin.post("fleet/workspaces", {"count": count, **body})["workspaceIds"])


def boot(sandbox: Any, workspace_ids: list[str] | None = None) -> dict[str, Any]:
    body = {} if workspace_ids is None else {"workspaceIds": workspace_ids}
    return dict(sandbox.admin.post("fleet/boot", body))


def registered_fleet(
    sandbox: Any, count: int, tags: dict[str, str] | None = None, **body: Any
) -> tuple[list[str], list[str], str]:
    """``count`` WorkSpaces registered with one activation: (workspace ids, instance ids, act id)."""
    ids = workspaces(sandbox, count, **body)
    activation_id, code = activate(sandbox.client("ssm"), limit=count, tags=tags)
    publish(sandbox, activation_id, code)
    result = boot(sandbox, ids)
    assert result["registered"] == count, result
    instances = [r["instanceId"] for r in result["results"]]
    return ids, instances, activation_id


def fleet_row(sandbox: Any, workspace_id: str) -> dict[str, Any]:
    rows = sandbox.admin.get("fleet")["workspaces"]
    return next(r for r in rows if r["workspaceId"] == workspace_id)


def ping_status(sandbox: Any, instance_id: str) -> str:
    info = sandbox.client("ssm").describe_instance_information(
        Filters=[{"Key": "InstanceIds", "Values": [instance_id]}]
    )["InstanceInformationList"]
    return str(info[0]["PingStatus"])
