"""The lease state machine against the sandbox's DynamoDB, over HTTP.

Every keeper here runs on one simulated monotonic clock (time is the input of a lease, so the
tests move it instead of sleeping); every read and write is a real DynamoDB call. The invariant
checked after every step: at no instant do two keepers both believe they may write one target.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from controller.observability.metrics import Metrics
from controller.service.ha import LeaseConflict, LeaseKeeper, LeaseSettings, LeaseTable
from controller.service.ha.table import REPLICA_PREFIX
from tests.runtime.helpers import TABLE, api

SETTINGS = LeaseSettings()  # controller-runtime's defaults: 15 s, 10 s, 2 s
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens: every call fails to connect


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def keeper(
    sandbox, name: str, targets: Sequence[str], clock: Clock, metrics: Metrics | None = None
) -> LeaseKeeper:
    return LeaseKeeper(
        LeaseTable(api(sandbox.endpoint), TABLE),
        name,
        targets,
        SETTINGS,
        metrics,
        clock=clock,
        rng=random.Random(name),
    )


def concurrently(actions: Sequence[Callable[[], object]]) -> list[object]:
    """Run the actions at the same moment on threads; their results (or exceptions) in order."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = actions[index]()
        except Exception as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def writers(keepers: Sequence[LeaseKeeper], target: str) -> list[str]:
    return [k.replica_id for k in keepers if k.may_write(target)]


def assert_one_writer_at_most(keepers: Sequence[LeaseKeeper], targets: Sequence[str]) -> None:
    for target in targets:
        assert len(writers(keepers, target)) <= 1, (target, writers(keepers, target))


def rounds(
    keepers: Sequence[LeaseKeeper],
    clock: Clock,
    count: int,
    targets: Sequence[str],
    parallel: bool = True,
) -> None:
    """``count`` retry periods: every keeper ticks (at the same moment), then time moves on."""
    for _ in range(count):
        if parallel:
            results = concurrently([k.tick for k in keepers])
            crashed = [r for r in results if isinstance(r, BaseException)]
            assert not crashed, crashed  # a keeper that crashed proves nothing about writers
        else:
            for k in keepers:
                k.tick()
        assert_one_writer_at_most(keepers, targets)
        clock.advance(SETTINGS.retry_period_seconds)
        assert_one_writer_at_most(keepers, targets)


# -- the table: conditional writes decide every race ------------------------------------------


def test_of_racing_creates_exactly_one_wins(sandbox, table):
    tables = [LeaseTable(api(sandbox.endpoint), TABLE) for _ in range(8)]
    results = concurrently(
        [lambda t=t, i=i: t.create("prod", f"r{i}", 0.0, 15.0) for i, t in enumerate(tables)]
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, LeaseConflict)]
    assert len(winners) == 1 and len(losers) == 7
    assert {loser.current.holder for loser in losers} == {winners[0].holder}
    assert table.get("prod") == winners[0]


def test_of_racing_takeovers_of_one_version_exactly_one_wins(sandbox, table):
    seen = table.create("prod", "dead", 0.0, 15.0)
    tables = [LeaseTable(api(sandbox.endpoint), TABLE) for _ in range(8)]
    results = concurrently(
        [lambda t=t, i=i, s=seen: t.advance(s, f"r{i}", 1.0, 15.0) for i, t in enumerate(tables)]
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(r, LeaseConflict) for r in results if r is not winners[0])
    stored = table.get("prod")
    assert stored is not None and stored.holder == winners[0].holder and stored.version == 2


