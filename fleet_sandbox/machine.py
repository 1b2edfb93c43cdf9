"""The simulated Windows machine behind each SSM agent, modelled the way Windows behaves.

What detection can observe lives here: a file system (folders are explicit, creating a file creates
its folders), the registry in its physical layout (a 32-bit program's view of ``HKLM\\SOFTWARE`` is
redirected to ``WOW6432Node`` except for the keys Windows shares between views), typed registry
values, services with a service name and a display name, Windows Installer's product records kept
apart from the Add/Remove Programs (uninstall) keys, LocalSystem's environment, and how custom
detection scripts behave. Names compare the way Windows compares them: ordinal, ignoring case by
simple upper-casing of each UTF-16 unit.

This module knows nothing of detection rules; ``detection`` evaluates rules against it and
``effects`` changes it the way installers and uninstallers do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SYSTEM_ENVIRONMENT: dict[str, str] = {
    "ProgramFiles": "C:\\Program Files",
    "ProgramFiles(x86)": "C:\\Program Files (x86)",
    "ProgramW6432": "C:\\Program Files",
    "CommonProgramFiles": "C:\\Program Files\\Common Files",
    "CommonProgramFiles(x86)": "C:\\Program Files (x86)\\Common Files",
    "CommonProgramW6432": "C:\\Program Files\\Common Files",
    "ProgramData": "C:\\ProgramData",
    "ALLUSERSPROFILE": "C:\\ProgramData",
    "SystemRoot": "C:\\Windows",
    "windir": "C:\\Windows",
    "SystemDrive": "C:",
    "PUBLIC": "C:\\Users\\Public",
    # What LocalSystem's per-user variables really point at (why rules may not use them).
    "APPDATA": "C:\\Windows\\system32\\config\\systemprofile\\AppData\\Roaming",
    "LOCALAPPDATA": "C:\\Windows\\system32\\config\\systemprofile\\AppData\\Local",
    "USERPROFILE": "C:\\Windows\\system32\\config\\systemprofile",
    "TEMP": "C:\\Windows\\TEMP",
    "TMP": "C:\\Windows\\TEMP",
}
"""The 64-bit environment of a LocalSystem process on Windows Server 2022 (SSM Agent's)."""

REGISTRY_VALUE_TYPES = (
    "REG_SZ",
    "REG_EXPAND_SZ",
    "REG_MULTI_SZ",
    "REG_DWORD",
    "REG_QWORD",
    "REG_BINARY",
    "REG_NONE",
)
MSI_STATES = ("installed", "advertised", "otherUser")
UNINSTALL_KEY = "SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall"

# Microsoft, "Registry Keys Affected by WOW64", Windows 7 / Server 2008 R2 and later: below
# HKLM\SOFTWARE everything is redirected for 32-bit programs except these shared keys (relative to
# SOFTWARE); HKLM\SOFTWARE\Classes is shared except the subkeys in _REDIRECTED_CLASSES.
_SHARED_SOFTWARE_KEYS = (
    "Classes",
    "Clients",
    "Microsoft\\COM3",
    "Microsoft\\Cryptography\\Calais\\Current",
    "Microsoft\\Cryptography\\Calais\\Readers",
    "Microsoft\\Cryptography\\Services",
    "Microsoft\\CTF\\SystemShared",
    "Microsoft\\CTF\\TIP",
    "Microsoft\\DFS",
    "Microsoft\\Driver Signing",
    "Microsoft\\EnterpriseCertificates",
    "Microsoft\\EventSystem",
    "Microsoft\\MSMQ",
    "Microsoft\\Non-Driver Signing",
    "Microsoft\\Notepad\\DefaultFonts",
    "Microsoft\\OLE",
    "Microsoft\\RAS",
    "Microsoft\\RPC",
    "Microsoft\\SystemCertificates",
    "Microsoft\\TermServLicensing",
    "Microsoft\\Transaction Server",
    "Microsoft\\Windows\\CurrentVersion\\App Paths",
    "Microsoft\\Windows\\CurrentVersion\\Control Panel\\Cursors\\Schemes",
    "Microsoft\\Windows\\CurrentVersion\\Explorer\\AutoplayHandlers",
    "Microsoft\\Windows\\CurrentVersion\\Explorer\\DriveIcons",
    "Microsoft\\Windows\\CurrentVersion\\Explorer\\KindMap",
    "Microsoft\\Windows\\CurrentVersion\\Group Policy",
    "Microsoft\\Windows\\CurrentVersion\\Policies",
    "Microsoft\\Windows\\CurrentVersion\\PreviewHandlers",
    "Microsoft\\Windows\\CurrentVersion\\Setup",
    "Microsoft\\Windows\\CurrentVersion\\Telephony",
    "Microsoft\\Windows NT\\CurrentVersion\\Console",
    "Microsoft\\Windows NT\\CurrentVersion\\FontDpi",
    "Microsoft\\Windows NT\\CurrentVersion\\FontLink",
    "Microsoft\\Windows NT\\CurrentVersion\\FontMapper",
    "Microsoft\\Windows NT\\CurrentVersion\\Fonts",
    "Microsoft\\Windows NT\\CurrentVersion\\FontSubstitutes",
    "Microsoft\\Windows NT\\CurrentVersion\\Gre_Initialize",
    "Microsoft\\Windows NT\\CurrentVersion\\Image File Execution Options",
    "Microsoft\\Windows NT\\CurrentVersion\\LanguagePack",
    "Microsoft\\Windows NT\\CurrentVersion\\NetworkCards",
    "Microsoft\\Windows NT\\CurrentVersion\\Perflib",
    "Microsoft\\Windows NT\\CurrentVersion\\Ports",
    "Microsoft\\Windows NT\\CurrentVersion\\Print",
    "Microsoft\\Windows NT\\CurrentVersion\\ProfileList",
    "Microsoft\\Windows NT\\CurrentVersion\\Time Zones",
    "Policies",
    "RegisteredApplications",
)
_REDIRECTED_CLASSES = ("CLSID", "DirectShow", "Interface", "Media Type", "MediaFoundation")

_BASELINE_FOLDERS = (
    "C:\\Windows\\system32\\config\\systemprofile",
    "C:\\Windows\\TEMP",
    "C:\\Program Files\\Common Files",
    "C:\\Program Files (x86)\\Common Files",
    "C:\\ProgramData",
    "C:\\Users\\Public",
)
_BASELINE_KEYS = (
    f"HKLM\\{UNINSTALL_KEY}",
    "HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\Windows\\CurrentVersion\\Uninstall",
    "HKLM\\SOFTWARE\\Classes\\WOW6432Node\\CLSID",
    "HKLM\\SOFTWARE\\Policies",
    "HKLM\\SYSTEM\\CurrentControlSet\\Services",
)


def fold(text: str) -> str:
    """Windows' case-insensitive form: simple upper case of every BMP character (as .NET's
    OrdinalIgnoreCase and NTFS do); characters whose upper case is several characters stay."""
    out = []
    for char in text:
        upper = char.upper()
        out.append(upper if len(upper) == 1 and ord(char) < 0x10000 else char)
    return "".join(out)


def ordinal_compare(left: str, right: str) -> int:
    """-1, 0 or 1 comparing ``fold``-ed texts by UTF-16 code units, as OrdinalIgnoreCase does."""
    a, b = fold(left).encode("utf-16-be"), fold(right).encode("utf-16-be")
    return (a > b) - (a < b)


def _ancestors(path: str) -> list[str]:
    """``C:\\a\\b`` -> [``C:\\a``, ``C:\\a\\b``] (the drive root is implicit)."""
    parts = path.split("\\")
    return ["\\".join(parts[: n + 1]) for n in range(1, len(parts))]


BASELINE_FOLDERS = frozenset(fold(a) for path in _BASELINE_FOLDERS for a in _ancestors(path))
BASELINE_KEYS = frozenset(fold(a) for path in _BASELINE_KEYS for a in _ancestors(path))


@dataclass
class FileEntry:
    """A file or a folder; ``path`` keeps the case it was created with."""

    path: str
    is_directory: bool = False
    version: str | None = None  # the version resource's four parts, "a.b.c.d"
    size: int = 0


@dataclass
class RegistryValue:
    name: str
    type: str  # one of REGISTRY_VALUE_TYPES
    data: str | int | list[str] | bytes | None


@dataclass
class RegistryKey:
    """A key at its physical location (``HKLM\\SOFTWARE\\WOW6432Node\\...`` for 32-bit data)."""

    path: str
    values: dict[str, RegistryValue] = field(default_factory=dict)  # fold(name) -> value


@dataclass
class WindowsService:
    name: str
    display_name: str
    state: str = "Running"  # ServiceControllerStatus: Running, Stopped, Paused, ...
    start_type: str = "Automatic"  # ServiceStartMode: Automatic, Manual, Disabled


@dataclass
class MsiProduct:
    """What Windows Installer records of a product (its uninstall key is separate registry data)."""

    code: str  # upper case, with braces
    state: str = "installed"  # installed | advertised | otherUser
    version: str = ""  # ProductInfo VersionString; '' when none is recorded


@dataclass
class ScriptBehaviour:
    """How a custom detection script behaves on this machine."""

    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    runs_for_seconds: int = 0


@dataclass
class AgentModel:
    """What the simulated SSM agent's Windows machine holds."""

    files: dict[str, FileEntry] = field(default_factory=dict)  # fold(path) -> entry
    registry: dict[str, RegistryKey] = field(default_factory=dict)  # fold(physical) -> key
    services: dict[str, WindowsService] = field(default_factory=dict)  # fold(name) -> service
    msi_products: dict[str, MsiProduct] = field(default_factory=dict)  # CODE -> product
    windows_installer_available: bool = True
    environment: dict[str, str] = field(default_factory=dict)  # overrides SYSTEM_ENVIRONMENT
    # What aws:configurePackage believes is installed (Distributor's own record), name -> version.
    distributor_packages: dict[str, str] = field(default_factory=dict)
    scripts: dict[str, ScriptBehaviour] = field(default_factory=dict)  # sha256 of text -> behaviour
    booted_at: datetime | None = None


# --- names and places ----------------------------------------------------------------------------


def variable(agent: AgentModel, name: str) -> str | None:
    """LocalSystem's value of an environment variable (names compare case-insensitively)."""
    wanted = fold(name)
    for source in (agent.environment, SYSTEM_ENVIRONMENT):
        for key, value in source.items():
            if fold(key) == wanted:
                return value
    return None


def expand(agent: AgentModel, path: str) -> str:
    """A leading ``%NAME%`` replaced by LocalSystem's value; ``/`` becomes ``\\``; one trailing
    separator dropped. (Which paths are acceptable is the caller's business.)"""
    if path.startswith("%"):
        end = path.find("%", 1)
        if end > 0:
            value = variable(agent, path[1:end])
            if value is not None:
                path = value + path[end + 1 :]
    path = path.replace("/", "\\")
    if len(path) > 3 and path.endswith("\\"):
        path = path[:-1]
    return path


def file_entry(agent: AgentModel, path: str) -> FileEntry | None:
    """The file or folder at an expanded absolute path (drive roots and Windows' own folders
    always exist as folders)."""
    key = fold(path)
    found = agent.files.get(key)
    if found is not None:
        return found
    if key in BASELINE_FOLDERS or (len(key) == 3 and key.endswith(":\\") and key[0] == "C"):
        return FileEntry(path, is_directory=True)
    return None


def add_file(agent: AgentModel, path: str, entry: FileEntry) -> None:
    """Create a file or folder and every folder above it, as an installer does."""
    for folder in _ancestors(path)[:-1]:
        if fold(folder) not in BASELINE_FOLDERS:
            agent.files.setdefault(fold(folder), FileEntry(folder, is_directory=True))
    agent.files[fold(path)] = entry


def physical_key(key: str, use_32bit_view: bool) -> str:
    """Where ``HKLM\\<key>`` seen through a registry view is stored (WOW64 redirection)."""
    if not use_32bit_view:
        return f"HKLM\\{key}"
    parts = key.split("\\")
    if fold(parts[0]) != "SOFTWARE":
        return f"HKLM\\{key}"  # only HKLM\SOFTWARE is redirected
    rest = parts[1:]
    if not rest:
        return "HKLM\\SOFTWARE\\WOW6432Node"
    if fold(rest[0]) == "CLASSES":
        if len(rest) > 1 and any(fold(rest[1]) == fold(r) for r in _REDIRECTED_CLASSES):
            return "HKLM\\SOFTWARE\\Classes\\WOW6432Node\\" + "\\".join(rest[1:])
        return f"HKLM\\{key}"
    if fold(rest[0]) == "WOW6432NODE":
        return f"HKLM\\{key}"
    folded = [fold(part) for part in rest]
    for shared in _SHARED_SOFTWARE_KEYS:
        prefix = [fold(part) for part in shared.split("\\")]
        if folded[: len(prefix)] == prefix:
            return f"HKLM\\{key}"
    return "HKLM\\SOFTWARE\\WOW6432Node\\" + "\\".join(rest)


def registry_key(agent: AgentModel, physical: str) -> RegistryKey | None:
    found = agent.registry.get(fold(physical))
    if found is None and fold(physical) in BASELINE_KEYS:
        return RegistryKey(physical)
    return found


def add_key(agent: AgentModel, physical: str) -> RegistryKey:
    """Create a key and every key above it (below the hive), as RegCreateKeyEx does."""
    for ancestor in _ancestors(physical)[:-1]:
        if fold(ancestor) not in BASELINE_KEYS:
            agent.registry.setdefault(fold(ancestor), RegistryKey(ancestor))
    return agent.registry.setdefault(fold(physical), RegistryKey(physical))


def service(agent: AgentModel, name: str) -> WindowsService | None:
    """A service by its exact service name (never its display name, never a pattern)."""
    return agent.services.get(fold(name))


def script(agent: AgentModel, sha256: str) -> ScriptBehaviour | None:
    return agent.scripts.get(sha256)


# --- what the admin API shows --------------------------------------------------------------------


def machine_to_json(agent: AgentModel) -> dict[str, Any]:
    return {
        "files": {
            entry.path: {
                "isDirectory": entry.is_directory,
                **({} if entry.is_directory else {"version": entry.version, "size": entry.size}),
            }
            for _, entry in sorted(agent.files.items())
        },
        "registry": {
            key.path: {
                value.name: {"type": value.type, "value": _value_json(value)}
                for _, value in sorted(key.values.items())
            }
            for _, key in sorted(agent.registry.items())
        },
        "services": {
            s.name: {"displayName": s.display_name, "state": s.state, "startType": s.start_type}
            for _, s in sorted(agent.services.items())
        },
        "msiProducts": {
            code: {"state": p.state, "version": p.version}
            for code, p in sorted(agent.msi_products.items())
        },
        "windowsInstaller": "available" if agent.windows_installer_available else "unavailable",
        "environment": dict(sorted(agent.environment.items())),
        "distributorPackages": dict(sorted(agent.distributor_packages.items())),
        "scripts": {
            digest: {
                "exitCode": s.exit_code,
                "stdout": s.stdout,
                "stderr": s.stderr,
                "runsForSeconds": s.runs_for_seconds,
            }
            for digest, s in sorted(agent.scripts.items())
        },
        "bootedAt": agent.booted_at.isoformat() if agent.booted_at else None,
    }


def _value_json(value: RegistryValue) -> Any:
    if isinstance(value.data, bytes):
        return value.data.hex()
    return value.data
