"""Association schedules, checked offline against what State Manager accepts.

Hole 7 of issue 9: ``cron(99 99 ? * * *)``, non-numeric fields and impossible ``at()`` dates passed
``validate`` and were refused by AWS in the middle of an apply. The rules, and where they come
from (AWS Systems Manager User Guide, "Reference: Cron and rate expressions for Systems Manager",
https://docs.aws.amazon.com/systems-manager/latest/userguide/reference-cron-and-rate-expressions.html,
and botocore's CreateAssociation model):

* ``rate(N unit)``: unit minute(s), hour(s) or day(s), singular exactly when N is 1; associations
  take "intervals of 30 minutes or greater and less than 31 days".
* ``cron(...)``: minutes hours day-of-month month day-of-week [year], with an optional leading
  Seconds field whose "value can only be 0". Values: minutes 0-59, hours 0-23, day-of-month 1-31,
  day-of-week 1-7 or SUN-SAT, year 1970-2199. "State Manager doesn't currently support specifying
  months in cron expressions for associations", and one of day-of-month and day-of-week must be
  ``?``. Associations "only support the following cron expressions: every 1/2, 1, 2, 4, 8, or 12
  hours; every day or every week at a specific time"; the page's association examples add a
  monthly day (``THU#2`` with a schedule offset), and the current page lists the nth day and the
  last X day of the month at a specific time. Those are the shapes accepted here (``SHAPES``).
* ``at(yyyy-mm-ddThh:mm:ss)``: one run at a UTC time, which must be a real date and time. The page's
  example creates one with ``--apply-only-at-cron-interval``, so that combination is valid.
* ScheduleOffset: 1 to 6 days (botocore: ``ScheduleOffset`` min 1, max 6), "for cron expressions
  only", and "to use offsets, you must specify the ApplyOnlyAtCronInterval parameter".
* ApplyOnlyAtCronInterval: not for rate expressions.

The sandbox enforces the same rules with code of its own (a test oracle never shares the code it
judges).
"""

from __future__ import annotations

import re
from datetime import datetime

MAX_EXPRESSION_CHARS = 256  # botocore: ScheduleExpression max 256
MIN_RATE_MINUTES = 30
MAX_RATE_MINUTES_EXCLUSIVE = 31 * 24 * 60  # "less than 31 days"
OFFSET_MIN, OFFSET_MAX = 1, 6
HOUR_STEPS = (1, 2, 4, 8, 12)
YEAR_MIN, YEAR_MAX = 1970, 2199
SHAPES = (
    "every 30 minutes: cron(0/30 * * * ? *)",
    "every 1, 2, 4, 8 or 12 hours at a minute: cron(15 0/4 * * ? *)",
    "daily at a time: cron(15 13 * * ? *) or cron(15 13 ? * * *)",
    "on days of the week at a time: cron(15 13 ? * MON-FRI *)",
    "on the nth or last weekday of the month: cron(0 2 ? * THU#2 *), cron(0 2 ? * 6L *)",
    "on a day, the last day or every nth day of the month: cron(0 2 15 * ? *),"
    " cron(0 2 L * ? *), cron(0 2 */3 * ? *)",
)

_RATE = re.compile(r"rate\(([0-9]+) ([a-z]+)\)")
_RATE_UNITS = {"minute": 1, "hour": 60, "day": 1440}
_CRON = re.compile(r"cron\((.*)\)")
_AT = re.compile(r"at\((.*)\)")
_AT_FORMAT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")  # 1 = SUN, as cron counts
_DAY_NAMES = {name: index + 1 for index, name in enumerate(_DAYS)}
_NUMBER = re.compile(r"[0-9]{1,4}")


class ScheduleProblem(ValueError):
    """Why State Manager would refuse a schedule (its InvalidSchedule), in a reviewer's words."""


def normalize_expression(expression: str) -> str:
    """One spelling per schedule: trimmed, single spaces, upper-case names (``mon`` -> ``MON``)."""
    text = " ".join(expression.split())
    match = _CRON.fullmatch(text)
    if match:
        return f"cron({' '.join(match.group(1).upper().split())})"
    return text


def schedule_kind(expression: str) -> str | None:
    """``cron``, ``rate`` or ``at`` for an expression of that form (valid or not), else None."""
    text = normalize_expression(expression)
    for kind, pattern in (("cron", _CRON), ("rate", _RATE), ("at", _AT)):
        if pattern.fullmatch(text):
            return kind
    return None


