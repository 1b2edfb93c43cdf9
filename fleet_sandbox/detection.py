"""The sandbox's detection evaluator: controller/detection/SPEC.md implemented on its own.

This is the oracle the controller's PowerShell evaluator is measured against, so it shares no code
with the controller: it reads the rules JSON the way the evaluator receives it (an environment
variable's text), refuses what the specification refuses (exit 2), evaluates each rule against the
simulated machine (``machine``) with three verdicts (detected, not detected, evaluation error), and
words its answer and exit code as the specification says. The specification's case table
(``spec.yaml``) is run against it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from fleet_sandbox import machine
from fleet_sandbox.machine import AgentModel

SPEC_VERSION = 2
MARKER = "FLEET-CONTROLLER-DETECTION-EVALUATOR"
AGENT_VERSION_MIN = (3, 3, 2746, 0)  # first SSM Agent with interpolationType ENV_VAR
RULES_MAX_CHARS = 12_288
GROUP_DEPTH_MAX = 8
SCRIPT_TIMEOUT = (1, 60, 300)  # minimum, default, maximum seconds
SCRIPT_TIMEOUT_TOTAL_MAX = 480
EXCERPT_UNITS = 300

DETECTED, NOT_DETECTED, ERROR = "detected", "not-detected", "error"

AGENT_TOO_OLD = (
    "the detection rules were not passed as environment variables: SSM Agent 3.3.2746.0 or later"
    " is required (interpolationType ENV_VAR)"
)

_OPERATORS = {
    "eq": lambda s: s == 0,
    "ne": lambda s: s != 0,
    "gt": lambda s: s > 0,
    "ge": lambda s: s >= 0,
    "lt": lambda s: s < 0,
    "le": lambda s: s <= 0,
}
_BLANK = " \t\r\n\v\f"
# Systems Manager resolves these in parameter values before the agent sees them.
_REFERENCE = re.compile(r"\{\{\s*(ssm|ssm-secure|resolve)\s*:", re.IGNORECASE)
_VERSION = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9}){0,7}")
_GUID = re.compile(r"\{[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\}")
_MACHINE_VARIABLES = {
    machine.fold(name)
    for name in (
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
}
_RESERVED_NAMES = {"CON", "PRN", "AUX", "NUL"} | {
    f"{d}{n}" for d in ("COM", "LPT") for n in "123456789"
}
_SERVICE_STATES = (
    "Running",
    "Stopped",
    "Paused",
    "StartPending",
    "StopPending",
    "ContinuePending",
    "PausePending",
)
_START_TYPES = ("Automatic", "Manual", "Disabled")


class InvalidRules(Exception):
    """The rules break the specification: the evaluator refuses them (exit 2)."""


# --- reading the rules ---------------------------------------------------------------------------


@dataclass
class Leaf:
    kind: str
    fields: dict[str, Any]


@dataclass
class Group:
    kind: str  # allOf | anyOf
    members: list[Leaf | Group]


Rule = Leaf | Group


def read_rules(text: str) -> Rule:
    """The rules JSON as the evaluator receives it, checked against the specification."""
    if len(text) > RULES_MAX_CHARS:
        raise InvalidRules(f"the rules are {len(text)} characters, more than {RULES_MAX_CHARS}")
    try:
        data = json.loads(text)
    except ValueError as error:
        raise InvalidRules(f"not JSON ({error})") from None
    except RecursionError:
        raise InvalidRules("the JSON nests too deeply") from None
    if _nesting(data) > 4 * GROUP_DEPTH_MAX:
        raise InvalidRules("the JSON nests deeper than any rule can")
    _refuse_strings(data)
    rule = _rule(data, "rules", 1)
    total = sum(leaf.fields["timeoutSeconds"] for leaf in _leaves(rule) if leaf.kind == "script")
    if total > SCRIPT_TIMEOUT_TOTAL_MAX:
        raise InvalidRules(f"script timeouts add up to {total} s, more than 480 s")
    return rule


def _nesting(data: Any) -> int:
    """How deep lists and objects nest, counted without recursion (hostile input is deep)."""
    deepest, pending = 0, [(data, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)
    return deepest


def _refuse_strings(data: Any) -> None:
    if isinstance(data, str):
        if _REFERENCE.search(data):
            raise InvalidRules("a string holds a {{ssm:, {{ssm-secure: or {{resolve: reference")
        if any(0xD800 <= ord(c) <= 0xDFFF for c in data):
            raise InvalidRules("a string holds a lone surrogate")
    elif isinstance(data, list):
        for item in data:
            _refuse_strings(item)
    elif isinstance(data, dict):
        for key, item in data.items():
            _refuse_strings(key)
            _refuse_strings(item)


def _rule(data: Any, where: str, depth: int) -> Rule:
    if not isinstance(data, dict):
        raise InvalidRules(f"{where} is not an object")
    for group in ("allOf", "anyOf"):
        if group in data:
            if len(data) != 1:
                raise InvalidRules(f"{where} mixes {group} with other fields")
            if depth > GROUP_DEPTH_MAX:
                raise InvalidRules(f"{where}: groups nest deeper than {GROUP_DEPTH_MAX}")
            members = data[group]
            if not isinstance(members, list) or not members:
                raise InvalidRules(f"{where}.{group} is not a non-empty list")
            return Group(
                group,
                [_rule(m, f"{where}.{group}[{i}]", depth + 1) for i, m in enumerate(members)],
            )
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _READERS:
        raise InvalidRules(f"{where}: unknown rule type {kind!r}")
    reader = _READERS[kind]
    allowed, fields = reader(data, where)
    unknown = sorted(set(data) - {"type", *allowed})
    if unknown:
        raise InvalidRules(f"{where}: unknown field(s) {', '.join(unknown)}")
    return Leaf(kind, fields)


def _text(data: dict[str, Any], name: str, where: str, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and value == ""):
        raise InvalidRules(f"{where}.{name} must be a non-empty string")
    return value


def _whole(data: dict[str, Any], name: str, where: str, low: int, high: int) -> int:
    value = data.get(name)
    if type(value) is not int or not low <= value <= high:
        raise InvalidRules(f"{where}.{name} must be an integer from {low} to {high}")
    return value


def _comparison(data: dict[str, Any], where: str, exists_allowed: bool = True) -> str | None:
    """The operator of a comparing check; None (and no value) for ``exists``."""
    if data.get("check") == "exists" and exists_allowed:
        if "operator" in data or "value" in data:
            raise InvalidRules(f"{where}: check exists takes no operator or value")
        return None
    operator = data.get("operator")
    if operator not in _OPERATORS:
        raise InvalidRules(f"{where}.operator must be one of eq ne gt ge lt le")
    if "value" not in data:
        raise InvalidRules(f"{where}: a comparing check needs a value")
    return str(operator)


def _version_text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _VERSION.fullmatch(value.strip(_BLANK)):
        raise InvalidRules(f"{where} is not a dotted version of ASCII digits")
    return value


def _path(value: Any, where: str) -> str:
    """SPEC.md's paths: a drive or a machine-wide variable, then plain components."""
    if not isinstance(value, str) or not value:
        raise InvalidRules(f"{where} must be a non-empty string")
    if value.startswith("%"):
        end = value.find("%", 1)
        if end < 0 or machine.fold(value[1:end]) not in _MACHINE_VARIABLES:
            raise InvalidRules(f"{where} starts with a variable that is not machine-wide")
        rest = value[end + 1 :]
    elif len(value) >= 2 and value[1] == ":" and value[0].isascii() and value[0].isalpha():
        rest = value[2:]
    else:
        raise InvalidRules(f"{where} is not an absolute path")
    if not rest.startswith(("\\", "/")):
        raise InvalidRules(f"{where}: no separator after the drive or variable")
    parts = rest[1:].replace("/", "\\").split("\\")
    if len(parts) > 1 and parts[-1] == "":
        parts = parts[:-1]
    for part in parts:
        bad = (
            part in ("", ".", "..")
            or any(c in '<>:"|?*%' or ord(c) < 32 for c in part)
            or part.endswith((" ", "."))
            or part.split(".")[0].rstrip(" ").upper() in _RESERVED_NAMES
            or len(part) > 255
        )
        if bad:
            raise InvalidRules(f"{where} has a component Windows would not read as written")
    return value


