"""EventBridge events, as AWS emits them, for what happens in the sandbox.

AWS puts service events on the account's default event bus, where rules route them. Here moto's
EventBridge does the routing (a rule with an SQS target delivers to moto's SQS), so a controller
reads them from a real queue over the SQS API, as it would on AWS. Emitted, on the sandbox clock:

- ``Tag Change on Resource`` (source ``aws.tag``) for every tag change of a WorkSpaces resource or
  an SSM resource made through the API: in ``detail`` the whole tag set after the change
  (``tags``), the keys that changed (``changed-tag-keys``), ``service``, ``resource-type`` and a
  per-resource ``version``; the resource's ARN in ``resources`` (AWS's documented example).
- ``AWS API Call via CloudTrail`` (source ``aws.workspaces`` / ``aws.ssm``) for the write calls in
  ``CLOUDTRAIL_CALLS`` the sandbox serves: ``detail`` is shaped like a CloudTrail record
  (``eventSource``, ``eventName``, ``eventTime``, ``awsRegion``, ``requestParameters`` and
  ``responseElements`` with camelCase member names, ``readOnly``, ``eventType``).
- ``SSM Managed Instance Registration`` / ``SSM Managed Instance Deregistration`` (source
  ``aws.ssm``): AWS lists both among the events SSM sends to EventBridge, but we found no
  documented ``detail``; here it holds ``instance-id`` only, and the instance's ARN is in
  ``resources`` (what a consumer should read).

moto delivers an event without its ``account`` field; AWS's envelope has it (consumers check it),
so the sandbox restores it (``_deliver_whole_envelopes``).

The fleet simulator's agents register through ``register_instance`` (one event each); its power
switch (``POST /_sandbox/fleet/terminate`` ...) and WorkSpace creation stand for an admin calling
the API, so they emit the CloudTrail event that call would. Nothing is emitted (and nothing costs
anything) while the default bus has no rule. The sandbox never decides what a consumer does.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from fleet_sandbox.clock import clock
from fleet_sandbox.extension import Call, Finish, around_handled
from fleet_sandbox.server import on_reset

log = logging.getLogger(__name__)

EVENT_SOURCES = {"workspaces": "aws.workspaces", "ssm": "aws.ssm"}
API_CALL = "AWS API Call via CloudTrail"
TAG_CHANGE = "Tag Change on Resource"
REGISTRATION = "SSM Managed Instance Registration"
DEREGISTRATION = "SSM Managed Instance Deregistration"
CLOUDTRAIL_CALLS = frozenset(
    {
        ("workspaces", "CreateWorkspaces"),
        ("workspaces", "TerminateWorkspaces"),
        ("workspaces", "RebuildWorkspaces"),
        ("workspaces", "RestoreWorkspace"),
        ("workspaces", "MigrateWorkspace"),
        ("workspaces", "ModifyWorkspaceProperties"),
        ("workspaces", "ModifyWorkspaceState"),
        ("workspaces", "StartWorkspaces"),
        ("workspaces", "StopWorkspaces"),
        ("workspaces", "RebootWorkspaces"),
        ("workspaces", "CreateTags"),
        ("workspaces", "DeleteTags"),
        ("ssm", "AddTagsToResource"),
        ("ssm", "RemoveTagsFromResource"),
        ("ssm", "DeregisterManagedInstance"),
    }
)
_TAG_CALLS = {
    ("workspaces", "CreateTags"),
    ("workspaces", "DeleteTags"),
    ("ssm", "AddTagsToResource"),
    ("ssm", "RemoveTagsFromResource"),
}
_lock = threading.Lock()
_versions: dict[str, int] = {}  # ARN -> the version of its last Tag Change event


def _deliver_whole_envelopes() -> None:
    """moto's default target input leaves out ``account``; AWS delivers the whole event."""
    from moto.events.utils import EventTemplateParser

    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = (
        '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>",'
        ' "account": "<account>", "time": <time>, "region": "<region>",'
        ' "resources": <resources>, "detail": <detail>}'
    )


_deliver_whole_envelopes()


@on_reset
def _reset() -> None:
    with _lock:
        _versions.clear()


def _bus_has_rules(account_id: str, region: str) -> bool:
    from moto.events.models import events_backends

    try:
        bus = events_backends[account_id][region].describe_event_bus("default")
    except Exception:
        return False
    return bool(bus.rules)


