"""SSM's Add/Remove/ListTagsForResource for the resource types the sandbox adds.

moto refuses tags on ManagedInstance and knows no associations. A module that adds a taggable
resource type registers a lookup with ``@tag_target("ManagedInstance")``; the lookup returns the
resource's mutable tag dict or raises ``ServiceError("InvalidResourceId", ...)``. Every other
resource type (Parameter, Document, ...) is passed through to moto unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from moto.core.resource_tagging import TaggedResource
from moto.ssm.models import SimpleSystemManagerBackend

from fleet_sandbox.extension import Call, ServiceError, operation
from fleet_sandbox.tagging import note_tagged, resource_source

MAX_TAGS_PER_RESOURCE = 50

TagLookup = Callable[[str, str, str], dict[str, str]]
"""(account_id, region, resource_id) -> the resource's tags, mutable."""

_targets: dict[str, TagLookup] = {}


def tag_target(resource_type: str) -> Callable[[TagLookup], TagLookup]:
    def register(lookup: TagLookup) -> TagLookup:
        _targets[resource_type] = lookup
        return lookup

    return register


def _tags_of(call: Call) -> dict[str, str] | None:
    lookup = _targets.get(call.params["ResourceType"])
    if lookup is None:
        return None
    return lookup(call.account_id, call.region, call.params["ResourceId"])


def current_tags(call: Call) -> dict[str, str] | None:
    """The tags of the SSM resource a tag call names, as they are now (None: moto keeps them)."""
    tags = _tags_of(call)
    return dict(tags) if tags is not None else None


def check_tag_keys(keys: list[str]) -> None:
    reserved = [key for key in keys if key.lower().startswith("aws:")]
    if reserved:
        raise ServiceError(
            "InvalidParameters",
            f"Tag keys beginning with 'aws:' are reserved: {', '.join(reserved)}",
        )


# ResourceTypeForTagging -> the resource part of its ARN (the IAM service reference's formats).
_ARN_RESOURCE = {
    "Document": "document",
    "ManagedInstance": "managed-instance",
    "MaintenanceWindow": "maintenancewindow",
    "Parameter": "parameter",
    "PatchBaseline": "patchbaseline",
    "OpsItem": "opsitem",
    "OpsMetadata": "opsmetadata",
    "Automation": "automation-execution",
    "Association": "association",
}


def ssm_arn(region: str, account_id: str, resource_type: str, resource_id: str) -> str:
    name = resource_id.lstrip("/") if resource_type == "Parameter" else resource_id
    return f"arn:aws:ssm:{region}:{account_id}:{_ARN_RESOURCE[resource_type]}/{name}"


@operation("ssm", "AddTagsToResource")
def add_tags_to_resource(call: Call) -> Any:
    resource_type, resource_id = call.params["ResourceType"], call.params["ResourceId"]
    answer = _add_tags(call)
    note_tagged(
        call.account_id,
        call.region,
        ssm_arn(call.region, call.account_id, resource_type, resource_id),
    )
    return answer


def _add_tags(call: Call) -> Any:
    tags = _tags_of(call)
    if tags is None:
        return call.delegate()
    new = {tag["Key"]: tag["Value"] for tag in call.params["Tags"]}
    check_tag_keys(list(new))
    if len(set(tags) | set(new)) > MAX_TAGS_PER_RESOURCE:
        raise ServiceError(
            "TooManyTagsError",
            f"The resource {call.params['ResourceId']} can have at most {MAX_TAGS_PER_RESOURCE} tags.",
        )
    tags.update(new)
    return {}


@operation("ssm", "RemoveTagsFromResource")
def remove_tags_from_resource(call: Call) -> Any:
    resource_type, resource_id = call.params["ResourceType"], call.params["ResourceId"]
    tags = _tags_of(call)
    if tags is None:
        answer = call.delegate()
    else:
        for key in call.params["TagKeys"]:
            tags.pop(key, None)
        answer = {}
    # It had tags (or AWS would still remember it did): now "previously tagged".
    note_tagged(
        call.account_id,
        call.region,
        ssm_arn(call.region, call.account_id, resource_type, resource_id),
    )
    return answer


@operation("ssm", "ListTagsForResource")
def list_tags_for_resource(call: Call) -> dict[str, Any] | None:
    tags = _tags_of(call)
    if tags is None:
        return call.delegate()  # type: ignore[no-any-return]
    return {"TagList": [{"Key": key, "Value": value} for key, value in sorted(tags.items())]}


@resource_source(SimpleSystemManagerBackend)
def _windows_and_baselines(backend: Any) -> Iterator[TaggedResource]:
    """Maintenance windows and patch baselines: moto keeps their tags but lists them nowhere."""
    for resource_type, table in (
        ("MaintenanceWindow", getattr(backend, "windows", {})),
        ("PatchBaseline", getattr(backend, "baselines", {})),
    ):
        for resource_id in list(table):
            tags = dict(backend._resource_tags[resource_type].get(resource_id) or {})
            yield TaggedResource(
                arn=ssm_arn(backend.region_name, backend.account_id, resource_type, resource_id),
                tags=tags,
                resource_type=f"ssm:{_ARN_RESOURCE[resource_type]}",
            )


@tag_target("PatchBaseline")
def _baseline_tags(account_id: str, region: str, resource_id: str) -> dict[str, str]:
    """moto keeps patch baselines but refuses every tag call on them (InvalidResourceId)."""
    from fleet_sandbox.state import ssm_backend

    backend = ssm_backend(account_id, region)
    if resource_id not in backend.baselines:
        raise ServiceError("InvalidResourceId", f"The resource ID {resource_id} isn't valid.")
    tags: dict[str, str] = backend._resource_tags["PatchBaseline"][resource_id]
    return tags