def _file(data: dict[str, Any], where: str) -> tuple[set[str], dict[str, Any]]:
    path = _path(data.get("path"), f"{where}.path")
    check = data.get("check")
    if check not in ("exists", "version", "size"):
        raise InvalidRules(f"{where}.check must be exists, version or size")
    operator = _comparison(data, where)
    value = data.get("value")
    if check == "version":
        _version_text(value, f"{where}.value")
    if check == "size":
        value = _whole(data, "value", where, 0, 2**63 - 1)
    fields = {"path": path, "check": check, "operator": operator, "value": value}
    return {"path", "check", "operator", "value"}, fields


def _folder(data: dict[str, Any], where: str) -> tuple[set[str], dict[str, Any]]:
    return {"path"}, {"path": _path(data.get("path"), f"{where}.path")}


def _registry(data: dict[str, Any], where: str) -> tuple[set[str], dict[str, Any]]:
    if data.get("hive") != "HKLM":
        raise InvalidRules(f"{where}.hive must be HKLM (LocalSystem sees no user's hive)")
    key = _text(data, "key", where)
    assert key is not None
    view = data.get("use32BitView", False)
    if not isinstance(view, bool):
        raise InvalidRules(f"{where}.use32BitView must be true or false")
    parts = key.split("\\")
    if (
        "" in parts
        or re.match(r"(HKLM|HKCU|HKCR|HKU|HKCC|HKEY_[A-Z_]+|Registry)(:|\\|$)", key, re.I)
        or any(len(p) > 255 or any(ord(c) < 32 for c in p) for p in parts)
        or (view and any(machine.fold(p) == "WOW6432NODE" for p in parts))
    ):
        raise InvalidRules(f"{where}.key is not a key below HKLM as the view sees it")
    name = data.get("valueName")
    if name is not None and (not isinstance(name, str) or "\x00" in name or len(name) > 16383):
        raise InvalidRules(f"{where}.valueName must be a string")
    check = data.get("check")
    if check not in ("exists", "string", "integer", "version"):
        raise InvalidRules(f"{where}.check must be exists, string, integer or version")
    operator = _comparison(data, where)
    value = data.get("value")
    if check != "exists" and name is None:
        raise InvalidRules(f"{where}: a comparing check needs valueName")
    if check == "string" and not isinstance(value, str):
        raise InvalidRules(f"{where}.value must be a string")
    if check == "integer":
        value = _whole(data, "value", where, 0, 2**64 - 1)
    if check == "version":
        _version_text(value, f"{where}.value")
    fields = {
        "key": key,
        "valueName": name,
        "check": check,
        "operator": operator,
        "value": value,
        "use32BitView": view,
    }
    return {"hive", "key", "valueName", "check", "operator", "value", "use32BitView"}, fields


