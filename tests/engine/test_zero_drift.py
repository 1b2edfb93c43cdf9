"""README, Minimal diffs: a zero-drift reconcile makes 0 writes and exactly the reads needed (the
pages of each bulk read), the promise the 5,000-WorkSpace benchmark measures (403 reads), held
here at a small size with exact counts per operation.
"""

from __future__ import annotations

import math

from tests.engine.helpers import boot, controller, copy_example, load, make_fleet, writes

FINANCE, ENGINEERING = 36, 25  # 61 WorkSpaces: not a multiple of any page size


def test_a_zero_drift_pass_makes_no_write_and_reads_exactly_the_pages_needed(sandbox, tmp_path):
    directory = copy_example(tmp_path / "desired")  # the example's Activation and two TagSyncs
    make_fleet(sandbox, finance=FINANCE, engineering=ENGINEERING)
    reconciler = controller(sandbox)
    reconciler.reconcile(load(directory))  # publishes the activation
    assert boot(sandbox)["registered"] == FINANCE + ENGINEERING
    _, result = reconciler.reconcile(load(directory))  # tags every instance
    assert result.ok and len(result.applied) == FINANCE + ENGINEERING

    sandbox.admin.reset_calls()
    reconciler.aws.recorder.reset()
    plan, result = reconciler.reconcile(load(directory))
    assert plan.operations == [] and result.ok
    assert writes(sandbox) == {}
    workspaces = FINANCE + ENGINEERING
    expected = {
        "workspaces:DescribeWorkspaces": math.ceil(workspaces / 25),  # 3
        "ssm:DescribeInstanceInformation": math.ceil(workspaces / 50),  # 2
        # every WorkSpace and every instance is tagged: 122 resources, 100 a page
        "resourcegroupstaggingapi:GetResources": math.ceil(2 * workspaces / 100),  # 2
        "ssm:DescribeActivations": 1,
        "ssm:DescribeParameters": 1,
        "ssm:ListTagsForResource": 1,  # the published parameter's owner tag
    }
    counted = {
        f"{row['service']}:{row['operation']}": row["count"] for row in sandbox.admin.calls()
    }
    assert counted == expected
    assert reconciler.aws.recorder.by_operation() == expected  # what the metrics count, too
    assert reconciler.aws.recorder.writes() == 0
    assert reconciler.aws.recorder.reads() == sum(expected.values()) == 10
