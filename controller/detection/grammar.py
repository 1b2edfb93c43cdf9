"""What a detection rule may name, so that LocalSystem on Windows reads exactly what the author meant.

Each ``*_problem`` function returns why a value cannot be evaluated truthfully, or None. The rules
are SPEC.md's ("What a rule may name"); the PowerShell evaluator refuses the same values on its own
and the sandbox's evaluator implements them again from the specification, sharing no code.
"""

from __future__ import annotations

import re

MACHINE_VARIABLES: tuple[str, ...] = (
    "ProgramFiles",
    "ProgramFiles(x86)",
    "ProgramW6432",
    "CommonProgramFiles",
    "CommonProgramFiles(x86)",
    "CommonProgramW6432",
    "ProgramData",
    "ALLUSERSPROFILE",
    "SystemRoot",
    "windir",
    "SystemDrive",
    "PUBLIC",
)
"""Variables whose value under LocalSystem is the machine's own (never one user's profile)."""

PER_USER_VARIABLES: tuple[str, ...] = (
    "APPDATA",
    "LOCALAPPDATA",
    "USERPROFILE",
    "TEMP",
    "TMP",
    "HOMEDRIVE",
    "HOMEPATH",
    "HOMESHARE",
    "USERNAME",
    "USERDOMAIN",
    "OneDrive",
    "OneDriveCommercial",
)
"""Named in refusals: under LocalSystem these expand into the system profile, not a user's."""

REFUSED_HIVES: dict[str, str] = {
    "HKCU": "HKCU is the hive of the account detection runs as (LocalSystem), never a user's",
    "HKU": "HKU holds only the hives of users who are logged on at that moment",
    "HKCR": "HKCR merges LocalSystem's own classes into HKLM\\SOFTWARE\\Classes; name that key"
    " under HKLM instead",
    "HKCC": "HKCC is an alias of HKLM\\SYSTEM\\CurrentControlSet\\Hardware Profiles\\Current;"
    " name that key under HKLM instead",
}

BLANK = " \t\r\n\v\f"  # what surrounds a version harmlessly (the evaluator trims the same)
VERSION_PARTS_MAX = 8
VERSION_DIGITS_MAX = 9  # every part fits a signed 32-bit integer on both sides
SERVICE_NAME_MAX = 256  # CreateService: at most 256 characters, no '/' or '\'
PATH_COMPONENT_MAX = 255
KEY_COMPONENT_MAX = 255
VALUE_NAME_MAX = 16_383

_VERSION = re.compile(
    rf"[0-9]{{1,{VERSION_DIGITS_MAX}}}(?:\.[0-9]{{1,{VERSION_DIGITS_MAX}}}){{0,{VERSION_PARTS_MAX - 1}}}"
)
_PATH_START = re.compile(r"(?:%(?P<variable>[^%]*)%|(?P<drive>[A-Za-z]):)(?P<rest>.*)", re.S)
_PATH_FORBIDDEN = frozenset('<>:"|?*%') | frozenset(chr(code) for code in range(32))
_DEVICES = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{n}" for n in range(1, 10)]
    + [f"LPT{n}" for n in range(1, 10)]
)
_HIVE_PREFIX = re.compile(
    r"(?:HKLM|HKCU|HKCR|HKU|HKCC|HKEY_[A-Z_]+|Registry|Microsoft\.PowerShell\.Core\\Registry)"
    r"(?::|\\|$)",
    re.I,
)
_TEMPLATE = re.compile(r"\{\{\s*(?:ssm|ssm-secure|resolve)\s*:", re.I)
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_version(text: str) -> tuple[int, ...] | None:
    """Dotted ASCII digits (1 to 9 per part, 1 to 8 parts) as a tuple; None for anything else."""
    text = text.strip(BLANK)
    if not _VERSION.fullmatch(text):
        return None
    return tuple(int(part) for part in text.split("."))


def version_problem(text: str) -> str | None:
    if parse_version(text) is None:
        return (
            f"{text!r:.80} is not a dotted numeric version: 1 to {VERSION_PARTS_MAX} parts of 1 to"
            f" {VERSION_DIGITS_MAX} ASCII digits, such as '1.2.3'"
        )
    return None


