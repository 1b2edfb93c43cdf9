"""The lease table in DynamoDB: one item per target, plus one heartbeat item per live replica.

Item layout (partition key ``target``, a string):

* a lease: ``target`` = the target name, ``holder`` = the replica id, ``version`` (a number that
  every acquire and renew increments), ``expiresAt`` / ``renewedAt`` (the holder's wall clock, for
  people reading the table; decisions never compare clocks across machines);
* a heartbeat: ``target`` = ``replica#<id>``, the same attributes, ``kind`` = ``replica``.

Every change to a lease is a conditional write on the (holder, version) the writer last saw, so
of two replicas racing for one lease exactly one write succeeds and the other learns who won.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from controller.aws import AwsApi, error_code

KEY = "target"
REPLICA_PREFIX = "replica#"
KIND_LEASE = "lease"
KIND_REPLICA = "replica"
_CONDITION_FAILED = "ConditionalCheckFailedException"
MAX_ANNOUNCED_DURATION = 3600.0  # a lease claiming longer is not believed beyond this


@dataclass(frozen=True)
class LeaseRecord:
    key: str
    holder: str
    version: int
    renewed_at: float = 0.0  # the writer's wall clock: informational only
    expires_at: float = 0.0  # renewed_at + lease duration, likewise informational
    kind: str = KIND_LEASE

    @property
    def announced_duration(self) -> float:
        """How long its writer said it lasts (both times from the writer's one clock, so their
        difference is the writer's lease duration whatever the skew), at most an hour."""
        return min(max(0.0, self.expires_at - self.renewed_at), MAX_ANNOUNCED_DURATION)

    def patience(self, own_duration: float) -> float:
        """How long an observer watches it unchanged before its writer counts as gone: the
        observer's duration, or the writer's when longer (replicas, or an apply, configured
        with different ``--lease-duration``s)."""
        return max(own_duration, self.announced_duration)

    @property
    def identity(self) -> tuple[str, int]:
        """What changes on every write; unchanged for a lease duration means nobody renews it."""
        return (self.holder, self.version)


class LeaseConflict(Exception):
    """A conditional write lost: the item is no longer what the writer saw."""

    def __init__(self, key: str, current: LeaseRecord | None) -> None:
        holder = current.holder if current else "nobody"
        super().__init__(f"lease {key} changed: now held by {holder}")
        self.key = key
        self.current = current


def missing_table(table: LeaseTable, error: Exception) -> str | None:
    """The message for a lease table that does not exist (a deployment error), else None."""
    if error_code(error) != "ResourceNotFoundException":
        return None
    return (
        f"lease table {table.name!r} does not exist in {table.aws.region}"
        " (create it with partition key 'target', a string)"
    )


def replica_key(replica_id: str) -> str:
    return f"{REPLICA_PREFIX}{replica_id}"


class LeaseTable:
    """Reads and conditional writes of lease items, every one through ``AwsApi`` (and counted)."""

    def __init__(self, aws: AwsApi, name: str) -> None:
        self.aws = aws
        self.name = name

    def scan(self) -> dict[str, LeaseRecord]:
        """Every lease and heartbeat item, strongly consistent."""
        records: dict[str, LeaseRecord] = {}
        # Scan's paginator has several result keys (Items, Count, ...): read Items per page.
        for page in self.aws.pages("dynamodb", "Scan", TableName=self.name, ConsistentRead=True):
            for item in page.get("Items", []):
                record = _record(item)
                if record is not None:
                    records[record.key] = record
        return records

    def get(self, key: str) -> LeaseRecord | None:
        answer = self.aws.call(
            "dynamodb", "GetItem", TableName=self.name, Key=_key(key), ConsistentRead=True
        )
        return _record(answer.get("Item") or {})

    def create(self, key: str, holder: str, now: float, duration: float) -> LeaseRecord:
        """Take a lease nobody holds (no item): succeeds for exactly one of racing writers.

        The first version is the wall clock in milliseconds, not 1, so a lease deleted and
        created again never repeats a (holder, version) an observer may still remember.
        """
        record = LeaseRecord(key, holder, max(1, int(now * 1000)), now, now + duration)
        with _conflicts(key):
            self.aws.call(
                "dynamodb",
                "PutItem",
                TableName=self.name,
                Item=_item(record),
                ConditionExpression="attribute_not_exists(#key)",
                ExpressionAttributeNames={"#key": KEY},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        return record

    def advance(self, seen: LeaseRecord, holder: str, now: float, duration: float) -> LeaseRecord:
        """Renew (``holder`` == ``seen.holder``) or take over: only if nothing changed since seen."""
        with _conflicts(seen.key):
            self.aws.call(
                "dynamodb",
                "UpdateItem",
                TableName=self.name,
                Key=_key(seen.key),
                UpdateExpression="SET #holder = :holder, #version = :next, #expires = :expires, "
                "#renewed = :renewed, #kind = :kind",
                ConditionExpression="#holder = :seen_holder AND #version = :seen_version",
                ExpressionAttributeNames={
                    "#holder": "holder",
                    "#version": "version",
                    "#expires": "expiresAt",
                    "#renewed": "renewedAt",
                    "#kind": "kind",
                },
                ExpressionAttributeValues={
                    ":holder": {"S": holder},
                    ":next": {"N": str(seen.version + 1)},
                    ":expires": {"N": _number(now + duration)},
                    ":renewed": {"N": _number(now)},
                    ":kind": {"S": seen.kind},
                    ":seen_holder": {"S": seen.holder},
                    ":seen_version": {"N": str(seen.version)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        return LeaseRecord(seen.key, holder, seen.version + 1, now, now + duration, seen.kind)

    def release(self, held: LeaseRecord) -> None:
        """Delete the item if it is still exactly what was held (a clean hand-over)."""
        with _conflicts(held.key):
            self.aws.call(
                "dynamodb",
                "DeleteItem",
                TableName=self.name,
                Key=_key(held.key),
                ConditionExpression="#holder = :holder AND #version = :version",
                ExpressionAttributeNames={"#holder": "holder", "#version": "version"},
                ExpressionAttributeValues={
                    ":holder": {"S": held.holder},
                    ":version": {"N": str(held.version)},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )

    def heartbeat(self, replica_id: str, version: int, now: float, duration: float) -> LeaseRecord:
        """Announce a live replica (its own item; nobody else writes it while it beats)."""
        record = LeaseRecord(
            replica_key(replica_id), replica_id, version, now, now + duration, KIND_REPLICA
        )
        self.aws.call("dynamodb", "PutItem", TableName=self.name, Item=_item(record))
        return record


@contextmanager
def _conflicts(key: str) -> Iterator[None]:
    """A failed condition becomes LeaseConflict, carrying the item as it is now."""
    try:
        yield
    except ClientError as error:
        if error_code(error) != _CONDITION_FAILED:
            raise
        item: Any = error.response.get("Item")
        current = _record(item if isinstance(item, dict) else {})
        raise LeaseConflict(key, current) from None


def _key(key: str) -> dict[str, Any]:
    return {KEY: {"S": key}}


def _number(value: float) -> str:
    return f"{value:.3f}"


def _item(record: LeaseRecord) -> dict[str, Any]:
    return {
        KEY: {"S": record.key},
        "holder": {"S": record.holder},
        "version": {"N": str(record.version)},
        "expiresAt": {"N": _number(record.expires_at)},
        "renewedAt": {"N": _number(record.renewed_at)},
        "kind": {"S": record.kind},
    }


def _record(item: dict[str, Any]) -> LeaseRecord | None:
    try:
        key = item[KEY]["S"]
        holder = item["holder"]["S"]
        version = int(item["version"]["N"])
    except (KeyError, TypeError, ValueError):
        return None
    kind = item.get("kind", {}).get("S") or (
        KIND_REPLICA if key.startswith(REPLICA_PREFIX) else KIND_LEASE
    )
    return LeaseRecord(
        key, holder, version, _float(item, "renewedAt"), _float(item, "expiresAt"), kind
    )


def _float(item: dict[str, Any], name: str) -> float:
    try:
        return float(item.get(name, {}).get("N", "0"))
    except (AttributeError, TypeError, ValueError):
        return 0.0
