"""State Manager schedule expressions: parse them as AWS validates them, and tell when they fire.

``association_schedule`` applies the association rules of AWS's "Reference: Cron and rate
expressions for Systems Manager" (section "Cron and rate expressions for associations"):
- cron only every 1/2, 1, 2, 4, 8 or 12 hours, every day or week at a specific time, every nth day,
  or the last (or nth) given weekday of the month; no specific month;
- the optional Seconds field may only be 0;
- rate() from 30 minutes to less than 31 days;
- at(yyyy-mm-ddThh:mm:ss) once, in UTC (a date that does not exist is refused).
Where the page is silent the sandbox accepts: a set of weekdays (MON-FRI) for "every week", and
any first hour for the hourly steps (0/4 and 1/4 alike).

Associations take ``rate(N minutes|hours|days)`` (at least 30 minutes), ``cron(...)`` in the
EventBridge dialect (minutes hours day-of-month month day-of-week [year], with an optional leading
seconds field; exactly one of day-of-month / day-of-week is ``?``; State Manager does not accept a
specific month) and the single run ``at(yyyy-mm-ddThh:mm:ss)``. All times are UTC. The sandbox asks
one question: did the schedule fire in ``(after, until]`` of the simulated clock?
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MIN_RATE = timedelta(minutes=30)
MAX_RATE = timedelta(
    days=31
)  # exclusive: "intervals of 30 minutes or greater and less than 31 days"
HOURLY_STEPS = frozenset({1, 2, 4, 8, 12})  # "every 1/2, 1, 2, 4, 8, or 12 hours"
_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
_DAYS = {
    d: i + 1 for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])
}  # 1 = Sunday
_HORIZON_DAYS = 366 * 8


class ScheduleError(ValueError):
    """An expression AWS would refuse with InvalidSchedule; the message says why."""


@dataclass(frozen=True)
class Rate:
    interval: timedelta

    def fires_between(self, after: datetime, until: datetime, anchor: datetime) -> bool:
        """Ticks fall at ``anchor + k * interval`` (k >= 1); anchor is when the schedule started."""
        if until <= anchor:
            return False
        k = (until - anchor) // self.interval
        return k >= 1 and anchor + k * self.interval > after


@dataclass(frozen=True)
class At:
    when: datetime

    def fires_between(self, after: datetime, until: datetime, anchor: datetime) -> bool:
        return after < self.when <= until


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: str  # raw field: '?', '*', 'L', '15W', lists/ranges/steps
    day_of_week: str  # raw field: '?', '*', '6L', 'THU#2', lists/ranges/steps
    years: frozenset[int] | None  # None = every year

    def fires_between(self, after: datetime, until: datetime, anchor: datetime) -> bool:
        following = self.next_after(after)
        return following is not None and following <= until

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after ``moment`` (minute resolution), within eight years."""
        start = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.date()
        for _ in range(_HORIZON_DAYS):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        return None

    def _day_matches(self, day: date) -> bool:
        if self.years is not None and day.year not in self.years:
            return False
        if self.day_of_month != "?":
            return _dom_matches(self.day_of_month, day)
        return _dow_matches(self.day_of_week, day)


Schedule = Rate | Cron | At


def parse_schedule(expression: str) -> Schedule:
    text = expression.strip()
    match = _RATE.match(text)
    if match:
        return _rate(int(match.group(1)), match.group(2))
    match = _AT.match(text)
    if match:
        try:
            return At(datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC))
        except ValueError:
            raise ScheduleError(f"{match.group(1)} is not a date and time that exists") from None
    match = _CRON.match(text)
    if match:
        return _cron(match.group(1).split())
    raise ScheduleError(
        f"{expression!r} is not a rate(N minutes|hours|days), cron(...) or at(...) expression"
    )


