"""Cases as a county is assessed on them, end to end through the stand-in: routing by town
and category, working-day deadlines across National Day, 延期, 督办, 催办, and the riders'
回访, the one who reported it and the one who reported it again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from handlers import cases as case_handlers
from services.towns import Towns
from settings import Category, Department, Programme
from tests.conftest import ADMIN, MODERATOR, MODERATOR_CHAT, BotStarter, RunningBot
from tests.fakegram import FakeTelegram, SentMessage, TgUser
from tests.riders import BEIJING, Chat
from tests.test_cases import press, reply
from tests.test_moderation import submit
from tests.test_towns import collection, feature, square

SHANGHAI = ZoneInfo("Asia/Shanghai")
TOWN_OFFICE_CHAT = -310
COUNTY_ROADS_CHAT = -300
# 城关镇 holds BEIJING (39.9087, 116.3975); 好花红镇 lies east of it
TOWNS = collection(
    feature("城关镇", [square(116.35, 39.85)]),
    feature("好花红镇", [square(116.45, 39.85)]),
    feature("城关一网格", [square(116.35, 39.85, 0.08)], level="grid"),
)
IN_HAOHUAHONG = (39.90, 116.50)
UNZONED = (39.50, 116.00)
CATEGORIES = (
    Category("road_hazard", "道路隐患", "Road hazard", 5000, fix_workdays=3, accept_hours=4),
    Category("public_facility", "公共设施损坏", "Damaged public facility", 5000, fix_hours=48),
)
DEPARTMENTS = (
    Department(
        "chengguan", "城关镇办", "Chengguan office", TOWN_OFFICE_CHAT, ("road_hazard",), ("城关镇",)
    ),
    Department(
        "roads",
        "县公路局",
        "County roads bureau",
        COUNTY_ROADS_CHAT,
        ("road_hazard", "public_facility"),
    ),
)
RIDER = TgUser(801, first_name="小王", language_code="zh-hans")
RIDER_2 = TgUser(802, first_name="小李", language_code="zh-hans")
RIDER_3 = TgUser(803, first_name="小陈", language_code="zh-hans")
TOWN_STAFF = TgUser(811, first_name="镇办小张")
COUNTY_STAFF = TgUser(812, first_name="公路局小赵")
MOD = TgUser(MODERATOR, first_name="审核员甲")
BOSS = TgUser(ADMIN, first_name="管理员")


async def start(start_bot: BotStarter, moment: datetime | None = None) -> RunningBot:
    programme = Programme(
        categories=CATEGORIES,
        departments=DEPARTMENTS,
        towns=Towns.from_geojson(TOWNS, "towns.geojson"),
    )
    bot = await start_bot(programme=programme)
    runtime = bot.app.bot_data["runtime"]
    if moment is not None:
        at(bot, moment)
    await runtime.cases.add_staff("chengguan", TOWN_STAFF.id, ADMIN)
    await runtime.cases.add_staff("roads", COUNTY_STAFF.id, ADMIN)
    return bot


def at(bot: RunningBot, moment: datetime) -> None:
    bot.app.bot_data["runtime"].clock.source = lambda: moment


async def approved(
    fake: FakeTelegram, rider: TgUser, chat_id: int, location: tuple[float, float], seed: int
) -> tuple[str, SentMessage]:
    """A rider's road hazard at `location`, approved; (reference, the card in `chat_id`)."""
    before = len(fake.sent_to(chat_id))
    reviews = [m for m in fake.sent_to(MODERATOR_CHAT) if m.kind == "photo"]
    reference = await submit(fake, rider, seed=seed, location=location)
    await fake.wait_for(
        lambda: len([m for m in fake.sent_to(MODERATOR_CHAT) if m.kind == "photo"]) > len(reviews)
    )
    review = [m for m in fake.sent_to(MODERATOR_CHAT) if m.kind == "photo"][-1]
    assert ("城关镇" if location == BEIJING else "") in review.text
    fake.press_button(MOD, review, review.button("✅ 50"))
    cards = await fake.wait_for_messages(chat_id, before + 1)
    return reference, cards[before]


async def told(fake: FakeTelegram, chat_id: int, contains: str) -> SentMessage:
    def found() -> list[SentMessage]:
        return [m for m in fake.sent_to(chat_id) if contains in m.text]

    await fake.wait_for(lambda: bool(found()))
    return found()[-1]


