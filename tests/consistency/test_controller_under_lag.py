"""The controller when AWS is eventually consistent (issue 11, "Consistency").

The sandbox's consistency modes are switched on (the tagging API lags behind writes by longer than
the reconcile interval, deleted resources linger as "previously tagged" ghosts, pages come short,
a just-registered instance takes a while to appear) and the example's Activation + TagSync run pass
after pass, one interval of sandbox time apart. The trace (writes per pass, the drift the pass
planned, the drift gauge after it) is printed.

What makes it robust is the live cache (``controller/kinds/informer.py``): an acknowledged write
is pinned until the index shows it, so no pass writes it again and no pass plans phantom drift;
existence comes only from DescribeInstanceInformation, so a ghost is never written to. The last
test takes the cache away (a new controller every pass, as one-shot ``apply`` runs are) and shows
the rewrites come back: that is what the cache prevents.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.contract.ownership import WORKSPACE_ID_TAG
from tests.engine.helpers import (
    boot,
    controller,
    copy_example,
    listed_instance_tags,
    load,
    make_fleet,
    writes,
)

INTERVAL = 60  # seconds of sandbox time between passes
LAG = 5 * INTERVAL  # the tagging API shows writes five intervals late
GHOST = 10 * INTERVAL
REGISTRATION_LAG = 2 * INTERVAL
PASSES = 12


@dataclass
class Pass:
    number: int
    tag_writes: int
    planned_tagsync: int
    gauge_after: float
    failed: int


def _gauge(reconciler) -> float:
    metric = reconciler.metrics.drifted_resources
    return float(metric.labels(target=reconciler.settings.target, kind="TagSync")._value.get())


def _run(
    sandbox, tmp_path, consistency: dict | None, after: int = 0, forgetful: bool = False
) -> tuple[list[Pass], dict]:
    """Converge for PASSES passes; then deregister one instance and run ``after`` more passes.
    ``forgetful``: a new controller (an empty cache) for every pass."""
    desired = load(copy_example(tmp_path / "desired"))
    make_fleet(sandbox, finance=6, engineering=4)
    if consistency is not None:
        sandbox.admin.put("consistency", consistency)
    reconciler = controller(sandbox)
    trace: list[Pass] = []
    _, first = reconciler.reconcile(desired)  # the activation
    assert first.ok
    boot(sandbox)
    for number in range(1, PASSES + after + 1):
        if number == PASSES + 1:  # an instance is lost: the tagging API keeps a ghost of it
            gone = sandbox.client("ssm").describe_instance_information(MaxResults=50)[
                "InstanceInformationList"
            ][0]["InstanceId"]
            sandbox.client("ssm").deregister_managed_instance(InstanceId=gone)
        sandbox.admin.advance_clock(INTERVAL)
        sandbox.admin.reset_calls()
        if forgetful:
            reconciler = controller(sandbox)
        plan, result = reconciler.reconcile(desired)
        trace.append(
            Pass(
                number,
                writes(sandbox).get("ssm:AddTagsToResource", 0),
                sum(1 for op in plan.operations if op.kind == "TagSync"),
                _gauge(reconciler),
                len(result.failed),
            )
        )
    return trace, listed_instance_tags(sandbox)


def _show(title: str, trace: list[Pass]) -> None:
    print(f"\n{title}\npass  AddTagsToResource  TagSync planned  drift gauge after  failed")
    for p in trace:
        print(
            f"{p.number:>4}  {p.tag_writes:>17}  {p.planned_tagsync:>15}  {p.gauge_after:>17}  {p.failed:>6}"
        )


def test_exact_sandbox_baseline(sandbox, tmp_path):
    trace, truth = _run(sandbox, tmp_path, None)
    _show("consistency off", trace)
    assert sum(p.tag_writes for p in trace) == 10  # one write per instance, once
    assert all(WORKSPACE_ID_TAG in tags for tags in truth.values()) and len(truth) == 10
    assert [p.planned_tagsync for p in trace[1:]] == [0] * (PASSES - 1)


def _planned_never_rises(planned: list[int]) -> bool:
    """Once the drift the passes plan fell to zero after the first writes, it stays there."""
    wrote = next(index for index, value in enumerate(planned) if value)
    fell = planned.index(0, wrote)
    return all(value == 0 for value in planned[fell:])


def test_the_goal(sandbox, tmp_path):
    """Issue 11's must-show: converges, the second pass that sees the instances writes 0, and the
    drift the passes plan never rises again once it fell."""
    trace, truth = _run(
        sandbox,
        tmp_path,
        {
            "lagSeconds": {"resourcegroupstaggingapi": LAG},
            "ghostSeconds": GHOST,
            "shortPages": True,
        },
    )
    _show(f"tagging lag {LAG}s, ghosts {GHOST}s, short pages", trace)
    assert len(truth) == 10 and all(WORKSPACE_ID_TAG in tags for tags in truth.values())
    assert sum(p.tag_writes for p in trace) == 10
    writing = next(p.number for p in trace if p.tag_writes)
    assert [p.tag_writes for p in trace if p.number > writing] == [0] * (PASSES - writing)
    assert _planned_never_rises([p.planned_tagsync for p in trace])
    assert {p.gauge_after for p in trace} == {0.0}


def test_registration_lag_and_a_ghost_of_a_lost_instance(sandbox, tmp_path):
    trace, truth = _run(
        sandbox,
        tmp_path,
        {
            "lagSeconds": {"resourcegroupstaggingapi": LAG, "ssm": REGISTRATION_LAG},
            "ghostSeconds": GHOST,
            "shortPages": True,
        },
        after=GHOST // INTERVAL,
    )
    _show(f"tagging lag {LAG}s, registration lag {REGISTRATION_LAG}s, ghosts {GHOST}s", trace)
    converging, with_ghost = trace[:PASSES], trace[PASSES:]
    # It converges: every instance ends with its tags (read consistently, per resource).
    assert len(truth) == 9 and all(WORKSPACE_ID_TAG in tags for tags in truth.values())
    # Instances show up REGISTRATION_LAG late: each is tagged once, when it does.
    assert sum(p.tag_writes for p in converging) == 10
    assert _planned_never_rises([p.planned_tagsync for p in converging])
    assert {p.gauge_after for p in trace} == {0.0}
    # The lost instance's ghost (the tagging API lists it, DescribeInstanceInformation does not)
    # is never treated as live: no write goes to it, nothing fails, no drift appears.
    assert sum(p.tag_writes for p in with_ghost) == 0
    assert sum(p.failed for p in with_ghost) == 0
    assert {p.planned_tagsync for p in with_ghost} == {0}


def test_without_the_cache_the_lag_causes_rewrites_and_phantom_drift(sandbox, tmp_path):
    """A new controller every pass (no cache, as one-shot ``apply`` runs are): while the tagging
    API still shows the old tags, every pass writes them again and plans drift that is not there.
    This is what the cache prevents (and the proof that the goal above depends on it)."""
    trace, truth = _run(
        sandbox,
        tmp_path,
        {"lagSeconds": {"resourcegroupstaggingapi": LAG}, "shortPages": True},
        forgetful=True,
    )
    _show(f"no cache; tagging lag {LAG}s", trace)
    assert len(truth) == 10 and all(WORKSPACE_ID_TAG in tags for tags in truth.values())
    assert sum(p.tag_writes for p in trace) == 10 * (LAG // INTERVAL)
    assert [p.planned_tagsync for p in trace].count(10) == LAG // INTERVAL
