"""The example packages are fit for a real fleet, as far as can be checked without Windows.

Their scripts are parsed (tree-sitter-powershell: syntax, not an interpreter) and held to what a
fleet needs: idempotent, Windows Installer's exit codes handled (1605, 1614, 1618, 1641, 3010),
logs in one known folder, arguments quoted, no wait on a process tree. Their binaries are stubs
that say so, and the sandbox's demo scenario knows what each real installer leaves, which is
exactly what each package's detection rule looks for, and what its uninstaller takes away.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest
import yaml

from fleet_sandbox import detection
from fleet_sandbox.effects import apply_effects, parse_effects, remove_effects
from fleet_sandbox.machine import AgentModel
from tests.detection.powershell import Script, walk

PACKAGES = Path(__file__).resolve().parents[2] / "desired-state" / "packages"
SCRIPTS = sorted(PACKAGES.glob("*/*.ps1"))
DEMO = yaml.safe_load(
    resources.files("fleet_sandbox").joinpath("scenarios", "demo.yaml").read_text(encoding="utf-8")
)
STUB = "fleet-controller example stub:"


def _package(directory: Path) -> dict:
    return yaml.safe_load((directory / "package.yaml").read_text(encoding="utf-8"))["spec"]


def _script(path: Path) -> Script:
    return Script(path.read_text(encoding="utf-8"))


def _integers(script: Script) -> set[int]:
    return {int(script.span(n)) for n in walk(script.root) if n.type == "decimal_integer_literal"}


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_script_parses(path: Path):
    assert _script(path).errors() == []


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_script_waits_on_a_process_tree_or_builds_unquoted_arguments(path: Path):
    """Start-Process -Wait waits for everything a setup starts (the application it launches);
    -ArgumentList @(...) joins arguments with spaces, unquoted."""
    script = _script(path)
    assert "Start-Process" not in {script.command_name(c) for c in script.commands(script.root)}
    for literal in script.literals([script.root]):
        for placeholder in re.finditer(r"\{\d\}", literal):
            before = literal[: placeholder.start()]
            quoted = before.endswith('"') and literal[placeholder.end() :].startswith('"')
            nsis_in_place = before.endswith("_?=")  # NSIS takes _?= last and unquoted
            if "/" in literal:  # a command line
                assert quoted or nsis_in_place, f"{literal!r}: {placeholder.group()} unquoted"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_script_logs_in_the_known_folder(path: Path):
    script = _script(path)
    text = script.text
    assert "Join-Path $env:ProgramData 'fleet-controller\\logs'" in text
    assert "Add-Content -LiteralPath $Log" in text
    assert f"%ProgramData%\\fleet-controller\\logs\\{_package(path.parent)['name']}" in text


@pytest.mark.parametrize(
    ("path", "codes"),
    [
        ("acme-viewer/install.ps1", {0, 1618, 1641, 3010}),
        ("acme-viewer/uninstall.ps1", {0, 1605, 1614, 1618, 1641, 3010}),
        ("contoso-notes/install.ps1", {0, 1618, 1641, 3010}),
        ("contoso-notes/uninstall.ps1", {0, 3010}),
    ],
)
def test_installer_exit_codes_are_handled(path: str, codes: set[int]):
    assert codes <= _integers(_script(PACKAGES / path))


@pytest.mark.parametrize("path", ["acme-viewer/install.ps1", "contoso-notes/install.ps1"])
def test_1618_is_retried_in_a_loop_then_returned(path: str):
    script = _script(PACKAGES / path)
    loop = next(n for n in walk(script.root) if n.type == "for_statement")
    assert "Start-Sleep" in {script.command_name(c) for c in script.commands(loop)}
    assert script.exits()[-1][1] == "1618"


def test_the_demo_scenario_retries_as_long_as_the_msi_install_script():
    assigned = _script(PACKAGES / "acme-viewer" / "install.ps1").assignments()
    budget = int(assigned["$Attempts"]) * int(assigned["$DelaySeconds"])
    acme = DEMO["packages"]["AcmeViewer"]
    assert acme["windowsInstaller"] is True and acme["busyRetrySeconds"] == budget
    assert DEMO["agents"]["installerBusyAfterBootSeconds"] < budget


def test_installs_are_idempotent():
    acme = _script(PACKAGES / "acme-viewer" / "install.ps1")
    assert ".InvokeMember" in acme.calls([acme.functions["get-productstate"]])
    contoso = _script(PACKAGES / "contoso-notes" / "install.ps1")
    assert "Get-InstalledVersion" in contoso.calls([contoso.root])
    fabrikam = _script(PACKAGES / "fabrikam-agent" / "install.ps1")
    creation = next(
        c for c in fabrikam.commands(fabrikam.root) if fabrikam.command_name(c) == "New-Service"
    )
    branch = creation.parent
    while branch is not None and branch.type != "if_statement":
        branch = branch.parent
    assert branch is not None, "New-Service refuses an existing service: create it only when absent"
    assert "Invoke-CimMethod" in fabrikam.calls([branch])


@pytest.mark.parametrize("directory", sorted(p for p in PACKAGES.iterdir() if p.is_dir()))
def test_binaries_are_stubs_the_sandbox_knows(directory: Path):
    spec = _package(directory)
    shipped = [directory / name for p in spec["platforms"] for name in p["files"]]
    binaries = [path for path in shipped if path.suffix.lower() in (".msi", ".exe")]
    assert binaries, f"{directory.name} ships no installer or program"
    for path in binaries:
        text = path.read_text(encoding="utf-8")
        assert text.startswith(STUB), f"{path} is neither a real binary nor a declared stub"
        assert f"packages.{spec['name']}" in text
    assert spec["name"] in DEMO["packages"]


@pytest.mark.parametrize("directory", sorted(p for p in PACKAGES.iterdir() if p.is_dir()))
def test_detection_finds_what_the_installer_leaves_and_not_what_the_uninstaller_leaves(
    directory: Path,
):
    spec = _package(directory)
    rules = detection.read_rules(json.dumps(spec["detection"]))
    effects = parse_effects(DEMO["packages"][spec["name"]]["effects"])
    machine = AgentModel()
    assert detection.evaluate(rules, machine).verdict == "not-detected"
    apply_effects(machine, effects)
    installed = detection.evaluate(rules, machine)
    assert installed.verdict == "detected", installed.reasons
    remove_effects(machine, effects)
    assert machine.files, "the uninstaller leaves its folders behind"
    assert detection.evaluate(rules, machine).verdict == "not-detected"
