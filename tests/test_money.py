"""Money end to end: approve -> balance -> payout details -> batch -> file -> paid -> told."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from handlers import money as money_handlers
from tests import images
from tests.conftest import ADMIN, MODERATOR, MODERATOR_CHAT, RunningBot
from tests.fakegram import FakeTelegram, SentMessage, TgUser
from tests.riders import Chat, reference_in

MOD = TgUser(MODERATOR)
BOSS = TgUser(ADMIN, language_code="en")


class Rider(Chat):
    """A rider who reads only what arrives after the last look (`fresh`)."""

    async def fresh(self, count: int = 1) -> list[SentMessage]:
        return await self.next(count)

    async def command(self, text: str) -> SentMessage:
        self.text(text)
        return await self.one()


async def approved_report(fake: FakeTelegram, rider: Rider, seed: int, yuan: int) -> str:
    """The rider reports; a moderator approves at `yuan`. Returns the reference."""
    if rider.seen == 0:
        await rider.agree()
    reference = reference_in(await rider.report(images.jpeg(images.picture(seed))))
    await fake.wait_for(lambda: any(reference in c.text for c in fake.sent_to(MODERATOR_CHAT)))
    card = next(c for c in fake.sent_to(MODERATOR_CHAT) if reference in c.text)
    fake.press_button(MOD, card, card.button(f"✅ {yuan}"))
    approved = await rider.one()
    assert approved.text.startswith("🎉")
    return reference


def move_clock(bot: RunningBot, days: float) -> None:
    later = datetime.now(UTC) + timedelta(days=days)
    bot.app.bot_data["runtime"].clock.source = lambda: later


def days_to_an_hour_after_run(weeks_later: int) -> float:
    """Days from now to an hour after the weekly run (Monday 10:00 in Asia/Shanghai, the
    default schedule) `weeks_later` weeks after the next one, so that exactly
    `weeks_later + 1` runs fall due by then whatever day the tests run on (eight days from
    a Monday morning hold two runs)."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    run = (now + timedelta(days=-now.weekday() % 7)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    if run <= now:
        run += timedelta(days=7)
    return (run + timedelta(weeks=weeks_later, hours=1) - now) / timedelta(days=1)


async def run_payout_job(bot: RunningBot, fake: FakeTelegram) -> None:
    queue = bot.app.job_queue
    assert queue is not None
    calls = len(fake.bot_calls())
    queue.run_once(money_handlers.payout_job, 0)
    await fake.wait_for(lambda: len(fake.bot_calls()) > calls, timeout=10)


async def test_the_whole_chain(bot: RunningBot, fake: FakeTelegram) -> None:
    rider = Rider(fake, TgUser(901, first_name="小刘", language_code="zh-hans"))
    reference = await approved_report(fake, rider, 1, 100)
    ask = await rider.one()
    assert ask.text.startswith("💳 为了给你发放奖励，需要你的收款信息")
    saved = await rider.give_payee("张三丰 +86 138-1234-8000")
    assert saved.text == "收款信息已保存：张** · 138****8000。需要修改时发送 /payee。"
    balance = await rider.command("/balance")
    assert balance.text == "积分：20\n待发放：100.00元\n发放中：0.00元\n已发放：0.00元"

    move_clock(bot, 8)  # past the next Monday 10:00 in Asia/Shanghai
    await run_payout_job(bot, fake)
    xlsx, csv_file = await fake.wait_for_messages(ADMIN, 2)
    assert xlsx.raw["document"]["file_name"].startswith("payout-")
    assert xlsx.text.startswith("发放批次")
    assert "1人，合计100.00元" in xlsx.text
    sheet = load_workbook(io.BytesIO(xlsx.file_bytes or b"")).active
    assert sheet is not None
    rows = [[cell for cell in row] for row in sheet.iter_rows(values_only=True)]
    line = next(row for row in rows if 901 in row or "901" in row)
    assert "张三丰" in line
    assert "13812348000" in line
    assert reference in str(line)
    total = next(row for row in rows if any(str(cell).startswith("合计") for cell in row if cell))
    assert any(str(cell) in ("100.00", "100", "100.0") for cell in total if cell is not None)
    text = (csv_file.file_bytes or b"").decode("utf-8-sig")
    assert any("13812348000" in ",".join(row) for row in csv.reader(io.StringIO(text)))

    on_the_way = await rider.one()
    assert on_the_way.text.startswith("💰 100.00元已进入本期发放批次")
    balance = await rider.command("/balance")
    assert "待发放：0.00元\n发放中：100.00元" in balance.text

    mark_paid = xlsx.button("已发放")
    fake.press_button(BOSS, xlsx, mark_paid)
    paid = await rider.one()
    assert paid.text == "✅ 100.00元已发放，请注意查收。"
    balance = await rider.command("/balance")
    assert balance.text.endswith("发放中：0.00元\n已发放：100.00元")
    assert xlsx.reply_markup is None
    fake.press_button(BOSS, xlsx, mark_paid)  # pressed again, from another admin's copy
    await fake.wait_for(lambda: "already marked" in str(fake.callback_answers[-1].get("text")))
    assert (await rider.command("/history")).text.startswith("最近的奖励明细：")
    fake.send_text(BOSS, "/audit")
    assert (await fake.wait_for_messages(ADMIN, 3))[2].text == "✅ The accounts balance (OK)."


