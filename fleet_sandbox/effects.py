"""What installers leave on a simulated machine, and what their uninstallers take away.

``Effects`` is the JSON the admin API, scenarios and tests use both for a package's installer
(``POST /_sandbox/agent/effects``) and for a machine's state (``POST /_sandbox/agent/state``, which
also takes the machine-only fields of ``MachineState``). Installing creates files with their folders,
registry keys with their parents, services, Windows Installer products with their uninstall keys.
Uninstalling behaves like most real uninstallers: files, values, services and products go, but the
folders and keys the installer created stay behind, empty; a product's uninstall key goes with the
product (an orphaned key is machine state you set on purpose).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from fleet_sandbox import machine
from fleet_sandbox.machine import (
    AgentModel,
    FileEntry,
    MsiProduct,
    RegistryValue,
    ScriptBehaviour,
    WindowsService,
)

RegistryType = Literal[
    "REG_SZ", "REG_EXPAND_SZ", "REG_MULTI_SZ", "REG_DWORD", "REG_QWORD", "REG_BINARY", "REG_NONE"
]
_FILE_VERSION = re.compile(r"[0-9]{1,5}(?:\.[0-9]{1,5}){0,3}")
_GUID = re.compile(
    r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}"
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)


class FileEffect(_Strict):
    path: StrictStr = Field(min_length=1)
    version: StrictStr | None = None  # up to four parts of 0..65535; stored as four
    size: StrictInt = Field(default=0, ge=0)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _FILE_VERSION.fullmatch(value) or any(int(p) > 65535 for p in value.split(".")):
            raise ValueError(f"a file version has up to four parts of 0..65535, got {value!r}")
        parts = [str(int(p)) for p in value.split(".")]
        return ".".join(parts + ["0"] * (4 - len(parts)))


class RegistryEffect(_Strict):
    hive: Literal["HKLM", "HKU"] = "HKLM"
    key: StrictStr = Field(min_length=1)
    value_name: StrictStr | None = Field(default=None, alias="valueName")
    type: RegistryType | None = None
    value: StrictStr | StrictInt | list[StrictStr] | None = None
    use_32bit_view: StrictBool = Field(default=False, alias="use32BitView")

    @model_validator(mode="after")
    def _typed(self) -> RegistryEffect:
        if self.value_name is None:
            if self.type is not None or self.value is not None:
                raise ValueError("a value needs 'valueName' ('' for the default value)")
            return self
        kind = self.type or _inferred_type(self.value)
        _check_data(kind, self.value)
        self.type = kind
        return self

    def physical(self) -> str:
        if self.hive == "HKU":
            return f"HKU\\{self.key}"
        return machine.physical_key(self.key, self.use_32bit_view)

    def data(self) -> str | int | list[str] | bytes | None:
        if self.type == "REG_BINARY" or (self.type == "REG_NONE" and isinstance(self.value, str)):
            return bytes.fromhex(str(self.value))
        if self.value is None and self.type in ("REG_SZ", "REG_EXPAND_SZ"):
            return ""
        return self.value


def _inferred_type(value: object) -> RegistryType:
    if isinstance(value, list):
        return "REG_MULTI_SZ"
    if isinstance(value, int):
        return "REG_DWORD" if value <= 0xFFFFFFFF else "REG_QWORD"
    return "REG_SZ"


def _check_data(kind: str, value: object) -> None:
    ranges = {"REG_DWORD": 2**32 - 1, "REG_QWORD": 2**64 - 1}
    if kind in ranges:
        if not isinstance(value, int) or not 0 <= value <= ranges[kind]:
            raise ValueError(f"{kind} holds an integer from 0 to {ranges[kind]}, got {value!r}")
    elif kind in ("REG_SZ", "REG_EXPAND_SZ"):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{kind} holds text, got {value!r}")
    elif kind == "REG_MULTI_SZ":
        if not isinstance(value, list):
            raise ValueError(f"REG_MULTI_SZ holds a list of strings, got {value!r}")
    elif kind in ("REG_BINARY", "REG_NONE"):
        if value is None and kind == "REG_NONE":
            return
        if not isinstance(value, str) or not re.fullmatch(r"(?:[0-9a-fA-F]{2})*", value):
            raise ValueError(f"{kind} holds hex digits such as '0a1b', got {value!r}")


class ServiceEffect(_Strict):
    name: StrictStr = Field(min_length=1)
    display_name: StrictStr | None = Field(default=None, alias="displayName")
    state: StrictStr = "Running"
    start_type: StrictStr = Field(default="Automatic", alias="startType")


class MsiEffect(_Strict):
    """A Windows Installer product and, unless ``uninstallKey`` is false, its uninstall key."""

    product_code: StrictStr = Field(alias="productCode")
    version: StrictStr = ""
    state: Literal["installed", "advertised", "otherUser"] = "installed"
    display_name: StrictStr | None = Field(default=None, alias="displayName")
    uninstall_key: StrictBool = Field(default=True, alias="uninstallKey")
    use_32bit_view: StrictBool = Field(default=False, alias="use32BitView")

    @field_validator("product_code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not _GUID.fullmatch(value.strip()):
            raise ValueError(f"a product code is a GUID in braces, got {value!r}")
        return value.strip().upper()

    def uninstall_key_path(self) -> str:
        return machine.physical_key(
            f"{machine.UNINSTALL_KEY}\\{self.product_code}", self.use_32bit_view
        )


class ScriptEffect(_Strict):
    """How a detection script behaves here; name it by its text or by the sha256 of its UTF-8."""

    script: StrictStr | None = None
    sha256: StrictStr | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    exit_code: StrictInt = Field(default=0, alias="exitCode")
    stdout: StrictStr = ""
    stderr: StrictStr = ""
    runs_for_seconds: StrictInt = Field(default=0, alias="runsForSeconds", ge=0)

    @model_validator(mode="after")
    def _named(self) -> ScriptEffect:
        if (self.script is None) == (self.sha256 is None):
            raise ValueError("a script effect needs exactly one of 'script' or 'sha256'")
        return self

    def digest(self) -> str:
        if self.sha256:
            return self.sha256
        return hashlib.sha256(str(self.script).encode("utf-8")).hexdigest()


class Effects(_Strict):
    """What an installer leaves on a machine (and what its uninstaller takes away)."""

    files: list[FileEffect] = Field(default_factory=list)
    folders: list[StrictStr] = Field(default_factory=list)
    registry: list[RegistryEffect] = Field(default_factory=list)
    services: list[ServiceEffect] = Field(default_factory=list)
    msi_products: list[MsiEffect] = Field(default_factory=list, alias="msiProducts")
    scripts: list[ScriptEffect] = Field(default_factory=list)


class MachineState(Effects):
    """Effects plus what only a machine has: LocalSystem's environment and Windows Installer."""

    environment: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    windows_installer: Literal["available", "unavailable"] | None = Field(
        default=None, alias="windowsInstaller"
    )