def _service(data: dict[str, Any], where: str) -> tuple[set[str], dict[str, Any]]:
    name = _text(data, "name", where)
    assert name is not None
    if len(name) > 256 or "/" in name or "\\" in name or any(ord(c) < 32 for c in name):
        raise InvalidRules(f"{where}.name is not a Windows service name")
    check = data.get("check")
    value = data.get("value")
    if check == "exists":
        if "value" in data:
            raise InvalidRules(f"{where}: check exists takes no value")
    elif check == "state":
        if value not in _SERVICE_STATES:
            raise InvalidRules(f"{where}.value is not a service state")
    elif check == "startType":
        if value not in _START_TYPES:
            raise InvalidRules(f"{where}.value is not a service start type")
    else:
        raise InvalidRules(f"{where}.check must be exists, state or startType")
    return {"name", "check", "value"}, {"name": name, "check": check, "value": value}


def _msi(data: dict[str, Any], where: str) -> tuple[set[str], dict[str, Any]]:
    code = data.get("productCode")
    if not isinstance(code, str) or not _GUID.fullmatch(code):
        raise InvalidRules(f"{where}.productCode is not a GUID in braces")
    operator, version = data.get("operator"), data.get("version")
    if (operator is None) != (version is None):
        raise InvalidRules(f"{where}: operator and version come together")
    if operator is not None and operator not in _OPERATORS:
        raise InvalidRules(f"{where}.operator must be one of eq ne gt ge lt le")
    if version is not None:
        _version_text(version, f"{where}.version")
    fields = {"productCode": code.upper(), "operator": operator, "version": version}
    return {"productCode", "operator", "version"}, fields


