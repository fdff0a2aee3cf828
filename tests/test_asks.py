"""/ask: a rider who is stuck reaches a person, and the person's reply reaches the rider,
without either learning who the other is."""

from __future__ import annotations

from tests.conftest import MODERATOR, MODERATOR_CHAT, RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import Chat

RIDER = TgUser(5301, first_name="小马", username="xiaoma", language_code="zh-hans")
EN_RIDER = TgUser(5302, first_name="Sam", language_code="en")
MOD = TgUser(MODERATOR, first_name="老王")


async def asked_in_moderators_chat(fake: FakeTelegram, count: int) -> str:
    await fake.wait_for(
        lambda: len([m for m in fake.sent_to(MODERATOR_CHAT) if m.text.startswith("📨")]) >= count
    )
    return [m for m in fake.sent_to(MODERATOR_CHAT) if m.text.startswith("📨")][count - 1].text


async def test_a_question_reaches_the_moderators_and_their_reply_the_rider(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Chat(fake, RIDER)
    await rider.agree()
    rider.text("随便问问 <b>奖励</b> 什么时候到？")  # the bot does not understand: it offers /ask
    assert "/ask" in (await rider.one()).text
    rider.text("/ask 奖励什么时候发？<b>急</b>")
    assert (await rider.one()).text == "✅ 你的问题（#1）已转给工作人员，他们回复后我会发给你。"
    asked = await asked_in_moderators_chat(fake, 1)
    assert asked.startswith(
        "📨 骑手提问 #1：奖励什么时候发？<b>急</b>"
    )  # words as typed, no markup
    assert "小马" not in asked
    assert "xiaoma" not in asked
    assert str(RIDER.id) not in asked
    copy = next(m for m in fake.sent_to(MODERATOR_CHAT) if m.text.startswith("📨"))
    fake.send_message_fields(
        MOD, chat_id=MODERATOR_CHAT, text="每周一发放。", reply_to_message=copy.raw
    )
    assert (await rider.one()).text == "💬 工作人员回复了你的问题（#1）：每周一发放。"
    await fake.wait_for(
        lambda: any(m.text.startswith("✅ 已把答复发给") for m in fake.sent_to(MODERATOR_CHAT))
    )
    assert "老王" not in fake.sent_to(RIDER.id)[-1].text  # the rider does not see who answered


async def test_ask_alone_prompts_and_a_flood_is_held_back(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Chat(fake, EN_RIDER)
    await rider.agree()
    rider.text("/ask")
    prompt = await rider.one()
    assert prompt.text.startswith("🙋")
    fake.send_message_fields(
        EN_RIDER, text="Where is the nearest station?", reply_to_message=prompt.raw
    )
    assert (await rider.one()).text.startswith("✅ Your question (#1) went to the staff")
    rider.text("/ask second")
    await rider.one()
    rider.text("/ask third")
    await rider.one()
    rider.text("/ask fourth")
    assert "already have 3 questions waiting" in (await rider.one()).text
    rider.text("/ask " + "x" * 501)
    assert "too long" in (await rider.one()).text
    await bot.settled(fake)
    assert len([m for m in fake.sent_to(MODERATOR_CHAT) if m.text.startswith("📨")]) == 3


async def test_only_moderators_answer_and_a_made_up_number_answers_nobody(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Chat(fake, RIDER)
    await rider.agree()
    rider.text("/ask 你好")
    await rider.one()
    copy_text = await asked_in_moderators_chat(fake, 1)
    copy = next(m for m in fake.sent_to(MODERATOR_CHAT) if m.text == copy_text)
    stranger = TgUser(5399, first_name="路人")
    fake.send_message_fields(
        stranger, chat_id=MODERATOR_CHAT, text="我来答", reply_to_message=copy.raw
    )
    await bot.settled(fake)
    assert all("我来答" not in m.text for m in fake.sent_to(RIDER.id))
    forged = {**copy.raw, "text": "📨 骑手提问 #999：假的"}
    fake.send_message_fields(MOD, chat_id=MODERATOR_CHAT, text="答复", reply_to_message=forged)
    await fake.wait_for(
        lambda: any(m.text == "找不到这个提问。" for m in fake.sent_to(MODERATOR_CHAT))
    )
    assert all("答复" not in m.text for m in fake.sent_to(RIDER.id))
