"""The git source against real repositories: exact commits, invalid revisions, unreachable remotes."""

from __future__ import annotations

import gc
import os
import re
import tarfile
import threading
from pathlib import Path

import pytest

from controller.observability.redaction import REDACTED, redact_text
from controller.service.source import GitSource, InvalidRevision, SourceUnavailable
from controller.service.source.git import check_archive_members, display_url
from tests.packages.helpers import minimal_package_yaml
from tests.runtime.gitrepo import GitRemote, example_files, git

MISSPELT = """apiVersion: fleet-controller/v1alpha1
kind: TagSync
metadata:
  name: broken
spec:
  workspaces:
    directoryIds: [d-1234567890]
  copyTags:
    inclde: ["CostCenter"]
"""


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    repo = GitRemote(tmp_path / "repo")
    repo.commit({**example_files(), "README.md": "fleet\n"}, "initial desired state")
    return repo


@pytest.fixture
def source(remote: GitRemote, tmp_path: Path):
    followed = GitSource(remote.url, ref="main", path="desired-state", workdir=tmp_path / "clone")
    yield followed
    followed.close()


def test_fetch_returns_the_head_commit_and_its_desired_state(remote, source):
    revision = source.fetch()
    assert revision.id == git("rev-parse", "HEAD", cwd=remote.work)
    kinds = sorted(m.kind for m in revision.desired.manifests)
    assert kinds == ["Activation", "TagSync", "TagSync"]


def test_a_pushed_commit_is_the_next_revision_and_unpushed_work_is_not(remote, source):
    first = source.fetch()
    remote.commit({"desired-state/tagsync.yaml": None}, "drop the TagSyncs", push=False)
    assert source.fetch() is first  # not pushed yet: the same revision, not even re-read
    remote.push()
    second = source.fetch()
    assert second.id == git("rev-parse", "HEAD", cwd=remote.work) != first.id
    assert [m.kind for m in second.desired.manifests] == ["Activation"]


def test_the_revision_is_exactly_its_commits_tree(remote, source):
    """Later commits never change the files of the revision being enforced."""
    first = source.fetch()
    tree = first.desired.directory
    assert sorted(p.name for p in tree.iterdir()) == ["activation.yaml", "tagsync.yaml"]
    remote.commit({"desired-state/tagsync.yaml": MISSPELT}, "break it")
    with pytest.raises(InvalidRevision):
        source.fetch()
    # The last good tree is untouched and the invalid one is gone.
    assert (tree / "tagsync.yaml").read_text() == example_files()["desired-state/tagsync.yaml"]
    assert [p.name for p in source.trees.iterdir()] == [tree.name]
    assert tree.name.startswith(first.id[:12])


def test_an_old_revisions_tree_lives_while_a_pass_still_uses_it(remote, source):
    """Issue 17: a new revision validating must not delete the tree another target thread is
    still reading. A tree goes when the last user of its DesiredState lets go, not before."""
    first = source.fetch()
    in_use = first.desired  # a target thread in the middle of a pass holds this
    tree = in_use.directory
    seen: list[str] = []
    reader_may_finish = threading.Event()
    reading = threading.Event()

    def pass_on_the_old_revision() -> None:
        reading.set()
        reader_may_finish.wait(timeout=30)
        seen.append((tree / "activation.yaml").read_text())  # after the new one validated

    reader = threading.Thread(target=pass_on_the_old_revision)
    reader.start()
    reading.wait(timeout=30)
    remote.commit({"desired-state/tagsync.yaml": None}, "drop the TagSyncs")
    second = source.fetch()  # validates and becomes the source's current revision
    assert second.id != first.id
    reader_may_finish.set()
    reader.join(timeout=30)
    assert seen == [example_files()["desired-state/activation.yaml"]]

    del first, in_use  # the pass ends: nothing uses the old revision any more
    gc.collect()
    assert not tree.exists()
    assert second.desired.directory.exists()
    assert [p.name for p in source.trees.iterdir()] == [second.desired.directory.name]


def test_a_sha_loaded_again_gets_a_tree_of_its_own(remote, source):
    """A branch reset back to a commit already loaded must not reuse (and later delete) the
    directory an older DesiredState of that commit still reads."""
    first = source.fetch()
    old_head = git("rev-parse", "HEAD", cwd=remote.work)
    remote.commit({"desired-state/tagsync.yaml": None}, "drop the TagSyncs")
    source.fetch()
    git("push", "--quiet", "--force", "origin", f"{old_head}:refs/heads/main", cwd=remote.work)
    again = source.fetch()
    assert again.id == first.id
    assert again.desired.directory != first.desired.directory
    kept = first.desired.directory
    del first
    gc.collect()
    assert not kept.exists()
    assert (again.desired.directory / "activation.yaml").is_file()


