"""``validate`` against the specification's case table: it refuses exactly the rules that cannot
be evaluated truthfully, with the file, line and field, and accepts every other case's rule."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from controller.cli import main
from controller.detection import RuleError, parse_rule, rules_from_json, rules_to_json
from controller.manifests import InvalidDesiredState, load_desired_state
from tests.detection.spec import Case, cases, cases_where

RULE_LINE = 14  # where package_with() writes the rule


def package_with(root: Path, rule: object) -> Path:
    directory = root / "acme"
    directory.mkdir(parents=True)
    for name in ("install.ps1", "uninstall.ps1"):
        (directory / name).write_text("exit 0\n", encoding="utf-8")
    (directory / "package.yaml").write_text(
        textwrap.dedent(
            """\
            apiVersion: fleet-controller/v1alpha1
            kind: Package
            metadata:
              name: acme
            spec:
              name: Acme
              version: 1.0.0
              publisher: Acme Corp
              artifacts: {bucket: packages-test}
              platforms:
                - arch: x86_64
                  files: [install.ps1, uninstall.ps1]
              detection:
            """
        )
        + f"    {json.dumps(rule, ensure_ascii=False)}\n",
        encoding="utf-8",
    )
    return root


@pytest.mark.parametrize("case", cases_where("invalid"), ids=lambda case: case.name)
def test_the_model_refuses_each_rule_the_specification_refuses(case: Case):
    with pytest.raises(RuleError) as raised:
        parse_rule(case.rule)
    assert case.refusal and case.refusal in str(raised.value), str(raised.value)


@pytest.mark.parametrize("case", cases_where("invalid"), ids=lambda case: case.name)
def test_validate_refuses_each_with_file_line_and_field(case: Case, tmp_path: Path, capsys):
    root = package_with(tmp_path, case.rule)
    with pytest.raises(InvalidDesiredState) as raised:
        load_desired_state(root)
    errors = raised.value.errors
    assert errors and all(e.file == str(root / "acme" / "package.yaml") for e in errors)
    assert all(e.field.startswith("spec.detection") for e in errors), [e.field for e in errors]
    assert any(case.refusal and case.refusal in f"{e.field}: {e.message}" for e in errors)
    for error in errors:  # the rule's line; the `detection:` line for the rule as a whole
        present = _names_something_written(case.rule, error.field)
        assert error.line == (RULE_LINE if present else RULE_LINE - 1), str(error)
    assert main(["validate", str(root)]) == 1
    err = capsys.readouterr().err
    assert f"package.yaml:{errors[0].line}: Package/acme: {errors[0].field}: " in err, err


@pytest.mark.parametrize(
    "case", [c for c in cases() if c.verdict != "invalid"], ids=lambda case: case.name
)
def test_every_other_rule_is_accepted_and_travels_unchanged(case: Case):
    rule = parse_rule(case.rule)
    assert rules_from_json(rules_to_json(rule)) == rule
    sent = json.loads(rules_to_json(rule))
    assert _without_defaults(sent) == _without_defaults(case.rule)


def _names_something_written(rule: object, field: str) -> bool:
    """Whether ``spec.detection.allOf[0].path`` names a field the manifest spells out."""
    parts = re.findall(r"\.([^.\[]+)|\[(\d+)\]", field.removeprefix("spec.detection"))
    if not parts:
        return False
    node = rule
    for name, index in parts:
        if index:
            if not isinstance(node, list) or int(index) >= len(node):
                return False
            node = node[int(index)]
        elif isinstance(node, dict) and name in node:
            node = node[name]
        else:
            return False
    return True


def _without_defaults(rule: object) -> object:
    if isinstance(rule, dict):
        defaults = {"use32BitView": False, "timeoutSeconds": 60}
        return {k: _without_defaults(v) for k, v in rule.items() if defaults.get(k, ...) != v}
    if isinstance(rule, list):
        return [_without_defaults(item) for item in rule]
    return rule
