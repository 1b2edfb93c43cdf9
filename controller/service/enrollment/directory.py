"""The in-scope WorkSpaces of one target, by IP address: what the endpoint checks a caller against.

DescribeWorkspaces cannot be asked "who has this address", so the endpoint keeps an index of the
WorkSpaces of the directories Enrollment manifests name (25 a page, about 2 calls/s on AWS), with
their tags from one tagging-API walk (100 a page). A WorkSpace created since the last read is not
in it, so an address the index does not know (or knows in a state other than AVAILABLE) refreshes
it, at most once per ``min_refresh_seconds`` and never more than half the time (the next refresh
waits at least as long as the last one took); callers arriving during a refresh wait for that one
instead of starting another.

A WorkSpace terminated since the last read, whose address went to another machine, must not be
taken for the one that had it. An answer from an index older than ``max_age_seconds`` starts a
re-read in the background (the ask does not wait for it), so during a boot storm the index stays
within about two minutes, or one read, of AWS at the cost of one read, not one call per ask; an
answer from an index older than ``confirm_after_seconds`` (the re-reads keep failing) is confirmed
by ID before it is believed (one DescribeWorkspaces).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import structlog

from controller.aws import AwsApi, is_access_denied
from controller.aws.tags import tag_dict
from controller.kinds.matching import LiveWorkspace, live_workspace

log = structlog.get_logger("fleet_controller.service.enrollment")

AVAILABLE = "AVAILABLE"


@dataclass(frozen=True)
class Snapshot:
    directories: frozenset[str] = frozenset()
    by_address: dict[str, tuple[LiveWorkspace, ...]] = field(default_factory=dict)
    read_at: float = float("-inf")  # monotonic time the read started
    tags_in_bulk: bool = True  # False when the tagging API was denied: tags read per WorkSpace


class WorkspaceDirectory:
    def __init__(
        self,
        aws: AwsApi,
        min_refresh_seconds: float = 5.0,
        max_age_seconds: float = 120.0,
        confirm_after_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.aws = aws
        self.min_refresh_seconds = min_refresh_seconds
        self.max_age_seconds = max_age_seconds
        self.confirm_after_seconds = confirm_after_seconds
        self._clock = clock
        self._snapshot = Snapshot()
        self._last_duration = 0.0
        self._refreshing = False
        self._background: threading.Thread | None = None
        self._changed = threading.Condition()
        self.refreshes = 0

    # -- looking up --------------------------------------------------------------------------------

    def find(self, address: str, directories: Collection[str]) -> tuple[LiveWorkspace, ...]:
        """The in-scope WorkSpaces whose IpAddress is ``address`` (normally one), fresh enough
        to decide on."""
        scope = frozenset(directories)
        snapshot = self._snapshot
        found = self._in_scope(snapshot, address, scope)
        if (
            not scope <= snapshot.directories
            or not found
            or any(w.state != AVAILABLE for w in found)
        ):
            snapshot = self.refresh(scope)
            found = self._in_scope(snapshot, address, scope)
        age = self._clock() - snapshot.read_at
        if found and age > self.max_age_seconds:
            self._refresh_in_background(scope)
        if found and age > self.confirm_after_seconds:
            found = self._confirm(found)
            found = tuple(w for w in found if w.ip_address == address and w.directory_id in scope)
        return found

    def known(self, address: str) -> bool:
        """Might ``address`` be a WorkSpace's? True when the last read saw one there (any
        directory read, any state), and for every address until a first read is done."""
        snapshot = self._snapshot
        return snapshot.read_at == float("-inf") or address in snapshot.by_address

    def _refresh_in_background(self, scope: frozenset[str]) -> None:
        with self._changed:
            if self._refreshing or (self._background is not None and self._background.is_alive()):
                return
            self._background = threading.Thread(
                target=self._quiet_refresh, args=(scope,), name="enrollment-reread", daemon=True
            )
            self._background.start()

    def _quiet_refresh(self, scope: frozenset[str]) -> None:
        try:
            self.refresh(scope)
        except Exception as error:  # the next old answer tries again; a later one confirms by ID
            log.warning("enrollment directory re-read failed", error=type(error).__name__)

    @staticmethod
    def _in_scope(
        snapshot: Snapshot, address: str, scope: frozenset[str]
    ) -> tuple[LiveWorkspace, ...]:
        return tuple(w for w in snapshot.by_address.get(address, ()) if w.directory_id in scope)

    def _confirm(self, found: tuple[LiveWorkspace, ...]) -> tuple[LiveWorkspace, ...]:
        """The same WorkSpaces as DescribeWorkspaces sees them now (gone ones dropped)."""
        ids = [w.workspace_id for w in found][:25]
        tags = {w.workspace_id: dict(w.tags) for w in found}
        items = self.aws.items("workspaces", "DescribeWorkspaces", WorkspaceIds=ids)
        return tuple(live_workspace(item, tags.get(item["WorkspaceId"], {})) for item in items)

    def tags_of(self, workspace: LiveWorkspace) -> dict[str, str]:
        """The WorkSpace's tags: from the bulk read, or (tagging API denied) one DescribeTags."""
        if self._snapshot.tags_in_bulk:
            return dict(workspace.tags)
        response = self.aws.call("workspaces", "DescribeTags", ResourceId=workspace.workspace_id)
        return tag_dict(response.get("TagList"))

    # -- reading -------------------------------------------------------------------------------------

    def refresh(self, directories: Collection[str]) -> Snapshot:
        """Read the directories again unless a read is running (wait for it) or one ended too
        recently; returns the snapshot to decide on."""
        scope = frozenset(directories)
        with self._changed:
            while self._refreshing:
                self._changed.wait()
                if scope <= self._snapshot.directories:
                    return self._snapshot  # the read we waited for is as fresh as ours would be
            snapshot = self._snapshot
            pause = max(self.min_refresh_seconds, self._last_duration)
            if scope <= snapshot.directories and self._clock() - snapshot.read_at < pause:
                return snapshot
            self._refreshing = True
        started = self._clock()
        try:
            fresh = self._read(scope, started)
        finally:
            with self._changed:
                self._refreshing = False
                self._changed.notify_all()
        with self._changed:
            self._snapshot = fresh
            self._last_duration = self._clock() - started
            self.refreshes += 1
        log.info(
            "enrollment directory read",
            detail=True,
            directories=sorted(scope),
            workspaces=sum(len(v) for v in fresh.by_address.values()),
            seconds=round(self._last_duration, 3),
        )
        return fresh

    def _read(self, scope: frozenset[str], started: float) -> Snapshot:
        items: list[dict[str, Any]] = []
        for directory in sorted(scope):
            items += self.aws.items(
                "workspaces", "DescribeWorkspaces", DirectoryId=directory, Limit=25
            )
        try:
            tags = self._tags_in_bulk()
            in_bulk = True
        except Exception as error:
            if not is_access_denied(error):
                raise
            tags, in_bulk = {}, False
        by_address: dict[str, list[LiveWorkspace]] = {}
        for item in items:
            workspace = live_workspace(item, tags.get(item["WorkspaceId"], {}))
            if workspace.ip_address:
                by_address.setdefault(workspace.ip_address, []).append(workspace)
        return Snapshot(
            directories=scope,
            by_address={address: tuple(found) for address, found in by_address.items()},
            read_at=started,
            tags_in_bulk=in_bulk,
        )

    def _tags_in_bulk(self) -> dict[str, dict[str, str]]:
        tags: dict[str, dict[str, str]] = {}
        for item in self.aws.items(
            "resourcegroupstaggingapi",
            "GetResources",
            ResourceTypeFilters=["workspaces:workspace"],
            ResourcesPerPage=100,
        ):
            tags[item["ResourceARN"].rsplit("/", 1)[-1]] = tag_dict(item.get("Tags"))
        return tags