def path_problem(path: str) -> str | None:
    """A path LocalSystem resolves to exactly one place on the machine's file system."""
    match = _PATH_START.fullmatch(path)
    if match is None:
        return (
            f"{path!r:.80} is not an absolute path: start with a drive (C:\\...) or a machine-wide"
            " variable such as %ProgramFiles%; relative, UNC (\\\\server\\share), device (\\\\?\\)"
            " and provider (HKLM:, Registry::) paths are not evaluated"
        )
    variable = match.group("variable")
    if variable is not None:
        problem = _variable_problem(variable)
        if problem:
            return problem
    rest = match.group("rest")
    if not rest or rest[0] not in "\\/":
        return (
            f"{path!r:.80}: a separator (\\) must follow the drive or variable (C:name is relative"
            " to the drive's current folder)"
        )
    components = re.split(r"[\\/]", rest[1:])
    if len(components) > 1 and components[-1] == "":
        components.pop()  # one trailing separator names the same folder
    if components == [""]:
        return f"{path!r:.80} names no file or folder below the drive or variable"
    for component in components:
        problem = _component_problem(component)
        if problem:
            return f"{path!r:.80}: {problem}"
    return None


def _variable_problem(variable: str) -> str | None:
    folded = variable.casefold()
    if any(folded == known.casefold() for known in MACHINE_VARIABLES):
        return None
    if any(folded == user.casefold() for user in PER_USER_VARIABLES):
        return (
            f"%{variable}% is a per-user variable: detection runs as LocalSystem, where it expands"
            " into the system profile, never a user's; use a machine-wide location"
        )
    return f"%{variable}% is not one of the machine-wide variables detection expands: " + ", ".join(
        f"%{name}%" for name in MACHINE_VARIABLES
    )


def _component_problem(component: str) -> str | None:
    if component == "":
        return "it has an empty component (two separators in a row)"
    if component in (".", ".."):
        return f"it has a {component!r} component; give the path without it"
    bad = sorted({c for c in component if c in _PATH_FORBIDDEN})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return (
            f"{component!r:.60} holds {shown}: not part of a Windows file name (wildcards are not"
            " expanded, and a variable may only start the path)"
        )
    if component[-1] in " .":
        return f"{component!r:.60} ends with a dot or space, which Windows drops from file names"
    if component.split(".")[0].rstrip(" ").upper() in _DEVICES:
        return f"{component!r:.60} names a device, not a file"
    if len(component) > PATH_COMPONENT_MAX:
        return f"a component is longer than {PATH_COMPONENT_MAX} characters"
    return None


def key_problem(key: str, use_32bit_view: bool) -> str | None:
    """A key below HKLM, written the way RegistryKey.OpenSubKey takes it."""
    if _HIVE_PREFIX.match(key):
        return f"{key!r:.80}: give the key below HKLM, without a hive or provider prefix"
    components = key.split("\\")
    if any(component == "" for component in components):
        return (
            f"{key!r:.80}: key names are separated by single backslashes, with none at either end"
        )
    for component in components:
        if any(ord(c) < 32 for c in component):
            return f"{key!r:.80}: a key name holds a control character"
        if len(component) > KEY_COMPONENT_MAX:
            return f"{key!r:.80}: a key name is longer than {KEY_COMPONENT_MAX} characters"
    if use_32bit_view and any(c.casefold() == "wow6432node" for c in components):
        return (
            f"{key!r:.80}: in the 32-bit view name the key as a 32-bit program sees it (without"
            " WOW6432Node), or read WOW6432Node through the 64-bit view"
        )
    return None


def value_name_problem(name: str) -> str | None:
    if "\x00" in name:
        return "a value name holds a NUL character"
    if len(name) > VALUE_NAME_MAX:
        return f"a value name is longer than {VALUE_NAME_MAX} characters"
    return None


def service_name_problem(name: str) -> str | None:
    if len(name) > SERVICE_NAME_MAX:
        return f"a service name has at most {SERVICE_NAME_MAX} characters"
    if "/" in name or "\\" in name:
        return f"{name!r:.80} holds '/' or '\\', which no Windows service name can"
    if any(ord(c) < 32 for c in name):
        return f"{name!r:.80} holds a control character"
    return None


def text_problem(text: str) -> str | None:
    """Problems of any string in a rule, whatever field it is in."""
    if _TEMPLATE.search(text):
        return (
            "holds a '{{ssm:', '{{ssm-secure:' or '{{resolve:' reference: Systems Manager replaces"
            " it with a parameter's value before the agent sees the rule, so the rule evaluated"
            " would not be the rule reviewed"
        )
    if _SURROGATE.search(text):
        return "holds a lone UTF-16 surrogate, which has no UTF-8 form"
    return None
