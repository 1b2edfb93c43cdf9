"""Fair shares: pure decisions about which leases to take and which to give up."""

from __future__ import annotations

import random

import pytest

from controller.service.ha.sharding import fair_share, plan_balance

TARGETS = [f"t{i}" for i in range(7)]


@pytest.mark.parametrize(
    ("targets", "replicas", "share"), [(4, 2, 2), (7, 3, 3), (4, 1, 4), (4, 8, 1), (0, 3, 0)]
)
def test_fair_share_is_ceil(targets, replicas, share):
    assert fair_share(targets, replicas) == share


def test_alone_a_replica_takes_everything_free():
    plan = plan_balance(TARGETS, held=set(), absent=set(TARGETS), expired=set(), replicas=1)
    assert plan.wanted == 7 and sorted(plan.acquire) == TARGETS and plan.shed == ()


def test_expired_leases_come_before_absent_ones():
    plan = plan_balance(
        TARGETS,
        held=set(),
        absent={"t0", "t1"},
        expired={"t5", "t6"},
        replicas=3,
        rng=random.Random(1),
    )
    assert set(plan.acquire[:2]) == {"t5", "t6"} and set(plan.acquire[2:]) == {"t0", "t1"}
    assert plan.wanted == 3


def test_a_replica_above_its_share_gives_the_excess_up():
    plan = plan_balance(TARGETS, held=set(TARGETS), absent=set(), expired=set(), replicas=2)
    assert plan.share == 4 and len(plan.shed) == 3 and plan.acquire == ()


def test_nothing_to_do_at_the_share():
    plan = plan_balance(TARGETS, held={"t0", "t1", "t2"}, absent=set(), expired=set(), replicas=3)
    assert plan.acquire == () and plan.shed == ()


def test_a_starved_replica_gets_one_lease_from_a_replica_above_the_floor():
    held = {"t0", "t1", "t2"}
    plan = plan_balance(
        TARGETS, held=held, absent=set(), expired=set(), replicas=3, others={"b": 3, "c": 1}
    )
    assert len(plan.shed) == 1 and plan.shed[0] in held
    at_floor = plan_balance(
        TARGETS, held={"t0", "t1"}, absent=set(), expired=set(), replicas=3, others={"b": 4, "c": 1}
    )
    assert at_floor.shed == ()  # holding floor(7/3) = 2: giving one up would starve this one


def test_nothing_is_given_up_while_leases_are_free():
    plan = plan_balance(
        TARGETS,
        held={"t0", "t1", "t2"},
        absent={"t6"},
        expired=set(),
        replicas=3,
        others={"b": 3, "c": 0},
    )
    assert plan.shed == ()  # the starved replica can take the free one
