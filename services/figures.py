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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from fractions import Fraction

from services.stats import MEDIAN, P90, ranked_percentile
from settings import Programme
from storage import figures as store
from storage.db import Connection, Database
from storage.ranks import Group, LocalDays, Ranked

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


EPOCH = date(1970, 1, 1)  # local day number 0


def day_of(number: int) -> date:
    """The local date of a local day number (storage/ranks.py)."""
    return EPOCH + timedelta(days=number)


def local_days(zone: tzinfo, start: int, end: int) -> LocalDays:
    """`zone` over `[start, end)` as the SQL of the local day needs it: its name, its UTC
    offset at `start`, and every change of the offset (daylight saving) before `end`."""
    first = offset = _offset(zone, start)
    changes = []
    at = start
    while at < end:
        following = min(at + 86_400, end)  # no zone changes its offset twice in a day
        if _offset(zone, following) == offset:
            at = following
            continue
        at = _change_after(zone, at, following)
        offset = _offset(zone, at)
        changes.append((at, offset))
    return LocalDays(getattr(zone, "key", None) or str(zone), first, tuple(changes))


def _offset(zone: tzinfo, moment: int) -> int:
    shift = datetime.fromtimestamp(moment, zone).utcoffset()
    return int(shift.total_seconds()) if shift is not None else 0


def _change_after(zone: tzinfo, before: int, after: int) -> int:
    """The first second in `(before, after]` at which the offset differs from `before`'s."""
    offset = _offset(zone, before)
    while after - before > 1:
        middle = (before + after) // 2
        before, after = (middle, after) if _offset(zone, middle) == offset else (before, middle)
    return after


def weekly_reports(
    period: Period, rows: Sequence[tuple[int, str | None, int]], programme: Programme
) -> WeeklyReports:
    """Rows (Monday's day number, category, reports) as a count per category and week."""
    weeks = week_starts(period)
    column = {week: index for index, week in enumerate(weeks)}
    known = [c.key for c in programme.categories]
    found: dict[str | None, list[int]] = {}
    for monday, category, count in rows:
        found.setdefault(category, [0] * len(weeks))[column[day_of(monday)]] += count
    order = [c for c in known if c in found] + sorted(
        (c for c in found if c not in known), key=lambda c: c or ""
    )
    return WeeklyReports(
        weeks=weeks,
        categories=tuple(order),
        counts=tuple(tuple(found[c]) for c in order),
        n=sum(count for _, _, count in rows),
    )


def _hours(ranked: Ranked | None, fraction: Fraction) -> float | None:
    if ranked is None:
        return None
    return float(ranked_percentile(ranked, fraction)) / 3600


def _enough(ranked: Ranked | None) -> Ranked | None:
    return ranked if ranked is not None and ranked.n >= MIN_ITEMS else None


def verification_times(
    period: Period,
    per_week: Mapping[Group, Ranked],
    whole: Ranked | None,
    promise_hours: int,
) -> VerificationTimes:
    """Ranks per week (by Monday's day number) and over the period -> the chart's figures."""
    weeks = week_starts(period)
    by_week = {day_of(monday): ranked for monday, ranked in per_week.items()}
    medians, p90s = [], []
    for week in weeks:
        ranked = _enough(by_week.get(week))
        medians.append(_hours(ranked, MEDIAN))
        p90s.append(_hours(ranked, P90))
    return VerificationTimes(
        weeks=weeks,
        median_hours=tuple(medians),
        p90_hours=tuple(p90s),
        median=_hours(_enough(whole), MEDIAN),
        p90=_hours(_enough(whole), P90),
        promise_hours=promise_hours,
        n=whole.n if whole is not None else 0,
    )


def handling(
    counts: Sequence[store.CaseCounts],
    to_fix: Mapping[Group, Ranked],
    levels: Mapping[Group, Ranked],
    departments: Sequence[str],
) -> Handling:
    """Per department (configured ones first, in order): counts and ranks -> figures."""
    by_department = {c.department: c for c in counts}
    keys = [*departments, *(c.department for c in counts if c.department not in departments)]
    lines = []
    for key in keys:
        found = by_department.get(key, store.CaseCounts(key, 0, 0, 0))
        if found.opened < MIN_ITEMS:
            lines.append(DepartmentHandling(key, found.opened, found.fixed, *(None,) * 4))
            continue
        lines.append(
            DepartmentHandling(
                department=key,
                n=found.opened,
                fixed=found.fixed,
                median_hours=_hours(to_fix.get(key), MEDIAN),
                p90_hours=_hours(to_fix.get(key), P90),
                within_share=found.fixed_in_time / found.fixed if found.fixed else None,
                service_hours=_hours(levels.get(key), MEDIAN),
            )
        )
    return Handling(tuple(lines), sum(c.opened for c in counts))


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
    days: Sequence[tuple[int, int, int]],
    budget_fen: int | None,
) -> MonthlyRewards:
    """Rows (local day number, fen, rewards) summed into `months`."""
    sums = dict.fromkeys(months, 0)
    rewards = 0
    for number, amount, count in days:
        day = day_of(number)
        key = (day.year, day.month)
        if key in sums:
            sums[key] += amount
            rewards += count
    return MonthlyRewards(tuple(months), tuple(sums[m] for m in months), budget_fen, rewards)


async def charts(db: Database, programme: Programme, zone: tzinfo, period: Period) -> Charts:
    """Every chart's numbers for `period`, counted by the database on one snapshot: a few
    hundred rows, whatever the period holds."""
    months = reward_months(period)
    first_month = month_period(*months[0], zone)
    start, end = period.start_ts, period.end_ts
    booked_from = min(start, first_month.start_ts)
    days = local_days(zone, booked_from, end)
    departments = [d.key for d in programme.departments]
    async with db.snapshot() as conn:
        submitted = await store.weekly_submissions(conn, start, end, days)
        per_week = await store.decision_ranks(conn, start, end, (MEDIAN, P90), days)
        decided = await store.decision_ranks(conn, start, end, (MEDIAN, P90))
        handled = await _handling(conn, start, end, departments) if departments else None
        verified = await store.verified(conn, start, end)
        fixed = await store.fixed_cases(conn, start, end)
        booked = await store.daily_rewards(conn, booked_from, end, days)
        approved, in_batch, paid = await store.reward_states(conn, start, end)
    weekly = weekly_reports(period, submitted, programme)
    return Charts(
        period=period,
        headline=Headline(weekly.n, verified, approved, fixed, in_batch, paid),
        weekly=weekly,
        verification=verification_times(
            period, per_week, decided.get(0), programme.review.deadline_hours
        ),
        handling=handled,
        rewards=monthly_rewards(months, booked, programme.payout.budget_month_fen),
    )


async def _handling(conn: Connection, start: int, end: int, departments: Sequence[str]) -> Handling:
    counts = await store.case_counts(conn, start, end)
    to_fix = await store.case_hours_ranks(conn, start, end, (MEDIAN, P90), levels=False)
    levels = await store.case_hours_ranks(conn, start, end, (MEDIAN,), levels=True)
    return handling(counts, to_fix, levels, departments)
