"""Loading a whole desired-state directory: the happy path, all errors at once, and edges."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from controller.manifests import (
    ActivationSpec,
    InvalidDesiredState,
    TagSyncSpec,
    load_desired_state,
)
from controller.manifests.source import MAX_FILE_BYTES

HERE = Path(__file__).parent
VALID = HERE / "valid"
MULTI = HERE / "multi"
EXAMPLE = HERE.parent.parent / "desired-state"


def test_valid_directory_loads_every_kind_with_defaults() -> None:
    state = load_desired_state(VALID)

    assert state.files == 2  # fleet.yaml, tagsync/lines.yml; .drafts/ and notes.txt skipped
    assert [m.name for m in state.of_kind("Activation")] == ["corp", "lab"]
    assert [m.name for m in state.of_kind("TagSync")] == ["defaults", "engineering", "finance"]
    assert state.of_kind("Package") == []

    lab = state.get("Activation", "lab")
    assert lab is not None
    spec = lab.spec_as(ActivationSpec)
    assert spec.registration_limit == 1
    assert spec.valid_for == timedelta(hours=24)
    assert spec.renew_before == timedelta(hours=6)  # a quarter of validFor
    assert spec.rotate_at_registration_percent == 90
    assert spec.rotate_at_registrations == 1
    assert spec.grace_period == timedelta(hours=1)
    assert spec.tags == {}
    assert spec.description is None and spec.default_instance_name is None
    assert spec.publish.kms_key_id is None

    corp = state.get("Activation", "corp")
    assert corp is not None and corp.labels == {"team": "euc"}
    full = corp.spec_as(ActivationSpec)
    assert full.iam_role == "service-role/SSMServiceRole"
    assert full.valid_for == timedelta(days=7)
    assert full.renew_before == timedelta(days=1, hours=12)
    assert full.rotate_at_registrations == 400
    assert full.grace_period == timedelta(minutes=30)
    assert full.tags == {"Fleet": "corp", "CostCenter": ""}
    assert full.publish.kms_key_id == "alias/fleet-controller"
    # Where it came from: the document after the empty one, and a line per field.
    assert corp.source.file == str(VALID / "fleet.yaml")
    assert corp.source.line == 12
    assert corp.source.line_of(("spec", "registrationLimit")) == 20
    assert corp.source.line_of(("spec", "publish", "kmsKeyId")) == 32

    defaults = state.get("TagSync", "defaults")
    assert defaults is not None
    sync = defaults.spec_as(TagSyncSpec)
    assert sync.workspaces.states == ["AVAILABLE", "STOPPED"]
    assert sync.workspaces.directory_ids == [] and sync.workspaces.bundle_ids == []
    assert sync.match.order == ["computerName", "ipAddress"]
    assert sync.static_tags == {} and sync.attribute_keys() == {}
    assert defaults.source.file == str(VALID / "tagsync" / "lines.yml")

    finance = state.get("TagSync", "finance")
    assert finance is not None
    assert finance.spec.attribute_keys() == {
        "userName": "workspace:user",
        "computerName": "workspace:computer-name",
    }
    with pytest.raises(TypeError):
        finance.spec_as(ActivationSpec)


def test_digest_is_stable_and_covers_names_and_bytes(tmp_path: Path) -> None:
    first = load_desired_state(VALID).digest
    assert load_desired_state(VALID).digest == first
    assert len(first) == 64

    copy = tmp_path / "copy"
    shutil.copytree(VALID, copy)
    assert load_desired_state(copy).digest == first  # only relative paths count
    (copy / ".drafts" / "more.yaml").write_text("{{{ hidden, so ignored")
    assert load_desired_state(copy).digest == first

    lines = copy / "tagsync" / "lines.yml"
    lines.write_text(lines.read_text().replace("finance\n", "finance-2\n"))
    changed = load_desired_state(copy).digest
    assert changed != first

    lines.rename(copy / "tagsync" / "renamed.yml")
    assert load_desired_state(copy).digest not in (first, changed)


def test_all_errors_of_a_revision_are_reported_at_once() -> None:
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(MULTI)
    fleet, later = str(MULTI / "fleet.yaml"), str(MULTI / "later.yaml")
    found = [(e.file, e.line, e.field) for e in raised.value.errors]
    assert found == [
        (fleet, 8, "spec.registrationLimit"),
        (fleet, 9, "spec.validFor"),
        (fleet, 11, "spec.tags.aws:owner"),
        (fleet, 18, "metadata.name"),
        (fleet, 22, "spec.staticTag"),
        (fleet, 26, "kind"),
        (fleet, 34, "metadata.name"),  # duplicate of an invalid document is still a duplicate
        (later, 6, None),  # YAML syntax error in another file
    ]
    text = str(raised.value)
    assert text.startswith("desired state is invalid: 8 errors\n")
    assert f"{fleet}:9: Activation/corp: spec.validFor: 45d is longer than the 30 days" in text
    assert "did you mean 'staticTags'?" in text
    assert f"is already defined at {fleet}:5" in text


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(tmp_path / "nowhere")
    (error,) = raised.value.errors
    assert error.file == str(tmp_path / "nowhere") and error.line is None
    assert "does not exist" in error.message


def test_a_file_is_not_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("{}")
    with pytest.raises(InvalidDesiredState, match="is not a directory"):
        load_desired_state(path)


def test_directory_without_manifests_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("no yaml here")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "fleet.yaml").write_text("kind: Activation")
    with pytest.raises(InvalidDesiredState, match=r"holds no \*\.yaml or \*\.yml files"):
        load_desired_state(tmp_path)


def test_only_empty_documents_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("# nothing yet\n---\n---\n")
    (tmp_path / "blank.yml").write_text("")
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(tmp_path)
    (error,) = raised.value.errors
    assert "holds no manifests" in error.message


def test_oversized_file_is_refused_without_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(tmp_path)
    (error,) = raised.value.errors
    assert error.file == str(big) and error.line is None
    assert f"larger than {MAX_FILE_BYTES} bytes" in error.message


def test_document_that_is_not_a_manifest_gets_one_error(tmp_path: Path) -> None:
    (tmp_path / "values.yaml").write_text("replicas: 3\nimage: nginx\n")
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(tmp_path)
    (error,) = raised.value.errors
    assert error.line == 1
    assert "not a manifest" in error.message and "'replicas', 'image'" in error.message


def test_the_example_desired_state_is_valid() -> None:
    state = load_desired_state(EXAMPLE)
    assert state.files >= 1
    assert state.of_kind("Activation")
    assert state.of_kind("TagSync")