def _script(data: dict[str, Any], where: str) -> tuple[set[str], dict[str, Any]]:
    body = _text(data, "script", where)
    assert body is not None
    if "\x00" in body:
        raise InvalidRules(f"{where}.script holds NUL")
    low, default, high = SCRIPT_TIMEOUT
    timeout = (
        _whole(data, "timeoutSeconds", where, low, high) if "timeoutSeconds" in data else default
    )
    return {"script", "timeoutSeconds"}, {"script": body, "timeoutSeconds": timeout}


_READERS = {
    "file": _file,
    "folder": _folder,
    "registry": _registry,
    "service": _service,
    "msi": _msi,
    "script": _script,
}


def _leaves(rule: Rule) -> list[Leaf]:
    if isinstance(rule, Group):
        return [leaf for member in rule.members for leaf in _leaves(member)]
    return [rule]


# --- evaluating them -----------------------------------------------------------------------------


@dataclass
class Finding:
    """A verdict (detected, not-detected, error) and, per leaf, why."""

    verdict: str
    reasons: list[str] = field(default_factory=list)


def evaluate(rule: Rule, agent: AgentModel) -> Finding:
    """Every member is evaluated; verdicts combine as SPEC.md's three-valued table says."""
    if isinstance(rule, Group):
        findings = [evaluate(member, agent) for member in rule.members]
        decisive = DETECTED if rule.kind == "anyOf" else NOT_DETECTED
        other = NOT_DETECTED if decisive == DETECTED else DETECTED
        deciding = [f for f in findings if f.verdict == decisive]
        if deciding:
            chosen = deciding[:1] if rule.kind == "anyOf" else deciding
            return Finding(decisive, [r for f in chosen for r in f.reasons])
        errors = [f for f in findings if f.verdict == ERROR]
        if errors:
            return Finding(ERROR, [r for f in errors for r in f.reasons])
        return Finding(other, [r for f in findings for r in f.reasons])
    verdict, observed = _LEAVES[rule.kind](rule.fields, agent)
    return Finding(verdict, [f"{_what(rule)} ({observed})"])


def _holds(operator: str, sign: int) -> str:
    return DETECTED if _OPERATORS[operator](sign) else NOT_DETECTED


def _version(text: str) -> tuple[int, ...] | None:
    stripped = text.strip(_BLANK)
    if not _VERSION.fullmatch(stripped):
        return None
    return tuple(int(p) for p in stripped.split("."))


def _version_sign(found: tuple[int, ...], wanted: tuple[int, ...]) -> int:
    width = max(len(found), len(wanted))
    a = found + (0,) * (width - len(found))
    b = wanted + (0,) * (width - len(wanted))
    return (a > b) - (a < b)


def _compare_versions(operator: str, found: str, wanted: str) -> tuple[str, str]:
    parsed, target = _version(found), _version(wanted)
    assert target is not None  # the rule's own version was read
    if parsed is None:
        return ERROR, f"found version '{found}', not a dotted numeric version"
    return _holds(operator, _version_sign(parsed, target)), f"found version {found.strip(_BLANK)}"


def _what(leaf: Leaf) -> str:
    f = leaf.fields
    if leaf.kind in ("file", "registry"):
        compared = (
            "exists" if f["check"] == "exists" else f"{f['check']} {f['operator']} {f['value']}"
        )
        if leaf.kind == "file":
            return f"file {f['path']} {compared}"
        where = f"registry HKLM\\{f['key']}"
        if f["valueName"] is not None:
            where += f" value {f['valueName'] or '(Default)'}"
        return f"{where} {compared}" + (" (32-bit view)" if f["use32BitView"] else "")
    if leaf.kind == "folder":
        return f"folder {f['path']} exists"
    if leaf.kind == "service":
        if f["check"] == "exists":
            return f"service {f['name']} exists"
        return f"service {f['name']} {f['check']} {f['value']}"
    if leaf.kind == "msi":
        if f["operator"] is None:
            return f"msi {f['productCode']} installed"
        return f"msi {f['productCode']} version {f['operator']} {f['version']}"
    return f"script sha256:{_digest(f['script'])[:12]} exits 0 with output"


