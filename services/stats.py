"""How the programme does, for /stats: reports by status and category, time to decision, breaches.

Three periods, each in the programme's time zone: today (since 00:00), this week (since
Monday 00:00) and all time. What each period counts:

- reports by status and by category: reports *submitted* in the period (drafts never are);
- time to decision (submission to approval, rejection or duplicate; a reversed report keeps
  its original decision): reports *decided* in the period, median and 90th percentile;
- breaches of the review promise: reports whose breach was *recorded* in the period.

Percentiles are exact: linear interpolation between the closest ranks (numpy's default,
Excel's PERCENTILE.INC), computed with fractions, so the median of an even number of times
is the mean of the middle two.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum
from fractions import Fraction

from services.clock import Now, utc_now
from services.reporting import LISTED
from storage import stats as store
from storage.db import Database
from storage.ranks import Ranked

# The order statuses are listed in; any other status follows, alphabetically.
STATUS_ORDER = LISTED
MEDIAN = Fraction(1, 2)
P90 = Fraction(9, 10)


class Period(StrEnum):
    """`stats.period.<value>` in the locales."""

    TODAY = "today"
    WEEK = "week"
    ALL = "all"


@dataclass(frozen=True)
class DecisionTimes:
    """Time from submission to decision of the reports decided in a period."""

    count: int
    median: timedelta | None  # None when nothing was decided
    p90: timedelta | None


@dataclass(frozen=True)
class PeriodStats:
    period: Period
    since: datetime | None  # local midnight the period starts at; None for all time
    submitted: int
    by_status: tuple[tuple[str, int], ...]  # statuses with reports, in STATUS_ORDER
    by_category: tuple[tuple[str | None, int], ...]  # in the programme's order, then the rest
    by_status_and_category: tuple[tuple[str, str | None, int], ...]
    decisions: DecisionTimes
    breaches: int


@dataclass(frozen=True)
class Snapshot:
    at: datetime  # when it was taken, in the programme's time zone
    today: PeriodStats
    week: PeriodStats
    all_time: PeriodStats

    @property
    def periods(self) -> tuple[PeriodStats, PeriodStats, PeriodStats]:
        return self.today, self.week, self.all_time


def percentile(ordered: Sequence[int], fraction: Fraction) -> Fraction:
    """The `fraction` quantile of `ordered` (sorted, not empty), interpolated between ranks."""
    return _interpolated(ordered.__getitem__, len(ordered), fraction)


def ranked_percentile(ranked: Ranked, fraction: Fraction) -> Fraction:
    """The same quantile from the values the database gave at the ranks around it."""
    return _interpolated(ranked.at.__getitem__, ranked.n, fraction)


def _interpolated(value_at: Callable[[int], int], count: int, fraction: Fraction) -> Fraction:
    if not count:
        raise ValueError("no values")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction {fraction} is outside [0, 1]")
    position = fraction * (count - 1)
    lower = math.floor(position)
    upper = min(lower + 1, count - 1)
    return value_at(lower) + (value_at(upper) - value_at(lower)) * (position - lower)


def _duration(seconds: Fraction) -> timedelta:
    # Interpolated integer seconds are exact in microseconds for the median and p90.
    return timedelta(microseconds=round(seconds * 1_000_000))


def decision_times(ordered_seconds: Sequence[int]) -> DecisionTimes:
    if not ordered_seconds:
        return DecisionTimes(0, None, None)
    return DecisionTimes(
        count=len(ordered_seconds),
        median=_duration(percentile(ordered_seconds, MEDIAN)),
        p90=_duration(percentile(ordered_seconds, P90)),
    )


def ranked_times(ranked: Ranked | None) -> DecisionTimes:
    """`decision_times` from the database's ranks (None: nothing was decided)."""
    if ranked is None:
        return DecisionTimes(0, None, None)
    return DecisionTimes(
        count=ranked.n,
        median=_duration(ranked_percentile(ranked, MEDIAN)),
        p90=_duration(ranked_percentile(ranked, P90)),
    )


def _status_key(status: str) -> tuple[int, str]:
    rank = STATUS_ORDER.index(status) if status in STATUS_ORDER else len(STATUS_ORDER)
    return rank, status


