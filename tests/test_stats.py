"""/stats: counts by period in the programme's time zone, exact percentiles, and the command."""

from __future__ import annotations

import itertools
import random
import statistics
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from handlers.stats import render
from locales import Phrases, Texts
from services.stats import MEDIAN, P90, DecisionTimes, Period, Stats, percentile
from settings import DEFAULT_CATEGORIES, Settings
from storage.db import Database
from tests import images
from tests.conftest import ADMIN, MODERATOR, MODERATOR_CHAT, BotStarter
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import Chat

SHANGHAI = ZoneInfo("Asia/Shanghai")
CATEGORIES = [category.key for category in DEFAULT_CATEGORIES]


def local(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A moment in November 2026, Beijing time (Monday is the 23rd)."""
    return datetime(2026, 11, day, hour, minute, second, tzinfo=SHANGHAI)


NOW = local(25, 15)  # a Wednesday afternoon; 07:00 UTC


class Reports:
    """Plain-SQL setup of one rider's reports at chosen moments."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._numbers = itertools.count(1)
        self.rider_id: int | None = None

    async def add(
        self,
        status: str,
        category: str | None,
        submitted: datetime | None,
        decided: datetime | None = None,
        breached: datetime | None = None,
    ) -> None:
        def ts(moment: datetime | None) -> int | None:
            return None if moment is None else int(moment.timestamp())

        number = next(self._numbers)
        async with self.db.transaction() as conn:
            if self.rider_id is None:
                cursor = await conn.execute(
                    "INSERT INTO users (telegram_id, created_at) VALUES (42, 0)"
                )
                self.rider_id = cursor.lastrowid
            await conn.execute(
                "INSERT INTO reports (reference, rider_id, status, category, created_at,"
                " updated_at, submitted_at, deadline_at, decided_at, breached_at)"
                " VALUES (?, ?, ?, ?, 0, 0, ?, ?, ?, ?)",
                (
                    None if submitted is None else f"R-TEST-{number:04d}",
                    self.rider_id,
                    status,
                    category,
                    ts(submitted),
                    None if submitted is None else ts(submitted + timedelta(hours=24)),
                    ts(decided),
                    ts(breached),
                ),
            )


def stats_at(db: Database, now: datetime, zone: ZoneInfo = SHANGHAI) -> Stats:
    return Stats(db, zone, CATEGORIES, clock=lambda: now.astimezone(UTC))


async def fill(db: Database) -> None:
    """Reports around the period boundaries of NOW (Wednesday 25th, 15:00 Beijing time)."""
    add = Reports(db).add
    # Today in Beijing, though still the 24th in UTC.
    await add("pending", "road_hazard", local(25, 0, 30))
    await add("needs_info", "public_order", local(25, 10))
    # Yesterday; decided today after 2 hours.
    await add("approved", "fire_risk", local(24, 23, 30), decided=local(25, 1, 30))
    # The first second of the week; decided after 1 hour.
    await add("rejected", "road_hazard", local(23, 0), decided=local(23, 1))
    # Missed its deadline, recorded this morning; a category no longer configured.
    await add("pending", "flooding", local(24, 8), breached=local(25, 8, 15))
    # The last second of last week, decided this week after 30 minutes and 1 second.
    await add("duplicate", "other", local(22, 23, 59, 59), decided=local(23, 0, 30))
    # Long ago: decided after 25 hours, its breach recorded at 24, reversed since.
    await add("reversed", "road_hazard", local(10, 9), decided=local(11, 10), breached=local(11, 9))
    # A draft is never counted.
    await add("draft", "road_hazard", None)


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


async def test_periods_in_the_programme_time_zone(db: Database) -> None:
    await fill(db)
    snapshot = await stats_at(db, NOW).snapshot()
    today, week, all_time = snapshot.periods
    assert snapshot.at == NOW
    assert snapshot.at.utcoffset() == timedelta(hours=8)
    assert [p.period for p in snapshot.periods] == [Period.TODAY, Period.WEEK, Period.ALL]
    assert today.since == local(25, 0)
    assert week.since == local(23, 0)
    assert all_time.since is None

    assert today.submitted == 2
    assert today.by_status == (("pending", 1), ("needs_info", 1))
    assert today.by_category == (("road_hazard", 1), ("public_order", 1))
    assert today.decisions == DecisionTimes(1, hours(2), hours(2))
    assert today.breaches == 1

    assert week.submitted == 5
    assert week.by_status == (("pending", 2), ("needs_info", 1), ("approved", 1), ("rejected", 1))
    assert week.by_category == (
        ("road_hazard", 2),
        ("fire_risk", 1),
        ("public_order", 1),
        ("flooding", 1),
    )
    # 30:01, 1:00:00, 2:00:00 -> median 1 h; p90 at rank 1.8: 1 h + 0.8 h.
    assert week.decisions == DecisionTimes(3, hours(1), timedelta(minutes=108))
    assert week.breaches == 1

    assert all_time.submitted == 7
    assert all_time.by_status == (
        ("pending", 2),
        ("needs_info", 1),
        ("approved", 1),
        ("rejected", 1),
        ("duplicate", 1),
        ("reversed", 1),
    )
    assert all_time.by_category == (
        ("road_hazard", 3),
        ("fire_risk", 1),
        ("public_order", 1),
        ("other", 1),
        ("flooding", 1),
    )
    assert ("pending", "flooding", 1) in all_time.by_status_and_category
    assert sum(n for _, _, n in all_time.by_status_and_category) == 7
    # 30:01, 1 h, 2 h, 25 h -> median 1.5 h; p90 at rank 2.7: 2 h + 0.7 * 23 h = 18.1 h.
    assert all_time.decisions == DecisionTimes(4, hours(1.5), timedelta(seconds=65160))
    assert all_time.breaches == 2


async def test_today_follows_the_configured_zone_not_utc(db: Database) -> None:
    await fill(db)
    in_utc = await stats_at(db, NOW, ZoneInfo("UTC")).snapshot()
    # 00:00 UTC on the 25th is 08:00 in Beijing: the 00:30 report was "yesterday" in UTC.
    assert in_utc.today.since == datetime(2026, 11, 25, tzinfo=ZoneInfo("UTC"))
    assert in_utc.today.submitted == 1
    assert in_utc.today.by_status == (("needs_info", 1),)


async def test_on_monday_the_week_starts_today(db: Database) -> None:
    await fill(db)
    snapshot = await stats_at(db, local(23, 8)).snapshot()
    assert snapshot.today.since == snapshot.week.since == local(23, 0)
    # Everything submitted later than Monday 08:00 is counted too: the clock only sets
    # where periods start.
    assert snapshot.today.submitted == snapshot.week.submitted == 5


async def test_an_empty_database(db: Database) -> None:
    snapshot = await stats_at(db, NOW).snapshot()
    for period in snapshot.periods:
        assert period.submitted == 0
        assert period.by_status == ()
        assert period.by_category == ()
        assert period.by_status_and_category == ()
        assert period.decisions == DecisionTimes(0, None, None)
        assert period.breaches == 0


@pytest.mark.parametrize(
    ("values", "median", "p90"),
    [
        ([7], 7, 7),
        ([1, 2], Fraction(3, 2), Fraction(19, 10)),
        ([1, 2, 3, 4], Fraction(5, 2), Fraction(37, 10)),
        ([10, 20, 30, 40, 50], 30, 46),
        (list(range(1, 12)), 6, 10),
    ],
)
def test_percentiles_are_exact(values: list[int], median: Fraction, p90: Fraction) -> None:
    assert percentile(values, MEDIAN) == median
    assert percentile(values, P90) == p90
    assert percentile(values, Fraction(0)) == values[0]
    assert percentile(values, Fraction(1)) == values[-1]


def test_percentiles_agree_with_the_standard_library() -> None:
    generator = random.Random(4)
    for size in range(2, 60):
        values = sorted(generator.randrange(0, 200_000) for _ in range(size))
        assert percentile(values, MEDIAN) == Fraction(statistics.median(values))
        expected = statistics.quantiles(values, n=10, method="inclusive")[8]
        assert abs(float(percentile(values, P90)) - expected) < 1e-6


def test_percentile_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], MEDIAN)
    with pytest.raises(ValueError, match="outside"):
        percentile([1], Fraction(3, 2))


