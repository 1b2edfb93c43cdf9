"""Package's diff, called with a real local build and hand-built live documents
(controller/kinds/package.py).

The cases of its docstring: a live default holding this build under the spec's version name is
equal (nothing uploaded, no version); otherwise only the zips S3 lacks are uploaded and one version
is added (suffixed when the name already holds other content) or an existing one promoted; old
versions beyond keepVersions pruned, never the default; someone else's document refused; a missing
bucket an error; an owned document no manifest declares pruned.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.contract import Action, Severity
from controller.kinds.package import (
    FOLLOWERS_STARTED_TAG,
    CreatePackage,
    DeletePackage,
    LivePackage,
    LiveVersion,
    PackageKind,
    PackageLive,
    PackageState,
    PromoteVersion,
    PruneVersions,
    PublishVersion,
    StartFollowers,
    _equal,
    _excess,
    suffixed,
)
from controller.manifests import Manifest, load_desired_state
from tests.kinds.builders import SOMEONE_ELSE, context, owned_by
from tests.packages.helpers import package_dir


@pytest.fixture(scope="module")
def acme(tmp_path_factory) -> Manifest:
    """The acme Package (version 1.0.0, keepVersions 3), built from real files."""
    root = tmp_path_factory.mktemp("desired")
    package_dir(root, keep=3)
    return load_desired_state(root).of_kind("Package")[0]


def versions(count: int, default: int, name_of=lambda n: f"0.{n}") -> list[LiveVersion]:
    return [LiveVersion(n, name_of(n), n == default) for n in range(1, count + 1)]


def live_document(
    acme: Manifest,
    *,
    owned: bool = True,
    default_name: str = "1.0.0",
    same_content: bool = True,
    live_versions: list[LiveVersion] | None = None,
    tags: dict[str, str] | None = None,
) -> LivePackage:
    """The Acme document as observe reads it: its default's manifest digest and file hashes."""
    build = acme.built
    hashes = dict(build.hashes) if same_content else {n: "0" * 64 for n in build.hashes}
    chosen = live_versions or [LiveVersion(1, default_name, True)]
    default = next(v for v in chosen if v.is_default)
    return LivePackage(
        name="Acme",
        exists=True,
        owned=owned,
        tags=(owned_by("Package", "acme") if owned else owned_by("Package", "acme", SOMEONE_ELSE))
        if tags is None
        else tags,
        default_version=default.number,
        default_version_name=default_name,
        default_digest=build.digest if same_content else "f" * 64,
        default_hashes=hashes,
        versions=chosen,
    )


def state(
    acme: Manifest,
    live: LivePackage,
    *,
    stored: frozenset[str] | None = None,
    bucket: bool = True,
    reusable: int | None = None,
) -> PackageState:
    """What observe hands diff: equal as observe decides it (owned and ``_equal``)."""
    build = acme.built
    return PackageState(
        manifest=acme.name,
        build=build,
        live=live,
        equal=live.owned and _equal(acme.spec, build, live),
        bucket_exists=bucket,
        stored_keys=frozenset() if stored is None else stored,
        reusable=reusable,
    )


def diff(acme: Manifest, package_state: PackageState, owned: dict[str, str] | None = None):
    live = PackageLive({acme.name: package_state}, owned or {"Acme": "acme"})
    return PackageKind().diff([acme], live, context(acme))


def test_a_live_default_holding_this_build_is_equal(acme):
    plan = diff(acme, state(acme, live_document(acme)))
    assert plan.operations == [] and plan.findings == []


def test_equal_needs_the_digest_the_hashes_and_the_version_name(acme):
    build, spec = acme.built, acme.spec
    equal = live_document(acme)
    assert _equal(spec, build, equal)
    for field, value in (
        ("default_digest", "f" * 64),
        ("default_hashes", {name: "0" * 64 for name in build.hashes}),
        ("default_hashes", {}),
        ("default_version_name", "0.9.0"),
    ):
        other = live_document(acme)
        setattr(other, field, value)
        assert not _equal(spec, build, other), field
    suffixed_name = live_document(acme, default_name=suffixed("1.0.0", build.digest))
    assert _equal(spec, build, suffixed_name)


def test_a_missing_document_is_created_with_every_zip_s3_lacks(acme):
    missing = LivePackage("Acme", exists=False)
    stored = frozenset({acme.built.artifacts[0].key})
    [operation] = diff(acme, state(acme, missing, stored=frozenset()), owned={}).operations
    assert (operation.action, operation.resource) == (Action.CREATE, "Acme")
    create = operation.payload
    assert isinstance(create, CreatePackage)
    assert create.version_name == "1.0.0" and create.tags == owned_by("Package", "acme")
    assert [a.key for a in create.uploads] == [a.key for a in acme.built.artifacts]
    [again] = diff(acme, state(acme, missing, stored=stored), owned={}).operations
    assert again.payload.uploads == ()  # content-addressed: already there, not sent again


