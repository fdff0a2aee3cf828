"""Payout details: two guided steps started from the 💳 message (or /payee), text taken only
while a step is open, shown masked, saved on Confirm (a reply to the older one-message prompt
still works); and the batch files: announced once, copied on request, marked paid once."""

from __future__ import annotations

import csv
import io

from tests import images
from tests.conftest import ADMIN, MODERATOR_CHAT, RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import reference_in
from tests.test_money import BOSS, MOD, Rider, approved_report

GROUP = -100_777


async def payees(bot: RunningBot) -> list[tuple[str, str]]:
    rows = await bot.app.bot_data["runtime"].db.fetchall("SELECT real_name, account FROM payees")
    return [(row[0], row[1]) for row in rows]


async def test_texts_that_are_not_payout_details_are_refused(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Rider(fake, TgUser(911, language_code="zh-hans"))
    await approved_report(fake, rider, 11, 100)
    assert (await rider.one()).text.startswith("💳")
    for text in ("路口事故 请联系 13912345678", "桥下 积水严重请处理", "📷 随手拍"):
        rider.answer_prompt(text)
        refused, asked_again = await rider.next(2)
        assert refused.text.startswith("没有保存：请只发送「姓名 账号」"), text
        assert "\n" not in refused.text
        assert asked_again.text.startswith("第1步（共2步）")
    assert await payees(bot) == []


async def test_text_that_is_no_reply_to_the_prompt_is_never_payout_details(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Rider(fake, TgUser(912, language_code="en"))
    await approved_report(fake, rider, 12, 100)
    await rider.one()  # the 💳 prompt
    rider.text("Zhang San 13912345678")  # typed, not a reply to the prompt
    await rider.one()
    rider.text("📷 随手拍")  # a keyboard label
    await rider.one()
    rider.photo(images.jpeg(images.picture(99)))  # a report, then its description
    await bot.settled(fake)
    rider.seen = len(fake.sent_to(912))
    rider.text("Li Lei 13912345678")
    await bot.settled(fake)
    assert await payees(bot) == []


async def test_payee_reply_and_question_answer_stay_apart(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Rider(fake, TgUser(913, language_code="en"))
    await approved_report(fake, rider, 13, 100)
    await rider.one()  # the 💳 prompt
    reference = reference_in(await rider.report(images.jpeg(images.picture(14))))
    await fake.wait_for(lambda: any(reference in c.text for c in fake.sent_to(MODERATOR_CHAT)))
    card = next(c for c in fake.sent_to(MODERATOR_CHAT) if reference in c.text)
    fake.press_button(MOD, card, card.button("补充信息"))
    await fake.wait_for(lambda: fake.sent_to(MODERATOR_CHAT)[-1].text.startswith("✍️"))
    ask = fake.sent_to(MODERATOR_CHAT)[-1]
    fake.send_message_fields(
        MOD, chat_id=MODERATOR_CHAT, text="Which street?", reply_to_message=ask.raw
    )
    await fake.wait_for(lambda: any("Which street?" in m.text for m in fake.sent_to(913)))
    question = next(m for m in fake.sent_to(913) if "Which street?" in m.text)
    await bot.settled(fake)
    rider.seen = len(fake.sent_to(913))
    rider.answer_prompt("Wang Wu 13712345678")
    check = await rider.one()
    assert check.text.startswith("Please check your payout details: W****** · 137****5678")
    await bot.settled(fake)
    assert all("13712345678" not in m.text for m in fake.sent_to(MODERATOR_CHAT))
    assert all("Wang Wu" not in m.text for m in fake.sent_to(MODERATOR_CHAT))
    assert await payees(bot) == []  # not before Confirm
    fake.send_message_fields(rider.user, text="Li Si 13812345678", reply_to_message=question.raw)
    await fake.wait_for(lambda: "Li Si 13812345678" in card.text)
    assert await payees(bot) == []  # the answer went to the moderators only
    rider.press(check, "✅")
    await fake.wait_for(
        lambda: any(m.text.startswith("Payout details saved") for m in fake.sent_to(913))
    )
    assert await payees(bot) == [("Wang Wu", "13712345678")]


async def test_confirm_once_cancel_and_a_forged_button(bot: RunningBot, fake: FakeTelegram) -> None:
    rider = Rider(fake, TgUser(914, language_code="en"))
    await approved_report(fake, rider, 15, 100)
    await rider.one()
    rider.answer_prompt("Zhang San zhang.san@example.com")
    check = await rider.one()
    confirm = check.button("✅")
    rider.press(check, "✖️")
    assert (await rider.one()).text.startswith("Cancelled")
    fake.press_button(rider.user, check, confirm)  # the stale Confirm
    await fake.wait_for(lambda: "already handled" in str(fake.callback_answers[-1].get("text")))
    assert await payees(bot) == []
    await rider.give_payee("Zhang San zhang.san@example.com")
    assert await payees(bot) == [("Zhang San", "zhang.san@example.com")]
    fake.press_button(rider.user, check, "payok:999")  # forged
    await fake.wait_for(lambda: "already handled" in str(fake.callback_answers[-1].get("text")))
    assert await payees(bot) == [("Zhang San", "zhang.san@example.com")]


async def test_admin_commands_say_nothing_in_a_group(bot: RunningBot, fake: FakeTelegram) -> None:
    rider = Rider(fake, TgUser(915, language_code="en"))
    await approved_report(fake, rider, 16, 100)
    await rider.one()
    await rider.give_payee("Zhou Jiu 13912345670")
    for command in ("/payout", "/audit", "/batches", "/reverse R-1 x"):
        fake.send_text(BOSS, command, chat_id=GROUP)
    await bot.settled(fake)
    assert fake.sent_to(GROUP) == []
    assert fake.sent_to(ADMIN) == []
    # No ad hoc batch was made (the start-up catch-up may have recorded a scheduled one).
    rows = await bot.app.bot_data["runtime"].db.fetchall(
        "SELECT id FROM payout_batches WHERE period_key LIKE 'adhoc-%'"
    )
    assert rows == []


async def test_batches_copy_and_mark_paid_once(bot: RunningBot, fake: FakeTelegram) -> None:
    rider = Rider(fake, TgUser(916, language_code="en"))
    await approved_report(fake, rider, 17, 100)
    await rider.one()
    await rider.give_payee("Wu Shi 13912345671")
    fake.send_text(BOSS, "/payout")
    xlsx, _ = await fake.wait_for_messages(ADMIN, 2)
    key = xlsx.text.removeprefix("发放批次").split("：")[0]
    mark_paid = xlsx.button("已发放")
    fake.press_button(BOSS, xlsx, mark_paid)
    assert (await rider.next(2))[1].text.startswith("✅ 100.00 yuan")
    fake.press_button(BOSS, xlsx, mark_paid)  # pressed again (the button is gone)
    await fake.wait_for(
        lambda: f"already marked paid by {ADMIN}" in str(fake.callback_answers[-1].get("text"))
    )
    fake.send_text(BOSS, "/batches")
    listing = (await fake.wait_for_messages(ADMIN, 3))[2]
    assert f"{key} · paid · 1 riders · 100.00 yuan" in listing.text
    fake.send_text(BOSS, f"/batch {key}")
    copy, copy_csv = (await fake.wait_for_messages(ADMIN, 5))[3:5]
    assert copy.text.startswith("副本（不要重复付款）")
    assert copy.reply_markup is None
    assert copy.file_bytes == xlsx.file_bytes
    await bot.settled(fake)
    assert len([m for m in fake.sent_to(916) if m.text.startswith("✅ 100.00")]) == 1
    assert len([m for m in fake.sent_to(916) if m.text.startswith("💰")]) == 1
    del copy_csv


async def test_finance_file_marks_changed_details(bot: RunningBot, fake: FakeTelegram) -> None:
    rider = Rider(fake, TgUser(917, language_code="en"))
    await approved_report(fake, rider, 18, 100)
    await rider.one()
    await rider.give_payee("Zheng Yi 13912345672")
    fake.send_text(BOSS, "/payout")
    _, first_csv = await fake.wait_for_messages(ADMIN, 2)
    assert "details changed" not in (first_csv.file_bytes or b"").decode("utf-8-sig")
    await rider.one()  # on the way
    rider.text("/payee")
    await rider.next(2)  # current details, the prompt
    await rider.give_payee("Zheng Yi zhengyi_new")
    await approved_report(fake, rider, 19, 50)
    fake.send_text(BOSS, "/payout")
    _, _, _, second_csv = await fake.wait_for_messages(ADMIN, 4)
    rows = list(csv.reader(io.StringIO((second_csv.file_bytes or b"").decode("utf-8-sig"))))
    line = next(row for row in rows if "zhengyi_new" in row)
    assert "details changed on" in line[-1]
    changes = await bot.app.bot_data["runtime"].db.fetchone("SELECT COUNT(*) FROM payee_changes")
    assert changes[0] == 2


async def test_payout_details_in_two_steps_typed_without_a_reply(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    """What riders did and got "没看懂" for: typing the details as plain messages. Now the 💳
    message's button opens the steps, and each typed answer is taken while its step is open."""
    rider = Rider(fake, TgUser(921, language_code="zh-hans"))
    await approved_report(fake, rider, 21, 100)
    ask = await rider.one()
    assert ask.text.startswith("💳")
    assert [label for label, _ in ask.buttons()] == ["✍️ 填写收款信息"]
    rider.press(ask, "✍️")
    assert (await rider.one()).text.startswith("第1步（共2步）：请发送收款人的真实姓名")
    rider.text("路口有坑 快来")  # not a name: the step stays open and says why
    wrong = await rider.one()
    assert wrong.text.startswith("这看起来不像姓名")
    assert "第1步" in wrong.text
    rider.text("张三")
    assert (await rider.one()).text.startswith("第2步（共2步）：请发送收款账号")
    rider.text("hello world")
    assert "第2步" in (await rider.one()).text
    assert await payees(bot) == []
    rider.text("138 1234 8000")
    check = await rider.one()
    assert check.text.startswith("请核对收款信息：张* · 138****8000")
    assert await payees(bot) == []  # nothing before Confirm
    rider.press(check, "✅")
    assert (await rider.one()).text.startswith("收款信息已保存")
    assert await payees(bot) == [("张三", "13812348000")]
    rider.text("李四")  # the steps are over: this is nobody's name
    assert not (await rider.one()).text.startswith("第")
    await bot.settled(fake)
    assert await payees(bot) == [("张三", "13812348000")]


async def test_not_now_closes_the_steps_and_later_text_is_not_taken(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Rider(fake, TgUser(922, language_code="en"))
    await approved_report(fake, rider, 22, 100)
    await rider.one()  # the 💳 message
    step = await rider.command("/payee")
    assert step.text.startswith("Step 1 of 2")
    rider.press(step, "✖️")
    assert (await rider.one()).text.startswith("Cancelled")
    assert step.buttons() == []
    rider.text("Li Lei")
    await rider.one()
    rider.text("13912345678")
    await rider.one()
    await bot.settled(fake)
    assert await payees(bot) == []
    fake.press_button(rider.user, step, "paystop:1")  # pressed again: nothing more happens
    await bot.settled(fake)
    assert await payees(bot) == []
