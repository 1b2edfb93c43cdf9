"""Check request and response dicts against botocore's service models.

Every operation the sandbox adds validates its input like AWS does (types, required members,
length/range limits, enums) and its output against the operation's output shape. A response that
breaks its shape is a sandbox bug, so it is refused loudly instead of reaching the client with a
field botocore would silently drop.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

import botocore.session
import regex
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape


@cache
def service_model(service: str) -> ServiceModel:
    """The botocore model of a service, by its client name (ssm, workspaces, ...)."""
    return botocore.session.get_session().get_service_model(service)


def operation_model(service: str, operation: str) -> OperationModel:
    return service_model(service).operation_model(operation)


def _lower_first(name: str) -> str:
    return name[:1].lower() + name[1:]


def _member_path(path: str, name: str) -> str:
    return f"{path}.{_lower_first(name)}" if path else _lower_first(name)


def validate_input(service: str, operation: str, params: Mapping[str, Any]) -> list[str]:
    """Constraint violations of a request, worded like AWS's ValidationException messages."""
    shape = operation_model(service, operation).input_shape
    if shape is None:
        return []
    problems: list[str] = []
    _check_input(shape, params, "", problems)
    return problems


def _check_input(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    where = path or "request"
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, Mapping):
            problems.append(
                f"Value at '{where}' failed to satisfy constraint: Member must be a structure"
            )
            return
        for required in shape.required_members:
            if value.get(required) is None:
                problems.append(
                    f"Value null at '{_member_path(path, required)}' failed to satisfy constraint: "
                    "Member must not be null"
                )
        for name, member_value in value.items():
            if name not in shape.members:
                problems.append(f"Unknown parameter '{_member_path(path, name)}'")
            elif member_value is not None:
                _check_input(shape.members[name], member_value, _member_path(path, name), problems)
        return
    if kind == "list":
        assert isinstance(shape, ListShape)
        if not isinstance(value, list):
            problems.append(
                f"Value at '{where}' failed to satisfy constraint: Member must be a list"
            )
            return
        _check_size(shape, len(value), value, where, "length", problems)
        for index, item in enumerate(value):
            _check_input(shape.member, item, f"{where}.{index + 1}.member", problems)
        return
    if kind == "map":
        assert isinstance(shape, MapShape)
        if not isinstance(value, Mapping):
            problems.append(
                f"Value at '{where}' failed to satisfy constraint: Member must be a map"
            )
            return
        _check_size(shape, len(value), value, where, "length", problems)
        for key, item in value.items():
            _check_input(shape.key, key, f"{where}.key", problems)
            _check_input(shape.value, item, f"{where}.{key}", problems)
        return
    if kind == "string":
        if not isinstance(value, str):
            problems.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: Member must be a string"
            )
            return
        _check_size(shape, len(value), value, where, "length", problems)
        enum: list[str] = shape.metadata.get("enum") or []
        if enum and value not in enum:
            problems.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]"
            )
        pattern = shape.metadata.get("pattern")
        if pattern and not _matches(pattern, value):
            problems.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {pattern}"
            )
        return
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: Member must be a number"
            )
            return
        _check_size(shape, value, value, where, "value", problems)
        return
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: Member must be a number"
            )
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            problems.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: Member must be a boolean"
            )
        return
    if kind == "timestamp":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            problems.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: Member must be a timestamp"
            )
        return
    if kind == "blob" and not isinstance(value, str | bytes):
        problems.append(f"Value at '{where}' failed to satisfy constraint: Member must be a blob")


def _check_size(
    shape: Shape, size: int, value: Any, where: str, unit: str, problems: list[str]
) -> None:
    shown = value if unit == "value" or isinstance(value, str) else "[...]"
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        relation = "greater than or equal to"
        problems.append(
            f"Value '{shown}' at '{where}' failed to satisfy constraint: "
            f"Member must have {unit} {relation} {low}"
        )
    if high is not None and size > high:
        relation = "less than or equal to"
        problems.append(
            f"Value '{shown}' at '{where}' failed to satisfy constraint: "
            f"Member must have {unit} {relation} {high}"
        )


@cache
def _compiled(pattern: str) -> regex.Pattern[str] | None:
    """The model's (Java) pattern compiled with ``regex``, which knows ``\\p{L}`` and friends.

    None for a construct neither speaks (listed by ``unenforced_patterns``): AWS checks it, the
    sandbox cannot, and the fidelity report says so instead of pretending.
    """
    try:
        return regex.compile(pattern)
    except regex.error:
        return None


def _matches(pattern: str, value: str) -> bool:
    compiled = _compiled(pattern)
    return compiled is None or compiled.fullmatch(value) is not None


def unenforced_patterns(service: str) -> dict[str, str]:
    """Shape name -> pattern, for every model pattern of ``service`` the sandbox cannot enforce."""
    model = service_model(service)
    found: dict[str, str] = {}
    for name in model.shape_names:
        pattern = model.shape_for(name).metadata.get("pattern")
        if pattern and _compiled(pattern) is None:
            found[name] = pattern
    return found


def validate_output(service: str, operation: str, result: Mapping[str, Any]) -> list[str]:
    """Where a response dict breaks the operation's output shape (empty when it fits)."""
    shape = operation_model(service, operation).output_shape
    if shape is None:
        return [] if not result else ["the operation has no output, but a body was produced"]
    problems: list[str] = []
    _check_output(shape, result, operation, problems)
    return problems


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
    "timestamp": (datetime, int, float),
    "blob": (bytes, str),
}


def _check_output(shape: Shape, value: Any, path: str, problems: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if not isinstance(value, Mapping):
            problems.append(
                f"{path}: expected a structure ({shape.name}), got {type(value).__name__}"
            )
            return
        for required in shape.required_members:
            if value.get(required) is None:
                problems.append(f"{path}.{required}: required member missing")
        for name, member_value in value.items():
            if name not in shape.members:
                problems.append(f"{path}.{name}: not a member of {shape.name}")
            elif member_value is not None:
                _check_output(shape.members[name], member_value, f"{path}.{name}", problems)
    elif kind == "list":
        assert isinstance(shape, ListShape)
        if not isinstance(value, list | tuple):
            problems.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for index, item in enumerate(value):
            _check_output(shape.member, item, f"{path}[{index}]", problems)
    elif kind == "map":
        assert isinstance(shape, MapShape)
        if not isinstance(value, Mapping):
            problems.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check_output(shape.key, key, f"{path}<key>", problems)
            _check_output(shape.value, item, f"{path}[{key!r}]", problems)
    else:
        allowed = _PYTHON_TYPES.get(kind, (object,))
        if isinstance(value, bool) and bool not in allowed:
            problems.append(f"{path}: expected {kind}, got bool")
        elif not isinstance(value, allowed):
            problems.append(f"{path}: expected {kind}, got {type(value).__name__}")


def decode_blob(value: str | bytes) -> bytes:
    """JSON-protocol blobs arrive base64-encoded."""
    return value if isinstance(value, bytes) else base64.b64decode(value)