def schedule_problem(expression: str) -> str | None:
    """Why State Manager would refuse ``expression`` as an association schedule, or None."""
    text = normalize_expression(expression)
    if len(text) > MAX_EXPRESSION_CHARS:
        return f"the expression is {len(text)} characters; at most {MAX_EXPRESSION_CHARS}"
    try:
        kind = schedule_kind(text)
        if kind == "rate":
            _check_rate(text)
        elif kind == "at":
            _check_at(text)
        elif kind == "cron":
            _check_cron(text)
        else:
            raise ScheduleProblem(
                f"{expression!r:.80} is not a schedule: use cron(minutes hours day-of-month month"
                " day-of-week [year]), rate(N minutes|hours|days) or at(yyyy-mm-ddThh:mm:ss)"
            )
    except ScheduleProblem as problem:
        return str(problem)
    return None


def options_problem(
    kind: str | None, *, apply_only_at_cron_interval: bool, offset: int | None
) -> tuple[str, str] | None:
    """(field, why) when ApplyOnlyAtCronInterval or ScheduleOffset cannot go with a schedule of
    ``kind`` (``schedule_kind``; None: no schedule). Fields are the manifest's names."""
    if offset is not None:
        if not OFFSET_MIN <= offset <= OFFSET_MAX:
            return "offset", f"{offset} is outside {OFFSET_MIN} to {OFFSET_MAX} days"
        if kind != "cron":
            return "offset", "a schedule offset is supported for cron schedules only"
        if not apply_only_at_cron_interval:
            return (
                "offset",
                "a schedule offset needs applyOnlyAtCronInterval: true (State Manager requires it"
                " so the association does not also run at once when created)",
            )
    if apply_only_at_cron_interval and kind not in ("cron", "at"):
        what = "a rate schedule" if kind == "rate" else "no schedule"
        return (
            "applyOnlyAtCronInterval",
            f"needs a cron or at() schedule (an expression or a stagger group), not {what}",
        )
    return None


# -- rate and at -------------------------------------------------------------------------------


def _check_rate(text: str) -> None:
    match = _RATE.fullmatch(text)
    assert match is not None
    amount, unit = int(match.group(1)), match.group(2)
    base = unit[:-1] if unit.endswith("s") else unit
    if base not in _RATE_UNITS:
        raise ScheduleProblem(f"{text}: the unit is minute(s), hour(s) or day(s)")
    if amount == 0:
        raise ScheduleProblem(f"{text}: the rate must be a positive number")
    if (amount == 1) == unit.endswith("s"):
        raise ScheduleProblem(f"{text}: write rate(1 {base}) or rate(N {base}s) for N > 1")
    minutes = amount * _RATE_UNITS[base]
    if minutes < MIN_RATE_MINUTES:
        raise ScheduleProblem(f"{text}: associations run at most every 30 minutes")
    if minutes >= MAX_RATE_MINUTES_EXCLUSIVE:
        raise ScheduleProblem(f"{text}: an association's rate must be less than 31 days")


def _check_at(text: str) -> None:
    match = _AT.fullmatch(text)
    assert match is not None
    moment = match.group(1)
    if not _AT_FORMAT.fullmatch(moment):
        raise ScheduleProblem(f"{text:.80}: write at(yyyy-mm-ddThh:mm:ss), a UTC time")
    try:
        datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise ScheduleProblem(f"{text}: {moment} is not a real date and time") from None


# -- cron ----------------------------------------------------------------------------------------


def _check_cron(text: str) -> None:
    match = _CRON.fullmatch(text)
    assert match is not None
    fields = match.group(1).split()
    if len(fields) == 7:
        if fields[0] != "0":
            raise ScheduleProblem(f"{text}: the optional seconds field can only be 0")
        fields = fields[1:]
    if len(fields) == 5:
        fields = [*fields, "*"]
    if len(fields) != 6:
        raise ScheduleProblem(
            f"{text:.80}: a cron expression has the fields minutes hours day-of-month month"
            " day-of-week [year] (and an optional leading seconds field, 0)"
        )
    minute, hour, dom, month, dow, year = fields
    for value, low, high, what in ((minute, 0, 59, "minutes"), (hour, 0, 23, "hours")):
        _check_values(value, low, high, what, text)
    if month != "*":
        raise ScheduleProblem(
            f"{text}: State Manager does not support a specific month in association cron"
            " expressions; the month field must be *"
        )
    if year != "*":
        _check_values(year, YEAR_MIN, YEAR_MAX, "year", text)
    if (dom == "?") == (dow == "?"):
        raise ScheduleProblem(f"{text}: exactly one of day-of-month and day-of-week must be '?'")
    days = _days_shape(dom, dow, text)
    if _is_half_hourly(minute):
        if hour == "*" and days == "daily":
            return
        raise _unsupported(text, "every 30 minutes runs every hour of every day (hour *)")
    if _single(minute) is None:
        raise _unsupported(text, "the minute must be one number (or 0/30 for every 30 minutes)")
    if _single(hour) is not None:
        return  # at a time of day, on any of the day shapes above
    if _hour_step(hour) is None:
        steps = ", ".join(str(step) for step in HOUR_STEPS)
        raise _unsupported(text, f"the hour must be one number, or */N or S/N with N {steps}")
    if days != "daily":
        raise _unsupported(text, "an interval of hours runs every day (day fields * and ?)")


