"""Field types shared by every kind: strict models, durations, SSM tag maps, glob patterns.

Limits come from the AWS service models (botocore) so a manifest that validates here is not
refused later by the API, halfway through an apply.
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, PlainSerializer
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from controller.manifests.source import FieldPath

if TYPE_CHECKING:
    from controller.containment import ContainedFile
    from controller.manifests.document import Manifest
    from controller.manifests.errors import ManifestError
    from controller.packaging.cache import BuildCache

CONTROLLER_TAG_PREFIX = "fleet-controller/"
"""Keys the controller writes for itself (owner, workspace-id, ...). Users may not set them."""

AWS_MAX_TAGS_PER_RESOURCE = 50
"""SSM's limit per resource (AddTagsToResource: TooManyTagsError beyond it)."""

CONTROLLER_TAG_BUDGET = 5
"""Tags kept free for the controller's own ``fleet-controller/*`` keys on a managed instance:
owner, workspace-id and the activation's identity/spec digest (copied from the activation by AWS),
plus one spare so a later version can add a key without invalidating existing desired state."""

MAX_USER_TAGS = AWS_MAX_TAGS_PER_RESOURCE - CONTROLLER_TAG_BUDGET
"""How many tags one manifest may ask for: 45."""

SSM_TAG_KEY_MAX = 128
SSM_TAG_VALUE_MAX = 256
_TAG_SYMBOLS = frozenset("_.:/=+-@")
_ASCII_TAG_TEXT = re.compile(r"[A-Za-z0-9 _.:/=+\-@]*")


def fail(message: str) -> PydanticCustomError:
    """A validation error whose message is exactly ``message`` (braces included)."""
    return PydanticCustomError("fleet", "{message}", {"message": message})


def rejecting(problem: Callable[[str], str | None]) -> Callable[[str], str]:
    """A pydantic validator from a ``*_problem`` function: the value, or its problem as the error.

    The ``*_problem`` functions stay plain so the engine can ask the same question at run time.
    """

    def check(value: str) -> str:
        found = problem(value)
        if found:
            raise fail(found)
        return value

    return check


class StrictModel(BaseModel):
    """camelCase in YAML, snake_case in Python, no coercion between YAML types, no unknown fields."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
    )


@dataclass(frozen=True)
class Problem:
    """A semantic problem found after parsing, located by a path relative to ``spec``."""

    path: FieldPath
    message: str


class BuildProblems(Exception):
    """Raised by ``SpecModel.build`` when what it built breaks a limit; located like problems."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


