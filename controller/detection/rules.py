"""Detection rules as data: one strict model and one JSON wire format.

The same JSON travels three ways: the Package kind embeds these models in its manifest spec, the
controller passes ``rules_to_json(rule)`` as a parameter of its detection document (data, never
spliced into script text), and the sandbox evaluates it against its simulated agent. A rule is a
leaf (file, folder, registry, service, msi, script) or a group (``allOf`` / ``anyOf``, nested
freely). Anything unknown (a field, a hive, an operator, a check) is an error, so a typo in YAML
never silently becomes "always detected".
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)

Operator = Literal["eq", "ne", "gt", "ge", "lt", "le"]
Hive = Literal["HKLM", "HKCU", "HKCR", "HKU", "HKCC"]
OPERATORS: tuple[str, ...] = ("eq", "ne", "gt", "ge", "lt", "le")
HIVES: tuple[str, ...] = ("HKLM", "HKCU", "HKCR", "HKU", "HKCC")
LEAF_TYPES: tuple[str, ...] = ("file", "folder", "registry", "service", "msi", "script")
SERVICE_STATES: tuple[str, ...] = (
    "Running",
    "Stopped",
    "Paused",
    "StartPending",
    "StopPending",
    "ContinuePending",
    "PausePending",
)
SERVICE_START_TYPES: tuple[str, ...] = ("Automatic", "Manual", "Disabled", "Boot", "System")

_VERSION = re.compile(r"^\d+(\.\d+)*$")
_PRODUCT_CODE = r"^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$"


class RuleError(ValueError):
    """Invalid detection rules; ``problems`` are (path, message) pairs, path like ``allOf[1].hive``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{path}: {message}" if path else message for path, message in problems)
        )


def parse_version(text: str) -> tuple[int, ...] | None:
    """Dotted numeric version as a tuple, or None when it is not one (``1.10`` > ``1.9``)."""
    text = text.strip()
    if not _VERSION.match(text):
        return None
    return tuple(int(part) for part in text.split("."))


def compare_versions(left: str, right: str) -> int | None:
    """-1, 0 or 1; missing parts count as 0 (``1.2`` == ``1.2.0``); None if either is no version."""
    a, b = parse_version(left), parse_version(right)
    if a is None or b is None:
        return None
    width = max(len(a), len(b))
    a, b = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
    return (a > b) - (a < b)


def holds(operator: str, comparison: int) -> bool:
    """Whether ``left <operator> right`` given ``comparison`` = sign(left - right)."""
    return {
        "eq": comparison == 0,
        "ne": comparison != 0,
        "gt": comparison > 0,
        "ge": comparison >= 0,
        "lt": comparison < 0,
        "le": comparison <= 0,
    }[operator]


def _check_version_value(value: object, what: str) -> None:
    if not isinstance(value, str) or parse_version(value) is None:
        raise ValueError(f"{what} must be a dotted numeric version such as '1.2.3', got {value!r}")


def _require_comparison(check: str, operator: str | None, value: object) -> None:
    if check == "exists":
        if operator is not None or value is not None:
            raise ValueError("check 'exists' takes no operator or value")
        return
    if operator is None or value is None:
        raise ValueError(f"check '{check}' needs both 'operator' and 'value'")


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)


class FileRule(_Rule):
    """A file exists, or its version / size compares with a value."""

    type: Literal["file"]
    path: StrictStr = Field(min_length=1)
    check: Literal["exists", "version", "size"]
    operator: Operator | None = None
    value: StrictStr | StrictInt | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FileRule:
        _require_comparison(self.check, self.operator, self.value)
        if self.check == "version":
            _check_version_value(self.value, "a file version value")
        if self.check == "size" and (not isinstance(self.value, int) or self.value < 0):
            raise ValueError(
                f"a file size value must be a non-negative integer, got {self.value!r}"
            )
        return self


class FolderRule(_Rule):
    """A folder exists."""

    type: Literal["folder"]
    path: StrictStr = Field(min_length=1)