class Stats:
    """Figures for moderators and admins; read-only."""

    def __init__(
        self,
        db: Database,
        zone: tzinfo,
        categories: Iterable[str] = (),
        clock: Now = utc_now,
    ) -> None:
        self.db = db
        self.zone = zone
        self.categories = tuple(categories)  # keys, in the order categories are listed
        self.clock = clock

    def _category_key(self, category: str | None) -> tuple[int, str]:
        if category in self.categories:
            return self.categories.index(category), ""
        return len(self.categories), category or ""

    def period_starts(self) -> tuple[datetime, datetime, datetime]:
        """(now, today 00:00, this Monday 00:00), in the programme's time zone."""
        now = self.clock().astimezone(self.zone)
        today = datetime.combine(now.date(), time(), tzinfo=self.zone)
        monday = now.date() - timedelta(days=now.weekday())
        week = datetime.combine(monday, time(), tzinfo=self.zone)
        return now, today, week

    async def snapshot(self) -> Snapshot:
        now, today, week = self.period_starts()
        today_ts, week_ts = int(today.timestamp()), int(week.timestamp())
        async with self.db.snapshot() as conn:  # one consistent read, no write lock
            counts = await store.counts(conn, today_ts, week_ts)
            times = await store.decision_ranks(conn, today_ts, week_ts, (MEDIAN, P90))
            breaches = await store.breaches(conn, today_ts, week_ts)
        periods = []
        for index, (period, since) in enumerate(
            ((Period.TODAY, today), (Period.WEEK, week), (Period.ALL, None))
        ):
            in_period = [(c.status, c.category, (c.today, c.week, c.total)[index]) for c in counts]
            decided = ranked_times(times.get(index))
            periods.append(self._period(period, since, in_period, decided, breaches[index]))
        return Snapshot(now, *periods)

    def _period(
        self,
        period: Period,
        since: datetime | None,
        counts: list[tuple[str, str | None, int]],
        decisions: DecisionTimes,
        breaches: int,
    ) -> PeriodStats:
        counts = [(status, category, n) for status, category, n in counts if n]
        by_status: dict[str, int] = {}
        by_category: dict[str | None, int] = {}
        for status, category, n in counts:
            by_status[status] = by_status.get(status, 0) + n
            by_category[category] = by_category.get(category, 0) + n
        return PeriodStats(
            period=period,
            since=since,
            submitted=sum(by_status.values()),
            by_status=tuple(sorted(by_status.items(), key=lambda item: _status_key(item[0]))),
            by_category=tuple(
                sorted(by_category.items(), key=lambda item: self._category_key(item[0]))
            ),
            by_status_and_category=tuple(
                sorted(counts, key=lambda c: (_status_key(c[0]), self._category_key(c[1])))
            ),
            decisions=decisions,
            breaches=breaches,
        )


# --- cases (即时办), per department ------------------------------------------------------

CASE_FIGURES_FROM = 5  # fewer cases than this: counted, but no figures
FIXED_STATES = ("fixed", "confirmed")


@dataclass(frozen=True)
class DepartmentStats:
    """How one department handles its cases (all time); figures None below CASE_FIGURES_FROM."""

    department: str
    cases: int
    to_fixed: DecisionTimes | None  # dispatch (first approval) to the latest "fixed"
    within_sla: Fraction | None  # share of fixed cases fixed by their due time
    reopened: Fraction | None  # share of cases the rider reopened at least once
    open_overdue: int


def department_stats(
    rows: Iterable[tuple[str, str, int, int, int | None, int]],
    departments: Iterable[str],
    now: int,
) -> list[DepartmentStats]:
    """Rows (department, state, opened_at, due_at, fixed_at, reopened) -> one line each."""
    by_department: dict[str, list[tuple[str, str, int, int, int | None, int]]] = {
        key: [] for key in departments
    }
    for row in rows:
        by_department.setdefault(row[0], []).append(row)
    found = []
    for key, cases in by_department.items():
        overdue = sum(
            1 for _, state, _, due, _, _ in cases if state in _RUNNING_STATES and due < now
        )
        if len(cases) < CASE_FIGURES_FROM:
            found.append(DepartmentStats(key, len(cases), None, None, None, overdue))
            continue
        fixed = [(opened, due, at) for _, _, opened, due, at, _ in cases if at is not None]
        times = sorted(at - opened for opened, _, at in fixed)
        found.append(
            DepartmentStats(
                department=key,
                cases=len(cases),
                to_fixed=decision_times(times),
                within_sla=(
                    Fraction(sum(1 for _, due, at in fixed if at <= due), len(fixed))
                    if fixed
                    else None
                ),
                reopened=Fraction(sum(1 for c in cases if c[5] > 0), len(cases)),
                open_overdue=overdue,
            )
        )
    return found


_RUNNING_STATES = ("dispatched", "accepted", "reopened")


async def case_stats(
    db: Database, departments: Iterable[str], clock: Now = utc_now
) -> list[DepartmentStats]:
    """Per-department case figures, for /stats, read on a snapshot: never under the write
    lock, which the rest of the bot is waiting for."""
    async with db.snapshot() as conn:
        rows = await store.case_rows(conn)
    return department_stats(
        [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows],
        departments,
        int(clock().timestamp()),
    )
