"""Package: a Distributor package built from files beside the manifest, with detection rules.

Limits come from the SSM model and Distributor's documentation: document names
``^[a-zA-Z0-9_\\-.]{3,128}$`` (not starting with AWS-, Amazon or Amzn), VersionName
``^[a-zA-Z0-9_\\-.]{1,128}$``, at most 20 attachments and 25 versions per package, and every zip
holds install.ps1 and uninstall.ps1 at its root.

The files are checked when the revision loads (``referenced_files``): each must be a regular file
inside the desired-state directory (controller/containment.py), within Distributor's
size quotas (``file_problems``), and the zips are built then (``build``), so a missing, escaping or
oversized file fails validation (file, line, field) before anything is uploaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from controller.containment import ContainedFile, path_text_problem
from controller.detection.rules import AllOf, AnyOf, LeafRule, RuleError, parse_rule
from controller.manifests.common import BuildProblems, Problem, SpecModel, StrictModel, fail
from controller.manifests.document import Manifest
from controller.manifests.errors import ManifestError
from controller.manifests.source import FieldPath

if TYPE_CHECKING:
    from controller.packaging.build import PackageBuild
    from controller.packaging.cache import BuildCache

KIND = "Package"

KEEP_VERSIONS_MAX = 25  # Distributor keeps at most 25 versions of a package
MAX_ATTACHMENTS = 20  # CreateDocument Attachments: max 20
VERSION_SUFFIX = 9  # "-" + 8 hex digits, added when the content changed under the same version
VERSION_MAX = 128 - VERSION_SUFFIX
ATTACHMENT_NAME_MAX = 128
ARCHES = ("x86_64", "386", "arm64")
REQUIRED_SCRIPTS = ("install.ps1", "uninstall.ps1")
OPTIONAL_SCRIPTS = ("update.ps1",)
_DOCUMENT_NAME = re.compile(r"[a-zA-Z0-9_\-.]{3,128}")
_VERSION_NAME = re.compile(r"[a-zA-Z0-9_\-.]{1,128}")
_PLATFORM_VERSION = re.compile(r"_any|[0-9][0-9.]*")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"[a-zA-Z0-9!_.*'()\-/]{1,512}")
_RULE_PATH = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

# Distributor's service quotas (AWS General Reference, "AWS Systems Manager endpoints and quotas",
# Service quotas for Distributor: https://docs.aws.amazon.com/general/latest/gr/ssm.html). "GB"
# is read as 10^9 bytes, the smaller reading, so what validates here is within either.
MAX_ATTACHMENT_BYTES = 1_000_000_000  # "Maximum size per attachment in a Distributor package: 1 GB"
MAX_FILE_BYTES = MAX_ATTACHMENT_BYTES  # a file larger than an attachment fits in none
MAX_PACKAGE_BYTES = 20_000_000_000  # "Maximum package size in Distributor: 20 GB"
MAX_PACKAGE_FILES = 1000  # "Maximum number of files in a Distributor package: 1,000"
MAX_MANIFEST_BYTES = 64_000  # "Maximum package manifest size in Distributor: 64 KB"


def _check_package_name(value: str) -> str:
    if not _DOCUMENT_NAME.fullmatch(value):
        raise fail(
            f"{value!r:.80} is not a Distributor package name: 3 to 128 characters of a-z A-Z 0-9"
            " _ - ."
        )
    if value.lower().startswith(("aws-", "amazon", "amzn")):
        raise fail(f"{value!r:.80}: names beginning with AWS-, Amazon or Amzn are reserved by AWS")
    return value


def _check_version(value: str) -> str:
    if not _VERSION_NAME.fullmatch(value) or len(value) > VERSION_MAX:
        raise fail(
            f"{value!r:.80} is not a package version: 1 to {VERSION_MAX} characters of a-z A-Z"
            " 0-9 _ - . (it becomes the document's VersionName)"
        )
    return value


def _check_bucket(value: str) -> str:
    if not _BUCKET.fullmatch(value) or ".." in value:
        raise fail(
            f"{value!r:.80} is not an S3 bucket name: 3 to 63 lowercase letters, digits, '.' and"
            " '-', starting and ending with a letter or digit"
        )
    return value


def _check_prefix(value: str) -> str:
    if value and (not _PREFIX.fullmatch(value) or value.startswith("/") or value.endswith("/")):
        raise fail(
            f"{value!r:.80} is not an S3 key prefix: letters, digits and !_.*'()-/ without a"
            " leading or trailing '/'"
        )
    return value


def _check_file(value: str) -> str:
    problem = path_text_problem(value)
    if problem is not None:
        raise fail(f"{value!r:.80}: {problem}")
    return value


class ArtifactsSpec(StrictModel):
    """Where zips are uploaded, content-addressed: ``<prefix>/<sha256>.zip``."""

    bucket: Annotated[str, AfterValidator(_check_bucket)]
    prefix: Annotated[str, AfterValidator(_check_prefix)] = ""


class PlatformSpec(StrictModel):
    """The files of one platform/arch zip, relative to the manifest file; their names in the zip
    are their base names, and install.ps1 and uninstall.ps1 must be among them."""

    platform: Literal["windows"] = "windows"
    platform_version: str = "_any"
    arch: Literal["x86_64", "386", "arm64"] = "x86_64"
    files: list[Annotated[str, AfterValidator(_check_file)]] = Field(min_length=1)

    @field_validator("platform_version")
    @classmethod
    def _platform_version(cls, value: str) -> str:
        if not _PLATFORM_VERSION.fullmatch(value):
            raise fail(f"{value!r:.80} is not a platform version: _any or a number such as 10.0")
        return value


class PackageSpec(SpecModel):
    @classmethod
    def check_set(cls, by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
        return check_packages(by_kind)

    name: Annotated[str, AfterValidator(_check_package_name)]
    version: Annotated[str, AfterValidator(_check_version)]
    publisher: str = Field(min_length=1, max_length=256)
    artifacts: ArtifactsSpec
    platforms: list[PlatformSpec] = Field(min_length=1, max_length=MAX_ATTACHMENTS)
    keep_versions: int = 5
    detection: dict[str, Any]

    @field_validator("keep_versions")
    @classmethod
    def _keep(cls, value: int) -> int:
        if not 1 <= value <= KEEP_VERSIONS_MAX:
            raise fail(
                f"{value} is outside 1 to {KEEP_VERSIONS_MAX}: Distributor keeps at most"
                f" {KEEP_VERSIONS_MAX} versions of a package"
            )
        return value

    @property
    def rule(self) -> AllOf | AnyOf | LeafRule:
        """The detection rule as the shared model (valid once the spec loaded)."""
        return parse_rule(self.detection)

    def attachment_name(self, platform: PlatformSpec) -> str:
        return f"{self.name}-{platform.platform}-{platform.platform_version}-{platform.arch}.zip"

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        try:
            parse_rule(self.detection)
        except RuleError as error:
            problems += [
                Problem(("detection", *_rule_path(path)), message)
                for path, message in error.problems
            ]
        seen: dict[tuple[str, str, str], int] = {}
        for index, platform in enumerate(self.platforms):
            where: FieldPath = ("platforms", index)
            key = (platform.platform, platform.platform_version, platform.arch)
            if key in seen:
                problems.append(
                    Problem(
                        where,
                        f"{'/'.join(key)} is already built by platforms[{seen[key]}]; each"
                        " platform/version/arch has one zip",
                    )
                )
            seen.setdefault(key, index)
            names = [PurePosixPath(f).name for f in platform.files]
            for script in REQUIRED_SCRIPTS:
                if script not in names:
                    problems.append(
                        Problem(
                            (*where, "files"),
                            f"the zip has no {script}: Distributor runs {' and '.join(REQUIRED_SCRIPTS)}"
                            " from the zip's root, so files must include both (update.ps1 is"
                            " optional)",
                        )
                    )
            for position, name in enumerate(names):
                if name in names[:position]:
                    problems.append(
                        Problem(
                            (*where, "files", position),
                            f"{name} is already in this zip (files are stored by base name)",
                        )
                    )
            if len(self.attachment_name(platform)) > ATTACHMENT_NAME_MAX:
                problems.append(
                    Problem(
                        ("name",),
                        f"the attachment name {self.attachment_name(platform)!r:.60}... is longer"
                        f" than {ATTACHMENT_NAME_MAX} characters; use a shorter package name",
                    )
                )
        return problems

    def referenced_files(self) -> list[tuple[FieldPath, str]]:
        return [
            (("platforms", index, "files", position), relative)
            for index, platform in enumerate(self.platforms)
            for position, relative in enumerate(platform.files)
        ]

    def file_problems(self, files: Mapping[FieldPath, ContainedFile]) -> list[Problem]:
        """Distributor's quotas, from the sizes on disk (no file is read). A zip is never larger
        than its inputs by more than a few bytes per entry, so the inputs' total stands for it;
        ``build`` checks the built zips as well."""
        problems: list[Problem] = []
        total = count = 0
        for index, platform in enumerate(self.platforms):
            where: FieldPath = ("platforms", index, "files")
            zip_total = 0
            for position in range(len(platform.files)):
                found = files.get((*where, position))
                if found is None:
                    continue
                count += 1
                zip_total += found.size
                if found.size > MAX_FILE_BYTES:
                    problems.append(
                        Problem(
                            (*where, position),
                            f"{found.relative} is {found.size:,} bytes; Distributor takes at most"
                            f" {MAX_FILE_BYTES:,} bytes per attachment (zip), so no file may be"
                            " larger",
                        )
                    )
            total += zip_total
            if zip_total > MAX_ATTACHMENT_BYTES and len(platform.files) > 1:
                problems.append(
                    Problem(
                        where,
                        f"these files add up to {zip_total:,} bytes; one zip (attachment) may hold"
                        f" at most {MAX_ATTACHMENT_BYTES:,} bytes in Distributor",
                    )
                )
        if total > MAX_PACKAGE_BYTES:
            problems.append(
                Problem(
                    ("platforms",),
                    f"the package's files add up to {total:,} bytes; Distributor takes at most"
                    f" {MAX_PACKAGE_BYTES:,} bytes per package",
                )
            )
        if count > MAX_PACKAGE_FILES:
            problems.append(
                Problem(
                    ("platforms",),
                    f"{count} files in one package; Distributor takes at most {MAX_PACKAGE_FILES}",
                )
            )
        return problems

    def build(self, files: Mapping[FieldPath, ContainedFile], cache: BuildCache) -> PackageBuild:
        from controller.packaging.build import ZipInput, build_package

        inputs: list[list[ZipInput]] = []
        for index, platform in enumerate(self.platforms):
            zip_inputs = []
            for position, relative in enumerate(platform.files):
                found = files[("platforms", index, "files", position)]
                name = PurePosixPath(relative).name
                zip_inputs.append(ZipInput(name, found.path, cache.file_sha256(found), found.size))
            inputs.append(zip_inputs)
        build = build_package(self, inputs, cache)
        problems = [
            Problem(
                ("platforms", index),
                f"the built zip {artifact.name} is {artifact.size:,} bytes; Distributor takes at"
                f" most {MAX_ATTACHMENT_BYTES:,} bytes per attachment",
            )
            for index, platform in enumerate(self.platforms)
            for artifact in build.artifacts
            if artifact.name == self.attachment_name(platform)
            and artifact.size > MAX_ATTACHMENT_BYTES
        ]
        manifest_bytes = len(build.manifest_json(self.version).encode("utf-8"))
        if manifest_bytes > MAX_MANIFEST_BYTES:
            problems.append(
                Problem(
                    ("platforms",),
                    f"the package manifest would be {manifest_bytes:,} bytes; Distributor takes"
                    f" at most {MAX_MANIFEST_BYTES:,}",
                )
            )
        if problems:
            raise BuildProblems(problems)
        return build


def _rule_path(text: str) -> FieldPath:
    """``allOf[1].hive`` -> ("allOf", 1, "hive")."""
    parts: list[str | int] = []
    for name, index in _RULE_PATH.findall(text):
        parts.append(int(index) if index else name)
    return tuple(parts)


def check_packages(by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
    """No two Packages publish the same Distributor package (files are the loader's job)."""
    errors: list[ManifestError] = []
    first: dict[str, Manifest] = {}
    manifests = sorted(by_kind.get(KIND, ()), key=lambda m: (m.source.file, m.source.line))
    for manifest in manifests:
        spec: PackageSpec = manifest.spec
        other = first.setdefault(spec.name, manifest)
        if other is not manifest:
            theirs: PackageSpec = other.spec
            same = (
                f"both as version {spec.version}"
                if theirs.version == spec.version
                else f"versions {theirs.version} and {spec.version}"
            )
            errors.append(
                manifest.error(
                    ("spec", "name"),
                    f"package {spec.name} is already published by {other.ref} ({same},"
                    f" {other.where_is(('spec', 'name'))}): their versions would collide in one"
                    " document; give each Package its own name",
                )
            )
    return errors