def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def _file_leaf(f: dict[str, Any], agent: AgentModel) -> tuple[str, str]:
    entry = machine.file_entry(agent, machine.expand(agent, f["path"]))
    if entry is None:
        return NOT_DETECTED, "file missing"
    if entry.is_directory:
        return NOT_DETECTED, "a folder, not a file"
    if f["check"] == "exists":
        return DETECTED, "file found"
    if f["check"] == "size":
        sign = (entry.size > f["value"]) - (entry.size < f["value"])
        return _holds(f["operator"], sign), f"found size {entry.size}"
    if entry.version is None:
        return ERROR, "file has no version"
    return _compare_versions(f["operator"], entry.version, f["value"])


def _folder_leaf(f: dict[str, Any], agent: AgentModel) -> tuple[str, str]:
    entry = machine.file_entry(agent, machine.expand(agent, f["path"]))
    if entry is None:
        return NOT_DETECTED, "folder missing"
    if not entry.is_directory:
        return NOT_DETECTED, "a file, not a folder"
    return DETECTED, "folder found"


_TEXT_TYPES = ("REG_SZ", "REG_EXPAND_SZ")
_NUMBER_TYPES = ("REG_DWORD", "REG_QWORD")


def _registry_leaf(f: dict[str, Any], agent: AgentModel) -> tuple[str, str]:
    key = machine.registry_key(agent, machine.physical_key(f["key"], f["use32BitView"]))
    if key is None:
        return NOT_DETECTED, "key missing"
    if f["valueName"] is None:
        return DETECTED, "key found"
    value = key.values.get(machine.fold(f["valueName"]))
    if value is None:
        return NOT_DETECTED, "value missing"
    check = f["check"]
    if check == "exists":
        return DETECTED, "value found"
    if check == "integer":
        if value.type not in _NUMBER_TYPES:
            return ERROR, f"found {value.type}, not REG_DWORD or REG_QWORD"
        number = int(value.data)  # type: ignore[arg-type]
        sign = (number > f["value"]) - (number < f["value"])
        return _holds(f["operator"], sign), f"found {number}"
    if value.type not in _TEXT_TYPES:
        return ERROR, f"found {value.type}, not REG_SZ or REG_EXPAND_SZ"
    text = str(value.data)  # REG_EXPAND_SZ as stored: never expanded
    if check == "string":
        return _holds(f["operator"], machine.ordinal_compare(text, f["value"])), f"found '{text}'"
    return _compare_versions(f["operator"], text, f["value"])


def _service_leaf(f: dict[str, Any], agent: AgentModel) -> tuple[str, str]:
    found = machine.service(agent, f["name"])
    if found is None:
        return NOT_DETECTED, "service missing"
    if f["check"] == "exists":
        return DETECTED, "service found"
    actual = found.state if f["check"] == "state" else found.start_type
    same = machine.ordinal_compare(actual, f["value"]) == 0
    return (DETECTED if same else NOT_DETECTED), f"found {f['check']} {actual}"


def _uninstall_entry(agent: AgentModel, code: str) -> machine.RegistryKey | None:
    """The product's uninstall key that Windows Installer wrote (WindowsInstaller = 1), either view."""
    for view in (False, True):
        key = machine.registry_key(
            agent, machine.physical_key(f"{machine.UNINSTALL_KEY}\\{code}", view)
        )
        if key is None:
            continue
        marker = key.values.get(machine.fold("WindowsInstaller"))
        if marker is not None and marker.type == "REG_DWORD" and marker.data == 1:
            return key
    return None


def _any_uninstall_key(agent: AgentModel, code: str) -> bool:
    return any(
        machine.registry_key(agent, machine.physical_key(f"{machine.UNINSTALL_KEY}\\{code}", view))
        is not None
        for view in (False, True)
    )


def _display_version(key: machine.RegistryKey | None) -> str:
    if key is None:
        return ""
    value = key.values.get(machine.fold("DisplayVersion"))
    return str(value.data) if value is not None and value.type in _TEXT_TYPES else ""