class RegistryRule(_Rule):
    """A registry key or value exists, or a value compares as string, integer or version."""

    type: Literal["registry"]
    hive: Hive
    key: StrictStr = Field(min_length=1)
    value_name: StrictStr | None = Field(default=None, alias="valueName")
    check: Literal["exists", "string", "integer", "version"]
    operator: Operator | None = None
    value: StrictStr | StrictInt | None = None
    use_32bit_view: StrictBool = Field(default=False, alias="use32BitView")

    @model_validator(mode="after")
    def _consistent(self) -> RegistryRule:
        _require_comparison(self.check, self.operator, self.value)
        if self.check == "string" and not isinstance(self.value, str):
            raise ValueError(f"a registry string value must be a string, got {self.value!r}")
        if self.check == "integer" and not isinstance(self.value, int):
            raise ValueError(f"a registry integer value must be an integer, got {self.value!r}")
        if self.check == "version":
            _check_version_value(self.value, "a registry version value")
        return self


class ServiceRule(_Rule):
    """A Windows service exists, or is in a state / has a start type."""

    type: Literal["service"]
    name: StrictStr = Field(min_length=1)
    check: Literal["exists", "state", "startType"]
    value: StrictStr | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ServiceRule:
        if self.check == "exists":
            if self.value is not None:
                raise ValueError("check 'exists' takes no value")
            return self
        allowed = SERVICE_STATES if self.check == "state" else SERVICE_START_TYPES
        if self.value not in allowed:
            raise ValueError(
                f"a service {self.check} must be one of {', '.join(allowed)}, got {self.value!r}"
            )
        return self


class MsiRule(_Rule):
    """An MSI product code is installed, optionally with a version comparison."""

    type: Literal["msi"]
    product_code: StrictStr = Field(alias="productCode", pattern=_PRODUCT_CODE)
    operator: Operator | None = None
    version: StrictStr | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MsiRule:
        if (self.operator is None) != (self.version is None):
            raise ValueError("an msi rule needs both 'operator' and 'version', or neither")
        if self.version is not None:
            _check_version_value(self.version, "an msi version")
        return self


class ScriptRule(_Rule):
    """A custom PowerShell script; detected when it exits 0 AND writes something to stdout."""

    type: Literal["script"]
    script: StrictStr = Field(min_length=1)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.script.encode("utf-8", "surrogatepass")).hexdigest()


class AllOf(_Rule):
    """Detected when every member is."""

    all_of: list[DetectionRule] = Field(alias="allOf", min_length=1)


class AnyOf(_Rule):
    """Detected when at least one member is."""

    any_of: list[DetectionRule] = Field(alias="anyOf", min_length=1)


def _rule_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        if "allOf" in value:
            return "allOf"
        if "anyOf" in value:
            return "anyOf"
        tag = value.get("type")
        return tag if isinstance(tag, str) else None
    if isinstance(value, AllOf):
        return "allOf"
    if isinstance(value, AnyOf):
        return "anyOf"
    tag = getattr(value, "type", None)
    return tag if isinstance(tag, str) else None


DetectionRule = Annotated[
    Annotated[AllOf, Tag("allOf")]
    | Annotated[AnyOf, Tag("anyOf")]
    | Annotated[FileRule, Tag("file")]
    | Annotated[FolderRule, Tag("folder")]
    | Annotated[RegistryRule, Tag("registry")]
    | Annotated[ServiceRule, Tag("service")]
    | Annotated[MsiRule, Tag("msi")]
    | Annotated[ScriptRule, Tag("script")],
    Discriminator(_rule_tag),
]
"""Any rule: use it as a pydantic field type (the Package kind does) or through parse_rule."""

AllOf.model_rebuild()
AnyOf.model_rebuild()

