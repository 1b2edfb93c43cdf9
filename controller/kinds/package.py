"""Distributor packages: built from the desired-state repo, uploaded by content, versioned sparingly.

Observe builds each Package (deterministic zips, so the build is a pure function of the files) and
reads the live document: its tags, its default version's manifest and attachment hashes, and its
version list. A live default whose manifest (less ``version``) and attachment hashes equal the
build, under the spec's version name, is "equal": no upload, no new version. Otherwise S3 is listed
under the prefix and only missing content-addressed zips are uploaded; the document gets one new
version (VersionName = spec.version, or ``<version>-<digest8>`` when that name already holds other
content), which is promoted with UpdateDocumentDefaultVersion. The oldest versions beyond
keepVersions are deleted (never the default), so the 26th version never happens.

Associations that install the package at "latest" pass an empty version, which AWS does not
re-run when a package's default changes. A promotion therefore returns a ``DefaultVersionChanged``
event: the engine hands it along the Package -> Association edge (the Association kind's hook
starts those associations once) and then calls ``after_dependents`` here, which records on the
document, in the ``fleet-controller/followers-started`` tag, the default version whose followers
were started. A document created by the controller carries that tag from the start (its first
version needs no start), so a pass that stopped between the promotion and the start (or the
record) is seen by the next: the tag names an older version than the default, and a
``StartFollowers`` step raises the event again (the followers start at least once).

Every step is safe to stop after. Uploads are content-addressed (a second pass uploads only what
is missing). A version created but not yet promoted (the pass stopped, or UpdateDocument's answer
was lost) already holds the build under spec.version: the next pass promotes it rather than
creating a second version of the same content under a suffixed name. Pruning is recomputed from
the live versions.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from controller.aws import AwsApi, error_code
from controller.aws.tags import tag_dict, tag_list
from controller.contract import (
    OWNER_TAG,
    RESERVED_PREFIX,
    crash_point,
    is_owned,
    manifest_of,
    owner_tags,
)
from controller.detection import document as detection
from controller.kinds.base import (
    PLACEHOLDER,
    Action,
    Context,
    DefaultVersionChanged,
    Event,
    Exported,
    FieldChange,
    Health,
    Kind,
    KindPlan,
    KindStatus,
    Operation,
    ResourceStatus,
    Severity,
    Step,
)
from controller.manifests import Manifest
from controller.manifests.specs.package import KEEP_VERSIONS_MAX, PackageSpec
from controller.packaging.build import Artifact, PackageBuild, manifest_digest

KIND = "Package"
AWS_VERSION_LIMIT = 25
# The default version whose "latest" followers were last started (see the module docstring).
FOLLOWERS_STARTED_TAG = f"{RESERVED_PREFIX}followers-started"


@dataclass(frozen=True)
class LiveVersion:
    number: int
    version_name: str | None
    is_default: bool


@dataclass
class LivePackage:
    name: str
    exists: bool
    owned: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    default_version: int | None = None
    default_version_name: str | None = None
    default_digest: str | None = None
    default_hashes: dict[str, str] = field(default_factory=dict)
    versions: list[LiveVersion] = field(default_factory=list)


@dataclass
class PackageState:
    manifest: str
    build: PackageBuild
    live: LivePackage
    equal: bool
    bucket_exists: bool = True
    stored_keys: frozenset[str] = frozenset()  # S3 keys under the prefix (read when not equal)
    reusable: int | None = None  # a non-default version named spec.version holding this build

    @property
    def followers_pending(self) -> bool:
        """The default was promoted but its "latest" associations were never started for it."""
        started = self.live.tags.get(FOLLOWERS_STARTED_TAG)
        return started is not None and started != str(self.live.default_version)


@dataclass
class PackageLive:
    packages: dict[str, PackageState]  # by manifest name
    owned: dict[str, str] = field(default_factory=dict)  # owned package document -> manifest


@dataclass(frozen=True, kw_only=True)
class CreatePackage(Step):
    """Upload what S3 lacks and create the document with its first version (the default)."""

    document: str
    build: PackageBuild
    version_name: str
    uploads: tuple[Artifact, ...]
    tags: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class PublishVersion(Step):
    """Upload what S3 lacks, add a version (room made under AWS's 25 first), promote, prune."""

    document: str
    build: PackageBuild
    version_name: str
    uploads: tuple[Artifact, ...]
    versions: tuple[LiveVersion, ...]
    keep: int


@dataclass(frozen=True, kw_only=True)
class PromoteVersion(Step):
    """A version already holds this build (an earlier pass stopped): promote it, prune."""

    document: str
    number: int
    versions: tuple[LiveVersion, ...]
    keep: int


@dataclass(frozen=True, kw_only=True)
class PruneVersions(Step):
    document: str
    versions: tuple[LiveVersion, ...]
    keep: int


@dataclass(frozen=True, kw_only=True)
class StartFollowers(Step):
    """Raise the default's event again: its followers were never started (a pass stopped)."""

    document: str
    default_version: int


@dataclass(frozen=True, kw_only=True)
class DeletePackage(Step):
    document: str


def suffixed(version: str, digest: str) -> str:
    """The version name used when ``version`` already names other content."""
    return f"{version}-{digest[:8]}"


class PackageKind(Kind[PackageLive]):
    kind = KIND
    spec_model = PackageSpec

    # -- observe ---------------------------------------------------------------------------------
    def observe(self, aws: AwsApi, desired: list[Manifest], ctx: Context) -> PackageLive:
        packages: dict[str, PackageState] = {}
        for manifest in desired:
            spec: PackageSpec = manifest.spec
            build: PackageBuild = manifest.built  # built when the revision loaded
            live = self._live_package(aws, spec.name, ctx)
            equal = live.owned and _equal(spec, build, live)
            state = PackageState(manifest.name, build, live, equal)
            if not equal:
                state.bucket_exists, state.stored_keys = self._stored(aws, build)
                state.reusable = self._reusable(aws, spec, build, live)
            packages[manifest.name] = state
        return PackageLive(packages, self._owned_documents(aws, ctx))

    def _live_package(self, aws: AwsApi, name: str, ctx: Context) -> LivePackage:
        found = aws.call_if_exists("ssm", "DescribeDocument", absent="InvalidDocument", Name=name)
        if found is None:
            return LivePackage(name, exists=False)
        described = found["Document"]
        tags = tag_dict(described.get("Tags"))
        live = LivePackage(name, True, is_owned(tags, ctx.controller_id), tags)
        if not live.owned or described.get("DocumentType") != "Package":
            live.owned = live.owned and described.get("DocumentType") == "Package"
            return live
        default = aws.call("ssm", "GetDocument", Name=name)
        live.default_version = int(default["DocumentVersion"])
        live.default_version_name = default.get("VersionName")
        try:
            live.default_digest = manifest_digest(json.loads(default.get("Content") or "{}"))
        except ValueError:
            live.default_digest = None
        live.default_hashes = {
            a["Name"]: str(a.get("Hash", "")).lower() for a in default.get("AttachmentsContent", [])
        }
        live.versions = [
            LiveVersion(
                int(item["DocumentVersion"]),
                item.get("VersionName"),
                bool(item["IsDefaultVersion"]),
            )
            for item in aws.items("ssm", "ListDocumentVersions", Name=name, MaxResults=50)
        ]
        return live

    def _reusable(
        self, aws: AwsApi, spec: PackageSpec, build: PackageBuild, live: LivePackage
    ) -> int | None:
        """The version named spec.version, when it is not the default and holds this build."""
        named = next((v for v in live.versions if v.version_name == spec.version), None)
        if not live.owned or named is None or named.is_default:
            return None
        found = aws.call("ssm", "GetDocument", Name=live.name, VersionName=spec.version)
        try:
            digest = manifest_digest(json.loads(found.get("Content") or "{}"))
        except ValueError:
            return None
        hashes = {
            a["Name"]: str(a.get("Hash", "")).lower() for a in found.get("AttachmentsContent", [])
        }
        return named.number if digest == build.digest and hashes == build.hashes else None

    def _stored(self, aws: AwsApi, build: PackageBuild) -> tuple[bool, frozenset[str]]:
        """Which content-addressed zips S3 already holds (one listing of the prefix)."""
        prefix = f"{build.prefix}/" if build.prefix else ""
        try:
            keys = {
                item["Key"]
                for page in aws.pages("s3", "ListObjectsV2", Bucket=build.bucket, Prefix=prefix)
                for item in page.get("Contents", [])
            }
        except Exception as error:
            if error_code(error) == "NoSuchBucket":
                return False, frozenset()
            raise
        return True, frozenset(keys)

    def _owned_documents(self, aws: AwsApi, ctx: Context) -> dict[str, str]:
        """Owned Package documents, for pruning (one filtered listing)."""
        found: dict[str, str] = {}
        for item in aws.items(
            "ssm",
            "ListDocuments",
            Filters=[
                {"Key": f"tag:{OWNER_TAG}", "Values": [ctx.controller_id]},
                {"Key": "DocumentType", "Values": ["Package"]},
            ],
            MaxResults=50,
        ):
            name = manifest_of(tag_dict(item.get("Tags")), KIND)
            if name is not None:
                found[item["Name"]] = name
        return found

    # -- diff (pure) -----------------------------------------------------------------------------
    def diff(self, desired: list[Manifest], live: PackageLive, ctx: Context) -> KindPlan:
        plan = KindPlan()
        declared = set()
        for manifest in desired:
            spec: PackageSpec = manifest.spec
            declared.add(spec.name)
            self._diff_one(manifest, spec, live.packages[manifest.name], ctx, plan)
        for document, name in sorted(live.owned.items()):
            if document not in declared:
                plan.operations.append(
                    Operation(
                        kind=KIND,
                        name=name,
                        action=Action.DELETE,
                        resource=document,
                        reason="no manifest declares this package any more",
                        prune=True,
                        payload=DeletePackage(document=document),
                    )
                )
        return plan

    def _diff_one(
        self,
        manifest: Manifest,
        spec: PackageSpec,
        state: PackageState,
        ctx: Context,
        plan: KindPlan,
    ) -> None:
        live, build = state.live, state.build
        if live.exists and not live.owned:
            plan.refuse_not_owned(
                KIND,
                manifest.name,
                f"document {spec.name}",
                "refusing to change it",
                as_a="a Package",
            )
            return
        if state.equal:
            self._tidy(manifest, spec, state, plan)
            return
        if not state.bucket_exists:
            plan.note(
                KIND,
                manifest.name,
                Severity.ERROR,
                f"S3 bucket {build.bucket} does not exist: create it (with the access"
                " Distributor needs) before publishing this package",
            )
            return
        uploads = tuple(a for a in build.artifacts if a.key not in state.stored_keys)
        names = {v.version_name: v.number for v in live.versions if v.version_name}
        version_name, promote = spec.version, None
        if state.reusable is not None:
            promote = state.reusable
        elif spec.version in names:
            version_name = suffixed(spec.version, build.digest)
            promote = names.get(version_name)
            plan.note(
                KIND,
                manifest.name,
                Severity.WARNING,
                f"the content changed but version {spec.version} already exists in"
                f" {spec.name}: publishing it as {version_name}; bump spec.version to name it",
            )
        changes = [FieldChange("version", live.default_version_name, version_name)]
        for artifact in build.artifacts:
            before = live.default_hashes.get(artifact.name)
            if before != artifact.sha256:
                changes.append(FieldChange(f"files.{artifact.name}", before, artifact.sha256))
        changes += [
            FieldChange(f"upload.{artifact.key}", None, f"{artifact.size} bytes")
            for artifact in uploads
        ]
        step: Step
        if not live.exists:
            changes += [
                FieldChange("publisher", None, spec.publisher),
                FieldChange(
                    "artifacts", None, f"s3://{spec.artifacts.bucket}/{spec.artifacts.prefix}"
                ),
                FieldChange("keepVersions", None, spec.keep_versions),
            ]
            reason = "the package does not exist"
            step = CreatePackage(
                document=spec.name,
                build=build,
                version_name=version_name,
                uploads=uploads,
                tags=owner_tags(ctx.controller_id, KIND, manifest.name),
            )
        elif promote is not None:
            reason = f"version {version_name} holds this content already: promoting it"
            step = PromoteVersion(
                document=spec.name,
                number=promote,
                versions=tuple(live.versions),
                keep=spec.keep_versions,
            )
        else:
            reason = "the built package differs from the live default version"
            step = PublishVersion(
                document=spec.name,
                build=build,
                version_name=version_name,
                uploads=uploads,
                versions=tuple(live.versions),
                keep=spec.keep_versions,
            )
        plan.operations.append(
            Operation(
                kind=KIND,
                name=manifest.name,
                action=Action.UPDATE if live.exists else Action.CREATE,
                resource=spec.name,
                changes=tuple(changes),
                reason=reason,
                payload=step,
            )
        )

    def _tidy(
        self, manifest: Manifest, spec: PackageSpec, state: PackageState, plan: KindPlan
    ) -> None:
        """The live default is this build: prune old versions, start followers never started."""
        live = state.live
        excess = _excess(list(live.versions), spec.keep_versions)
        if excess:
            plan.operations.append(
                Operation(
                    kind=KIND,
                    name=manifest.name,
                    action=Action.UPDATE,
                    resource=spec.name,
                    changes=(FieldChange("versions", len(live.versions), spec.keep_versions),),
                    reason=f"{len(excess)} version(s) beyond keepVersions {spec.keep_versions}",
                    payload=PruneVersions(
                        document=spec.name, versions=tuple(live.versions), keep=spec.keep_versions
                    ),
                )
            )
        if state.followers_pending and live.default_version is not None:
            plan.operations.append(
                Operation(
                    kind=KIND,
                    name=manifest.name,
                    action=Action.UPDATE,
                    resource=spec.name,
                    changes=(
                        FieldChange(
                            "followersStarted",
                            live.tags.get(FOLLOWERS_STARTED_TAG),
                            str(live.default_version),
                        ),
                    ),
                    reason=f"the associations installing it at latest were not started for"
                    f" version {live.default_version_name} (an earlier pass stopped): starting"
                    " them once",
                    payload=StartFollowers(
                        document=spec.name, default_version=live.default_version
                    ),
                )
            )

    # -- apply -----------------------------------------------------------------------------------
    def apply(self, aws: AwsApi, operation: Operation, ctx: Context) -> tuple[Event, ...]:
        match operation.payload:
            case DeletePackage(document=document):
                aws.call_if_exists("ssm", "DeleteDocument", absent="InvalidDocument", Name=document)
            case CreatePackage() as create:
                self._upload(aws, create.build, create.uploads)
                aws.call(
                    "ssm",
                    "CreateDocument",
                    Name=create.document,
                    Content=create.build.manifest_json(create.version_name),
                    DocumentType="Package",
                    DocumentFormat="JSON",
                    VersionName=create.version_name,
                    Attachments=_attachments(create.build),
                    Tags=tag_list({**create.tags, FOLLOWERS_STARTED_TAG: "1"}),
                )
                crash_point("package.versioned")
            case PublishVersion() as publish:
                self._upload(aws, publish.build, publish.uploads)
                # Make room under AWS's limit first; the default version is never a candidate.
                versions = self._prune(
                    aws, publish.document, list(publish.versions), AWS_VERSION_LIMIT - 1
                )
                created = aws.call(
                    "ssm",
                    "UpdateDocument",
                    Name=publish.document,
                    Content=publish.build.manifest_json(publish.version_name),
                    DocumentFormat="JSON",
                    DocumentVersion="$LATEST",
                    VersionName=publish.version_name,
                    Attachments=_attachments(publish.build),
                )
                number = int(created["DocumentDescription"]["DocumentVersion"])
                versions.append(LiveVersion(number, publish.version_name, False))
                crash_point("package.versioned")
                return self._promote(
                    aws, operation, publish.document, number, versions, publish.keep
                )
            case PromoteVersion() as promote:
                return self._promote(
                    aws,
                    operation,
                    promote.document,
                    promote.number,
                    list(promote.versions),
                    promote.keep,
                )
            case PruneVersions(document=document, versions=versions, keep=keep):
                self._prune(aws, document, list(versions), keep)
                crash_point("package.pruned")
            case StartFollowers(default_version=default):
                return (DefaultVersionChanged(source=operation.ref, version=str(default)),)
            case other:
                raise TypeError(f"{KIND} cannot apply {type(other).__name__}")
        return ()

    def after_dependents(self, aws: AwsApi, event: Event, ctx: Context) -> None:
        """Every association following the package at "latest" was started for this default:
        record it on the document (a pass stopped before this starts them again)."""
        if not isinstance(event, DefaultVersionChanged):
            return
        crash_point("package.started")
        manifest = ctx.desired.get(KIND, event.source.name) if ctx.desired else None
        if manifest is None:
            raise ValueError(f"{event.source} is not in the revision being applied")
        # The owner tags go along: IAM allows tag writes that carry the controller's owner tag.
        record = {
            **owner_tags(ctx.controller_id, KIND, manifest.name),
            FOLLOWERS_STARTED_TAG: event.version,
        }
        aws.call(
            "ssm",
            "AddTagsToResource",
            ResourceType="Document",
            ResourceId=manifest.spec.name,
            Tags=tag_list(record),
        )

    def _upload(self, aws: AwsApi, build: PackageBuild, uploads: tuple[Artifact, ...]) -> None:
        for artifact in uploads:
            with artifact.open() as body:  # streamed from the build cache
                aws.call(
                    "s3",
                    "PutObject",
                    Bucket=build.bucket,
                    Key=artifact.key,
                    Body=body,
                    ContentType="application/zip",
                )
            crash_point("package.uploaded")

    def _promote(
        self,
        aws: AwsApi,
        operation: Operation,
        document: str,
        number: int,
        versions: list[LiveVersion],
        keep: int,
    ) -> tuple[Event, ...]:
        aws.call("ssm", "UpdateDocumentDefaultVersion", Name=document, DocumentVersion=str(number))
        crash_point("package.promoted")
        versions = [LiveVersion(v.number, v.version_name, v.number == number) for v in versions]
        self._prune(aws, document, versions, keep)
        crash_point("package.pruned")
        return (DefaultVersionChanged(source=operation.ref, version=str(number)),)

    def _prune(
        self, aws: AwsApi, document: str, versions: list[LiveVersion], keep: int
    ) -> list[LiveVersion]:
        """Delete the oldest non-default versions until at most ``keep`` remain."""
        doomed = _excess(versions, min(keep, KEEP_VERSIONS_MAX))
        for version in doomed:
            aws.call("ssm", "DeleteDocument", Name=document, DocumentVersion=str(version.number))
        gone = {v.number for v in doomed}
        return [v for v in versions if v.number not in gone]

    # -- status ----------------------------------------------------------------------------------
    def health(self, desired: list[Manifest], live: PackageLive, ctx: Context) -> KindStatus:
        status = KindStatus(managed=len(live.owned))
        for manifest in desired:
            state = live.packages[manifest.name]
            if not state.live.exists:
                health = Health.MISSING
            elif not state.live.owned:
                health = Health.UNKNOWN
            elif state.equal and not state.followers_pending:
                health = Health.HEALTHY
            else:
                health = Health.PROGRESSING
            status.resources.append(ResourceStatus(name=manifest.name, health=health))
        return status

    # -- export ----------------------------------------------------------------------------------
    def export(self, aws: AwsApi, ctx: Context) -> Exported:
        """Owned packages as Package manifests that build the same zips: each zip's files are
        read back from its S3 object into ``packages/<name>/``, and the detection rule from an
        association that installs the package through the detection document. What cannot be
        read back is a ``REPLACE-ME`` placeholder (validate says where; plan refuses it)."""
        exported = Exported()
        rules = _detection_rules_in_use(aws, ctx)
        for document, name in sorted(self._owned_documents(aws, ctx).items()):
            live = aws.call("ssm", "GetDocument", Name=document)
            try:
                body = json.loads(live.get("Content") or "{}")
            except ValueError:
                exported.review.append(f"{KIND}/{name}: {document}'s manifest is not JSON: skipped")
                continue
            urls = {a.get("Name", ""): a.get("Url", "") for a in live.get("AttachmentsContent", [])}
            bucket, prefix = _bucket_and_prefix(next(iter(urls.values()), ""))
            zips = [
                (platform, version, arch, str((entry or {}).get("file", "")))
                for platform, by_version in sorted((body.get("packages") or {}).items())
                for version, by_arch in sorted(by_version.items())
                for arch, entry in sorted(by_arch.items())
            ]
            spec: dict[str, Any] = {
                "name": document,
                "version": live.get("VersionName") or body.get("version", "1.0.0"),
                "publisher": body.get("publisher", "unknown"),
                "artifacts": {"bucket": bucket, "prefix": prefix},
                "keepVersions": max(1, min(_version_count(aws, document), KEEP_VERSIONS_MAX)),
                "platforms": [],
            }
            unreadable: list[str] = []
            for platform, version, arch, zip_name in zips:
                folder = f"packages/{name}" + (
                    f"/{platform}-{version}-{arch}" if len(zips) > 1 else ""
                )
                files = _unzip(aws, urls.get(zip_name, ""))
                if files is None:
                    unreadable.append(zip_name)
                    files = _stub_scripts(zip_name)
                exported.files.update({f"{folder}/{n}": content for n, content in files.items()})
                spec["platforms"].append(
                    {
                        "platform": platform,
                        "platformVersion": version,
                        "arch": arch,
                        "files": [f"{folder}/{n}" for n in sorted(files)],
                    }
                )
            if unreadable:
                spec["publisher"] = (
                    f"{PLACEHOLDER}: {', '.join(unreadable)} could not be read back; put the"
                    f" package's files in packages/{name}/, list them in platforms[].files"
                    " (in place of the stub scripts) and write its publisher here"
                )
            rule = rules.get(document)
            if rule is None:
                rule = {
                    "type": "file",
                    "path": f"%ProgramFiles%\\{PLACEHOLDER}\\app.exe",
                    "check": "exists",
                }
                exported.review.append(
                    f"{KIND}/{name}: no association installs it through the detection document,"
                    " so its detection rule is a placeholder: write the rule that proves it is"
                    " installed"
                )
            spec["detection"] = rule
            exported.documents.append(
                {
                    "apiVersion": "fleet-controller/v1alpha1",
                    "kind": KIND,
                    "metadata": {"name": name},
                    "spec": spec,
                }
            )
        return exported


def _version_count(aws: AwsApi, document: str) -> int:
    return len(list(aws.items("ssm", "ListDocumentVersions", Name=document, MaxResults=50)))


def _detection_rules_in_use(aws: AwsApi, ctx: Context) -> dict[str, dict[str, Any]]:
    """Package document -> the detection rule an owned association installs it with."""
    detector = detection.document_name(ctx.controller_id)
    found: dict[str, dict[str, Any]] = {}
    for listed in aws.items("ssm", "ListAssociations", MaxResults=50):
        if listed.get("Name") != detector:
            continue
        described = aws.call("ssm", "DescribeAssociation", AssociationId=listed["AssociationId"])
        parameters = described["AssociationDescription"].get("Parameters") or {}
        package = (parameters.get("name") or [""])[0]
        try:
            rule = json.loads((parameters.get("detectionRules") or ["null"])[0])
        except ValueError:
            continue
        if package and isinstance(rule, dict):
            found.setdefault(package, rule)
    return found


def _unzip(aws: AwsApi, url: str) -> dict[str, bytes] | None:
    """The files of a package zip in S3 (None when it cannot be read)."""
    bucket, prefix = _bucket_and_prefix(url)
    key = url.rsplit("/", 1)[-1]
    key = f"{prefix}/{key}" if prefix else key
    if not bucket or not key:
        return None
    try:
        body = aws.call("s3", "GetObject", Bucket=bucket, Key=key)["Body"].read()
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return {
                PurePosixPath(info.filename).name: archive.read(info)
                for info in archive.infolist()
                if not info.is_dir()
            }
    except Exception:  # missing, denied or not a zip: the export says so instead
        return None


def _stub_scripts(zip_name: str) -> dict[str, bytes]:
    """Scripts that refuse to run, where a zip's files could not be read back."""
    text = f"throw '{PLACEHOLDER}: {zip_name} could not be read back; put the real script here'\n"
    return {"install.ps1": text.encode(), "uninstall.ps1": text.encode()}


def _attachments(build: PackageBuild) -> list[dict[str, Any]]:
    return [{"Key": "S3FileUrl", "Values": [build.url(a)], "Name": a.name} for a in build.artifacts]


def _bucket_and_prefix(url: str) -> tuple[str, str]:
    """From ``s3://bucket/prefix/sha.zip`` or ``https://bucket.s3.amazonaws.com/prefix/sha.zip``."""
    if url.startswith("s3://"):
        bucket, _, key = url[5:].partition("/")
    else:
        host, _, key = url.split("://", 1)[-1].partition("/")
        bucket = host.split(".s3", 1)[0]
    return bucket, key.rpartition("/")[0]


def _equal(spec: PackageSpec, build: PackageBuild, live: LivePackage) -> bool:
    """The live default version is this build under the spec's version name."""
    return (
        live.default_version_name in (spec.version, suffixed(spec.version, build.digest))
        and live.default_digest == build.digest
        and live.default_hashes == build.hashes
    )


def _excess(versions: list[LiveVersion], keep: int) -> list[LiveVersion]:
    """The oldest non-default versions beyond ``keep`` (the default always stays)."""
    extra = len(versions) - keep
    if extra <= 0:
        return []
    candidates = sorted((v for v in versions if not v.is_default), key=lambda v: v.number)
    return candidates[:extra]


__all__ = [
    "KIND",
    "CreatePackage",
    "DeletePackage",
    "PackageKind",
    "PromoteVersion",
    "PruneVersions",
    "PublishVersion",
    "StartFollowers",
    "suffixed",
]
