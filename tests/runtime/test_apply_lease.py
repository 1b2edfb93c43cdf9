"""One writer: ``apply --lease-table`` writes a target only while it holds the target's lease.

Hole 8 of issue 9: an ``apply`` beside a running ``run`` made duplicate associations that each ran
an install. Against the sandbox's DynamoDB: a live replica's lease makes apply refuse (naming the
replica) before any write; a free lease is taken, renewed and released; a dead replica's lease
is taken over after one lease duration; a lapsed lease stops further operations.
"""

from __future__ import annotations

import threading
import time

from controller.cli import main
from controller.service.ha import LeaseKeeper, LeaseSettings
from controller.service.ha.exclusive import ExclusiveLease, LeaseUnavailable
from controller.service.ha.guard import WriteGate
from tests.runtime.helpers import TABLE, activations_dir, eventually

# Short: where the test waits out a whole lease duration (a dead writer's lease).
FAST = ["--lease-duration", "1.5", "--lease-renew-deadline", "1", "--lease-retry-period", "0.25"]
SETTINGS = LeaseSettings(duration_seconds=1.5, renew_deadline_seconds=1, retry_period_seconds=0.25)
# Long: where a live holder must keep renewing while the test looks (a renew deadline a loaded
# machine cannot miss); the answers come at the first renew seen, not after a duration.
PATIENT = ["--lease-duration", "20", "--lease-renew-deadline", "15", "--lease-retry-period", "0.25"]
LIVE = LeaseSettings(duration_seconds=20, renew_deadline_seconds=15, retry_period_seconds=0.25)


def apply(sandbox, desired, *extra: str, timings: list[str] = FAST) -> int:
    return main(
        ["apply", str(desired), "--endpoint-url", sandbox.endpoint, "--region", "us-east-1",
         "--lease-table", TABLE, "--log-format", "json", *timings, *extra]
    )  # fmt: skip


def fleet_writes(sandbox) -> dict[str, int]:
    return {
        f"{row['service']}:{row['operation']}": row["count"]
        for row in sandbox.admin.calls()
        if row["service"] != "dynamodb"
        and not row["operation"].startswith(("Describe", "List", "Get"))
    }


def test_apply_refuses_while_a_running_replica_holds_the_target(sandbox, table, tmp_path, capsys):
    keeper = LeaseKeeper(table, "run-replica-a", ["default"], LIVE)
    stop = threading.Event()
    running = threading.Thread(target=keeper.run, args=(stop,), daemon=True)
    running.start()
    try:
        assert eventually(lambda: keeper.may_write("default"), 60)
        sandbox.admin.reset_calls()
        code = apply(sandbox, activations_dir(tmp_path / "desired", "alpha"), timings=PATIENT)
        err = capsys.readouterr().err
        assert code == 1
        assert "error: target 'default' is being written by 'run-replica-a'" in err
        assert "nothing was applied" in err
        assert fleet_writes(sandbox) == {}
        assert keeper.may_write("default")  # the replica keeps its lease
    finally:
        stop.set()
        running.join(timeout=10)
        keeper.stop(release=True)


def test_apply_takes_a_free_lease_and_gives_it_back(sandbox, table, tmp_path, capsys):
    desired = activations_dir(tmp_path / "desired", "alpha")
    sandbox.admin.reset_calls()
    assert apply(sandbox, desired, "--replica-id", "apply-ci-1") == 0, capsys.readouterr().err
    assert fleet_writes(sandbox).get("ssm:CreateActivation") == 1
    calls = sandbox.admin.call_counts("dynamodb")
    assert calls.get("PutItem") == 1 and calls.get("DeleteItem") == 1
    assert table.get("default") is None  # released: a replica may take it at once


def test_apply_takes_over_a_dead_writers_lease_after_one_duration(sandbox, table, tmp_path):
    """A lease nobody renews (its replica crashed) is not a live writer: after watching it stay
    unchanged for a lease duration, apply takes it with a conditional write."""
    table.create("default", "crashed-replica", time.time() - 3600, 15)
    started = time.monotonic()
    assert apply(sandbox, activations_dir(tmp_path / "desired", "alpha")) == 0
    assert time.monotonic() - started >= SETTINGS.duration_seconds
    assert table.get("default") is None


