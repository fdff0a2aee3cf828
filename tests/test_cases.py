"""Cases (即时办) end to end: approval -> department card -> fixed -> the rider confirms."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from services.cases import TRANSITIONS, Action, Role, State, next_state
from settings import Department, Programme
from tests import images
from tests.conftest import ADMIN, MODERATOR, MODERATOR_CHAT, BotStarter, RunningBot
from tests.fakegram import FakeTelegram, SentMessage, TgUser
from tests.riders import Chat
from tests.test_moderation import card_of, submit

ROADS_CHAT = -300
POWER_CHAT = -301
DEPARTMENTS = (
    Department("roads", "公路段", "Roads office", ROADS_CHAT, ("road_hazard", "public_facility")),
    Department("power", "供电所", "Power company", POWER_CHAT, ("fire_risk", "traffic_accident")),
)
RIDER = TgUser(801, first_name="小王", language_code="zh-hans")
ROADS = TgUser(811, first_name="公路段小李")
ROADS_2 = TgUser(812, first_name="公路段小赵")
POWER = TgUser(821, first_name="供电所老周")
MOD = TgUser(MODERATOR, first_name="审核员甲")
BOSS = TgUser(ADMIN, first_name="管理员")


async def start(start_bot: BotStarter) -> RunningBot:
    bot = await start_bot(programme=Programme(departments=DEPARTMENTS))
    cases = bot.app.bot_data["runtime"].cases
    for user, department in ((ROADS, "roads"), (ROADS_2, "roads"), (POWER, "power")):
        await cases.add_staff(department, user.id, ADMIN)
    return bot


async def approve(fake: FakeTelegram, seed: int = 1) -> str:
    """A rider's road hazard, submitted and approved at 50 yuan by a moderator; its reference."""
    reviews = [m for m in fake.sent_to(MODERATOR_CHAT) if m.kind == "photo"]
    reference = await submit(fake, RIDER, seed=seed)
    await fake.wait_for(
        lambda: len([m for m in fake.sent_to(MODERATOR_CHAT) if m.kind == "photo"]) > len(reviews)
    )
    review = [m for m in fake.sent_to(MODERATOR_CHAT) if m.kind == "photo"][-1]
    fake.press_button(MOD, review, review.button("✅ 50"))
    return reference


async def approved_case(fake: FakeTelegram, seed: int = 1) -> tuple[str, SentMessage]:
    """A rider's road hazard, approved at 50 yuan; returns (reference, the department card)."""
    before = len(fake.sent_to(ROADS_CHAT))
    reference = await approve(fake, seed)
    cards = await fake.wait_for_messages(ROADS_CHAT, before + 1)
    return reference, cards[before]


async def rider_message(fake: FakeTelegram, contains: str) -> SentMessage:
    await fake.wait_for(lambda: any(contains in m.text for m in fake.sent_to(RIDER.id)))
    return next(m for m in reversed(fake.sent_to(RIDER.id)) if contains in m.text)


async def press(
    bot: RunningBot, fake: FakeTelegram, user: TgUser, message: SentMessage, label: str
) -> str:
    """Press a button, wait for the bot to settle; returns the button's answer text."""
    before = len(fake.callback_answers)
    fake.press_button(user, message, message.button(label))
    await bot.settled(fake)
    return str(fake.callback_answers[before].get("text", ""))


async def reply(
    bot: RunningBot,
    fake: FakeTelegram,
    user: TgUser,
    chat_id: int,
    text: str = "",
    photo: bool = False,
) -> None:
    """Reply to the bot's latest prompt in `chat_id`."""
    prompt = next(m for m in reversed(fake.sent_to(chat_id)) if m.text.startswith("🔧"))
    if photo:
        fake.send_photo(
            user,
            images.jpeg(images.picture(77)),
            chat_id=chat_id,
            reply_to_message_id=prompt.message_id,
        )
    else:
        fake.send_text(user, text, chat_id=chat_id, reply_to_message_id=prompt.message_id)
    await bot.settled(fake)


