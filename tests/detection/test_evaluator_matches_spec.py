"""The shipped PowerShell evaluator, checked in the form that ships against the specification.

No PowerShell runs here, so the evaluator is parsed (tree-sitter-powershell: a syntax check, not
an interpreter) and its parse tree is held to spec.yaml: the rule types it accepts and evaluates,
the observations each handler can emit, what each handler calls and must never call, every exit
code with the message it is paired with, its limits. A stub, a missing handler, a reason or exit
code the specification does not know, or a forbidden call each fail (the mutations below).
"""

from __future__ import annotations

import json
import re

import pytest

from controller.detection import grammar, rules
from controller.detection.document import document_body, document_content, evaluator_script
from fleet_sandbox import detection as sandbox_detection
from tests.detection.evaluator_shape import problems
from tests.detection.powershell import Script, walk
from tests.detection.spec import EVALUATOR, SPEC_TEXT, spec

SHIPPED = EVALUATOR.read_text(encoding="utf-8")


def test_the_shipped_evaluator_matches_the_specification():
    assert problems(SHIPPED) == []


def test_a_stubbed_evaluator_fails():
    stub = "# FLEET-CONTROLLER-DETECTION-EVALUATOR v2\nexit 0\n"
    found = problems(stub)
    assert "no function Invoke-Leaf (dispatch)" in found
    assert any(p.startswith("exit codes ['0']") for p in found)


def _without_clause(text: str, function: str, label: str) -> str:
    body = text[text.index(f"function {function}(") :]
    clause = re.search(rf"\n\s*'{label}' \{{[^\n]*\}}", body)
    assert clause, f"no {label} clause in {function}"
    start = text.index(f"function {function}(") + clause.start()
    return text[:start] + text[start + len(clause.group(0)) :]


@pytest.mark.parametrize("function", ["Invoke-Leaf", "Assert-Leaf"])
def test_removing_one_rule_types_handler_fails(function):
    found = problems(_without_clause(SHIPPED, function, "msi"))
    assert any(p.startswith(f"{function} handles") and "'msi'" in p for p in found), found


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("'file missing'", "'file absent'", "file: the handler emits ['file absent']"),
        (
            "$file = New-Object System.IO.FileInfo($path)\n    if (-not $file.Exists)",
            "$file = Get-Item -LiteralPath $path\n    if (-not $file.Exists)",
            "file: the handler does not call New-Object System.IO.FileInfo",
        ),
        (
            "[System.ServiceProcess.ServiceController]::GetServices()",
            "Get-Service -Name $name",
            "service: the handler does not call",
        ),
        (
            "$raw = $handle.GetValue($name, $null, [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames)",
            "$raw = $handle.GetValue($name)",
            "registry: the handler does not call [Microsoft.Win32.RegistryValueOptions]::DoNotExpandEnvironmentNames",
        ),
        (
            "$number = [decimal][BitConverter]::ToUInt32([BitConverter]::GetBytes([int]$raw), 0)",
            "$number = [decimal][int]$raw",
            "registry: the handler does not call [BitConverter]::ToUInt32",
        ),
        (
            "return New-Leaf 'error' $what \"script exited $($run.ExitCode)\"",
            "return New-Leaf 'not-detected' $what 'script exited 0 without output'",
            "script: the handler emits [] beyond the specification and lacks ['script exited {}']",
        ),
        (
            'Write-Answer "detection could not be evaluated: $reasons"\n    exit 4',
            'Write-Answer "detection could not be evaluated: $reasons"\n    exit 1',
            "exit 1 after 'detection could not be evaluated: {}'",
        ),
        ("$RulesMaxChars = 12288", "$RulesMaxChars = 65536", "$RulesMaxChars is '65536'"),
        ("'SystemDrive', 'PUBLIC')", "'SystemDrive', 'PUBLIC', 'APPDATA')", "$MachineVariables is"),
        (
            "# FLEET-CONTROLLER-DETECTION-EVALUATOR v2",
            "# FLEET-CONTROLLER-DETECTION-EVALUATOR v1",
            "the first line is not",
        ),
    ],
    ids=[
        "unknown-observation",
        "file-through-a-provider",
        "service-by-pattern",
        "expand-sz-expanded",
        "dword-signed",
        "crash-as-absent",
        "error-exit-code",
        "limit",
        "per-user-variable",
        "spec-version",
    ],
)
def test_a_change_the_specification_does_not_make_fails(old, new, expected):
    assert SHIPPED.count(old) == 1, old
    found = problems(SHIPPED.replace(old, new))
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "if ($finding.Verdict -cne 'detected') {",
            "if ($finding.Verdict -ceq 'detected') {",
            "Install with a detected verdict answers",
        ),
        (
            "    if ($finding.Verdict -ceq 'detected') {\n        Write-Answer \"detection after Uninstall",
            "    if ($finding.Verdict -cne 'detected') {\n        Write-Answer \"detection after Uninstall",
            "Uninstall with a detected verdict answers",
        ),
        (
            "if ($finding.Verdict -ceq 'error') {",
            "if ($finding.Verdict -ceq 'Error') {",
            "Install with a error verdict answers",
        ),
        (
            "if ($action -ceq 'Uninstall') {",
            "if ($action -ceq 'uninstall') {",
            "Uninstall with a detected verdict answers",
        ),
        (
            "if ($finding.Verdict -ceq 'error') {",
            "if ($finding.Verdict -ceq 'error' -or $finding.Count -gt 0) {",
            "verdict walk: a condition the verdict walk cannot read",
        ),
    ],
    ids=["install-flipped", "uninstall-flipped", "error-never-matches", "action-case", "unknown"],
)
def test_a_verdict_the_specification_does_not_give_fails(old, new, expected):
    """The answer and exit code for each action and verdict, walked through the main flow."""
    assert SHIPPED.count(old) == 1, old
    found = problems(SHIPPED.replace(old, new))
    assert any(expected in p for p in found), found


