"""State Manager associations, and the detection document package associations run.

Every unnecessary UpdateAssociation re-runs the association on its whole fleet at once, so the
diff compares the normalised desired request with the normalised live association field by field
(AWS's defaults filled in, parameter lists as lists, targets and their values sorted, one cron
spelling) and sends an update only when they differ; then it sends every field (UpdateAssociation
nulls what is omitted) with the AssociationVersion it compared against.

Stagger groups give members daily slots ``start + k * every``. A member keeps the slot its live
schedule is in; members without one take the lowest free slots in name order; a removed member's
slot is simply free. So adding an application never reschedules (or re-runs) the others.

Status comes from ListAssociations' Overview (every association in one paginated read) and, for
non-compliant instances, from the compliance summaries (one filtered read, then one item read per
non-compliant instance only).

Two owned associations for one manifest (a create whose answer came late, two replicas racing) are
collapsed to the one in use (see ``in_use``); the others are deleted as planned operations with a
reason, without ``--prune``: they are duplicates, not undeclared resources.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controller.aws import AwsApi, error_code
from controller.aws.tags import tag_dict, tag_list
from controller.detection import document as detection
from controller.engine.crashpoints import crash_point
from controller.engine.ownership import MANIFEST_TAG, is_owned, manifest_of, owner_tags
from controller.engine.plan import Action, FieldChange, Finding, KindPlan, Operation, Severity
from controller.kinds.base import Context, Kind
from controller.manifests import Manifest
from controller.manifests.document import name_problem
from controller.manifests.specs.association import (
    AssociationSpec,
    StaggerGroup,
    normalize_expression,
)
from controller.observability.metrics import Metrics

KIND = "Association"
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
class DetectionDocument:
    name: str
    exists: bool
    owned: bool = False
    hash: str | None = None  # the default version's
    document_type: str | None = None
    latest_version: str | None = None  # set only when the latest is not the default
    latest_hash: str | None = None


@dataclass
class AssociationLive:
    document: DetectionDocument
    associations: list[LiveAssociation]
    noncompliant: dict[str, set[str]] = field(default_factory=dict)  # association id -> instances


@dataclass(frozen=True)
class DocumentChange:
    name: str
    create: bool
    tags: dict[str, str]
    promote: str | None = None  # a version already holding this content: only make it default


@dataclass(frozen=True)
class Write:
    request: dict[str, Any]
    association_id: str | None = None
    association_version: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    tags_only: bool = False


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


def desired_request(manifest: Manifest, ctx: Context, schedule: str | None) -> dict[str, Any]:
    spec: AssociationSpec = manifest.spec
    request: dict[str, Any] = {"AssociationName": manifest.name}
    if spec.package is not None:
        resolved = spec.resolved
        assert resolved is not None, "package references are resolved when the state loads"
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
    apply_order = 40

    # -- observe ---------------------------------------------------------------------------------
    def observe(self, aws: AwsApi, desired: list[Manifest], ctx: Context) -> AssociationLive:
        document = self._detection_document(aws, ctx)
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
        owned_ids = {a.association_id for a in associations if is_owned(a.tags, ctx.controller_id)}
        return AssociationLive(document, associations, self._noncompliant(aws, owned_ids))

    def _detection_document(self, aws: AwsApi, ctx: Context) -> DetectionDocument:
        name = detection.document_name(ctx.controller_id)
        found = aws.call_if_exists("ssm", "DescribeDocument", absent="InvalidDocument", Name=name)
        if found is None:
            return DetectionDocument(name, exists=False)
        described = found["Document"]
        document = DetectionDocument(
            name,
            exists=True,
            owned=is_owned(tag_dict(described.get("Tags")), ctx.controller_id),
            hash=described.get("Hash"),
            document_type=described.get("DocumentType"),
        )
        latest = described.get("LatestVersion")
        if (
            document.owned
            and document.hash != detection.content_hash()
            and latest
            and latest != described.get("DefaultVersion")
        ):
            # A pass that stopped between UpdateDocument and UpdateDocumentDefaultVersion left
            # the new content as the latest version; sending it again would be refused as
            # DuplicateDocumentContent, so the diff promotes it instead.
            document.latest_version = str(latest)
            document.latest_hash = aws.call(
                "ssm", "DescribeDocument", Name=name, DocumentVersion=str(latest)
            )["Document"].get("Hash")
        return document

    def _noncompliant(self, aws: AwsApi, owned_ids: set[str]) -> dict[str, set[str]]:
        """Association id -> instances whose last run of it failed (State Manager compliance)."""
        found: dict[str, set[str]] = defaultdict(set)
        if not owned_ids:
            return found
        filters = [
            {"Key": "ComplianceType", "Values": ["Association"], "Type": "EQUAL"},
            {"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"},
        ]
        instances = [
            item["ResourceId"]
            for item in aws.items("ssm", "ListResourceComplianceSummaries", Filters=filters)
        ]
        for instance_id in instances:
            for item in aws.items(
                "ssm",
                "ListComplianceItems",
                ResourceIds=[instance_id],
                ResourceTypes=["ManagedInstance"],
                Filters=filters,
            ):
                if item.get("Id") in owned_ids:
                    found[item["Id"]].add(instance_id)
        return found

    # -- diff (pure) -----------------------------------------------------------------------------
    def diff(self, desired: list[Manifest], live: AssociationLive, ctx: Context) -> KindPlan:
        plan = KindPlan()
        document_ok = self._diff_document(desired, live.document, ctx, plan)
        mine = [a for a in live.associations if is_owned(a.tags, ctx.controller_id)]
        declared = {m.name for m in desired}
        by_name = self._collapse_duplicates(mine, declared, plan)
        schedules = self._schedules(desired, by_name)
        for manifest in desired:
            spec: AssociationSpec = manifest.spec
            if spec.package is not None and not document_ok:
                continue
            current = by_name.get(manifest.name)
            if current is None and any(
                a.name == manifest.name and a not in mine for a in live.associations
            ):
                plan.findings.append(
                    Finding(
                        KIND,
                        manifest.name,
                        Severity.ERROR,
                        f"an association named {manifest.name} exists and is not owned by this"
                        " controller: refusing to create a second one or change it",
                    )
                )
                continue
            request = desired_request(manifest, ctx, schedules.get(manifest.name))
            tags = owner_tags(ctx.controller_id, KIND, manifest.name)
            self._diff_one(manifest, request, tags, current, plan)
            if current is not None:
                plan.findings += self._health(manifest, current, live, ctx)
        for association in mine:
            if association.name not in declared:
                plan.operations.append(
                    Operation(
                        KIND,
                        manifest_of(association.tags, KIND) or str(association.name),
                        Action.DELETE,
                        association.association_id,
                        reason="no manifest declares it any more",
                        prune=True,
                        payload=Write({}, association.association_id),
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
                    Operation(
                        KIND,
                        str(name),
                        Action.DELETE,
                        association.association_id,
                        reason=f"duplicate of {kept[name].association_id} for this manifest;"
                        f" keeping that one ({_why_kept(kept[name], association)})",
                        payload=Write({}, association.association_id),
                    )
                )
        return kept

    def _diff_document(
        self, desired: list[Manifest], document: DetectionDocument, ctx: Context, plan: KindPlan
    ) -> bool:
        """Plan the detection document; False when package associations cannot use it."""
        if not any(m.spec.package is not None for m in desired):
            return True
        tags = owner_tags(ctx.controller_id, KIND, "detection-document")
        if document.exists and not document.owned:
            plan.findings.append(
                Finding(
                    KIND,
                    "detection-document",
                    Severity.ERROR,
                    f"document {document.name} exists and is not owned by this controller:"
                    " package associations are left unchanged",
                )
            )
            return False
        if not document.exists:
            plan.operations.append(
                Operation(
                    KIND,
                    "detection-document",
                    Action.CREATE,
                    document.name,
                    changes=(FieldChange("hash", None, detection.content_hash()),),
                    reason="package associations run this document",
                    stage=-1,  # the document exists before associations use it
                    payload=DocumentChange(document.name, True, tags),
                )
            )
        elif document.hash != detection.content_hash() and (
            document.latest_version and document.latest_hash == detection.content_hash()
        ):
            plan.operations.append(
                Operation(
                    KIND,
                    "detection-document",
                    Action.UPDATE,
                    document.name,
                    changes=(FieldChange("hash", document.hash, detection.content_hash()),),
                    reason=f"version {document.latest_version} already holds this evaluator"
                    " (an earlier pass stopped before promoting it): making it the default",
                    stage=-1,  # the document exists before associations use it
                    payload=DocumentChange(document.name, False, tags, document.latest_version),
                )
            )
        elif document.hash != detection.content_hash():
            plan.operations.append(
                Operation(
                    KIND,
                    "detection-document",
                    Action.UPDATE,
                    document.name,
                    changes=(FieldChange("hash", document.hash, detection.content_hash()),),
                    reason="this controller version ships a different evaluator",
                    stage=-1,  # the document exists before associations use it
                    payload=DocumentChange(document.name, False, tags),
                )
            )
        return True

    def _schedules(
        self, desired: list[Manifest], live: dict[str | None, LiveAssociation]
    ) -> dict[str, str | None]:
        schedules: dict[str, str | None] = {}
        groups: dict[str, tuple[StaggerGroup, list[str]]] = {}
        for manifest in desired:
            spec: AssociationSpec = manifest.spec
            if spec.schedule is None:
                schedules[manifest.name] = None
            elif spec.schedule.expression is not None:
                schedules[manifest.name] = spec.schedule.expression
            elif spec.stagger_group is not None:
                group = spec.stagger_group
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
                    KIND,
                    manifest.name,
                    Action.CREATE,
                    "(new)",
                    changes=tuple(
                        FieldChange(key, None, value)
                        for key, value in normalize(request).items()
                        if value not in (None, {}, [])
                    ),
                    reason="no association with this name",
                    payload=Write(request, tags=tags),
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
                    KIND,
                    manifest.name,
                    Action.UPDATE,
                    current.association_id,
                    changes=tuple(changes),
                    reason="the association differs from its manifest (an update re-runs it)",
                    payload=Write(request, current.association_id, current.version, tags),
                )
            )
        elif current.tags.get(MANIFEST_TAG) != tags[MANIFEST_TAG]:
            plan.operations.append(
                Operation(
                    KIND,
                    manifest.name,
                    Action.UPDATE,
                    current.association_id,
                    changes=(
                        FieldChange(
                            f"tags.{MANIFEST_TAG}",
                            current.tags.get(MANIFEST_TAG),
                            tags[MANIFEST_TAG],
                        ),
                    ),
                    reason="repairing the manifest tag (no association update)",
                    payload=Write({}, current.association_id, tags=tags, tags_only=True),
                )
            )

    def _health(
        self, manifest: Manifest, current: LiveAssociation, live: AssociationLive, ctx: Context
    ) -> list[Finding]:
        counts = current.overview.get("AssociationStatusAggregatedCount") or {}
        total = sum(int(v) for v in counts.values())
        if not total:
            return []
        failed = int(counts.get("Failed", 0))
        summary = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in STATUSES)
        package = _package_of(current.request, detection.document_name(ctx.controller_id))
        noncompliant = sorted(live.noncompliant.get(current.association_id, set()))
        what = f"package {package}" if package else f"document {current.document}"
        message = f"install health of {what}: {summary} of {total} instance(s)"
        if noncompliant:
            message += f"; {len(noncompliant)} non-compliant (detection says not installed)"
        return [
            Finding(
                KIND,
                manifest.name,
                Severity.WARNING if failed or noncompliant else Severity.INFO,
                message,
                count=failed or len(noncompliant),
                examples=tuple(noncompliant[:5]),
            )
        ]

    # -- apply -----------------------------------------------------------------------------------
    def apply(self, aws: AwsApi, operation: Operation, ctx: Context) -> None:
        payload = operation.payload
        if isinstance(payload, DocumentChange):
            self._apply_document(aws, payload)
            return
        write: Write = payload
        if operation.action is Action.DELETE:
            aws.call_if_exists(
                "ssm",
                "DeleteAssociation",
                absent="AssociationDoesNotExist",
                AssociationId=write.association_id,
            )
            return
        tags = tag_list(write.tags)
        if write.tags_only:
            aws.call(
                "ssm",
                "AddTagsToResource",
                ResourceType="Association",
                ResourceId=write.association_id,
                Tags=tags,
            )
            crash_point("association.tags-repaired")
            return
        if write.association_id is None:
            aws.call("ssm", "CreateAssociation", **write.request, Tags=tags)
            crash_point("association.created")
            return
        aws.call(
            "ssm",
            "UpdateAssociation",
            AssociationId=write.association_id,
            AssociationVersion=write.association_version,
            **write.request,
        )

    def _apply_document(self, aws: AwsApi, change: DocumentChange) -> None:
        content = detection.document_content()
        if change.create:
            aws.call(
                "ssm",
                "CreateDocument",
                Name=change.name,
                Content=content,
                DocumentType="Command",
                DocumentFormat="JSON",
                Tags=tag_list(change.tags),
            )
            crash_point("association.document-created")
            return
        version = change.promote
        if version is None:
            try:
                updated = aws.call(
                    "ssm",
                    "UpdateDocument",
                    Name=change.name,
                    Content=content,
                    DocumentFormat="JSON",
                    DocumentVersion="$LATEST",
                )
            except Exception as error:
                # An older version already holds this evaluator (a controller rolled back, or
                # a version made by an interrupted pass that is no longer the latest).
                if error_code(error) != "DuplicateDocumentContent":
                    raise
                version = self._version_holding(aws, change.name, detection.content_hash())
                if version is None:
                    raise
            else:
                version = str(updated["DocumentDescription"]["DocumentVersion"])
                crash_point("association.document-versioned")
        aws.call("ssm", "UpdateDocumentDefaultVersion", Name=change.name, DocumentVersion=version)

    def _version_holding(self, aws: AwsApi, name: str, content_hash: str) -> str | None:
        """The newest version of ``name`` whose content hash is ``content_hash``."""
        numbers = sorted(
            (
                int(item["DocumentVersion"])
                for item in aws.items("ssm", "ListDocumentVersions", Name=name, MaxResults=50)
            ),
            reverse=True,
        )
        for number in numbers:
            described = aws.call("ssm", "DescribeDocument", Name=name, DocumentVersion=str(number))
            if described["Document"].get("Hash") == content_hash:
                return str(number)
        return None

    # -- status ----------------------------------------------------------------------------------
    def report(
        self, desired: list[Manifest], live: AssociationLive, metrics: Metrics, ctx: Context
    ) -> None:
        detector = detection.document_name(ctx.controller_id)
        groups: dict[str, list[LiveAssociation]] = defaultdict(list)
        for association in live.associations:
            if is_owned(association.tags, ctx.controller_id) and association.name:
                groups[association.name].append(association)
        mine = {name: in_use(group) for name, group in groups.items()}
        instances: dict[tuple[str, ...], float] = {}
        noncompliant: dict[str, set[str]] = defaultdict(set)
        for manifest in desired:
            current = mine.get(manifest.name)
            if current is None:
                continue
            spec: AssociationSpec = manifest.spec
            package = spec.resolved.package if spec.resolved is not None else ""
            package = package or _package_of(current.request, detector)
            counts = current.overview.get("AssociationStatusAggregatedCount") or {}
            for status in STATUSES:
                instances[(manifest.name, package, status)] = float(counts.get(status, 0))
            if package:
                noncompliant[package] |= live.noncompliant.get(current.association_id, set())
        metrics.set_family(metrics.association_instances, ctx.target, instances)
        metrics.set_family(
            metrics.package_noncompliant_instances,
            ctx.target,
            {(package,): float(len(ids)) for package, ids in noncompliant.items()},
        )
        metrics.managed_resources.labels(target=ctx.target, kind=KIND).set(len(mine))

    # -- export ----------------------------------------------------------------------------------
    def export(self, aws: AwsApi, ctx: Context) -> list[dict[str, Any]]:
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
        return documents


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


__all__ = ["KIND", "AssociationKind", "assign_slots", "desired_request", "normalize"]