def test_changed_content_adds_one_version_and_uploads_only_what_is_missing(acme):
    older = live_document(acme, default_name="0.9.0", same_content=False)
    stored = frozenset({acme.built.artifacts[0].key})
    [operation] = diff(acme, state(acme, older, stored=stored)).operations
    publish = operation.payload
    assert isinstance(publish, PublishVersion)
    assert (operation.action, publish.version_name, publish.keep) == (Action.UPDATE, "1.0.0", 3)
    assert publish.uploads == ()
    assert operation.changes[0].field == "version"
    assert [c.field for c in operation.changes[1:]] == [
        f"files.{a.name}" for a in acme.built.artifacts
    ]


def test_changed_content_under_a_version_name_already_taken_is_suffixed_with_a_warning(acme):
    taken = live_document(acme, default_name="1.0.0", same_content=False)
    plan = diff(acme, state(acme, taken))
    [operation] = plan.operations
    assert operation.payload.version_name == suffixed("1.0.0", acme.built.digest)
    [warning] = plan.findings
    assert warning.severity is Severity.WARNING and "bump spec.version" in warning.message


def test_a_version_already_holding_this_build_is_promoted_not_sent_again(acme):
    listed = [LiveVersion(1, "0.9.0", True), LiveVersion(2, "1.0.0", False)]
    stopped = live_document(acme, default_name="0.9.0", same_content=False, live_versions=listed)
    [operation] = diff(acme, state(acme, stopped, reusable=2)).operations
    assert operation.payload == PromoteVersion(
        document="Acme", number=2, versions=tuple(listed), keep=3
    )


def test_a_missing_bucket_is_an_error_and_nothing_is_planned(acme):
    plan = diff(acme, state(acme, live_document(acme, same_content=False), bucket=False))
    assert plan.operations == []
    [error] = plan.findings
    assert error.severity is Severity.ERROR and "does not exist" in error.message


@pytest.mark.parametrize("same_content", [True, False])
def test_someone_elses_document_of_that_name_is_refused(acme, same_content):
    theirs = live_document(acme, owned=False, same_content=same_content)
    plan = diff(acme, state(acme, theirs), owned={})
    assert plan.operations == []
    [refusal] = plan.findings
    assert refusal.severity is Severity.ERROR
    assert "document Acme exists and is not a Package owned by this controller" in refusal.message


def test_versions_beyond_keep_versions_are_pruned_oldest_first_never_the_default(acme):
    listed = versions(5, default=1, name_of=lambda n: "1.0.0" if n == 1 else f"0.{n}")
    live = live_document(acme, live_versions=listed)
    [operation] = diff(acme, state(acme, live)).operations
    assert operation.payload == PruneVersions(document="Acme", versions=tuple(listed), keep=3)
    assert (operation.changes[0].before, operation.changes[0].after) == (5, 3)
    assert [v.number for v in _excess(listed, 3)] == [2, 3]  # version 1 is the default
    assert _excess(listed, 5) == []


def test_followers_not_started_for_the_default_are_started(acme):
    pending = live_document(acme, tags={**owned_by("Package", "acme"), FOLLOWERS_STARTED_TAG: "0"})
    [operation] = diff(acme, state(acme, pending)).operations
    assert operation.payload == StartFollowers(document="Acme", default_version=1)
    done = live_document(acme, tags={**owned_by("Package", "acme"), FOLLOWERS_STARTED_TAG: "1"})
    assert diff(acme, state(acme, done)).operations == []


def test_an_owned_package_document_no_manifest_declares_is_pruned(acme):
    plan = diff(acme, state(acme, live_document(acme)), owned={"Acme": "acme", "Old": "old"})
    [operation] = plan.operations
    assert (operation.action, operation.resource, operation.name, operation.prune) == (
        Action.DELETE,
        "Old",
        "old",
        True,
    )
    assert operation.payload == DeletePackage(document="Old")


def test_the_build_is_deterministic_for_the_equality_to_mean_anything(tmp_path: Path, acme):
    package_dir(tmp_path, keep=3)
    again = load_desired_state(tmp_path).of_kind("Package")[0].built
    assert again.digest == acme.built.digest and again.hashes == acme.built.hashes
    package_dir(tmp_path / "other", keep=3, payload=b"different payload")
    other = load_desired_state(tmp_path / "other").of_kind("Package")[0].built
    assert other.digest != acme.built.digest and other.hashes != acme.built.hashes
