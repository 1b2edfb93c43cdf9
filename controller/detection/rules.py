"""Detection rules as data: one strict model and one JSON wire format.

The same JSON travels three ways: the Package kind embeds these models in its manifest spec, the
controller passes ``rules_to_json(rule)`` as a parameter of its detection document (data, never
spliced into script text), and the evaluator on the machine reads it. A rule is a leaf (file,
folder, registry, service, msi, script) or a group (``allOf`` / ``anyOf``, nested up to
``DEPTH_MAX``). Anything unknown (a field, a hive, an operator, a check) is an error, so a typo in
YAML never silently becomes "always detected"; anything that cannot be evaluated truthfully by
LocalSystem on Windows (SPEC.md) is refused here, at ``validate``, with the field that says it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
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
    ValidationInfo,
    field_validator,
)

from controller.detection import grammar

Operator = Literal["eq", "ne", "gt", "ge", "lt", "le"]
OPERATORS: tuple[str, ...] = ("eq", "ne", "gt", "ge", "lt", "le")
HIVES: tuple[str, ...] = ("HKLM",)
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
SERVICE_START_TYPES: tuple[str, ...] = ("Automatic", "Manual", "Disabled")

RULES_MAX_CHARS = 12_288
"""Bound on ``rules_to_json``: the rules travel as one environment variable (at most 32,767
characters on Windows) and, with the document's content and the association's other parameters,
within SSM's 64 KB quota on a document plus its runtime parameters (SPEC.md, "Limits")."""
DEPTH_MAX = 8
NESTING_MAX = 4 * DEPTH_MAX  # lists and mappings together: a group and its list take two levels
SCRIPT_TIMEOUT_DEFAULT = 60
SCRIPT_TIMEOUT_MAX = 300
SCRIPT_TIMEOUT_TOTAL_MAX = 480
"""Script timeouts add up (every member of a group is evaluated) and must end well inside the
detection step's own 600 s, so the evaluator always reports, never the step's timeout."""
INTEGER_MAX = 2**64 - 1  # REG_QWORD, read unsigned
SIZE_MAX = 2**63 - 1  # FileInfo.Length is an Int64

_PRODUCT_CODE = r"^\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}$"


