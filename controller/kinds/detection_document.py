"""The detection document: the SSM Command document every package association runs.

``aws:configurePackage`` followed by the controller's PowerShell evaluator of detection rules
(``controller/detection/``). No manifest declares it; the desired state implies it as soon as one
Association installs a package (such an Association references it), so it is its own resource:
created or updated before the associations that run it, and the one thing they wait for.

One document per controller (its name carries the controller id), owned like everything else: a
document of that name owned by someone else is refused, and the associations that would run it are
blocked. A pass that stopped between UpdateDocument and UpdateDocumentDefaultVersion left the new
content as the latest version; it is promoted, not sent again (AWS refuses it as
DuplicateDocumentContent), and content an older version holds is found and promoted too.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.aws import AwsApi, error_code
from controller.aws.tags import tag_dict, tag_list
from controller.contract import crash_point, is_owned, owner_tags
from controller.detection import document as detection
from controller.kinds.base import (
    Action,
    Context,
    Event,
    FieldChange,
    Health,
    Kind,
    KindPlan,
    KindStatus,
    Operation,
    ResourceStatus,
    Step,
)
from controller.manifests import Manifest, SpecModel

KIND = "DetectionDocument"
NAME = "detection-document"  # the one implied resource's name; AWS's name has the controller id


class DetectionDocumentSpec(SpecModel):
    """Nothing to declare: the content is the controller's own evaluator."""


@dataclass(frozen=True)
class LiveDocument:
    name: str
    exists: bool
    owned: bool = False
    hash: str | None = None  # the default version's
    latest_version: str | None = None  # set only when the latest is not the default
    latest_hash: str | None = None


@dataclass(frozen=True, kw_only=True)
class CreateDocument(Step):
    name: str
    tags: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class UpdateDocument(Step):
    """Send this controller's evaluator as a new version and make it the default."""

    name: str


@dataclass(frozen=True, kw_only=True)
class PromoteVersion(Step):
    """A version already holds this evaluator: only make it the default."""

    name: str
    version: str


class DetectionDocumentKind(Kind[LiveDocument]):
    kind = KIND
    spec_model = DetectionDocumentSpec
    implied = True

    def observe(self, aws: AwsApi, desired: list[Manifest], ctx: Context) -> LiveDocument:
        name = detection.document_name(ctx.controller_id)
        found = aws.call_if_exists("ssm", "DescribeDocument", absent="InvalidDocument", Name=name)
        if found is None:
            return LiveDocument(name, exists=False)
        described = found["Document"]
        owned = is_owned(tag_dict(described.get("Tags")), ctx.controller_id)
        current = described.get("Hash")
        latest = described.get("LatestVersion")
        if (
            owned
            and current != detection.content_hash()
            and latest
            and latest != described.get("DefaultVersion")
        ):
            latest_hash = aws.call(
                "ssm", "DescribeDocument", Name=name, DocumentVersion=str(latest)
            )["Document"].get("Hash")
            return LiveDocument(name, True, owned, current, str(latest), latest_hash)
        return LiveDocument(name, True, owned, current)

    def diff(self, desired: list[Manifest], live: LiveDocument, ctx: Context) -> KindPlan:
        plan = KindPlan()
        if not desired:
            return plan
        wanted = detection.content_hash()
        if live.exists and not live.owned:
            plan.refuse_not_owned(
                KIND, NAME, f"document {live.name}", "package associations are left unchanged"
            )
            return plan
        change = FieldChange("hash", live.hash, wanted)
        if not live.exists:
            tags = owner_tags(ctx.controller_id, KIND, NAME)
            plan.operations.append(
                _operation(
                    Action.CREATE,
                    live,
                    (
                        FieldChange("documentType", None, "Command"),
                        FieldChange("documentFormat", None, "JSON"),
                        change,
                        *(FieldChange(f"tags.{k}", None, v) for k, v in sorted(tags.items())),
                    ),
                    "package associations run this document",
                    CreateDocument(name=live.name, tags=tags),
                )
            )
        elif live.hash != wanted and live.latest_version and live.latest_hash == wanted:
            plan.operations.append(
                _operation(
                    Action.UPDATE,
                    live,
                    change,
                    f"version {live.latest_version} already holds this evaluator (an earlier"
                    " pass stopped before promoting it): making it the default",
                    PromoteVersion(name=live.name, version=live.latest_version),
                )
            )
        elif live.hash != wanted:
            plan.operations.append(
                _operation(
                    Action.UPDATE,
                    live,
                    change,
                    "this controller version ships a different evaluator",
                    UpdateDocument(name=live.name),
                )
            )
        return plan

    def apply(self, aws: AwsApi, operation: Operation, ctx: Context) -> tuple[Event, ...]:
        match operation.payload:
            case CreateDocument(name=name, tags=tags):
                aws.call(
                    "ssm",
                    "CreateDocument",
                    Name=name,
                    Content=detection.document_content(),
                    DocumentType="Command",
                    DocumentFormat="JSON",
                    Tags=tag_list(tags),
                )
                crash_point("association.document-created")
            case UpdateDocument(name=name):
                self._promote(aws, name, self._new_version(aws, name))
            case PromoteVersion(name=name, version=version):
                self._promote(aws, name, version)
            case other:
                raise TypeError(f"{KIND} cannot apply {type(other).__name__}")
        return ()

    def health(self, desired: list[Manifest], live: LiveDocument, ctx: Context) -> KindStatus:
        if not desired:
            return KindStatus()
        if not live.exists:
            health = Health.MISSING
        elif not live.owned:
            health = Health.UNKNOWN
        elif live.hash != detection.content_hash():
            health = Health.PROGRESSING
        else:
            health = Health.HEALTHY
        return KindStatus(
            managed=1 if live.owned else 0,
            resources=[ResourceStatus(name=NAME, health=health)],
        )

    def _new_version(self, aws: AwsApi, name: str) -> str:
        try:
            updated = aws.call(
                "ssm",
                "UpdateDocument",
                Name=name,
                Content=detection.document_content(),
                DocumentFormat="JSON",
                DocumentVersion="$LATEST",
            )
        except Exception as error:
            # An older version already holds this evaluator (a controller rolled back, or a
            # version made by an interrupted pass that is no longer the latest).
            if error_code(error) != "DuplicateDocumentContent":
                raise
            version = self._version_holding(aws, name, detection.content_hash())
            if version is None:
                raise
            return version
        crash_point("association.document-versioned")
        return str(updated["DocumentDescription"]["DocumentVersion"])

    def _promote(self, aws: AwsApi, name: str, version: str) -> None:
        aws.call("ssm", "UpdateDocumentDefaultVersion", Name=name, DocumentVersion=version)

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


def _operation(
    action: Action,
    live: LiveDocument,
    change: FieldChange | tuple[FieldChange, ...],
    reason: str,
    step: Step,
) -> Operation:
    return Operation(
        kind=KIND,
        name=NAME,
        action=action,
        resource=live.name,
        changes=change if isinstance(change, tuple) else (change,),
        reason=reason,
        payload=step,
    )


__all__ = [
    "KIND",
    "NAME",
    "CreateDocument",
    "DetectionDocumentKind",
    "DetectionDocumentSpec",
    "PromoteVersion",
    "UpdateDocument",
]
