"""Shared helpers for the State Manager tests: managed instances, packages, the detection document.

Instances are put straight into the sandbox's fleet state (the sandbox runs in this process), so
these tests do not depend on the registration simulator.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fleet_sandbox.agent import DETECTION_MARKER
from fleet_sandbox.detection import SPEC_VERSION
from fleet_sandbox.state import ManagedInstance, fleet_state

ACCOUNT = "123456789012"
REGION = "us-east-1"
APP_EXE = "C:\\Program Files\\Acme\\acme.exe"


def add_instance(
    number: int, tags: dict[str, str] | None = None, ping_status: str = "Online"
) -> str:
    instance_id = f"mi-{number:017x}"
    fleet_state(ACCOUNT, REGION).instances[instance_id] = ManagedInstance(
        instance_id=instance_id,
        activation_id="00000000-0000-0000-0000-000000000000",
        computer_name=f"WSAMZN-{number:06d}.corp.example.com",
        ip_address=f"10.0.{number // 250}.{number % 250 + 1}",
        registration_date=datetime.now(UTC),
        ping_status=ping_status,
        tags=dict(tags or {}),
    )
    return instance_id


def admin_get(sandbox: Any, path: str, **query: str) -> dict[str, Any]:
    """GET an admin route with query parameters (the admin client has no query support)."""
    encoded = urlencode({**query, "region": REGION})
    with urllib.request.urlopen(f"{sandbox.endpoint}/_sandbox/{path}?{encoded}") as response:
        return dict(json.loads(response.read()))


def agent_state(sandbox: Any, instance_id: str) -> dict[str, Any]:
    return admin_get(sandbox, "agent/state", instanceId=instance_id)


def manifest(version: str, files: dict[str, bytes]) -> str:
    return json.dumps(
        {
            "schemaVersion": "2.0",
            "version": version,
            "publisher": "Acme",
            "packages": {"windows": {"_any": {"x86_64": {"file": next(iter(files))}}}},
            "files": {
                name: {"checksums": {"sha256": hashlib.sha256(data).hexdigest()}}
                for name, data in files.items()
            },
        },
        sort_keys=True,
    )


def publish_package(
    sandbox: Any, name: str, version: str, payload: bytes = b"zip", bucket: str = "artifacts"
) -> dict[str, Any]:
    """Upload a zip and create (or add a version to) a Package document, like the controller."""
    s3, ssm = sandbox.client("s3"), sandbox.client("ssm")
    if bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=bucket)
    prefix = f"{name}/{version}"
    data = payload + version.encode()
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}.zip", Body=data)
    arguments = {
        "Name": name,
        "Content": manifest(version, {f"{name}.zip": data}),
        "Attachments": [{"Key": "SourceUrl", "Values": [f"s3://{bucket}/{prefix}"]}],
        "VersionName": version,
    }
    existing = {
        d["Name"]
        for d in ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Self"]}])[
            "DocumentIdentifiers"
        ]
    }
    if name in existing:
        result = ssm.update_document(DocumentVersion="$LATEST", **arguments)
    else:
        result = ssm.create_document(DocumentType="Package", **arguments)
    return dict(result["DocumentDescription"])


DETECTION_DOCUMENT = {
    "schemaVersion": "2.2",
    "description": "Install a Distributor package, then check it with detection rules.",
    "parameters": {
        "action": {
            "type": "String",
            "allowedValues": ["Install", "Uninstall"],
            "interpolationType": "ENV_VAR",
        },
        "name": {"type": "String"},
        "version": {"type": "String", "default": ""},
        "installationType": {"type": "String", "default": "Uninstall and reinstall"},
        "additionalArguments": {"type": "String", "default": "{}"},
        "detectionRules": {"type": "String", "interpolationType": "ENV_VAR"},
    },
    "mainSteps": [
        {
            "action": "aws:configurePackage",
            "name": "configurePackage",
            "inputs": {
                "name": "{{ name }}",
                "action": "{{ action }}",
                "version": "{{ version }}",
                "installationType": "{{ installationType }}",
                "additionalArguments": "{{ additionalArguments }}",
            },
        },
        {
            "action": "aws:runPowerShellScript",
            "name": "detect",
            "precondition": {"StringEquals": ["platformType", "Windows"]},
            "inputs": {
                "runCommand": [
                    f"# {DETECTION_MARKER} v{SPEC_VERSION}",
                    "$rules = $env:SSM_detectionRules | ConvertFrom-Json",
                    "exit (Test-Detection $rules $env:SSM_action)",
                ]
            },
        },
    ],
}


def create_detection_document(sandbox: Any, name: str = "Fleet-InstallWithDetection") -> str:
    sandbox.client("ssm").create_document(
        Name=name, Content=json.dumps(DETECTION_DOCUMENT), DocumentType="Command"
    )
    return name


def run_agents(sandbox: Any) -> list[dict[str, Any]]:
    return list(sandbox.admin.post("agent/run")["runs"])
