"""Every PowerShell script in the repository parses, and keeps two rules a parse tree can check.

This is a syntax check, not an interpreter: no PowerShell runs on these machines or in CI, so
tree-sitter-powershell (PyPI, the grammar tree-sitter ships for PowerShell) parses each script and
the test asserts that the tree holds no ERROR and no MISSING node. A misspelt cmdlet, a wrong
parameter, a .NET type that does not exist or anything else decided at run time passes unseen;
``tests/packages`` and the sandbox's agent judge what the scripts do.

The scripts are found, not listed: every ``*.ps1`` git knows in the repository (tracked, or new and
not ignored), so a script another change adds (the enrollment bootstrap under
``deploy/workspaces/``) is covered without touching this file; plus the bodies of ``script``
detection rules in the example desired state, which ship to every WorkSpace too.

On the tree, two project rules (DESIGN.md: secrets never reach output; the evaluator's header:
nothing from data is run as code):

* no code from data: ``Invoke-Expression``/``iex``, ``[scriptblock]::Create`` and
  ``InvokeScript``/``NewScriptBlock`` only with constant single-quoted strings, and never with
  pipeline input;
* no secret-named variable written to output: a variable or member whose name holds secret,
  password, token, credential, apikey, privatekey or activationcode (``$activation.Code`` reads as
  activationcode) must not appear in an output command (``Write-Output``/``echo``/``Write-Host``/
  ``Write-*``/``Out-*``/``Tee-Object``/``Set-Content``/``Add-Content``/``[Console]::WriteLine``, in
  its arguments or in what is piped into it), nor in a statement of the script's body that leaves
  an expression's value on the output stream (``$token`` or ``"code: $code"`` alone on a line).
  Passing a secret as an argument to another command (``amazon-ssm-agent -register -code ...``)
  is what scripts are for and stays allowed; what a function returns is not followed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import tree_sitter_powershell
import yaml
from tree_sitter import Language, Node, Parser

from tests.deploy.tools import repository_files

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "desired-state"
PARSER = Parser(Language(tree_sitter_powershell.language()))

CODE_FROM_TEXT_COMMANDS = frozenset({"invoke-expression", "iex"})
CODE_FROM_TEXT_METHODS = frozenset({"create", "invokescript", "newscriptblock"})
OUTPUT_COMMANDS = frozenset(
    {
        "write-output",
        "echo",
        "write",
        "write-host",
        "write-information",
        "write-verbose",
        "write-debug",
        "write-warning",
        "write-error",
        "write-progress",
        "out-host",
        "out-default",
        "out-file",
        "out-printer",
        "tee-object",
        "set-content",
        "add-content",
    }
)
CONSOLE_TYPES = frozenset({"[console]", "[system.console]"})
SECRET_WORDS = re.compile(
    r"secret|password|passwd|token|credential|apikey|privatekey|activationcode", re.I
)
CONSTANT_STRING = re.compile(r"'(?:[^']|'')*'", re.S)


@dataclass(frozen=True)
class Script:
    """PowerShell text and where it lives: ``first_line`` is the file line of its line 1."""

    path: str
    text: bytes
    first_line: int = 1


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


# -- discovery -----------------------------------------------------------------------------------


def ps1_files() -> list[Path]:
    """Every ``*.ps1`` git knows here: tracked, or untracked and not ignored."""
    return [ROOT / name for name in repository_files("*.ps1")]


def detection_scripts(path: Path) -> Iterator[Script]:
    """The body of every ``script`` detection rule in one YAML file, with its file line."""
    for document in yaml.compose_all(path.read_text(encoding="utf-8")):
        yield from _script_rules(document, path)


def _script_rules(node: yaml.Node | None, path: Path) -> Iterator[Script]:
    if isinstance(node, yaml.MappingNode):
        fields = {key.value: value for key, value in node.value if isinstance(key, yaml.ScalarNode)}
        body = fields.get("script")
        kind = fields.get("type")
        if isinstance(kind, yaml.ScalarNode) and kind.value == "script":
            assert isinstance(body, yaml.ScalarNode), f"{path}: a script rule without a script"
            block = body.style in ("|", ">")  # a block scalar's text starts on the next line
            first = body.start_mark.line + 1 + int(block)
            yield Script(shown(path), body.value.encode(), first)
        for _, value in node.value:
            yield from _script_rules(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _script_rules(item, path)


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def shipped_scripts() -> list[Script]:
    scripts = [Script(shown(p), p.read_bytes()) for p in ps1_files()]
    for manifest in sorted([*EXAMPLE.rglob("*.yaml"), *EXAMPLE.rglob("*.yml")]):
        scripts.extend(detection_scripts(manifest))
    return scripts


# -- the checks ----------------------------------------------------------------------------------


def walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


def text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", errors="replace")


def check(script: Script) -> list[Finding]:
    """Syntax errors first; the rules only mean something on a tree that parsed."""
    source = script.text.removeprefix(b"\xef\xbb\xbf")  # PowerShell reads a UTF-8 BOM as nothing
    tree = PARSER.parse(source)

    def finding(node: Node, message: str) -> Finding:
        row, column = node.start_point
        return Finding(script.path, script.first_line + row, column + 1, message)

    errors = [
        finding(node, f"syntax: {'missing ' + node.type if node.is_missing else 'cannot parse'}")
        for node in walk(tree.root_node)
        if node.is_missing or node.type == "ERROR"
    ]
    if errors:
        return errors
    found = [finding(node, message) for node, message in code_from_data(tree.root_node)]
    found += [finding(node, message) for node, message in secrets_to_output(tree.root_node)]
    return sorted(found, key=lambda f: (f.line, f.column))


def arguments(command: Node) -> list[Node]:
    """A command's argument nodes (parameters and separators left out)."""
    elements = next((c for c in command.children if c.type == "command_elements"), None)
    if elements is None:
        return []
    skipped = {"command_argument_sep", "command_parameter"}
    return [c for c in elements.named_children if c.type not in skipped]


