"""Association schedules: what State Manager accepts, decided offline (hole 7 of issue 9).

Table-driven: each row is an expression and either None (accepted) or a fragment of the reason it
is refused. The rules and their sources are in controller/manifests/schedule.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli import main
from controller.manifests.schedule import options_problem, schedule_kind, schedule_problem

ACCEPTED = [
    # every 30 minutes / every N hours
    "cron(0/30 * * * ? *)",
    "cron(*/30 * * * ? *)",
    "cron(0/30 * ? * * *)",
    "cron(0 */30 * * * ? *)",  # the documented seconds form
    "cron(0 0/1 * * ? *)",
    "cron(15 * * * ? *)",
    "cron(0 0/2 * * ? *)",
    "cron(5 1/4 * * ? *)",
    "cron(0 */8 * * ? *)",
    "cron(0 0/12 * * ? *)",
    # at a time of day
    "cron(15 13 ? * * *)",
    "cron(15 13 * * ? *)",
    "cron(0 0 12 * * ? *)",  # seconds 0
    "cron(15 13 ? * MON *)",
    "cron(0 8 ? * mon-fri *)",  # names in any case
    "cron(0 8 ? * SAT,SUN *)",
    "cron(0 8 ? * 2-6 *)",
    "cron(0 0 ? * THU#2 *)",  # the documented offset example
    "cron(0 2 ? * 6L *)",  # the last Friday of the month
    "cron(0 2 L * ? *)",  # the last day of the month
    "cron(0 8 1 * ? *)",
    "cron(0 8 31 * ? *)",
    "cron(0 2 */3 * ? *)",  # every third day
    "cron(0 2 1/10 * ? *)",
    "cron(15 13 ? * * 2030)",
    "cron(15 13 ? * *)",  # five fields: no year
    "cron( 15   13 ? * * * )",
    # rate
    "rate(30 minutes)",
    "rate(1 hour)",
    "rate(5 hours)",
    "rate(1 day)",
    "rate(30 days)",
    "rate(743 hours)",
    "rate(44639 minutes)",
    # at
    "at(2030-07-07T15:55:00)",
    "at(2028-02-29T23:59:59)",  # a leap day
]

REFUSED = [
    ("cron(99 99 ? * * *)", "minutes value 99 is outside 0-59"),
    ("cron(0 24 ? * * *)", "hours value 24 is outside 0-23"),
    ("cron(x 8 ? * * *)", "'X' is not a valid minutes value"),
    ("cron(0 eight ? * * *)", "'EIGHT' is not a valid hours value"),
    ("cron(0 8 32 * ? *)", "day-of-month value 32 is outside 1-31"),
    ("cron(0 8 0 * ? *)", "day-of-month value 0 is outside 1-31"),
    ("cron(0 8 ? * FUNDAY *)", "'FUNDAY' is not a day of the week"),
    ("cron(0 8 ? * 8 *)", "'8' is not a day of the week"),
    ("cron(0 8 ? * FRI-MON *)", "runs backwards"),
    ("cron(0 8 ? * THU#6 *)", "the occurrence after # is 1 to 5"),
    ("cron(0 8 ? 1 * *)", "specific month"),
    ("cron(0 8 ? JAN * *)", "specific month"),
    ("cron(0 8 ? ? * *)", "specific month"),
    ("cron(0 8 * * * *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 8 ? * ? *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 8 ? * * 1969)", "year value 1969 is outside 1970-2199"),
    ("cron(30 0 8 ? * * *)", "seconds field can only be 0"),
    ("cron(0 8 ? *)", "a cron expression has the fields"),
    ("cron(0 0 0 8 ? * * * *)", "a cron expression has the fields"),
    ("cron()", "a cron expression has the fields"),
    # shapes State Manager does not take for associations
    ("cron(* * * * ? *)", "the minute must be one number"),
    ("cron(0/15 * * * ? *)", "the minute must be one number"),
    ("cron(0,30 8 * * ? *)", "the minute must be one number"),
    ("cron(0/30 8 * * ? *)", "every 30 minutes runs every hour"),
    ("cron(0 0/3 * * ? *)", "the hour must be one number, or */N or S/N with N 1, 2, 4, 8, 12"),
    ("cron(0 0/6 * * ? *)", "S/N with N"),
    ("cron(0 5/4 * * ? *)", "S/N with N"),
    ("cron(0 8-17 * * ? *)", "S/N with N"),
    ("cron(0 0/4 ? * MON *)", "an interval of hours runs every day"),
    ("cron(0 8 1,15 * ? *)", "the day-of-month must be one day, L, */N or *"),
    ("cron(0 8 15W * ? *)", "'15W' is not a valid day-of-month value"),
    # rate
    ("rate(29 minutes)", "at most every 30 minutes"),
    ("rate(0 hours)", "positive"),
    ("rate(1 hours)", "rate(1 hour) or rate(N hours)"),
    ("rate(5 hour)", "rate(1 hour) or rate(N hours)"),
    ("rate(31 days)", "less than 31 days"),
    ("rate(744 hours)", "less than 31 days"),
    ("rate(2 weeks)", "minute(s), hour(s) or day(s)"),
    ("rate(-1 days)", "is not a schedule"),
    (f"rate({'9' * 300} days)", "at most 256"),
    # at
    ("at(2030-02-30T00:00:00)", "is not a real date and time"),
    ("at(2029-02-29T12:00:00)", "is not a real date and time"),  # not a leap year
    ("at(2030-13-01T00:00:00)", "is not a real date and time"),
    ("at(2030-01-01T24:00:00)", "is not a real date and time"),
    ("at(2030-01-01 00:00:00)", "write at(yyyy-mm-ddThh:mm:ss)"),
    ("at(tomorrow)", "write at(yyyy-mm-ddThh:mm:ss)"),
    # anything else
    ("daily at 8", "is not a schedule"),
    ("", "is not a schedule"),
]


@pytest.mark.parametrize("expression", ACCEPTED)
def test_state_manager_accepts(expression: str) -> None:
    assert schedule_problem(expression) is None


@pytest.mark.parametrize(("expression", "says"), REFUSED, ids=[r[0][:40] for r in REFUSED])
def test_state_manager_refuses(expression: str, says: str) -> None:
    problem = schedule_problem(expression)
    assert problem is not None
    assert says in problem, problem


OPTIONS = [
    # (kind, applyOnlyAtCronInterval, offset) -> None or (field, fragment)
    (("cron", False, None), None),
    (("cron", True, None), None),
    (("at", True, None), None),  # documented: at() with --apply-only-at-cron-interval
    (("cron", True, 3), None),
    (("cron", True, 1), None),
    (("cron", True, 6), None),
    (("cron", True, 7), ("offset", "outside 1 to 6")),
    (("cron", True, 0), ("offset", "outside 1 to 6")),
    (("cron", False, 3), ("offset", "needs applyOnlyAtCronInterval")),
    (("rate", True, 2), ("offset", "cron schedules only")),
    (("at", True, 2), ("offset", "cron schedules only")),
    ((None, False, 2), ("offset", "cron schedules only")),
    (("rate", True, None), ("applyOnlyAtCronInterval", "not a rate schedule")),
    ((None, True, None), ("applyOnlyAtCronInterval", "not no schedule")),
]


@pytest.mark.parametrize(("given", "expected"), OPTIONS, ids=[str(o[0]) for o in OPTIONS])
def test_offset_and_apply_only_at_cron_interval(given, expected) -> None:
    kind, apply_only, offset = given
    found = options_problem(kind, apply_only_at_cron_interval=apply_only, offset=offset)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert found[0] == expected[0]
        assert expected[1] in found[1], found


def test_schedule_kind_reads_the_form_only() -> None:
    assert schedule_kind("cron(nonsense)") == "cron"
    assert schedule_kind("rate(1 hour)") == "rate"
    assert schedule_kind("at(whenever)") == "at"
    assert schedule_kind("every day") is None


def _association(root: Path, schedule: str, extra: str = "") -> Path:
    """An Association whose ``schedule`` mapping holds the lines of ``schedule`` (line 10 on)."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "association.yaml"
    lines = [
        "apiVersion: fleet-controller/v1alpha1",
        "kind: Association",
        "metadata:",
        "  name: agent-update",
        "spec:",
        "  document: {name: AWS-UpdateSSMAgent}",
        "  targets:",
        "    tags: {App: agent}",
        "  schedule:",
        *(f"    {line}" for line in schedule.splitlines()),
    ]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@pytest.mark.parametrize(
    ("schedule", "extra", "line", "field", "says"),
    [
        ("expression: cron(99 99 ? * * *)", "", 10, "spec.schedule.expression", "outside 0-59"),
        ("expression: at(2030-02-30T08:00:00)", "", 10, "spec.schedule.expression", "real date"),
        (
            "expression: cron(0 0 ? * THU#2 *)\noffset: 3",
            "",
            11,
            "spec.schedule.offset",
            "needs applyOnlyAtCronInterval",
        ),
        (
            "expression: rate(1 day)",
            "  applyOnlyAtCronInterval: true\n",
            11,
            "spec.applyOnlyAtCronInterval",
            "not a rate schedule",
        ),
    ],
    ids=["cron-ranges", "impossible-at", "offset-alone", "apply-only-with-rate"],
)
def test_validate_locates_schedule_errors(tmp_path, capsys, schedule, extra, line, field, says):
    path = _association(tmp_path, schedule, extra)
    assert main(["validate", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:{line}: Association/agent-update: {field}: " in err, err
    assert says in err


def test_validate_accepts_an_offset_with_apply_only_at_cron_interval(tmp_path, capsys):
    _association(
        tmp_path,
        "expression: cron(0 0 ? * THU#2 *)\noffset: 3",
        "  applyOnlyAtCronInterval: true\n",
    )
    assert main(["validate", str(tmp_path)]) == 0, capsys.readouterr().err