def test_a_lease_that_lapses_stops_further_operations(sandbox, table):
    now = [100.0]
    lease = ExclusiveLease(
        table,
        "prod",
        "apply-x",
        LeaseSettings(duration_seconds=15, renew_deadline_seconds=10, retry_period_seconds=9),
        clock=lambda: now[0],
    )
    lease.acquire()
    try:
        gate = WriteGate(threading.Event(), lease)
        assert lease.may_write() and not gate.is_set()
        now[0] += 11  # no renew for longer than the renew deadline
        assert not lease.may_write() and gate.is_set()
    finally:
        lease.release()


def test_a_lease_taken_during_apply_stops_further_operations(sandbox, table):
    """apply's renewer meets another holder: writes stop at once, before the renew deadline
    (15 s here, longer than the bounded wait)."""
    lease = ExclusiveLease(table, "prod", "apply-x", LIVE)
    lease.acquire()
    try:
        gate = WriteGate(threading.Event(), lease)
        assert lease.may_write() and not gate.is_set()
        table.release(table.get("prod"))
        table.create("prod", "intruder", time.time(), 20)
        assert eventually(lambda: not lease.may_write(), 10)
        assert gate.is_set()
    finally:
        lease.release()
    assert table.get("prod").holder == "intruder"  # its release never deletes the other's


def test_two_applies_at_once_one_wins(sandbox, table):
    leases = [ExclusiveLease(table, "prod", f"apply-{i}", LIVE) for i in range(2)]
    results: list[str] = []
    barrier = threading.Barrier(2)

    def take(lease: ExclusiveLease) -> None:
        barrier.wait()
        try:
            lease.acquire()
            results.append("held")
        except LeaseUnavailable as refused:
            results.append(str(refused))

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    try:
        assert sorted(results)[0] == "held"
        assert "is being written by 'apply-" in sorted(results)[1]
        assert sum(lease.may_write() for lease in leases) == 1
    finally:
        for lease in leases:
            lease.release()


def test_a_missing_lease_table_is_a_clear_error(sandbox, tmp_path, capsys):
    code = main(
        ["apply", str(activations_dir(tmp_path / "desired", "alpha")), "--endpoint-url",
         sandbox.endpoint, "--region", "us-east-1", "--lease-table", "no-such-table"]
    )  # fmt: skip
    assert code == 1
    assert "lease table 'no-such-table' does not exist in us-east-1" in capsys.readouterr().err


def test_an_apply_with_a_shorter_lease_waits_out_the_holders_own_duration(sandbox, table):
    """An operator runs ``apply --lease-duration 1.5`` beside a replica whose leases last 60 s
    and are renewed every 20 s. Apply must watch the lease for the holder's duration (the lease
    says it), see the renew, and refuse; not take over after its own 1.5 s."""
    holder = ExclusiveLease(
        table,
        "prod",
        "run-replica-a",
        LeaseSettings(duration_seconds=60, renew_deadline_seconds=40, retry_period_seconds=20),
    )
    holder.acquire()  # its renew thread first renews 20 s from now (real time)
    now = [0.0]

    def sleep(seconds: float) -> None:  # apply's time passes; at 20 s the holder renews
        before, now[0] = now[0], now[0] + seconds
        if before < 20 <= now[0]:
            record = table.get("prod")
            assert record is not None
            table.advance(record, "run-replica-a", time.time(), 60)

    apply_lease = ExclusiveLease(
        table, "prod", "apply-ci", SETTINGS, clock=lambda: now[0], sleep=sleep
    )
    try:
        try:
            apply_lease.acquire()
            taken = True
        except LeaseUnavailable as refused:
            taken = False
            assert "is being written by 'run-replica-a'" in str(refused)
        assert not taken, f"apply took a live 60 s lease after watching it {now[0]:g} s"
    finally:
        apply_lease.release()
        holder.release()