def command_name(command: Node) -> str:
    name = next((c for c in command.children if c.type == "command_name"), None)
    return text(name).lower() if name is not None else ""


def piped_into(command: Node) -> list[Node]:
    """The pipeline elements before ``command`` (what it reads as input)."""
    parent = command.parent
    if parent is None or parent.type != "pipeline_chain":
        return []
    before = []
    for sibling in parent.named_children:
        if sibling == command:
            return before
        before.append(sibling)
    return before


def is_constant(node: Node) -> bool:
    return CONSTANT_STRING.fullmatch(text(node).strip()) is not None


def code_from_data(root: Node) -> Iterator[tuple[Node, str]]:
    for node in walk(root):
        if node.type == "command" and command_name(node) in CODE_FROM_TEXT_COMMANDS:
            if piped_into(node) or not all(map(is_constant, arguments(node))):
                yield node, f"{command_name(node)} runs text as code: only constant strings"
        elif node.type == "invokation_expression":
            member = next((c for c in node.children if c.type == "member_name"), None)
            if member is None or text(member).lower() not in CODE_FROM_TEXT_METHODS:
                continue
            target = text(node.children[0]).lower()
            if text(member).lower() == "create" and target != "[scriptblock]":
                continue
            listed = next((c for c in node.children if c.type == "argument_list"), None)
            values = [] if listed is None else list(walk(listed))
            leaves = [v for v in values if v.type in ("variable", "member_access", "command")]
            strings = [v for v in values if v.type == "string_literal"]
            if leaves or not all(map(is_constant, strings)):
                yield node, f"{text(member)} runs text as code: only constant strings"


def secret_references(node: Node) -> Iterator[Node]:
    """Variables and members under ``node`` whose name reads as a secret."""
    for found in walk(node):
        if found.type in ("variable", "member_access"):
            name = re.sub(r"[^a-z0-9]", "", text(found).lower().split(":")[-1])
            if SECRET_WORDS.search(name):
                yield found


def in_function(node: Node) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.type == "function_statement":
            return True
        parent = parent.parent
    return False


def left_on_output(pipeline: Node) -> bool:
    """A statement whose value goes to the output stream: no assignment, and it ends in an
    expression rather than a command (a command's own output is not followed)."""
    statements = pipeline.parent
    if statements is None or statements.type != "statement_list":
        return False
    if statements.parent is not None and statements.parent.type in (
        "sub_expression",
        "array_expression",
    ):
        return False  # $(...) and @(...) are values: the statement holding them decides
    first = pipeline.named_children[0] if pipeline.named_children else None
    if first is None or first.type == "assignment_expression":
        return False
    chain = first.named_children if first.type == "pipeline_chain" else [first]
    return bool(chain) and chain[-1].type != "command"


