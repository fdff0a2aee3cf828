"""Moderators end to end: the card, one-tap decisions made exactly once, the 24-hour promise."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers import jobs, review
from handlers.review_card import CardView
from settings import RateLimits
from tests import images
from tests.conftest import ADMIN, MODERATOR, MODERATOR_CHAT, BotStarter, RunningBot
from tests.fakegram import FakeTelegram, SentMessage, TgUser
from tests.riders import BEIJING, Chat, handled_again, reference_in

RIDER = TgUser(501, first_name="小张", language_code="zh-hans")
EN_RIDER = TgUser(502, first_name="Lee", language_code="en")
MOD = TgUser(MODERATOR, first_name="老王")
BOSS = TgUser(ADMIN, first_name="管理员")
STRANGER = TgUser(503, first_name="路人")


async def submit(fake: FakeTelegram, user: TgUser, seed: int = 1, **kwargs: object) -> str:
    chat = Chat(fake, user)
    if not chat.seen and not fake.sent_to(user.id):
        await chat.agree()
    else:
        chat.seen = len(fake.sent_to(user.id))
    return reference_in(await chat.report(images.jpeg(images.picture(seed)), **kwargs))  # type: ignore[arg-type]


async def card_of(fake: FakeTelegram, count: int = 1) -> SentMessage:
    cards = await fake.wait_for_messages(MODERATOR_CHAT, count)
    return cards[count - 1]


def answers_after(fake: FakeTelegram, before: int) -> list[str]:
    """Texts of the callback answers given since `before` answers had been given."""
    return [str(answer.get("text", "")) for answer in fake.callback_answers[before:]]


async def ledger(bot: RunningBot) -> list[tuple[str, int, int]]:
    rows = await bot.app.bot_data["runtime"].db.fetchall(
        "SELECT idempotency_key, amount_fen, points FROM ledger ORDER BY id"
    )
    return [(row[0], row[1], row[2]) for row in rows]


async def test_card_shows_what_a_moderator_needs(bot: RunningBot, fake: FakeTelegram) -> None:
    reference = await submit(fake, RIDER, description="<b>井盖</b>没了")
    card = await card_of(fake)
    assert card.kind == "photo"
    assert card.file_bytes is not None
    assert card.file_bytes[:2] == b"\xff\xd8"
    assert b"Exif" not in card.file_bytes[:4096]
    text = card.text
    assert text.startswith(f"🆕 {reference} · 道路隐患")
    assert "📍 39.90870, 116.39750" in text
    # Amap (what moderators in China use) takes the GPS (WGS-84) position as-is.
    assert (
        f"https://uri.amap.com/marker?position=116.39750,39.90870&coordinate=wgs84&name={reference}"
        in text
    )
    assert "openstreetmap.org/?mlat=39.90870&mlon=116.39750" in text
    assert "👤 骑手记录：核实有效0 · 未通过0 · 共1" in text
    assert "📝 <b>井盖</b>没了" in text
    assert "⏳ 待审核" in text
    assert [label for label, _ in card.buttons()][:4] == ["✅ 50", "✅ 100 ★", "✅ 150", "✅ 200"]


async def test_approval_at_each_tier_credits_and_tells_the_rider(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    riders = [TgUser(600 + i, language_code="en") for i in range(3)]
    for index, (rider, yuan) in enumerate(zip(riders, (50, 100, 150), strict=True)):
        reference = await submit(fake, rider, seed=10 + index, category="Road hazard")
        card = await card_of(fake, index + 1)
        fake.press_button(MOD, card, card.button(f"✅ {yuan}"))
        told = (await fake.wait_for_messages(rider.id, 6))[5]
        points = 10 + yuan // 10
        assert told.text.startswith(
            f"🎉 Your report {reference} is verified! Reward: {yuan}.00 yuan, {points} points."
        )
        await fake.wait_for(lambda: "✅ 核实有效" in card.text)  # noqa: B023
        assert f"{yuan}.00元 · {points}积分 · 审核员老王" in card.text
        assert card.reply_markup is None
    assert [entry[1] for entry in await ledger(bot)] == [5000, 10000, 15000]


async def test_rejection_with_a_reason(bot: RunningBot, fake: FakeTelegram) -> None:
    reference = await submit(fake, RIDER)
    card = await card_of(fake)
    fake.press_button(MOD, card, card.button("驳回"))
    await fake.wait_for(lambda: "无法核实" in str(card.reply_markup))
    fake.press_button(MOD, card, card.button("无法核实"))
    told = (await fake.wait_for_messages(RIDER.id, 6))[5]
    assert told.text.startswith(f"你的线索{reference}未通过，原因：无法核实")
    await fake.wait_for(lambda: "❌ 未通过（无法核实）" in card.text)
    assert await ledger(bot) == []


async def test_duplicate_of_a_nearby_report(bot: RunningBot, fake: FakeTelegram) -> None:
    first = await submit(fake, RIDER, seed=1)
    second = await submit(fake, EN_RIDER, seed=2, category="Road hazard")
    card = await card_of(fake, 2)
    assert f"24小时内200米内的线索：{first}" in card.text
    fake.press_button(MOD, card, card.button("重复"))
    await fake.wait_for(lambda: first in str(card.reply_markup))
    fake.press_button(MOD, card, card.button(first))
    told = (await fake.wait_for_messages(EN_RIDER.id, 6))[5]
    assert told.text.startswith(f"Your report {second} duplicates report {first}")


async def test_question_answered_by_the_rider_updates_the_card(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    reference = await submit(fake, EN_RIDER, category="Road hazard")
    card = await card_of(fake)
    fake.press_button(MOD, card, card.button("补充信息"))
    prompt = await card_of(fake, 2)
    assert prompt.params["reply_markup"]["force_reply"] is True
    fake.send_message_fields(
        MOD,
        chat_id=MODERATOR_CHAT,
        text="井盖是在主路还是辅路？",
        reply_to_message=prompt.raw,
    )
    question = (await fake.wait_for_messages(EN_RIDER.id, 6))[5]
    assert question.text.startswith(
        f"A moderator has a question about report {reference}: 井盖是在主路还是辅路？"
    )
    await fake.wait_for(lambda: "等待骑手补充信息" in card.text)
    # The rider swipes to reply to the question, as people do.
    fake.send_message_fields(
        EN_RIDER, text="Main road, <i>north</i> side", reply_to_message=question.raw
    )
    thanks = (await fake.wait_for_messages(EN_RIDER.id, 7))[6]
    assert thanks.text.startswith("Got it: passed on to the moderators")
    await fake.wait_for(lambda: "💬 骑手回复：Main road, <i>north</i> side" in card.text)
    assert "⏳ 待审核" in card.text
    assert card.button("✅ 50")
    # An edit notifies nobody: the answer also arrives as a new message replying to the card.
    await fake.wait_for(
        lambda: any(m.text.startswith("💬 骑手回复了") for m in fake.sent_to(MODERATOR_CHAT))
    )
    arrived = next(m for m in fake.sent_to(MODERATOR_CHAT) if m.text.startswith("💬 骑手回复了"))
    assert arrived.text == f"💬 骑手回复了{reference}，回复内容在卡片上。"
    assert arrived.params["reply_parameters"]["message_id"] == card.message_id
    # A photo just after the words (not swiped as a reply) goes with the answer.
    fake.send_photo(EN_RIDER, images.jpeg(images.picture(7)))
    added = (await fake.wait_for_messages(EN_RIDER.id, 8))[7]
    assert added.text.startswith(f"📷 The photo was added to report {reference}")
    await fake.wait_for(lambda: "📷 全部2张" in str(card.reply_markup))
    await fake.wait_for(
        lambda: any(m.text.startswith("📷 骑手为") for m in fake.sent_to(MODERATOR_CHAT))
    )
    photo_note = next(m for m in fake.sent_to(MODERATOR_CHAT) if m.text.startswith("📷 骑手为"))
    assert photo_note.text == f"📷 骑手为{reference}补充了一张照片，在卡片上。"
    assert photo_note.params["reply_parameters"]["message_id"] == card.message_id
    assert await bot.app.bot_data["runtime"].reporting.draft(EN_RIDER.id) is None  # no new report


async def test_non_moderator_press_changes_nothing(bot: RunningBot, fake: FakeTelegram) -> None:
    await submit(fake, RIDER)
    card = await card_of(fake)
    before = len(fake.callback_answers)
    fake.press_button(STRANGER, card, card.button("✅ 200"))
    await fake.wait_for(lambda: len(fake.callback_answers) > before)
    answer = fake.callback_answers[-1]
    assert answer["text"] == "只有审核员可以操作。"
    assert answer["show_alert"] is True
    assert "⏳ 待审核" in card.text
    assert await ledger(bot) == []


async def test_two_moderators_at_once_make_one_decision(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start_bot(moderator_ids=frozenset({MODERATOR, 9003}))
    reference = await submit(fake, RIDER)
    card = await card_of(fake)
    other = TgUser(9003, first_name="审核员乙")
    before = len(fake.callback_answers)
    with fake.held_updates():
        fake.press_button(MOD, card, card.button("✅ 100"))
        fake.press_button(other, card, card.button("✅ 150"))
        fake.press_button(other, card, card.button("✅ 150"))  # and a double tap
    await fake.wait_for(lambda: len(fake.callback_answers) == before + 3)
    texts = answers_after(fake, before)
    assert texts.count("已核实，奖励已记入。") == 1
    assert texts.count("这条线索已处理（核实有效，审核员老王）。") == 2
    assert await ledger(bot) == [(f"reward:{1}", 10000, 20)]
    await bot.settled(fake)  # the rider's notice follows from the outbox
    approvals = [m for m in fake.sent_to(RIDER.id) if m.text.startswith("🎉")]
    assert len(approvals) == 1
    assert reference in approvals[0].text


async def test_stale_card_and_redelivered_press(bot: RunningBot, fake: FakeTelegram) -> None:
    await submit(fake, RIDER)
    card = await card_of(fake)
    before = len(fake.callback_answers)
    press = fake.press_button(MOD, card, card.button("✅ 50"))
    await fake.wait_for(lambda: "✅ 核实有效" in card.text)
    fake.inject(handled_again(press))  # the same press met again after a kill
    fake.press_button(MOD, card.message_id, "rr:1:other", chat_id=MODERATOR_CHAT)  # old buttons
    await fake.wait_for(lambda: len(fake.callback_answers) == before + 3)
    late = answers_after(fake, before)[1:]
    assert late == ["这条线索已处理（核实有效，审核员老王）。"] * 2
    assert await ledger(bot) == [("reward:1", 5000, 15)]


async def test_moderator_cannot_decide_their_own_report(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    await submit(fake, MOD)
    card = await card_of(fake)
    before = len(fake.callback_answers)
    fake.press_button(MOD, card, card.button("✅ 50"))
    await fake.wait_for(lambda: len(fake.callback_answers) == before + 1)
    assert answers_after(fake, before) == ["不能审核自己提交的线索。"]
    assert await ledger(bot) == []


async def test_200_yuan_needs_a_second_moderator_and_every_copy_shows_it(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    """老王 proposes 200 from their private /queue; 小李 confirms in the group: the card
    and 老王's private copy both show the decision, with the people named, not numbered."""
    bot = await start_bot(moderator_ids=frozenset({MODERATOR, 9003}))
    second = TgUser(9003, first_name="小李", username="xiaoli")
    await submit(fake, RIDER)
    card = await card_of(fake)
    proposer = Chat(fake, MOD)
    proposer.text("/queue")
    copy = await proposer.one()
    fake.press_button(MOD, copy, copy.button("✅ 200"))
    await fake.wait_for(lambda: "需另一位审核员确认" in card.text)
    assert "⏳ 审核员老王建议奖励200.00元" in copy.text
    assert await ledger(bot) == []
    before = len(fake.callback_answers)
    fake.press_button(MOD, card, card.button("确认奖励"))
    await fake.wait_for(lambda: len(fake.callback_answers) == before + 1)
    assert answers_after(fake, before) == ["需要另一位审核员确认。"]
    fake.press_button(second, card, card.button("确认奖励"))
    await fake.wait_for(lambda: "✅ 核实有效 · 200.00元 · 30积分 · 审核员小李" in card.text)
    await fake.wait_for(lambda: "审核员小李" in copy.text)  # the proposer's copy follows
    assert copy.buttons() == []
    assert await ledger(bot) == [("reward:1", 20000, 30)]
    fake.send_text(BOSS, "/mods")
    listed = (await fake.wait_for_messages(BOSS.id, 1))[-1].text
    assert "老王 (9002)" in listed
    assert "小李 @xiaoli (9003)" in listed


