"""TagSync: WorkSpaces tags and attributes copied onto the matching SSM managed instances.

Tags on a WorkSpace do not follow it into SSM, so State Manager cannot target by them until someone
copies them. The controller owns exactly the keys a TagSync spec can produce: it writes a key only
when its value differs, removes an owned key no longer desired, and never touches other keys.

Reads are bulk: DescribeWorkspaces (25 a page), DescribeInstanceInformation (50 a page) and one
tagging-API GetResources walk for the tags of both (100 a page). When the tagging API is denied,
tags are read per resource instead (and WorkSpaces' one-per-call DescribeTags is slow: 2 calls/s).
Pages are turned into compact records as they arrive, so the fleet is held once.

With a ``ctx.memory`` (``run``, and every Reconciler) the live state is kept between passes in a
``FleetInformer`` (``informer.py``): relists and event-driven targeted reads fill it, acknowledged
writes are folded in, and a lagging tagging API can neither cause a second write nor phantom
drift. A targeted pass (``observe_changes``) reads only the WorkSpaces and instances an event
named and plans only for what they touch.

The diff computes what repeats across a fleet once per pass: the keys a TagSync copies per
distinct set of WorkSpace tag keys, each key's and value's writability, key ownership, and the
matching (shared with ``health``).

WorkSpaces are read in every directory, not only the ones the TagSyncs select, because pruning
deregisters instances: an instance is stale only when no WorkSpace anywhere in the account and
Region (any directory, any state but TERMINATED) matches it, and only one carrying this
controller's owner tag is ever deregistered. Removing a TagSync therefore stops managing its keys
and never makes the instances it tagged look stale.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import lru_cache
from typing import Any

from controller.aws import AwsApi, error_code, is_access_denied
from controller.aws.tags import tag_dict, tag_list
from controller.contract import OWNER_TAG, WORKSPACE_ID_TAG, crash_point, is_owned
from controller.kinds.base import (
    Action,
    Changes,
    Context,
    Event,
    Exported,
    FieldChange,
    GaugeFamily,
    Health,
    Kind,
    KindPlan,
    KindStatus,
    Operation,
    ResourceStatus,
    Severity,
    Step,
    Targeted,
)
from controller.kinds.informer import FleetInformer, Snapshot
from controller.kinds.matching import (
    LiveInstance,
    LiveWorkspace,
    Matches,
    host_part,
    live_workspace,
    match_instances,
)
from controller.manifests import Manifest, TagSyncSpec, tag_key_problem, tag_value_problem

KIND = "TagSync"
MAX_INSTANCE_TAGS = 50
ONBOARDING_STATES = frozenset({"AVAILABLE"})  # a WorkSpace in these states should be registered
GONE_STATE = "TERMINATED"  # the only state whose WorkSpace no longer vouches for its instance
PING_STATUSES = ("Online", "ConnectionLost", "Inactive")  # botocore ssm PingStatus enum
# Registrations under way: while an instance registered this recently and WorkSpaces are still
# not onboarded, the next pass comes sooner than the interval.
REGISTERING_WINDOW = timedelta(minutes=10)
REGISTERING_REQUEUE = timedelta(minutes=1)
WORKSPACE_IDS_PER_CALL = 25  # DescribeWorkspaces WorkspaceIds: 1..25
INSTANCE_IDS_PER_CALL = 50  # DescribeInstanceInformation: one page of 50 for 50 ids

NOT_ONBOARDED = GaugeFamily(
    name="workspaces_not_onboarded",
    help="WorkSpaces selected by a TagSync that have no managed instance.",
    labels=("tagsync",),
)
STALE = GaugeFamily(
    name="stale_instances",
    help="Managed instances no WorkSpace in the account and Region matches (or superseded).",
    labels=("tagsync",),
)
MANAGED_INSTANCES = GaugeFamily(
    name="managed_instances",
    help="SSM managed instances by ping status.",
    labels=("ping_status",),
)


@dataclass
class TagSyncLive:
    workspaces: list[LiveWorkspace]
    instances: list[LiveInstance]
    tag_source: str = "tagging-api"
    # A targeted pass: plan only for these WorkSpaces and instances (and what they match).
    scope: frozenset[str] | None = None
    _matches: dict[tuple[tuple[str, ...], str], Matches] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def matches(self, order: tuple[str, ...], controller_id: str) -> Matches:
        """The matching, computed once per pass (diff and health both need it)."""
        key = (order, controller_id)
        if key not in self._matches:
            self._matches[key] = match_instances(
                existing_workspaces(self), self.instances, order, controller_id
            )
        return self._matches[key]

    @classmethod
    def of(cls, snapshot: Snapshot, scope: frozenset[str] | None = None) -> TagSyncLive:
        return cls(snapshot.workspaces, snapshot.instances, snapshot.tag_source, scope)


@dataclass(frozen=True, kw_only=True)
class ChangeTags(Step):
    instance_id: str
    add: dict[str, str] = field(default_factory=dict)
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Deregister(Step):
    instance_id: str


def selects(manifest: Manifest, workspace: LiveWorkspace) -> bool:
    scope = manifest.spec.workspaces
    if scope.directory_ids and workspace.directory_id not in scope.directory_ids:
        return False
    if scope.bundle_ids and workspace.bundle_id not in scope.bundle_ids:
        return False
    return workspace.state in scope.states


@dataclass
class WantedTags:
    """What every TagSync selecting one WorkSpace wants on its instance, together."""

    tags: dict[str, str] = field(default_factory=dict)  # keys they disagree on are left out
    owners: set[str] = field(default_factory=set)  # the TagSyncs selecting the WorkSpace
    conflicts: set[str] = field(default_factory=set)  # keys with two different values
    refused: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (name, key, why)


def wanted_for(desired: list[Manifest], workspace: LiveWorkspace) -> WantedTags:
    """The tags the instance of ``workspace`` should carry: the one answer for TagSync's diff and
    for the activation a WorkSpace enrolls with (so it registers already tagged)."""
    return Wants(desired).of(workspace)


class Wants:
    """What the TagSyncs want, with what repeats across a fleet worked out once: the keys a
    TagSync copies per distinct set of WorkSpace tag keys, and which keys it owns."""

    def __init__(self, desired: list[Manifest]) -> None:
        self.desired = desired
        self._copied: dict[tuple[str, tuple[str, ...]], dict[str, str]] = {}
        self._owned: dict[tuple[str, str], bool] = {}

    def of(self, workspace: LiveWorkspace) -> WantedTags:
        found = WantedTags()
        for manifest in self.desired:
            if not selects(manifest, workspace):
                continue
            found.owners.add(manifest.name)
            for key, value in self.tags(manifest, workspace).items():
                problem = unwritable(key, value)
                if problem:
                    found.refused[(manifest.name, key, problem)] += 1
                    continue
                if key in found.tags and found.tags[key] != value:
                    found.conflicts.add(key)
                found.tags[key] = value
        for key in found.conflicts:
            found.tags.pop(key, None)
        return found

    def tags(self, manifest: Manifest, workspace: LiveWorkspace) -> dict[str, str]:
        keys = tuple(workspace.tags)
        copied = self._copied.get((manifest.name, keys))
        if copied is None:
            copied = self._copied[(manifest.name, keys)] = manifest.spec.produced_keys_for(keys)
        return desired_tags(manifest, workspace, copied)

    def owns(self, manifest: Manifest, key: str) -> bool:
        owned = self._owned.get((manifest.name, key))
        if owned is None:
            owned = self._owned[(manifest.name, key)] = bool(manifest.spec.owns_key(key))
        return owned


def desired_tags(
    manifest: Manifest, workspace: LiveWorkspace, copied: dict[str, str] | None = None
) -> dict[str, str]:
    """The tags one TagSync wants on the instance of one WorkSpace (``copied``: its
    ``produced_keys_for`` the WorkSpace's tag keys, when the caller has it already)."""
    spec = manifest.spec
    tags: dict[str, str] = {WORKSPACE_ID_TAG: workspace.workspace_id}
    if copied is None:
        copied = spec.produced_keys_for(list(workspace.tags))
    for source, target in copied.items():
        tags[target] = workspace.tags[source]
    attributes = spec.attributes
    for attribute, value in (
        (attributes.user_name, workspace.user_name),
        (attributes.bundle_id, workspace.bundle_id),
        (attributes.directory_id, workspace.directory_id),
        (attributes.running_mode, workspace.running_mode),
        (attributes.compute_type, workspace.compute_type),
        (attributes.operating_system, workspace.operating_system),
        (attributes.computer_name, workspace.computer_name),
        (attributes.ip_address, workspace.ip_address),
    ):
        if attribute:
            tags[attribute] = value
    tags.update(spec.static_tags)
    return tags


class TagSyncKind(Kind[TagSyncLive]):
    kind = KIND
    spec_model = TagSyncSpec
    gauges = (NOT_ONBOARDED, STALE, MANAGED_INSTANCES)

    # -- observe ---------------------------------------------------------------------------------
    def observe(self, aws: AwsApi, desired: list[Manifest], ctx: Context) -> TagSyncLive:
        informer = _informer(ctx)
        started = time.monotonic()
        workspaces, instances, source = self._list(aws)
        if informer is None:
            return TagSyncLive(workspaces, instances, source)
        window = ctx.memory.consistency_window if ctx.memory else timedelta(0)
        return TagSyncLive.of(
            informer.relisted(workspaces, instances, source, started, ctx.now, window)
        )

    def _list(self, aws: AwsApi) -> tuple[list[LiveWorkspace], list[LiveInstance], str]:
        """The whole fleet, each page turned into compact records as it arrives.

        WorkSpaces and instances are listed before their tags are read: an instance that
        registers meanwhile is either not listed yet or listed with the tags it registered with
        (read after it), never listed without them (which would plan a needless write)."""
        # Every directory, not only the ones the TagSyncs select: an instance is stale only when
        # no WorkSpace anywhere in the account and Region matches it.
        workspaces = [
            live_workspace(item, {})
            for item in aws.items("workspaces", "DescribeWorkspaces", Limit=25)
        ]
        instances = [_instance(item, {}) for item in self._instance_items(aws)]
        try:
            workspace_tags, instance_tags = self._tags_in_bulk(aws)
            source = "tagging-api"
        except Exception as error:
            if not is_access_denied(error):
                raise
            workspace_tags = {
                w.workspace_id: self._workspace_tags(aws, w.workspace_id) for w in workspaces
            }
            instance_tags = {
                i.instance_id: self._instance_tags(aws, i.instance_id) for i in instances
            }
            source = "per-resource"
        shared = _TagSets()
        return (
            [
                replace(w, tags=shared.of(tags))
                if (tags := workspace_tags.pop(w.workspace_id, None))
                else w
                for w in workspaces
            ],
            [
                replace(i, tags=tags) if (tags := instance_tags.pop(i.instance_id, None)) else i
                for i in instances
            ],
            source,
        )

    def _instance_items(
        self, aws: AwsApi, ids: list[str] | None = None
    ) -> Iterator[dict[str, Any]]:
        filters = [{"Key": "ResourceType", "Values": ["ManagedInstance"]}]
        if ids is not None:  # by id (a filter of its own: filters of several keys AND together)
            filters = [{"Key": "InstanceIds", "Values": ids}]
        return aws.items(
            "ssm", "DescribeInstanceInformation", Filters=filters, MaxResults=INSTANCE_IDS_PER_CALL
        )

    def _instances_by_id(self, aws: AwsApi, ids: list[str]) -> list[dict[str, Any]]:
        """The instances of ``ids`` that exist and are visible. AWS refuses the whole call
        (InvalidInstanceId) when one is not: halve the batch until the refused ones are alone,
        a few more calls for the rare batch with a deregistered or not-yet-listed instance."""
        try:
            return list(self._instance_items(aws, ids))
        except Exception as error:
            if error_code(error) != "InvalidInstanceId":
                raise
        if len(ids) == 1:
            return []
        half = len(ids) // 2
        return self._instances_by_id(aws, ids[:half]) + self._instances_by_id(aws, ids[half:])

    def _tags_in_bulk(
        self, aws: AwsApi
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
        workspace_tags: dict[str, dict[str, str]] = {}
        instance_tags: dict[str, dict[str, str]] = {}
        for item in aws.items(
            "resourcegroupstaggingapi",
            "GetResources",
            ResourceTypeFilters=["workspaces:workspace", "ssm:managed-instance"],
            ResourcesPerPage=100,
        ):
            arn: str = item["ResourceARN"]
            tags = tag_dict(item.get("Tags"))
            resource = arn.rsplit("/", 1)[-1]
            if ":workspace/" in arn:
                workspace_tags[resource] = tags
            elif ":managed-instance/" in arn:
                instance_tags[resource] = tags
        return workspace_tags, instance_tags

    def _workspace_tags(self, aws: AwsApi, workspace_id: str) -> dict[str, str]:
        response = aws.call("workspaces", "DescribeTags", ResourceId=workspace_id)
        return tag_dict(response.get("TagList"))

    def _instance_tags(self, aws: AwsApi, instance_id: str) -> dict[str, str]:
        response = aws.call(
            "ssm", "ListTagsForResource", ResourceType="ManagedInstance", ResourceId=instance_id
        )
        return tag_dict(response.get("TagList"))

    def observe_cached(self, desired: list[Manifest], ctx: Context) -> TagSyncLive | None:
        informer = _informer(ctx)
        if informer is None or not informer.warm:
            return None
        return TagSyncLive.of(informer.snapshot())

    def observe_changes(
        self, aws: AwsApi, desired: list[Manifest], changes: Changes, ctx: Context
    ) -> Targeted[TagSyncLive] | None:
        """Consistent reads of only the named resources (DescribeWorkspaces and
        DescribeInstanceInformation by id, their tags one resource at a time: the tagging API
        would show what an event just changed minutes late), folded into the cache."""
        informer = _informer(ctx)
        if informer is None or not informer.warm or not changes:
            return None
        named_workspaces = sorted(changes.workspaces)
        named_instances = sorted(changes.instances)
        workspaces = [
            live_workspace(item, self._workspace_tags(aws, item["WorkspaceId"]))
            for chunk in _chunks(named_workspaces, WORKSPACE_IDS_PER_CALL)
            for item in aws.items("workspaces", "DescribeWorkspaces", WorkspaceIds=chunk)
        ]
        instances = [
            _instance(item, self._instance_tags(aws, item["InstanceId"]))
            for chunk in _chunks(named_instances, INSTANCE_IDS_PER_CALL)
            for item in self._instances_by_id(aws, chunk)
        ]
        outcome = informer.refreshed(
            named_workspaces, named_instances, workspaces, instances, ctx.now
        )
        scope = frozenset(named_workspaces) | frozenset(named_instances)
        return Targeted(
            TagSyncLive.of(informer.snapshot(), scope),
            Changes(frozenset(outcome.unseen_workspaces), frozenset(outcome.unseen_instances)),
        )

    # -- diff (pure) -----------------------------------------------------------------------------
    def diff(self, desired: list[Manifest], live: TagSyncLive, ctx: Context) -> KindPlan:
        plan = KindPlan()
        matches = self._match(desired, live, ctx.controller_id)
        wants = Wants(desired)
        wanted, owners, conflicts, refused = self._desired_by_instance(wants, live, matches)
        for instance_id, keys in sorted(conflicts.items()):
            plan.note(
                KIND,
                ", ".join(sorted(owners[instance_id])),
                Severity.ERROR,
                f"{instance_id}: TagSyncs disagree on {', '.join(sorted(keys))}; left unchanged",
            )
        for (name, key, problem), count in sorted(refused.items()):
            plan.note(
                KIND, name, Severity.WARNING, f"{count} instance(s): {key}: {problem}; skipped"
            )
        instances = {i.instance_id: i for i in live.instances}
        for instance_id, tags in sorted(wanted.items()):
            instance = instances[instance_id]
            names = sorted(owners[instance_id])
            disputed = conflicts.get(instance_id, set())
            operation = self._tag_operation(wants, names, instance, tags, disputed, plan)
            if operation is not None:
                plan.operations.append(operation)
        if live.scope is not None:
            return plan  # a targeted pass: stale instances and registrations are the relist's
        self._stale(desired, live, matches, ctx, plan)
        if any(not_onboarded(m, live, matches) for m in desired) and any(
            ctx.now - i.registration_date < REGISTERING_WINDOW for i in live.instances
        ):
            plan.requeue_in(REGISTERING_REQUEUE, "WorkSpaces are registering")
        return plan

    def _match(self, desired: list[Manifest], live: TagSyncLive, controller_id: str) -> Matches:
        order = tuple(desired[0].spec.match.order) if desired else ("computerName", "ipAddress")
        return live.matches(order, controller_id)

    def _desired_by_instance(
        self, wants: Wants, live: TagSyncLive, matches: Matches
    ) -> tuple[
        dict[str, dict[str, str]],
        dict[str, set[str]],
        dict[str, set[str]],
        Counter[tuple[str, str, str]],
    ]:
        """Per instance: the tags wanted, the TagSyncs wanting them, keys they disagree on, and
        tags SSM would refuse (counted per TagSync, key and reason). In a targeted pass, only for
        the WorkSpaces and instances in scope."""
        wanted: dict[str, dict[str, str]] = {}
        owners: dict[str, set[str]] = {}
        conflicts: dict[str, set[str]] = {}
        refused: Counter[tuple[str, str, str]] = Counter()
        scope = live.scope
        for workspace in live.workspaces:
            instance = matches.by_workspace.get(workspace.workspace_id)
            if instance is None:
                continue
            if (
                scope is not None
                and workspace.workspace_id not in scope
                and instance.instance_id not in scope
            ):
                continue
            found = wants.of(workspace)
            if not found.owners:
                continue
            wanted[instance.instance_id] = found.tags
            owners[instance.instance_id] = found.owners
            if found.conflicts:
                conflicts[instance.instance_id] = found.conflicts
            refused.update(found.refused)
        return wanted, owners, conflicts, refused

    def _tag_operation(
        self,
        wants: Wants,
        names: list[str],
        instance: LiveInstance,
        tags: dict[str, str],
        disputed: set[str],
        plan: KindPlan,
    ) -> Operation | None:
        """One write for the instance, or None; ``disputed`` keys (TagSyncs disagree on their
        value) are left as they are, not removed."""
        add = {k: v for k, v in tags.items() if instance.tags.get(k) != v}
        remove: tuple[str, ...] = ()
        extra = [
            key
            for key in instance.tags
            if key not in tags and key not in disputed and key != WORKSPACE_ID_TAG
        ]
        if extra:
            governing = [m for m in wants.desired if m.name in names]
            remove = tuple(
                sorted(key for key in extra if any(wants.owns(m, key) for m in governing))
            )
        if not add and not remove:
            return None
        after = (set(instance.tags) - set(remove)) | set(add)
        if len(after) > MAX_INSTANCE_TAGS:
            plan.note(
                KIND,
                ", ".join(names),
                Severity.ERROR,
                f"{instance.instance_id} would carry {len(after)} tags; SSM allows "
                f"{MAX_INSTANCE_TAGS}: left unchanged",
            )
            return None
        changes = tuple(
            [FieldChange(f"tags.{k}", instance.tags.get(k), v) for k, v in sorted(add.items())]
            + [FieldChange(f"tags.{k}", instance.tags[k], None) for k in remove]
        )
        return Operation(
            kind=KIND,
            name=", ".join(names),
            action=Action.UPDATE,
            resource=instance.instance_id,
            changes=changes,
            reason=f"tags of WorkSpace {tags[WORKSPACE_ID_TAG]}",
            payload=ChangeTags(instance_id=instance.instance_id, add=add, remove=remove),
        )

    def _stale(
        self,
        desired: list[Manifest],
        live: TagSyncLive,
        matches: Matches,
        ctx: Context,
        plan: KindPlan,
    ) -> None:
        stale = stale_instances(live, matches, ctx.controller_id)
        name = desired[0].name if len(desired) == 1 else "*"
        for superseded, what in (
            (False, "match no WorkSpace in the account and Region"),
            (True, "are superseded by a newer registration of their WorkSpace"),
        ):
            group = [s for s in stale if s.superseded is superseded]
            if group:
                plan.note(
                    KIND,
                    name,
                    Severity.WARNING,
                    f"{len(group)} managed instance(s) {what} (stale)",
                    count=len(group),
                    examples=tuple(s.instance.instance_id for s in group[:5]),
                )
        for entry in stale:
            if not entry.removable:
                continue
            instance = entry.instance
            plan.operations.append(
                Operation(
                    kind=KIND,
                    name=name,
                    action=Action.DELETE,
                    resource=instance.instance_id,
                    changes=(FieldChange("pingStatus", instance.ping_status, None),),
                    reason=f"{entry.reason} (deregister)",
                    prune=True,
                    payload=Deregister(instance_id=instance.instance_id),
                )
            )

    # -- apply -----------------------------------------------------------------------------------
    def apply(self, aws: AwsApi, operation: Operation, ctx: Context) -> tuple[Event, ...]:
        informer = _informer(ctx)
        match operation.payload:
            case Deregister(instance_id=instance_id):
                aws.call("ssm", "DeregisterManagedInstance", InstanceId=instance_id)
                if informer is not None:
                    informer.deregistered(instance_id, ctx.now)
            case ChangeTags() as change:
                self._change_tags(aws, change, informer, ctx)
            case other:
                raise TypeError(f"{KIND} cannot apply {type(other).__name__}")
        return ()

    def _change_tags(
        self, aws: AwsApi, change: ChangeTags, informer: FleetInformer | None, ctx: Context
    ) -> None:
        """Each acknowledged write goes into the cache at once, so the next pass neither writes
        it again nor sees drift while the tagging API still shows the old tags."""
        if change.add:
            aws.call(
                "ssm",
                "AddTagsToResource",
                ResourceType="ManagedInstance",
                ResourceId=change.instance_id,
                Tags=tag_list(change.add),
            )
            if informer is not None:
                informer.wrote(change.instance_id, change.add, (), ctx.now)
            crash_point("tagsync.added")
        if change.remove:
            aws.call(
                "ssm",
                "RemoveTagsFromResource",
                ResourceType="ManagedInstance",
                ResourceId=change.instance_id,
                TagKeys=list(change.remove),
            )
            if informer is not None:
                informer.wrote(change.instance_id, {}, change.remove, ctx.now)

    # -- status ----------------------------------------------------------------------------------
    def health(self, desired: list[Manifest], live: TagSyncLive, ctx: Context) -> KindStatus:
        matches = self._match(desired, live, ctx.controller_id)
        pings = Counter(i.ping_status for i in live.instances)
        status = KindStatus(
            managed=len(matches.by_workspace),
            gauges={
                NOT_ONBOARDED.name: {},
                STALE.name: _stale_by_tagsync(
                    desired, stale_instances(live, matches, ctx.controller_id)
                ),
                MANAGED_INSTANCES.name: {
                    (ping,): float(pings.get(ping, 0)) for ping in {*PING_STATUSES, *pings}
                },
            },
        )
        for manifest in desired:
            missing = not_onboarded(manifest, live, matches)
            status.gauges[NOT_ONBOARDED.name][(manifest.name,)] = float(len(missing))
            status.resources.append(
                ResourceStatus(
                    name=manifest.name,
                    health=Health.DEGRADED if missing else Health.HEALTHY,
                    message=(
                        f"{len(missing)} WorkSpace(s) have no managed instance (not onboarded)"
                        if missing
                        else ""
                    ),
                    count=len(missing),
                    examples=tuple(missing[:5]),
                )
            )
        return status

    # -- export ----------------------------------------------------------------------------------
    def export(self, aws: AwsApi, ctx: Context) -> Exported:
        """One TagSync per directory, copying every tag key seen on its WorkSpaces."""
        workspaces = list(aws.items("workspaces", "DescribeWorkspaces", Limit=25))
        tags, _ = self._tags_in_bulk(aws)
        keys_by_directory: dict[str, set[str]] = {}
        for workspace in workspaces:
            keys = keys_by_directory.setdefault(workspace["DirectoryId"], set())
            keys.update(tags.get(workspace["WorkspaceId"], {}))
        documents = [
            {
                "apiVersion": "fleet-controller/v1alpha1",
                "kind": KIND,
                "metadata": {"name": f"directory-{directory.lower().replace('_', '-')}"},
                "spec": {
                    "workspaces": {"directoryIds": [directory]},
                    "copyTags": {"include": sorted(keys) or ["*"]},
                },
            }
            for directory, keys in sorted(keys_by_directory.items())
        ]
        review = [
            f"{KIND}: one per directory, named after it, copying every tag key its WorkSpaces"
            " carry; renames, attributes (workspace:user, ...) and static tags cannot be read"
            " back: compare with the managed instances' tags (plan shows what would be added)"
        ]
        return Exported(documents=documents, review=review if documents else [])


def _stale_by_tagsync(
    desired: list[Manifest], stale: list[StaleInstance]
) -> dict[tuple[str, ...], float]:
    """Each TagSync's stale instances: those a WorkSpace it selects still claims (a rebuild left
    them behind). One no WorkSpace claims is no TagSync's: it is counted under ``tagsync=""``,
    so the sum over the label is the account's count and no TagSync is blamed for it."""
    counts: dict[tuple[str, ...], float] = {(m.name,): 0.0 for m in desired}
    counts[("",)] = 0.0
    for found in stale:
        owner = next(
            (m for m in desired if found.claimed_by and selects(m, found.claimed_by)), None
        )
        key = (owner.name,) if owner is not None else ("",)
        counts[key] += 1
    return counts


def unwritable(key: str, value: str) -> str | None:
    """Why SSM would refuse this tag (a WorkSpace value like ``CORP\\user`` can hold a
    character SSM tags do not allow), or None. Both checks are remembered: a fleet repeats its
    keys and most of its values."""
    if key != WORKSPACE_ID_TAG:
        problem = _key_problem(key)
        if problem:
            return problem
    return _value_problem(value)


_key_problem = lru_cache(maxsize=4096)(tag_key_problem)
_value_problem = lru_cache(maxsize=65536)(tag_value_problem)


def not_onboarded(manifest: Manifest, live: TagSyncLive, matches: Matches) -> list[str]:
    """The selected WorkSpaces that should be registered and have no managed instance."""
    return sorted(
        w.workspace_id
        for w in live.workspaces
        if selects(manifest, w)
        and w.state in ONBOARDING_STATES
        and w.workspace_id not in matches.by_workspace
    )


def existing_workspaces(live: TagSyncLive) -> list[LiveWorkspace]:
    """Every WorkSpace that still vouches for its instance: any directory, any state but
    TERMINATED (a stopped, suspended or even terminating WorkSpace's instance is not stale)."""
    return [w for w in live.workspaces if w.state != GONE_STATE]


@dataclass(frozen=True)
class StaleInstance:
    instance: LiveInstance
    reason: str  # what makes it stale, as the plan says it
    superseded: bool  # a live WorkSpace claims it, but another instance serves that WorkSpace
    removable: bool  # ours (owner tag) and provably stale: deregistered under --prune
    claimed_by: LiveWorkspace | None = None  # the WorkSpace that claims it (when superseded)


def stale_instances(live: TagSyncLive, matches: Matches, controller_id: str) -> list[StaleInstance]:
    """Unmatched instances this fleet put there (registered by our activation or joined before).

    Provably stale, and deregistered with --prune when ours: one no WorkSpace matches at all (by
    join tag, computer name or IP address, over every directory and every state but TERMINATED).
    One a live WorkSpace still claims while a newer registration serves it (a rebuild) is stale
    too, but removed only once it is no longer Online: a live agent is never cut off.
    """
    existing = existing_workspaces(live)
    by_id = {w.workspace_id: w for w in existing}
    by_name = {host_part(w.computer_name): w for w in existing if w.computer_name}
    by_ip = {w.ip_address: w for w in existing if w.ip_address}
    found: list[StaleInstance] = []
    for instance in matches.unmatched_instances:
        owned = is_owned(instance.tags, controller_id)
        if not owned and WORKSPACE_ID_TAG not in instance.tags:
            continue
        claim = (
            by_id.get(instance.tags.get(WORKSPACE_ID_TAG, ""))
            or by_name.get(host_part(instance.computer_name))
            or by_ip.get(instance.ip_address)
        )
        if claim is None:
            reason = (
                "stale: no WorkSpace in the account and Region (any directory, any state but"
                " TERMINATED) matches it"
            )
            found.append(StaleInstance(instance, reason, superseded=False, removable=owned))
            continue
        serving = matches.by_workspace.get(claim.workspace_id)
        served = f", served by {serving.instance_id}" if serving else ""
        reason = (
            f"superseded: WorkSpace {claim.workspace_id} is {claim.state}{served}; this"
            f" registration is {instance.ping_status or 'of unknown ping status'}"
        )
        removable = owned and instance.ping_status != "Online"
        found.append(
            StaleInstance(instance, reason, superseded=True, removable=removable, claimed_by=claim)
        )
    return found


def _informer(ctx: Context) -> FleetInformer | None:
    return ctx.memory.of(KIND, FleetInformer) if ctx.memory is not None else None


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _TagSets:
    """One shared dict per distinct WorkSpace tag set: a fleet has few, held once each."""

    def __init__(self) -> None:
        self._seen: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}

    def of(self, tags: dict[str, str]) -> dict[str, str]:
        return self._seen.setdefault(tuple(tags.items()), tags)


def _instance(item: dict[str, Any], tags: dict[str, str]) -> LiveInstance:
    return LiveInstance(
        instance_id=item["InstanceId"],
        computer_name=item.get("ComputerName", ""),
        ip_address=item.get("IPAddress", ""),
        ping_status=item.get("PingStatus", ""),
        registration_date=item["RegistrationDate"],
        activation_id=item.get("ActivationId", ""),
        tags=tags,
    )


__all__ = [
    "KIND",
    "OWNER_TAG",
    "ChangeTags",
    "Deregister",
    "TagSyncKind",
    "WantedTags",
    "desired_tags",
    "selects",
    "wanted_for",
]