def _days_shape(dom: str, dow: str, text: str) -> str:
    """``daily``, or the kind of day-of-week/day-of-month restriction; refuses other shapes."""
    if (dom, dow) in (("*", "?"), ("?", "*")):
        return "daily"
    if dom == "?":
        if "#" in dow:
            day, _, nth = dow.partition("#")
            _day_value(day, text)
            if not (_NUMBER.fullmatch(nth) and 1 <= int(nth) <= 5):
                raise ScheduleProblem(f"{text}: in {dow}, the occurrence after # is 1 to 5")
            return "nth-weekday"
        if dow.endswith("L") and dow != "L":
            _day_value(dow[:-1], text)
            return "last-weekday"
        for part in dow.split(","):
            for day in part.split("-", 1):
                _day_value(day, text)
            if "-" in part:
                first, last = (_day_value(day, text) for day in part.split("-", 1))
                if first > last:
                    raise ScheduleProblem(f"{text}: the day range {part} runs backwards")
        return "weekly"
    if dom == "L":
        return "last-day"
    if "/" in dom:
        start, _, step = dom.partition("/")
        if start != "*":
            _check_values(start, 1, 31, "day-of-month", text)
        _check_values(step, 1, 31, "day-of-month step", text)
        return "every-nth-day"
    if _single(dom) is not None:
        _check_values(dom, 1, 31, "day-of-month", text)
        return "day-of-month"
    _check_values(dom, 1, 31, "day-of-month", text)  # names the bad value, if there is one
    raise _unsupported(text, "the day-of-month must be one day, L, */N or *")


def _day_value(text_value: str, text: str) -> int:
    if text_value in _DAY_NAMES:
        return _DAY_NAMES[text_value]
    if _NUMBER.fullmatch(text_value) and 1 <= int(text_value) <= 7:
        return int(text_value)
    raise ScheduleProblem(
        f"{text}: {text_value!r:.20} is not a day of the week (1-7 or SUN, MON, ... SAT)"
    )


def _check_values(field: str, low: int, high: int, what: str, text: str) -> None:
    """Every number in a list/range/step field lies in ``low``..``high``."""
    for part in field.split(","):
        value, _, step = part.partition("/")
        pieces = [] if value == "*" else value.split("-", 1)
        if step:
            pieces.append(step)
        for piece in pieces:
            if not _NUMBER.fullmatch(piece):
                raise ScheduleProblem(f"{text}: {piece!r:.20} is not a valid {what} value")
            if not low <= int(piece) <= high and not (step and piece == step):
                raise ScheduleProblem(f"{text}: {what} value {piece} is outside {low}-{high}")
        if step and not 1 <= int(step) <= high - low + 1:
            raise ScheduleProblem(f"{text}: the {what} step {step} is outside 1-{high - low + 1}")


def _single(field: str) -> int | None:
    return int(field) if _NUMBER.fullmatch(field) else None


def _is_half_hourly(minute: str) -> bool:
    return minute in ("0/30", "*/30")


def _hour_step(hour: str) -> int | None:
    """N for an hour field that means "every N hours" (``*``, ``*/N``, ``S/N`` with S < N)."""
    if hour == "*":
        return 1
    start, slash, step = hour.partition("/")
    if not slash or not _NUMBER.fullmatch(step) or int(step) not in HOUR_STEPS:
        return None
    if start != "*" and not (_NUMBER.fullmatch(start) and int(start) < int(step)):
        return None
    return int(step)


def _unsupported(text: str, detail: str) -> ScheduleProblem:
    return ScheduleProblem(
        f"{text}: {detail}. State Manager associations accept only these cron shapes: "
        + "; ".join(SHAPES)
    )
