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
re-run when a package's default changes; so after promoting, apply starts those associations once
(StartAssociationsOnce) and then records on the document, in the ``fleet-controller/
followers-started`` tag, the default version whose followers were started. A document created by
the controller carries that tag from the start (its first version needs no start), so a pass that
stopped between the promotion and the start (or the record) is seen by the next: the tag names
an older version than the default, and the followers are started then (at least once).

Every step is safe to stop after. Uploads are content-addressed (a second pass uploads only what
is missing). A version created but not yet promoted (the pass stopped, or UpdateDocument's answer
was lost) already holds the build under spec.version: the next pass promotes it rather than
creating a second version of the same content under a suffixed name. Pruning is recomputed from
the live versions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from controller.aws import AwsApi, error_code
from controller.aws.tags import tag_dict, tag_list
from controller.detection.document import document_name
from controller.engine.crashpoints import crash_point
from controller.engine.ownership import (
    OWNER_TAG,
    RESERVED_PREFIX,
    is_owned,
    manifest_of,
    owner_tags,
)
from controller.engine.plan import Action, FieldChange, Finding, KindPlan, Operation, Severity
from controller.kinds.base import Context, Kind
from controller.manifests import Manifest
from controller.manifests.specs.package import KEEP_VERSIONS_MAX, PackageSpec
from controller.observability.metrics import Metrics
from controller.packaging.build import Artifact, PackageBuild, manifest_digest

KIND = "Package"
AWS_VERSION_LIMIT = 25
START_ONCE_BATCH = 10  # StartAssociationsOnce AssociationIds: max 10
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


@dataclass(frozen=True)
class Publish:
    """What apply does for one Package; ``version_name`` None means prune only."""

    manifest: str
    document: str
    build: PackageBuild
    version_name: str | None
    create: bool
    uploads: tuple[Artifact, ...]
    promote_existing: int | None
    versions: tuple[LiveVersion, ...]
    keep: int
    tags: dict[str, str]
    start_default: int | None = None  # prune only: then start the followers of this default


def suffixed(version: str, digest: str) -> str:
    """The version name used when ``version`` already names other content."""
    return f"{version}-{digest[:8]}"