async def due_at(bot: RunningBot, reference: str) -> datetime:
    row = await bot.app.bot_data["runtime"].db.fetchone(
        "SELECT c.due_at FROM cases c JOIN reports r ON r.id = c.report_id WHERE r.reference = ?",
        (reference,),
    )
    assert row is not None
    return datetime.fromtimestamp(row[0], SHANGHAI)


async def test_routing_by_town_then_category(start_bot: BotStarter, fake: FakeTelegram) -> None:
    await start(start_bot)
    # 城关镇's own office takes its road hazards ...
    reference, card = await approved(fake, RIDER, TOWN_OFFICE_CHAT, BEIJING, 1)
    assert "📍 镇街：城关镇 · 城关一网格" in card.text
    assert "城关镇" in (await told(fake, RIDER.id, "已派给城关镇办")).text
    # ... the county bureau takes 好花红镇's, and those outside every town (未分区)
    _, card_2 = await approved(fake, RIDER_2, COUNTY_ROADS_CHAT, IN_HAOHUAHONG, 2)
    assert "📍 镇街：好花红镇" in card_2.text
    _, card_3 = await approved(fake, RIDER_3, COUNTY_ROADS_CHAT, UNZONED, 3)
    assert "📍 镇街：未分区" in card_3.text
    assert fake.sent_to(TOWN_OFFICE_CHAT) == [card]
    rider = Chat(fake, RIDER)
    rider.seen = len(fake.sent_to(RIDER.id))
    rider.text("/my")
    mine = next(line for line in (await rider.one()).text.splitlines() if reference in line)
    assert "· 城关镇 ·" in mine


