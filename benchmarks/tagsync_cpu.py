"""Benchmark: TagSync's pure steps (match, diff, health) on synthetic fleets, CPU only.

No sandbox and no AWS: the live state is built in memory as observe would return it (two
directories as in ``desired-state/tagsync.yaml``, every WorkSpace with its registered instance),
so the figures are the controller's own CPU. Two states per size: the first apply (instances not
tagged yet, every instance planned) and zero drift (instances already carry what the diff wants).

    python -m benchmarks.tagsync_cpu [--sizes 1000 10000 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.fleet import DIRECTORIES, desired_state
from controller.contract import Context
from controller.contract.ownership import WORKSPACE_ID_TAG
from controller.kinds.matching import LiveInstance, LiveWorkspace
from controller.kinds.tagsync import TagSyncKind, TagSyncLive
from controller.manifests import Manifest

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


def synthetic_fleet(size: int, desired: list[Manifest], tagged: bool) -> TagSyncLive:
    """``size`` WorkSpaces split over the two example directories, each with its instance."""
    workspaces: list[LiveWorkspace] = []
    instances: list[LiveInstance] = []
    for n in range(size):
        directory, tags = list(DIRECTORIES.items())[n % 2]
        workspace_id = f"ws-{n:08x}a"
        name = f"WSAMZN-{n:08X}"
        workspaces.append(
            LiveWorkspace(
                workspace_id=workspace_id,
                directory_id=directory,
                bundle_id="wsb-sandbox001",
                state="AVAILABLE",
                user_name=f"user{n:05d}",
                computer_name=name,
                ip_address=f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
                running_mode="AUTO_STOP",
                compute_type="STANDARD",
                operating_system="WINDOWS_SERVER_2022",
                tags=dict(tags),
            )
        )
        instances.append(
            LiveInstance(
                instance_id=f"mi-{n:017x}",
                computer_name=f"{name}.corp.example.com",
                ip_address=workspaces[-1].ip_address,
                ping_status="Online",
                registration_date=NOW - timedelta(days=1),
                tags={},
            )
        )
    live = TagSyncLive(workspaces=workspaces, instances=instances)
    if tagged:  # what a converged fleet carries: exactly what the diff would write
        kind = TagSyncKind()
        ctx = context()
        for operation in kind.diff(desired, live, ctx).operations:
            change = operation.payload
            index = int(change.instance_id[3:], 16)
            old = instances[index]
            instances[index] = LiveInstance(
                instance_id=old.instance_id,
                computer_name=old.computer_name,
                ip_address=old.ip_address,
                ping_status=old.ping_status,
                registration_date=old.registration_date,
                tags={**old.tags, **change.add},
            )
        assert all(WORKSPACE_ID_TAG in i.tags for i in instances)
    return live


def context() -> Context:
    return Context(controller_id="benchmark", region="us-east-1", now=NOW)


def one_pass(
    kind: TagSyncKind, desired: list[Manifest], live: TagSyncLive
) -> tuple[float, float, int]:
    """CPU seconds of diff (matching included) then health, as the engine runs them on one
    pass's live state (a fresh one: nothing carried over from an earlier pass's matching)."""
    fresh = TagSyncLive(live.workspaces, live.instances)
    ctx = context()
    started = time.process_time()
    plan = kind.diff(desired, fresh, ctx)
    diffed = time.process_time()
    kind.health(desired, fresh, ctx)
    return diffed - started, time.process_time() - diffed, len(plan.operations)


def run(sizes: list[int], repeat: int) -> None:
    kind = TagSyncKind()
    with tempfile.TemporaryDirectory() as workdir:
        desired = desired_state(Path(workdir)).of_kind("TagSync")
    print("CPU seconds; 'first' is the process's first pass over these values, 'best' the best")
    print(f"of {repeat} (tag checks remembered from an earlier pass, as in run)")
    print(f"{'size':>7} {'state':>11} {'diff first':>10} {'diff best':>9} {'health':>7} {'ops':>6}")
    for size in sizes:
        for tagged in (False, True):
            live = synthetic_fleet(size, desired, tagged)
            runs = [one_pass(kind, desired, live) for _ in range(repeat)]
            state = "zero drift" if tagged else "first apply"
            best = min(r[0] for r in runs)
            health = min(r[1] for r in runs)
            print(
                f"{size:>7} {state:>11} {runs[0][0]:>10.3f} {best:>9.3f} {health:>7.3f}"
                f" {runs[0][2]:>6}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 20000])
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    run(arguments.sizes, arguments.repeat)


if __name__ == "__main__":
    main()
