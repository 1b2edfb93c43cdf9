"""Per-WorkSpace activations: created on a proven ask, handed out again while unused, never piled up.

An activation for one WorkSpace has RegistrationLimit 1, expires after the Enrollment's
``validFor``, is named after the WorkSpace's computer (DefaultInstanceName) and carries the owner
tag, the Enrollment's manifest tag, the WorkSpace-ID join tag and every tag its TagSyncs want: AWS
copies an activation's tags onto the instance that registers with it, so the instance arrives
tagged and joined and TagSync has nothing left to write.

Where the code lives between two asks: AWS returns an activation code once, at create. The
controller keeps it only in this process's memory (``CodeVault``), keyed by WorkSpace ID, until the
activation expires, and registers it with the redaction layer the moment it arrives, so no log
line, plan, metric or exception can carry it. It is never written to disk, to SSM, to DynamoDB or
anywhere else an observer (or a backup of it) could read it in clear. The price: a restarted
controller, or another replica taking the target over, no longer knows the codes it handed out.
When such a WorkSpace asks again, its unused activation is found (DescribeActivations filtered by
DefaultInstanceName, the computer name), deleted, and replaced: there is still at most one unused
activation per WorkSpace. Used and expired ones are the Enrollment kind's to delete.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from controller.aws import AwsApi
from controller.aws.tags import tag_dict, tag_list
from controller.contract.ownership import WORKSPACE_ID_TAG, is_owned, manifest_of, owner_tags
from controller.kinds.matching import LiveWorkspace
from controller.kinds.tagsync import wanted_for
from controller.manifests import Manifest
from controller.manifests.common import AWS_MAX_TAGS_PER_RESOURCE, ssm_text_ok
from controller.observability.redaction import register_secret

log = structlog.get_logger("fleet_controller.service.enrollment")

KIND = "Enrollment"
REUSE_MARGIN = timedelta(minutes=10)
"""An unused activation this close to its expiry is replaced rather than handed out again: the
WorkSpace needs time to download and install the agent before it registers."""
DEFAULT_INSTANCE_NAME_MAX = 256  # CreateActivation DefaultInstanceName: 0..256, tag-like pattern
_LOCK_STRIPES = 64


class EnrollmentError(Exception):
    """The desired state cannot produce an activation for this WorkSpace (a configuration error)."""


@dataclass(frozen=True)
class IssuedActivation:
    """An activation handed to one WorkSpace. Lives in memory only; ``code`` never prints."""

    activation_id: str
    code: str = field(repr=False)
    region: str
    expires_at: datetime
    workspace_id: str
    instance_name: str
    issued_at: datetime


class CodeVault:
    """The codes of unused activations, by WorkSpace ID, in this process's memory only."""

    def __init__(self) -> None:
        self._entries: dict[str, IssuedActivation] = {}
        self._lock = threading.Lock()

    def get(self, workspace_id: str) -> IssuedActivation | None:
        with self._lock:
            return self._entries.get(workspace_id)

    def put(self, issued: IssuedActivation) -> None:
        with self._lock:
            self._entries[issued.workspace_id] = issued

    def drop(self, workspace_id: str) -> None:
        with self._lock:
            self._entries.pop(workspace_id, None)

    def prune(self, now: datetime) -> None:
        """Forget codes of expired activations (they register nothing any more)."""
        with self._lock:
            for workspace_id, issued in list(self._entries.items()):
                if issued.expires_at <= now:
                    del self._entries[workspace_id]

    def issued_since(self, moment: datetime) -> int:
        with self._lock:
            return sum(1 for issued in self._entries.values() if issued.issued_at >= moment)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return f"<CodeVault of {len(self)} unused activation(s)>"


def activation_tags(
    enrollment: Manifest,
    tag_syncs: list[Manifest],
    workspace: LiveWorkspace,
    controller_id: str,
) -> dict[str, str]:
    """Every tag the WorkSpace's activation carries (and AWS copies onto its instance).

    TagSync's values win over the Enrollment's own ``tags`` for a key both set, since TagSync
    would otherwise rewrite it on the instance after registration.
    """
    tags = {
        **enrollment.spec.tags,
        **wanted_for(tag_syncs, workspace).tags,
        **owner_tags(controller_id, KIND, enrollment.name),
        WORKSPACE_ID_TAG: workspace.workspace_id,
    }
    if len(tags) > AWS_MAX_TAGS_PER_RESOURCE:
        raise EnrollmentError(
            f"{workspace.workspace_id} would need {len(tags)} tags on its activation; AWS allows"
            f" {AWS_MAX_TAGS_PER_RESOURCE} on a managed instance (its TagSyncs and"
            f" {enrollment.ref} ask for too many)"
        )
    return tags