async def test_working_days_across_national_day_and_the_make_up_saturday(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    tuesday = datetime(2026, 9, 29, 15, 0, tzinfo=SHANGHAI)
    bot = await start(start_bot, tuesday)
    reference, card = await approved(fake, RIDER, TOWN_OFFICE_CHAT, BEIJING, 1)
    # 3 working days: Wed 9-30, Thu 10-08, Fri 10-09 (10-01..10-07 is the holiday)
    assert await due_at(bot, reference) == datetime(2026, 10, 10, tzinfo=SHANGHAI)
    assert "⏱ 须在2026-09-29 19:00前签收" in card.text
    assert card.text.splitlines()[-1].startswith("🟢")
    # Three hours in: 75% of the four hours to accept are gone; the card is yellow in /cases.
    at(bot, tuesday + timedelta(hours=3, minutes=1))
    await bot.run_job(fake, case_handlers.service_job)
    await told(fake, TOWN_OFFICE_CHAT, "签收时限已过四分之三")
    staff = Chat(fake, TOWN_STAFF)
    staff.text("/cases")
    assert f"🟡 {reference}" in (await staff.one()).text
    at(bot, tuesday + timedelta(hours=4, minutes=1))
    await bot.run_job(fake, case_handlers.service_job)
    await told(fake, TOWN_OFFICE_CHAT, "超过签收时限")
    await told(fake, ADMIN, "超过签收时限")
    await press(bot, fake, TOWN_STAFF, card, "接单")
    # 75% of the working time (9-29 15:00 .. 10-10: 9 h + 3 days = 81 h) is 60.75 h: Fri 10-09 03:45
    at(bot, datetime(2026, 10, 9, 3, 44, tzinfo=SHANGHAI))
    await bot.run_job(fake, case_handlers.service_job)
    assert not [m for m in fake.sent_to(TOWN_OFFICE_CHAT) if "处置时限已过四分之三" in m.text]
    at(bot, datetime(2026, 10, 9, 3, 46, tzinfo=SHANGHAI))
    await bot.run_job(fake, case_handlers.service_job)
    await told(fake, TOWN_OFFICE_CHAT, "处置时限已过四分之三")
    # Past due, then the 催办 the day after.
    at(bot, datetime(2026, 10, 10, 0, 1, tzinfo=SHANGHAI))
    await bot.run_job(fake, case_handlers.service_job)
    await told(fake, TOWN_OFFICE_CHAT, "已超过处置时限")
    assert not [m for m in fake.sent_to(TOWN_OFFICE_CHAT) if "催办" in m.text]
    at(bot, datetime(2026, 10, 11, 0, 2, tzinfo=SHANGHAI))
    await bot.run_job(fake, case_handlers.service_job)
    await told(fake, TOWN_OFFICE_CHAT, "📣 催办")
    await bot.run_job(fake, case_handlers.service_job)
    assert len([m for m in fake.sent_to(TOWN_OFFICE_CHAT) if "催办" in m.text]) == 1


async def test_an_extension_asked_approved_and_another_refused(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start(start_bot, datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI))  # a Monday
    reference, card = await approved(fake, RIDER, TOWN_OFFICE_CHAT, BEIJING, 1)
    assert await due_at(bot, reference) == datetime(2026, 11, 6, tzinfo=SHANGHAI)
    await press(bot, fake, TOWN_STAFF, card, "接单")
    await press(bot, fake, TOWN_STAFF, card, "申请延期")
    await reply(bot, fake, TOWN_STAFF, TOWN_OFFICE_CHAT, "下周再说")  # no date
    await told(fake, TOWN_OFFICE_CHAT, "没看懂新的日期")
    await reply(bot, fake, TOWN_STAFF, TOWN_OFFICE_CHAT, "2026-11-20 需要采购材料")
    await told(fake, TOWN_OFFICE_CHAT, "延期申请已提交")
    asked = await told(fake, MODERATOR_CHAT, "申请" + reference + "延期")
    assert "需要采购材料" in asked.text
    assert await due_at(bot, reference) == datetime(2026, 11, 6, tzinfo=SHANGHAI)  # not yet
    # A second request while one waits is refused.
    await press(bot, fake, TOWN_STAFF, card, "申请延期")
    await reply(bot, fake, TOWN_STAFF, TOWN_OFFICE_CHAT, "11-25 还要更久")
    await told(fake, TOWN_OFFICE_CHAT, "已有一份延期申请在等待决定")
    # Department staff cannot decide it; a moderator can, once.
    outsider = await press(bot, fake, TOWN_STAFF, asked, "同意延期")
    assert "只有审核员" in outsider
    assert await press(bot, fake, MOD, asked, "同意延期") == "已同意延期。"
    assert await due_at(bot, reference) == datetime(2026, 11, 21, tzinfo=SHANGHAI)
    await told(fake, RIDER.id, "处置期限延至2026-11-21 00:00")
    await told(fake, TOWN_OFFICE_CHAT, "延期已同意")
    await fake.wait_for(lambda: "2026-11-21 00:00" in card.text)
    # Another request, refused: the deadline stays.
    await press(bot, fake, TOWN_STAFF, card, "申请延期")
    await reply(bot, fake, TOWN_STAFF, TOWN_OFFICE_CHAT, "2026年12月1日 雨季")
    second = await told(fake, MODERATOR_CHAT, "雨季")
    assert await press(bot, fake, MOD, second, "不同意") == "已不同意延期，期限不变。"
    assert await due_at(bot, reference) == datetime(2026, 11, 21, tzinfo=SHANGHAI)
    await told(fake, TOWN_OFFICE_CHAT, "延期未获同意")
    rows = await bot.app.bot_data["runtime"].db.fetchall(
        "SELECT state, reason FROM case_extensions ORDER BY id"
    )
    assert [(r[0], r[1]) for r in rows] == [("approved", "需要采购材料"), ("refused", "雨季")]


async def test_a_supervision_answered_and_one_escalated(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    monday = datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI)
    bot = await start(start_bot, monday)
    reference, _card = await approved(fake, RIDER, TOWN_OFFICE_CHAT, BEIJING, 1)
    boss = Chat(fake, BOSS)
    boss.text(f"/supervise {reference} 请说明进度")
    assert "已对" in (await boss.one()).text
    notice = await told(fake, TOWN_OFFICE_CHAT, "📌 督办")
    assert "请说明进度" in notice.text
    # Only the department's staff may answer it.
    assert "没有改动" in await press(bot, fake, COUNTY_STAFF, notice, "答复督办")
    await press(bot, fake, TOWN_STAFF, notice, "答复督办")
    await reply(bot, fake, TOWN_STAFF, TOWN_OFFICE_CHAT, "材料已到，明天修")
    assert "材料已到，明天修" in (await told(fake, ADMIN, "答复了")).text
    # A second 督办 left unanswered past its 24 hours goes to every admin.
    boss.text(f"/supervise {reference} 为什么还没接单")
    await fake.wait_for(lambda: len([m for m in fake.sent_to(ADMIN) if "已对" in m.text]) == 2)
    at(bot, monday + timedelta(hours=23))
    await bot.run_job(fake, case_handlers.service_job)
    assert not [m for m in fake.sent_to(ADMIN) if "未在" in m.text]
    at(bot, monday + timedelta(hours=24, minutes=1))
    await bot.run_job(fake, case_handlers.service_job)
    assert "为什么还没接单" in (await told(fake, ADMIN, "🔺")).text
    boss.text("/supervise R-20990101-0001 这是什么")
    await told(fake, ADMIN, "找不到这个案件")


async def test_unsatisfied_reopens_and_a_follower_is_told_and_asked(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start(start_bot)
    reference, card = await approved(fake, RIDER, TOWN_OFFICE_CHAT, BEIJING, 1)
    # Another rider reports the same hazard; the moderator marks it a duplicate.
    second = await submit(fake, RIDER_2, seed=2)
    review = await told(fake, MODERATOR_CHAT, second)
    fake.press_button(MOD, review, review.button("重复"))
    await fake.wait_for(lambda: reference in str(review.reply_markup))
    fake.press_button(MOD, review, review.button(reference))
    following = await told(fake, RIDER_2.id, "并入它一起跟进")
    assert reference in following.text
    assert "已派发" in following.text
    await fake.wait_for(lambda: "👥 另有1位骑手报了同一隐患" in card.text)
    await press(bot, fake, TOWN_STAFF, card, "接单")
    assert "👥 另有1位骑手报了同一隐患" in card.text
    await press(bot, fake, TOWN_STAFF, card, "已修好")
    await press(bot, fake, TOWN_STAFF, card, "无照片")
    asked = await told(fake, RIDER.id, "真的修好了吗")
    follower_asked = await told(fake, RIDER_2.id, "真的修好了吗")
    # The follower's answer is recorded and changes nothing; a second one is refused.
    assert await press(bot, fake, RIDER_2, follower_asked, "😊 满意") == "谢谢你的评价！"
    # The rider is not satisfied: a reason in one tap reopens it for the same department.
    await press(bot, fake, RIDER, asked, "不满意")
    assert await press(bot, fake, RIDER, asked, "只修了一部分") == "已重新交给处置部门。"
    reopened = await told(fake, TOWN_OFFICE_CHAT, "骑手反馈未修好")
    assert "只修了一部分" in reopened.text
    feedback = await bot.app.bot_data["runtime"].db.fetchall(
        "SELECT answer, silent, reason FROM case_feedback ORDER BY id"
    )
    assert [tuple(r) for r in feedback] == [
        ("satisfied", 0, None),
        ("unsatisfied", 0, "只修了一部分"),
    ]
    # Fixed again; the rider stays silent: confirmed by the clock, counted as silent 基本满意.
    cards = await fake.wait_for_messages(TOWN_OFFICE_CHAT, 1)
    new_card = next(m for m in reversed(cards) if m.text.startswith("🛠"))
    await press(bot, fake, TOWN_STAFF, new_card, "接单")
    await press(bot, fake, TOWN_STAFF, new_card, "已修好")
    await press(bot, fake, TOWN_STAFF, new_card, "无照片")
    later: Callable[[], datetime] = lambda: datetime.now(UTC) + timedelta(days=3, minutes=1)  # noqa: E731
    at(bot, later())
    await bot.run_job(fake, case_handlers.service_job)
    feedback = await bot.app.bot_data["runtime"].db.fetchall(
        "SELECT answer, silent FROM case_feedback ORDER BY id"
    )
    assert [tuple(r) for r in feedback][-1] == ("basic", 1)


async def test_the_confirm_screen_names_the_place_not_the_coordinates(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    """A venue by its name (and town), a bare location by its town; only outside every town
    the coordinates."""
    await start(start_bot)
    for user, share, expected in (
        (RIDER, "venue", "位置：前门驿站（城关镇）"),
        (RIDER_2, "location", "位置：城关镇境内"),
        (RIDER_3, "unzoned", "位置：39.50000, 116.00000"),
    ):
        chat = Chat(fake, user)
        await chat.agree()
        chat.photo()
        await chat.one()
        if share == "venue":
            fake.send_venue(user, *BEIJING, "前门驿站", "前门大街")
        else:
            chat.location(*(BEIJING if share == "location" else UNZONED))
        summary = await chat.categorise(await chat.one(), "道路隐患")
        assert expected in summary.text