def secrets_to_output(root: Node) -> Iterator[tuple[Node, str]]:
    """Each secret-named reference once, under the first output it reaches (a named output
    command before the bare output stream, so a message names the command to change)."""
    found: dict[tuple[int, int], tuple[Node, str]] = {}
    for reference, message in _secret_outputs(root):
        key = (reference.start_byte, reference.end_byte)
        if key not in found or found[key][1].endswith("the output stream"):
            found[key] = (reference, message)
    reported = list(found.values())
    for reference, message in reported:
        inside_another = any(
            other.start_byte <= reference.start_byte
            and reference.end_byte <= other.end_byte
            and (other.start_byte, other.end_byte) != (reference.start_byte, reference.end_byte)
            for other, _ in reported
        )
        if not inside_another:
            yield reference, message


def _secret_outputs(root: Node) -> Iterator[tuple[Node, str]]:
    for node in walk(root):
        sources: list[Node] = []
        if node.type == "command" and command_name(node) in OUTPUT_COMMANDS:
            sources = [*arguments(node), *piped_into(node)]
            sink = command_name(node)
        elif node.type == "invokation_expression" and text(node.children[0]).lower() in (
            CONSOLE_TYPES
        ):
            sources = [c for c in node.children if c.type == "argument_list"]
            sink = text(node.children[0]) + "::" + text(node.children[-2])
        elif node.type == "pipeline" and not in_function(node) and left_on_output(node):
            sources = [node]
            sink = "the output stream"
        for source in sources:
            for reference in secret_references(source):
                yield reference, f"{text(reference)} (secret-named) is written to {sink}"


# -- the tests -----------------------------------------------------------------------------------

SCRIPTS = shipped_scripts()


def test_the_scripts_are_found():
    """The discovery cannot pass vacuously: the evaluator and every example package's scripts."""
    paths = {script.path for script in SCRIPTS}
    assert "controller/detection/evaluator.ps1" in paths
    for package in (EXAMPLE / "packages").iterdir():
        for installer in ("install.ps1", "uninstall.ps1"):
            if package.is_dir():
                assert str((package / installer).relative_to(ROOT)) in paths
    assert any(script.path.endswith(".yaml") for script in SCRIPTS), "a script detection rule"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: f"{s.path}:{s.first_line}")
def test_every_shipped_script_parses_and_keeps_the_rules(script: Script):
    findings = check(script)
    assert not findings, "\n".join(map(str, findings))


def test_untracked_scripts_are_discovered(tmp_path: Path):
    """A script a change adds is checked before it is committed (git's view, minus ignored)."""
    scratch = ROOT / "deploy" / f".discovery-probe-{tmp_path.name}.ps1"
    scratch.write_text("Write-Output 'probe'\n", encoding="utf-8")
    try:
        assert scratch in ps1_files()
    finally:
        scratch.unlink()


EVALUATOR = ROOT / "controller" / "detection" / "evaluator.ps1"


def test_a_detection_rule_script_is_reported_at_its_line_in_the_manifest(tmp_path: Path):
    manifest = tmp_path / "package.yaml"
    manifest.write_text(
        "kind: Package\n"  # line 1
        "spec:\n"
        "  detection:\n"
        "    anyOf:\n"
        "      - type: file\n"  # line 5
        "        path: C:\\x\n"
        "      - type: script\n"
        "        script: |-\n"
        "          $ok = Test-Path C:\\x\n"  # line 9: the script's first line
        "          if ($ok { Write-Output 'yes' }\n"  # line 10: the error
        "      - type: script\n"
        "        script: \"Write-Output 'fine'\"\n",
        encoding="utf-8",
    )
    scripts = list(detection_scripts(manifest))
    assert [script.first_line for script in scripts] == [9, 12]
    assert {f.line for f in check(scripts[0])} == {10}
    assert check(scripts[1]) == []


