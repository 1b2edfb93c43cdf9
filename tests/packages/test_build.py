"""Package builds are a pure function of the files: same inputs, same bytes, same sha256."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

from controller.manifests import load_desired_state
from controller.packaging import BuildCache, PackageBuild, deterministic_zip
from controller.packaging.build import manifest_digest
from tests.packages.helpers import package_dir


def _build(directory: Path, cache: Path | None = None) -> PackageBuild:
    """Built with a cache of its own, so no build is a cache hit of an earlier one."""
    where = cache or directory.parent / f"cache-{len(list(directory.parent.iterdir()))}"
    [manifest] = load_desired_state(directory, cache=BuildCache(where)).of_kind("Package")
    build: PackageBuild = manifest.built
    return build


def test_the_same_package_built_twice_is_byte_identical(tmp_path):
    directory = package_dir(tmp_path)
    first, second = _build(directory), _build(directory)
    assert first.artifacts[0].cache.directory != second.artifacts[0].cache.directory
    assert [a.read_bytes() for a in first.artifacts] == [a.read_bytes() for a in second.artifacts]
    assert first.digest == second.digest
    assert first.manifest_json("1.0.0") == second.manifest_json("1.0.0")


def test_touching_mtimes_and_permissions_changes_nothing(tmp_path):
    directory = package_dir(tmp_path)
    before = _build(directory)
    for path in directory.iterdir():
        os.utime(path, (1_900_000_000, 1_900_000_000))
        path.chmod(0o600)
    after = _build(directory)
    assert [a.sha256 for a in after.artifacts] == [a.sha256 for a in before.artifacts]
    assert after.artifacts[0].read_bytes() == before.artifacts[0].read_bytes()


def test_a_changed_byte_changes_the_zip_its_key_and_the_digest(tmp_path):
    directory = package_dir(tmp_path)
    before = _build(directory)
    (directory / "app.msi").write_bytes(b"acme payload!")
    after = _build(directory)
    assert after.artifacts[0].sha256 != before.artifacts[0].sha256
    assert after.artifacts[0].key != before.artifacts[0].key
    assert after.digest != before.digest


def test_zip_entries_are_sorted_dated_and_permissioned_the_same_way(tmp_path):
    build = _build(package_dir(tmp_path))
    archive = zipfile.ZipFile(io.BytesIO(build.artifacts[0].read_bytes()))
    infos = archive.infolist()
    assert [i.filename for i in infos] == ["app.msi", "install.ps1", "uninstall.ps1"]
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}
    assert archive.read("app.msi") == b"acme payload"


def test_entry_order_given_does_not_matter():
    a = deterministic_zip([("b.txt", b"2"), ("a.txt", b"1")])
    b = deterministic_zip([("a.txt", b"1"), ("b.txt", b"2")])
    assert a == b


def test_manifest_json_names_every_zip_with_its_sha256_and_the_version(tmp_path):
    build = _build(package_dir(tmp_path, version="2.4.1"))
    [artifact] = build.artifacts
    manifest = json.loads(build.manifest_json("2.4.1"))
    assert manifest["schemaVersion"] == "2.0"
    assert manifest["version"] == "2.4.1"
    assert manifest["packages"] == {"windows": {"_any": {"x86_64": {"file": artifact.name}}}}
    assert manifest["files"] == {
        artifact.name: {"checksums": {"sha256": hashlib.sha256(artifact.read_bytes()).hexdigest()}}
    }
    assert artifact.key == f"distributor/{artifact.sha256}.zip"  # content-addressed
    assert manifest_digest(manifest) == build.digest  # the digest ignores the version name
