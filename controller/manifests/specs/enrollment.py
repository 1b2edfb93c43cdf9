"""Enrollment: WorkSpaces that ask the controller for their own one-time activation.

A WorkSpace in the named directories proves who it is to the enrollment endpoint (its source
address and computer name against DescribeWorkspaces) and receives an activation made for it alone:
RegistrationLimit 1, expiring after ``validFor``, named after its computer, and tagged with the
owner tag, the WorkSpace-ID join tag and every tag its TagSyncs want. Each field here is an input to
CreateActivation, checked against its constraints in botocore's ssm model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, field_validator

from controller.manifests.common import (
    Duration,
    Problem,
    SpecModel,
    StrictModel,
    TagMap,
    check_duration,
    fail,
)
from controller.manifests.document import Manifest
from controller.manifests.errors import ManifestError
from controller.manifests.specs.activation import check_iam_role
from controller.manifests.specs.tagsync import DirectoryId

KIND = "Enrollment"

VALID_FOR_DEFAULT = timedelta(hours=1)
VALID_FOR_MIN = timedelta(minutes=15)
"""Long enough for a WorkSpace to download and install the agent, and for a controller clock a few
minutes behind AWS's not to create an activation that is already expired."""
VALID_FOR_MAX = timedelta(hours=24)
"""AWS allows 30 days; a code handed out over the network should die young. CreateActivation's
own default is 24 hours."""
CONTROLLER_TAGS = 3
"""Tags every per-WorkSpace activation carries for the controller: owner, manifest, workspace-id."""


class EnrollmentScope(StrictModel):
    """The directories whose AVAILABLE WorkSpaces may enroll (nothing outside them ever can)."""

    directory_ids: list[DirectoryId]

    @field_validator("directory_ids")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise fail("name at least one directory: only its WorkSpaces may enroll")
        return value


class EnrollmentSpec(SpecModel):
    @classmethod
    def check_set(cls, by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
        return check_enrollments(by_kind)

    iam_role: Annotated[str, AfterValidator(check_iam_role)]
    workspaces: EnrollmentScope
    valid_for: Duration = VALID_FOR_DEFAULT
    tags: TagMap = {}

    @field_validator("valid_for")
    @classmethod
    def _valid_for(cls, value: timedelta) -> timedelta:
        return check_duration(value, field="validFor", low=VALID_FOR_MIN, high=VALID_FOR_MAX)

    def problems(self) -> list[Problem]:
        seen: dict[str, int] = {}
        problems = []
        for index, directory in enumerate(self.workspaces.directory_ids):
            if directory in seen:
                problems.append(
                    Problem(
                        ("workspaces", "directoryIds", index),
                        f"{directory} is listed twice (also at"
                        f" workspaces.directoryIds[{seen[directory]}])",
                    )
                )
            seen.setdefault(directory, index)
        return problems


def check_enrollments(by_kind: Mapping[str, Sequence[Manifest]]) -> list[ManifestError]:
    """One directory, one Enrollment: two would disagree on the role and tags of its WorkSpaces."""
    errors: list[ManifestError] = []
    owner: dict[str, tuple[Manifest, int]] = {}
    ordered = sorted(by_kind.get(KIND, ()), key=lambda m: (m.source.file, m.source.line))
    for manifest in ordered:
        for index, directory in enumerate(manifest.spec.workspaces.directory_ids):
            first = owner.setdefault(directory, (manifest, index))
            if first[0] is manifest:
                continue
            other, other_index = first
            path = ("spec", "workspaces", "directoryIds", other_index)
            errors.append(
                manifest.error(
                    ("spec", "workspaces", "directoryIds", index),
                    f"{directory} is already enrolled by {other.ref} ({other.where_is(path)});"
                    " a directory can belong to one Enrollment only",
                )
            )
    return errors
