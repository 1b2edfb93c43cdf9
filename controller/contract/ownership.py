"""The tags by which the controller recognises what it created.

Only a resource carrying ``fleet-controller/owner=<controller id>`` is ever updated or deleted.
``fleet-controller/manifest`` names the manifest (``Kind/name``) a resource serves, so a resource
whose manifest is gone can be found and, with ``--prune``, removed.
"""

from __future__ import annotations

from collections.abc import Mapping

RESERVED_PREFIX = "fleet-controller/"
OWNER_TAG = "fleet-controller/owner"
MANIFEST_TAG = "fleet-controller/manifest"
WORKSPACE_ID_TAG = "fleet-controller/workspace-id"


def owner_tags(controller_id: str, kind: str, name: str) -> dict[str, str]:
    return {OWNER_TAG: controller_id, MANIFEST_TAG: f"{kind}/{name}"}


def is_owned(tags: Mapping[str, str], controller_id: str) -> bool:
    return tags.get(OWNER_TAG) == controller_id


def manifest_of(tags: Mapping[str, str], kind: str) -> str | None:
    """The manifest name a resource serves, when it is tagged for ``kind``."""
    value = tags.get(MANIFEST_TAG, "")
    prefix = f"{kind}/"
    return value[len(prefix) :] if value.startswith(prefix) else None
