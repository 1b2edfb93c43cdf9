"""SECURITY.md points every claim at a test: each reference must name a test that exists.

A reference is ``tests/<file>.py::<name>`` or ``tests/<file>.py`` (every test in it); a bare
``test_<name>`` (optionally ``[case]``) belongs to the last file named before it. A renamed or deleted test fails here, so the page cannot drift into
claims nothing proves.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(
    r"`(tests/[\w/]+\.py)(?:::(\w+)(\[[^\]`]+\])?)?[^`]*`|`(test_\w+)(\[[^\]`]+\])?`"
)


def references() -> list[tuple[int, str, str | None, str | None]]:
    found: list[tuple[int, str, str | None, str | None]] = []
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        for match in REFERENCE.finditer(line):
            path, name, case, bare, bare_case = match.groups()
            if path is not None:
                current = path
                found.append((number, path, name, case))
            else:
                assert current is not None, f"SECURITY.md:{number}: {bare} names no file before it"
                found.append((number, current, bare, bare_case))
    return found


def test_security_md_names_tests_that_exist() -> None:
    found = references()
    assert len(found) >= 40
    for number, path, name, case in found:
        source = ROOT / path
        assert source.is_file(), f"SECURITY.md:{number}: {path} does not exist"
        if name is None:
            continue
        text = source.read_text(encoding="utf-8")
        functions = {
            node.name for node in ast.walk(ast.parse(text)) if isinstance(node, ast.FunctionDef)
        }
        assert name in functions, f"SECURITY.md:{number}: {path} has no test {name}"
        if case is not None:
            assert f'"{case[1:-1]}"' in text, f"SECURITY.md:{number}: {path} has no case {case}"
