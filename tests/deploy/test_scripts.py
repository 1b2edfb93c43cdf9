"""Every shell script in the repository (CI's entry points, the image scripts) passes shellcheck.

Scripts are found by git (tracked, or new and not ignored) from a ``.sh`` name or a shell
shebang, so one a change adds is checked without editing this file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.deploy.tools import ROOT, repository_files, run, tool

SHEBANG = re.compile(rb"#!\s*(/usr/bin/env\s+)?(/bin/|/usr/bin/)?(ba)?sh\b")


def shell_scripts() -> list[str]:
    found = []
    for name in repository_files():
        with (ROOT / name).open("rb") as file:
            first = file.readline()
        if name.endswith(".sh") or SHEBANG.match(first):
            found.append(name)
    return found


SCRIPTS = shell_scripts()


def test_the_scripts_are_found():
    assert {".ci/run", ".ci/system-packages", "deploy/image/python-base.sh"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_shellcheck_passes(script: str):
    result = run([tool("shellcheck"), "--external-sources", script])
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_fails_a_careless_script(tmp_path: Path):
    careless = tmp_path / "careless.sh"
    careless.write_text("#!/usr/bin/env bash\nrm -rf $1/*\ncd $DIR\n", encoding="utf-8")
    result = run([tool("shellcheck"), str(careless)])
    assert result.returncode != 0
    assert "SC2086" in result.stdout  # an unquoted expansion