class PackageKind(Kind[PackageLive]):
    kind = KIND
    apply_order = 30

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
                        KIND,
                        name,
                        Action.DELETE,
                        document,
                        reason="no manifest declares this package any more",
                        prune=True,
                        payload=document,
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
            plan.findings.append(
                Finding(
                    KIND,
                    manifest.name,
                    Severity.ERROR,
                    f"document {spec.name} exists and is not a Package owned by this controller"
                    " (owner tag missing or different): refusing to change it",
                )
            )
            return
        tags = owner_tags(ctx.controller_id, KIND, manifest.name)
        if state.equal:
            excess = _excess(list(live.versions), spec.keep_versions)
            changes, reasons = [], []
            if excess:
                changes.append(FieldChange("versions", len(live.versions), spec.keep_versions))
                reasons.append(f"{len(excess)} version(s) beyond keepVersions {spec.keep_versions}")
            if state.followers_pending:
                changes.append(
                    FieldChange(
                        "followersStarted",
                        live.tags.get(FOLLOWERS_STARTED_TAG),
                        str(live.default_version),
                    )
                )
                reasons.append(
                    f"the associations installing it at latest were not started for version"
                    f" {live.default_version_name} (an earlier pass stopped): starting them once"
                )
            if changes:
                plan.operations.append(
                    Operation(
                        KIND,
                        manifest.name,
                        Action.UPDATE,
                        spec.name,
                        changes=tuple(changes),
                        reason="; ".join(reasons),
                        payload=Publish(
                            manifest.name,
                            spec.name,
                            build,
                            None,
                            False,
                            (),
                            None,
                            tuple(live.versions),
                            spec.keep_versions,
                            tags,
                            live.default_version if state.followers_pending else None,
                        ),
                    )
                )
            return
        if not state.bucket_exists:
            plan.findings.append(
                Finding(
                    KIND,
                    manifest.name,
                    Severity.ERROR,
                    f"S3 bucket {build.bucket} does not exist: create it (with the access"
                    " Distributor needs) before publishing this package",
                )
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
            plan.findings.append(
                Finding(
                    KIND,
                    manifest.name,
                    Severity.WARNING,
                    f"the content changed but version {spec.version} already exists in"
                    f" {spec.name}: publishing it as {version_name}; bump spec.version to name it",
                )
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
        if promote is not None:
            reason = f"version {version_name} holds this content already: promoting it"
        elif live.exists:
            reason = "the built package differs from the live default version"
        else:
            reason = "the package does not exist"
        plan.operations.append(
            Operation(
                KIND,
                manifest.name,
                Action.UPDATE if live.exists else Action.CREATE,
                spec.name,
                changes=tuple(changes),
                reason=reason,
                payload=Publish(
                    manifest.name,
                    spec.name,
                    build,
                    version_name,
                    not live.exists,
                    () if promote is not None else uploads,
                    promote,
                    tuple(live.versions),
                    spec.keep_versions,
                    tags,
                ),
            )
        )

    # -- apply -----------------------------------------------------------------------------------
    def apply(self, aws: AwsApi, operation: Operation, ctx: Context) -> None:
        if operation.action is Action.DELETE:
            aws.call_if_exists(
                "ssm", "DeleteDocument", absent="InvalidDocument", Name=operation.payload
            )
            return
        publish: Publish = operation.payload
        versions = list(publish.versions)
        if publish.version_name is None:
            self._prune(aws, publish.document, versions, publish.keep)
            crash_point("package.pruned")
            if publish.start_default is not None:
                self._start_followers(aws, publish, publish.start_default, ctx)
            return
        for artifact in publish.uploads:
            with artifact.open() as body:  # streamed from the build cache
                aws.call(
                    "s3",
                    "PutObject",
                    Bucket=publish.build.bucket,
                    Key=artifact.key,
                    Body=body,
                    ContentType="application/zip",
                )
            crash_point("package.uploaded")
        attachments = [
            {"Key": "S3FileUrl", "Values": [publish.build.url(a)], "Name": a.name}
            for a in publish.build.artifacts
        ]
        content = publish.build.manifest_json(publish.version_name)
        if publish.create:
            aws.call(
                "ssm",
                "CreateDocument",
                Name=publish.document,
                Content=content,
                DocumentType="Package",
                DocumentFormat="JSON",
                VersionName=publish.version_name,
                Attachments=attachments,
                Tags=tag_list({**publish.tags, FOLLOWERS_STARTED_TAG: "1"}),
            )
            crash_point("package.versioned")
            return
        number = publish.promote_existing
        if number is None:
            # Make room under AWS's limit first; the default version is never a candidate.
            versions = self._prune(aws, publish.document, versions, AWS_VERSION_LIMIT - 1)
            created = aws.call(
                "ssm",
                "UpdateDocument",
                Name=publish.document,
                Content=content,
                DocumentFormat="JSON",
                DocumentVersion="$LATEST",
                VersionName=publish.version_name,
                Attachments=attachments,
            )
            number = int(created["DocumentDescription"]["DocumentVersion"])
            versions.append(LiveVersion(number, publish.version_name, False))
            crash_point("package.versioned")
        aws.call(
            "ssm",
            "UpdateDocumentDefaultVersion",
            Name=publish.document,
            DocumentVersion=str(number),
        )
        crash_point("package.promoted")
        versions = [LiveVersion(v.number, v.version_name, v.number == number) for v in versions]
        self._prune(aws, publish.document, versions, publish.keep)
        crash_point("package.pruned")
        self._start_followers(aws, publish, number, ctx)

    def _prune(
        self, aws: AwsApi, document: str, versions: list[LiveVersion], keep: int
    ) -> list[LiveVersion]:
        """Delete the oldest non-default versions until at most ``keep`` remain."""
        doomed = _excess(versions, min(keep, KEEP_VERSIONS_MAX))
        for version in doomed:
            aws.call("ssm", "DeleteDocument", Name=document, DocumentVersion=str(version.number))
        gone = {v.number for v in doomed}
        return [v for v in versions if v.number not in gone]

    def _start_followers(self, aws: AwsApi, publish: Publish, default: int, ctx: Context) -> None:
        """Run once, now, the controller's associations that install the package at "latest",
        then record on the document that ``default``'s followers were started."""
        package = publish.document
        detector = document_name(ctx.controller_id)
        ids: list[str] = []
        for item in aws.items(
            "ssm", "ListAssociations", AssociationFilterList=[{"key": "Name", "value": detector}]
        ):
            described = aws.call("ssm", "DescribeAssociation", AssociationId=item["AssociationId"])
            parameters = described["AssociationDescription"].get("Parameters") or {}
            if (
                parameters.get("name") == [package]
                and parameters.get("version", [""]) == [""]
                and parameters.get("action") == ["Install"]
            ):
                ids.append(item["AssociationId"])
        for start in range(0, len(ids), START_ONCE_BATCH):
            crash_point("package.starting")
            aws.call(
                "ssm", "StartAssociationsOnce", AssociationIds=ids[start : start + START_ONCE_BATCH]
            )
        crash_point("package.started")
        # The owner tags go along: IAM allows tag writes that carry the controller's owner tag.
        record = {**publish.tags, FOLLOWERS_STARTED_TAG: str(default)}
        aws.call(
            "ssm",
            "AddTagsToResource",
            ResourceType="Document",
            ResourceId=package,
            Tags=tag_list(record),
        )

    # -- status ----------------------------------------------------------------------------------
    def report(
        self, desired: list[Manifest], live: PackageLive, metrics: Metrics, ctx: Context
    ) -> None:
        metrics.managed_resources.labels(target=ctx.target, kind=KIND).set(len(live.owned))

    # -- export ----------------------------------------------------------------------------------
    def export(self, aws: AwsApi, ctx: Context) -> list[dict[str, Any]]:
        """Owned packages as Package manifests, best effort: the zips' source files are not in
        AWS, so ``platforms`` lists the scripts every zip must hold and ``detection`` is a
        placeholder to replace; name, version, publisher, artifacts and keepVersions are live."""
        documents: list[dict[str, Any]] = []
        for document, name in sorted(self._owned_documents(aws, ctx).items()):
            live = aws.call("ssm", "GetDocument", Name=document)
            try:
                body = json.loads(live.get("Content") or "{}")
            except ValueError:
                continue
            urls = [a.get("Url", "") for a in live.get("AttachmentsContent", [])]
            bucket, prefix = _bucket_and_prefix(urls[0] if urls else "")
            platforms = [
                {
                    "platform": platform,
                    "platformVersion": version,
                    "arch": arch,
                    "files": ["install.ps1", "uninstall.ps1"],
                }
                for platform, by_version in sorted((body.get("packages") or {}).items())
                for version, by_arch in sorted(by_version.items())
                for arch in sorted(by_arch)
            ]
            versions = list(aws.items("ssm", "ListDocumentVersions", Name=document, MaxResults=50))
            documents.append(
                {
                    "apiVersion": "fleet-controller/v1alpha1",
                    "kind": KIND,
                    "metadata": {"name": name},
                    "spec": {
                        "name": document,
                        "version": live.get("VersionName") or body.get("version", "1.0.0"),
                        "publisher": body.get("publisher", "unknown"),
                        "artifacts": {"bucket": bucket, "prefix": prefix},
                        "keepVersions": max(1, min(len(versions), KEEP_VERSIONS_MAX)),
                        "platforms": platforms,
                        "detection": {"type": "folder", "path": "%ProgramFiles%\\REPLACE-ME"},
                    },
                }
            )
        return documents


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


__all__ = ["KIND", "PackageKind", "suffixed"]
