"""Desired state for package tests: Package directories with real files, Associations, a fleet."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from tests.engine.helpers import CONTROLLER_ID, controller, load, writes
from tests.sandbox._ssm_helpers import add_instance, admin_get, agent_state, run_agents

BUCKET = "packages-test"
APP_EXE = "C:\\Program Files\\Acme\\acme.exe"
ACME_RULES: dict[str, Any] = {
    "allOf": [
        {"type": "file", "path": APP_EXE, "check": "version", "operator": "ge", "value": "1.0"},
        {"type": "service", "name": "AcmeSvc", "check": "state", "value": "Running"},
    ]
}
ACME_EFFECTS = {
    "files": [{"path": APP_EXE, "version": "1.0.0", "size": 2048}],
    "services": [{"name": "AcmeSvc", "state": "Running", "startType": "Automatic"}],
}

__all__ = [
    "ACME_EFFECTS",
    "ACME_RULES",
    "BUCKET",
    "CONTROLLER_ID",
    "add_instance",
    "admin_get",
    "agent_state",
    "association_yaml",
    "controller",
    "load",
    "minimal_package",
    "minimal_package_yaml",
    "package_dir",
    "run_agents",
    "writes",
]


def package_dir(
    root: Path,
    name: str = "acme",
    package: str = "Acme",
    version: str = "1.0.0",
    keep: int = 5,
    rules: dict[str, Any] | None = None,
    payload: bytes = b"acme payload",
    bucket: str = BUCKET,
) -> Path:
    """A Package manifest with install.ps1, uninstall.ps1 and one payload file beside it."""
    directory = root / name
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "install.ps1").write_text(
        "Start-Process msiexec.exe -ArgumentList '/i app.msi /qn' -Wait\n"
    )
    (directory / "uninstall.ps1").write_text(
        "Start-Process msiexec.exe -ArgumentList '/x app.msi /qn' -Wait\n"
    )
    (directory / "app.msi").write_bytes(payload)
    detection = json.dumps(rules or ACME_RULES)
    (directory / "package.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: fleet-controller/v1alpha1
            kind: Package
            metadata:
              name: {name}
            spec:
              name: {package}
              version: "{version}"
              publisher: Acme Corp
              artifacts: {{bucket: {bucket}, prefix: distributor}}
              keepVersions: {keep}
              platforms:
                - arch: x86_64
                  files: [install.ps1, uninstall.ps1, app.msi]
              detection: {detection}
            """
        )
    )
    return directory


def minimal_package_yaml(files: list[str], name: str = "app") -> str:
    """A Package whose one zip holds install.ps1, uninstall.ps1 and ``files`` (JSON strings are
    YAML double-quoted scalars, so any text, NUL and newlines included, is written escaped).
    The files list is on line 11."""
    listed = json.dumps(["install.ps1", "uninstall.ps1", *files])
    return textwrap.dedent(
        f"""\
        apiVersion: fleet-controller/v1alpha1
        kind: Package
        metadata:
          name: {name}
        spec:
          name: {name.capitalize()}
          version: "1.0.0"
          publisher: Acme
          artifacts: {{bucket: {BUCKET}}}
          platforms:
            - files: {listed}
          detection: {{type: file, path: "C:\\\\{name}.exe", check: exists}}
        """
    )


def minimal_package(directory: Path, files: list[str], name: str = "app") -> Path:
    """``directory`` with install.ps1, uninstall.ps1 and a minimal_package_yaml manifest."""
    directory.mkdir(parents=True, exist_ok=True)
    for script in ("install.ps1", "uninstall.ps1"):
        (directory / script).write_text(f"Write-Output {script}\n")
    (directory / "package.yaml").write_text(minimal_package_yaml(files, name))
    return directory


def association_yaml(
    name: str,
    package: str = "acme",
    tags: str = "{App: Acme}",
    schedule: str = "",
    extra: str = "",
) -> str:
    return textwrap.dedent(
        f"""\
        apiVersion: fleet-controller/v1alpha1
        kind: Association
        metadata:
          name: {name}
        spec:
          package: {{name: {package}}}
          targets:
            tags: {tags}
          complianceSeverity: HIGH
        """
    ) + "".join(f"  {line}\n" for line in (schedule + "\n" + extra).strip().splitlines() if line)