def _rate(value: int, unit: str) -> Rate:
    if value <= 0:
        raise ScheduleError("a rate must be a positive number")
    if (value == 1 and unit.endswith("s")) or (value > 1 and not unit.endswith("s")):
        raise ScheduleError(f"use '{unit.rstrip('s')}' for 1 and '{unit.rstrip('s')}s' otherwise")
    interval = {
        "minute": timedelta(minutes=value),
        "hour": timedelta(hours=value),
        "day": timedelta(days=value),
    }[unit.rstrip("s")]
    if interval < MIN_RATE:
        raise ScheduleError(
            "associations run at most every 30 minutes: use rate(30 minutes) or more"
        )
    if interval >= MAX_RATE:
        raise ScheduleError("an association rate must be less than 31 days")
    return Rate(interval)


def association_schedule(expression: str) -> Schedule:
    """``parse_schedule`` plus the cron shapes State Manager accepts for associations."""
    schedule = parse_schedule(expression)
    if isinstance(schedule, Cron):
        fields = _CRON.match(expression.strip()).group(1).split()  # type: ignore[union-attr]
        _check_association_cron(fields)
    return schedule


def _is_number(text: str, low: int, high: int) -> bool:
    return text.isdigit() and low <= int(text) <= high


def _step(text: str, low: int, high: int) -> int | None:
    """N for ``*/N`` or ``M/N`` (M in range), else None."""
    if "/" not in text:
        return None
    start, step = text.split("/", 1)
    if start != "*" and not _is_number(start, low, high):
        return None
    return int(step) if step.isdigit() else None


def _check_association_cron(fields: list[str]) -> None:
    if len(fields) == 7:
        if fields[0] != "0":
            raise ScheduleError("the Seconds field of an association's cron can only be 0")
        fields = fields[1:]
    if len(fields) == 5:
        fields = [*fields, "*"]
    minute, hour, dom, _month, dow, _year = fields
    # AWS's association table shows '*' in the Year field and says nothing of years; the general
    # cron rules allow them (checked by _cron), and nothing documents a refusal, so a year range
    # is accepted here as the controller's validate accepts it (unverified either way).
    any_day = {dom, dow} == {"*", "?"}
    every_half_hour = _step(minute, 0, 29) == 30 and hour == "*"
    hourly = _is_number(minute, 0, 59) and (hour == "*" or _step(hour, 0, 23) in HOURLY_STEPS)
    if every_half_hour or hourly:
        if not any_day:
            raise ScheduleError(
                "an association that runs every 30 minutes or every 1, 2, 4, 8 or 12 hours runs "
                "on every day ('*' and '?' for the day fields)"
            )
        return
    if not (_is_number(minute, 0, 59) and _is_number(hour, 0, 23)):
        raise ScheduleError(
            "associations support cron only every 1/2, 1, 2, 4, 8 or 12 hours, or at one "
            "specific time (minutes and hours as single numbers)"
        )
    if any_day:
        return  # every day
    if dom == "?" and re.fullmatch(r"[A-Za-z0-9,\-]+", dow):
        return  # every week, on the given days
    if dom == "?" and re.fullmatch(r"[A-Za-z0-9]+(L|#[1-5])", dow):
        return  # the last (or nth) given weekday of the month
    step = _step(dom, 1, 31)
    if dow == "?" and step is not None and 1 <= step <= 31:
        return  # every nth day
    if dow == "?" and (dom == "L" or _is_number(dom, 1, 31)):
        # One day of every month (a date, or the last day): no month is named, which is the
        # documented restriction; AWS's table does not list the shape, nor refuse it (unverified),
        # and the controller's validate accepts it, so both sides agree.
        return
    raise ScheduleError(
        f"State Manager doesn't support this cron day pattern for associations "
        f"(day-of-month {dom!r}, day-of-week {dow!r}): use every day, given weekdays, every "
        "nth day, one day of the month, or the last or nth weekday of the month"
    )


