"""Repository rules a reviewer would otherwise check by hand."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "README must start with a sh block holding the two set-up commands"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_readme_starts_with_exactly_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = text.index("```sh")
    assert text[:first_block].count("\n") <= 2, "the commands come first, before any prose"
    commands = _readme_commands()
    assert len(commands) == 2
    assert "--sandbox" in commands[0] and "fleet-controller" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _readme_commands()[1] in ci.splitlines()


def _tool(name: str) -> str:
    found = BIN / name
    return str(found) if found.exists() else (shutil.which(name) or name)


def test_ruff_lint_and_format_are_clean():
    paths = ["controller", "fleet_sandbox", "tests", "benchmarks"]
    lint = subprocess.run(
        [_tool("ruff"), "check", *paths], cwd=ROOT, capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run(
        [_tool("ruff"), "format", "--check", *paths], cwd=ROOT, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_is_clean_on_the_package():
    result = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _imports(path: Path) -> set[str]:
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_controller_reaches_the_sandbox_only_through_embedded_py():
    """The sandbox is a separate package: production code never depends on it."""
    imports = _imports
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "controller").rglob("*.py")
        if path.name != "embedded.py"
        and any(name.split(".")[0] == "fleet_sandbox" for name in imports(path))
    ]
    assert offenders == [], f"import fleet_sandbox only in controller/embedded.py: {offenders}"


def test_the_sandbox_never_imports_the_controller():
    """The sandbox is the oracle the controller is tested against (its detection evaluator
    implements the specification on its own): it may share no code with the controller."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imports(path) if name.split(".")[0] == "controller"
        )
        for path in (ROOT / "fleet_sandbox").rglob("*.py")
    }
    offenders = {path: names for path, names in offenders.items() if names}
    assert offenders == {}, f"fleet_sandbox imports the controller: {offenders}"
