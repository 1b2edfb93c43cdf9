"""Plan rendering as a reviewer reads it: a created resource shows every field it is created with
(secrets masked), each kind's resources sit under one heading, structured values (association
parameters, detection rules carried as JSON in a string) are YAML over several lines, and an
update of a structured value is diffed field by field."""

from __future__ import annotations

import json
import textwrap

import yaml

from controller.contract import Action, FieldChange, Operation, Plan, Step
from controller.engine.render import MASKED, change_lines, render_json, render_text
from tests.engine.helpers import cli, copy_example


class _Nothing(Step):
    pass


def _operation(kind: str, name: str, *changes: FieldChange, action=Action.CREATE) -> Operation:
    return Operation(
        kind=kind,
        name=name,
        action=action,
        resource="(new)",
        payload=_Nothing(),
        changes=changes,
    )


RULES = {
    "allOf": [
        {"type": "msi", "productCode": "{6F0D6C54-3C3A-4B5E-9C44-2A8E1B7D5A10}", "version": "3.2"},
        {"type": "script", "script": "$a = 1\nif ($a) { Write-Output 'ok' }", "timeoutSeconds": 30},
    ]
}
PARAMETERS = {
    "action": ["Install"],
    "detectionRules": [json.dumps(RULES, separators=(",", ":"))],
    "name": ["AcmeViewer"],
}


def test_a_created_activation_shows_every_field_it_is_created_with(sandbox, tmp_path, capsys):
    desired = copy_example(tmp_path / "desired", only=("activation.yaml",))
    assert cli(sandbox, "plan", str(desired)) == 0
    out = capsys.readouterr().out
    block = out[out.index("+ create workspaces") : out.index("Plan:")]
    for line in (
        '+ iamRole: "SSMServiceRole-WorkSpaces"',
        "+ registrationLimit: 1000",
        '+ validFor: "30d"',
        '+ defaultInstanceName: "workspace"',
        '+ tags.Fleet: "workspaces"',
        '+ tags.fleet-controller/owner: "test-controller"',
        '+ publish.parameterName: "/fleet-controller/activations/workspaces"',
    ):
        assert line in block, block


def test_structured_parameters_are_yaml_over_several_lines_and_read_back_equal():
    lines = change_lines(FieldChange("Parameters", None, PARAMETERS))
    assert lines[0] == "+ Parameters:"
    assert len(lines) > 10  # not one line of escaped JSON
    shown = yaml.safe_load(textwrap.dedent("\n".join(lines[1:])))
    assert shown == {**PARAMETERS, "detectionRules": [RULES]}
    assert any(line.rstrip().endswith("script: |-") for line in lines), lines  # a script block
    assert not any("\\n" in line or '\\"' in line for line in lines), lines


def test_an_update_of_a_structured_value_is_diffed_field_by_field():
    changed = json.loads(json.dumps(RULES))
    changed["allOf"][0]["version"] = "3.3"
    after = {**PARAMETERS, "detectionRules": [json.dumps(changed)], "version": ["2"]}
    lines = change_lines(FieldChange("Parameters", PARAMETERS, after))
    assert lines == [
        '~ Parameters.detectionRules[0].allOf[0].version: "3.2" -> "3.3"',
        '+ Parameters.version[0]: "2"',
    ]


def test_secret_named_fields_are_masked_in_text_and_json():
    plan = Plan(
        operations=[
            _operation(
                "Widget",
                "w",
                FieldChange("activationCode", None, "Zx81-secret-value"),
                FieldChange("settings", None, {"user": "svc", "password": "hunter2-value"}),
            )
        ]
    )
    text, document = render_text(plan), render_json(plan)
    for rendered in (text, document):
        assert "Zx81-secret-value" not in rendered
    assert "hunter2-value" not in text
    assert f"password: {MASKED}" in text and "user: svc" in text
    assert f"activationCode: {MASKED}" in text
    assert json.loads(document)["operations"][0]["changes"][0]["after"] == MASKED


def test_each_kind_sits_under_one_heading_whatever_the_apply_order():
    plan = Plan(
        operations=[
            _operation("Package", "a"),
            _operation("Association", "x"),
            _operation("Package", "b", action=Action.DELETE),
        ]
    )
    lines = render_text(plan).splitlines()
    assert lines.count("Package") == 1 and lines.count("Association") == 1
    package = lines.index("Package")
    assert lines[package + 1].startswith("  + create a") and lines[package + 2].startswith(
        "  - delete b"
    )
