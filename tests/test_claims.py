"""The pages that map claims to tests name tests that exist: ``SECURITY.md`` (the trust boundary)
and ``tests/README.md`` (every README guarantee). A renamed or deleted test fails here, so neither
page can drift into claims nothing proves; and every bold bullet of the README's *Guarantees* and
*Events and the live cache* must have a row in ``tests/README.md``.

A reference is ``tests/<file>.py::<name>`` or ``tests/<file>.py`` (every test in it); a bare
``test_<name>`` (optionally ``[case]``) belongs to the last file named before it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(
    r"`(tests/[\w/]+\.py)(?:::(\w+)(\[[^\]`]+\])?)?[^`]*`|`(test_\w+)(\[[^\]`]+\])?`"
)
PAGES = {"SECURITY.md": 40, "tests/README.md": 150}  # page -> fewest references it must hold


def references(page: str) -> list[tuple[int, str, str | None, str | None]]:
    found: list[tuple[int, str, str | None, str | None]] = []
    text = (ROOT / page).read_text(encoding="utf-8")
    current: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        for match in REFERENCE.finditer(line):
            path, name, case, bare, bare_case = match.groups()
            if path is not None:
                current = path
                found.append((number, path, name, case))
            else:
                assert current is not None, f"{page}:{number}: {bare} names no file before it"
                found.append((number, current, bare, bare_case))
    return found


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_test_a_page_names_exists(page: str) -> None:
    found = references(page)
    assert len(found) >= PAGES[page]
    for number, path, name, case in found:
        source = ROOT / path
        assert source.is_file(), f"{page}:{number}: {path} does not exist"
        if name is None:
            continue
        text = source.read_text(encoding="utf-8")
        functions = {
            node.name for node in ast.walk(ast.parse(text)) if isinstance(node, ast.FunctionDef)
        }
        assert name in functions, f"{page}:{number}: {path} has no test {name}"
        if case is not None:
            assert f'"{case[1:-1]}"' in text, f"{page}:{number}: {path} has no case {case}"


SECTIONS = {"Guarantees": 8, "Events and the live cache": 3}
"""README sections whose bold bullets are promises, and how many each holds at least."""


def guarantees(section: str = "Guarantees") -> list[str]:
    """The bold titles of the bullets of a README section (``**Minimal diffs.**``, ...)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- (\*\*[^*]+\*\*)", body, re.M)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_readme_guarantee_has_a_row_naming_its_tests(section: str) -> None:
    titles = guarantees(section)
    assert len(titles) >= SECTIONS[section], titles
    rows = [
        line
        for line in (ROOT / "tests" / "README.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| **")
    ]
    for title in titles:
        row = next((r for r in rows if r.startswith(f"| {title}")), None)
        assert row is not None, f"tests/README.md has no row for the README's {title}"
        assert REFERENCE.search(row), f"tests/README.md's row for {title} names no test"
