"""The worked example's fleet in the sandbox, per Region: WorkSpaces in two directories."""

from __future__ import annotations

import contextlib
from typing import Any

import boto3

from fleet_sandbox.client import SandboxClient

FINANCE = "d-9067a1b2c3"
ENGINEERING = "d-9067d4e5f6"
PARAMETER = "/fleet-controller/activations/workspaces"  # where the example Activation publishes
PACKAGE_BUCKET = "fleet-controller-packages-example"  # where the example's Packages publish
FINANCE_TAGS = {"CostCenter": "4100", "LineOfBusiness": "finance", "App-Excel": "true"}
ENGINEERING_TAGS = {"CostCenter": "5200", "LineOfBusiness": "engineering", "Team": "platform"}


def admin(endpoint: str, region: str) -> SandboxClient:
    return SandboxClient(endpoint, region=region)


def client(endpoint: str, service: str, region: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def make_fleet(endpoint: str, region: str, finance: int, engineering: int) -> None:
    """WorkSpaces that register with whatever activation is published to PARAMETER."""
    sandbox = admin(endpoint, region)
    for count, directory, tags in (
        (finance, FINANCE, FINANCE_TAGS),
        (engineering, ENGINEERING, ENGINEERING_TAGS),
    ):
        sandbox.post("fleet/workspaces", {"count": count, "directoryId": directory, "tags": tags})
    sandbox.post("fleet/registration", {"parameterName": PARAMETER})


def make_package_bucket(endpoint: str, region: str) -> None:
    """The S3 bucket the example's Packages publish to: the operator creates it beforehand (the
    controller refuses to publish into a bucket that does not exist)."""
    s3 = client(endpoint, "s3", region)
    location = {} if region == "us-east-1" else {"LocationConstraint": region}
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(
            Bucket=PACKAGE_BUCKET, **({"CreateBucketConfiguration": location} if location else {})
        )


def published(endpoint: str, region: str) -> bool:
    ssm = client(endpoint, "ssm", region)
    return bool(ssm.describe_parameters(ParameterFilters=[
        {"Key": "Name", "Values": [PARAMETER]}
    ])["Parameters"])  # fmt: skip


def boot(endpoint: str, region: str) -> int:
    """Boot every WorkSpace; how many registered."""
    return int(admin(endpoint, region).post("fleet/boot", {})["registered"])


def instances(endpoint: str, region: str, directory: str | None = None) -> list[str]:
    rows = admin(endpoint, region).get("fleet")["workspaces"]
    return sorted(
        r["instanceId"]
        for r in rows
        if r["instanceId"] and (directory is None or r["directoryId"] == directory)
    )


def tags(endpoint: str, region: str, instance_id: str) -> dict[str, str]:
    ssm = client(endpoint, "ssm", region)
    listed = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance_id)
    return {t["Key"]: t["Value"] for t in listed["TagList"]}


def remove_tag(endpoint: str, region: str, instance_id: str, key: str) -> None:
    """Drift, made the way a person with console access would make it."""
    client(endpoint, "ssm", region).remove_tags_from_resource(
        ResourceType="ManagedInstance", ResourceId=instance_id, TagKeys=[key]
    )


def add_tag(endpoint: str, region: str, instance_id: str, key: str, value: str) -> None:
    client(endpoint, "ssm", region).add_tags_to_resource(
        ResourceType="ManagedInstance", ResourceId=instance_id, Tags=[{"Key": key, "Value": value}]
    )


def all_tagged(endpoint: str, region: str, directory: str, key: str, value: str) -> bool:
    found = instances(endpoint, region, directory)
    return bool(found) and all(tags(endpoint, region, i).get(key) == value for i in found)
