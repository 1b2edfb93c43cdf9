"""Bad package and association input: one located error each, and not a single AWS call.

Each case under broken/ has exactly one problem. The loader must name its file, line and field
and say what is allowed; ``fleet-controller apply`` against the sandbox must stop before AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.cli import main
from controller.manifests import InvalidDesiredState, load_desired_state

BROKEN = Path(__file__).parent / "broken"


@dataclass(frozen=True)
class Case:
    name: str
    file: str
    line: int
    field: str
    owner: str
    says: tuple[str, ...]


CASES = [
    Case("missing-file", "package.yaml", 14, "spec.platforms[0].files[2]", "Package/acme",
         ("payload/app.msi does not exist", "relative to the manifest file")),
    Case("zip-without-install", "package.yaml", 14, "spec.platforms[0].files", "Package/acme",
         ("the zip has no install.ps1", "install.ps1 and uninstall.ps1")),
    Case("colliding-versions", "b.yaml", 7, "spec.name", "Package/acme-copy",
         ("package Acme is already published by Package/acme", "both as version 1.0.0",
          "{dir}/a.yaml:7", "would collide")),
    Case("unknown-hive", "package.yaml", 20, "spec.detection.allOf[1].hive", "Package/acme",
         ("hive must be 'HKLM'", "got 'HKXX'")),
    Case("unknown-operator", "package.yaml", 20, "spec.detection.anyOf[0].operator",
         "Package/acme", ("'eq'", "'le'", "got 'gte'")),
    Case("keep-versions-26", "package.yaml", 11, "spec.keepVersions", "Package/acme",
         ("26 is outside 1 to 25", "at most 25 versions")),
    Case("unknown-package", "association.yaml", 8, "spec.package.name",
         "Association/install-acme",
         ("unknown package 'acme-viewr'", "Packages in this desired state: acme")),
    Case("arguments-too-large", "association.yaml", 9, "spec.package.additionalArguments",
         "Association/install-acme", ("4118 characters as JSON, more than 4096",
                                      "SSM's 64 KB document quota")),
    Case("stagger-beyond-window", "associations.yaml", 15, "spec.schedule.stagger.window",
         "Association/install-a",
         ("apps-daily has 4 members", "holds 3 slot(s) every 5m (08:00 to 08:10)",
          "would need 08:15, beyond the window")),
]  # fmt: skip


def test_corpus_and_table_match() -> None:
    assert {p.name for p in BROKEN.iterdir() if p.is_dir()} == {case.name for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_broken_input_is_located(case: Case) -> None:
    directory = BROKEN / case.name
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(directory)
    assert len(raised.value.errors) == 1, str(raised.value)
    [error] = raised.value.errors
    assert error.file == str(directory / case.file)
    assert (error.line, error.field) == (case.line, case.field), str(error)
    assert f"{error.kind}/{error.name}" == case.owner, str(error)
    for fragment in case.says:
        assert fragment.format(dir=directory) in error.message, str(error)
    assert f"  {directory / case.file}:{case.line}: {case.owner}: {case.field}: " in str(
        raised.value
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_broken_input_makes_no_aws_call(sandbox, case: Case, capsys) -> None:
    sandbox.admin.reset_calls()
    code = main(
        [
            "apply",
            str(BROKEN / case.name),
            "--endpoint-url",
            sandbox.endpoint,
            "--region",
            sandbox.region,
            "--log-format",
            "json",
        ]
    )
    assert code == 1
    assert f"{case.file}:{case.line}" in capsys.readouterr().err
    assert sandbox.admin.calls() == []
