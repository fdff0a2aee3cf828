"""The numbers behind /stats's charts and its headline sentence, for one period.

Periods are in the programme's time zone and half-open `[start, end)`:

- `/stats` (no argument): the last 12 weeks, Monday to Monday, this week included;
- `month` / `year`: this month / this year so far; `2026-10` / `2026`: that month / year.

What each chart counts:

- reports per week by category: reports *submitted* in the period, per Monday-based week;
- verification time: reports *decided* in the period (submission to decision), median and
  90th percentile per week and overall, against the review promise (24 h by default);
- handling time by department: cases *opened* in the period, dispatch to fixed, median and
  90th percentile, and the share fixed by its due time (the category's `fix_hours`);
- rewards per month: rewards less reversals *booked* in each month the period touches
  (at least the last 6 months up to the period's end), against the monthly budget.

Every chart carries its own n; below MIN_ITEMS it is drawn as a note, not as lines. The
headline: reports submitted, verified (still approved), rewards booked and cases fixed.
Nothing here imports Telegram or matplotlib.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from fractions import Fraction

from services.stats import MEDIAN, P90, percentile
from settings import Programme
from storage import figures as store
from storage.db import Database

MIN_ITEMS = 5  # a chart over fewer items says so instead of drawing lines
DEFAULT_WEEKS = 12
REWARD_MONTHS = 6  # the rewards chart shows at least this many months


@dataclass(frozen=True)
class Period:
    """A span of local time; `kind` and `label` name it in the locales (`charts.period.*`)."""

    kind: str  # weeks, month, year
    start: datetime
    end: datetime
    year: int
    month: int = 0

    @property
    def start_ts(self) -> int:
        return int(self.start.timestamp())

    @property
    def end_ts(self) -> int:
        return int(self.end.timestamp())

    def previous(self) -> Period:
        """The period of the same length just before this one (for the weekly digest)."""
        length = self.end - self.start
        return Period(self.kind, self.start - length, self.start, self.year, self.month)


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone)


def month_period(year: int, month: int, zone: tzinfo) -> Period:
    following = date(year + month // 12, month % 12 + 1, 1)
    return Period(
        "month", _midnight(date(year, month, 1), zone), _midnight(following, zone), year, month
    )


def year_period(year: int, zone: tzinfo) -> Period:
    return Period(
        "year", _midnight(date(year, 1, 1), zone), _midnight(date(year + 1, 1, 1), zone), year
    )


def weeks_period(now: datetime, zone: tzinfo, weeks: int = DEFAULT_WEEKS) -> Period:
    """The `weeks` Monday-based weeks up to and including this one."""
    today = now.astimezone(zone).date()
    monday = today - timedelta(days=today.weekday())
    end = monday + timedelta(weeks=1)
    start = end - timedelta(weeks=weeks)
    return Period("weeks", _midnight(start, zone), _midnight(end, zone), start.year)


def last_week(now: datetime, zone: tzinfo) -> Period:
    """Monday to Monday before this week: what the weekly digest reports."""
    this_week = weeks_period(now, zone, 1)
    return Period(
        "week", this_week.start - timedelta(weeks=1), this_week.start, this_week.start.year
    )


def last_month(now: datetime, zone: tzinfo) -> Period:
    """The calendar month before this one (the incident picture's default)."""
    local = now.astimezone(zone)
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return month_period(year, month, zone)


def parse_period(argument: str | None, now: datetime, zone: tzinfo) -> Period | None:
    """The period a command asks for; None when the argument makes no sense."""
    local = now.astimezone(zone)
    text = (argument or "").strip().lower()
    if not text:
        return weeks_period(now, zone)
    if text in ("month", "本月", "月"):
        return month_period(local.year, local.month, zone)
    if text in ("year", "本年", "今年", "年"):
        return year_period(local.year, zone)
    if match := re.fullmatch(r"(\d{4})-(\d{1,2})", text):
        year, month = int(match[1]), int(match[2])
        return (
            month_period(year, month, zone) if 2000 <= year <= 2100 and 1 <= month <= 12 else None
        )
    if re.fullmatch(r"\d{4}", text) and 2000 <= int(text) <= 2100:
        return year_period(int(text), zone)
    return None


# --- the charts' data ---------------------------------------------------------------


@dataclass(frozen=True)
class WeeklyReports:
    """Reports submitted per week, one row of counts per category."""

    weeks: tuple[date, ...]  # each week's Monday
    categories: tuple[str | None, ...]
    counts: tuple[tuple[int, ...], ...]  # counts[category][week]
    n: int

    @property
    def enough(self) -> bool:
        return self.n >= MIN_ITEMS


@dataclass(frozen=True)
class VerificationTimes:
    """Hours from submission to decision; per week only where a week has MIN_ITEMS."""

    weeks: tuple[date, ...]
    median_hours: tuple[float | None, ...]
    p90_hours: tuple[float | None, ...]
    median: float | None  # over the whole period
    p90: float | None
    promise_hours: int
    n: int

    @property
    def enough(self) -> bool:
        return self.n >= MIN_ITEMS


@dataclass(frozen=True)
class DepartmentHandling:
    """Dispatch to fixed for one department; figures None below MIN_ITEMS cases."""

    department: str
    n: int
    fixed: int
    median_hours: float | None
    p90_hours: float | None
    within_share: float | None  # of fixed cases, fixed by their due time
    service_hours: float | None  # the median of its cases' service levels

    @property
    def enough(self) -> bool:
        return self.n >= MIN_ITEMS


@dataclass(frozen=True)
class Handling:
    departments: tuple[DepartmentHandling, ...]
    n: int

    @property
    def enough(self) -> bool:
        return any(d.enough for d in self.departments)


@dataclass(frozen=True)
class MonthlyRewards:
    """Rewards less reversals per month, against the monthly budget."""

    months: tuple[tuple[int, int], ...]  # (year, month)
    fen: tuple[int, ...]
    budget_fen: int | None
    n: int  # rewards booked in those months

    @property
    def enough(self) -> bool:
        return self.n >= MIN_ITEMS


@dataclass(frozen=True)
class Headline:
    submitted: int
    verified: int
    rewards_fen: int  # 核定: booked in the period, less reversals
    fixed: int
    in_batch_fen: int = 0  # 发放中: of those, in a payout batch not yet paid
    paid_fen: int = 0  # 已发放: of those, in a batch marked paid


@dataclass(frozen=True)
class Charts:
    period: Period
    headline: Headline
    weekly: WeeklyReports
    verification: VerificationTimes
    handling: Handling | None  # None when no departments are configured
    rewards: MonthlyRewards


def week_starts(period: Period) -> tuple[date, ...]:
    """The Mondays of the weeks the period touches."""
    first = period.start.date() - timedelta(days=period.start.weekday())
    last = (period.end - timedelta(seconds=1)).date()
    found = []
    day = first
    while day <= last:
        found.append(day)
        day += timedelta(weeks=1)
    return tuple(found)


QUARTER_HOUR = 900  # every zone's offset is a whole number of quarter hours


@functools.lru_cache(maxsize=65_536)
def _local_day(quarter: int, zone: tzinfo) -> date:
    """The local date of a quarter hour: one zone lookup per quarter hour, not per row."""
    return datetime.fromtimestamp(quarter * QUARTER_HOUR, zone).date()


def _week_of(moment: int, zone: tzinfo) -> date:
    day = _local_day(moment // QUARTER_HOUR, zone)
    return day - timedelta(days=day.weekday())


def weekly_reports(
    period: Period, rows: Sequence[tuple[int, str | None]], programme: Programme, zone: tzinfo
) -> WeeklyReports:
    weeks = week_starts(period)
    column = {week: index for index, week in enumerate(weeks)}
    known = [c.key for c in programme.categories]
    found: dict[str | None, list[int]] = {}
    for submitted_at, category in rows:
        counts = found.setdefault(category, [0] * len(weeks))
        counts[column[_week_of(submitted_at, zone)]] += 1
    order = [c for c in known if c in found] + sorted(
        (c for c in found if c not in known), key=lambda c: c or ""
    )
    return WeeklyReports(
        weeks=weeks,
        categories=tuple(order),
        counts=tuple(tuple(found[c]) for c in order),
        n=len(rows),
    )


def _hours(ordered_seconds: Sequence[int], fraction: Fraction) -> float | None:
    if not ordered_seconds:
        return None
    return float(percentile(ordered_seconds, fraction)) / 3600


def verification_times(
    period: Period, rows: Sequence[tuple[int, int]], promise_hours: int, zone: tzinfo
) -> VerificationTimes:
    weeks = week_starts(period)
    per_week: dict[date, list[int]] = {week: [] for week in weeks}
    for decided_at, seconds in rows:
        per_week[_week_of(decided_at, zone)].append(seconds)
    medians, p90s = [], []
    for week in weeks:
        times = sorted(per_week[week])
        medians.append(_hours(times, MEDIAN) if len(times) >= MIN_ITEMS else None)
        p90s.append(_hours(times, P90) if len(times) >= MIN_ITEMS else None)
    every = sorted(seconds for _, seconds in rows)
    enough = len(every) >= MIN_ITEMS
    return VerificationTimes(
        weeks=weeks,
        median_hours=tuple(medians),
        p90_hours=tuple(p90s),
        median=_hours(every, MEDIAN) if enough else None,
        p90=_hours(every, P90) if enough else None,
        promise_hours=promise_hours,
        n=len(every),
    )


def handling(cases: Sequence[store.Case], departments: Sequence[str]) -> Handling:
    by_department: dict[str, list[store.Case]] = {key: [] for key in departments}
    for case in cases:
        by_department.setdefault(case.department, []).append(case)
    lines = []
    for key, found in by_department.items():
        fixed = [c for c in found if c.fixed_at is not None]
        if len(found) < MIN_ITEMS:
            lines.append(DepartmentHandling(key, len(found), len(fixed), None, None, None, None))
            continue
        times = sorted(c.fixed_at - c.dispatched_at for c in fixed if c.fixed_at is not None)
        levels = sorted(c.due_at - c.dispatched_at for c in found)
        within = sum(1 for c in fixed if c.fixed_at is not None and c.fixed_at <= c.due_at)
        lines.append(
            DepartmentHandling(
                department=key,
                n=len(found),
                fixed=len(fixed),
                median_hours=_hours(times, MEDIAN),
                p90_hours=_hours(times, P90),
                within_share=within / len(fixed) if fixed else None,
                service_hours=_hours(levels, MEDIAN),
            )
        )
    return Handling(tuple(lines), len(cases))


def reward_months(period: Period) -> tuple[tuple[int, int], ...]:
    """The months the period touches, extended back to at least REWARD_MONTHS."""
    last = (period.end - timedelta(seconds=1)).date()
    end_index = last.year * 12 + last.month - 1
    start_index = min(
        period.start.year * 12 + period.start.month - 1, end_index - REWARD_MONTHS + 1
    )
    return tuple((index // 12, index % 12 + 1) for index in range(start_index, end_index + 1))


def monthly_rewards(
    months: Sequence[tuple[int, int]],
    entries: Sequence[tuple[int, int, str]],
    budget_fen: int | None,
    zone: tzinfo,
) -> MonthlyRewards:
    sums = dict.fromkeys(months, 0)
    rewards = 0
    for created_at, amount, kind in entries:
        day = _local_day(created_at // QUARTER_HOUR, zone)
        key = (day.year, day.month)
        if key in sums:
            sums[key] += amount
            rewards += kind == "reward"
    return MonthlyRewards(tuple(months), tuple(sums[m] for m in months), budget_fen, rewards)


async def charts(db: Database, programme: Programme, zone: tzinfo, period: Period) -> Charts:
    """Every chart's numbers for `period`, read from one snapshot."""
    months = reward_months(period)
    first_month = month_period(*months[0], zone)
    start, end = period.start_ts, period.end_ts
    async with db.snapshot() as conn:
        submitted = await store.submissions(conn, start, end)
        decided = await store.decision_times(conn, start, end)
        verified = await store.verified(conn, start, end)
        opened = await store.cases(conn, start, end) if programme.departments else []
        fixed = await store.fixed_cases(conn, start, end)
        booked = await store.reward_entries(conn, min(start, first_month.start_ts), end)
        approved, in_batch, paid = await store.reward_states(conn, start, end)
    departments = [d.key for d in programme.departments]

    def compute() -> Charts:
        return Charts(
            period=period,
            headline=Headline(len(submitted), verified, approved, fixed, in_batch, paid),
            weekly=weekly_reports(period, submitted, programme, zone),
            verification=verification_times(period, decided, programme.review.deadline_hours, zone),
            handling=handling(opened, departments) if departments else None,
            rewards=monthly_rewards(months, booked, programme.payout.budget_month_fen, zone),
        )

    # Bucketing a year of reports is a loop over every row: off the event loop.
    return await asyncio.to_thread(compute)
