"""The simulated Windows machine as detection sees it: evaluate rules, apply installer effects.

``evaluate`` runs the shared rule model (``controller.detection.rules``) against an instance's
``AgentModel`` the way the controller's PowerShell evaluator would on a real machine: paths and
registry keys are case-insensitive, a folder exists when something lies beneath it, a script is
detected when it exits 0 and writes to stdout. ``Effects`` is what an installer leaves behind
(files, folders, registry values, services, MSI products, script results); the agent applies them
on a successful install and removes them on uninstall, and tests set them directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from controller.detection.rules import (
    AllOf,
    AnyOf,
    FileRule,
    FolderRule,
    Hive,
    LeafRule,
    MsiRule,
    RegistryRule,
    ScriptRule,
    ServiceRule,
    compare_versions,
    describe,
    holds,
)
from fleet_sandbox.state import AgentModel, InstalledFile, WindowsService

_ENVIRONMENT = {
    "%programfiles%": "C:\\Program Files",
    "%programfiles(x86)%": "C:\\Program Files (x86)",
    "%programdata%": "C:\\ProgramData",
    "%systemroot%": "C:\\Windows",
    "%windir%": "C:\\Windows",
    "%systemdrive%": "C:",
    "%public%": "C:\\Users\\Public",
}
_VARIABLE = re.compile(r"%[A-Za-z0-9_()]+%")


def normalize_path(path: str) -> str:
    """Case-folded Windows path with well-known variables expanded and separators unified."""

    def expand(match: re.Match[str]) -> str:
        return _ENVIRONMENT.get(match.group(0).lower(), match.group(0))

    text = _VARIABLE.sub(expand, path).replace("/", "\\")
    text = re.sub(r"\\+", r"\\", text).rstrip("\\")
    return text.casefold()


def normalize_key(key: str) -> str:
    return re.sub(r"\\+", r"\\", key.replace("/", "\\")).strip("\\").casefold()


def registry_slot(hive: str, key: str, use_32bit_view: bool) -> tuple[str, str, str]:
    return (hive.upper(), normalize_key(key), "32" if use_32bit_view else "64")


def normalize_product_code(code: str) -> str:
    return code.strip().upper()


# --- evaluation ----------------------------------------------------------------------------------


@dataclass
class Finding:
    """Whether a rule is detected; ``reasons`` say, per leaf, what made it fail or hold."""

    detected: bool
    reasons: list[str] = field(default_factory=list)


def evaluate(rule: AllOf | AnyOf | LeafRule, agent: AgentModel) -> Finding:
    if isinstance(rule, AllOf):
        findings = [evaluate(member, agent) for member in rule.all_of]
        if all(f.detected for f in findings):
            return Finding(True, [r for f in findings for r in f.reasons])
        return Finding(False, [r for f in findings if not f.detected for r in f.reasons])
    if isinstance(rule, AnyOf):
        findings = [evaluate(member, agent) for member in rule.any_of]
        held = [f for f in findings if f.detected]
        if held:
            return Finding(True, held[0].reasons)
        return Finding(False, [r for f in findings for r in f.reasons])
    detected, observed = _leaf(rule, agent)
    return Finding(detected, [f"{describe(rule)} ({observed})"])


def _leaf(rule: LeafRule, agent: AgentModel) -> tuple[bool, str]:
    if isinstance(rule, FileRule):
        return _file(rule, agent)
    if isinstance(rule, FolderRule):
        path = normalize_path(rule.path)
        entry = agent.files.get(path)
        if entry is not None and entry.is_directory:
            return True, "folder found"
        if any(p.startswith(path + "\\") for p in agent.files):
            return True, "folder found"
        return False, "file found, not a folder" if entry is not None else "folder missing"
    if isinstance(rule, RegistryRule):
        return _registry(rule, agent)
    if isinstance(rule, ServiceRule):
        service = agent.services.get(rule.name.casefold())
        if service is None:
            return False, "service missing"
        if rule.check == "exists":
            return True, "service found"
        actual = service.state if rule.check == "state" else service.start_type
        return actual.casefold() == str(rule.value).casefold(), f"found {rule.check} {actual}"
    if isinstance(rule, MsiRule):
        installed = agent.msi_products.get(normalize_product_code(rule.product_code))
        if installed is None:
            return False, "product not installed"
        if rule.operator is None or rule.version is None:
            return True, f"installed, version {installed or 'unknown'}"
        return _compare_version(rule.operator, installed, rule.version)
    return _script(rule, agent)


def _file(rule: FileRule, agent: AgentModel) -> tuple[bool, str]:
    entry = agent.files.get(normalize_path(rule.path))
    if entry is None or entry.is_directory:
        return False, "file missing" if entry is None else "a folder, not a file"
    if rule.check == "exists":
        return True, "file found"
    assert rule.operator is not None
    if rule.check == "size":
        assert isinstance(rule.value, int)
        ok = holds(rule.operator, (entry.size > rule.value) - (entry.size < rule.value))
        return ok, f"found size {entry.size}"
    if entry.version is None:
        return False, "file has no version"
    return _compare_version(rule.operator, entry.version, str(rule.value))


def _compare_version(operator: str, actual: str, expected: str) -> tuple[bool, str]:
    comparison = compare_versions(actual, expected)
    if comparison is None:
        return False, f"found version {actual!r}, not a dotted numeric version"
    return holds(operator, comparison), f"found version {actual}"


def _registry(rule: RegistryRule, agent: AgentModel) -> tuple[bool, str]:
    values = agent.registry.get(registry_slot(rule.hive, rule.key, rule.use_32bit_view))
    if values is None:
        return False, "key missing"
    if rule.check == "exists" and rule.value_name is None:
        return True, "key found"
    name = (rule.value_name or "").casefold()
    if name not in values:
        return False, "value missing"
    actual = values[name]
    if rule.check == "exists":
        return True, "value found"
    assert rule.operator is not None and rule.value is not None
    if rule.check == "string":
        left, right = str(actual).casefold(), str(rule.value).casefold()
        return holds(rule.operator, (left > right) - (left < right)), f"found {actual!r}"
    if rule.check == "integer":
        try:
            number = int(actual)
        except (TypeError, ValueError):
            return False, f"found {actual!r}, not an integer"
        expected = int(rule.value)
        return holds(rule.operator, (number > expected) - (number < expected)), f"found {number}"
    return _compare_version(rule.operator, str(actual), str(rule.value))


def _script(rule: ScriptRule, agent: AgentModel) -> tuple[bool, str]:
    result = agent.script_results.get(rule.sha256)
    if result is None:
        return False, "script exited 0 without output"
    exit_code, stdout = result
    if exit_code != 0:
        return False, f"script exited {exit_code}"
    if not stdout.strip():
        return False, "script exited 0 without output"
    return True, "script exited 0 with output"


# --- effects -------------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FileEffect(_Strict):
    path: StrictStr = Field(min_length=1)
    version: StrictStr | None = None
    size: StrictInt = Field(default=0, ge=0)


class RegistryEffect(_Strict):
    hive: Hive
    key: StrictStr = Field(min_length=1)
    value_name: StrictStr | None = Field(default=None, alias="valueName")
    value: StrictStr | StrictInt | None = None
    use_32bit_view: StrictBool = Field(default=False, alias="use32BitView")


class ServiceEffect(_Strict):
    name: StrictStr = Field(min_length=1)
    state: StrictStr = "Running"
    start_type: StrictStr = Field(default="Automatic", alias="startType")


class MsiEffect(_Strict):
    product_code: StrictStr = Field(alias="productCode", min_length=1)
    version: StrictStr = ""


class ScriptEffect(_Strict):
    """The result a detection script gives on this machine; name it by text or by sha256."""

    script: StrictStr | None = None
    sha256: StrictStr | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    exit_code: StrictInt = Field(default=0, alias="exitCode")
    stdout: StrictStr = ""

    def digest(self) -> str:
        if self.sha256:
            return self.sha256
        if self.script is None:
            raise ValueError("a script effect needs 'script' or 'sha256'")
        return ScriptRule(type="script", script=self.script).sha256


class Effects(_Strict):
    """What an installer leaves on a machine (and what an uninstaller takes away)."""

    files: list[FileEffect] = Field(default_factory=list)
    folders: list[StrictStr] = Field(default_factory=list)
    registry: list[RegistryEffect] = Field(default_factory=list)
    services: list[ServiceEffect] = Field(default_factory=list)
    msi_products: list[MsiEffect] = Field(default_factory=list, alias="msiProducts")
    scripts: list[ScriptEffect] = Field(default_factory=list)


def parse_effects(data: Any) -> Effects:
    """Effects from admin/scenario JSON; a ValueError names what is wrong."""
    effects = Effects.model_validate(data if data is not None else {})
    for script in effects.scripts:
        script.digest()
    return effects


def apply_effects(agent: AgentModel, effects: Effects) -> None:
    for file in effects.files:
        agent.files[normalize_path(file.path)] = InstalledFile(version=file.version, size=file.size)
    for folder in effects.folders:
        agent.files[normalize_path(folder)] = InstalledFile(is_directory=True)
    for entry in effects.registry:
        values = agent.registry.setdefault(
            registry_slot(entry.hive, entry.key, entry.use_32bit_view), {}
        )
        if entry.value_name is not None:
            values[entry.value_name.casefold()] = entry.value if entry.value is not None else ""
    for service in effects.services:
        agent.services[service.name.casefold()] = WindowsService(service.state, service.start_type)
    for product in effects.msi_products:
        agent.msi_products[normalize_product_code(product.product_code)] = product.version
    for script in effects.scripts:
        agent.script_results[script.digest()] = (script.exit_code, script.stdout)


def remove_effects(agent: AgentModel, effects: Effects) -> None:
    for file in effects.files:
        agent.files.pop(normalize_path(file.path), None)
    for folder in effects.folders:
        agent.files.pop(normalize_path(folder), None)
    for entry in effects.registry:
        slot = registry_slot(entry.hive, entry.key, entry.use_32bit_view)
        values = agent.registry.get(slot)
        if values is None:
            continue
        if entry.value_name is not None:
            values.pop(entry.value_name.casefold(), None)
        if entry.value_name is None or not values:
            agent.registry.pop(slot, None)
    for service in effects.services:
        agent.services.pop(service.name.casefold(), None)
    for product in effects.msi_products:
        agent.msi_products.pop(normalize_product_code(product.product_code), None)
    for script in effects.scripts:
        agent.script_results.pop(script.digest(), None)


def agent_to_json(agent: AgentModel) -> dict[str, Any]:
    """The agent model as the admin API shows it."""
    return {
        "files": {
            path: {"version": f.version, "size": f.size, "isDirectory": f.is_directory}
            for path, f in sorted(agent.files.items())
        },
        "registry": [
            {"hive": hive, "key": key, "view": view, "values": dict(sorted(values.items()))}
            for (hive, key, view), values in sorted(agent.registry.items())
        ],
        "services": {
            name: {"state": s.state, "startType": s.start_type}
            for name, s in sorted(agent.services.items())
        },
        "msiProducts": dict(sorted(agent.msi_products.items())),
        "distributorPackages": dict(sorted(agent.distributor_packages.items())),
        "scriptResults": {
            digest: {"exitCode": code, "stdout": out}
            for digest, (code, out) in sorted(agent.script_results.items())
        },
    }
