"""TagSync: copy WorkSpace tags and attributes onto the matching SSM managed instance.

The controller owns exactly the keys a TagSync can produce (see ``owns_key``) and never touches
any other key, so the checks here make sure the produced keys are writable, unambiguous inside one
spec, and not claimed by two TagSyncs that may select the same WorkSpace.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field, field_validator

from controller.manifests.common import (
    MAX_USER_TAGS,
    GlobPattern,
    Problem,
    SpecModel,
    StrictModel,
    TagKey,
    TagMap,
    fail,
    glob_match,
    is_reserved_tag_key,
    tag_key_problem,
)
from controller.manifests.document import Manifest, format_path
from controller.manifests.errors import ManifestError
from controller.manifests.source import FieldPath

KIND = "TagSync"

WorkspaceState = Literal[
    "PENDING",
    "AVAILABLE",
    "IMPAIRED",
    "UNHEALTHY",
    "REBOOTING",
    "STARTING",
    "REBUILDING",
    "RESTORING",
    "MAINTENANCE",
    "ADMIN_MAINTENANCE",
    "TERMINATING",
    "TERMINATED",
    "SUSPENDED",
    "UPDATING",
    "STOPPING",
    "STOPPED",
    "ERROR",
]
"""botocore's workspaces ``WorkspaceState`` enum (a test keeps the two equal)."""

WORKSPACE_STATES: tuple[str, ...] = get_args(WorkspaceState)
DEFAULT_STATES: list[WorkspaceState] = ["AVAILABLE", "STOPPED"]

MatchBy = Literal["computerName", "ipAddress"]
DEFAULT_MATCH_ORDER: tuple[MatchBy, ...] = ("computerName", "ipAddress")

WORKSPACES_TAG_KEY_MAX = 127  # workspaces TagKey: 1..127

_DIRECTORY_ID = re.compile(r"(d-[0-9a-f]{8,63})|(wsd-[0-9a-z]{8,63})")  # workspaces DirectoryId
_BUNDLE_ID = re.compile(r"wsb-[0-9a-z]{8,63}")  # workspaces BundleId


def _check_directory_id(value: str) -> str:
    if not _DIRECTORY_ID.fullmatch(value):
        raise fail(f"{value!r:.80} is not a WorkSpaces directory id (d-0123456789 or wsd-...)")
    return value


def _check_bundle_id(value: str) -> str:
    if not _BUNDLE_ID.fullmatch(value):
        raise fail(f"{value!r:.80} is not a WorkSpaces bundle id (wsb-0123abcd...)")
    return value


def _check_workspaces_key(value: str) -> str:
    if not 1 <= len(value) <= WORKSPACES_TAG_KEY_MAX:
        raise fail(f"WorkSpaces tag keys are 1 to {WORKSPACES_TAG_KEY_MAX} characters")
    return value


DirectoryId = Annotated[str, AfterValidator(_check_directory_id)]
BundleId = Annotated[str, AfterValidator(_check_bundle_id)]
WorkspacesTagKey = Annotated[str, AfterValidator(_check_workspaces_key)]


class WorkspaceSelector(StrictModel):
    """Which WorkSpaces: an empty id list means any; a WorkSpace must match every given list."""

    directory_ids: list[DirectoryId] = []
    bundle_ids: list[BundleId] = []
    states: list[WorkspaceState] = Field(default_factory=lambda: list(DEFAULT_STATES))

    @field_validator("states")
    @classmethod
    def _some_state(cls, value: list[WorkspaceState]) -> list[WorkspaceState]:
        if not value:
            raise fail(f"list at least one state (default {', '.join(DEFAULT_STATES)})")
        return value

    def selects(self, directory_id: str, bundle_id: str, state: str) -> bool:
        return (
            (not self.directory_ids or directory_id in self.directory_ids)
            and (not self.bundle_ids or bundle_id in self.bundle_ids)
            and state in self.states
        )

    def may_overlap(self, other: WorkspaceSelector) -> bool:
        """Could one WorkSpace be selected by both (ever, so states are not considered)?"""
        dirs_disjoint = bool(self.directory_ids and other.directory_ids) and not (
            set(self.directory_ids) & set(other.directory_ids)
        )
        bundles_disjoint = bool(self.bundle_ids and other.bundle_ids) and not (
            set(self.bundle_ids) & set(other.bundle_ids)
        )
        return not (dirs_disjoint or bundles_disjoint)


class MatchSpec(StrictModel):
    """How a WorkSpace finds its managed instance before the workspace-id tag joins them."""

    order: list[MatchBy] = Field(default_factory=lambda: list(DEFAULT_MATCH_ORDER))

    @field_validator("order")
    @classmethod
    def _some(cls, value: list[MatchBy]) -> list[MatchBy]:
        if not value:
            raise fail("list at least one of computerName, ipAddress")
        return value


