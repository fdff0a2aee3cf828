"""The numbers behind /stats's charts, from storage, without Telegram or matplotlib."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services import figures as data
from settings import Department, PayoutRules, Programme
from storage import figures as store
from storage.db import Database
from tests.reports_helpers import SHANGHAI, Seed, local

DEPARTMENTS = (
    Department("roads", "公路段", "Roads office", -1, ("road_hazard", "public_facility")),
    Department("power", "供电所", "Power company", -2, ("fire_risk", "traffic_accident")),
)
NOW = local(2026, 10, 21, 15)  # a Wednesday


@pytest.mark.parametrize(
    ("argument", "kind", "start", "end"),
    [
        (None, "weeks", local(2026, 8, 3, 0), local(2026, 10, 26, 0)),
        ("month", "month", local(2026, 10, 1, 0), local(2026, 11, 1, 0)),
        ("year", "year", local(2026, 1, 1, 0), local(2027, 1, 1, 0)),
        ("2026-02", "month", local(2026, 2, 1, 0), local(2026, 3, 1, 0)),
        ("2025-12", "month", local(2025, 12, 1, 0), local(2026, 1, 1, 0)),
        ("2025", "year", local(2025, 1, 1, 0), local(2026, 1, 1, 0)),
    ],
)
def test_periods(argument: str | None, kind: str, start: object, end: object) -> None:
    period = data.parse_period(argument, NOW, SHANGHAI)
    assert period is not None
    assert (period.kind, period.start, period.end) == (kind, start, end)


@pytest.mark.parametrize("argument", ["2026-13", "soon", "26-10", "1999"])
def test_nonsense_periods(argument: str) -> None:
    assert data.parse_period(argument, NOW, SHANGHAI) is None


def test_last_week_and_the_week_before() -> None:
    week = data.last_week(NOW, SHANGHAI)
    assert (week.start, week.end) == (local(2026, 10, 12, 0), local(2026, 10, 19, 0))
    before = week.previous()
    assert (before.start, before.end) == (local(2026, 10, 5, 0), local(2026, 10, 12, 0))


async def test_reports_per_week_by_category(db: Database) -> None:
    seed = Seed(db)
    # October 2026 touches the weeks of Sep 28, Oct 5, 12, 19, 26.
    for day in (1, 2, 6):
        await seed.report(local(2026, 10, day), "road_hazard")
    await seed.report(local(2026, 10, 7), "fire_risk")
    await seed.report(local(2026, 10, 31, 23, 59), "other")
    await seed.report(local(2026, 11, 1, 0, 0), "other")  # the next month: not counted
    await seed.report(local(2026, 9, 30, 23, 59), "other")  # the month before: not counted
    period = data.month_period(2026, 10, SHANGHAI)
    charts = await data.charts(db, Programme(), SHANGHAI, period)
    weekly = charts.weekly
    assert weekly.weeks == tuple(
        date(2026, m, d) for m, d in ((9, 28), (10, 5), (10, 12), (10, 19), (10, 26))
    )
    assert weekly.categories == ("road_hazard", "fire_risk", "other")
    assert weekly.counts == ((2, 1, 0, 0, 0), (0, 1, 0, 0, 0), (0, 0, 0, 0, 1))
    assert weekly.n == 5
    assert weekly.enough
    assert charts.headline.submitted == 5


async def test_fewer_than_five_is_a_note(db: Database) -> None:
    seed = Seed(db)
    for day in range(1, 5):
        await seed.report(
            local(2026, 10, day),
            status="approved",
            decided=local(2026, 10, day, 14),
            reward_fen=5000,
        )
    charts = await data.charts(
        db, Programme(departments=DEPARTMENTS), SHANGHAI, data.month_period(2026, 10, SHANGHAI)
    )
    assert charts.weekly.n == 4
    assert not charts.weekly.enough
    assert charts.verification.n == 4
    assert not charts.verification.enough
    assert charts.verification.median is None
    assert charts.rewards.n == 4
    assert not charts.rewards.enough
    assert charts.handling is not None
    assert not charts.handling.enough


async def test_verification_times_against_the_promise(db: Database) -> None:
    seed = Seed(db)
    hours = [1, 2, 3, 4, 30]  # one report took longer than the 24-hour promise
    for index, spent in enumerate(hours):
        submitted = local(2026, 10, 5 + index, 8)
        await seed.report(submitted, status="rejected", decided=submitted + timedelta(hours=spent))
    # Decided the week after, alone in its week: counted overall, no weekly point.
    await seed.report(local(2026, 10, 14, 8), status="rejected", decided=local(2026, 10, 14, 10))
    times = (
        await data.charts(db, Programme(), SHANGHAI, data.month_period(2026, 10, SHANGHAI))
    ).verification
    assert times.n == 6
    assert times.promise_hours == 24
    assert times.median == pytest.approx(2.5)  # of 1, 2, 2, 3, 4, 30
    assert times.p90 == pytest.approx(17.0)  # 4 + (30 - 4) * 0.5
    week = times.weeks.index(date(2026, 10, 5))
    assert times.median_hours[week] == pytest.approx(3.0)
    assert times.p90_hours[week] == pytest.approx(4 + 26 * 0.6)
    assert times.median_hours[times.weeks.index(date(2026, 10, 12))] is None


async def test_handling_time_by_department(db: Database) -> None:
    seed = Seed(db)
    for index, spent in enumerate([2, 4, 6, 8, 30]):
        report = await seed.report(
            local(2026, 10, 2 + index),
            status="approved",
            decided=local(2026, 10, 2 + index, 13),
            reward_fen=10000,
        )
        opened = local(2026, 10, 2 + index, 13)
        await seed.case(report, "roads", opened, 24, opened + timedelta(hours=spent))
    report = await seed.report(
        local(2026, 10, 9), status="approved", decided=local(2026, 10, 9, 13), reward_fen=10000
    )
    await seed.case(report, "roads", local(2026, 10, 9, 13), 24)  # not fixed yet
    report = await seed.report(
        local(2026, 10, 9),
        "fire_risk",
        status="approved",
        decided=local(2026, 10, 9, 13),
        reward_fen=15000,
    )
    await seed.case(report, "power", local(2026, 10, 9, 13), 4, local(2026, 10, 9, 15))
    charts = await data.charts(
        db, Programme(departments=DEPARTMENTS), SHANGHAI, data.month_period(2026, 10, SHANGHAI)
    )
    assert charts.handling is not None
    roads, power = charts.handling.departments
    assert (roads.department, roads.n, roads.fixed) == ("roads", 6, 5)
    assert roads.median_hours == pytest.approx(6.0)
    assert roads.p90_hours == pytest.approx(8 + 22 * 0.6)
    assert roads.within_share == pytest.approx(0.8)
    assert roads.service_hours == pytest.approx(24.0)
    assert (power.n, power.enough, power.median_hours) == (1, False, None)
    assert charts.handling.enough
    assert charts.headline.fixed == 6
    assert charts.headline.verified == 7


async def test_rewards_per_month_against_the_budget(db: Database) -> None:
    seed = Seed(db)
    for day in range(1, 6):
        await seed.report(
            local(2026, 10, day),
            status="approved",
            decided=local(2026, 10, day, 14),
            reward_fen=10000,
        )
    await seed.report(
        local(2026, 8, 3),
        status="reversed",
        decided=local(2026, 8, 3, 14),
        reward_fen=20000,
        reversed_at=local(2026, 10, 20),
    )
    await seed.report(
        local(2026, 9, 3), status="approved", decided=local(2026, 9, 3, 14), reward_fen=5000
    )
    programme = Programme(payout=PayoutRules(budget_month_fen=300_000))
    charts = await data.charts(db, programme, SHANGHAI, data.month_period(2026, 10, SHANGHAI))
    rewards = charts.rewards
    assert rewards.months == ((2026, 5), (2026, 6), (2026, 7), (2026, 8), (2026, 9), (2026, 10))
    assert rewards.fen == (0, 0, 0, 20000, 5000, 50000 - 20000)
    assert rewards.budget_fen == 300_000
    assert rewards.n == 7
    assert rewards.enough
    # The headline: October's rewards less October's reversal; verified: still approved.
    assert charts.headline.rewards_fen == 30000
    assert charts.headline.verified == 5


async def test_a_minute_either_side_of_local_midnight_is_two_local_days(db: Database) -> None:
    """Sunday 31 May 23:59 and Monday 1 June 00:01 in Shanghai are 15:59 and 16:01 UTC on
    the same UTC day: counted per local day they fall on two days, two weeks, two months."""
    seed = Seed(db)
    before, after = local(2026, 5, 31, 23, 59), local(2026, 6, 1, 0, 1)
    for moment, fen in ((before, 5000), (after, 10000)):
        await seed.report(moment, status="approved", decided=moment, reward_fen=fen)
    period = data.Period("weeks", local(2026, 5, 25, 0), local(2026, 6, 8, 0), 2026)
    days = data.local_days(SHANGHAI, period.start_ts, period.end_ts)
    async with db.snapshot() as conn:
        per_day = await store.daily_rewards(conn, period.start_ts, period.end_ts, days)
    assert sorted((data.day_of(day), fen, n) for day, fen, n in per_day) == [
        (date(2026, 5, 31), 5000, 1),
        (date(2026, 6, 1), 10000, 1),
    ]
    charts = await data.charts(db, Programme(), SHANGHAI, period)
    assert charts.weekly.weeks == (date(2026, 5, 25), date(2026, 6, 1))
    assert charts.weekly.counts == ((1, 1),)
    rewards = dict(zip(charts.rewards.months, charts.rewards.fen, strict=True))
    assert (rewards[(2026, 5)], rewards[(2026, 6)]) == (5000, 10000)


async def test_local_days_follow_a_change_of_the_clocks(db: Database) -> None:
    """New York moves to summer time on Sunday 8 March 2026: a minute either side of the
    following midnight is in two weeks, counted with the summer offset, not the winter one."""
    new_york = ZoneInfo("America/New_York")
    seed = Seed(db)
    for moment in (
        datetime(2026, 3, 8, 23, 59, tzinfo=new_york),
        datetime(2026, 3, 9, 0, 1, tzinfo=new_york),
    ):
        await seed.report(moment)
    period = data.month_period(2026, 3, new_york)
    assert data.local_days(new_york, period.start_ts, period.end_ts).changes == (
        (int(datetime(2026, 3, 8, 7, tzinfo=UTC).timestamp()), -4 * 3600),
    )
    weekly = (await data.charts(db, Programme(), new_york, period)).weekly
    counts = dict(zip(weekly.weeks, weekly.counts[0], strict=True))
    assert (counts[date(2026, 3, 2)], counts[date(2026, 3, 9)]) == (1, 1)