def parse_effects(data: Any) -> Effects:
    """Effects from admin/scenario JSON; pydantic's ValidationError names what is wrong."""
    return Effects.model_validate(data if data is not None else {})


def parse_machine(data: Any) -> MachineState:
    return MachineState.model_validate(data if data is not None else {})


def apply_effects(agent: AgentModel, effects: Effects) -> None:
    """Install: everything in ``effects`` appears, with the folders and keys above it."""
    if isinstance(effects, MachineState):
        agent.environment.update(effects.environment)
        if effects.windows_installer is not None:
            agent.windows_installer_available = effects.windows_installer == "available"
    for file in effects.files:
        path = machine.expand(agent, file.path)
        machine.add_file(agent, path, FileEntry(path, version=file.version, size=file.size))
    for folder in effects.folders:
        path = machine.expand(agent, folder)
        machine.add_file(agent, path, FileEntry(path, is_directory=True))
    for entry in effects.registry:
        key = machine.add_key(agent, entry.physical())
        if entry.value_name is not None:
            key.values[machine.fold(entry.value_name)] = RegistryValue(
                entry.value_name, str(entry.type), entry.data()
            )
    for service in effects.services:
        agent.services[machine.fold(service.name)] = WindowsService(
            service.name, service.display_name or service.name, service.state, service.start_type
        )
    for product in effects.msi_products:
        agent.msi_products[product.product_code] = MsiProduct(
            product.product_code, product.state, product.version
        )
        if product.uninstall_key and product.state == "installed":
            _write_uninstall_key(agent, product)
    for script in effects.scripts:
        agent.scripts[script.digest()] = ScriptBehaviour(
            script.exit_code, script.stdout, script.stderr, script.runs_for_seconds
        )


def _write_uninstall_key(agent: AgentModel, product: MsiEffect) -> None:
    """The Add/Remove Programs entry Windows Installer writes for a product."""
    key = machine.add_key(agent, product.uninstall_key_path())
    values: dict[str, tuple[str, str | int]] = {
        "DisplayName": ("REG_SZ", product.display_name or product.product_code),
        "DisplayVersion": ("REG_SZ", product.version),
        "WindowsInstaller": ("REG_DWORD", 1),
        "UninstallString": ("REG_EXPAND_SZ", f"MsiExec.exe /X{product.product_code}"),
    }
    for name, (kind, data) in values.items():
        key.values[machine.fold(name)] = RegistryValue(name, kind, data)


def remove_effects(agent: AgentModel, effects: Effects) -> None:
    """Uninstall: files, values, services and products go; folders and keys stay, empty."""
    for file in effects.files:
        agent.files.pop(machine.fold(machine.expand(agent, file.path)), None)
    for entry in effects.registry:
        if entry.value_name is None:
            continue
        key = agent.registry.get(machine.fold(entry.physical()))
        if key is not None:
            key.values.pop(machine.fold(entry.value_name), None)
    for service in effects.services:
        agent.services.pop(machine.fold(service.name), None)
    for product in effects.msi_products:
        agent.msi_products.pop(product.product_code, None)
        if product.uninstall_key:
            agent.registry.pop(machine.fold(product.uninstall_key_path()), None)
    for script in effects.scripts:
        agent.scripts.pop(script.digest(), None)