def _cron(fields: list[str]) -> Cron:
    if len(fields) == 7:
        _values(fields[0], 0, 59, {}, "seconds")
        fields = fields[1:]
    if len(fields) == 5:
        fields = [*fields, "*"]
    if len(fields) != 6:
        raise ScheduleError(
            "a cron expression has the fields minutes hours day-of-month month day-of-week [year]"
        )
    minute, hour, dom, month, dow, year = fields
    if month not in ("*", "?"):
        raise ScheduleError(
            "State Manager doesn't support specifying months in association cron expressions"
        )
    if (dom == "?") == (dow == "?"):
        raise ScheduleError("exactly one of day-of-month and day-of-week must be '?'")
    if dom != "?":
        _check_dom(dom)
    if dow != "?":
        _check_dow(dow)
    return Cron(
        minutes=frozenset(_values(minute, 0, 59, {}, "minutes")),
        hours=frozenset(_values(hour, 0, 23, {}, "hours")),
        day_of_month=dom,
        day_of_week=dow,
        years=None if year == "*" else frozenset(_values(year, 1970, 2199, {}, "year")),
    )


def _values(field: str, low: int, high: int, names: dict[str, int], what: str) -> set[int]:
    found: set[int] = set()
    for part in field.split(","):
        step, has_step = 1, "/" in part
        if has_step:
            part, step_text = part.split("/", 1)
            step = _number(step_text, 1, high - low + 1 if high > low else 1, {}, what)
        if part in ("*", ""):
            first, last = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            first, last = _number(a, low, high, names, what), _number(b, low, high, names, what)
            if first > last:
                raise ScheduleError(f"the {what} range {part} runs backwards")
        else:
            first = _number(part, low, high, names, what)
            last = high if has_step else first
        found.update(range(first, last + 1, step))
    return found


def _number(text: str, low: int, high: int, names: dict[str, int], what: str) -> int:
    value = names.get(text.upper()) if names else None
    if value is None:
        if not text.isdigit():
            raise ScheduleError(f"{text!r} is not a valid {what} value")
        value = int(text)
    if not low <= value <= high:
        raise ScheduleError(f"{what} value {value} is outside {low}-{high}")
    return value


def _check_dom(field: str) -> None:
    if field in ("*", "L", "LW"):
        return
    if field.endswith("W"):
        _number(field[:-1], 1, 31, {}, "day-of-month")
        return
    _values(field, 1, 31, {}, "day-of-month")


def _check_dow(field: str) -> None:
    if field == "*":
        return
    if "#" in field:
        day, nth = field.split("#", 1)
        _number(day, 1, 7, _DAYS, "day-of-week")
        _number(nth, 1, 5, {}, "day-of-week occurrence")
        return
    if field.endswith("L") and field != "L":
        _number(field[:-1], 1, 7, _DAYS, "day-of-week")
        return
    _values(field, 1, 7, _DAYS, "day-of-week")


def _last_day(day: date) -> int:
    following = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (following - timedelta(days=1)).day


def _dom_matches(field: str, day: date) -> bool:
    last = _last_day(day)
    if field == "*":
        return True
    if field == "L":
        return day.day == last
    if field.endswith("W"):
        target = last if field == "LW" else min(int(field[:-1]), last)
        return day.day == _nearest_weekday(day.replace(day=target)).day
    return day.day in _values(field, 1, 31, {}, "day-of-month")


def _nearest_weekday(day: date) -> date:
    if day.weekday() == 5:  # Saturday -> Friday, or Monday when that leaves the month
        return day - timedelta(days=1) if day.day > 1 else day + timedelta(days=2)
    if day.weekday() == 6:  # Sunday -> Monday, or Friday when that leaves the month
        return day + timedelta(days=1) if day.day < _last_day(day) else day - timedelta(days=2)
    return day


def _weekday(day: date) -> int:
    """1 = Sunday ... 7 = Saturday, as cron counts."""
    return (day.weekday() + 1) % 7 + 1


def _dow_matches(field: str, day: date) -> bool:
    if field == "*":
        return True
    if "#" in field:
        name, nth = field.split("#", 1)
        return _weekday(day) == _number(name, 1, 7, _DAYS, "day-of-week") and (
            day.day - 1
        ) // 7 + 1 == int(nth)
    if field.endswith("L"):
        return _weekday(day) == _number(
            field[:-1], 1, 7, _DAYS, "day-of-week"
        ) and day.day + 7 > _last_day(day)
    return _weekday(day) in _values(field, 1, 7, _DAYS, "day-of-week")