async def test_digest_escalation_and_breach(bot: RunningBot, fake: FakeTelegram) -> None:
    reference = await submit(fake, EN_RIDER, category="Road hazard")
    await card_of(fake)
    service = bot.app.bot_data["runtime"].moderation
    queue = bot.app.job_queue
    assert queue is not None
    now = datetime.now(UTC)

    async def at(hours: float) -> None:
        """Run the promise job as if `hours` had passed, and wait until it has finished."""
        service.clock = lambda: now + timedelta(hours=hours)
        finished = asyncio.Event()

        async def check(context: Any) -> None:
            await jobs.promise_job(context)
            finished.set()

        queue.run_once(check, 0)
        await asyncio.wait_for(finished.wait(), timeout=10)

    await at(1)
    assert len(fake.sent_to(MODERATOR_CHAT)) == 1  # only the card: nothing has waited 2 h
    await at(2.5)
    digest = await card_of(fake, 2)
    assert digest.text.startswith("⏰ 有1条线索等待超过2小时：")
    assert reference in digest.text
    await at(21)
    escalation = (await fake.wait_for_messages(ADMIN, 1))[0]
    assert escalation.text.startswith("🚨")
    assert reference in escalation.text
    await at(24.5)
    breach = (await fake.wait_for_messages(EN_RIDER.id, 6))[5]
    assert breach.text.startswith(f"Sorry: review of your report {reference} is taking longer")
    await at(25)
    assert len(fake.sent_to(MODERATOR_CHAT)) == 2  # no repeated digest without news
    assert len(fake.sent_to(ADMIN)) == 1


