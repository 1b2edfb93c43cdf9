"""``plan`` and ``apply`` on a real terminal (tmux), read back as a person sees the screen.

The plan is printed once, each kind under its heading; apply's progress is one display, and the
log lines written while it is shown (a failure, a blocked operation) land above it on lines of
their own, never inside the display or another line; each operation is reported once; the
sandbox says nothing unless asked.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import ROOT
from tests.terminal import Terminal

pytestmark = pytest.mark.timeout(300)

TIMESTAMPED = re.compile(r"\d\d:\d\d:\d\d  [ !x] ")  # a console log line's start
BAR = "━"


def _command(sandbox, verb: str, directory: Path) -> str:
    return (
        f"{sys.executable} -m controller.cli {verb} {directory}"
        f" --endpoint-url {sandbox.endpoint} --region us-east-1"
    )


@pytest.fixture
def terminal():
    with Terminal(
        width=160,
        env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    ) as opened:
        yield opened


@pytest.fixture
def desired(tmp_path: Path, sandbox) -> Path:
    copy = tmp_path / "desired-state"
    shutil.copytree(ROOT / "desired-state", copy)
    sandbox.client("s3").create_bucket(Bucket="fleet-controller-packages-example")
    return copy


def _no_line_runs_into_another(lines: list[str]) -> None:
    for line in lines:
        found = list(TIMESTAMPED.finditer(line))
        assert all(m.start() == 0 for m in found), f"a log line inside another: {line!r}"
        assert not (found and BAR in line), f"a log line inside the progress display: {line!r}"


def test_plan_on_a_terminal_is_one_readable_report(sandbox, desired, terminal):
    assert terminal.run(_command(sandbox, "plan", desired), cwd=ROOT) == 0
    screen = terminal.screen()
    lines = screen.splitlines()
    headings = [line for line in lines if line and not line.startswith(" ")]
    assert headings == [
        "Activation",
        "DetectionDocument",
        "Package",
        "Association",
        "Plan: 8 to create, 0 to update, 0 to replace, 0 to delete.",
    ], screen
    _no_line_runs_into_another(lines)
    assert not any(TIMESTAMPED.match(line) for line in lines), "a plan prints no log lines"
    assert '      + iamRole: "SSMServiceRole-WorkSpaces"' in lines
    parameters = lines.index("      + Parameters:")
    assert lines[parameters + 1] == "          action:"  # YAML over lines, not escaped JSON
    assert not any('\\"' in line for line in lines), screen


def test_apply_on_a_terminal_shows_one_display_with_the_log_above_it(sandbox, desired, terminal):
    # The association of one package is refused by IAM at apply time: its failure is logged
    # while the display is shown.
    sandbox.admin.set_faults(
        [
            {
                "service": "ssm",
                "operation": "CreateAssociation",
                "deny_rate": 1.0,
                "body_contains": "install-acme-viewer",
            }
        ]
    )
    assert terminal.run(_command(sandbox, "apply", desired), cwd=ROOT) == 1
    screen = terminal.screen()
    lines = screen.splitlines()
    _no_line_runs_into_another(lines)
    plan_end = next(i for i, line in enumerate(lines) if line.startswith("Plan: 8 to create"))
    after = lines[plan_end + 1 :]
    bars = [line for line in after if BAR in line]
    assert len(bars) == 1, screen  # one display, drawn in place
    assert bars[0].startswith("applied 7 of 8 (1 failed)") and "8/8" in bars[0], bars
    failures = [
        line
        for line in after
        if "failed to create Association install-acme-viewer: AccessDenied" in line
    ]
    assert len(failures) == 1 and TIMESTAMPED.match(failures[0]), screen  # once, on its own line
    assert after.index(failures[0]) < after.index(bars[0])  # above the display
    assert after[-1] == (
        "Applied 7 of 8 operation(s); 1 failed, 0 blocked, 0 deferred, 0 not started."
    ), screen
    assert "operation applied" not in screen  # the display tells each operation, once
    assert "registered as" not in screen and "enrolled as" not in screen  # no sandbox chatter
