"""Build a Package spec into what Distributor takes: one zip per platform/arch and manifest.json.

``PackageBuild.digest`` identifies the build without its version name (the manifest with
``version`` left out, which already names every zip by its sha256), so a live package version is
"equal" to a build when its manifest digest and attachment hashes match: then nothing is uploaded
and no version is created. S3 keys are content-addressed (``<prefix>/<sha256>.zip``), so an upload
is needed only for bytes S3 does not hold yet.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.packaging.zipper import deterministic_zip

if TYPE_CHECKING:
    from controller.manifests.specs.package import PackageSpec

SCHEMA_VERSION = "2.0"
REQUIRED_SCRIPTS = ("install.ps1", "uninstall.ps1")


@dataclass(frozen=True)
class Artifact:
    """One zip: its attachment name in the package, its bytes and where it lives in S3."""

    name: str
    platform: str
    platform_version: str
    arch: str
    data: bytes
    sha256: str
    key: str


@dataclass(frozen=True)
class PackageBuild:
    package: str
    version: str
    publisher: str
    bucket: str
    prefix: str
    artifacts: tuple[Artifact, ...]

    def manifest(self, version_name: str | None = None) -> dict[str, Any]:
        packages: dict[str, Any] = {}
        for artifact in self.artifacts:
            by_version = packages.setdefault(artifact.platform, {})
            by_version.setdefault(artifact.platform_version, {})[artifact.arch] = {
                "file": artifact.name
            }
        body: dict[str, Any] = {
            "schemaVersion": SCHEMA_VERSION,
            "publisher": self.publisher,
            "packages": packages,
            "files": {a.name: {"checksums": {"sha256": a.sha256}} for a in self.artifacts},
        }
        if version_name is not None:
            body["version"] = version_name
        return body

    def manifest_json(self, version_name: str) -> str:
        """The document Content: manifest.json with ``version`` == VersionName."""
        return json.dumps(self.manifest(version_name), indent=2, sort_keys=True)

    @property
    def digest(self) -> str:
        return manifest_digest(self.manifest())

    @property
    def hashes(self) -> dict[str, str]:
        return {a.name: a.sha256 for a in self.artifacts}

    def url(self, artifact: Artifact) -> str:
        return f"s3://{self.bucket}/{artifact.key}"


def manifest_digest(manifest: dict[str, Any]) -> str:
    """sha256 of a manifest without its ``version`` (canonical JSON)."""
    body = {k: v for k, v in manifest.items() if k != "version"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def object_key(prefix: str, sha256: str) -> str:
    return f"{prefix}/{sha256}.zip" if prefix else f"{sha256}.zip"


def build_package(spec: PackageSpec, base: Path) -> PackageBuild:
    """Read the spec's files (relative to ``base``, the manifest's directory) and build the zips."""
    artifacts: list[Artifact] = []
    for entry in spec.platforms:
        contents = [(Path(path).name, (base / path).read_bytes()) for path in entry.files]
        data = deterministic_zip(contents)
        digest = hashlib.sha256(data).hexdigest()
        artifacts.append(
            Artifact(
                name=f"{spec.name}-{entry.platform}-{entry.platform_version}-{entry.arch}.zip",
                platform=entry.platform,
                platform_version=entry.platform_version,
                arch=entry.arch,
                data=data,
                sha256=digest,
                key=object_key(spec.artifacts.prefix, digest),
            )
        )
    return PackageBuild(
        package=spec.name,
        version=spec.version,
        publisher=spec.publisher,
        bucket=spec.artifacts.bucket,
        prefix=spec.artifacts.prefix,
        artifacts=tuple(sorted(artifacts, key=lambda a: a.name)),
    )