class RuleError(ValueError):
    """Invalid detection rules; ``problems`` are (path, message) pairs, path like ``allOf[1].hive``."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{path}: {message}" if path else message for path, message in problems)
        )


def _check(problem: str | None) -> None:
    if problem:
        raise ValueError(problem)


def _operator_for(check: object, operator: str | None) -> str | None:
    """An operator goes with every check that compares, and with no other."""
    if check == "exists" and operator is not None:
        raise ValueError("check 'exists' takes no operator")
    if check not in (None, "exists") and operator is None:
        raise ValueError(f"check '{check}' needs an operator ({', '.join(OPERATORS)})")
    return operator


def _present_for(check: object, value: object) -> bool:
    """Whether a comparing check has its value (and 'exists' has none); False: nothing to check."""
    if check == "exists":
        if value is not None:
            raise ValueError("check 'exists' takes no value")
        return False
    if check is None:
        return False  # the check itself is wrong: its own error says so
    if value is None:
        raise ValueError(f"check '{check}' needs a value")
    return True


def _version_value(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a dotted numeric version such as '1.2.3', got {value!r}")
    _check(grammar.version_problem(value))


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False)


class _Comparing(_Rule):
    """A rule whose ``check`` is ``exists`` or compares with ``operator`` (and a value)."""

    @field_validator("operator", check_fields=False)
    @classmethod
    def _operator(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _operator_for(info.data.get("check"), value)


def _checked_path(value: str) -> str:
    _check(grammar.path_problem(value))
    return value


RulePath = Annotated[StrictStr, Field(min_length=1), AfterValidator(_checked_path)]


class FileRule(_Comparing):
    """A file exists, or its version / size compares with a value."""

    type: Literal["file"]
    path: RulePath
    check: Literal["exists", "version", "size"]
    operator: Operator | None = Field(default=None, validate_default=True)
    value: StrictStr | StrictInt | None = Field(default=None, validate_default=True)

    @field_validator("value")
    @classmethod
    def _value(cls, value: str | int | None, info: ValidationInfo) -> str | int | None:
        check = info.data.get("check")
        if not _present_for(check, value):
            return value
        if check == "version":
            _version_value(value, "a file version value")
        if check == "size" and (not isinstance(value, int) or not 0 <= value <= SIZE_MAX):
            raise ValueError(
                f"a file size value must be an integer from 0 to {SIZE_MAX}, got {value!r}"
            )
        return value


class FolderRule(_Rule):
    """A folder exists."""

    type: Literal["folder"]
    path: RulePath


class RegistryRule(_Comparing):
    """A key or value under HKLM exists, or a value compares as string, unsigned integer or
    version (SPEC.md: which value types each check reads)."""

    type: Literal["registry"]
    hive: StrictStr
    use_32bit_view: StrictBool = Field(default=False, alias="use32BitView")
    key: StrictStr = Field(min_length=1)
    check: Literal["exists", "string", "integer", "version"]
    operator: Operator | None = Field(default=None, validate_default=True)
    value_name: StrictStr | None = Field(default=None, alias="valueName", validate_default=True)
    value: StrictStr | StrictInt | None = Field(default=None, validate_default=True)

    @field_validator("hive")
    @classmethod
    def _hive(cls, value: str) -> str:
        if value in grammar.REFUSED_HIVES:
            raise ValueError(
                f"{value} is refused: {grammar.REFUSED_HIVES[value]}; detection reads HKLM only"
            )
        if value not in HIVES:
            raise ValueError(f"hive must be 'HKLM', got {value!r}")
        return value

    @field_validator("key")
    @classmethod
    def _key(cls, value: str, info: ValidationInfo) -> str:
        _check(grammar.key_problem(value, bool(info.data.get("use_32bit_view"))))
        return value

    @field_validator("value_name")
    @classmethod
    def _value_name(cls, value: str | None, info: ValidationInfo) -> str | None:
        check = info.data.get("check")
        if value is None and check not in (None, "exists"):
            raise ValueError(
                f"check '{check}' compares a value: give 'valueName' ('' for the default)"
            )
        if value is not None:
            _check(grammar.value_name_problem(value))
        return value

    @field_validator("value")
    @classmethod
    def _value(cls, value: str | int | None, info: ValidationInfo) -> str | int | None:
        check = info.data.get("check")
        if not _present_for(check, value):
            return value
        if check == "string" and not isinstance(value, str):
            raise ValueError(f"a registry string value must be a string, got {value!r}")
        if check == "integer" and (not isinstance(value, int) or not 0 <= value <= INTEGER_MAX):
            raise ValueError(
                "a registry integer value must be an integer from 0 to 18446744073709551615"
                f" (REG_DWORD and REG_QWORD read unsigned), got {value!r}"
            )
        if check == "version":
            _version_value(value, "a registry version value")
        return value


class ServiceRule(_Rule):
    """A Windows service, by its exact service name, exists or is in a state / has a start type."""

    type: Literal["service"]
    name: StrictStr = Field(min_length=1)
    check: Literal["exists", "state", "startType"]
    value: StrictStr | None = Field(default=None, validate_default=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        _check(grammar.service_name_problem(value))
        return value

    @field_validator("value")
    @classmethod
    def _value(cls, value: str | None, info: ValidationInfo) -> str | None:
        check = info.data.get("check")
        if not _present_for(check, value):
            return value
        allowed = SERVICE_STATES if check == "state" else SERVICE_START_TYPES
        if value not in allowed:
            raise ValueError(
                f"a service {check} must be one of {', '.join(allowed)}, got {value!r}"
            )
        return value


class MsiRule(_Rule):
    """A Windows Installer product is installed (by product state), optionally with a version."""

    type: Literal["msi"]
    product_code: StrictStr = Field(alias="productCode", pattern=_PRODUCT_CODE)
    operator: Operator | None = None
    version: StrictStr | None = Field(default=None, validate_default=True)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "operator" in info.data and (info.data["operator"] is None) != (value is None):
            raise ValueError("an msi rule needs both 'operator' and 'version', or neither")
        if value is not None:
            _version_value(value, "an msi version")
        return value


class ScriptRule(_Rule):
    """A custom PowerShell script: detected when it exits 0 and writes to stdout; an evaluation
    error when it exits non-zero, writes only to stderr or outruns ``timeoutSeconds``."""

    type: Literal["script"]
    script: StrictStr = Field(min_length=1)
    timeout_seconds: StrictInt = Field(
        default=SCRIPT_TIMEOUT_DEFAULT, alias="timeoutSeconds", ge=1, le=SCRIPT_TIMEOUT_MAX
    )

    @field_validator("script")
    @classmethod
    def _script(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("a detection script holds a NUL character")
        return value

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.script.encode("utf-8")).hexdigest()


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
    if _nesting(data) > NESTING_MAX:
        raise RuleError([("", f"the rules nest deeper than any rule can ({NESTING_MAX} levels)")])
    problems = _raw_problems(data)
    try:
        rule: AllOf | AnyOf | LeafRule = _ADAPTER.validate_python(data)
    except ValidationError as error:
        problems += _problems(error)
    if problems:
        raise RuleError(problems)
    problems = _whole_problems(rule)
    if problems:
        raise RuleError(problems)
    return rule


def rules_from_json(text: str) -> AllOf | AnyOf | LeafRule:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise RuleError([("", f"detection rules are not valid JSON: {error}")]) from None
    except RecursionError:
        raise RuleError([("", "detection rules nest too deeply to read")]) from None
    return parse_rule(data)


def rules_to_json(rule: AllOf | AnyOf | LeafRule) -> str:
    """Compact, key-sorted, ASCII-only JSON: equal rules give byte-identical text."""
    data = _ADAPTER.dump_python(rule, mode="json", by_alias=True, exclude_none=True)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _nesting(data: Any) -> int:
    """How deep lists and mappings nest, counted without recursion (hostile input is deep)."""
    deepest, pending = 0, [(data, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)
    return deepest


def _raw_problems(data: Any, path: str = "", depth: int = 1) -> list[tuple[str, str]]:
    """Checks on the decoded input itself: every string, and how deep groups nest."""
    problems: list[tuple[str, str]] = []
    if isinstance(data, str):
        found = grammar.text_problem(data)
        if found:
            problems.append((path, found))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            problems += _raw_problems(item, f"{path}[{index}]", depth)
    elif isinstance(data, dict):
        group = "allOf" in data or "anyOf" in data
        if group and depth > DEPTH_MAX:
            return [(path, f"groups nest deeper than {DEPTH_MAX} levels")]
        for key, item in data.items():
            where = f"{path}.{key}" if path else str(key)
            problems += _raw_problems(item, where, depth + 1 if group else depth)
    return problems


def _whole_problems(rule: AllOf | AnyOf | LeafRule) -> list[tuple[str, str]]:
    """Limits on the rule as a whole: its size on the wire and its scripts' time."""
    problems: list[tuple[str, str]] = []
    size = len(rules_to_json(rule))
    if size > RULES_MAX_CHARS:
        problems.append(
            (
                "",
                f"the rules take {size} characters as JSON, more than {RULES_MAX_CHARS}: they"
                " travel as one environment variable within SSM's 64 KB document quota; move"
                " long scripts into the package and detect what they leave",
            )
        )
    total = sum(leaf.timeout_seconds for leaf in _leaves(rule) if isinstance(leaf, ScriptRule))
    if total > SCRIPT_TIMEOUT_TOTAL_MAX:
        problems.append(
            (
                "",
                f"script timeouts add up to {total} s, more than {SCRIPT_TIMEOUT_TOTAL_MAX} s: every"
                " script may run, and all must end inside the detection step's 600 s",
            )
        )
    return problems


def _leaves(rule: AllOf | AnyOf | LeafRule) -> list[LeafRule]:
    if isinstance(rule, AllOf):
        return [leaf for member in rule.all_of for leaf in _leaves(member)]
    if isinstance(rule, AnyOf):
        return [leaf for member in rule.any_of for leaf in _leaves(member)]
    return [rule]


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
        name = _ALIASES.get(part, part)
        text += f".{name}" if text else name
        previous_is_index = False
    return text


_ALIASES = {
    "value_name": "valueName",
    "use_32bit_view": "use32BitView",
    "product_code": "productCode",
    "timeout_seconds": "timeoutSeconds",
    "all_of": "allOf",
    "any_of": "anyOf",
}
