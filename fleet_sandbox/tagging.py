"""The Resource Groups Tagging API's GetResources with AWS's page semantics.

moto cuts pages by a default tag budget (100 tags) even when the caller gave none, and stops one
resource early at the budget, so 250 resources with 10 tags each come back in 28 pages instead of
the 3 AWS returns at ResourcesPerPage=100; call counts measured against the sandbox would be wrong.
Here a page holds at most ResourcesPerPage resources (default 100, the maximum) and, only when the
caller gives TagsPerPage, at most that many tags (an untagged resource counts as one), never
splitting a resource across pages.

Modules that add resource types moto does not know register a source with
``@resource_source(BackendClass)``; it joins that backend's ``iter_tagged_resources`` so the
resources also appear in GetTagKeys and GetTagValues.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.core.resource_tagging import TaggedResource

from fleet_sandbox.clock import clock
from fleet_sandbox.extension import Call, ServiceError, operation
from fleet_sandbox.state import attached

DEFAULT_RESOURCES_PER_PAGE = 100
TOKEN_LIFETIME = timedelta(minutes=15)  # "A PaginationToken is valid for a maximum of 15 minutes"
MAX_VALUES_PER_TAG_FILTER = 20

ResourceSource = Callable[[Any], Iterable[TaggedResource]]
"""(moto backend) -> the extra resources that backend owns."""

_sources: dict[type, list[ResourceSource]] = {}
_wrap_lock = threading.Lock()


def resource_source(backend_class: type) -> Callable[[ResourceSource], ResourceSource]:
    """Decorator: ``source`` yields more tagged resources of ``backend_class``'s backends."""

    def register(source: ResourceSource) -> ResourceSource:
        with _wrap_lock:
            sources = _sources.setdefault(backend_class, [])
            names = {s.__qualname__ for s in sources}
            if source.__qualname__ not in names:
                sources.append(source)
            _wrap(backend_class)
        return source

    return register


def _wrap(backend_class: type) -> None:
    original = backend_class.__dict__.get("iter_tagged_resources")
    if original is None or getattr(original, "_sandbox_wrapped", False):
        return

    def iter_tagged_resources(self: Any) -> Iterator[TaggedResource]:
        yield from original(self)
        for source in list(_sources.get(backend_class, [])):
            yield from source(self)

    iter_tagged_resources._sandbox_wrapped = True  # type: ignore[attr-defined]
    backend_class.iter_tagged_resources = iter_tagged_resources  # type: ignore[attr-defined]


@dataclass
class _Pending:
    remaining: list[dict[str, Any]]
    resources_per_page: int
    tags_per_page: int | None
    created: datetime


@dataclass
class _PageStore:
    """Result sets being paged through, by token (hangs off moto's tagging backend)."""

    pages: dict[str, _Pending] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def _check_request(params: dict[str, Any]) -> None:
    if params.get("ResourceARNList") is not None:
        if params.get("TagFilters") or params.get("ResourceTypeFilters"):
            raise _invalid(
                "ResourceARNList can't be combined with TagFilters or ResourceTypeFilters."
            )
        if any(params.get(k) for k in ("ResourcesPerPage", "TagsPerPage", "PaginationToken")):
            raise _invalid("ResourceARNList can't be combined with pagination parameters.")
    per_page = params.get("ResourcesPerPage")
    if per_page is not None and not 1 <= per_page <= 100:
        raise _invalid("ResourcesPerPage must be between 1 and 100")
    tags_per_page = params.get("TagsPerPage")
    if tags_per_page is not None and not 100 <= tags_per_page <= 500:
        raise _invalid("TagsPerPage must be between 100 and 500")
    if params.get("ExcludeCompliantResources") and not params.get("IncludeComplianceDetails"):
        raise _invalid("ExcludeCompliantResources requires IncludeComplianceDetails.")
    for tag_filter in params.get("TagFilters") or []:
        if not tag_filter.get("Key"):
            raise _invalid("Each TagFilter must contain a Key.")
        if len(tag_filter.get("Values") or []) > MAX_VALUES_PER_TAG_FILTER:
            raise _invalid(f"A TagFilter can include up to {MAX_VALUES_PER_TAG_FILTER} values.")


def _mapping(resource: TaggedResource, compliance: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ResourceARN": resource.arn,
        "Tags": [{"Key": k, "Value": v if v is not None else ""} for k, v in resource.tags.items()],
    }
    if compliance:
        entry["ComplianceDetails"] = {
            "NoncompliantKeys": [],
            "KeysWithNoncompliantValues": [],
            "ComplianceStatus": True,
        }
    return entry


def _cut(pending: _Pending) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split off one page: the resource budget always, the tag budget only when one was given."""
    taken: list[dict[str, Any]] = []
    tags = 0
    for entry in pending.remaining:
        if len(taken) >= pending.resources_per_page:
            break
        weight = max(1, len(entry["Tags"]))
        if pending.tags_per_page is not None and taken and tags + weight > pending.tags_per_page:
            break
        taken.append(entry)
        tags += weight
    return taken, pending.remaining[len(taken) :]


@operation("resourcegroupstaggingapi", "GetResources")
def get_resources(call: Call) -> dict[str, Any]:
    from moto.resourcegroupstaggingapi.models import resourcegroupstaggingapi_backends

    params = call.params
    _check_request(params)
    backend = resourcegroupstaggingapi_backends[call.account_id][call.region]
    store = attached(backend, _PageStore)
    now = clock.now()
    token = params.get("PaginationToken") or None
    if token:
        with store.lock:
            pending = store.pages.get(token)
        if pending is None or now - pending.created > TOKEN_LIFETIME:
            raise ServiceError(
                "PaginationTokenExpiredException",
                "The PaginationToken is not valid or has expired; start the query again.",
            )
    else:
        resources = backend._get_resources_generator(
            tag_filters=params.get("TagFilters") or None,
            resource_type_filters=params.get("ResourceTypeFilters") or None,
            resource_arn_list=params.get("ResourceARNList") or None,
        )
        compliance = bool(params.get("IncludeComplianceDetails"))
        pending = _Pending(
            remaining=[_mapping(resource, compliance) for resource in resources],
            resources_per_page=params.get("ResourcesPerPage") or DEFAULT_RESOURCES_PER_PAGE,
            tags_per_page=params.get("TagsPerPage"),
            created=now,
        )
        if params.get("ResourceARNList") is not None:  # no pagination with an ARN list
            pending.resources_per_page = len(pending.remaining) or 1
    page, rest = _cut(pending)
    result: dict[str, Any] = {"ResourceTagMappingList": page}
    if rest:
        next_token = str(uuid.uuid4())
        with store.lock:
            store.pages[next_token] = _Pending(
                rest, pending.resources_per_page, pending.tags_per_page, pending.created
            )
        result["PaginationToken"] = next_token
    # The last page carries no token ("a null value ... indicates that there are no more results").
    return result
