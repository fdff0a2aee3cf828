"""Deadlines counted as a Chinese county counts them, on the real 2026 calendar: National Day
is 10-01..10-07 off, with Sunday 09-20 and Saturday 10-10 make-up working days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.workdays import (
    Span,
    Unit,
    deadline,
    is_workday,
    missing_years,
    point_in_span,
    working_seconds,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("start", "span", "due"),
    [
        # Wed 9-30 = 1, Thu 10-08 = 2, Fri 10-09 = 3: the holiday week does not count
        (at(2026, 9, 29, 15), Span(3, Unit.WORKDAYS), at(2026, 10, 10)),
        # ... and the make-up Saturday 10-10 does
        (at(2026, 9, 29, 15), Span(4, Unit.WORKDAYS), at(2026, 10, 11)),
        # a Saturday start: the make-up Sunday 9-20 is the first working day
        (at(2026, 9, 19, 11), Span(1, Unit.WORKDAYS), at(2026, 9, 21)),
        # an ordinary Friday: to the end of Monday
        (at(2026, 11, 27, 9), Span(1, Unit.WORKDAYS), at(2026, 12, 1)),
        # hours are the wall clock, holiday or not
        (at(2026, 9, 30, 20), Span(24, Unit.HOURS), at(2026, 10, 1, 20)),
    ],
)
def test_deadlines(start: datetime, span: Span, due: datetime) -> None:
    assert deadline(start, span, SHANGHAI) == due


def test_three_quarters_of_working_days_falls_inside_a_working_day() -> None:
    start = at(2026, 11, 27, 12)  # Friday noon; 2 working days: Mon and Tue -> due Wed 00:00
    span = Span(2, Unit.WORKDAYS)
    due = deadline(start, span, SHANGHAI)
    assert due == at(2026, 12, 2)
    # working time: Fri 12:00-24:00 (12 h) + Mon + Tue (48 h) = 60 h; 75% = 45 h: Tue 09:00
    assert point_in_span(start, due, span, SHANGHAI, 0.75) == at(2026, 12, 1, 9)
    assert point_in_span(start, due, span, SHANGHAI, 0) == start
    assert point_in_span(start, due, span, SHANGHAI, 1) == due


def test_hours_reminder_is_wall_clock() -> None:
    start = at(2026, 10, 1, 0)
    span = Span(8, Unit.HOURS)
    assert point_in_span(start, deadline(start, span, SHANGHAI), span, SHANGHAI, 0.75) == at(
        2026, 10, 1, 6
    )


def test_working_seconds_over_the_holiday_week() -> None:
    # 9-30 (Wed) to 10-09 (Fri) 00:00: only 9-30 and 10-08 are working days
    assert working_seconds(at(2026, 9, 30), at(2026, 10, 9), SHANGHAI) == 2 * 86400


def test_the_calendar() -> None:
    assert is_workday(date(2026, 10, 10))  # make-up Saturday
    assert not is_workday(date(2026, 10, 5))  # a holiday Monday
    assert not is_workday(date(2026, 11, 28))  # an ordinary Saturday
    assert is_workday(date(2031, 6, 2))
    assert not is_workday(date(2031, 6, 1))
    assert missing_years([2025, 2026, 2031]) == [2031]


def test_nonsense_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Span(0, Unit.WORKDAYS)
    with pytest.raises(ValueError, match="timezone-aware"):
        deadline(datetime(2026, 10, 1), Span(1, Unit.WORKDAYS), SHANGHAI)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=364 * 86400),
    st.integers(min_value=1, max_value=20),
)
def test_a_deadline_is_the_end_of_the_nth_working_day(offset: int, amount: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=offset)
    due = deadline(start, Span(amount, Unit.WORKDAYS), SHANGHAI)
    local = due.astimezone(SHANGHAI)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)
    last = local.date() - timedelta(days=1)
    assert is_workday(last)
    first = start.astimezone(SHANGHAI).date() + timedelta(days=1)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    assert sum(is_workday(d) for d in days) == amount
