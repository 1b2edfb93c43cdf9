"""The endpoint's index of in-scope WorkSpaces: read on a miss, re-read when old, never stale-trusted.

A settable clock stands in for time; the WorkSpaces and their state are the sandbox's.
"""

from __future__ import annotations

import threading
import time

from controller.service.enrollment.directory import WorkspaceDirectory
from tests.enrollment.helpers import DIRECTORY, aws_for, fleet, workspaces


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def loopback(sandbox) -> None:
    sandbox.admin.post("fleet/enrollment", {"url": "http://127.0.0.1:9/v1/enroll"})


def describe_calls(aws) -> int:
    return aws.recorder.by_operation()["workspaces:DescribeWorkspaces"]


def test_an_unknown_address_reads_the_directory_and_concurrent_misses_share_one_read(sandbox):
    first, second = workspaces(sandbox, 2)
    loopback(sandbox)
    rows = fleet(sandbox)
    aws = aws_for(sandbox.endpoint)
    directory = WorkspaceDirectory(aws, min_refresh_seconds=60, clock=Clock())
    found: list[tuple] = []
    threads = [
        threading.Thread(
            target=lambda w=w: found.append(directory.find(rows[w]["ipAddress"], {DIRECTORY}))
        )
        for w in (first, second, first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(f[0].workspace_id for f in found) == sorted([first, first, second, second])
    assert directory.refreshes == 1
    # An address nobody has: within min_refresh_seconds, no second read.
    assert directory.find("127.250.0.1", {DIRECTORY}) == ()
    assert directory.refreshes == 1


def test_an_old_index_is_reread_in_the_background_and_a_very_old_one_confirmed_by_id(sandbox):
    (workspace_id,) = workspaces(sandbox, 1)
    loopback(sandbox)
    address = fleet(sandbox)[workspace_id]["ipAddress"]
    aws = aws_for(sandbox.endpoint)
    clock = Clock()
    directory = WorkspaceDirectory(
        aws, min_refresh_seconds=0, max_age_seconds=120, confirm_after_seconds=600, clock=clock
    )
    assert directory.find(address, {DIRECTORY})[0].state == "AVAILABLE"
    reads = describe_calls(aws)

    clock.now += 200  # old: answered from the index, re-read behind the answer
    assert directory.find(address, {DIRECTORY})[0].workspace_id == workspace_id
    deadline = time.monotonic() + 10
    while directory.refreshes < 2:
        assert time.monotonic() < deadline, "no background re-read"
        time.sleep(0.05)
    assert describe_calls(aws) == 2 * reads  # a whole read, no call per ask

    sandbox.admin.post("fleet/terminate", {"workspaceIds": [workspace_id]})
    clock.now += 700  # very old: confirmed by ID before it is believed
    (confirmed,) = directory.find(address, {DIRECTORY})
    assert confirmed.state == "TERMINATED"
    background = directory._background  # the re-read the last answer started: let it finish
    if background is not None:
        background.join(timeout=30)