class CopyTags(StrictModel):
    include: list[GlobPattern] = []
    exclude: list[GlobPattern] = []
    rename: dict[WorkspacesTagKey, TagKey] = {}


class Attributes(StrictModel):
    """WorkSpace attribute -> the tag key to write it under."""

    user_name: TagKey | None = None
    bundle_id: TagKey | None = None
    directory_id: TagKey | None = None
    running_mode: TagKey | None = None
    compute_type: TagKey | None = None
    operating_system: TagKey | None = None
    computer_name: TagKey | None = None
    ip_address: TagKey | None = None


ATTRIBUTE_NAMES: tuple[str, ...] = tuple(
    (info.alias or name) for name, info in Attributes.model_fields.items()
)
"""The YAML names of the attributes, e.g. ``userName``, in declaration order."""


class TagSyncSpec(SpecModel):
    @classmethod
    def check_set(cls, by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
        return check_tag_syncs(by_kind)

    workspaces: WorkspaceSelector = Field(default_factory=WorkspaceSelector)
    match: MatchSpec = Field(default_factory=MatchSpec)
    copy_tags: CopyTags = Field(default_factory=CopyTags)
    attributes: Attributes = Field(default_factory=Attributes)
    static_tags: TagMap = {}

    # --- what this spec writes ----------------------------------------------------------

    def attribute_keys(self) -> dict[str, str]:
        """Attribute YAML name (``userName``) -> tag key, for the attributes that are set."""
        values = self.attributes.model_dump(by_alias=True)
        return {name: values[name] for name in ATTRIBUTE_NAMES if values[name] is not None}

    def fixed_keys(self) -> dict[str, FieldPath]:
        """Keys written whenever their source exists: static, attribute and rename targets,
        each with the spec path that asks for it (the first one when validation failed)."""
        keys: dict[str, FieldPath] = {}
        for key in self.static_tags:
            keys.setdefault(key, ("staticTags", key))
        for name, key in self.attribute_keys().items():
            keys.setdefault(key, ("attributes", name))
        for source, target in self.copy_tags.rename.items():
            keys.setdefault(target, ("copyTags", "rename", source))
        return keys

    def copies(self, workspace_key: str) -> bool:
        """Is this WorkSpace tag key copied (matched by an include and by no exclude)?"""
        return any(glob_match(workspace_key, p) for p in self.copy_tags.include) and not any(
            glob_match(workspace_key, p) for p in self.copy_tags.exclude
        )

    def produced_keys_for(self, workspace_tag_keys: Iterable[str]) -> dict[str, str]:
        """WorkSpace tag key -> instance tag key, for the tags this spec copies from one WorkSpace.

        Static and attribute keys win over copied ones; a renamed key wins over an unrenamed
        copy of the same name; keys SSM would refuse (``aws:``, ``fleet-controller/``, bad
        characters) are left out, since the WorkSpace may carry AWS-generated tags.
        """
        blocked = set(self.static_tags) | set(self.attribute_keys().values())
        rename = self.copy_tags.rename
        copied = sorted(key for key in set(workspace_tag_keys) if self.copies(key))
        produced: dict[str, str] = {}
        taken: set[str] = set()
        for renamed_first in (True, False):
            for source in copied:
                if (source in rename) != renamed_first:
                    continue
                target = rename.get(source, source)
                if target in blocked or target in taken or tag_key_problem(target):
                    continue
                produced[source] = target
                taken.add(target)
        return dict(sorted(produced.items()))

    def owns_key(self, key: str) -> bool:
        """Does this spec own ``key`` on a managed instance (may add, change and remove it)?

        Exactly the keys it can produce: static keys, attribute keys, rename targets, and keys
        copied unrenamed (an include matches, no exclude matches, not a rename source).
        """
        if is_reserved_tag_key(key) or tag_key_problem(key):
            return False
        if key in self.fixed_keys():
            return True
        if key in self.copy_tags.rename:
            return False
        return self.copies(key)

    # --- checks inside one spec -------------------------------------------------------------

    def problems(self) -> list[Problem]:
        problems = self._duplicates()
        problems += self._collisions()
        problems += self._renames()
        problems += self._reserved_patterns()
        count = len(self.fixed_keys())
        if count > MAX_USER_TAGS:
            problems.append(
                Problem(
                    (),
                    f"staticTags, attributes and renames produce {count} keys; at most"
                    f" {MAX_USER_TAGS} fit on a managed instance beside the controller's own tags",
                )
            )
        return problems

    def _duplicates(self) -> list[Problem]:
        problems = []
        lists: list[tuple[FieldPath, Sequence[str]]] = [
            (("workspaces", "directoryIds"), self.workspaces.directory_ids),
            (("workspaces", "bundleIds"), self.workspaces.bundle_ids),
            (("workspaces", "states"), self.workspaces.states),
            (("match", "order"), self.match.order),
        ]
        for path, items in lists:
            seen: dict[str, int] = {}
            for index, item in enumerate(items):
                if item in seen:
                    problems.append(
                        Problem(
                            (*path, index),
                            f"{item} is listed twice (also at {format_path(path)}[{seen[item]}])",
                        )
                    )
                seen.setdefault(item, index)
        return problems

    def _collisions(self) -> list[Problem]:
        """Every produced key must have one source: static, one attribute or one rename."""
        problems = []
        claimed: dict[str, FieldPath] = {}

        def claim(key: str, path: FieldPath) -> None:
            other = claimed.setdefault(key, path)
            if other != path:
                problems.append(
                    Problem(
                        path,
                        f"tag key {key!r} is also produced by spec.{format_path(other)}; each key"
                        " written to an instance needs exactly one source",
                    )
                )

        for key in self.static_tags:
            claim(key, ("staticTags", key))
        for name, key in self.attribute_keys().items():
            claim(key, ("attributes", name))
        for source, target in self.copy_tags.rename.items():
            claim(target, ("copyTags", "rename", source))
        return problems

    def _renames(self) -> list[Problem]:
        problems = []
        include = self.copy_tags.include
        for source in self.copy_tags.rename:
            path: FieldPath = ("copyTags", "rename", source)
            if not any(glob_match(source, p) for p in include):
                patterns = ", ".join(repr(p) for p in include) or "none"
                problems.append(
                    Problem(
                        path,
                        f"rename source {source!r} is not matched by any copyTags.include pattern"
                        f" (patterns: {patterns}); include it or drop the rename",
                    )
                )
                continue
            excluded = [p for p in self.copy_tags.exclude if glob_match(source, p)]
            if excluded:
                problems.append(
                    Problem(
                        path,
                        f"rename source {source!r} is excluded by copyTags.exclude pattern"
                        f" {excluded[0]!r}, so the rename can never apply",
                    )
                )
        return problems

    def _reserved_patterns(self) -> list[Problem]:
        problems = []
        for index, pattern in enumerate(self.copy_tags.include):
            if is_reserved_tag_key(pattern):
                problems.append(
                    Problem(
                        ("copyTags", "include", index),
                        f"pattern {pattern!r} only matches reserved keys (aws: or"
                        " fleet-controller/), which SSM or the controller will not let it write",
                    )
                )
        return problems


def check_tag_syncs(by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
    """Two TagSyncs that may select one WorkSpace must not both own a key they write.

    Candidates are found through a directory index, so many per-directory TagSyncs are not
    compared pair by pair; one without directoryIds is compared with every earlier one."""
    errors: list[ManifestError] = []
    ordered = sorted(by_kind.get(KIND, ()), key=lambda m: (m.source.file, m.source.line))
    by_directory: dict[str, list[int]] = defaultdict(list)
    any_directory: list[int] = []
    for position, later in enumerate(ordered):
        selector: WorkspaceSelector = later.spec.workspaces
        candidates: Iterable[int] = range(position)
        if selector.directory_ids:
            shared = {i for d in selector.directory_ids for i in by_directory.get(d, ())}
            candidates = sorted(shared.union(any_directory))
        for index in candidates:
            earlier = ordered[index]
            if selector.may_overlap(earlier.spec.workspaces):
                errors.extend(_key_conflicts(earlier, later))
        for directory in set(selector.directory_ids):
            by_directory[directory].append(position)
        if not selector.directory_ids:
            any_directory.append(position)
    return errors


def _key_conflicts(earlier: Manifest, later: Manifest) -> list[ManifestError]:
    mine: TagSyncSpec = later.spec
    theirs: TagSyncSpec = earlier.spec
    errors: list[ManifestError] = []
    overlap = (
        f"{earlier.ref} ({earlier.where}) selects WorkSpaces this TagSync may select too;"
        " give the key one owner, or make directoryIds or bundleIds disjoint"
    )
    my_fixed = mine.fixed_keys()
    for key, path in my_fixed.items():
        if theirs.owns_key(key):
            errors.append(later.spec_error(path, f"tag key {key!r} is also written by {overlap}"))
    for key in theirs.fixed_keys():
        if key in my_fixed or not mine.owns_key(key):
            continue
        index = next(i for i, p in enumerate(mine.copy_tags.include) if glob_match(key, p))
        errors.append(
            later.spec_error(
                ("copyTags", "include", index),
                f"pattern {mine.copy_tags.include[index]!r} copies tag key {key!r}, which"
                f" is also written by {overlap}",
            )
        )
    return errors
