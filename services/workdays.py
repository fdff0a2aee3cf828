"""Deadlines as a Chinese county counts them: in hours on the wall clock, or in working days
by mainland China's statutory calendar (holidays and make-up working days, 调休).

The calendar comes from the maintained `chinese_calendar` library, never a hand-kept list; a
year it does not know yet falls back to Monday-Friday, and `missing_years` lets `check` warn.

"N个工作日内" is counted from the next working day: the day a case arrives is day 0, whatever
the hour, and the deadline is the end (24:00 local) of the Nth working day after it. A working
day counts whole (00:00-24:00) when measuring how much of the allowed time has gone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum

import chinese_calendar

MAX_WORKDAYS = 366  # a longer span is a mistake in config.toml, not a deadline


class Unit(StrEnum):
    HOURS = "hours"
    WORKDAYS = "workdays"


@dataclass(frozen=True)
class Span:
    """An allowed time: `amount` hours or working days (>= 1)."""

    amount: int
    unit: Unit

    def __post_init__(self) -> None:
        if self.amount < 1:
            raise ValueError("a span is at least 1")
        if self.unit == Unit.WORKDAYS and self.amount > MAX_WORKDAYS:
            raise ValueError(f"a span of working days is at most {MAX_WORKDAYS}")


def is_workday(day: date) -> bool:
    """Per the statutory calendar; for a year the library does not cover, Monday-Friday."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def missing_years(years: Iterable[int]) -> list[int]:
    """The years (sorted) the library has no calendar for."""
    missing = set()
    for year in set(years):
        try:
            chinese_calendar.is_workday(date(year, 6, 1))
        except NotImplementedError:
            missing.add(year)
    return sorted(missing)


def _aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a deadline needs a timezone-aware datetime")


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), zone)


def deadline(start: datetime, span: Span, zone: tzinfo) -> datetime:
    """When `span`, started at `start`, runs out (in `zone`)."""
    _aware(start)
    if span.unit == Unit.HOURS:
        return start + timedelta(hours=span.amount)
    day = start.astimezone(zone).date()
    counted = 0
    while counted < span.amount:
        day += timedelta(days=1)
        counted += is_workday(day)
    return _midnight(day + timedelta(days=1), zone)


def _working_pieces(
    start: datetime, end: datetime, zone: tzinfo
) -> Iterator[tuple[datetime, datetime]]:
    """The parts of [start, end) that fall inside working days, in order."""
    day = start.astimezone(zone).date()
    while _midnight(day, zone) < end:
        following = day + timedelta(days=1)
        if is_workday(day):
            begin = max(start, _midnight(day, zone))
            finish = min(end, _midnight(following, zone))
            if begin < finish:
                yield begin, finish
        day = following


def working_seconds(start: datetime, end: datetime, zone: tzinfo) -> int:
    """Seconds between `start` and `end` that fall inside working days."""
    _aware(start)
    _aware(end)
    return int(sum((b - a).total_seconds() for a, b in _working_pieces(start, end, zone)))


def point_in_span(
    start: datetime, due: datetime, span: Span, zone: tzinfo, fraction: float
) -> datetime:
    """The moment `fraction` (0..1) of the allowed time from `start` to `due` has gone: on
    the wall clock for hours, in working time for working days."""
    _aware(start)
    _aware(due)
    if span.unit == Unit.HOURS:
        return start + (due - start) * fraction
    left = working_seconds(start, due, zone) * fraction
    for begin, finish in _working_pieces(start, due, zone):
        piece = (finish - begin).total_seconds()
        if left <= piece:
            return begin + timedelta(seconds=left)
        left -= piece
    return due