def _msi_leaf(f: dict[str, Any], agent: AgentModel) -> tuple[str, str]:
    code = f["productCode"]
    prefix = ""
    if not agent.windows_installer_available:
        prefix = "Windows Installer unavailable; "
        key = _uninstall_entry(agent, code)
        if key is None:
            return NOT_DETECTED, f"{prefix}no uninstall key for the product"
        version = _display_version(key)
        prefix += "uninstall key found, "
    else:
        product = agent.msi_products.get(code)
        if product is None:
            if _any_uninstall_key(agent, code):
                return NOT_DETECTED, "product not installed, though an uninstall key names it"
            return NOT_DETECTED, "product not installed"
        if product.state == "advertised":
            return NOT_DETECTED, "product advertised, not installed"
        if product.state == "otherUser":
            return NOT_DETECTED, "product installed for another user only"
        version = product.version or _display_version(_uninstall_entry(agent, code))
        prefix = "installed, "
    if f["operator"] is None:
        shown = f"version {version}" if version else "no version recorded"
        return DETECTED, f"{prefix}{shown}"
    if not version:
        return ERROR, f"{prefix}no version recorded"
    parsed = _version(version)
    if parsed is None:
        return ERROR, f"{prefix}version '{version}', not a dotted numeric version"
    wanted = _version(f["version"])
    assert wanted is not None
    sign = _version_sign(parsed, wanted)
    return _holds(f["operator"], sign), f"{prefix}version {version.strip(_BLANK)}"


def _script_leaf(f: dict[str, Any], agent: AgentModel) -> tuple[str, str]:
    behaviour = machine.script(agent, _digest(f["script"])) or machine.ScriptBehaviour()
    if behaviour.runs_for_seconds > f["timeoutSeconds"]:
        return ERROR, f"script timed out after {f['timeoutSeconds']} s"
    stderr = excerpt(behaviour.stderr)
    if behaviour.exit_code != 0:
        if stderr:
            return ERROR, f"script exited {behaviour.exit_code}: {stderr}"
        return ERROR, f"script exited {behaviour.exit_code}"
    if behaviour.stdout.strip(_BLANK):
        return DETECTED, "script exited 0 with output"
    if stderr:
        return ERROR, f"script exited 0 with only errors: {stderr}"
    return NOT_DETECTED, "script exited 0 without output"


def excerpt(text: str) -> str:
    """The first non-blank line, at most 300 UTF-16 units (a surrogate pair is never split)."""
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.strip(_BLANK)
        if line:
            units = line.encode("utf-16-le")
            if len(units) <= EXCERPT_UNITS * 2:
                return line
            cut = units[: EXCERPT_UNITS * 2]
            if 0xD800 <= int.from_bytes(cut[-2:], "little") <= 0xDBFF:
                cut = cut[:-2]
            return cut.decode("utf-16-le") + "..."
    return ""


_LEAVES = {
    "file": _file_leaf,
    "folder": _folder_leaf,
    "registry": _registry_leaf,
    "service": _service_leaf,
    "msi": _msi_leaf,
    "script": _script_leaf,
}


# --- the evaluator's answer ----------------------------------------------------------------------


def agent_version_ok(version: str) -> bool:
    try:
        parts = tuple(int(p) for p in version.split("."))
    except ValueError:
        return False
    return parts >= AGENT_VERSION_MIN


def run(rules: str | None, action: str | None, agent: AgentModel) -> tuple[int, str]:
    """What the evaluator exits with and writes, given its two environment variables."""
    if rules is None or action is None:
        return 3, AGENT_TOO_OLD
    try:
        if action not in ("Install", "Uninstall"):
            raise InvalidRules(f"action must be Install or Uninstall, got {action!r}")
        rule = read_rules(rules)
    except InvalidRules as error:
        return 2, f"the detection rules are invalid: {error}"
    finding = evaluate(rule, agent)
    reasons = "; ".join(finding.reasons)
    if finding.verdict == ERROR:
        return 4, f"detection could not be evaluated: {reasons}"
    detected = finding.verdict == DETECTED
    if action == "Uninstall":
        if detected:
            return 1, f"detection after Uninstall: the package is still detected: {reasons}"
        return 0, f"Not detected, as expected after Uninstall: {reasons}"
    if not detected:
        return 1, f"detection after Install: the package is not detected: {reasons}"
    return 0, f"Detected: {reasons}"


def evaluator_version(script: str) -> int | None:
    """The specification version an evaluator script declares on its marker line."""
    found = re.search(re.escape(MARKER) + r" v(\d+)\b", script)
    return int(found.group(1)) if found else None