class SpecModel(StrictModel):
    """Base of every kind's spec; ``problems`` holds the checks that span several fields and
    ``check_set`` those that span several documents (unique parameter names, references).

    A spec that names files (a Package's installers) says so in ``referenced_files``: the loader
    then resolves each one inside the desired-state root (or reports it, located), folds its
    content into the revision digest, asks ``file_problems`` about sizes and, when building,
    ``build`` turns the files into what the kind applies. Nothing reads those files later.
    """

    def problems(self) -> list[Problem]:
        return []

    def referenced_files(self) -> list[tuple[FieldPath, str]]:
        """Each file this spec names (relative to its manifest file) and the field naming it."""
        return []

    def file_problems(self, files: Mapping[FieldPath, ContainedFile]) -> list[Problem]:
        """Problems with the referenced files as they are on disk (sizes, counts)."""
        return []

    def build(self, files: Mapping[FieldPath, ContainedFile], cache: BuildCache) -> object | None:
        """What the kind needs from the files, built once when the revision loads (or None)."""
        return None

    @classmethod
    def check_set(cls, by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
        """Every valid manifest by kind -> errors (located with ``Manifest.error``)."""
        return []


# --- durations ------------------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d{1,6})d)?(?:(\d{1,6})h)?(?:(\d{1,6})m)?(?:(\d{1,6})s)?")
DURATION_HELP = "a duration such as 30d, 12h, 90m, 45s or 1d12h"


def parse_duration(text: str) -> timedelta:
    """``1d12h`` -> timedelta; raises ValueError naming the accepted forms."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"{text!r} is not {DURATION_HELP}")
    days, hours, minutes, seconds = (int(part) if part else 0 for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The canonical text of a duration: ``timedelta(days=1, hours=12)`` -> ``1d12h``."""
    total = int(value.total_seconds())
    if total == 0:
        return "0s"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    units = ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s"))
    return "".join(f"{amount}{unit}" for amount, unit in units if amount)


def _to_duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise fail(str(exc)) from exc
    raise fail(f"expected {DURATION_HELP} (a string), got {describe(value)}")


Duration = Annotated[timedelta, BeforeValidator(_to_duration), PlainSerializer(format_duration)]


def check_duration(value: timedelta, *, field: str, low: timedelta, high: timedelta) -> timedelta:
    if value < low:
        raise fail(
            f"{format_duration(value)} is shorter than {format_duration(low)}, the minimum"
            f" for {field}"
        )
    if value > high:
        raise fail(
            f"{format_duration(value)} is longer than {format_duration(high)}, the maximum"
            f" for {field}"
        )
    return value


# --- SSM tags ------------------------------------------------------------------------------


def ssm_text_ok(text: str) -> bool:
    """SSM's tag pattern: Unicode letters, separators and numbers, plus ``_.:/=+-@``.

    ASCII text (nearly every tag) is checked in one regex match; in ASCII the letters,
    separators and numbers are exactly ``A-Za-z``, the space and ``0-9``."""
    if text.isascii():
        return _ASCII_TAG_TEXT.fullmatch(text) is not None
    return all(ch in _TAG_SYMBOLS or unicodedata.category(ch)[0] in "LZN" for ch in text)


def is_reserved_tag_key(key: str) -> bool:
    lowered = key.lower()
    return lowered.startswith("aws:") or lowered.startswith(CONTROLLER_TAG_PREFIX)


def tag_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be written to an SSM managed instance, or None if it can."""
    if not key:
        return "tag keys must not be empty (1 to 128 characters)"
    if len(key) > SSM_TAG_KEY_MAX:
        return f"tag key is {len(key)} characters; SSM allows 1 to {SSM_TAG_KEY_MAX}"
    if key.lower().startswith("aws:"):
        return f"tag key {key!r} starts with 'aws:', which AWS reserves for its own tags"
    if key.lower().startswith(CONTROLLER_TAG_PREFIX):
        return (
            f"tag key {key!r} starts with {CONTROLLER_TAG_PREFIX!r}, which is reserved for the"
            " controller's own tags"
        )
    if not ssm_text_ok(key):
        return (
            f"tag key {key!r} has characters SSM does not allow; allowed are letters, digits,"
            " spaces and _ . : / = + - @"
        )
    return None


def tag_value_problem(value: str) -> str | None:
    if len(value) > SSM_TAG_VALUE_MAX:
        return f"tag value is {len(value)} characters; SSM allows 0 to {SSM_TAG_VALUE_MAX}"
    if not ssm_text_ok(value):
        return (
            f"tag value {value!r:.80} has characters SSM does not allow; allowed are letters,"
            " digits, spaces and _ . : / = + - @"
        )
    return None


def _check_tag_count(tags: dict[str, str]) -> dict[str, str]:
    if len(tags) > MAX_USER_TAGS:
        raise fail(
            f"{len(tags)} tags; at most {MAX_USER_TAGS} are allowed (AWS allows"
            f" {AWS_MAX_TAGS_PER_RESOURCE} per resource and {CONTROLLER_TAG_BUDGET} are kept for"
            " the controller's own tags)"
        )
    return tags


TagKey = Annotated[str, AfterValidator(rejecting(tag_key_problem))]
"""A key the controller may write on an SSM resource (valid, not reserved)."""

TagValue = Annotated[str, AfterValidator(rejecting(tag_value_problem))]

TagMap = Annotated[dict[TagKey, TagValue], AfterValidator(_check_tag_count)]


# --- glob patterns -------------------------------------------------------------------------


def _check_glob(pattern: str) -> str:
    if not pattern:
        raise fail("patterns must not be empty; use * to match every key")
    if len(pattern) > 256:
        raise fail(f"pattern is {len(pattern)} characters; at most 256 are allowed")
    try:
        re.compile(fnmatch.translate(pattern))
    except re.error as exc:
        raise fail(f"{pattern!r} is not a valid glob pattern ({exc}); use *, ? and [abc]") from exc
    return pattern


GlobPattern = Annotated[str, AfterValidator(_check_glob)]
"""A shell-style pattern (``*``, ``?``, ``[abc]``) matched case-sensitively, like AWS tag keys."""


def glob_match(key: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(key, pattern)


# --- descriptions for messages --------------------------------------------------------------


def describe(value: Any) -> str:
    """How YAML read a value, for messages like 'expected a string, got the integer 5'."""
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r:.60}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, bytes):
        return "binary data"
    return f"a {type(value).__name__} ({value})"