def test_racing_takeovers_never_crown_two_winners_in_200_races(sandbox, table):
    """The sandbox's conditional writes are atomic under concurrent requests (it serialises
    DynamoDB writes, as the service's conditional check does): a lease is only as safe as this."""
    tables = [LeaseTable(api(sandbox.endpoint), TABLE) for _ in range(6)]
    double_winners = []
    for race in range(200):
        target = f"prod-{race}"
        seen = table.create(target, "dead", 0.0, 15.0)
        results = concurrently(
            [
                lambda t=t, i=i, s=seen: t.advance(s, f"r{i}", 1.0, 15.0)
                for i, t in enumerate(tables)
            ]
        )
        winners = [r for r in results if not isinstance(r, Exception)]
        unexpected = [
            r for r in results if isinstance(r, Exception) and not isinstance(r, LeaseConflict)
        ]
        assert not unexpected, unexpected
        if len(winners) != 1:
            double_winners.append((race, [w.holder for w in winners]))
            continue
        stored = table.get(target)
        assert stored is not None and stored.holder == winners[0].holder and stored.version == 2
    assert double_winners == []


def test_a_renew_with_a_stale_version_fails_and_names_the_holder(table):
    first = table.create("prod", "a", 0.0, 15.0)
    table.advance(first, "b", 1.0, 15.0)  # b took it over
    with pytest.raises(LeaseConflict) as raised:
        table.advance(first, "a", 2.0, 15.0)
    assert raised.value.current is not None and raised.value.current.holder == "b"


def test_a_takeover_based_on_a_version_the_holder_has_since_renewed_fails(table):
    seen = table.create("prod", "a", 0.0, 15.0)  # what an observer saw
    renewed = table.advance(seen, "a", 2.0, 15.0)  # the holder is alive: it renewed
    with pytest.raises(LeaseConflict) as raised:
        table.advance(seen, "b", 16.0, 15.0)
    assert raised.value.current is not None and raised.value.current.identity == renewed.identity
    assert table.get("prod").identity == ("a", renewed.version)


def test_a_renew_of_a_lease_recreated_by_another_holder_fails_even_at_the_same_version(table):
    """The first version is the wall clock in milliseconds: a lease released and created again
    in the same millisecond by another replica has the same version; only the holder differs."""
    mine = table.create("prod", "a", 5.0, 15.0)
    table.release(mine)
    theirs = table.create("prod", "b", 5.0, 15.0)
    assert theirs.version == mine.version
    with pytest.raises(LeaseConflict):
        table.advance(mine, "a", 6.0, 15.0)
    assert table.get("prod").holder == "b"


def test_a_release_never_deletes_a_lease_someone_took_over_since(table):
    mine = table.create("prod", "a", 0.0, 15.0)
    table.advance(mine, "b", 16.0, 15.0)  # a was gone long enough: b took it over
    with pytest.raises(LeaseConflict):
        table.release(mine)  # a comes back and releases what it held
    assert table.get("prod").holder == "b"


# -- keepers ----------------------------------------------------------------------------------


def test_a_renewing_holder_is_never_displaced(sandbox, table):
    clock = Clock()
    holder = keeper(sandbox, "holder", ["prod"], clock)
    rounds([holder], clock, 2, ["prod"])  # announce, then acquire
    assert holder.may_write("prod")
    others = [keeper(sandbox, f"o{i}", ["prod"], clock) for i in range(4)]
    everyone = [holder, *others]
    rounds(everyone, clock, 30, ["prod"])  # a minute: four lease durations
    assert writers(everyone, "prod") == ["holder"]


def test_a_dead_holders_lease_is_taken_by_one_after_it_stopped_writing(sandbox, table):
    clock = Clock()
    holder = keeper(sandbox, "holder", ["prod"], clock)
    others = [keeper(sandbox, f"o{i}", ["prod"], clock) for i in range(4)]
    rounds([holder], clock, 2, ["prod"])
    rounds([holder, *others], clock, 3, ["prod"])
    last_renew = clock.now - SETTINGS.retry_period_seconds
    # The holder dies: it never ticks again. The others race for the lease on every round.
    taken_at = None
    for _ in range(20):
        rounds([*others], clock, 1, ["prod"])
        assert_one_writer_at_most([holder, *others], ["prod"])
        if writers(others, "prod") and taken_at is None:
            taken_at = clock.now
    assert len(writers(others, "prod")) == 1
    assert not holder.may_write("prod")
    # Taken over no sooner than a lease duration after the holder's last renew, and the holder
    # had stopped writing at its renew deadline, before that.
    assert taken_at is not None
    assert taken_at - last_renew >= SETTINGS.duration_seconds
    assert SETTINGS.renew_deadline_seconds < SETTINGS.duration_seconds