async def test_the_message_in_both_languages(db: Database) -> None:
    await fill(db)
    snapshot = await stats_at(db, NOW).snapshot()
    settings = Settings(bot_token="1:x")
    assert render(Phrases(Texts(), "zh", ZoneInfo("Asia/Shanghai")), settings, snapshot) == (
        "📊 线索统计 · 2026-11-25 15:00\n"
        "\n"
        "【今天】提交2条\n"
        "状态：待审核1条 · 需补充信息1条\n"
        "类别：道路隐患1条 · 治安问题1条\n"
        "审核用时（已处理1条）：中位数2小时0分钟，90% 分位2小时0分钟\n"
        "超出24小时响应时限：1条\n"
        "\n"
        "【本周（自2026-11-23周一起）】提交5条\n"
        "状态：待审核2条 · 需补充信息1条 · 核实有效1条 · 未通过1条\n"
        "类别：道路隐患2条 · 火灾隐患1条 · 治安问题1条 · flooding1条\n"
        "审核用时（已处理3条）：中位数1小时0分钟，90% 分位1小时48分钟\n"
        "超出24小时响应时限：1条\n"
        "\n"
        "【全部】提交7条\n"
        "状态：待审核2条 · 需补充信息1条 · 核实有效1条 · 未通过1条 · 重复线索1条 · 已撤销1条\n"
        "类别：道路隐患3条 · 火灾隐患1条 · 治安问题1条 · 其他1条 · flooding1条\n"
        "审核用时（已处理4条）：中位数1小时30分钟，90% 分位18小时6分钟\n"
        "超出24小时响应时限：2条"
    )
    english = render(Phrases(Texts(), "en", ZoneInfo("Asia/Shanghai")), settings, snapshot)
    assert english.splitlines()[2:7] == [
        "Today: 2 submitted",
        "By status: waiting for review 1 · more information needed 1",
        "By category: Road hazard 1 · Public order 1",
        "Time to decision (1 decided): median 2 h 0 min, 90th percentile 2 h 0 min",
        "Missed the 24-hour promise: 1",
    ]
    assert "This week (since Monday 2026-11-23): 5 submitted" in english