BROKEN = {
    # name: (text in the evaluator, what replaces it, whether the error is found on that line)
    "an if without its condition": (
        "if ($null -eq $rulesJson -or $null -eq $action) {",
        "if ( {",
        True,
    ),
    "a parenthesis never closed": (
        "-cnotmatch '\\A-?[0-9]+\\z' -or",
        "-cnotmatch ('\\A-?[0-9]+\\z' -or",
        True,
    ),
    "a block never closed": (
        "function Get-Sign([decimal]$Left, [decimal]$Right) {",
        "function Get-Sign([decimal]$Left, [decimal]$Right) { {",
        False,
    ),
    "a string never closed": (
        'Write-Answer "Detected: $reasons"',
        'Write-Answer "Detected: $reasons',
        False,
    ),
    "a stray closing brace": (
        "Set-StrictMode -Version 2.0\n",
        "Set-StrictMode -Version 2.0\n}\n",
        True,
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_script_fails(case: str):
    """Each breakage, made in a copy of the shipped evaluator, is reported as a syntax error (on
    its line where the parser can tell; an unclosed block or string shows where it runs out)."""
    old, new, local = BROKEN[case]
    original = EVALUATOR.read_text(encoding="utf-8")
    assert old in original, f"the breakage {case!r} no longer applies to the evaluator"
    broken = original.replace(old, new, 1)
    findings = check(Script("evaluator.ps1", broken.encode()))
    assert findings and all(f.message.startswith("syntax:") for f in findings), findings
    if local:
        same = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), len(old))
        changed = original.index(old) + same
        line = original[:changed].count("\n") + 1
        assert line in {f.line for f in findings}, (line, [str(f) for f in findings])


RULE_CASES = {
    "iex on a variable": ("iex $payload", "iex runs text as code"),
    "Invoke-Expression on an expandable string": (
        'Invoke-Expression "Get-Item $path"',
        "invoke-expression runs text as code",
    ),
    "data piped into iex": ("$payload | iex", "iex runs text as code"),
    "a script block made from data": (
        "$block = [scriptblock]::Create($payload)",
        "Create runs text as code",
    ),
    "InvokeScript on data": (
        "$ExecutionContext.InvokeCommand.InvokeScript($payload)",
        "InvokeScript runs text as code",
    ),
    "an activation code written with Write-Output": (
        'Write-Output "registering with $ActivationCode"',
        "$ActivationCode (secret-named) is written to write-output",
    ),
    "a member read as activation code, to the host": (
        "Write-Host $activation.Code",
        "$activation.Code (secret-named) is written to write-host",
    ),
    "a token piped into Out-File": (
        "$env:FLEET_TOKEN | Out-File C:\\log.txt",
        "$env:FLEET_TOKEN (secret-named) is written to out-file",
    ),
    "a password formatted for a warning": (
        "Write-Warning ('{0}' -f $password)",
        "$password (secret-named) is written to write-warning",
    ),
    "a secret left alone on a line": ("$clientSecret", "is written to the output stream"),
    "a secret in a string left on the output stream": (
        '"the code is $($response.ActivationCode)"',
        "is written to the output stream",
    ),
    "a credential to the console": (
        "[Console]::WriteLine($credential)",
        "$credential (secret-named) is written to [Console]::WriteLine",
    ),
}


@pytest.mark.parametrize("case", sorted(RULE_CASES))
def test_a_rule_breaking_line_is_reported(case: str):
    line, message = RULE_CASES[case]
    source = f"$ErrorActionPreference = 'Stop'\n{line}\nexit 0\n"
    findings = check(Script("probe.ps1", source.encode(), first_line=10))
    assert [(f.line, f.message) for f in findings if message in f.message] == [
        (11, findings[0].message)
    ]
    assert len(findings) == 1, findings


ALLOWED = [
    "Invoke-Expression 'Get-Date'",
    "& $agent -register -code $activation.Code -id $activation.Id -region $region",
    "$ActivationCode = $response.ActivationCode",
    "if ($token) { Write-Output 'registered' }",
    'Write-Output "exit code $code"',
    "function Get-Token { $token }",
    "$tokenFile = Join-Path $env:TEMP 'x' ; Set-Content -LiteralPath $path -Value 'done'",
]


@pytest.mark.parametrize("line", ALLOWED)
def test_what_scripts_need_stays_allowed(line: str):
    assert check(Script("probe.ps1", f"{line}\n".encode())) == []