async def states(bot: RunningBot) -> list[tuple[str, str | None, str, int | None]]:
    rows = await bot.app.bot_data["runtime"].db.fetchall(
        "SELECT action, from_state, to_state, actor FROM case_events ORDER BY id"
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


async def test_report_to_fixed_and_confirmed(start_bot: BotStarter, fake: FakeTelegram) -> None:
    bot = await start(start_bot)
    reference, card = await approved_case(fake)
    assert card.kind == "photo"
    assert card.text.startswith(f"🛠 {reference} · 道路隐患")
    assert "公路段" in card.text
    assert "uri.amap.com" in card.text
    assert [label for label, _ in card.buttons()] == ["🙋 接单", "↪️ 非本部门", "📍 位置"]
    dispatched = await rider_message(fake, "已派给公路段")
    assert reference in dispatched.text
    told = [m.text for m in fake.sent_to(RIDER.id)]
    verified = next(i for i, text in enumerate(told) if "核实有效" in text)
    assert verified < told.index(dispatched.text)  # "verified" before "dispatched"

    assert await press(bot, fake, ROADS, card, "接单") == "已接单。"
    assert "已接单，处置中" in card.text
    await press(bot, fake, ROADS, card, "已修好")
    await reply(bot, fake, ROADS, ROADS_CHAT, photo=True)
    fixed = await rider_message(fake, "真的修好了吗")
    assert fixed.kind == "photo"
    assert fixed.file_bytes is not None
    assert b"Exif" not in fixed.file_bytes[:4096]
    assert "已处置，待骑手确认" in card.text
    assert await press(bot, fake, RIDER, fixed, "😊 满意") == "谢谢确认！"
    assert "骑手确认已修好" in card.text
    assert [s[:3] for s in await states(bot)] == [
        ("open", None, "dispatched"),
        ("accept", "dispatched", "accepted"),
        ("fixed", "accepted", "fixed"),
        ("confirm", "fixed", "confirmed"),
    ]
    photo = await bot.app.bot_data["runtime"].db.fetchone(
        "SELECT e.photo_id, p.kind FROM case_events e JOIN case_photos p ON p.id = e.photo_id"
    )
    assert photo is not None
    assert photo[1] == "after"
    chat = Chat(fake, RIDER)
    chat.seen = len(fake.sent_to(RIDER.id))
    chat.text("/my")
    assert "已修好" in (await chat.one()).text


async def test_not_ours_reroute_reopen_and_confirmed_by_the_clock(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start(start_bot)
    reference, card = await approved_case(fake)
    await press(bot, fake, ROADS, card, "非本部门")
    await reply(bot, fake, ROADS, ROADS_CHAT, "这是电线，归供电所")
    returned = next(m for m in fake.sent_to(MODERATOR_CHAT) if "退回了" in m.text)
    assert "这是电线，归供电所" in returned.text
    await press(bot, fake, MOD, returned, "供电所")
    await reply(bot, fake, MOD, MODERATOR_CHAT, "确实是电线")
    power_card = (await fake.wait_for_messages(POWER_CHAT, 1))[0]
    assert reference in power_card.text
    assert card.buttons() == []  # the old card went inert
    # Roads staff can no longer act: it is not their case now.
    answer = await press(bot, fake, ROADS, power_card, "接单")
    assert "没有改动" in answer
    await press(bot, fake, POWER, power_card, "接单")
    await press(bot, fake, POWER, power_card, "已修好")
    await press(bot, fake, POWER, power_card, "无照片")
    asked = await rider_message(fake, "真的修好了吗")
    assert asked.kind == "text"
    await press(bot, fake, RIDER, asked, "不满意")
    assert [label for label, _ in asked.buttons()] == ["还没修好", "只修了一部分", "修好后又坏了"]
    await reply(bot, fake, RIDER, RIDER.id, photo=True)

    def new_cards() -> list[SentMessage]:
        return [
            m
            for m in fake.sent_to(POWER_CHAT)
            if m.message_id > power_card.message_id and m.text.startswith("🛠")
        ]

    await fake.wait_for(lambda: bool(new_cards()))
    (reopened_card,) = new_cards()
    assert "骑手反馈未修好" in reopened_card.text
    # The department sees the rider's evidence: the reopened card is the rider's new photo.
    assert reopened_card.kind == "photo"
    assert reopened_card.file_bytes is not None
    assert b"Exif" not in reopened_card.file_bytes[:4096]
    assert power_card.buttons() == []
    await press(bot, fake, POWER, reopened_card, "接单")
    await press(bot, fake, POWER, reopened_card, "已修好")
    await press(bot, fake, POWER, reopened_card, "无照片")
    await rider_message(fake, "真的修好了吗")
    # The rider stays silent: three days later the clock confirms it.
    from datetime import UTC, datetime, timedelta

    from handlers import cases as case_handlers

    later = datetime.now(UTC) + timedelta(days=3, minutes=1)
    bot.app.bot_data["runtime"].clock.source = lambda: later
    await bot.run_job(fake, case_handlers.service_job)
    actions = [s[0] for s in await states(bot)]
    assert actions[-1] == "confirm"
    assert actions == [
        "open",
        "not_ours",
        "reroute",
        "accept",
        "fixed",
        "reopen",
        "accept",
        "fixed",
        "breach",
        "confirm",
    ] or actions == [
        "open",
        "not_ours",
        "reroute",
        "accept",
        "fixed",
        "reopen",
        "accept",
        "fixed",
        "confirm",
    ]


async def test_double_press_two_staff_and_stale_card_change_nothing(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start(start_bot)
    _, card = await approved_case(fake)
    stale = SentMessage.__new__(SentMessage)
    stale.__dict__.update(card.__dict__)
    data = card.button("接单")
    with fake.held_updates():
        fake.press_button(ROADS, card, data)
        fake.press_button(ROADS_2, card, data)
        fake.press_button(ROADS, card, data)
    await bot.settled(fake)
    answers = [str(a.get("text", "")) for a in fake.callback_answers[-3:]]
    assert answers.count("已接单。") == 1
    assert sum("没有改动" in a for a in answers) == 2
    assert [s[0] for s in await states(bot)] == ["open", "accept"]
    # The wrong department's staff are refused too.
    fixed_data = card.button("已修好")
    before = len(fake.callback_answers)
    fake.press_button(POWER, card, fixed_data)
    await bot.settled(fake)
    assert "没有改动" in str(fake.callback_answers[before].get("text", ""))
    # A stale card (pressed after the case moved on) changes nothing.
    before = len(fake.callback_answers)
    fake.press_button(ROADS, card, data)
    await bot.settled(fake)
    assert "已经是" in str(fake.callback_answers[before].get("text", ""))
    assert [s[0] for s in await states(bot)] == ["open", "accept"]


async def test_a_case_card_whose_send_timed_out_is_sent_again_and_says_so(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start(start_bot)
    # Telegram takes the case card but its answer never comes back in time: the bot cannot know.
    fake.fail_next("sendPhoto", status=200, delay=8, chat_id=ROADS_CHAT)
    reference = await submit(fake, RIDER)
    review = await card_of(fake)
    fake.press_button(MOD, review, review.button("✅ 50"))
    first, second = await fake.wait_for_messages(ROADS_CHAT, 2, timeout=40)
    assert first.text.startswith(f"🛠 {reference}")
    assert second.text.startswith("↻ 再次发送")
    assert f"🛠 {reference}" in second.text
    # The earlier copy's buttons work too; the case moves once.
    late = second.button("接单")
    assert await press(bot, fake, ROADS, first, "接单") == "已接单。"
    assert "已接单，处置中" in second.text
    assert second.text.startswith("↻ 再次发送")  # the change did not wipe the mark
    before = len(fake.callback_answers)
    fake.press_button(ROADS, second, late)
    await bot.settled(fake)
    assert "已经是" in str(fake.callback_answers[before].get("text", ""))
    assert [s[0] for s in await states(bot)] == ["open", "accept"]


async def test_a_case_card_telegram_refused_is_sent_again_without_a_warning(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    await start(start_bot)
    fake.fail_next("sendPhoto", status=500, chat_id=ROADS_CHAT)
    reference, card = await approved_case(fake)
    assert card.text.startswith(f"🛠 {reference}")
    assert len(fake.sent_to(ROADS_CHAT)) == 1


async def test_urgent_category_shows_emergency_numbers_first(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start(start_bot)
    chat = Chat(fake, RIDER)
    await chat.agree()
    chat.photo(images.jpeg(images.picture(5)))
    await chat.one()
    chat.location(39.9, 116.4)
    categories = await chat.one()
    chat.press(categories, "火灾隐患")
    question = await chat.becomes(categories, "skip:")
    # Before anything else: the numbers to call now, above the next question.
    assert question.text.startswith("🚨 ")
    for number in ("110", "119", "120", "122"):
        assert question.text.index(number) < question.text.index("补充说明")
    chat.press(question, "")
    chat.press(await chat.becomes(categories, "sub:"), "✅")
    await chat.one()
    review = await card_of(fake)
    assert review.text.startswith("🚨 ")
    await fake.wait_for(lambda: any("紧急线索" in m.text for m in fake.sent_to(MODERATOR)))
    await fake.wait_for(lambda: any("紧急线索" in m.text for m in fake.sent_to(ADMIN)))
    await bot.settled(fake)


async def test_without_departments_no_case_is_made(bot: RunningBot, fake: FakeTelegram) -> None:
    await submit(fake, RIDER)
    review = await card_of(fake)
    fake.press_button(MOD, review, review.button("✅ 50"))
    await bot.settled(fake)
    assert await bot.app.bot_data["runtime"].db.fetchall("SELECT * FROM cases") == []


async def test_staff_command_adds_and_lists(start_bot: BotStarter, fake: FakeTelegram) -> None:
    bot = await start(start_bot)
    boss = Chat(fake, BOSS)
    boss.text("/staff add roads 4242")
    assert "4242" in (await boss.one()).text
    boss.text("/staff")
    listed = (await boss.one()).text
    assert "roads: " in listed or "roads：" in listed
    assert "4242" in listed
    await bot.settled(fake)


# --- the table -------------------------------------------------------------------------


@pytest.mark.parametrize(("state", "action", "role"), list(itertools.product(State, Action, Role)))
def test_every_combination_moves_only_where_the_table_allows(
    state: State, action: Action, role: Role
) -> None:
    allowed = TRANSITIONS.get((state, action, role))
    assert next_state(state, action, {role}) == allowed
    if allowed is None:
        assert next_state(state, action, set()) is None


def test_closed_states_allow_nothing() -> None:
    for state in (State.CONFIRMED, State.CANNOT_FIX):
        assert not [key for key in TRANSITIONS if key[0] == state]


def test_table_matches_the_issue() -> None:
    assert TRANSITIONS[(State.DISPATCHED, Action.ACCEPT, Role.STAFF)] == State.ACCEPTED
    assert TRANSITIONS[(State.FIXED, Action.CONFIRM, Role.CLOCK)] == State.CONFIRMED
    assert TRANSITIONS[(State.FIXED, Action.REOPEN, Role.RIDER)] == State.REOPENED
    assert (State.FIXED, Action.REOPEN, Role.STAFF) not in TRANSITIONS
    assert (State.DISPATCHED, Action.FIXED, Role.STAFF) not in TRANSITIONS


_ = asyncio


# --- /stats per department ---------------------------------------------------------------


def test_department_figures_need_five_cases() -> None:
    from fractions import Fraction

    from services.stats import department_stats

    hour = 3600
    rows = [
        # department, state, opened_at, due_at, fixed_at, reopened
        ("roads", "confirmed", 0, 24 * hour, 2 * hour, 0),
        ("roads", "confirmed", 0, 24 * hour, 4 * hour, 1),
        ("roads", "fixed", 0, 24 * hour, 30 * hour, 0),
        ("roads", "accepted", 0, 24 * hour, None, 0),
        ("roads", "dispatched", 0, 100 * hour, None, 0),
        ("power", "dispatched", 0, hour, None, 0),
    ]
    roads, power = department_stats(rows, ["roads", "power"], now=50 * hour)
    assert roads.cases == 5
    assert roads.to_fixed is not None
    assert roads.to_fixed.median is not None
    assert roads.to_fixed.median.total_seconds() == 4 * hour
    assert roads.within_sla == Fraction(2, 3)
    assert roads.reopened == Fraction(1, 5)
    assert roads.open_overdue == 1
    assert power.cases == 1
    assert power.to_fixed is None
    assert power.open_overdue == 1


async def test_stats_shows_departments(start_bot: BotStarter, fake: FakeTelegram) -> None:
    bot = await start(start_bot)
    await approved_case(fake)
    boss = Chat(fake, BOSS)
    boss.text("/stats")
    picture, message = await boss.next(2)  # the charts, then the text figures
    assert picture.kind == "photo"
    text = message.text
    assert "🛠 处置部门" in text
    assert "公路段：1件（少于5件，不计算）" in text
    await bot.settled(fake)


async def test_service_level_reminder_breach_and_daily_overdue_list(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    from datetime import UTC, datetime, timedelta

    from handlers import cases as case_handlers

    bot = await start(start_bot)
    reference, _ = await approved_case(fake)
    cases = bot.app.bot_data["runtime"].cases
    now = datetime.now(UTC)
    cases.clock = lambda: now + timedelta(hours=19)  # past 75% of road_hazard's 24 hours
    await bot.run_job(fake, case_handlers.service_job)
    await bot.run_job(fake, case_handlers.service_job)  # reminded once only
    reminders = [m for m in fake.sent_to(ROADS_CHAT) if "四分之三" in m.text]
    assert len(reminders) == 1
    assert reference in reminders[0].text
    cases.clock = lambda: now + timedelta(hours=25)
    await bot.run_job(fake, case_handlers.service_job)
    await bot.run_job(fake, case_handlers.service_job)
    assert len([m for m in fake.sent_to(ROADS_CHAT) if "已超过处置时限" in m.text]) == 1
    assert len([m for m in fake.sent_to(ADMIN) if "已超过处置时限" in m.text]) == 1
    assert "breach" in [s[0] for s in await states(bot)]
    await bot.run_job(fake, case_handlers.overdue_job)
    listed = fake.sent_to(ADMIN)[-1].text
    assert "超时未处置的案件：1件" in listed
    assert reference in listed


NOT_SEEN = "没有改动：找不到这个案件，或它不归你处理。"


async def test_forged_case_buttons_learn_nothing_and_change_nothing(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start(start_bot)
    _reference, card = await approved_case(fake)
    case_id = (await bot.app.bot_data["runtime"].db.fetchone("SELECT id FROM cases"))[0]
    stranger = Chat(fake, TgUser(899, language_code="zh-hans"))
    await stranger.agree()
    for data in (
        f"cyes:{case_id}:dispatched",
        f"cno:{case_id}:dispatched",
        f"cyes:{case_id + 7}:fixed",
    ):
        before = len(fake.callback_answers)
        fake.press_button(stranger.user, 1, data)
        await bot.settled(fake)
        answer = str(fake.callback_answers[before].get("text", ""))
        assert answer == NOT_SEEN, (data, answer)  # the same for a real and a made-up id
    # Power staff press a forged "location" on the roads' case: no location, no state.
    before = len(fake.sent_to(POWER_CHAT))
    fake.press_button(POWER, 1, f"cpin:{case_id}:", chat_id=POWER_CHAT)
    await bot.settled(fake)
    assert [m.kind for m in fake.sent_to(POWER_CHAT)[before:]] == []
    fake.press_button(POWER, card, card.button("接单"))  # a real card, not theirs
    await bot.settled(fake)
    assert fake.callback_answers[-1].get("text") == NOT_SEEN
    assert [s[:3] for s in await states(bot)] == [("open", None, "dispatched")]


async def test_no_ids_in_department_texts_and_a_stale_returned_notice_reroutes_nothing(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start(start_bot)
    _reference, card = await approved_case(fake)
    await press(bot, fake, ROADS, card, "非本部门")
    await reply(bot, fake, ROADS, ROADS_CHAT, "归供电所")
    returned = next(m for m in fake.sent_to(MODERATOR_CHAT) if "退回了" in m.text)
    await press(bot, fake, MOD, returned, "供电所")
    await reply(bot, fake, MOD, MODERATOR_CHAT, "确实是电线")
    power_card = (await fake.wait_for_messages(POWER_CHAT, 1))[0]
    await press(bot, fake, POWER, power_card, "接单")
    # The same "returned" notice pressed again later: the case is accepted and being fixed.
    answer = await press(bot, fake, BOSS, returned, "供电所")
    assert answer == "没有改动：这个案件已经是“🔧 已接单，处置中”。"
    assert not any(char.isdigit() for char in answer)  # nobody's Telegram id
    assert all(m.text.startswith("🔧") is False for m in fake.sent_to(MODERATOR_CHAT)[-1:])
    (department, state) = await bot.app.bot_data["runtime"].db.fetchone(
        "SELECT department, state FROM cases"
    )
    assert (department, state) == ("power", "accepted")
    # A stale "accept" on the department's own card: told it moved on, with no one's id.
    before = len(fake.callback_answers)
    fake.press_button(POWER, power_card, "cacc:1:dispatched")
    await bot.settled(fake)
    answer = str(fake.callback_answers[before].get("text", ""))
    assert answer.startswith("没有改动：这个案件已经是")
    assert not any(char.isdigit() for char in answer)
    for message in fake.sent_to(ROADS_CHAT) + fake.sent_to(POWER_CHAT):
        assert str(RIDER.id) not in message.text


async def test_a_refused_after_photo_leaves_the_prompt_open(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start(start_bot)
    _reference, card = await approved_case(fake)
    await press(bot, fake, ROADS, card, "接单")
    await press(bot, fake, ROADS, card, "已修好")
    prompt = next(m for m in reversed(fake.sent_to(ROADS_CHAT)) if m.text.startswith("🔧"))
    fake.send_photo(
        ROADS, images.png_bomb(20_000, 20_000), chat_id=ROADS_CHAT,
        reply_to_message_id=prompt.message_id,
    )  # fmt: skip
    await bot.settled(fake)
    refused = fake.sent_to(ROADS_CHAT)[-1]
    assert not refused.text.startswith("🔧")
    assert "已处置" not in card.text
    await reply(bot, fake, ROADS, ROADS_CHAT, photo=True)  # the same prompt, a good photo
    assert "已处置，待骑手确认" in card.text
    assert await rider_message(fake, "真的修好了吗")