def test_a_partitioned_holder_stops_writing_before_anyone_takes_over(sandbox, table):
    clock = Clock()
    holder = keeper(sandbox, "holder", ["prod"], clock)
    other = keeper(sandbox, "other", ["prod"], clock)
    rounds([holder], clock, 2, ["prod"])
    rounds([holder, other], clock, 2, ["prod"])
    assert writers([holder, other], "prod") == ["holder"]

    reachable = holder.table.aws
    holder.table.aws = api(UNREACHABLE)  # the holder loses DynamoDB; it keeps trying
    stopped_at = taken_at = None
    for _ in range(15):
        rounds([holder, other], clock, 1, ["prod"], parallel=False)
        if stopped_at is None and not holder.may_write("prod"):
            stopped_at = clock.now
        if taken_at is None and other.may_write("prod"):
            taken_at = clock.now
    assert stopped_at is not None and taken_at is not None
    assert taken_at - stopped_at >= SETTINGS.duration_seconds - SETTINGS.renew_deadline_seconds

    holder.table.aws = reachable  # the partition heals: the holder learns it lost the lease
    rounds([holder, other], clock, 1, ["prod"], parallel=False)
    assert writers([holder, other], "prod") == ["other"]


def test_a_holder_that_finds_its_lease_is_someone_elses_stops_writing_at_once(sandbox, table):
    """Within its renew deadline, but its renew meets another holder: no further writes."""
    clock = Clock()
    holder = keeper(sandbox, "holder", ["prod"], clock)
    rounds([holder], clock, 2, ["prod"])
    assert holder.may_write("prod")
    held = table.get("prod")
    table.release(held)  # the item went away (an operator, a restore) and another replica
    table.create("prod", "intruder", 5000.0, 15.0)  # created it before the holder renewed
    holder.tick()  # the renew meets the intruder's item
    assert not holder.may_write("prod")  # at once, long before the renew deadline


def test_a_renew_whose_answer_was_lost_is_adopted_not_lost(sandbox, table):
    clock = Clock()
    holder = keeper(sandbox, "holder", ["prod"], clock)
    other = keeper(sandbox, "other", ["prod"], clock)
    rounds([holder, other], clock, 3, ["prod"], parallel=False)
    assert writers([holder, other], "prod") == ["holder"]
    before = table.get("prod")
    sandbox.admin.set_faults(
        [{"service": "dynamodb", "operation": "UpdateItem", "lost_response_rate": 1.0}]
    )
    holder.tick()  # the renew lands, its answer does not
    sandbox.admin.set_faults([])
    landed = table.get("prod")
    assert landed.version == before.version + 1 and landed.holder == "holder"
    clock.advance(SETTINGS.retry_period_seconds)
    rounds([holder, other], clock, 3, ["prod"], parallel=False)
    assert writers([holder, other], "prod") == ["holder"]
    assert table.get("prod").version > landed.version


def test_targets_spread_over_replicas_and_a_dead_ones_are_taken_over(sandbox, table):
    clock = Clock()
    targets = [f"t{i}" for i in range(7)]
    keepers = [keeper(sandbox, name, targets, clock) for name in ("a", "b", "c")]
    rounds(keepers, clock, 40, targets)
    held = {k.replica_id: set(k.holding()) for k in keepers}
    assert sorted(len(h) for h in held.values()) == [2, 2, 3]
    assert set().union(*held.values()) == set(targets)

    dead, survivors = keepers[2], keepers[:2]
    rounds(survivors, clock, 12, targets)  # more than a lease duration
    assert_one_writer_at_most(keepers, targets)
    after = {k.replica_id: set(k.holding()) for k in survivors}
    assert sorted(len(h) for h in after.values()) == [3, 4]
    assert set().union(*after.values()) == set(targets)
    assert dead.holding() == []


