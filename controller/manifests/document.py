"""The manifest envelope (apiVersion, kind, metadata, spec) and turning documents into Manifests.

Every pydantic error is translated here into a ManifestError with the document's file, the line
of the offending key, a dotted field path and a message that says what is allowed: pydantic's own
wording ("Extra inputs are not permitted") tells a reviewer neither.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError
from pydantic_core import ErrorDetails

from controller.contract.registry import spec_models
from controller.manifests.common import SpecModel, StrictModel, describe, fail, rejecting
from controller.manifests.errors import ManifestError
from controller.manifests.source import FieldPath, SourceDocument

API_VERSION = "fleet-controller/v1alpha1"
NAME_MAX = 63
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_KEY_MAX = 128
LABEL_VALUE_MAX = 256
ENVELOPE_FIELDS = frozenset({"apiVersion", "kind", "metadata", "spec"})

T = TypeVar("T", bound=SpecModel)


def _check_api_version(value: str) -> str:
    if value != API_VERSION:
        raise fail(f"apiVersion must be {API_VERSION}, got {value!r:.80}")
    return value


def _check_kind(value: str) -> str:
    known = sorted(spec_models())
    if value not in known:
        hint = difflib.get_close_matches(value, known, n=1)
        suggestion = f" (did you mean {hint[0]}?)" if hint else ""
        raise fail(f"unknown kind {value!r:.80}{suggestion}; known kinds are: {', '.join(known)}")
    return value


def name_problem(value: str) -> str | None:
    if len(value) > NAME_MAX:
        return f"name is {len(value)} characters; at most {NAME_MAX} are allowed"
    if not _NAME.fullmatch(value):
        return (
            f"{value!r:.80} is not a valid name: use lowercase letters, digits and '-', starting"
            " and ending with a letter or digit (a DNS label, like 'corp-laptops')"
        )
    return None


def _check_label_key(value: str) -> str:
    if not 1 <= len(value) <= LABEL_KEY_MAX:
        raise fail(f"label keys must be 1 to {LABEL_KEY_MAX} characters")
    return value


def _check_label_value(value: str) -> str:
    if len(value) > LABEL_VALUE_MAX:
        raise fail(f"label values must be at most {LABEL_VALUE_MAX} characters")
    return value


class Metadata(StrictModel):
    name: Annotated[str, AfterValidator(rejecting(name_problem))]
    labels: dict[
        Annotated[str, AfterValidator(_check_label_key)],
        Annotated[str, AfterValidator(_check_label_value)],
    ] = {}


class Envelope(StrictModel):
    api_version: Annotated[str, AfterValidator(_check_api_version)]
    kind: Annotated[str, AfterValidator(_check_kind)]
    metadata: Metadata
    spec: dict[str, Any]


@dataclass(frozen=True)
class SourceLocation:
    """Where a manifest came from: file, the line its document starts and a line per field."""

    file: str
    line: int
    lines: Mapping[FieldPath, int] = field(default_factory=dict, repr=False)

    def line_of(self, path: FieldPath) -> int:
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return self.line


@dataclass(frozen=True)
class Manifest:
    """One validated document: its identity, its parsed spec and where it came from.

    ``spec`` is the kind's registered spec model (ActivationSpec for Activation, ...). It is
    typed Any so a kind module can read its own fields directly; ``spec_as`` checks the type.
    ``built`` is what ``spec.build`` made from the files the spec references, when the revision
    loaded (a Package's zips); kinds read it instead of the files.
    """

    kind: str
    name: str
    labels: Mapping[str, str]
    spec: Any
    source: SourceLocation
    built: Any = field(default=None, compare=False, repr=False)
    # Values ``export`` could not know (manifests/placeholders.py): plan and apply refuse them.
    placeholders: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    def spec_as(self, spec_model: type[T]) -> T:
        if not isinstance(self.spec, spec_model):
            raise TypeError(
                f"{self.ref} has a {type(self.spec).__name__}, not {spec_model.__name__}"
            )
        return self.spec

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def where(self) -> str:
        return f"{self.source.file}:{self.source.line}"

    def error(self, path: FieldPath, message: str) -> ManifestError:
        """A located error about ``path`` (from the document root, e.g. ("spec", "tags"))."""
        return ManifestError(
            self.source.file,
            self.source.line_of(path),
            message,
            self.kind,
            self.name,
            format_path(path) or None,
        )

    def spec_error(self, path: FieldPath, message: str) -> ManifestError:
        return self.error(("spec", *path), message)

    def where_is(self, path: FieldPath) -> str:
        """``file:line`` of a field, for messages that point at the other side of a conflict."""
        return f"{self.source.file}:{self.source.line_of(path)}"


def parse_document(doc: SourceDocument) -> tuple[Manifest | None, list[ManifestError]]:
    """Validate one document fully (envelope and spec) and collect every error in it."""
    data = doc.data
    kind = data.get("kind") if isinstance(data.get("kind"), str) else None
    metadata = data.get("metadata")
    raw_name = metadata.get("name") if isinstance(metadata, dict) else None
    name = raw_name[:80] if isinstance(raw_name, str) else None
    location = SourceLocation(doc.file, doc.line, doc.lines)

    def located(path: FieldPath, message: str) -> ManifestError:
        return ManifestError(
            doc.file, location.line_of(path), message, kind, name, format_path(path) or None
        )

    errors = [
        ManifestError(doc.file, issue.line, issue.message, kind, name, format_path(issue.path))
        for issue in doc.issues
    ]
    if not ENVELOPE_FIELDS & data.keys():
        errors.append(
            located(
                (),
                "not a manifest: a document needs apiVersion, kind, metadata and spec (found"
                f" {', '.join(repr(k) for k in list(data)[:5])})",
            )
        )
        return None, errors
    envelope: Envelope | None = None
    try:
        envelope = Envelope.model_validate(data)
    except ValidationError as exc:
        errors.extend(located(*translate(err, Envelope)) for err in exc.errors())

    spec_model = spec_models().get(kind) if kind is not None else None
    spec: SpecModel | None = None
    if spec_model is not None and isinstance(data.get("spec"), dict):
        try:
            spec = _as_spec(spec_model.model_validate(data["spec"]))
        except ValidationError as exc:
            for err in exc.errors():
                path, message = translate(err, spec_model)
                errors.append(located(("spec", *path), message))
        if spec is not None:
            errors.extend(located(("spec", *p.path), p.message) for p in spec.problems())

    if errors or envelope is None or spec is None:
        return None, errors
    manifest = Manifest(
        envelope.kind,
        envelope.metadata.name,
        dict(envelope.metadata.labels),
        spec,
        location,
    )
    return manifest, []


def _as_spec(model: BaseModel) -> SpecModel:
    if not isinstance(model, SpecModel):
        raise TypeError(f"{type(model).__name__} is not a SpecModel")
    return model


def format_path(path: FieldPath) -> str:
    """``("spec", "tags", "Owner")`` -> ``spec.tags.Owner``; indexes as ``[0]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part and re.fullmatch(r"[^.\s\[\]\"]+", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


# --- pydantic error translation -------------------------------------------------------------


def translate(error: ErrorDetails, model: type[BaseModel]) -> tuple[FieldPath, str]:
    """A pydantic error -> (path relative to ``model``, a message saying what is allowed)."""
    path: FieldPath = tuple(part for part in error["loc"] if part != "[key]")
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "fleet":
        return path, str(ctx.get("message", error["msg"]))
    if kind == "missing":
        return path, "is required but missing"
    if kind == "extra_forbidden":
        allowed = _fields_at(model, path[:-1])
        unknown = str(path[-1])
        message = f"unknown field {unknown!r}"
        close = difflib.get_close_matches(unknown, allowed, n=1, cutoff=0.6)
        if close:
            message += f" (did you mean {close[0]!r}?)"
        if allowed:
            message += f"; allowed fields are: {', '.join(allowed)}"
        return path, message
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        allowed = _fields_at(model, path)
        detail = f" with fields {', '.join(allowed)}" if allowed else ""
        return path, f"expected a mapping{detail}, got {describe(value)}"
    if kind == "list_type":
        return path, f"expected a list, got {describe(value)}"
    if kind == "string_type":
        hint = "; quote the value to make it a string" if value is not None else ""
        return path, f"expected a string, got {describe(value)}{hint}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        hint = "; remove the quotes" if isinstance(value, str) else ""
        return path, f"expected a whole number, got {describe(value)}{hint}"
    if kind in ("bool_type", "bool_parsing"):
        return path, f"expected true or false, got {describe(value)}"
    if kind == "literal_error":
        return path, f"must be one of {ctx.get('expected')}; got {describe(value)}"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return path, f"must be at least {bound}, got {value}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return path, f"must be at most {bound}, got {value}"
    if kind == "too_short":
        return path, f"must have at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return path, f"must have at most {ctx.get('max_length')} item(s)"
    return path, str(error["msg"])


def _fields_at(model: type[BaseModel], path: FieldPath) -> list[str]:
    """The YAML field names accepted at ``path`` inside ``model`` (empty when not a model)."""
    current: Any = model
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            by_alias = {(f.alias or name): f.annotation for name, f in current.model_fields.items()}
            if part not in by_alias:
                return []
            current = by_alias[part]
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin is list and isinstance(part, int) and args:
            current = args[0]
        elif origin is dict and isinstance(part, str) and len(args) == 2:
            current = args[1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted((f.alias or name) for name, f in current.model_fields.items())
    return []


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...] down to the type that holds fields or items."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