def emit(
    account_id: str,
    region: str,
    source: str,
    detail_type: str,
    detail: Mapping[str, Any],
    resources: Iterable[str] = (),
) -> None:
    """Put one event on the default bus (its rules deliver it); never fails the caller."""
    if not _bus_has_rules(account_id, region):
        return
    from moto.events.models import events_backends

    entry = {
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail, default=str),
        "Resources": list(resources),
        "Time": clock.now().timestamp(),
    }
    try:
        with _lock:  # moto's SQS queues are not meant for concurrent senders
            events_backends[account_id][region].put_events([entry])
    except Exception:  # an event lost is what "best effort" means; the call itself stands
        log.exception("could not emit %s", detail_type)


def api_call(
    account_id: str,
    region: str,
    service: str,
    operation: str,
    request: Mapping[str, Any],
    response: Any = None,
) -> None:
    """The CloudTrail record of a write call, as EventBridge delivers it."""
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "accountId": account_id},
        "eventTime": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{service}.amazonaws.com",
        "eventName": operation,
        "awsRegion": region,
        "requestParameters": _camel(dict(request)) or None,
        "responseElements": _camel(_parsed(response)) or None,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account_id,
    }
    emit(account_id, region, EVENT_SOURCES[service], API_CALL, detail)


def tags_changed(
    account_id: str,
    region: str,
    arn: str,
    before: Mapping[str, str],
    after: Mapping[str, str],
) -> None:
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if not changed:
        return
    service, resource_type = _arn_kind(arn)
    with _lock:
        version = _versions[arn] = _versions.get(arn, 0) + 1
    detail = {
        "changed-tag-keys": changed,
        "service": service,
        "resource-type": resource_type,
        "version": version,
        "tags": dict(after),
    }
    emit(account_id, region, "aws.tag", TAG_CHANGE, detail, [arn])


def instance_registered(account_id: str, region: str, instance_id: str) -> None:
    _instance_event(account_id, region, instance_id, REGISTRATION)


def _instance_event(account_id: str, region: str, instance_id: str, detail_type: str) -> None:
    arn = f"arn:aws:ssm:{region}:{account_id}:managed-instance/{instance_id}"
    emit(account_id, region, "aws.ssm", detail_type, {"instance-id": instance_id}, [arn])


@around_handled
def _around(call: Call) -> Finish | None:
    """Emit what AWS would for a handled call, once it succeeded."""
    key = (call.service, call.operation)
    if key not in CLOUDTRAIL_CALLS or not _bus_has_rules(call.account_id, call.region):
        return None
    tagged = _tagged_resource(call) if key in _TAG_CALLS else None
    before = dict(tagged[1]) if tagged is not None else None

    def finish(result: Any) -> None:
        api_call(call.account_id, call.region, call.service, call.operation, call.params, result)
        if tagged is not None and before is not None:
            arn, _ = tagged
            after = _tagged_resource(call)
            tags_changed(call.account_id, call.region, arn, before, after[1] if after else {})
        if key == ("ssm", "DeregisterManagedInstance"):
            _instance_event(call.account_id, call.region, call.params["InstanceId"], DEREGISTRATION)

    return finish


def _tagged_resource(call: Call) -> tuple[str, dict[str, str]] | None:
    """(ARN, current tags) of the resource a tag call names; None when it does not exist."""
    try:
        if call.service == "workspaces":
            from fleet_sandbox.workspaces import resource_tags, workspaces_arn

            resource_id = call.params["ResourceId"]
            return workspaces_arn(call, resource_id), resource_tags(call, resource_id)
        from fleet_sandbox.ssm_tags import current_tags, ssm_arn

        tags = current_tags(call)
        if tags is None:
            return None
        arn = ssm_arn(
            call.region, call.account_id, call.params["ResourceType"], call.params["ResourceId"]
        )
        return arn, dict(tags)
    except Exception:  # the call itself will answer the error
        return None


def _arn_kind(arn: str) -> tuple[str, str]:
    parts = arn.split(":", 5)
    return parts[2], parts[5].split("/", 1)[0]


def _parsed(response: Any) -> Any:
    """A handler's answer as a dict (moto's own answers are JSON text)."""
    if isinstance(response, (str, bytes)):
        try:
            response = json.loads(response)
        except ValueError:
            return None
    return response if isinstance(response, dict) else None


def _camel(value: Any) -> Any:
    """AWS member names as CloudTrail spells them: the first letter lower case."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


__all__ = [
    "API_CALL",
    "CLOUDTRAIL_CALLS",
    "DEREGISTRATION",
    "REGISTRATION",
    "TAG_CHANGE",
    "api_call",
    "emit",
    "instance_registered",
    "tags_changed",
]