LeafRule = FileRule | FolderRule | RegistryRule | ServiceRule | MsiRule | ScriptRule
_ADAPTER: TypeAdapter[Any] = TypeAdapter(DetectionRule)
_TAGS = {"allOf", "anyOf", *LEAF_TYPES}


def parse_rule(data: Any) -> AllOf | AnyOf | LeafRule:
    """Validate a decoded JSON/YAML value as a rule; RuleError says where and what is wrong."""
    try:
        rule: AllOf | AnyOf | LeafRule = _ADAPTER.validate_python(data)
    except ValidationError as error:
        raise RuleError(_problems(error)) from None
    return rule


def rules_from_json(text: str) -> AllOf | AnyOf | LeafRule:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise RuleError([("", f"detection rules are not valid JSON: {error}")]) from None
    return parse_rule(data)


def rules_to_json(rule: AllOf | AnyOf | LeafRule) -> str:
    """Compact, key-sorted, ASCII-only JSON: equal rules give byte-identical text."""
    data = _ADAPTER.dump_python(rule, mode="json", by_alias=True, exclude_none=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def describe(rule: AllOf | AnyOf | LeafRule) -> str:
    """A stable, human description used in failure messages."""
    if isinstance(rule, AllOf):
        return "allOf(" + "; ".join(describe(member) for member in rule.all_of) + ")"
    if isinstance(rule, AnyOf):
        return "anyOf(" + "; ".join(describe(member) for member in rule.any_of) + ")"
    if isinstance(rule, FileRule):
        return f"file {rule.path} " + _comparison(rule.check, rule.operator, rule.value)
    if isinstance(rule, FolderRule):
        return f"folder {rule.path} exists"
    if isinstance(rule, RegistryRule):
        where = f"{rule.hive}\\{rule.key}"
        if rule.value_name is not None:
            where += f" value {rule.value_name or '(Default)'}"
        view = " (32-bit view)" if rule.use_32bit_view else ""
        return f"registry {where} " + _comparison(rule.check, rule.operator, rule.value) + view
    if isinstance(rule, ServiceRule):
        if rule.check == "exists":
            return f"service {rule.name} exists"
        return f"service {rule.name} {rule.check} {rule.value}"
    if isinstance(rule, MsiRule):
        if rule.operator is None:
            return f"msi {rule.product_code} installed"
        return f"msi {rule.product_code} version {rule.operator} {rule.version}"
    return f"script sha256:{rule.sha256[:12]} exits 0 with output"


def _comparison(check: str, operator: str | None, value: object) -> str:
    if check == "exists":
        return "exists"
    return f"{check} {operator} {value}"


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for item in error.errors(include_url=False):
        path = _path(item["loc"])
        kind = item["type"]
        if kind == "union_tag_invalid":
            message = (
                f"unknown rule type {item['ctx'].get('tag')!r}; a rule has type "
                f"{', '.join(LEAF_TYPES)} or is a group {{allOf: [...]}} / {{anyOf: [...]}}"
            )
        elif kind == "union_tag_not_found":
            message = (
                f"a rule needs 'type' ({', '.join(LEAF_TYPES)}) or is a group "
                "{allOf: [...]} / {anyOf: [...]}"
            )
        elif kind == "extra_forbidden":
            message = f"unknown field {str(item['loc'][-1])!r}"
        elif kind == "literal_error":
            message = f"{item['msg']}, got {item['input']!r}"
        elif kind == "value_error":
            message = str(item["ctx"].get("error", item["msg"]))
        else:
            message = item["msg"]
        problems.append((path, message))
    return problems


def _path(loc: tuple[int | str, ...]) -> str:
    """``('allOf', 1, 'registry', 'hive')`` -> ``allOf[1].hive`` (union tags dropped)."""
    text = ""
    previous_is_index = True  # the root behaves like a list slot: its first element may be a tag
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            previous_is_index = True
            continue
        if previous_is_index and part in _TAGS:
            previous_is_index = False
            continue
        text += f".{part}" if text else part
        previous_is_index = False
    return text
