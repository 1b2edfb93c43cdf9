"""State Manager associations, for packages (through the detection document) or any document.

Every unnecessary UpdateAssociation re-runs the association on its whole fleet at once, so the
diff compares the normalised desired request with the normalised live association field by field
(AWS's defaults filled in, parameter lists as lists, targets and their values sorted, one cron
spelling) and sends an update only when they differ; then it sends every field (UpdateAssociation
nulls what is omitted) with the AssociationVersion it compared against.

Stagger groups give members daily slots ``start + k * every``. A member keeps the slot its live
schedule is in; members without one take the lowest free slots in name order; a removed member's
slot is simply free. So adding an application never reschedules (or re-runs) the others.

Status comes from ListAssociations' Overview (every association in one paginated read): how many
instances ran it and how many failed. Which instances failed is read only as examples, two calls
per association that has failures (its newest failed execution, then one page of that execution's
failed targets), so a pass costs the same whether one instance fails or the whole fleet does. The
per-instance compliance reads this replaces cost one call per failing instance (ListComplianceItems
takes one resource id), and even the bulk ListResourceComplianceSummaries is 50 instances a page:
200 more calls a pass at 10,000 failing instances. An association's compliance is its run status
(COMPLIANT when the run succeeded), so the Overview's Failed count is the non-compliant count.

A package association references its Package and the detection document (``references``): it
is applied after them, and not at all when either was refused. When a Package's default version
changes, the edge's hook (``on_dependency``) starts the associations that install it at "latest"
once (AWS does not re-run them when a package's default changes); an empty version is what they
pass, so nothing else would.

Two owned associations for one manifest (a create whose answer came late, two replicas racing) are
collapsed to the one in use (see ``in_use``); the others are deleted as planned operations with a
reason, without ``--prune``: they are duplicates, not undeclared resources.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.aws import AwsApi
from controller.aws.tags import tag_dict, tag_list
from controller.contract import MANIFEST_TAG, crash_point, is_owned, manifest_of, owner_tags
from controller.detection import document as detection
from controller.kinds.base import (
    Action,
    Context,
    DefaultVersionChanged,
    Event,
    Exported,
    FieldChange,
    GaugeFamily,
    Health,
    Kind,
    KindPlan,
    KindStatus,
    Operation,
    Ref,
    ResourceStatus,
    Step,
)
from controller.manifests import DesiredState, Manifest
from controller.manifests.document import name_problem
from controller.manifests.specs.association import (
    PACKAGE_KIND,
    AssociationSpec,
    ResolvedPackage,
    StaggerGroup,
    normalize_expression,
    resolve_package,
    stagger_groups,
)

KIND = "Association"
DETECTION_DOCUMENT = Ref("DetectionDocument", "detection-document")
START_ONCE_BATCH = 10  # StartAssociationsOnce AssociationIds: max 10
FAILED_EXAMPLES = 5  # failing instances named per association (findings show five)
EXECUTIONS_PAGE = 50  # DescribeAssociationExecutions MaxResults: 1..50

INSTANCES = GaugeFamily(
    name="association_instances",
    help="Instances per association and package by association status.",
    labels=("association", "package", "status"),
)
NONCOMPLIANT = GaugeFamily(
    name="package_noncompliant_instances",
    help="Instances where a package's detection method says it is not installed.",
    labels=("package",),
)
STATUSES = ("Success", "Failed", "Pending")
COMPARED = (
    "Name",
    "DocumentVersion",
    "Parameters",
    "Targets",
    "ScheduleExpression",
    "ScheduleOffset",
    "MaxConcurrency",
    "MaxErrors",
    "ComplianceSeverity",
    "SyncCompliance",
    "ApplyOnlyAtCronInterval",
)
_DEFAULTS: dict[str, Any] = {
    "DocumentVersion": "$DEFAULT",
    "ComplianceSeverity": "UNSPECIFIED",
    "SyncCompliance": "AUTO",
    "ApplyOnlyAtCronInterval": False,
    "Parameters": {},
}


@dataclass
class LiveAssociation:
    association_id: str
    name: str | None
    version: str
    document: str
    schedule: str | None
    overview: dict[str, Any]
    tags: dict[str, str] = field(default_factory=dict)
    request: dict[str, Any] | None = None  # normalised, from DescribeAssociation (owned only)
    created: datetime | None = None  # DescribeAssociation's Date (owned and declared only)
    last_execution: datetime | None = None

    @property
    def ran_on(self) -> int:
        """Instances that have run it (its Overview's aggregated count, less Pending)."""
        counts = self.overview.get("AssociationStatusAggregatedCount") or {}
        return sum(int(v) for status, v in counts.items() if status != "Pending")


@dataclass
class AssociationLive:
    associations: list[LiveAssociation]
    # association id -> some instances whose latest run of it failed (its newest failed execution)
    failing: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def owned(self, controller_id: str) -> dict[str, LiveAssociation]:
        """Manifest name -> the owned association in use for it (see ``in_use``)."""
        groups: dict[str, list[LiveAssociation]] = defaultdict(list)
        for association in self.associations:
            if is_owned(association.tags, controller_id) and association.name:
                groups[association.name].append(association)
        return {name: in_use(group) for name, group in groups.items()}


@dataclass(frozen=True, kw_only=True)
class CreateAssociation(Step):
    request: dict[str, Any]
    tags: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class UpdateAssociation(Step):
    """Send every field (UpdateAssociation nulls what is omitted) against the version compared."""

    association_id: str
    association_version: str
    request: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class RepairManifestTag(Step):
    association_id: str
    tags: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class DeleteAssociation(Step):
    association_id: str


def normalize(request: dict[str, Any]) -> dict[str, Any]:
    """The fields the diff compares, in one normal form (AWS's defaults where absent)."""
    out: dict[str, Any] = {}
    for key in COMPARED:
        value = request.get(key)
        if value is None:
            value = _DEFAULTS.get(key)
        if key == "Parameters":
            value = {k: [str(v) for v in values] for k, values in sorted((value or {}).items())}
        elif key == "Targets":
            value = sorted(
                ({"Key": t["Key"], "Values": sorted(t.get("Values") or [])} for t in value or []),
                key=lambda t: t["Key"],
            )
        elif key == "ScheduleExpression" and value is not None:
            value = normalize_expression(value)
        out[key] = value
    return out


def assign_slots(
    group: StaggerGroup, members: list[str], live_schedules: dict[str, str | None]
) -> dict[str, int]:
    """Existing members keep their live slot; the rest take the lowest free slots, in order."""
    assigned: dict[str, int] = {}
    for name in members:
        slot = group.slot_of(live_schedules.get(name))
        if slot is not None and slot not in assigned.values():
            assigned[name] = slot
    free = [slot for slot in range(group.slots) if slot not in assigned.values()]
    for name in members:
        if name not in assigned and free:
            assigned[name] = free.pop(0)
    return assigned


def package_of(manifest: Manifest, desired: DesiredState | None) -> ResolvedPackage | None:
    """The Package a package association installs (a valid desired state always has it)."""
    spec: AssociationSpec = manifest.spec
    if spec.package is None or desired is None:
        return None
    return resolve_package(spec.package.name, desired.of_kind(PACKAGE_KIND))


def desired_request(manifest: Manifest, ctx: Context, schedule: str | None) -> dict[str, Any]:
    spec: AssociationSpec = manifest.spec
    request: dict[str, Any] = {"AssociationName": manifest.name}
    if spec.package is not None:
        resolved = package_of(manifest, ctx.desired)
        if resolved is None:
            raise ValueError(f"{manifest.ref}: package {spec.package.name} is not in the revision")
        request["Name"] = detection.document_name(ctx.controller_id)
        request["DocumentVersion"] = "$DEFAULT"
        request["Parameters"] = detection.association_parameters(
            action=spec.package.action,
            package=resolved.package,
            version="" if spec.package.version == "latest" else spec.package.version,
            installation_type=spec.package.installation_type,
            additional_arguments=dict(spec.package.additional_arguments),
            rules=resolved.rules,
        )
    else:
        assert spec.document is not None
        request["Name"] = spec.document.name
        request["DocumentVersion"] = spec.document.version
        request["Parameters"] = spec.document.parameter_lists()
    request["Targets"] = spec.targets.targets()
    if schedule is not None:
        request["ScheduleExpression"] = schedule
    if spec.schedule is not None and spec.schedule.offset is not None:
        request["ScheduleOffset"] = spec.schedule.offset
    if spec.max_concurrency is not None:
        request["MaxConcurrency"] = spec.max_concurrency
    if spec.max_errors is not None:
        request["MaxErrors"] = spec.max_errors
    request["ComplianceSeverity"] = spec.compliance_severity
    request["SyncCompliance"] = spec.sync_compliance
    request["ApplyOnlyAtCronInterval"] = spec.apply_only_at_cron_interval
    return request


def in_use(duplicates: list[LiveAssociation]) -> LiveAssociation:
    """Of several owned associations serving one manifest, the one to keep.

    "In use" means, in this order: run by the most instances (its Overview's Success and Failed
    counts; Pending ones have not run it), so the one the fleet runs survives; then one that has
    run at all (LastExecutionDate); then the oldest (DescribeAssociation's Date), whose history
    and schedule anchor are the longest; then the lowest id, so every replica picks the same one.
    """

    def rank(association: LiveAssociation) -> tuple[int, int, float, str]:
        created = association.created.timestamp() if association.created else math.inf
        return (
            -association.ran_on,
            0 if association.last_execution else 1,
            created,
            association.association_id,
        )

    return min(duplicates, key=rank)


def _why_kept(kept: LiveAssociation, other: LiveAssociation) -> str:
    if kept.ran_on != other.ran_on:
        return f"it has run on {kept.ran_on} instance(s), this one on {other.ran_on}"
    if bool(kept.last_execution) != bool(other.last_execution):
        return "it has run, this one never has"
    if kept.created != other.created:
        return "it is older"
    return "same history: the lowest id is kept"


def _package_of(request: dict[str, Any] | None, detector: str) -> str:
    if not request or request.get("Name") != detector:
        return ""
    names = (request.get("Parameters") or {}).get("name") or [""]
    return str(names[0])


class AssociationKind(Kind[AssociationLive]):
    kind = KIND
    spec_model = AssociationSpec
    refers_to = frozenset({PACKAGE_KIND, DETECTION_DOCUMENT.kind})
    gauges = (INSTANCES, NONCOMPLIANT)

    def references(self, manifest: Manifest, desired: DesiredState) -> list[Ref]:
        resolved = package_of(manifest, desired)
        if resolved is None:
            return []
        return [Ref(PACKAGE_KIND, resolved.manifest), DETECTION_DOCUMENT]

    # -- observe ---------------------------------------------------------------------------------
    def observe(self, aws: AwsApi, desired: list[Manifest], ctx: Context) -> AssociationLive:
        declared = {m.name for m in desired}
        associations: list[LiveAssociation] = []
        for item in aws.items("ssm", "ListAssociations", MaxResults=50):
            live = LiveAssociation(
                association_id=item["AssociationId"],
                name=item.get("AssociationName"),
                version=str(item.get("AssociationVersion", "1")),
                document=item.get("Name", ""),
                schedule=item.get("ScheduleExpression"),
                overview=item.get("Overview") or {},
                last_execution=item.get("LastExecutionDate"),
            )
            associations.append(live)
            if live.name is None or name_problem(live.name) is not None:
                continue  # the controller names every association after a manifest
            live.tags = tag_dict(
                aws.call(
                    "ssm",
                    "ListTagsForResource",
                    ResourceType="Association",
                    ResourceId=live.association_id,
                ).get("TagList")
            )
            if is_owned(live.tags, ctx.controller_id) and live.name in declared:
                described = aws.call(
                    "ssm", "DescribeAssociation", AssociationId=live.association_id
                )["AssociationDescription"]
                live.version = str(described.get("AssociationVersion", live.version))
                live.request = normalize(described)
                live.created = described.get("Date")
        found = AssociationLive(associations)
        found.failing = self._failing(aws, found.owned(ctx.controller_id).values())
        return found

    def _failing(self, aws: AwsApi, owned: Iterable[LiveAssociation]) -> dict[str, tuple[str, ...]]:
        """Association id -> examples of instances whose latest run of it failed: for each owned
        association whose Overview counts failures, its newest failed execution's failed targets
        (one page), whatever the number of failing instances."""
        found: dict[str, tuple[str, ...]] = {}
        for association in owned:
            counts = association.overview.get("AssociationStatusAggregatedCount") or {}
            if not int(counts.get("Failed", 0)):
                continue
            executions = aws.call(
                "ssm",
                "DescribeAssociationExecutions",
                AssociationId=association.association_id,
                Filters=[{"Key": "Status", "Value": "Failed", "Type": "EQUAL"}],
                MaxResults=EXECUTIONS_PAGE,
            ).get("AssociationExecutions", [])
            if not executions:
                continue
            newest = max(executions, key=lambda e: e["CreatedTime"])
            targets = aws.call(
                "ssm",
                "DescribeAssociationExecutionTargets",
                AssociationId=association.association_id,
                ExecutionId=newest["ExecutionId"],
                Filters=[{"Key": "Status", "Value": "Failed"}],
                MaxResults=FAILED_EXAMPLES,
            ).get("AssociationExecutionTargets", [])
            found[association.association_id] = tuple(sorted(t["ResourceId"] for t in targets))
        return found

    # -- diff (pure) -----------------------------------------------------------------------------
    def diff(self, desired: list[Manifest], live: AssociationLive, ctx: Context) -> KindPlan:
        plan = KindPlan()
        mine = [a for a in live.associations if is_owned(a.tags, ctx.controller_id)]
        declared = {m.name for m in desired}
        by_name = self._collapse_duplicates(mine, declared, plan)
        schedules = self._schedules(desired, by_name)
        for manifest in desired:
            current = by_name.get(manifest.name)
            if current is None and any(
                a.name == manifest.name and a not in mine for a in live.associations
            ):
                plan.refuse_not_owned(
                    KIND,
                    manifest.name,
                    f"an association named {manifest.name}",
                    "refusing to create a second one or change it",
                )
                continue
            request = desired_request(manifest, ctx, schedules.get(manifest.name))
            tags = owner_tags(ctx.controller_id, KIND, manifest.name)
            self._diff_one(manifest, request, tags, current, plan)
        for association in mine:
            if association.name not in declared:
                plan.operations.append(
                    _delete(
                        manifest_of(association.tags, KIND) or str(association.name),
                        association,
                        "no manifest declares it any more",
                        prune=True,
                    )
                )
        return plan

    def _collapse_duplicates(
        self, mine: list[LiveAssociation], declared: set[str], plan: KindPlan
    ) -> dict[str | None, LiveAssociation]:
        """One owned association per declared manifest: the one in use; the rest are deleted."""
        groups: dict[str | None, list[LiveAssociation]] = defaultdict(list)
        for association in mine:
            groups[association.name].append(association)
        kept: dict[str | None, LiveAssociation] = {}
        for name, group in groups.items():
            kept[name] = in_use(group)
            if name not in declared:
                continue  # every one of them is pruned (with --prune) below
            for association in group:
                if association is kept[name]:
                    continue
                plan.operations.append(
                    _delete(
                        str(name),
                        association,
                        f"duplicate of {kept[name].association_id} for this manifest;"
                        f" keeping that one ({_why_kept(kept[name], association)})",
                    )
                )
        return kept

    def _schedules(
        self, desired: list[Manifest], live: dict[str | None, LiveAssociation]
    ) -> dict[str, str | None]:
        schedules: dict[str, str | None] = {}
        groups: dict[str, tuple[StaggerGroup, list[str]]] = {}
        settings = stagger_groups(desired)
        for manifest in desired:
            spec: AssociationSpec = manifest.spec
            if spec.schedule is None:
                schedules[manifest.name] = None
            elif spec.schedule.expression is not None:
                schedules[manifest.name] = spec.schedule.expression
            elif spec.schedule.stagger is not None and spec.schedule.stagger.group in settings:
                group = settings[spec.schedule.stagger.group]
                groups.setdefault(group.name, (group, []))[1].append(manifest.name)
        for group, members in groups.values():
            current = {name: live[name].schedule if name in live else None for name in members}
            for name, slot in assign_slots(group, sorted(members), current).items():
                schedules[name] = group.expression(slot)
        return schedules

    def _diff_one(
        self,
        manifest: Manifest,
        request: dict[str, Any],
        tags: dict[str, str],
        current: LiveAssociation | None,
        plan: KindPlan,
    ) -> None:
        if current is None:
            plan.operations.append(
                Operation(
                    kind=KIND,
                    name=manifest.name,
                    action=Action.CREATE,
                    resource="(new)",
                    changes=tuple(
                        FieldChange(key, None, value)
                        for key, value in normalize(request).items()
                        if value not in (None, {}, [])
                    ),
                    reason="no association with this name",
                    payload=CreateAssociation(request=request, tags=tags),
                )
            )
            return
        wanted, have = normalize(request), current.request or {}
        changes = [
            FieldChange(key, have.get(key), wanted[key])
            for key in COMPARED
            if have.get(key) != wanted[key]
        ]
        if changes:
            plan.operations.append(
                Operation(
                    kind=KIND,
                    name=manifest.name,
                    action=Action.UPDATE,
                    resource=current.association_id,
                    changes=tuple(changes),
                    reason="the association differs from its manifest (an update re-runs it)",
                    payload=UpdateAssociation(
                        association_id=current.association_id,
                        association_version=current.version,
                        request=request,
                    ),
                )
            )
        elif current.tags.get(MANIFEST_TAG) != tags[MANIFEST_TAG]:
            plan.operations.append(
                Operation(
                    kind=KIND,
                    name=manifest.name,
                    action=Action.UPDATE,
                    resource=current.association_id,
                    changes=(
                        FieldChange(
                            f"tags.{MANIFEST_TAG}",
                            current.tags.get(MANIFEST_TAG),
                            tags[MANIFEST_TAG],
                        ),
                    ),
                    reason="repairing the manifest tag (no association update)",
                    payload=RepairManifestTag(association_id=current.association_id, tags=tags),
                )
            )

    # -- apply -----------------------------------------------------------------------------------
    def apply(self, aws: AwsApi, operation: Operation, ctx: Context) -> tuple[Event, ...]:
        match operation.payload:
            case DeleteAssociation(association_id=association_id):
                aws.call_if_exists(
                    "ssm",
                    "DeleteAssociation",
                    absent="AssociationDoesNotExist",
                    AssociationId=association_id,
                )
            case RepairManifestTag(association_id=association_id, tags=tags):
                aws.call(
                    "ssm",
                    "AddTagsToResource",
                    ResourceType="Association",
                    ResourceId=association_id,
                    Tags=tag_list(tags),
                )
                crash_point("association.tags-repaired")
            case CreateAssociation(request=request, tags=tags):
                aws.call("ssm", "CreateAssociation", **request, Tags=tag_list(tags))
                crash_point("association.created")
            case UpdateAssociation() as update:
                aws.call(
                    "ssm",
                    "UpdateAssociation",
                    AssociationId=update.association_id,
                    AssociationVersion=update.association_version,
                    **update.request,
                )
            case other:
                raise TypeError(f"{KIND} cannot apply {type(other).__name__}")
        return ()

    # -- the Package -> Association edge -----------------------------------------------------------
    def on_dependency(
        self,
        aws: AwsApi,
        event: Event,
        dependents: list[Manifest],
        live: AssociationLive,
        ctx: Context,
    ) -> None:
        """A Package has a new default version: run once, now, the associations that install it
        at "latest" (they pass an empty version, which AWS does not re-run on its own)."""
        if not isinstance(event, DefaultVersionChanged) or event.source.kind != PACKAGE_KIND:
            return
        owned = live.owned(ctx.controller_id)
        ids = sorted(
            owned[m.name].association_id
            for m in dependents
            if m.name in owned and _follows_latest(m.spec)
        )
        for start in range(0, len(ids), START_ONCE_BATCH):
            crash_point("package.starting")
            aws.call(
                "ssm", "StartAssociationsOnce", AssociationIds=ids[start : start + START_ONCE_BATCH]
            )

    # -- status ----------------------------------------------------------------------------------
    def health(self, desired: list[Manifest], live: AssociationLive, ctx: Context) -> KindStatus:
        detector = detection.document_name(ctx.controller_id)
        mine = live.owned(ctx.controller_id)
        status = KindStatus(managed=len(mine), gauges={INSTANCES.name: {}, NONCOMPLIANT.name: {}})
        noncompliant_by_package: dict[str, int] = defaultdict(int)
        for manifest in desired:
            current = mine.get(manifest.name)
            if current is None:
                status.resources.append(ResourceStatus(name=manifest.name, health=Health.MISSING))
                continue
            resolved = package_of(manifest, ctx.desired)
            package = resolved.package if resolved else _package_of(current.request, detector)
            counts = current.overview.get("AssociationStatusAggregatedCount") or {}
            for state in STATUSES:
                key = (manifest.name, package, state)
                status.gauges[INSTANCES.name][key] = float(counts.get(state, 0))
            failing = live.failing.get(current.association_id, ())
            if package:
                noncompliant_by_package[package] += int(counts.get("Failed", 0))
            status.resources.append(_install_health(manifest, current, package, counts, failing))
        status.gauges[NONCOMPLIANT.name] = {
            (package,): float(count) for package, count in noncompliant_by_package.items()
        }
        return status

    # -- export ----------------------------------------------------------------------------------
    def export(self, aws: AwsApi, ctx: Context) -> Exported:
        """Owned associations as manifests (best effort: a package association names the
        Distributor package; a stagger group is exported as its cron expression)."""
        live = self.observe(aws, [], ctx)
        detector = detection.document_name(ctx.controller_id)
        documents: list[dict[str, Any]] = []
        for association in live.associations:
            if not is_owned(association.tags, ctx.controller_id) or not association.name:
                continue
            described = aws.call(
                "ssm", "DescribeAssociation", AssociationId=association.association_id
            )["AssociationDescription"]
            documents.append(_export_one(association.name, normalize(described), detector))
        scheduled = [d["metadata"]["name"] for d in documents if "schedule" in d["spec"]]
        review = []
        if scheduled:  # one line for all of them: each one's schedule is read back the same way
            review.append(
                f"{KIND} {', '.join(scheduled)}: each schedule is the live cron expression; a"
                " stagger group (schedule.stagger) is not read back"
            )
        return Exported(documents=documents, review=review)


def _follows_latest(spec: AssociationSpec) -> bool:
    return (
        spec.package is not None
        and spec.package.version == "latest"
        and spec.package.action == "Install"
    )


def _install_health(
    manifest: Manifest,
    current: LiveAssociation,
    package: str,
    counts: dict[str, Any],
    failing: tuple[str, ...],
) -> ResourceStatus:
    """What the association's Overview says about its installs, with failing examples."""
    total = sum(int(v) for v in counts.values())
    if not total:
        return ResourceStatus(name=manifest.name, health=Health.PROGRESSING)
    failed = int(counts.get("Failed", 0))
    summary = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in STATUSES)
    what = f"package {package}" if package else f"document {current.document}"
    message = f"install health of {what}: {summary} of {total} instance(s)"
    if failed and package:
        message += f"; {failed} non-compliant (detection says not installed)"
    return ResourceStatus(
        name=manifest.name,
        health=Health.DEGRADED if failed else Health.HEALTHY,
        message=message,
        count=failed,
        examples=failing[:FAILED_EXAMPLES],
    )


