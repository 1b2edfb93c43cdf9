"""Packages at scale: Distributor's size quotas at validate, bounded memory, the build cache.

Hole 6 of issue 9: a 200 MB MSI took 670 MB of RSS because files were read whole and zipped in
memory, and every pass rebuilt every package. Sizes here come from sparse files, so the tests
cost disk metadata, not disk space.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from controller.cli import main
from controller.manifests import InvalidDesiredState, load_desired_state
from controller.manifests.specs.package import (
    MAX_ATTACHMENT_BYTES,
    MAX_FILE_BYTES,
    MAX_PACKAGE_FILES,
)
from controller.observability.metrics import Metrics
from controller.packaging import BuildCache, PackageBuild
from controller.packaging.build import zip_key
from controller.service.loop import DesiredStateTracker, Refresh
from controller.service.source import DirectorySource
from tests.packages.helpers import minimal_package, package_dir
from tests.runtime.test_loop import revision_info

GIB = 1024**3


def sparse(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
    return path


def one_package(root: Path, files: list[str]) -> Path:
    return minimal_package(root / "pkg", files, name="big")


def built(directory: Path, cache: BuildCache) -> PackageBuild:
    [manifest] = load_desired_state(directory, cache=cache).of_kind("Package")
    build: PackageBuild = manifest.built
    return build


# -- quotas ------------------------------------------------------------------------------------


def test_a_file_over_the_attachment_quota_is_refused_by_validate(tmp_path, capsys):
    directory = one_package(tmp_path, ["app.msi"])
    sparse(directory / "app.msi", MAX_FILE_BYTES + 1)
    assert main(["validate", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    yaml_file = directory / "package.yaml"
    assert f"{yaml_file}:11: Package/big: spec.platforms[0].files[2]: pkg/app.msi is" in err
    assert f"at most {MAX_FILE_BYTES:,} bytes per attachment" in err


def test_files_that_cannot_fit_one_zip_are_refused_at_the_list(tmp_path):
    directory = one_package(tmp_path, ["a.msi", "b.msi"])
    sparse(directory / "a.msi", 600_000_000)
    sparse(directory / "b.msi", 600_000_000)
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(tmp_path, build=False)
    [error] = raised.value.errors
    assert error.field == "spec.platforms[0].files"
    assert f"at most {MAX_ATTACHMENT_BYTES:,} bytes" in error.message


def test_more_files_than_a_package_may_hold_are_refused(tmp_path):
    names = [f"f{index:04}.txt" for index in range(MAX_PACKAGE_FILES)]
    directory = one_package(tmp_path, names)
    for name in names:
        (directory / name).write_text(name)
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(tmp_path, build=False)
    [error] = raised.value.errors
    assert error.field == "spec.platforms"
    assert f"{MAX_PACKAGE_FILES + 2} files in one package" in error.message


# -- memory --------------------------------------------------------------------------------------

_MEASURE = """
import sys
import threading
from pathlib import Path
from controller.manifests import load_desired_state
from controller.packaging import BuildCache
desired = load_desired_state(sys.argv[1], cache=BuildCache(Path(sys.argv[2])))
[package] = desired.of_kind("Package")
artifact = package.built.artifacts[0]
# VmHWM belongs to this process image; getrusage's ru_maxrss would carry over the parent's peak
# across fork and exec on Linux.
status = Path("/proc/self/status").read_text()
peak_kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
print(artifact.size, artifact.sha256, peak_kib)
"""


def test_a_1_gb_sparse_file_is_hashed_and_zipped_with_bounded_memory(tmp_path):
    """Read whole, the file alone would need 1 GB; streamed, the process stays near its
    baseline (the interpreter and the controller's imports: about 60 MB)."""
    size = MAX_ATTACHMENT_BYTES - 1000  # the largest file that fits one zip with the scripts
    directory = one_package(tmp_path / "desired", ["app.msi"])
    sparse(directory / "app.msi", size)
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(tmp_path / "desired"), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    zip_size, sha256, peak_kib = done.stdout.split()
    assert int(peak_kib) * 1024 < 200 * 1024**2, f"peak RSS {int(peak_kib) // 1024} MiB"
    [stored] = (tmp_path / "cache" / "zips").glob("*.zip")
    assert stored.stat().st_size == int(zip_size)
    with zipfile.ZipFile(stored) as archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
    assert sizes["app.msi"] == size
    assert len(sha256) == 64


# -- the build cache -----------------------------------------------------------------------------


def test_an_unchanged_package_is_neither_rehashed_nor_rezipped(tmp_path):
    directory = package_dir(tmp_path / "desired", payload=os.urandom(300_000))
    cache = BuildCache(tmp_path / "cache")
    first = built(directory, cache)
    assert cache.stats.zips_built == 1
    hashed = cache.stats.bytes_hashed
    assert hashed > 300_000

    second = built(directory, BuildCache(tmp_path / "cache"))  # another process, same directory
    again = BuildCache(tmp_path / "cache")
    third = built(directory, again)
    assert (again.stats.bytes_hashed, again.stats.zips_built) == (0, 0)
    assert again.stats.zips_reused == 1
    assert first.digest == second.digest == third.digest


def test_a_touched_file_is_rehashed_but_its_zip_is_reused(tmp_path):
    directory = package_dir(tmp_path / "desired")
    built(directory, BuildCache(tmp_path / "cache"))
    os.utime(directory / "app.msi", (1_900_000_000, 1_900_000_000))
    cache = BuildCache(tmp_path / "cache")
    built(directory, cache)
    assert cache.stats.bytes_hashed == len(b"acme payload")  # only the touched file
    assert (cache.stats.zips_built, cache.stats.zips_reused) == (0, 1)


def test_a_changed_file_is_a_new_zip(tmp_path):
    directory = package_dir(tmp_path / "desired")
    before = built(directory, BuildCache(tmp_path / "cache"))
    (directory / "app.msi").write_bytes(b"acme payload, patched")
    cache = BuildCache(tmp_path / "cache")
    after = built(directory, cache)
    assert cache.stats.zips_built == 1
    assert after.artifacts[0].sha256 != before.artifacts[0].sha256
    archive = zipfile.ZipFile(io.BytesIO(after.artifacts[0].read_bytes()))
    assert archive.read("app.msi") == b"acme payload, patched"


def test_the_cache_keeps_to_its_size_evicting_the_least_recently_used(tmp_path):
    cache = BuildCache(tmp_path / "cache", max_bytes=0, min_age_seconds=0)
    builds = []
    for index in range(3):
        directory = package_dir(tmp_path / f"desired{index}", payload=os.urandom(50_000))
        builds.append(built(directory, cache))
    # Nothing fits in 0 bytes: only the zip just built is kept, for the caller about to read it.
    [kept] = (tmp_path / "cache" / "zips").glob("*.zip")
    assert kept.name == f"{zip_key(builds[2].artifacts[0].inputs)}.zip"
    # An artifact whose zip was evicted (by this or another process) is rebuilt from its files.
    data = builds[0].artifacts[0].read_bytes()
    assert (
        zipfile.ZipFile(io.BytesIO(data)).read("app.msi")
        == (tmp_path / "desired0" / "acme" / "app.msi").read_bytes()
    )


def test_recently_used_zips_survive_a_trim_even_over_the_bound(tmp_path):
    now = [1_000_000.0]
    cache = BuildCache(tmp_path / "cache", max_bytes=0, min_age_seconds=3600, clock=lambda: now[0])
    directory = package_dir(tmp_path / "desired", payload=os.urandom(50_000))
    build = built(directory, cache)
    [zipped] = (tmp_path / "cache" / "zips").glob("*.zip")
    os.utime(zipped, (now[0] - 60, now[0] - 60))  # used a minute ago
    cache.trim()
    assert zipped.exists()
    os.utime(zipped, (now[0] - 7200, now[0] - 7200))  # two hours ago
    cache.trim()
    assert not zipped.exists()
    assert build.artifacts[0].read_bytes()[:2] == b"PK"  # rebuilt on demand


def test_an_artifact_refuses_to_rebuild_from_changed_sources(tmp_path):
    cache = BuildCache(tmp_path / "cache", max_bytes=0, min_age_seconds=0)
    directory = package_dir(tmp_path / "desired")
    build = built(directory, cache)
    for cached in (tmp_path / "cache" / "zips").iterdir():
        cached.unlink()  # evicted: the next upload must rebuild it from the files
    (directory / "app.msi").write_bytes(b"something else")
    with pytest.raises(ValueError, match="changed"):
        build.artifacts[0].read_bytes()


# -- the revision digest -------------------------------------------------------------------------


def test_changing_an_installer_changes_the_revision_id(tmp_path):
    """Issue 17: the digest covered only YAML, so a new installer kept the revision ID (and
    ``fleet_desired_state_info``) of the old one."""
    directory = package_dir(tmp_path / "desired")
    metrics = Metrics()
    tracker = DesiredStateTracker(DirectorySource(tmp_path / "desired"), metrics)
    assert tracker.refresh() is Refresh.NEW
    first = revision_info(metrics)
    assert tracker.refresh() is Refresh.SAME
    (directory / "app.msi").write_bytes(b"acme payload 2")
    assert tracker.refresh() is Refresh.NEW
    second = revision_info(metrics)
    assert second.keys() != first.keys()
    (directory / "app.msi").write_bytes(b"acme payload")
    assert tracker.refresh() is Refresh.NEW
    assert revision_info(metrics) == first  # content, not time


def test_two_builders_sharing_one_cache_agree(tmp_path):
    """Two processes (here: threads with caches of their own over one directory) building the
    same package at once both get the same complete zip; renames make the last writer win."""
    directory = package_dir(tmp_path / "desired", payload=os.urandom(2_000_000))
    results: list[PackageBuild] = []
    barrier = threading.Barrier(2)

    def build() -> None:
        barrier.wait()
        results.append(built(directory, BuildCache(tmp_path / "cache")))

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    [first, second] = results
    assert first.artifacts[0].sha256 == second.artifacts[0].sha256
    [stored] = (tmp_path / "cache" / "zips").glob("*.zip")
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == first.artifacts[0].sha256
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []
