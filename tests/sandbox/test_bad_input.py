"""Every bad input to an operation the sandbox serves is an AWS-shaped client error.

For each operation the sandbox implements (its registered handlers), requests are generated from
the botocore input shape: well-typed but arbitrary values, wrong types, missing members, unknown
members, and hostile text. Each is sent raw (signed JSON, as an SDK would send it), so neither
botocore's own validation nor its serialiser stands between the input and the sandbox. The answer
must never be a 5xx or HTML: a JSON body with ``__type``, status 4xx (or 200 when the input happened
to be valid).
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import Shape

from fleet_sandbox import extension
from fleet_sandbox.shapes import operation_model, service_model
from tests.sandbox._ssm_helpers import add_instance

SAMPLES_PER_OPERATION = 25
HOSTILE = [
    "",
    " ",
    "x" * 3000,
    "../../etc/passwd",
    "<html>",
    "'; DROP TABLE x; --",
    "\u0000\u202e",
    "mi-00000000000000000",
    "ws-000000000",
    "d-0000000000",
    "00000000-0000-0000-0000-000000000000",
    "arn:aws:ssm:us-east-1:123456789012:document/x",
    "cron(99 99 ? * * *)",
    "at(2030-02-30T10:00:00)",
    "rate(0 minutes)",
    "tag:Team",
    "AWS-RunPowerShellScript",
    "{{ssm:/x}}",
    "Ünïcödé 東京",
]


# Plausible values: a generated string is drawn from those that fit the member's pattern and
# length when any does, so requests get past validation into the handlers' own logic.
PLAUSIBLE = [
    "mi-00000000000000001",
    "mi-0123456789abcdef0",
    "ws-abc123def",
    "d-9067a1b2c3",
    "wsb-sandbox001",
    "00000000-0000-0000-0000-000000000000",
    "AWS-RunPowerShellScript",
    "AWS-RunPatchBaseline",
    "AWS-GatherSoftwareInventory",
    "AWS-ConfigureAWSPackage",
    "Fleet-Document",
    "$LATEST",
    "$DEFAULT",
    "1",
    "2",
    "50%",
    "0",
    "tag:Team",
    "InstanceIds",
    "euc",
    "Team",
    "cron(0 8 ? * * *)",
    "rate(30 minutes)",
    "at(2030-07-07T15:55:00)",
    "/fleet/parameter",
    "ManagedInstance",
    "Association",
    "Patch",
    "AWS:Application",
    "AWS:Application.Name",
    "AWS:InstanceInformation.InstanceId",
    "Success",
    "Failed",
    "Pending",
    "Name",
    "Status",
    "ssm:managed-instance",
    "workspaces:workspace",
    "SSMServiceRole",
    "alias/aws/ssm",
    "Standard",
    "SecureString",
    "2030-01-01T00:00:00Z",
    '{"schemaVersion": "2.2", "mainSteps": [{"action": "aws:runPowerShellScript", "name": "s", "inputs": {"runCommand": ["echo"]}}]}',
]


def _fits(shape: Shape, text: str) -> bool:
    from fleet_sandbox.shapes import _matches

    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and len(text) < low) or (high is not None and len(text) > high):
        return False
    pattern = shape.metadata.get("pattern")
    return not pattern or _matches(pattern, text)


def _signed(
    endpoint: str, service: str, operation: str, body: bytes
) -> tuple[int, dict[str, str], bytes]:
    model = service_model(service)
    signing = model.metadata.get("signingName", model.endpoint_prefix)
    request = AWSRequest(
        method="POST",
        url=endpoint + "/",
        data=body,
        headers={
            "X-Amz-Target": f"{model.metadata['targetPrefix']}.{operation}",
            "Content-Type": f"application/x-amz-json-{model.metadata.get('jsonVersion', '1.1')}",
        },
    )
    SigV4Auth(Credentials("testing", "testing"), signing, "us-east-1").add_auth(request)
    prepared = request.prepare()
    http = urllib.request.Request(
        prepared.url, data=prepared.body, headers=dict(prepared.headers), method="POST"
    )
    try:
        with urllib.request.urlopen(http, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _value(shape: Shape, rng: random.Random, depth: int = 0, known: tuple[str, ...] = ()) -> Any:
    kind = shape.type_name
    if rng.random() < 0.08:  # the wrong type altogether
        return rng.choice([42, "text", [], {}, True, None, -1.5])
    if kind == "structure":
        members = list(shape.members.items())
        chosen = {
            name: _value(member, rng, depth + 1, known)
            for name, member in members
            if name in shape.required_members or rng.random() < 0.5
        }
        if rng.random() < 0.1:
            chosen["NotAMember"] = "surprise"
        return chosen
    if kind == "list":
        if depth > 4:
            return []
        return [_value(shape.member, rng, depth + 1, known) for _ in range(rng.randint(0, 3))]
    if kind == "map":
        if depth > 4:
            return {}
        return {
            rng.choice(HOSTILE[:12]) or "k": _value(shape.value, rng, depth + 1, known)
            for _ in range(rng.randint(0, 2))
        }
    if kind == "string":
        enum = shape.metadata.get("enum")
        if enum and rng.random() < 0.6:
            return rng.choice(enum)
        fitting = [v for v in (*known, *PLAUSIBLE, *HOSTILE) if _fits(shape, v)]
        if fitting and rng.random() < 0.8:
            return rng.choice(fitting)
        return rng.choice(HOSTILE)
    if kind in ("integer", "long"):
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and high is not None and rng.random() < 0.7:
            return rng.randint(int(low), int(min(high, low + 100)))
        return rng.choice([0, 1, -1, 5, 50, 2**31, 10**15])
    if kind in ("float", "double"):
        return rng.choice([0.0, -1.0, 1e308])
    if kind == "boolean":
        return rng.choice([True, False])
    if kind == "timestamp":
        return rng.choice([0, 1_900_000_000, "not a time", "2030-01-01T00:00:00Z"])
    return "x"


def _json_operations() -> list[tuple[str, str]]:
    from fleet_sandbox import server

    server.load_extensions()
    return [
        (service, name)
        for service, name in extension.registered_operations()
        if service_model(service).metadata.get("protocol") == "json"
    ]


def _assert_client_error(status: int, headers: dict[str, str], body: bytes, what: str) -> None:
    assert status < 500, f"{what}: {status} {body[:300]!r}"
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    assert "html" not in content_type, f"{what}: {content_type}"
    if status >= 400:
        assert "__type" in json.loads(body), f"{what}: {body[:300]!r}"  # JSON, never a page


def _something_to_trip_over(sandbox: Any) -> tuple[str, ...]:
    """An instance, a document, an association, a command and a WorkSpace, whose IDs the
    generator then uses, so requests reach existing resources too."""
    instance = add_instance(1, {"Team": "euc"})
    ssm = sandbox.client("ssm")
    ssm.create_document(Name="Fleet-Document", Content=PLAUSIBLE[-1], DocumentType="Command")
    association = ssm.create_association(
        Name="AWS-RunPatchBaseline",
        Parameters={"Operation": ["Scan"]},
        Targets=[{"Key": "tag:Team", "Values": ["euc"]}],
    )["AssociationDescription"]["AssociationId"]
    command = ssm.send_command(
        DocumentName="AWS-RunPowerShellScript",
        Parameters={"commands": ["Write-Output x"]},
        InstanceIds=[instance],
    )["Command"]["CommandId"]
    sandbox.admin.post("agent/run")
    sandbox.admin.post("commands/run", {"rounds": 2})
    workspace = sandbox.admin.post("fleet/workspaces", {"count": 1})["workspaceIds"][0]
    return (instance, association, command, workspace)


@pytest.mark.parametrize(("service", "operation"), _json_operations())
def test_arbitrary_input_is_never_a_server_error(sandbox, service, operation):
    known = _something_to_trip_over(sandbox)
    shape = operation_model(service, operation).input_shape
    rng = random.Random(f"{service}.{operation}")
    bodies: list[bytes] = [b"{}", b"[]", b'{"a":', b"null", json.dumps({"Unknown": 1}).encode()]
    if shape is not None:
        bodies += [
            json.dumps(_value(shape, rng, known=known), default=str).encode()
            for _ in range(SAMPLES_PER_OPERATION)
        ]
    for body in bodies:
        status, headers, answer = _signed(sandbox.endpoint, service, operation, body)
        _assert_client_error(status, headers, answer, f"{service}.{operation} {body[:200]!r}")
    assert sandbox.admin.get("shape-violations")["violations"] == []


def test_a_crash_inside_the_sandbox_is_still_an_aws_shaped_answer(sandbox):
    original = extension._handlers[("ssm", "DescribeActivations")]

    def crashing(call):
        raise KeyError("a bug")

    extension.operation("ssm", "DescribeActivations")(crashing)
    extension.install()
    try:
        status, _headers, body = _signed(sandbox.endpoint, "ssm", "DescribeActivations", b"{}")
    finally:
        extension.operation("ssm", "DescribeActivations")(original)
        extension.install()
    assert status == 500
    assert json.loads(body)["__type"] == "InternalFailure"


def test_a_null_member_is_an_absent_member(sandbox):
    status, _, body = _signed(
        sandbox.endpoint, "ssm", "GetParametersByPath", b'{"Path": "/x", "MaxResults": null}'
    )
    assert status == 200, body
    assert json.loads(body)["Parameters"] == []