async def test_the_message_when_nothing_happened(db: Database) -> None:
    snapshot = await stats_at(db, NOW).snapshot()
    text = render(
        Phrases(Texts(), "zh", ZoneInfo("Asia/Shanghai")), Settings(bot_token="1:x"), snapshot
    )
    assert text.split("\n\n")[1] == (
        "【今天】提交0条\n审核用时：暂无已处理的线索\n超出24小时响应时限：0条"
    )


# --- end to end ---------------------------------------------------------------------------


async def test_stats_command_end_to_end(start_bot: BotStarter, fake: FakeTelegram) -> None:
    bot = await start_bot()
    started = datetime.now(UTC)
    for index in range(3):
        rider = Chat(fake, TgUser(801 + index, language_code="zh-hans"))
        await rider.agree()
        await rider.report(images.jpeg(images.picture(20 + index)))
    cards = await fake.wait_for_messages(MODERATOR_CHAT, 3)
    moderator = TgUser(MODERATOR, first_name="审核员甲")
    fake.press_button(moderator, cards[0], cards[0].button("✅ 50"))
    await fake.wait_for(lambda: "✅ 核实有效" in cards[0].text)
    fake.press_button(moderator, cards[1], cards[1].button("驳回"))
    await fake.wait_for(lambda: "无法核实" in str(cards[1].reply_markup))
    fake.press_button(moderator, cards[1], cards[1].button("无法核实"))
    await fake.wait_for(lambda: "❌ 未通过" in cards[1].text)
    # "Today" as of the test's start, so a run across midnight counts the same.
    bot.app.bot_data["runtime"].clock.source = lambda: started

    fake.send_text(moderator, "/stats")
    picture, message = await fake.wait_for_messages(MODERATOR, 2)
    assert picture.kind == "photo"
    assert picture.text.startswith("近12周")
    assert "收到线索3条，核实有效1起" in picture.text
    assert "parse_mode" not in message.params
    title, *sections = message.text.split("\n\n")
    assert title.startswith("📊 线索统计 · ")
    assert len(sections) == 3
    for section in sections:
        lines = section.splitlines()
        assert lines[0].endswith("提交3条")
        assert lines[1] == "状态：待审核1条 · 核实有效1条 · 未通过1条"
        assert lines[2] == "类别：道路隐患3条"
        assert lines[3].startswith("审核用时（已处理2条）：中位数")
        assert lines[4] == "超出24小时响应时限：0条"
    assert sections[0].startswith("【今天】")

    admin = TgUser(ADMIN, first_name="Boss", language_code="en")
    fake.send_text(admin, "/stats month")
    _, english = await fake.wait_for_messages(ADMIN, 2)
    assert english.text.startswith("📊 Report stats · ")
    today = english.text.split("\n\n")[1].splitlines()
    assert today[:2] == [
        "Today: 3 submitted",
        "By status: waiting for review 1 · verified 1 · not accepted 1",
    ]

    stranger = TgUser(503, first_name="路人", language_code="zh-hans")
    fake.send_text(stranger, "/stats")
    (refusal,) = await fake.wait_for_messages(stranger.id, 1)
    assert refusal.text == "只有审核员可以操作。"
    # Nothing more arrived for the moderator (no second reply from another handler).
    assert len(fake.sent_to(MODERATOR)) == 2
    fake.send_text(moderator, "/stats someday")
    _, _, usage = await fake.wait_for_messages(MODERATOR, 3)
    assert usage.text.startswith("用法：/stats")
