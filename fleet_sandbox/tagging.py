"""The Resource Groups Tagging API (GetResources, GetTagKeys, GetTagValues) as AWS serves it.

moto cuts pages by a default tag budget (100 tags) even when the caller gave none, and stops one
resource early at the budget, so 250 resources with 10 tags each come back in 28 pages instead of
the 3 AWS returns at ResourcesPerPage=100; call counts measured against the sandbox would be wrong.
Here a page holds at most ResourcesPerPage resources (default 100, the maximum) and, only when the
caller gives TagsPerPage, at most that many tags (an untagged resource counts as one), never
splitting a resource across pages.

Modules that add resource types moto does not know register a source with
``@resource_source(BackendClass)``; it joins that backend's ``iter_tagged_resources`` so the
resources also appear in GetTagKeys and GetTagValues (each key and value once, as AWS lists them).

"GetResources returns all tagged or previously tagged resources": a resource whose tags were all
removed comes back with ``"Tags": []`` (the sandbox remembers every resource it has seen tagged,
and write paths call ``note_tagged``). Resource types are AWS's ``service:type`` names taken from
the ARN (``workspaces:directory``, ``ssm:association``). With consistency on (``consistency``),
reads lag behind writes, deleted resources linger and pages may come short with a token.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.core.resource_tagging import TaggedResource

from fleet_sandbox import consistency
from fleet_sandbox.clock import clock
from fleet_sandbox.consistency import Seen
from fleet_sandbox.extension import Call, ServiceError, operation
from fleet_sandbox.server import on_reset
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


# --- what exists, and what was ever tagged -------------------------------------------------------

_history_lock = threading.Lock()
_ever_tagged: dict[tuple[str, str], set[str]] = {}


@on_reset
def _forget_history() -> None:
    with _history_lock:
        _ever_tagged.clear()


def note_tagged(account_id: str, region: str, arn: str) -> None:
    """A write path tagged ``arn``: from now on it is a previously tagged resource."""
    with _history_lock:
        _ever_tagged.setdefault((account_id, region), set()).add(arn)


def _aws_type(resource: TaggedResource) -> str:
    """``service:type`` from the ARN, as AWS names resource types (moto's names vary)."""
    parts = resource.arn.split(":", 5)
    if len(parts) == 6 and parts[2] in ("ssm", "workspaces") and "/" in parts[5]:
        return f"{parts[2]}:{parts[5].split('/', 1)[0]}"
    return resource.resource_type


def truth(account_id: str, region: str) -> list[Seen]:
    """Every tagged or previously tagged resource of the account and region, as it is now."""
    from moto.core.resource_tagging import iter_taggable_backends

    found: list[Seen] = []
    with _history_lock:
        history = _ever_tagged.setdefault((account_id, region), set())
    for backend in iter_taggable_backends(account_id, region):
        for resource in backend.iter_tagged_resources():
            tags = {k: v if v is not None else "" for k, v in resource.tags.items()}
            if tags:
                with _history_lock:
                    history.add(resource.arn)
            elif resource.arn not in history and not resource.extra.get("include_untagged"):
                continue
            found.append(Seen(resource.arn, _aws_type(resource), tags))
    return found


consistency.set_source(truth)


def visible(account_id: str, region: str) -> list[Seen]:
    """What the tagging API shows now: the truth, or its lagging view when consistency is on."""
    lagging = consistency.view(account_id, region, "resourcegroupstaggingapi")
    return lagging if lagging is not None else truth(account_id, region)


def _selected(params: dict[str, Any], resources: list[Seen]) -> list[Seen]:
    from moto.core.resource_tagging import make_tag_matcher, match_resource_type

    tag_filters = params.get("TagFilters") or None
    matcher = make_tag_matcher(tag_filters)
    arns = params.get("ResourceARNList")
    return [
        seen
        for seen in resources
        if match_resource_type(seen.resource_type, params.get("ResourceTypeFilters") or None)
        and (not tag_filters or (seen.tags and matcher(seen.tags)))
        and (arns is None or seen.arn in arns)
    ]


@dataclass
class _Pending:
    remaining: list[dict[str, Any]]
    resources_per_page: int
    tags_per_page: int | None
    created: datetime
    pages_served: int = 0


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


def _mapping(resource: Seen, compliance: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ResourceARN": resource.arn,
        "Tags": [{"Key": k, "Value": v} for k, v in resource.tags.items()],
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
    budget = _short_page_budget(pending.resources_per_page, pending.pages_served)
    for entry in pending.remaining:
        if len(taken) >= budget:
            break
        weight = max(1, len(entry["Tags"]))
        if pending.tags_per_page is not None and taken and tags + weight > pending.tags_per_page:
            break
        taken.append(entry)
        tags += weight
    return taken, pending.remaining[len(taken) :]


def _short_page_budget(budget: int, served: int) -> int:
    """With shortPages on, every third page is full, the next half, the next empty."""
    if not consistency.settings().short_pages:
        return budget
    return (budget, max(1, budget // 2), 0)[served % 3]


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
        if pending is None or now - pending.created > TOKEN_LIFETIME or pending.tags_per_page == -1:
            raise ServiceError(
                "PaginationTokenExpiredException",
                "The PaginationToken is not valid or has expired; start the query again.",
            )
    else:
        resources = _selected(params, visible(call.account_id, call.region))
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
                rest,
                pending.resources_per_page,
                pending.tags_per_page,
                pending.created,
                pending.pages_served + 1,
            )
        result["PaginationToken"] = next_token
    # The last page carries no token ("a null value ... indicates that there are no more results").
    return result


# --- GetTagKeys and GetTagValues --------------------------------------------------------------

TAG_PAGE_SIZE = 500


def _distinct_page(call: Call, items: list[str], key: str) -> dict[str, Any]:
    """One page of distinct, sorted strings, with the same token rules as GetResources."""
    from moto.resourcegroupstaggingapi.models import resourcegroupstaggingapi_backends

    backend = resourcegroupstaggingapi_backends[call.account_id][call.region]
    store = attached(backend, _PageStore)
    token = call.params.get("PaginationToken") or None
    now = clock.now()
    if token:
        with store.lock:
            pending = store.pages.get(token)
        if pending is None or now - pending.created > TOKEN_LIFETIME or pending.tags_per_page != -1:
            raise ServiceError(
                "PaginationTokenExpiredException",
                "The PaginationToken is not valid or has expired; start the query again.",
            )
    else:
        pending = _Pending([{"v": v} for v in sorted(set(items))], TAG_PAGE_SIZE, -1, now)
    budget = _short_page_budget(TAG_PAGE_SIZE, pending.pages_served)
    page, rest = pending.remaining[:budget], pending.remaining[budget:]
    result: dict[str, Any] = {key: [item["v"] for item in page]}
    if rest:
        next_token = str(uuid.uuid4())
        with store.lock:
            store.pages[next_token] = _Pending(
                rest, TAG_PAGE_SIZE, -1, pending.created, pending.pages_served + 1
            )
        result["PaginationToken"] = next_token
    return result


@operation("resourcegroupstaggingapi", "GetTagKeys")
def get_tag_keys(call: Call) -> dict[str, Any]:
    keys = [k for seen in visible(call.account_id, call.region) for k in seen.tags]
    return _distinct_page(call, keys, "TagKeys")


@operation("resourcegroupstaggingapi", "GetTagValues")
def get_tag_values(call: Call) -> dict[str, Any]:
    wanted = call.params["Key"]
    values = [
        seen.tags[wanted] for seen in visible(call.account_id, call.region) if wanted in seen.tags
    ]
    return _distinct_page(call, values, "TagValues")