async def test_payout_twice_pays_no_one_twice(bot: RunningBot, fake: FakeTelegram) -> None:
    rider = Rider(fake, TgUser(902, language_code="en"))
    await approved_report(fake, rider, 2, 50)
    await rider.one()  # asked for payout details
    await rider.give_payee("Li Lei li_lei_wx")
    fake.send_text(BOSS, "/payout")
    xlsx, _ = await fake.wait_for_messages(ADMIN, 2)
    assert "1人，合计50.00元" in xlsx.text
    assert (await rider.one()).text.startswith("💰 50.00 yuan is in this period's payout batch")
    fake.send_text(BOSS, "/payout")
    nothing = (await fake.wait_for_messages(ADMIN, 3))[2]
    assert nothing.text.startswith("There is nothing to pay right now (0 riders")
    ledger = await bot.app.bot_data["runtime"].db.fetchall(
        "SELECT kind, amount_fen FROM ledger ORDER BY id"
    )
    assert [tuple(row) for row in ledger] == [("reward", 5000), ("payout", -5000)]


async def test_rider_without_payout_details_is_carried_forward(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Rider(fake, TgUser(903, language_code="en"))
    await approved_report(fake, rider, 3, 150)
    await rider.one()  # asked for payout details; does not answer
    fake.send_text(BOSS, "/payout")
    reminder = await rider.one()
    assert reminder.text.startswith("You have 150.00 yuan of rewards to be paid, but no payout")
    assert (await rider.one()).text.startswith("💳")  # asked again
    nothing = (await fake.wait_for_messages(ADMIN, 1))[0]
    assert nothing.text.startswith("There is nothing to pay right now (1 riders")
    await rider.give_payee("Han Meimei 13900001111")
    fake.send_text(BOSS, "/payout")
    _, xlsx, _ = await fake.wait_for_messages(ADMIN, 3)
    assert "1人，合计150.00元" in xlsx.text


async def test_reversal_before_payment(bot: RunningBot, fake: FakeTelegram) -> None:
    rider = Rider(fake, TgUser(904, language_code="en"))
    reference = await approved_report(fake, rider, 4, 100)
    await rider.one()
    await rider.give_payee("Wang Wu 13700001111")
    fake.send_text(BOSS, f"/reverse {reference} photo was staged")
    done = (await fake.wait_for_messages(ADMIN, 1))[0]
    assert done.text.startswith(f"Reversed the reward of {reference} (100.00 yuan)")
    told = await rider.one()
    assert told.text.startswith(f"Sorry: the reward for your report {reference} (100.00 yuan")
    assert "Reason: photo was staged." in told.text
    fake.send_text(BOSS, "/payout")
    nothing = (await fake.wait_for_messages(ADMIN, 2))[1]
    assert nothing.text.startswith("There is nothing to pay right now")
    fake.send_text(BOSS, f"/reverse {reference} again")
    again = (await fake.wait_for_messages(ADMIN, 3))[2]
    assert again.text.startswith(f"{reference} was reversed before")


async def test_reversal_after_payment_is_netted_in_the_next_batch(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Rider(fake, TgUser(905, language_code="en"))
    first = await approved_report(fake, rider, 5, 100)
    await rider.one()
    await rider.give_payee("Zhao Liu 13600001111")
    fake.send_text(BOSS, "/payout")
    xlsx, _ = await fake.wait_for_messages(ADMIN, 2)
    await rider.one()  # on the way
    fake.press_button(BOSS, xlsx, xlsx.button("已发放"))
    await rider.one()  # paid
    fake.send_text(BOSS, f"/reverse {first} duplicate of an older report")
    told = await rider.one()
    assert "deducted from your next payout" in told.text
    await approved_report(fake, rider, 6, 150)
    fake.send_text(BOSS, "/payout")
    messages = await fake.wait_for_messages(ADMIN, 5)  # file, csv, reversal, file, csv
    assert "1人，合计50.00元" in messages[3].text
    fake.send_text(BOSS, "/audit")
    assert (await fake.wait_for_messages(ADMIN, 6))[5].text == "✅ The accounts balance (OK)."


async def test_missed_runs_are_caught_up(bot: RunningBot, fake: FakeTelegram) -> None:
    rider = Rider(fake, TgUser(906, language_code="en"))
    await approved_report(fake, rider, 7, 50)
    await rider.one()
    await rider.give_payee("Sun Qi 13500001111")
    move_clock(bot, days_to_an_hour_after_run(0))
    await run_payout_job(bot, fake)
    await fake.wait_for_messages(ADMIN, 2)
    assert (await rider.one()).text.startswith("💰 50.00 yuan")
    await approved_report(fake, rider, 8, 100)
    move_clock(bot, days_to_an_hour_after_run(3))  # the bot "was down" for three weekly runs
    await run_payout_job(bot, fake)
    files = await fake.wait_for_messages(ADMIN, 4)
    assert "1人，合计100.00元" in files[2].text
    rows = await bot.app.bot_data["runtime"].db.fetchall(
        "SELECT period_key, total_fen FROM payout_batches WHERE kind = 'scheduled' ORDER BY id"
    )
    totals = [row[1] for row in rows]
    if totals[0] == 0:  # the start-up catch-up may have recorded last week's empty batch first
        totals.pop(0)
    assert totals == [5000, 10000, 0, 0]
    assert len({row[0] for row in rows}) == len(rows)
    await run_payout_job(bot, fake)  # running again changes nothing
    rows_again = await bot.app.bot_data["runtime"].db.fetchall("SELECT id FROM payout_batches")
    assert len(rows_again) == len(rows)


async def test_payout_while_the_job_runs_announces_once(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    """/payout's announcement and the payout job (start-up catch-up, cron) overlap: one claim
    decides, so the admin gets one file and the rider one "on the way"."""
    rider = Rider(fake, TgUser(907, language_code="en"))
    await approved_report(fake, rider, 9, 50)
    await rider.one()  # asked for payout details
    await rider.give_payee("Qian Ba 13400001111")
    fake.fail_next("sendDocument", status=200, delay=1.5)  # slow: the job runs meanwhile
    fake.send_text(BOSS, "/payout")
    await fake.wait_for(lambda: bool(fake.calls_to("sendDocument")))
    queue = bot.app.job_queue
    assert queue is not None
    queue.run_once(money_handlers.payout_job, 0)
    await fake.wait_for_messages(ADMIN, 2)
    assert (await rider.one()).text.startswith("💰 50.00 yuan")
    await asyncio.sleep(2)  # time enough for a second announcement to show
    await bot.settled(fake)
    assert len([m for m in fake.sent_to(ADMIN) if m.raw.get("document")]) == 2  # xlsx + csv
    assert len([m for m in fake.sent_to(907) if m.text.startswith("💰")]) == 1


async def test_riders_held_back_are_named_in_the_caption_and_the_file(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    """Finance sees who was not paid for want of details, and how much, not only a count."""
    paid = Rider(fake, TgUser(931, language_code="en"))
    held = Rider(fake, TgUser(932, language_code="en"))
    await approved_report(fake, paid, 31, 100)
    await paid.one()
    await paid.give_payee("Li Lei 13900001112")
    await approved_report(fake, held, 32, 150)
    await held.one()  # asked for payout details; does not answer
    await bot.settled(fake)
    fake.send_text(BOSS, "/payout")
    xlsx, _ = await fake.wait_for_messages(ADMIN, 2)
    assert "1人，合计100.00元" in xlsx.text
    assert "⏸ 暂缓1人（缺少收款信息，合计150.00元，已提醒补填）：932 150.00元" in xlsx.text
    assert xlsx.file_bytes is not None
    book = load_workbook(io.BytesIO(xlsx.file_bytes))
    sheet = book["暂缓 Held back"]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows == [
        ["Telegram ID", "金额(元) Amount (yuan)", "原因 Reason"],
        ["932", 150, "缺少收款信息 No payout details"],
    ]
    assert "932" not in [c.value for row in book["Payout"].iter_rows() for c in row]