def test_the_document_runs_this_evaluator_with_the_rules_as_environment_variables():
    assert evaluator_script() == SHIPPED
    body = document_body()
    step = next(s for s in body["mainSteps"] if s["action"] == "aws:runPowerShellScript")
    assert "\n".join(step["inputs"]["runCommand"]) == SHIPPED.rstrip("\n")
    assert int(step["inputs"]["timeoutSeconds"]) == spec()["limits"]["stepTimeoutSeconds"]
    for name in ("detectionRules", "action"):
        assert body["parameters"][name]["interpolationType"] == "ENV_VAR"
    assert json.loads(document_content()) == body


def test_the_controller_and_the_sandbox_hold_the_specifications_limits():
    limits = spec()["limits"]
    timeouts = limits["scriptTimeoutSeconds"]
    assert rules.RULES_MAX_CHARS == sandbox_detection.RULES_MAX_CHARS == limits["rulesMaxChars"]
    assert rules.DEPTH_MAX == sandbox_detection.GROUP_DEPTH_MAX == limits["groupDepthMax"]
    assert (
        timeouts["default"],
        timeouts["maximum"],
    ) == (rules.SCRIPT_TIMEOUT_DEFAULT, rules.SCRIPT_TIMEOUT_MAX)
    assert (
        timeouts["minimum"],
        timeouts["default"],
        timeouts["maximum"],
    ) == sandbox_detection.SCRIPT_TIMEOUT
    assert (
        rules.SCRIPT_TIMEOUT_TOTAL_MAX
        == sandbox_detection.SCRIPT_TIMEOUT_TOTAL_MAX
        == timeouts["totalMaximum"]
    )
    assert limits["versionParts"]["maximum"] == grammar.VERSION_PARTS_MAX
    assert limits["versionParts"]["digitsMaximum"] == grammar.VERSION_DIGITS_MAX
    assert list(grammar.MACHINE_VARIABLES) == spec()["machineVariables"]
    assert spec()["version"] == sandbox_detection.SPEC_VERSION
    minimum = ".".join(map(str, sandbox_detection.AGENT_VERSION_MIN))
    assert minimum == limits["agentVersionMinimum"]
    assert minimum in sandbox_detection.AGENT_TOO_OLD


def test_the_document_and_the_largest_rules_leave_room_in_ssms_64_kb():
    """CreateDocument: the content may not exceed 64 KB, a quota that includes the parameters
    given at run time. The largest rules and 8 KB for the association's other parameters fit."""
    content = len(document_content().encode("utf-8"))
    assert content + spec()["limits"]["rulesMaxChars"] + 8192 <= 64 * 1024, content


def test_the_written_specification_states_what_spec_yaml_holds():
    """SPEC.md is the prose of spec.yaml: its exit code table, limits and variables agree."""
    text = SPEC_TEXT.read_text(encoding="utf-8")
    for outcome in spec()["outcomes"]:
        prefix = str(outcome["says"]).split("{")[0]
        row = next((line for line in text.splitlines() if f"`{prefix}" in line), None)
        assert row is not None and row.startswith(f"| {outcome['exit']} |"), prefix
    limits = spec()["limits"]
    for number in (
        f"{limits['rulesMaxChars']:,}",
        f"at most **{limits['groupDepthMax']}** levels",
        f"`timeoutSeconds` 1 to {limits['scriptTimeoutSeconds']['maximum']}",
        f"(default {limits['scriptTimeoutSeconds']['default']})",
        f"at most {limits['scriptTimeoutSeconds']['totalMaximum']} s",
        f"**{limits['agentVersionMinimum']}**",
    ):
        assert number in text, number
    for variable in spec()["machineVariables"]:
        assert f"`%{variable}%`" in text, variable


def test_fields_are_returned_whole_so_a_one_member_group_stays_a_list():
    """PowerShell unrolls what a function outputs: ``return $value`` hands a one-element array
    to the caller as its element, and a valid ``allOf: [x]`` would be refused as "not a list"."""
    script = Script(SHIPPED)
    getter = script.functions["get-field"]
    returns = [n for n in walk(getter) if n.type == "flow_control_statement"]
    returned = [script.span(n) for n in returns if "$property.Value" in script.span(n)]
    assert returned and all(re.match(r"return\s*,\s*\$property\.Value$", r) for r in returned)
