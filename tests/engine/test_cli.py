"""The CLI as CI and operators use it: exit codes, output formats, invalid input changes nothing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from controller.cli import main
from tests.engine.helpers import cli, copy_example, make_fleet

BROKEN = Path(__file__).resolve().parents[1] / "manifests" / "broken"
BROKEN_CASES = sorted(p for p in BROKEN.iterdir() if p.is_dir())


def run(sandbox, *args: str) -> int:
    return cli(sandbox, *args, controller_id="cli-test")


def test_corpus_is_large_enough():
    assert len(BROKEN_CASES) >= 15


@pytest.mark.parametrize("case", BROKEN_CASES, ids=lambda p: p.name)
@pytest.mark.parametrize("command", ["plan", "apply"])
def test_invalid_desired_state_exits_1_with_located_errors_and_calls_nothing(
    sandbox, capsys, case, command
):
    code = run(sandbox, command, str(case))
    err = capsys.readouterr().err
    assert code == 1
    assert "desired state is invalid" in err
    located = re.findall(r"^  (\S+?):(\d+): .+", err, re.M)
    assert located, err
    for file, _line in located:
        assert Path(file).is_relative_to(case) or file.startswith(str(case))
    assert (
        sandbox.admin.calls() == []
    )  # validated before any AWS call: nothing read, nothing written


def test_validate_is_offline_and_reports_every_error(capsys):
    assert main(["validate", str(BROKEN / "valid-for-45d")]) == 1
    err = capsys.readouterr().err
    assert "fleet.yaml:8" in err and "spec.validFor" in err


def test_plan_detailed_exitcode_2_then_0_after_apply(sandbox, tmp_path, capsys):
    desired = copy_example(tmp_path / "desired")
    make_fleet(sandbox, finance=3, engineering=2)
    assert run(sandbox, "plan", str(desired), "--detailed-exitcode") == 2
    assert run(sandbox, "plan", str(desired)) == 0  # without the flag, changes are not an error
    assert run(sandbox, "apply", str(desired)) == 0
    sandbox.admin.post("fleet/boot", {})
    assert run(sandbox, "apply", str(desired)) == 0
    capsys.readouterr()
    assert run(sandbox, "plan", str(desired), "--detailed-exitcode") == 0
    assert "No changes" in capsys.readouterr().out


def test_plan_error_exits_1(sandbox, tmp_path, capsys):
    desired = copy_example(tmp_path / "desired")
    sandbox.admin.set_faults([{"service": "ssm", "error_rate": 1.0}])
    assert (
        main(
            [
                "plan",
                str(desired),
                "--endpoint-url",
                sandbox.endpoint,
                "--region",
                "us-east-1",
                "--detailed-exitcode",
            ]
        )
        == 1
    )
    assert "error:" in capsys.readouterr().err


def test_markdown_plan_renders_as_a_table_with_field_changes(sandbox, tmp_path, capsys):
    desired = copy_example(tmp_path / "desired")
    make_fleet(sandbox, finance=2, engineering=1)
    run(sandbox, "apply", str(desired))
    sandbox.admin.post("fleet/boot", {})
    capsys.readouterr()
    assert run(sandbox, "plan", str(desired), "--format", "markdown", "--detailed-exitcode") == 2
    html = MarkdownIt().enable("table").render(capsys.readouterr().out)
    assert "<table>" in html
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>", html, re.S)
    assert len(rows) == 3  # one update per registered instance
    assert "Plan: 0 to create, 3 to update" in html
    assert "tags.CostCenter" in html and "<details>" in html


def test_json_plan_is_machine_readable(sandbox, tmp_path, capsys):
    desired = copy_example(tmp_path / "desired")
    assert run(sandbox, "plan", str(desired), "--format", "json") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["summary"]["create"] == 1
    [operation] = document["operations"]
    assert operation["kind"] == "Activation" and operation["action"] == "create"


def test_export_writes_loadable_manifests(sandbox, tmp_path, capsys):
    desired = copy_example(tmp_path / "desired")
    make_fleet(sandbox, finance=2, engineering=2)
    run(sandbox, "apply", str(desired))
    out = tmp_path / "exported"
    out.mkdir()
    assert run(sandbox, "export", "--output", str(out / "fleet.yaml")) == 0
    assert main(["validate", str(out)]) == 0
    text = (out / "fleet.yaml").read_text()
    assert "kind: Activation" in text and "kind: TagSync" in text
