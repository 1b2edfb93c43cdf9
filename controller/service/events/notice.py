"""One EventBridge event, read: which WorkSpaces and managed instances it names (pure).

Three shapes arrive (the rules in ``deploy/events/fleet-events.yaml`` let nothing else through):

- ``Tag Change on Resource`` (source ``aws.tag``): the resource's ARN in ``resources``; in
  ``detail`` the whole tag set after the change (``tags``) and the keys that changed;
- ``AWS API Call via CloudTrail`` (sources ``aws.workspaces``, ``aws.ssm``): a CloudTrail record in
  ``detail`` (``eventName``, ``requestParameters``, ``responseElements``);
- ``SSM Managed Instance Registration`` / ``Deregistration`` (source ``aws.ssm``).

The resources an event names are found by their ID patterns (``ws-`` + 8..63 of [0-9a-z], ``mi-``
+ 17 hex digits) in its ARNs and anywhere in the CloudTrail request and response, so a record's
exact layout (``workspaceIds``, ``terminateWorkspaceRequests[].workspaceId``, ``resourceId``,
``instanceId``...) does not matter; the tags a tag call sets are not looked in (they are values, and
the controller's own ``fleet-controller/workspace-id`` holds a WorkSpace's id). An event is data from outside: it is bounded (depth, values)
before it is walked, names at most ``MAX_NAMED`` resources, and an event that is not what a rule
lets through is a ``BadEvent``. A CloudTrail record of a call AWS refused (``errorCode``) names
nothing: the call changed nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.contract import Changes

WORKSPACE_ID = re.compile(r"(?<![0-9a-z-])ws-[0-9a-z]{8,63}(?![0-9a-z])")
INSTANCE_ID = re.compile(r"(?<![0-9a-z-])mi-[0-9a-f]{17}(?![0-9a-z])")
TAG_CHANGE = "Tag Change on Resource"
API_CALL = "AWS API Call via CloudTrail"
REGISTRATION = "SSM Managed Instance Registration"
DEREGISTRATION = "SSM Managed Instance Deregistration"
KNOWN_SOURCES = frozenset({"aws.tag", "aws.workspaces", "aws.ssm"})
MAX_BODY = 256 * 1024  # SQS's largest message
MAX_DEPTH = 12
MAX_VALUES = 5000
# The most resources one delivered event can name: a WorkSpaces batch call takes at most 25
# (CreateWorkspaces, TerminateWorkspaces), and its response repeats or adds at most 25 more. An
# event naming more is not one AWS sends: read, it would cost up to two calls per id (10,000 ids in
# one 256 KB string: up to 10,400 calls at 2 calls/s) and hold the worker for an hour.
MAX_NAMED = 50
TAG_CALLS = frozenset({"CreateTags", "DeleteTags", "AddTagsToResource", "RemoveTagsFromResource"})


class BadEvent(ValueError):
    """A message that is not an event the rules deliver (the reason never quotes its body)."""


@dataclass(frozen=True)
class Notice:
    """What one event says: its type (a metric label), the resources it names, and what it
    claims about their tags (to tell an echo of a write already known from news)."""

    type: str
    account: str
    region: str
    changes: Changes
    tags: Mapping[str, str] | None = None  # Tag Change: the whole tag set after the change
    added: Mapping[str, str] = field(default_factory=dict)  # a tag call: what it set
    removed: frozenset[str] = frozenset()  # a tag call: the keys it removed


def parse_event(body: str | bytes) -> Notice:
    """The notice in an SQS message body holding one EventBridge event."""
    if len(body) > MAX_BODY:
        raise BadEvent(f"message of {len(body)} bytes is larger than SQS allows")
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadEvent("message is not JSON") from None
    except RecursionError:  # [[[...]]] of 256 KB: the decoder's own depth limit
        raise BadEvent(f"event nests deeper than {MAX_DEPTH} levels") from None
    if not isinstance(event, dict):
        raise BadEvent("message is not a JSON object")
    source, detail_type = event.get("source"), event.get("detail-type")
    detail = event.get("detail")
    if source not in KNOWN_SOURCES or not isinstance(detail_type, str):
        raise BadEvent("not an event from aws.tag, aws.workspaces or aws.ssm")
    if not isinstance(detail, dict):
        raise BadEvent("event has no detail object")
    account, region = event.get("account"), event.get("region")
    if not isinstance(account, str) or not isinstance(region, str):
        raise BadEvent("event names no account or region")
    resources = event.get("resources") or []
    if not isinstance(resources, list):
        raise BadEvent("event resources is not a list")
    strings = [r for r in resources if isinstance(r, str)]
    if detail_type == API_CALL:
        name = detail.get("eventName")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z]{1,64}", name):
            raise BadEvent("CloudTrail event without an eventName")
        if detail.get("errorCode"):  # AWS refused the call: it changed nothing to read again
            return Notice(name, account, region, Changes())
        strings += _strings(_without_tags(detail.get("requestParameters")))
        strings += _strings(detail.get("responseElements"))
        added, removed = _tag_call(name, detail.get("requestParameters"))
        return Notice(name, account, region, _named(strings), added=added, removed=removed)
    if detail_type in (TAG_CHANGE, REGISTRATION, DEREGISTRATION):
        strings += _strings(detail.get("instance-id"))
        tags = _tag_set(detail.get("tags")) if detail_type == TAG_CHANGE else None
        return Notice(detail_type, account, region, _named(strings), tags=tags)
    raise BadEvent("an event type no rule delivers")


def _named(strings: list[str]) -> Changes:
    text = "\n".join(strings)
    named = Changes(frozenset(WORKSPACE_ID.findall(text)), frozenset(INSTANCE_ID.findall(text)))
    if len(named) > MAX_NAMED:
        raise BadEvent(f"event names {len(named)} resources, more than {MAX_NAMED}")
    return named


def _without_tags(request: Any) -> Any:
    """A request without its tags: tag values are data (a copied ``fleet-controller/workspace-id``
    names a WorkSpace), never the resource the call is about."""
    if isinstance(request, dict):
        return {k: v for k, v in request.items() if str(k).lower() != "tags"}
    return request


def _strings(value: Any) -> list[str]:
    """Every string in a JSON value (keys excluded), bounded in depth and count."""
    found: list[str] = []
    for item in _walk(value, 0):
        found.append(item)
        if len(found) >= MAX_VALUES:
            raise BadEvent(f"event holds more than {MAX_VALUES} values")
    return found


def _walk(value: Any, depth: int) -> Iterator[str]:
    if depth > MAX_DEPTH:
        raise BadEvent(f"event nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, depth + 1)


def _tag_set(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict) or len(value) > 50:
        return None
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return None
    return dict(value)


def _tag_call(name: str, request: Any) -> tuple[dict[str, str], frozenset[str]]:
    """What a CloudTrail tag call set and removed (members read case-insensitively)."""
    if name not in TAG_CALLS or not isinstance(request, dict):
        return {}, frozenset()
    members = {str(k).lower(): v for k, v in request.items()}
    added: dict[str, str] = {}
    for tag in members.get("tags") or []:
        if isinstance(tag, dict):
            fields = {str(k).lower(): v for k, v in tag.items()}
            key, value = fields.get("key"), fields.get("value", "")
            if isinstance(key, str) and isinstance(value, str):
                added[key] = value
    keys = members.get("tagkeys")
    removed = frozenset(k for k in keys if isinstance(k, str)) if isinstance(keys, list) else ()
    return added, frozenset(removed)


__all__ = ["API_CALL", "TAG_CHANGE", "BadEvent", "Notice", "parse_event"]
