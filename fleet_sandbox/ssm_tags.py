"""SSM's Add/Remove/ListTagsForResource for the resource types the sandbox adds.

moto refuses tags on ManagedInstance and knows no associations. A module that adds a taggable
resource type registers a lookup with ``@tag_target("ManagedInstance")``; the lookup returns the
resource's mutable tag dict or raises ``ServiceError("InvalidResourceId", ...)``. Every other
resource type (Parameter, Document, ...) is passed through to moto unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fleet_sandbox.extension import Call, ServiceError, operation

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


def check_tag_keys(keys: list[str]) -> None:
    reserved = [key for key in keys if key.lower().startswith("aws:")]
    if reserved:
        raise ServiceError(
            "InvalidParameters",
            f"Tag keys beginning with 'aws:' are reserved: {', '.join(reserved)}",
        )


@operation("ssm", "AddTagsToResource")
def add_tags_to_resource(call: Call) -> dict[str, Any] | None:
    tags = _tags_of(call)
    if tags is None:
        return call.delegate()  # type: ignore[no-any-return]
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
def remove_tags_from_resource(call: Call) -> dict[str, Any] | None:
    tags = _tags_of(call)
    if tags is None:
        return call.delegate()  # type: ignore[no-any-return]
    for key in call.params["TagKeys"]:
        tags.pop(key, None)
    return {}


@operation("ssm", "ListTagsForResource")
def list_tags_for_resource(call: Call) -> dict[str, Any] | None:
    tags = _tags_of(call)
    if tags is None:
        return call.delegate()  # type: ignore[no-any-return]
    return {"TagList": [{"Key": key, "Value": value} for key, value in sorted(tags.items())]}
