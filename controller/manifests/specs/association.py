"""Association: a State Manager association, for a Package (through the detection document) or
any document, with targets, a schedule or a slot in a stagger group, and rollout controls.

Limits are CreateAssociation's (botocore): Targets <= 5 entries of <= 50 values, AssociationName
``^[a-zA-Z0-9_\\-.]{3,128}$``, MaxConcurrency/MaxErrors patterns; schedules as State Manager
accepts them (controller/manifests/schedule.py). A stagger group (``schedule.stagger``) gives each member its own daily
time ``start + k * every`` inside ``window``; a group with more members than slots is invalid.
A package reference names a Package manifest of the same revision (by manifest or package name):
an unknown one is a located error at load time, and ``resolve_package`` finds it again for the
kind, so nothing is written into a validated spec.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from controller.manifests.common import (
    Duration,
    Problem,
    SpecModel,
    StrictModel,
    fail,
    format_duration,
    rejecting,
)
from controller.manifests.document import Manifest
from controller.manifests.errors import ManifestError
from controller.manifests.schedule import normalize_expression as normalize_expression
from controller.manifests.schedule import options_problem, schedule_kind, schedule_problem
from controller.manifests.source import FieldPath

KIND = "Association"
PACKAGE_KIND = "Package"

MAX_TARGETS = 5  # CreateAssociation Targets: max 5
MAX_TARGET_VALUES = 50  # Target Values: max 50
ASSOCIATION_NAME_MIN = 3
DAY = timedelta(days=1)
DEFAULT_WINDOW = timedelta(hours=1)
DEFAULT_EVERY = timedelta(minutes=5)
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNSPECIFIED")
_DOCUMENT = re.compile(r"[a-zA-Z0-9_\-.:/]{3,128}")
_DOCUMENT_VERSION = re.compile(r"\$LATEST|\$DEFAULT|[1-9][0-9]*")
_PACKAGE_VERSION = re.compile(r"[a-zA-Z0-9_\-.]{1,128}")
_INSTANCE_ID = re.compile(r"(i-(\w{8}|\w{17}))|(mi-\w{17})")
_MAX_CONCURRENCY = re.compile(r"[1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%")
_MAX_ERRORS = re.compile(r"[1-9][0-9]*|0|[1-9][0-9]%|[0-9]%|100%")
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_DAYS = re.compile(
    r"\*|(MON|TUE|WED|THU|FRI|SAT|SUN|[1-7])(-(MON|TUE|WED|THU|FRI|SAT|SUN|[1-7]))?"
    r"(,(MON|TUE|WED|THU|FRI|SAT|SUN|[1-7])(-(MON|TUE|WED|THU|FRI|SAT|SUN|[1-7]))?)*"
)
_GROUP = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_ARGUMENT_KEY = re.compile(r"SSM_[A-Za-z0-9_]{1,120}")


def _check_schedule_expression(value: str) -> str:
    return normalize_expression(rejecting(schedule_problem)(value))


def _check_document_name(value: str) -> str:
    if not _DOCUMENT.fullmatch(value):
        raise fail(f"{value!r:.80} is not an SSM document name or ARN (3 to 128 of a-zA-Z0-9_-.:/)")
    return value


def _check_document_version(value: str) -> str:
    if not _DOCUMENT_VERSION.fullmatch(value):
        raise fail(f"{value!r:.80}: use $DEFAULT, $LATEST or a version number")
    return value


def _check_package_version(value: str) -> str:
    if value != "latest" and not _PACKAGE_VERSION.fullmatch(value):
        raise fail(f"{value!r:.80}: use latest or a package version (a-zA-Z0-9_-., up to 128)")
    return value


def _check_argument_key(value: str) -> str:
    if not _ARGUMENT_KEY.fullmatch(value):
        raise fail(
            f"{value!r:.80}: Distributor passes additional arguments whose names start with"
            " SSM_ (letters, digits and _ after it) to the package's scripts"
        )
    return value


ADDITIONAL_ARGUMENTS_MAX_CHARS = 4096
"""additionalArguments travel, as compact JSON, beside the detection rules in one run of the
detection document, and SSM's 64 KB quota on a document counts its runtime parameters: the
document (about 40 KB) and the largest rules (controller/detection/SPEC.md, "Limits") leave 8 KB
for the other parameters, half of it for these."""


def _check_additional_arguments(value: dict[str, str]) -> dict[str, str]:
    size = len(json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True))
    if size > ADDITIONAL_ARGUMENTS_MAX_CHARS:
        raise fail(
            f"{size} characters as JSON, more than {ADDITIONAL_ARGUMENTS_MAX_CHARS}: they travel"
            " with the detection rules within SSM's 64 KB document quota; ship large settings in"
            " the package instead"
        )
    return value


class PackageRef(StrictModel):
    """Install or uninstall a Package of this desired state through the detection document."""

    name: str = Field(min_length=1)
    version: Annotated[str, AfterValidator(_check_package_version)] = "latest"
    action: Literal["Install", "Uninstall"] = "Install"
    installation_type: Literal["Uninstall and reinstall", "In-place update"] = (
        "Uninstall and reinstall"
    )
    additional_arguments: Annotated[
        dict[Annotated[str, AfterValidator(_check_argument_key)], str],
        AfterValidator(_check_additional_arguments),
    ] = {}


class DocumentRef(StrictModel):
    """Any document, with its parameters as given (a string is a one-value list)."""

    name: Annotated[str, AfterValidator(_check_document_name)]
    version: Annotated[str, AfterValidator(_check_document_version)] = "$DEFAULT"
    parameters: dict[str, str | list[str]] = {}

    def parameter_lists(self) -> dict[str, list[str]]:
        return {k: [v] if isinstance(v, str) else list(v) for k, v in self.parameters.items()}


class TargetsSpec(StrictModel):
    tags: dict[str, str | list[str]] = {}
    instance_ids: list[str] = []

    def targets(self) -> list[dict[str, Any]]:
        """AWS Targets, sorted by key with sorted values (the normal form the diff compares)."""
        found = [
            {
                "Key": f"tag:{key}",
                "Values": sorted({value} if isinstance(value, str) else set(value)),
            }
            for key, value in self.tags.items()
        ]
        if self.instance_ids:
            found.append({"Key": "InstanceIds", "Values": sorted(set(self.instance_ids))})
        return sorted(found, key=lambda t: t["Key"])

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        entries = len(self.tags) + (1 if self.instance_ids else 0)
        if entries == 0:
            problems.append(Problem(("targets",), "needs tags or instanceIds to select instances"))
        if entries > MAX_TARGETS:
            problems.append(
                Problem(
                    ("targets",),
                    f"{entries} targets; an association takes at most {MAX_TARGETS} (each tag key"
                    " is one, instanceIds is one)",
                )
            )
        for key, value in self.tags.items():
            values = [value] if isinstance(value, str) else value
            if not key or len(key) > 128 or key.lower().startswith("aws:"):
                problems.append(
                    Problem(("targets", "tags", key), f"{key!r:.80} is not a tag key to target")
                )
            if not values or len(values) > MAX_TARGET_VALUES:
                problems.append(
                    Problem(
                        ("targets", "tags", key),
                        f"{len(values)} values; a target takes 1 to {MAX_TARGET_VALUES}",
                    )
                )
        if len(self.instance_ids) > MAX_TARGET_VALUES:
            problems.append(
                Problem(
                    ("targets", "instanceIds"),
                    f"{len(self.instance_ids)} instance ids; a target takes at most"
                    f" {MAX_TARGET_VALUES} (target by tag instead)",
                )
            )
        for index, instance_id in enumerate(self.instance_ids):
            if not _INSTANCE_ID.fullmatch(instance_id):
                problems.append(
                    Problem(
                        ("targets", "instanceIds", index),
                        f"{instance_id!r:.80} is not an instance id (mi-... or i-...)",
                    )
                )
        return problems


class StaggerSpec(StrictModel):
    """Membership of a stagger group; start/every/window/days may be given by any member and must
    agree where more than one gives them."""

    group: str
    start: str | None = None
    every: Duration | None = None
    window: Duration | None = None
    days: str | None = None

    @field_validator("group")
    @classmethod
    def _group(cls, value: str) -> str:
        if not _GROUP.fullmatch(value):
            raise fail(f"{value!r:.80} is not a group name: lowercase letters, digits and '-'")
        return value

    @field_validator("start")
    @classmethod
    def _start(cls, value: str | None) -> str | None:
        if value is not None and not _TIME.fullmatch(value):
            raise fail(f"{value!r:.80} is not a time of day: use HH:MM in UTC, e.g. 08:00")
        return value

    @field_validator("every")
    @classmethod
    def _every(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and (value < timedelta(minutes=1) or value.total_seconds() % 60):
            raise fail(f"{format_duration(value)}: every must be a whole number of minutes, >= 1m")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and not timedelta(minutes=1) <= value <= DAY:
            raise fail(f"{format_duration(value)}: a window is 1m to 1d (slots repeat daily)")
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: str | None) -> str | None:
        if value is not None and not _DAYS.fullmatch(value.upper()):
            raise fail(f"{value!r:.80} is not a cron day-of-week field: *, MON-FRI, SAT,SUN, 2-6")
        return value.upper() if value is not None else None


class ScheduleSpec(StrictModel):
    """A cron/rate/at expression or a slot in a stagger group (which is a daily cron), and an
    optional ScheduleOffset in days (cron only, with applyOnlyAtCronInterval)."""

    expression: Annotated[str, AfterValidator(_check_schedule_expression)] | None = None
    stagger: StaggerSpec | None = None
    offset: int | None = None

    @property
    def kind(self) -> str | None:
        """cron, rate or at (a stagger slot is a daily cron expression)."""
        if self.stagger is not None:
            return "cron"
        return schedule_kind(self.expression) if self.expression is not None else None


@dataclass(frozen=True)
class StaggerGroup:
    """A group's settings as every member resolved them."""

    name: str
    start_minute: int  # minutes after midnight UTC
    every_minutes: int
    slots: int
    days: str

    def expression(self, slot: int) -> str:
        minute_of_day = (self.start_minute + slot * self.every_minutes) % 1440
        hour, minute = divmod(minute_of_day, 60)
        if self.days == "*":
            return f"cron({minute} {hour} ? * * *)"
        return f"cron({minute} {hour} ? * {self.days} *)"

    def slot_of(self, expression: str | None) -> int | None:
        """The slot a live schedule occupies in this group, or None when it is none of them."""
        if not expression:
            return None
        for slot in range(self.slots):
            if normalize_expression(expression) == self.expression(slot):
                return slot
        return None

    def time_of(self, slot: int) -> str:
        minute_of_day = (self.start_minute + slot * self.every_minutes) % 1440
        return f"{minute_of_day // 60:02d}:{minute_of_day % 60:02d}"