def test_an_invalid_commit_names_its_sha_and_repository_paths(remote, source):
    source.fetch()
    bad = remote.commit({"desired-state/broken.yaml": MISSPELT}, "a typo")
    with pytest.raises(InvalidRevision) as raised:
        source.fetch()
    assert raised.value.revision == bad
    [error] = raised.value.errors
    assert error.file == "desired-state/broken.yaml"
    assert error.line == 9
    assert "inclde" in str(error)
    # Fetching again finds the same commit and the same verdict without exporting it again.
    with pytest.raises(InvalidRevision) as again:
        source.fetch()
    assert again.value is raised.value
    assert source.current is not None and source.current.id != bad


def test_an_error_that_names_another_file_names_it_as_in_the_repository(remote, source):
    """A duplicate's message points at the first definition: that file too is named as it is
    in the repository, never by the controller's export directory (its machine layout)."""
    source.fetch()
    example = (Path(__file__).resolve().parents[2] / "desired-state" / "tagsync.yaml").read_text()
    remote.commit({"desired-state/again.yaml": example}, "a copy")
    with pytest.raises(InvalidRevision) as raised:
        source.fetch()
    texts = [str(error) for error in raised.value.errors]
    assert texts and any("desired-state/tagsync.yaml" in text for text in texts), texts
    assert not any(str(source.workdir) in text for text in texts), texts


def test_a_fix_on_top_of_an_invalid_commit_is_loaded(remote, source):
    source.fetch()
    remote.commit({"desired-state/broken.yaml": MISSPELT}, "a typo")
    with pytest.raises(InvalidRevision):
        source.fetch()
    fixed = remote.commit({"desired-state/broken.yaml": None}, "revert the typo")
    assert source.fetch().id == fixed


def test_a_commit_without_the_directory_is_invalid(remote, source):
    source.fetch()
    gone = remote.commit({"desired-state": None}, "remove the directory")
    with pytest.raises(InvalidRevision) as raised:
        source.fetch()
    assert raised.value.revision == gone
    assert "desired-state: is not a directory in commit" in str(raised.value.errors[0])


def test_a_link_out_of_the_tree_is_refused_not_followed(remote, source):
    source.fetch()
    os.symlink("/etc/passwd", remote.work / "desired-state" / "passwd.yaml")
    remote.commit({}, "a link to a host file")
    with pytest.raises(InvalidRevision) as raised:
        source.fetch()
    assert "cannot be exported" in str(raised.value.errors[0])


def test_the_repository_root_can_be_the_desired_state(tmp_path):
    repo = GitRemote(tmp_path / "repo")
    files = {name.split("/", 1)[1]: text for name, text in example_files().items()}
    sha = repo.commit(files, "flat layout")
    flat = GitSource(repo.url, path=".", workdir=tmp_path / "clone")
    try:
        assert flat.fetch().id == sha
    finally:
        flat.close()


def test_an_unreachable_remote_is_unavailable_and_recovers(remote, source, tmp_path):
    first = source.fetch()
    moved = tmp_path / "elsewhere.git"
    remote.bare.rename(moved)
    with pytest.raises(SourceUnavailable) as raised:
        source.fetch()
    assert "git fetch" in str(raised.value)
    moved.rename(remote.bare)
    assert source.fetch() is first


def test_a_token_in_the_url_never_appears_in_errors_or_descriptions(tmp_path):
    token = "ghp_e2eTokenThatMustNotLeak0123456789"
    url = f"https://x-access-token:{token}@127.0.0.1:9/org/fleet.git"
    followed = GitSource(url, workdir=tmp_path / "clone", timeout_seconds=20)
    try:
        with pytest.raises(SourceUnavailable) as raised:
            followed.fetch()
    finally:
        followed.close()
    assert token not in str(raised.value)
    assert token not in followed.description
    assert display_url(url) == "https://***@127.0.0.1:9/org/fleet.git"
    assert redact_text(f"leaked {token}") == f"leaked {REDACTED}"


def test_a_kept_clone_directory_is_reused(remote, tmp_path):
    workdir = tmp_path / "kept"
    first = GitSource(remote.url, path="desired-state", workdir=workdir)
    sha = first.fetch().id
    first.close()
    assert (workdir / "repository.git" / "HEAD").is_file()  # --git-dir is not deleted
    second = GitSource(remote.url, path="desired-state", workdir=workdir)
    assert second.fetch().id == sha


def test_a_tag_can_be_followed(remote, tmp_path):
    git("tag", "release-1", cwd=remote.work)
    git("push", "--quiet", "origin", "refs/tags/release-1", cwd=remote.work)
    tagged = git("rev-parse", "HEAD", cwd=remote.work)
    remote.commit({"desired-state/tagsync.yaml": None}, "after the tag")
    followed = GitSource(remote.url, ref="release-1", path="desired-state", workdir=tmp_path / "t")
    try:
        assert followed.fetch().id == tagged
    finally:
        followed.close()