def _delete(name: str, association: LiveAssociation, reason: str, prune: bool = False) -> Operation:
    return Operation(
        kind=KIND,
        name=name,
        action=Action.DELETE,
        resource=association.association_id,
        reason=reason,
        prune=prune,
        payload=DeleteAssociation(association_id=association.association_id),
    )


def _export_one(name: str, request: dict[str, Any], detector: str) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    parameters: dict[str, list[str]] = request["Parameters"]
    if request["Name"] == detector:
        first = {k: (v[0] if v else "") for k, v in parameters.items()}
        package: dict[str, Any] = {
            "name": first.get("name", ""),
            "version": first.get("version") or "latest",
            "action": first.get("action", "Install"),
            "installationType": first.get("installationType", "Uninstall and reinstall"),
        }
        try:
            arguments = json.loads(first.get("additionalArguments") or "{}")
        except ValueError:
            arguments = {}
        if isinstance(arguments, dict) and arguments:
            package["additionalArguments"] = arguments
        spec["package"] = package
    else:
        spec["document"] = {
            "name": request["Name"],
            "version": request["DocumentVersion"],
            "parameters": parameters,
        }
    tags: dict[str, list[str]] = {}
    targets: dict[str, Any] = {}
    for target in request["Targets"]:
        if target["Key"].startswith("tag:"):
            tags[target["Key"][4:]] = target["Values"]
        elif target["Key"] == "InstanceIds":
            targets["instanceIds"] = target["Values"]
    if tags:
        targets["tags"] = tags
    spec["targets"] = targets
    if request.get("ScheduleExpression"):
        spec["schedule"] = {"expression": request["ScheduleExpression"]}
        if request.get("ScheduleOffset"):
            spec["schedule"]["offset"] = request["ScheduleOffset"]
    for key, field_name in (("MaxConcurrency", "maxConcurrency"), ("MaxErrors", "maxErrors")):
        if request.get(key):
            spec[field_name] = request[key]
    spec["complianceSeverity"] = request["ComplianceSeverity"]
    spec["syncCompliance"] = request["SyncCompliance"]
    if request["ApplyOnlyAtCronInterval"]:
        spec["applyOnlyAtCronInterval"] = True
    return {
        "apiVersion": "fleet-controller/v1alpha1",
        "kind": KIND,
        "metadata": {"name": name},
        "spec": spec,
    }


__all__ = [
    "KIND",
    "AssociationKind",
    "CreateAssociation",
    "DeleteAssociation",
    "RepairManifestTag",
    "UpdateAssociation",
    "assign_slots",
    "desired_request",
    "normalize",
]