@dataclass(frozen=True)
class ResolvedPackage:
    """What an association needs from the Package it installs (see ``resolve_package``)."""

    manifest: str
    package: str  # the Distributor package (document) name
    rules: Any  # AllOf | AnyOf | LeafRule


def resolve_package(reference: str, packages: Sequence[Manifest]) -> ResolvedPackage | None:
    """The Package a ``spec.package.name`` names: by manifest name first, then package name."""
    by_name = {m.name: m for m in packages}
    by_package = {m.spec.name: m for m in packages}
    target = by_name.get(reference) or by_package.get(reference)
    if target is None:
        return None
    return ResolvedPackage(target.name, target.spec.name, target.spec.rule)


class AssociationSpec(SpecModel):
    @classmethod
    def check_set(cls, by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
        return check_associations(by_kind)

    package: PackageRef | None = None
    document: DocumentRef | None = None
    targets: TargetsSpec
    schedule: ScheduleSpec | None = None
    max_concurrency: str | None = None
    max_errors: str | None = None
    compliance_severity: Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNSPECIFIED"] = "UNSPECIFIED"
    sync_compliance: Literal["AUTO", "MANUAL"] = "AUTO"
    apply_only_at_cron_interval: bool = False

    @field_validator("max_concurrency")
    @classmethod
    def _concurrency(cls, value: str | None) -> str | None:
        if value is not None and not _MAX_CONCURRENCY.fullmatch(value):
            raise fail(
                f"{value!r:.80}: use a number of instances (>= 1) or a percentage 1% to 100%"
            )
        return value

    @field_validator("max_errors")
    @classmethod
    def _errors(cls, value: str | None) -> str | None:
        if value is not None and not _MAX_ERRORS.fullmatch(value):
            raise fail(f"{value!r:.80}: use a number of errors (>= 0) or a percentage 0% to 100%")
        return value

    def problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if (self.package is None) == (self.document is None):
            problems.append(
                Problem(
                    (),
                    "give exactly one of package (a Package of this desired state) or"
                    " document (any SSM document name with parameters)",
                )
            )
        problems += self.targets.problems()
        schedule = self.schedule
        if schedule is not None and (schedule.expression is None) == (schedule.stagger is None):
            problems.append(
                Problem(("schedule",), "give exactly one of expression (cron/rate) or stagger")
            )
        found = options_problem(
            schedule.kind if schedule is not None else None,
            apply_only_at_cron_interval=self.apply_only_at_cron_interval,
            offset=schedule.offset if schedule is not None else None,
        )
        if found is not None:
            field, message = found
            where = ("schedule", "offset") if field == "offset" else ("applyOnlyAtCronInterval",)
            problems.append(Problem(where, message))
        return problems


def _group_settings(
    members: list[Manifest],
) -> tuple[StaggerGroup | None, list[ManifestError]]:
    """Merge the settings members give; disagreement or a missing start is an error."""
    errors: list[ManifestError] = []
    chosen: dict[str, tuple[Any, Manifest]] = {}
    for manifest in members:
        stagger: StaggerSpec = manifest.spec.schedule.stagger
        for field in ("start", "every", "window", "days"):
            value = getattr(stagger, field)
            if value is None:
                continue
            path: FieldPath = ("spec", "schedule", "stagger", field)
            if field not in chosen:
                chosen[field] = (value, manifest)
            elif chosen[field][0] != value:
                other_value, other = chosen[field]
                shown = (
                    format_duration(other_value)
                    if isinstance(other_value, timedelta)
                    else other_value
                )
                errors.append(
                    manifest.error(
                        path,
                        f"stagger group {stagger.group} already has {field} {shown} from"
                        f" {other.ref} ({other.where_is(path)}); members must agree",
                    )
                )
    first = members[0]
    group_name = first.spec.schedule.stagger.group
    if "start" not in chosen:
        errors.append(
            first.error(
                ("spec", "schedule", "stagger", "start"),
                f"stagger group {group_name} has no start time: give start (HH:MM, UTC) on one"
                " of its members",
            )
        )
    if errors:
        return None, errors
    hours, minutes = (int(part) for part in chosen["start"][0].split(":"))
    every: timedelta = chosen.get("every", (DEFAULT_EVERY, first))[0]
    window: timedelta = chosen.get("window", (DEFAULT_WINDOW, first))[0]
    every_minutes = int(every.total_seconds() // 60)
    slots = max(1, -(-int(window.total_seconds() // 60) // every_minutes))
    group = StaggerGroup(
        group_name, hours * 60 + minutes, every_minutes, slots, chosen.get("days", ("*", first))[0]
    )
    if len(members) > slots:
        source = chosen.get("window", chosen["start"])[1]
        field = "window" if "window" in chosen else "start"
        last = group.time_of(slots - 1)
        errors.append(
            source.error(
                ("spec", "schedule", "stagger", field),
                f"stagger group {group_name} has {len(members)} members but its window"
                f" ({format_duration(window)}) holds {slots} slot(s) every"
                f" {format_duration(every)} ({group.time_of(0)} to {last}); member"
                f" {len(members)} would need {group.time_of(len(members) - 1)}, beyond the"
                " window: widen window or shorten every",
            )
        )
        return None, errors
    return group, errors


def stagger_members(manifests: Sequence[Manifest]) -> dict[str, list[Manifest]]:
    """Group name -> its member associations, in name order."""
    groups: dict[str, list[Manifest]] = defaultdict(list)
    for manifest in sorted(manifests, key=lambda m: m.name):
        schedule = manifest.spec.schedule
        if schedule is not None and schedule.stagger is not None:
            groups[schedule.stagger.group].append(manifest)
    return dict(groups)


def stagger_groups(manifests: Sequence[Manifest]) -> dict[str, StaggerGroup]:
    """Group name -> its settings as the members give them (valid desired state: no errors)."""
    found: dict[str, StaggerGroup] = {}
    for name, members in stagger_members(manifests).items():
        group, _ = _group_settings(members)
        if group is not None:
            found[name] = group
    return found


def check_associations(by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
    """Package references resolve; names fit AssociationName; stagger groups fit their windows."""
    errors: list[ManifestError] = []
    packages = list(by_kind.get(PACKAGE_KIND, ()))
    known_packages = ", ".join(sorted(m.name for m in packages)) or "none"
    for manifest in sorted(by_kind.get(KIND, ()), key=lambda m: m.name):
        spec: AssociationSpec = manifest.spec
        if len(manifest.name) < ASSOCIATION_NAME_MIN:
            errors.append(
                manifest.error(
                    ("metadata", "name"),
                    f"{manifest.name!r} is too short for an AssociationName (3 to 128 characters)",
                )
            )
        if spec.package is not None and resolve_package(spec.package.name, packages) is None:
            errors.append(
                manifest.error(
                    ("spec", "package", "name"),
                    f"unknown package {spec.package.name!r:.80}: no valid Package manifest has"
                    f" that name (Packages in this desired state: {known_packages})",
                )
            )
    for members in stagger_members(by_kind.get(KIND, ())).values():
        errors += _group_settings(members)[1]
    return errors
