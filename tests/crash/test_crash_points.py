"""Killed at every step boundary, restarted, converged: the same live state as a clean run.

For each crash point (and, where a point means something different later, each phase it is
armed in), the fleet is built, the controller runs through the phases before the armed one, then
``fleet-controller apply`` runs as a process with ``FLEET_CONTROLLER_CRASH_AT`` naming the point.
It must die there (exit code CRASH_EXIT_CODE and the point's line on stderr). It is restarted
without the switch, as processes, until a pass finds nothing to change (at most MAX_PASSES), the
fleet does what it does after that phase (agents run), and the normalised live state must equal
a clean run's at the same phase (tests/crash/conftest.py runs those once): no duplicate, no
orphan, nothing lost (the snapshot checks the parameter, activations, documents and versions, S3
objects, associations, instance tags and installed packages). A final ``plan
--detailed-exitcode`` exits 0.
"""

from __future__ import annotations

import pytest

from controller.contract.crashpoints import CRASH_EXIT_CODE, CRASH_POINTS
from tests.crash.fleet import (
    FLOWS,
    PHASES,
    Target,
    converge,
    copy_example,
    crashed_at,
    run_flow,
    run_in_process,
    run_process,
    snapshot,
)

# (crash point, flow, phase it is armed in). Phases before it run without the switch.
SCENARIOS: tuple[tuple[str, str, str], ...] = (
    ("activation.created", "main", "create"),
    ("activation.published", "main", "create"),
    ("package.uploaded", "main", "create"),
    ("package.versioned", "main", "create"),
    ("association.document-created", "main", "create"),
    ("association.created", "main", "create"),
    ("tagsync.added", "main", "drift"),  # the instance also needs a RemoveTags
    ("package.versioned", "main", "update"),  # a new version, not yet the default
    ("package.promoted", "main", "update"),
    ("package.pruned", "main", "update"),
    ("package.starting", "main", "update"),
    ("package.started", "main", "update"),
    ("association.tags-repaired", "main", "drift"),
    ("association.document-versioned", "old-evaluator", "create"),
    ("activation.created", "main", "rotate"),  # a replacement while the old one is in use
    ("activation.published", "main", "rotate"),
)


def test_every_crash_point_has_a_scenario():
    assert {point for point, _, _ in SCENARIOS} == set(CRASH_POINTS)
    for _, flow, phase in SCENARIOS:
        assert phase in FLOWS[flow][1]


@pytest.mark.parametrize(
    ("point", "flow", "phase"),
    SCENARIOS,
    ids=[f"{point}@{phase}" for point, _, phase in SCENARIOS],
)
def test_killed_at_a_step_boundary_converges_to_the_clean_state(
    sandbox, tmp_path, reference, point, flow, phase
):
    target = Target(sandbox.endpoint, sandbox.region)
    desired = copy_example(tmp_path / "desired")
    run_flow(target, desired, flow, until=phase)
    PHASES[phase].before(target, desired)

    killed = run_process("apply", desired, target, point)
    assert killed.code == CRASH_EXIT_CODE, (killed.code, killed.stderr[-3000:])
    assert crashed_at(killed, point), killed.stderr[-3000:]
    assert "Applied" not in killed.stdout  # it never got to report: it died mid-apply

    restarts = converge(desired, target, run=run_process)
    assert len(restarts) >= 1
    PHASES[phase].after(target)

    assert snapshot(target) == reference[(flow, phase)]
    final = run_in_process("plan", desired, target, "--detailed-exitcode")
    assert final.code == 0, final.stdout[-3000:] + final.stderr[-3000:]
