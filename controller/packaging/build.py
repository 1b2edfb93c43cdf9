"""Build a Package spec into what Distributor takes: one zip per platform/arch and manifest.json.

Builds happen when a revision loads (the spec's ``build`` hook), from files the loader already
checked and hashed, through the build cache: the zips live on disk and an artifact is a path, a
size and a sha256, never the bytes in memory. The kind only reads the result.

``PackageBuild.digest`` identifies the build without its version name (the manifest with
``version`` left out, which already names every zip by its sha256), so a live package version is
"equal" to a build when its manifest digest and attachment hashes match: then nothing is uploaded
and no version is created. S3 keys are content-addressed (``<prefix>/<sha256>.zip``), so an upload
is needed only for bytes S3 does not hold yet.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from controller.containment import Refused
from controller.packaging.cache import CHUNK_BYTES, BuildCache, CachedZip, open_no_follow
from controller.packaging.zipper import ZIP_FORMAT, ZipEntry, write_deterministic_zip

if TYPE_CHECKING:
    from controller.manifests.specs.package import PackageSpec

SCHEMA_VERSION = "2.0"
REQUIRED_SCRIPTS = ("install.ps1", "uninstall.ps1")


@dataclass(frozen=True)
class ZipInput:
    """One file going into a zip: its name there, where it is and what it must contain."""

    name: str
    source: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class Artifact:
    """One zip: its attachment name in the package, where it is cached and where it goes in S3."""

    name: str
    platform: str
    platform_version: str
    arch: str
    sha256: str
    size: int
    key: str
    inputs: tuple[ZipInput, ...] = field(repr=False)
    cache: BuildCache = field(repr=False, compare=False)

    @contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """The zip's bytes as a stream (for an upload). Rebuilt from its sources when another
        process evicted it from the cache; refused when they no longer hold the same content."""
        for _ in range(3):  # another process may evict it between the build and the open
            built = build_zip(self.cache, self.inputs)
            if built.sha256 != self.sha256:
                raise Refused(f"{self.name}: the source files changed since the revision loaded")
            try:
                handle = built.path.open("rb")
            except FileNotFoundError:
                continue
            with handle:
                yield handle
            return
        raise Refused(f"{self.name}: the build cache keeps losing this zip (is it too small?)")

    def read_bytes(self) -> bytes:
        """The whole zip (small packages and tests only)."""
        with self.open() as handle:
            return handle.read()


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


def zip_key(inputs: Sequence[ZipInput]) -> str:
    """The cache key of a zip: its format and each entry's name and content digest."""
    listed = sorted((i.name, i.sha256, i.size) for i in inputs)
    text = json.dumps([ZIP_FORMAT, listed], separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def build_zip(cache: BuildCache, inputs: Sequence[ZipInput]) -> CachedZip:
    """The cached zip of ``inputs``, streamed from the sources (each checked against its sha256
    as it is read, so the zip holds exactly the content the revision digest covers)."""
    entries = [_entry(source) for source in inputs]
    return cache.zip(zip_key(inputs), lambda out: write_deterministic_zip(entries, out))


def _entry(source: ZipInput) -> ZipEntry:
    return ZipEntry(source.name, source.size, lambda: _VerifiedReader(source))


def build_package(
    spec: PackageSpec, platform_inputs: Sequence[Sequence[ZipInput]], cache: BuildCache
) -> PackageBuild:
    """Build (or find in the cache) one zip per entry of ``spec.platforms``; ``platform_inputs``
    lists, per platform in order, the checked and hashed files that go into its zip."""
    artifacts: list[Artifact] = []
    for entry, inputs in zip(spec.platforms, platform_inputs, strict=True):
        built = build_zip(cache, inputs)
        artifacts.append(
            Artifact(
                name=spec.attachment_name(entry),
                platform=entry.platform,
                platform_version=entry.platform_version,
                arch=entry.arch,
                sha256=built.sha256,
                size=built.size,
                key=object_key(spec.artifacts.prefix, built.sha256),
                inputs=tuple(inputs),
                cache=cache,
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


class _VerifiedReader:
    """Reads a source file for zipping and refuses it at the end if its content is not the
    content that was hashed when the revision loaded."""

    def __init__(self, source: ZipInput) -> None:
        self._source = source
        try:
            self._handle = os.fdopen(open_no_follow(source.source), "rb")
        except OSError as error:
            raise Refused(f"{source.name} cannot be read ({error.strerror})") from None
        self._digest = hashlib.sha256()
        self._size = 0

    def read(self, size: int = CHUNK_BYTES) -> bytes:
        chunk = self._handle.read(size)
        self._digest.update(chunk)
        self._size += len(chunk)
        if not chunk and (
            self._size != self._source.size or self._digest.hexdigest() != self._source.sha256
        ):
            raise Refused(f"{self._source.name} changed while its package was being built")
        return chunk

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> _VerifiedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
