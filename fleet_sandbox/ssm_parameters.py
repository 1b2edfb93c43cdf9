"""Parameter Store where moto is too kind: SecureString values, KMS keys, value limits.

moto returns a SecureString without ``WithDecryption`` as ``kms:<key>:<plaintext>``: the secret in
clear behind a prefix, so "observing never decrypts the published parameter" could not be tested.
AWS returns the ciphertext. Here such a value is replaced, on every read operation, by an opaque
base64 blob (a keyed stream over the name, version and key: stable for one version, different for
the next, and the plaintext cannot be read back from it without the sandbox's per-process key).

PutParameter also checks what the API reference states (botocore's PutParameter documentation):
"Standard parameters have a value limit of 4 KB. Advanced parameters have a value limit of 8 KB",
"You can't include values wrapped in double brackets {{}} ... in a parameter value", and a
SecureString's KeyId must name a KMS key that exists and is enabled (``alias/aws/ssm``, the
AWS-managed default, always does).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Any

from moto.core.responses import ActionResult

from fleet_sandbox.extension import Call, ServiceError, operation

STANDARD_VALUE_LIMIT = 4096
ADVANCED_VALUE_LIMIT = 8192
DEFAULT_KEY = "alias/aws/ssm"
_NESTED = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_CIPHER_KEY = secrets.token_bytes(32)  # per process: the blob is never reversible from outside
_BLOB_HEADER = b"\x01\x02\x02\x00\x78"  # the first bytes every KMS ciphertext blob starts with


def ciphertext(name: str, version: int, key_id: str, plaintext: str) -> str:
    """What AWS would show instead of a SecureString's value: base64, never the plaintext."""
    data = plaintext.encode("utf-8")
    stream = b""
    counter = 0
    while len(stream) < len(data) + 32:
        stream += hmac.new(
            _CIPHER_KEY, f"{name}\0{version}\0{key_id}\0{counter}".encode(), hashlib.sha256
        ).digest()
        counter += 1
    tag, pad = stream[:32], stream[32:]
    body = bytes(a ^ b for a, b in zip(data, pad, strict=False))
    return base64.b64encode(_BLOB_HEADER + tag + body).decode("ascii")


def _kms_key_exists(account_id: str, region: str, key_id: str) -> bool:
    from moto.kms.models import kms_backends

    if key_id in (DEFAULT_KEY, f"arn:aws:kms:{region}:{account_id}:{DEFAULT_KEY}"):
        return True
    backend = kms_backends[account_id][region]
    try:
        key = backend.describe_key(key_id)
    except (KeyError, TypeError, AttributeError):
        return False
    return bool(getattr(key, "enabled", True)) and getattr(key, "key_state", "Enabled") in (
        "Enabled",
    )


@operation("ssm", "PutParameter")
def put_parameter(call: Call) -> Any:
    params = call.params
    value: str = params["Value"]
    tier = params.get("Tier") or "Standard"
    limit = STANDARD_VALUE_LIMIT if tier == "Standard" else ADVANCED_VALUE_LIMIT
    size = len(value.encode("utf-8"))
    if size > limit:
        raise ServiceError(
            "ValidationException",
            f"{tier} tier parameters support a maximum parameter value of {limit} characters; "
            f"this value has {size}. To create a larger parameter value, use the Advanced tier.",
        )
    if _NESTED.search(value):
        raise ServiceError(
            "ValidationException",
            'Parameter value can\'t nest another parameter. Do not use "{{}}" in the value.',
        )
    key_id = params.get("KeyId")
    secure = params.get("Type") == "SecureString"
    if secure and key_id is not None and not _kms_key_exists(call.account_id, call.region, key_id):
        raise ServiceError(
            "InvalidKeyId", f"The KMS key {key_id} does not exist or is not enabled."
        )
    return call.delegate()


def _conceal(parameter: dict[str, Any]) -> None:
    if parameter.get("Type") != "SecureString" or not isinstance(parameter.get("Value"), str):
        return
    stored: str = parameter["Value"]
    key_id = DEFAULT_KEY
    plaintext = stored
    if stored.startswith("kms:"):
        key_id, _, plaintext = stored[4:].partition(":")
    parameter["Value"] = ciphertext(
        str(parameter.get("Name", "")), int(parameter.get("Version") or 0), key_id, plaintext
    )


def _concealed(call: Call, list_key: str | None) -> Any:
    token = call.params.get("NextToken")
    if token is not None and not str(token).isdigit():  # moto's tokens are offsets; it crashes
        raise ServiceError("InvalidNextToken", "The specified token isn't valid.")
    answer = call.delegate()
    if call.params.get("WithDecryption") or not isinstance(answer, ActionResult):
        return answer
    result = answer.result
    if not isinstance(result, dict):
        return answer
    items = [result.get("Parameter")] if list_key is None else result.get(list_key) or []
    for item in items:
        if isinstance(item, dict):
            _conceal(item)
    return answer


@operation("ssm", "GetParameter")
def get_parameter(call: Call) -> Any:
    return _concealed(call, None)


@operation("ssm", "GetParameters")
def get_parameters(call: Call) -> Any:
    return _concealed(call, "Parameters")


@operation("ssm", "GetParametersByPath")
def get_parameters_by_path(call: Call) -> Any:
    return _concealed(call, "Parameters")


@operation("ssm", "GetParameterHistory")
def get_parameter_history(call: Call) -> Any:
    return _concealed(call, "Parameters")
