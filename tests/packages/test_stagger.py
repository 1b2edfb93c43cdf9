"""Stagger groups: members keep their slots, new ones take the first free slot, removal frees one."""

from __future__ import annotations

from controller.kinds.association import assign_slots
from controller.manifests.specs.association import StaggerGroup
from tests.packages.helpers import BUCKET, association_yaml, controller, load, package_dir, writes

GROUP = StaggerGroup("apps-daily", start_minute=8 * 60, every_minutes=5, slots=12, days="*")
FIRST = "schedule: {stagger: {group: apps-daily, start: '08:00', every: 5m, window: 1h}}"
MEMBER = "schedule: {stagger: {group: apps-daily}}"


def test_slots_are_kept_and_new_members_take_the_first_free_one():
    live = {"b": GROUP.expression(0), "c": GROUP.expression(2)}
    assert assign_slots(GROUP, ["a", "b", "c", "d"], live) == {"b": 0, "c": 2, "a": 1, "d": 3}
    assert assign_slots(GROUP, ["a", "b", "c"], {}) == {"a": 0, "b": 1, "c": 2}
    # Two members claiming one slot: the first by name keeps it, the other moves.
    clash = {"a": GROUP.expression(1), "b": GROUP.expression(1)}
    assert assign_slots(GROUP, ["a", "b"], clash) == {"a": 1, "b": 0}
    # A schedule that is no slot of the group (another start time) is reassigned.
    assert assign_slots(GROUP, ["a"], {"a": "cron(3 8 ? * * *)"}) == {"a": 0}


def test_expressions_are_daily_crons_and_parse_back():
    assert GROUP.expression(0) == "cron(0 8 ? * * *)"
    assert GROUP.expression(3) == "cron(15 8 ? * * *)"
    assert GROUP.slot_of("cron(15  8 ? * * *)") == 3
    weekdays = StaggerGroup("w", 23 * 60 + 55, 10, 3, "MON-FRI")
    assert weekdays.expression(1) == "cron(5 0 ? * MON-FRI *)"  # wraps past midnight


def _schedules(sandbox):
    ssm = sandbox.client("ssm")
    return {
        a["AssociationName"]: a.get("ScheduleExpression")
        for a in ssm.list_associations()["Associations"]
    }


def _write(root, names):
    for path in root.glob("assoc-*.yaml"):
        path.unlink()
    for index, name in enumerate(names):
        schedule = FIRST if index == 0 else MEMBER
        (root / f"assoc-{name}.yaml").write_text(
            association_yaml(name, package=f"app-{name[-1]}", schedule=schedule)
        )


def test_adding_and_removing_members_never_moves_the_others(sandbox, tmp_path):
    root = tmp_path / "desired"
    for letter in "abcde":
        package_dir(root, name=f"app-{letter}", package=f"App{letter.upper()}")
    sandbox.client("s3").create_bucket(Bucket=BUCKET)
    reconciler = controller(sandbox, prune=True)
    _write(root, ["install-a", "install-b", "install-c"])
    _, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    assert _schedules(sandbox) == {
        "install-a": "cron(0 8 ? * * *)",
        "install-b": "cron(5 8 ? * * *)",
        "install-c": "cron(10 8 ? * * *)",
    }

    # A fourth application whose name sorts first still only takes the first free slot.
    _write(root, ["install-a", "install-b", "install-c", "early-d"])
    sandbox.admin.reset_calls()
    _, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    assert writes(sandbox) == {"ssm:CreateAssociation": 1}  # no UpdateAssociation at all
    assert _schedules(sandbox)["early-d"] == "cron(15 8 ? * * *)"

    # Removing the middle one frees 08:05 and moves nobody.
    _write(root, ["install-a", "install-c", "early-d"])
    sandbox.admin.reset_calls()
    _, result = reconciler.reconcile(load(root))
    assert result.ok, result.failed
    assert writes(sandbox) == {"ssm:DeleteAssociation": 1}
    assert _schedules(sandbox) == {
        "install-a": "cron(0 8 ? * * *)",
        "install-c": "cron(10 8 ? * * *)",
        "early-d": "cron(15 8 ? * * *)",
    }

    # The next newcomer gets the freed slot.
    _write(root, ["install-a", "install-c", "early-d", "install-e"])
    sandbox.admin.reset_calls()
    _, result = reconciler.reconcile(load(root))
    assert writes(sandbox) == {"ssm:CreateAssociation": 1}
    assert _schedules(sandbox)["install-e"] == "cron(5 8 ? * * *)"