def _instance_name(workspace: LiveWorkspace) -> str:
    name = workspace.computer_name
    if not name or len(name) > DEFAULT_INSTANCE_NAME_MAX or not ssm_text_ok(name):
        raise EnrollmentError(
            f"{workspace.workspace_id} has computer name {name!r:.80}, which CreateActivation does"
            " not accept as DefaultInstanceName"
        )
    return name


class ActivationIssuer:
    """Creates, hands out again and replaces the per-WorkSpace activations of one target."""

    def __init__(
        self,
        aws: AwsApi,
        controller_id: str,
        clock: Callable[[], datetime] | None = None,
        vault: CodeVault | None = None,
    ) -> None:
        self.aws = aws
        self.controller_id = controller_id
        # AWS's time (its Date headers), not the host's: the expiry sent, the one the WorkSpace
        # is told and the reuse margin are all about an activation AWS expires.
        self.clock = clock or aws.clock.now
        self.vault = vault or CodeVault()
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    def _lock_for(self, workspace_id: str) -> threading.Lock:
        return self._locks[zlib.crc32(workspace_id.encode()) % _LOCK_STRIPES]

    def issue(
        self, workspace: LiveWorkspace, enrollment: Manifest, tag_syncs: list[Manifest]
    ) -> tuple[IssuedActivation, str]:
        """The WorkSpace's unused activation and how it was got: ``reused`` or ``issued``.

        One WorkSpace's asks are served one at a time, so two concurrent asks get one activation.
        """
        name = _instance_name(workspace)
        tags = activation_tags(enrollment, tag_syncs, workspace, self.controller_id)
        with self._lock_for(workspace.workspace_id):
            now = self.clock()
            self.vault.prune(now)
            held = self.vault.get(workspace.workspace_id)
            if held is not None:
                if self._still_usable(held, name, now):
                    return held, "reused"
                self.vault.drop(workspace.workspace_id)
            self._delete_unused(workspace, name)
            issued = self._create(workspace, enrollment, name, tags, now)
            self.vault.put(issued)
            return issued, "issued"

    def _still_usable(self, held: IssuedActivation, name: str, now: datetime) -> bool:
        """Unused, not about to expire, still there, and still for this computer name."""
        if held.instance_name != name or held.expires_at - now < REUSE_MARGIN:
            return False
        found = list(
            self.aws.items(
                "ssm",
                "DescribeActivations",
                Filters=[{"FilterKey": "ActivationIds", "FilterValues": [held.activation_id]}],
            )
        )
        return any(
            item["ActivationId"] == held.activation_id
            and int(item.get("RegistrationsCount", 0)) == 0
            and not item.get("Expired", False)
            for item in found
        )

    def _delete_unused(self, workspace: LiveWorkspace, name: str) -> None:
        """Delete this WorkSpace's unused activations whose code this process does not hold."""
        for item in self.aws.items(
            "ssm",
            "DescribeActivations",
            Filters=[{"FilterKey": "DefaultInstanceName", "FilterValues": [name]}],
        ):
            tags = tag_dict(item.get("Tags"))
            if (
                not is_owned(tags, self.controller_id)
                or manifest_of(tags, KIND) is None
                or tags.get(WORKSPACE_ID_TAG) != workspace.workspace_id
                or int(item.get("RegistrationsCount", 0)) > 0
            ):
                continue
            self.aws.call_if_exists(
                "ssm",
                "DeleteActivation",
                absent="InvalidActivation",
                ActivationId=item["ActivationId"],
            )
            log.info(
                "enrollment activation replaced",
                workspace_id=workspace.workspace_id,
                activation_id=item["ActivationId"],
                reason="unused and its code is not held by this process",
            )

    def _create(
        self,
        workspace: LiveWorkspace,
        enrollment: Manifest,
        name: str,
        tags: dict[str, str],
        now: datetime,
    ) -> IssuedActivation:
        expires_at = now + enrollment.spec.valid_for
        params: dict[str, Any] = {
            "IamRole": enrollment.spec.iam_role,
            "RegistrationLimit": 1,
            "ExpirationDate": expires_at,
            "DefaultInstanceName": name,
            "Description": f"fleet-controller: enrollment of {workspace.workspace_id}",
            "Tags": tag_list(tags),
        }
        created = self.aws.call("ssm", "CreateActivation", **params)
        code = str(created["ActivationCode"])
        register_secret(code)
        return IssuedActivation(
            activation_id=str(created["ActivationId"]),
            code=code,
            region=self.aws.region,
            expires_at=expires_at,
            workspace_id=workspace.workspace_id,
            instance_name=name,
            issued_at=now,
        )
