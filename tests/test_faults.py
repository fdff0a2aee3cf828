"""Faults from Telegram: 429, 500, 502 and timeouts on sends, edits, getFile and downloads.
Nothing a rider submitted is lost, no decision is applied twice, and a notification that
could not be delivered is kept in the outbox and delivered later, once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from tests import images
from tests.conftest import MODERATOR, MODERATOR_CHAT, RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import BEIJING, Chat, handled_again, reference_in

MOD = TgUser(MODERATOR)


async def ledger_keys(bot: RunningBot) -> list[str]:
    rows = await bot.app.bot_data["runtime"].db.fetchall("SELECT idempotency_key FROM ledger")
    return [row[0] for row in rows]


async def test_undeliverable_decision_reaches_the_rider_later_once(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Chat(fake, TgUser(951, language_code="en"))
    await rider.agree()
    reference = reference_in(await rider.report(category="Road hazard"))
    (card,) = await fake.wait_for_messages(MODERATOR_CHAT, 1)
    # Telegram is down for this rider: every attempt (first try and its retries) fails.
    fake.fail_next("sendMessage", status=500, times=4, chat_id=rider.user.id)
    fake.press_button(MOD, card, card.button("✅ 50"))
    await fake.wait_for(lambda: "✅" in card.text.splitlines()[-1])
    await fake.wait_for(lambda: len(fake.calls_to("sendMessage")) >= 4)
    assert len(fake.sent_to(rider.user.id)) == rider.seen  # nothing arrived yet
    runtime = bot.app.bot_data["runtime"]
    for _ in range(200):  # the failed attempt is recorded, the notice waits for its pause
        if await runtime.db.fetchall("SELECT id FROM outbox WHERE attempts = 1"):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the failed notice was not kept for later")
    runtime.clock.source = lambda: datetime.now(UTC) + timedelta(minutes=2)  # the pause is over
    runtime.outbox.wake.set()
    told = await rider.one()
    assert told.text.startswith(f"🎉 Your report {reference} is verified!")
    # Delivered and settled: no later round can send it again.
    assert await runtime.outbox.due() == []
    (row,) = await runtime.db.fetchall(
        "SELECT sent_at, gave_up_at FROM outbox WHERE message = 'rider.approved'"
    )
    assert row["sent_at"] is not None
    assert row["gave_up_at"] is None
    approvals = [m for m in fake.sent_to(rider.user.id) if m.text.startswith("🎉")]
    assert len(approvals) == 1
    assert await ledger_keys(bot) == ["reward:1"]


async def test_429_and_5xx_on_card_and_edit_make_one_decision(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Chat(fake, TgUser(952))
    await rider.agree()
    fake.fail_next("sendPhoto", status=429, retry_after=1)
    fake.fail_next("sendPhoto", status=502)
    await rider.report()
    (card,) = await fake.wait_for_messages(MODERATOR_CHAT, 1)
    assert [c.status for c in fake.calls_to("sendPhoto")] == [429, 502, 200]
    fake.fail_next("editMessageCaption", status=500, times=2)
    fake.fail_next("answerCallbackQuery", status=429, retry_after=1)
    press = fake.press_button(MOD, card, card.button("✅ 100"))
    await fake.wait_for(lambda: "✅ 核实有效" in card.text, timeout=20)
    fake.inject(handled_again(press))  # the same press met again after a kill
    await fake.wait_for(lambda: len([a for a in fake.callback_answers if a.get("text")]) >= 2)
    assert await ledger_keys(bot) == ["reward:1"]
    approvals = [m for m in fake.sent_to(rider.user.id) if m.text.startswith("🎉")]
    assert len(approvals) == 1


async def test_getfile_429_and_download_502_lose_no_photo(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Chat(fake, TgUser(953, language_code="en"))
    await rider.agree()
    fake.fail_next("getFile", status=429, retry_after=1)
    fake.fail_downloads(times=2, status=502)
    rider.photo(images.jpeg(images.picture(3)))
    assert "1/5 photos received" in (await rider.one()).text
    rider.location(*BEIJING)
    assert "What kind of hazard" in (await rider.one()).text


async def test_a_timed_out_confirmation_loses_no_report(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Chat(fake, TgUser(954, language_code="en"))
    await rider.agree()
    rider.photo()
    await rider.one()
    rider.location(*BEIJING)
    summary = await rider.categorise(await rider.one(), "Road hazard")
    # Telegram takes the confirmation but answers too late: the client times out.
    fake.fail_next("sendMessage", status=200, delay=6.0, chat_id=rider.user.id)
    rider.press(summary, "Submit")
    await fake.wait_for(lambda: bool(bot.errors), timeout=20)
    bot.errors.clear()  # the timeout is reported to the error handler, as it should be
    rider.text("/my")
    await fake.wait_for(
        lambda: any(m.text.startswith("Your latest") for m in fake.sent_to(rider.user.id))
    )
    listing = next(m for m in fake.sent_to(rider.user.id) if m.text.startswith("Your latest"))
    assert listing.text.startswith("Your latest reports:\nR-")
    assert "waiting for review" in listing.text


async def test_a_card_whose_send_timed_out_is_sent_again_and_says_so(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Chat(fake, TgUser(954, language_code="en"))
    await rider.agree()
    # Telegram takes the card but its answer never comes back in time: the bot cannot know.
    fake.fail_next("sendPhoto", status=200, delay=8, chat_id=MODERATOR_CHAT)
    reference = reference_in(await rider.report())
    first, second = await fake.wait_for_messages(MODERATOR_CHAT, 2, timeout=40)
    assert reference in first.text
    assert not first.text.startswith("↻")
    assert second.text.startswith("↻ 再次发送")
    assert reference in second.text
    # The earlier copy's buttons work too; both copies then show the decision, made once.
    late = second.button("✅ 100")
    fake.press_button(MOD, first, first.button("✅ 50"))
    for copy in (first, second):
        await fake.wait_for(lambda: "✅ 核实有效" in copy.text.splitlines()[-1])  # noqa: B023
    assert second.text.startswith("↻ 再次发送")  # the decision did not wipe the mark
    answered = len(fake.callback_answers)
    fake.press_button(MOD, second, late)
    await fake.wait_for(lambda: len(fake.callback_answers) > answered)
    assert fake.callback_answers[-1]["text"].startswith("这条线索已处理")
    assert await ledger_keys(bot) == ["reward:1"]


async def test_a_card_telegram_refused_is_sent_again_without_a_warning(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Chat(fake, TgUser(955, language_code="en"))
    await rider.agree()
    fake.fail_next("sendPhoto", status=429, retry_after=1)
    fake.fail_next("sendPhoto", status=500)
    await rider.report()
    (card,) = await fake.wait_for_messages(MODERATOR_CHAT, 1, timeout=30)
    assert [c.status for c in fake.calls_to("sendPhoto")] == [429, 500, 200]
    assert not card.text.startswith("↻")


def test_which_failed_sends_may_have_reached_the_chat() -> None:
    from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut

    from handlers.infra.transport import sent_maybe

    assert sent_maybe(TimedOut())
    assert sent_maybe(NetworkError("httpx.ReadError: connection reset"))
    assert sent_maybe(NetworkError("httpx.RemoteProtocolError: peer closed connection"))
    assert not sent_maybe(NetworkError("httpx.ConnectError: connection refused"))
    assert not sent_maybe(NetworkError("Bad Gateway"))  # answered with an error
    assert not sent_maybe(BadRequest("Bad Request: chat not found"))
    assert not sent_maybe(RetryAfter(3))