@pytest.mark.parametrize("path", ["/etc", "../outside", "desired-state/../../x"])
def test_paths_outside_the_repository_are_refused(path, tmp_path):
    with pytest.raises(ValueError, match="relative to the repository root"):
        GitSource("file:///nowhere", path=path, workdir=tmp_path)


def _package_commit(remote: GitRemote, entry: str) -> str:
    return remote.commit(
        {
            "desired-state/pkg/install.ps1": "Write-Output install\n",
            "desired-state/pkg/uninstall.ps1": "Write-Output uninstall\n",
            "desired-state/pkg/package.yaml": minimal_package_yaml([entry]),
        },
        f"package with {entry}",
    )


def test_a_package_file_may_not_leave_the_exported_tree(remote, source):
    """The containment root of a git source is the exported tree: not the clone beside it
    (whose config holds the URL, token included) nor another revision's tree."""
    source.fetch()
    bad = _package_commit(remote, "../../../repository.git/config")
    with pytest.raises(InvalidRevision) as raised:
        source.fetch()
    assert raised.value.revision == bad
    [error] = raised.value.errors
    assert (error.file, error.line, error.field) == (
        "desired-state/pkg/package.yaml",
        11,
        "spec.platforms[0].files[2]",
    )
    assert "leaves the desired-state directory" in error.message


@pytest.fixture(params=["data-filter", "no-data-filter"])
def extraction(request, monkeypatch):
    """Both ways a commit's tree is extracted: tarfile's "data" filter (Python >= 3.11.4), and
    the controller's own member checks where the filter is missing (Debian bookworm's 3.11.2,
    the Debian-made image base)."""
    if request.param == "no-data-filter":
        monkeypatch.delattr(tarfile, "data_filter")
    return request.param


@pytest.mark.parametrize(
    ("target", "says"),
    [("/proc/self/environ", "absolute|outside"), ("../../../../../etc/passwd", "outside")],
    ids=["absolute", "relative-out"],
)
def test_a_commit_with_a_symlink_out_of_the_tree_is_refused(
    remote, source, target, says, extraction
):
    source.fetch()
    (remote.work / "desired-state" / "pkg").mkdir(parents=True)
    (remote.work / "desired-state" / "pkg" / "env.bin").symlink_to(target)
    bad = _package_commit(remote, "env.bin")
    with pytest.raises(InvalidRevision) as raised:
        source.fetch()
    assert raised.value.revision == bad
    assert re.search(says, str(raised.value)), str(raised.value)
    assert "root:" not in str(raised.value)  # nothing of the target was read


def _member(name: str, kind: bytes = tarfile.REGTYPE, mode: int = 0o644, link: str = ""):
    member = tarfile.TarInfo(name)
    member.type, member.mode, member.linkname = kind, mode, link
    return member


@pytest.mark.parametrize(
    ("members", "says"),
    [
        ([_member("/etc/passwd")], "outside the tree"),
        ([_member("a/../../x")], "outside the tree"),
        ([_member("dev", tarfile.CHRTYPE)], "not a file"),
        ([_member("fifo", tarfile.FIFOTYPE)], "not a file"),
        ([_member("hard", tarfile.LNKTYPE, link="a")], "not a file"),
        ([_member("run.sh", mode=0o4755)], "special mode bits"),
        ([_member("l", tarfile.SYMTYPE, link="/etc")], "links outside"),
        ([_member("d/l", tarfile.SYMTYPE, link="../../etc")], "links outside"),
        (
            [_member("l", tarfile.SYMTYPE, link="inside"), _member("l/passwd")],
            "through a symlink",
        ),
    ],
    ids=[
        "absolute",
        "dot-dot",
        "device",
        "fifo",
        "hardlink",
        "setuid",
        "symlink-absolute",
        "symlink-up",
        "through-symlink",
    ],
)
def test_without_the_data_filter_the_archive_members_are_checked(members, says):
    with pytest.raises(tarfile.TarError, match=says):
        check_archive_members(members)


def test_without_the_data_filter_a_plain_tree_passes():
    check_archive_members(
        [
            _member("d", tarfile.DIRTYPE, mode=0o755),
            _member("d/a.yaml"),
            _member("d/run.ps1", mode=0o755),
            _member("d/link", tarfile.SYMTYPE, link="a.yaml"),
            _member("up", tarfile.SYMTYPE, link="d/../d/a.yaml"),
        ]
    )


def test_a_symlink_inside_the_tree_is_followed(remote, source):
    (remote.work / "desired-state" / "pkg").mkdir(parents=True)
    (remote.work / "desired-state" / "shared.bin").write_bytes(b"shared")
    (remote.work / "desired-state" / "pkg" / "env.bin").symlink_to("../shared.bin")
    _package_commit(remote, "env.bin")
    revision = source.fetch()
    [package] = revision.desired.of_kind("Package")
    assert package.built.artifacts[0].size > 0