def test_a_replica_that_joins_gets_its_share_from_one_that_held_everything(sandbox, table):
    clock = Clock()
    targets = ["t0", "t1", "t2", "t3"]
    first = keeper(sandbox, "first", targets, clock)
    rounds([first], clock, 2, targets)
    assert first.holding() == targets
    second = keeper(sandbox, "second", targets, clock)
    rounds([first, second], clock, 15, targets)
    assert len(first.holding()) == 2 and len(second.holding()) == 2


def test_a_clean_stop_hands_leases_over_without_waiting_for_expiry(sandbox, table):
    clock = Clock()
    targets = ["t0", "t1"]
    leaving = keeper(sandbox, "leaving", targets, clock)
    staying = keeper(sandbox, "staying", targets, clock)
    rounds([leaving], clock, 2, targets)
    # In turn, not at once: had staying announced itself before leaving looked at the table,
    # leaving would already give up half to rebalance (the race this test is not about).
    rounds([leaving, staying], clock, 1, targets, parallel=False)
    assert leaving.holding() == targets
    leaving.stop(release=True)
    assert set(table.scan()) == {f"{REPLICA_PREFIX}staying"}  # leases and heartbeat removed
    rounds([staying], clock, 1, targets)  # one retry period, not a lease duration
    assert staying.holding() == targets


def test_the_leader_metric_follows_the_lease(sandbox, table):
    clock = Clock()
    metrics = Metrics(targets=["t0"])
    holder = keeper(sandbox, "holder", ["t0"], clock, metrics)
    rounds([holder], clock, 2, ["t0"])
    assert metrics.registry.get_sample_value("fleet_leader", {"target": "t0"}) == 1
    holder.table.aws = api(UNREACHABLE)
    rounds([holder], clock, 6, ["t0"])  # past the renew deadline
    assert metrics.registry.get_sample_value("fleet_leader", {"target": "t0"}) == 0


def test_lease_calls_are_counted_by_the_sandbox(sandbox, table):
    clock = Clock()
    holder = keeper(sandbox, "holder", ["t0"], clock)
    sandbox.admin.reset_calls()
    rounds([holder], clock, 3, ["t0"])
    counts = Counter(sandbox.admin.call_counts("dynamodb"))
    # Three heartbeats and scans; one create (round 2); one renew (round 3).
    assert counts == Counter({"PutItem": 4, "Scan": 3, "UpdateItem": 1})


@pytest.mark.parametrize(("retry", "deadline", "duration"), [(2, 15, 10), (0, 1, 2), (3, 3, 5)])
def test_inconsistent_timings_are_refused(retry, deadline, duration):
    with pytest.raises(ValueError, match="retry period < renew deadline < lease duration"):
        LeaseSettings(duration, deadline, retry)


def test_a_replica_with_a_shorter_lease_waits_out_the_holders_own_duration(sandbox, table):
    """A careless rollout: the running replica keeps leases of 60 s (renewing every 20 s, deadline
    40 s) and a new replica comes up with the defaults (15 s). The holder's lease says how long
    it lasts; the newcomer must not take it after its own 15 s, while the holder still writes."""
    clock = Clock()
    slow = LeaseSettings(duration_seconds=60, renew_deadline_seconds=40, retry_period_seconds=20)
    holder = LeaseKeeper(
        LeaseTable(api(sandbox.endpoint), TABLE), "holder", ["prod"], slow, clock=clock
    )
    holder.tick()
    holder.tick()  # announce, then acquire
    assert holder.may_write("prod")
    newcomer = keeper(sandbox, "newcomer", ["prod"], clock)
    for step in range(60):  # two minutes in retry periods of 2 s; the holder ticks every 20 s
        if step % 10 == 0:
            holder.tick()
        newcomer.tick()
        assert_one_writer_at_most([holder, newcomer], ["prod"])
        clock.advance(SETTINGS.retry_period_seconds)
        assert_one_writer_at_most([holder, newcomer], ["prod"])
    assert writers([holder, newcomer], "prod") == ["holder"]