async def test_queue_in_private_chat_one_card_at_a_time(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    first = await submit(fake, RIDER, seed=1)
    second = await submit(fake, EN_RIDER, seed=2, category="Road hazard")
    fake.send_text(MOD, "/queue")
    card = (await fake.wait_for_messages(MOD.id, 1))[0]
    assert card.text.startswith(f"🆕 {first}")
    fake.press_button(MOD, card, card.button("✅ 50"))
    following = (await fake.wait_for_messages(MOD.id, 2))[1]
    assert following.text.startswith(f"🆕 {second}")
    group_card = await card_of(fake, 1)
    await fake.wait_for(lambda: "✅ 核实有效" in group_card.text)


async def test_sixty_reports_reach_the_group_in_order_within_the_cap(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    # Telegram's 20 a minute into a group, scaled to 20 every 3 seconds to keep the test short.
    limits = RateLimits(group_window_seconds=3.0)
    await start_bot(rate_limits=limits)
    fake.enforce_caps(per_second=30, per_group=20, group_window=3.0)
    riders = [TgUser(700 + i, language_code="en") for i in range(60)]
    chats = [Chat(fake, rider) for rider in riders]
    for chat in chats:
        await chat.agree()
    for index, chat in enumerate(chats):
        chat.photo(images.jpeg(images.picture(100 + index)))
        await chat.one()
        chat.location(*BEIJING)
        await chat.categorise(await chat.one(), "Road hazard")
    summaries = [fake.sent_to(rider.id)[-1] for rider in riders]
    with fake.held_updates():
        for rider, summary in zip(riders, summaries, strict=True):
            fake.press_button(rider, summary, summary.button("Submit"))
    references = [reference_in(await chat.one()) for chat in chats]
    cards = await fake.wait_for_messages(MODERATOR_CHAT, 60, timeout=60)
    card_references = [card.text.split(" · ")[0].removeprefix("🆕 ") for card in cards]
    # All of them, each once, in the order they were submitted (an occasional 429 from
    # clock jitter at this compressed scale is waited out without reordering).
    assert card_references == sorted(references)


def test_caption_never_exceeds_telegrams_limit() -> None:
    from locales import Texts
    from services.moderation import Card
    from settings import Settings

    card = Card(
        report_id=1,
        reference="R-20261127-0001",
        status="pending",
        category="other",
        submitted_at=datetime.now(UTC),
        deadline_at=datetime.now(UTC),
        latitude=1.0,
        longitude=2.0,
        photo_distance_m=3.0,
        description="长" * 500,
        track=(1, 2, 3),
        photo_count=5,
        not_fresh=True,
        mismatch=True,
        lookalikes=("R-20261127-0002",) * 5,
        nearby=tuple((i, f"R-20261127-{i:04d}") for i in range(10)),
        rider_telegram_id=1,
        rider_language=None,
        decided_by=None,
        decided_at=None,
        reward_fen=None,
        points=None,
        reject_reason=None,
        duplicate_reference=None,
        question="问" * 200,
        answer="答" * 300,
        proposed_fen=None,
        proposed_by=None,
        card_chat_id=None,
        card_message_id=None,
    )
    text = CardView(Texts(), Settings(bot_token="1:x"), "zh").caption(card)
    assert len(text) <= 1024
    assert text.endswith("…")
    # The rider's words come before a second map link: Amap stays, OpenStreetMap goes.
    assert "uri.amap.com/marker?position=2.00000,1.00000&coordinate=wgs84" in text
    assert "openstreetmap" not in text
    short = CardView(Texts(), Settings(bot_token="1:x"), "zh").caption(
        dataclasses.replace(card, description="井盖")
    )
    assert "openstreetmap" in short
    assert short.endswith("📝 井盖")
    assert dataclasses.replace(card, description=None).description is None


def test_every_ask_prompt_carries_the_mark_its_reply_filter_looks_for() -> None:
    from locales import LANGUAGES, Texts

    texts = Texts()
    for language in LANGUAGES:
        prompt = texts.get(language, "moderation.ask_prompt", reference="R-20261127-0001")
        assert prompt.startswith(review.ASK_MARK)


async def test_admin_adds_and_removes_a_moderator(bot: RunningBot, fake: FakeTelegram) -> None:
    newcomer = TgUser(9100, first_name="小周")
    await submit(fake, RIDER)
    card = await card_of(fake)
    fake.send_text(newcomer, "/mods add 9100")  # not an admin
    assert (await fake.wait_for_messages(newcomer.id, 1))[0].text == "只有管理员可以使用这个命令。"
    fake.send_text(BOSS, "/mods add 9100")
    fake.send_text(BOSS, "/mods")
    added, listing = await fake.wait_for_messages(BOSS.id, 2)
    assert added.text == "已添加审核员9100。"
    assert listing.text.endswith("审核员（添加）：9100")
    fake.send_text(BOSS, "/mods remove 9100")
    await fake.wait_for_messages(BOSS.id, 3)
    before = len(fake.callback_answers)
    fake.press_button(newcomer, card, card.button("✅ 50"))  # removed again: refused
    await fake.wait_for(lambda: len(fake.callback_answers) > before)
    assert answers_after(fake, before) == ["只有审核员可以操作。"]
    fake.send_text(BOSS, "/mods add 9100")
    await fake.wait_for_messages(BOSS.id, 4)
    fake.press_button(newcomer, card, card.button("✅ 50"))
    await fake.wait_for(lambda: "审核员小周" in card.text)
    assert await ledger(bot) == [("reward:1", 5000, 15)]


async def run_promise_job(bot: RunningBot, fake: FakeTelegram, at: datetime) -> None:
    """Run the promise job as if it were `at`, and wait until its notices are out."""
    bot.app.bot_data["runtime"].clock.source = lambda: at
    await bot.run_job(fake, jobs.promise_job)


async def test_unanswered_question_is_reminded_once_then_returns_to_the_moderators(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    reference = await submit(fake, EN_RIDER, category="Road hazard")
    card = await card_of(fake)
    fake.press_button(MOD, card, card.button("补充信息"))
    prompt = await card_of(fake, 2)
    fake.send_message_fields(
        MOD, chat_id=MODERATOR_CHAT, text="Which side of the road?", reply_to_message=prompt.raw
    )
    await fake.wait_for_messages(EN_RIDER.id, 6)  # the question
    await fake.wait_for(lambda: "等待骑手补充信息" in card.text)
    now = datetime.now(UTC)
    await run_promise_job(bot, fake, now + timedelta(hours=3))
    assert len(fake.sent_to(EN_RIDER.id)) == 6  # too early for a reminder
    await run_promise_job(bot, fake, now + timedelta(hours=7))
    reminder = fake.sent_to(EN_RIDER.id)[6]
    assert reminder.text.startswith(
        f"Reminder: a moderator is still waiting for your answer about report {reference}"
    )
    assert "Which side of the road?" in reminder.text
    await run_promise_job(bot, fake, now + timedelta(hours=8))
    assert len(fake.sent_to(EN_RIDER.id)) == 7  # reminded once
    await run_promise_job(bot, fake, now + timedelta(hours=24.5))
    expired = fake.sent_to(EN_RIDER.id)[7]
    assert expired.text.startswith(f"No answer about report {reference} came within 24 hours")
    await fake.wait_for(lambda: "⏳ 待审核" in card.text)
    assert card.button("✅ 50")  # the moderators decide on what they have


async def test_a_digest_of_hundreds_is_summarised_not_dropped(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    runtime = bot.app.bot_data["runtime"]
    now = int(datetime.now(UTC).timestamp())
    async with runtime.db.transaction() as conn:
        await conn.execute("INSERT INTO users (telegram_id, created_at) VALUES (777, ?)", (now,))
        for number in range(1, 251):
            await conn.execute(
                "INSERT INTO reports (rider_id, status, reference, submitted_at, deadline_at, "
                "created_at, updated_at, card_message_id) "
                "VALUES (1, 'pending', ?, ?, ?, ?, ?, 0)",
                (f"R-20261127-{number:04d}", now, now + 86400, now, now),
            )
    await run_promise_job(bot, fake, datetime.now(UTC) + timedelta(hours=3))
    digest = fake.sent_to(MODERATOR_CHAT)
    text = "\n".join(message.text for message in digest)
    assert all(len(message.text) <= 4096 for message in digest)
    assert text.startswith("⏰ 有250条线索等待超过2小时：")
    assert "R-20261127-0001" in text
    assert "R-20261127-0100" in text
    assert "……另有150条，请用 /queue 逐条处理。" in text


async def test_a_removed_moderators_proposal_no_longer_counts(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    added = TgUser(9004, first_name="临时审核员")
    fake.send_text(BOSS, f"/mods add {added.id}")
    await fake.wait_for_messages(BOSS.id, 1)
    await submit(fake, RIDER)
    card = await card_of(fake)
    fake.press_button(added, card, card.button("✅ 200"))
    await fake.wait_for(lambda: "需另一位审核员确认" in card.text)
    fake.send_text(BOSS, f"/mods remove {added.id}")
    await fake.wait_for_messages(BOSS.id, 2)
    await fake.wait_for(lambda: "需另一位审核员确认" not in card.text)
    assert card.button("✅ 200")  # the tiers are back: the amount is chosen again
    fake.press_button(MOD, card, card.button("✅ 50"))
    await fake.wait_for(lambda: "✅ 核实有效" in card.text)
    assert await ledger(bot) == [("reward:1", 5000, 15)]


async def test_the_card_sender_survives_an_unexpected_error(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    service = bot.app.bot_data["runtime"].moderation
    real = service.cards_to_send
    failures: list[int] = []

    async def fails_once(limit: int = 20) -> list[int]:
        if not failures:
            failures.append(1)
            raise RuntimeError("a database hiccup")
        found: list[int] = await real(limit)
        return found

    service.cards_to_send = fails_once
    reference = await submit(fake, RIDER)
    card = await card_of(fake)
    assert failures == [1]
    assert card.text.startswith(f"🆕 {reference}")
