"""NCRONTAB schedules (the Functions timer trigger's six fields: second minute hour day month day-of-week).

The scheduled probe run needs the schedule's interval, so that a server claimed by one run is not due again
before the next run ("each server at most once per interval"): the shortest gap between the schedule's
upcoming occurrences. Only what NCRONTAB accepts is parsed: `*`, numbers, `a-b`, `/step` and lists, and
three-letter month and day names.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DEFAULT_PROBE_SCHEDULE = "0 0 */6 * * *"

_FIELDS = (("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 6))
_NAMES = {
    "month": {name: index + 1 for index, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )},
    "weekday": {name: index for index, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
}
# Occurrences looked at to find the shortest gap (a schedule repeats at least yearly; this covers irregular
# ones such as "weekdays at 9 and 17" many times over).
_OCCURRENCES_COMPARED = 64
_DAYS_SEARCHED = 4 * 366


def _number(text: str, field: str, low: int, high: int) -> int:
    value = _NAMES.get(field, {}).get(text.lower()) if not text.isdigit() else int(text)
    if field == "weekday" and value == 7:
        value = 0  # Sunday written as 7
    if value is None or not low <= value <= high:
        raise ValueError(f"{field} value {text!r} is not within {low}-{high}")
    return value


def _parse_field(text: str, field: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"{field} step {step_text!r} is not a positive number")
        if span == "*":
            start, end = low, high
        elif "-" in span:
            first, _, last = span.partition("-")
            start, end = _number(first, field, low, high), _number(last, field, low, high)
        else:
            start = _number(span, field, low, high)
            end = high if step else start
        if start > end:
            raise ValueError(f"{field} range {span!r} is empty")
        values.update(range(start, end + 1, step or 1))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        parts = expression.split()
        if len(parts) != 6:
            raise ValueError("must be an NCRONTAB expression of six fields: second minute hour day month day-of-week")
        try:
            fields = [_parse_field(text, *spec) for text, spec in zip(parts, _FIELDS, strict=True)]
        except ValueError as exc:
            raise ValueError(f"is not a valid NCRONTAB expression: {exc}") from None
        seconds, minutes, hours, days, months, weekdays = fields
        schedule = cls(tuple(sorted(seconds)), tuple(sorted(minutes)), tuple(sorted(hours)), days, months, weekdays)
        if next(schedule.occurrences(datetime(2000, 1, 1, tzinfo=UTC)), None) is None:
            raise ValueError("is an NCRONTAB expression that never fires")
        return schedule

    def occurrences(self, after: datetime) -> Iterator[datetime]:
        """The schedule's times after `after` (UTC, as the Functions host reads NCRONTAB by default)."""
        start = after.astimezone(UTC).replace(microsecond=0)
        day = start.replace(hour=0, minute=0, second=0)
        for _ in range(_DAYS_SEARCHED):
            # Python's weekday() is Monday=0; NCRONTAB's is Sunday=0.
            if day.day in self.days and day.month in self.months and (day.weekday() + 1) % 7 in self.weekdays:
                for hour, minute, second in itertools.product(self.hours, self.minutes, self.seconds):
                    moment = day.replace(hour=hour, minute=minute, second=second)
                    if moment > start:
                        yield moment
            day += timedelta(days=1)

    def shortest_interval(self, after: datetime | None = None) -> timedelta:
        """The shortest gap between consecutive upcoming occurrences."""
        upcoming = list(itertools.islice(self.occurrences(after or datetime.now(UTC)), _OCCURRENCES_COMPARED))
        if len(upcoming) < 2:
            return timedelta(days=366)
        return min(later - earlier for earlier, later in itertools.pairwise(upcoming))


def probe_schedule(env: Mapping[str, str] | None = None) -> str:
    """PROBE_SCHEDULE as the timer trigger is indexed with (its default when unset; the host reports a bad one).

    Read from the environment, not from the settings model: indexing builds no pydantic model
    (shared/lazy_imports.py). ProbeSettings checks the same setting on the first scheduled run.
    """
    env = os.environ if env is None else env
    return env.get("PROBE_SCHEDULE", "").strip() or DEFAULT_PROBE_SCHEDULE
