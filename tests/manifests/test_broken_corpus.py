"""Every file under broken/ has exactly one problem; the loader must locate it exactly.

Each case is a directory (some problems need two files). For each: the one error's file, line,
field path and owner, and message fragments that say what is allowed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from controller.manifests import InvalidDesiredState, load_desired_state

BROKEN = Path(__file__).parent / "broken"


@dataclass(frozen=True)
class Case:
    name: str
    file: str
    line: int | None
    field: str | None
    owner: str | None  # "Kind/name" when the document got that far
    says: tuple[str, ...]


KEY_129 = "K" * 129

CASES = [
    Case("bad-api-version", "fleet.yaml", 2, "apiVersion", "Activation/corp",
         ("must be fleet-controller/v1alpha1", "'fleet-controller/v1'")),
    Case("unknown-kind", "fleet.yaml", 3, "kind", "Activaton/corp",
         ("unknown kind 'Activaton'", "did you mean Activation", "known kinds are:", "TagSync")),
    Case("bad-name", "fleet.yaml", 5, "metadata.name", "Activation/Corp_Laptops",
         ("'Corp_Laptops' is not a valid name", "lowercase letters, digits and '-'")),
    Case("duplicate-name-across-files", "b.yaml", 5, "metadata.name", "Activation/corp",
         ("Activation/corp is already defined at {dir}/a.yaml:4", "unique per kind")),
    Case("valid-for-45d", "fleet.yaml", 8, "spec.validFor", "Activation/corp",
         ("45d is longer than the 30 days AWS allows", "1h to 30d")),
    Case("registration-limit-1001", "fleet.yaml", 8, "spec.registrationLimit", "Activation/corp",
         ("1001", "1 to 1000 registrations")),
    Case("renew-before-not-shorter", "fleet.yaml", 9, "spec.renewBefore", "Activation/corp",
         ("must be shorter than validFor (1d)",)),
    Case("aws-tag-key", "fleet.yaml", 10, "spec.tags.aws:owner", "Activation/corp",
         ("'aws:owner'", "'aws:'", "reserves")),
    Case("too-many-tags", "fleet.yaml", 10, "spec.tags", "Activation/corp",
         ("51 tags", "at most 45", "AWS allows 50")),
    Case("tag-key-129-chars", "fleet.yaml", 9, f"spec.staticTags.{KEY_129}", "TagSync/finance",
         ("129 characters", "1 to 128")),
    Case("misspelt-field", "fleet.yaml", 8, "spec.descripton", "Activation/corp",
         ("unknown field 'descripton'", "did you mean 'description'", "allowed fields are:",
          "iamRole", "validFor")),
    Case("wrong-type", "fleet.yaml", 8, "spec.registrationLimit", "Activation/corp",
         ("expected a whole number", "the string '500'", "remove the quotes")),
    Case("duplicate-yaml-key", "fleet.yaml", 10, "spec.iamRole", "Activation/corp",
         ("duplicate key 'iamRole'", "first at line 7", "only once")),
    Case("non-mapping-document", "fleet.yaml", 11, None, None,
         ("must be a mapping with apiVersion, kind, metadata and spec", "a list")),
    Case("binary-file", "logo.yaml", 1, None, None, ("not UTF-8", "must be UTF-8")),
    Case("not-utf8", "fleet.yaml", 8, None, None, ("not UTF-8", "byte 0xe9")),
    Case("alias-bomb", "fleet.yaml", 16, None, None,
         ("aliases expand to more than 10000 nodes",)),
    Case("over-deep-nesting", "fleet.yaml", 10, None, None, ("deeper than 32 levels",)),
    Case("recursive-alias", "fleet.yaml", 7, None, None, ("recursive",)),
    Case("tab-indentation", "fleet.yaml", 7, None, None,
         ("tabs are not allowed for indentation", "use spaces")),
    Case("unsupported-yaml-tag", "fleet.yaml", 7, None, None,
         ("unsupported YAML tag '!Ref'", "only plain mappings, lists and scalars")),
    Case("two-activations-one-parameter", "fleet.yaml", 18, "spec.publish.parameterName",
         "Activation/lab",
         ("/fleet/activations/current is already the publish target of Activation/corp"
          " ({dir}/fleet.yaml:9)", "its own parameter")),
    Case("tagsync-colliding-keys", "standard.yaml", 10, "spec.staticTags.Compliance",
         "TagSync/standard",
         ("'Compliance' is also written by TagSync/finance ({dir}/finance.yaml:2)",
          "make directoryIds or bundleIds disjoint")),
    Case("rename-target-collision", "fleet.yaml", 11, "spec.copyTags.rename.Division",
         "TagSync/finance",
         ("'Department' is also produced by spec.copyTags.rename.Dept", "exactly one source")),
    Case("rename-source-not-included", "fleet.yaml", 10, "spec.copyTags.rename.Team",
         "TagSync/engineering",
         ("'Team' is not matched by any copyTags.include pattern", "'CostCenter', 'App-*'")),
    Case("static-key-equals-attribute-key", "fleet.yaml", 8, "spec.attributes.userName",
         "TagSync/finance", ("'Owner' is also produced by spec.staticTags.Owner",)),
    Case("controller-tag-prefix", "fleet.yaml", 8, "spec.attributes.userName", "TagSync/finance",
         ("'fleet-controller/user'", "reserved for the controller")),
    Case("bad-workspace-state", "fleet.yaml", 10, "spec.workspaces.states[1]", "TagSync/finance",
         ("must be one of", "'AVAILABLE'", "'STOPPED'", "got the string 'RUNNING'")),
    Case("missing-required-field", "fleet.yaml", 6, "spec.publish", "Activation/corp",
         ("is required",)),
    Case("tag-value-not-string", "fleet.yaml", 8, "spec.staticTags.CostCenter", "TagSync/finance",
         ("expected a string, got the integer 1234", "quote the value")),
    Case("bad-duration", "fleet.yaml", 8, "spec.gracePeriod", "Activation/corp",
         ("'2 hours' is not a duration such as 30d, 12h, 90m, 45s or 1d12h",)),
    Case("iam-role-arn", "fleet.yaml", 7, "spec.iamRole", "Activation/corp",
         ("name", "not its ARN")),
    Case("reserved-parameter-name", "fleet.yaml", 9, "spec.publish.parameterName",
         "Activation/corp", ("cannot begin with 'aws' or 'ssm'",)),
    Case("enrollment-valid-for-2d", "fleet.yaml", 8, "spec.validFor", "Enrollment/corp",
         ("2d is longer than 1d, the maximum for validFor",)),
    Case("enrollment-no-directories", "fleet.yaml", 9, "spec.workspaces.directoryIds",
         "Enrollment/corp", ("name at least one directory",)),
    Case("enrollment-directory-twice", "b.yaml", 9, "spec.workspaces.directoryIds[1]",
         "Enrollment/lab",
         ("d-1234567890 is already enrolled by Enrollment/office ({dir}/a.yaml:8)",
          "one Enrollment only")),
]  # fmt: skip


def test_corpus_and_table_match() -> None:
    on_disk = {p.name for p in BROKEN.iterdir() if p.is_dir()}
    assert on_disk == {case.name for case in CASES}
    assert len(on_disk) >= 20


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_broken_file_is_located(case: Case) -> None:
    directory = BROKEN / case.name
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(directory)
    errors = raised.value.errors
    assert len(errors) == 1, str(raised.value)
    error = errors[0]
    assert error.file == str(directory / case.file)
    assert error.line == case.line, str(error)
    assert error.field == case.field, str(error)
    owner = f"{error.kind}/{error.name}" if error.kind else None
    assert owner == case.owner, str(error)
    for fragment in case.says:
        assert fragment.format(dir=directory) in error.message, str(error)
    # The rendered line a reviewer sees carries all of it.
    rendered = str(raised.value)
    location = f"{directory / case.file}:{case.line}" if case.line else str(directory / case.file)
    assert f"  {location}: " in rendered
    if case.field:
        assert f": {case.field}: " in rendered
