"""SIGKILL the real `python bot.py` at random moments during payout batches, many times;
after a final clean run the audit is clean and every rider was paid exactly what they earned.
"""

from __future__ import annotations

import asyncio
import random
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.triggers.cron import CronTrigger

from services import ledger
from services.audit import audit
from storage.db import Database
from tests import engines
from tests.conftest import ADMIN, BotProcess, database_url
from tests.fakegram import FakeTelegram, TgUser
from tests.money_helpers import record_approval, seed_weeks

RIDERS = 150
SCHEDULED_KILLS = 20
ADHOC_KILLS = 12
BUILD_KILLS = 6  # ad hoc rounds killed the moment a batch is seen half built
BOSS = TgUser(ADMIN, language_code="en")
OPEN_BATCHES = "SELECT COUNT(*) FROM payout_batches WHERE status = 'open'"


def last_two_mondays() -> list[int]:
    """The two latest closed periods' ends of the default schedule (Monday 10:00 Shanghai)."""
    trigger = CronTrigger.from_crontab("0 10 * * mon", timezone="Asia/Shanghai")
    now = datetime.now(UTC)
    fires: list[int] = []
    fire = trigger.get_next_fire_time(None, now - timedelta(days=15))
    while fire is not None and fire <= now:
        fires.append(int(fire.timestamp()))
        fire = trigger.get_next_fire_time(None, fire + timedelta(seconds=1))
    return fires[-2:]


async def credit_more(path: Path, round_number: int) -> None:
    """New approved rewards for some riders, credited now (while the bot is down)."""
    db = Database(engines.database_for(path))
    await db.open()
    now = int(datetime.now(UTC).timestamp())
    async with db.transaction() as conn:
        for rider in range(1 + round_number % 7, RIDERS + 1, 7):
            cursor = await conn.execute(
                "INSERT INTO reports (reference, rider_id, status, created_at, updated_at) "
                "VALUES (?, ?, 'approved', ?, ?)",
                (f"R-X{round_number}-{rider}", rider, now, now),
            )
            assert cursor.lastrowid is not None
            await record_approval(conn, cursor.lastrowid, 5_000, 15, now)
            await ledger.credit_reward(
                conn,
                report_id=cursor.lastrowid,
                rider_id=rider,
                amount_fen=5_000,
                points=15,
                now=now,
            )
    await db.close()


async def killed_after(bot: BotProcess, seconds: float, path: Path, tally: dict[str, int]) -> None:
    """SIGKILL after `seconds`, and note what the kill interrupted (read from the database)."""
    await asyncio.sleep(seconds)
    assert await bot.stop(signal.SIGKILL) == -signal.SIGKILL
    (open_batches,) = engines.fetchone(
        path, "SELECT COUNT(*) FROM payout_batches WHERE status = 'open'"
    )
    (unannounced,) = engines.fetchone(
        path, "SELECT COUNT(*) FROM payout_batches WHERE announced_at IS NULL AND line_count > 0"
    )
    moment = "mid-build" if open_batches else "mid-announce" if unannounced else "elsewhere"
    tally[moment] = tally.get(moment, 0) + 1


async def wait_until(path: Path, sql: str, seconds: float = 60) -> None:
    """Until `sql` (one boolean) holds in the bot's database."""
    for _ in range(int(seconds * 10)):
        if engines.fetchone(path, sql)[0]:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never true: {sql}")


async def killed_while_building(bot: BotProcess, path: Path, tally: dict[str, int]) -> None:
    """SIGKILL the moment a batch is seen open (its lines written, its files not yet): the
    window is tens of milliseconds, so watch for it rather than guess a delay."""
    async with engines.watching(path) as fetchone:
        for _ in range(20_000):
            (building,) = await fetchone(OPEN_BATCHES)
            if building:
                break
            await asyncio.sleep(0.001)
    await killed_after(bot, 0, path, tally)


async def test_sigkill_during_payouts_pays_everyone_exactly_once(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    path = tmp_path / "bot.db"
    await seed_weeks(path, RIDERS, last_two_mondays())
    env = {"ADMIN_IDS": str(ADMIN), "DATABASE_URL": database_url(path)}
    chance = random.Random(20261127)
    tally: dict[str, int] = {}
    # The start-up catch-up builds last week's batch and announces it to 100-odd riders.
    for _ in range(SCHEDULED_KILLS):
        # Slow file uploads, so that some kills land inside the announcement.
        fake.fail_next("sendDocument", status=200, delay=chance.uniform(0.2, 1.5), times=2)
        bot = BotProcess(fake, tmp_path, **env)
        await bot.start()
        await killed_after(bot, chance.uniform(0.5, 3.0), path, tally)
    # Ad hoc batches with new rewards each round, /payout sent as soon as the bot polls.
    for round_number in range(ADHOC_KILLS):
        await credit_more(path, round_number)
        bot = BotProcess(fake, tmp_path, **env)
        await bot.start()
        polls = len(fake.calls_to("getUpdates"))
        await fake.wait_for(lambda: len(fake.calls_to("getUpdates")) > polls, timeout=30)  # noqa: B023
        fake.send_text(BOSS, "/payout")
        await killed_after(bot, chance.uniform(0.05, 3.0), path, tally)
    # Ad hoc batches killed inside their build, between writing the lines and the files.
    for round_number in range(ADHOC_KILLS, ADHOC_KILLS + BUILD_KILLS):
        await credit_more(path, round_number)
        bot = BotProcess(fake, tmp_path, **env)
        await bot.start()
        polls = len(fake.calls_to("getUpdates"))
        await fake.wait_for(lambda: len(fake.calls_to("getUpdates")) > polls, timeout=30)  # noqa: B023
        fake.send_text(BOSS, "/payout")
        await killed_while_building(bot, path, tally)
    # Slow uploads were a means to land kills, not faults under test: whichever a kill cut
    # short are not waited for.
    fake.clear_faults()
    # A clean run: finish whatever was interrupted, pay what is left, announce everything.
    bot = BotProcess(fake, tmp_path, **env)
    await bot.start()
    try:
        await fake.wait_for(lambda: bool(fake.calls_to("getUpdates")), timeout=30)
        answered = len(fake.sent_to(ADMIN))
        fake.send_text(BOSS, "/payout")
        await fake.wait_for(lambda: len(fake.sent_to(ADMIN)) > answered, timeout=60)
        for _ in range(600):
            (unannounced,) = engines.fetchone(
                path, "SELECT COUNT(*) FROM payout_batches WHERE announced_at IS NULL"
            )
            if unannounced == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        assert await bot.stop() == 0, bot.log
    # Mark every batch paid, killed once in the middle of it, then pressed again in full.
    presses = [(m, m.button("已发放")) for m in fake.sent_to(ADMIN) if m.buttons()]
    assert presses
    for attempt in range(2):
        bot = BotProcess(fake, tmp_path, **env)
        await bot.start()
        polls = len(fake.calls_to("getUpdates"))
        await fake.wait_for(lambda: len(fake.calls_to("getUpdates")) > polls, timeout=30)  # noqa: B023
        if attempt == 0:  # a burst of presses (fewer than a user's queue cap), then the kill
            for file, mark_paid in presses[:10]:
                fake.press_button(BOSS, file, mark_paid)
            await killed_after(bot, chance.uniform(0.1, 0.5), path, tally)
            continue
        for file, mark_paid in presses:  # all of them, the same data again, one at a time
            answered = len(fake.callback_answers)
            fake.press_button(BOSS, file, mark_paid)
            await fake.wait_for(lambda: len(fake.callback_answers) > answered)  # noqa: B023
        try:
            await wait_until(
                path,
                "SELECT COUNT(*) = 0 FROM payout_batches WHERE status <> 'paid' AND line_count > 0",
            )
            await wait_until(
                path,
                "SELECT COUNT(*) = 0 FROM outbox WHERE sent_at IS NULL AND gave_up_at IS NULL",
            )
        finally:
            assert await bot.stop() == 0, bot.log
    print(f"payout crash test: kills by moment {tally}")
    assert sum(tally.values()) >= 30
    assert tally.get("mid-build", 0) >= 1
    assert tally.get("mid-announce", 0) >= 1
    told: dict[int, int] = {}
    paid_told: dict[int, int] = {}
    for message in fake.sent:
        if message.text.startswith("💰"):
            told[message.chat_id] = told.get(message.chat_id, 0) + 1
        if message.text.startswith("✅") and (
            "已发放" in message.text or "been paid" in message.text
        ):
            paid_told[message.chat_id] = paid_told.get(message.chat_id, 0) + 1

    db = Database(engines.database_for(path))
    await db.open()
    try:
        assert await audit(db) == []
        earned: dict[int, int] = dict(
            (row[0], row[1])
            for row in await db.fetchall(
                "SELECT rider_id, SUM(amount_fen) FROM ledger WHERE kind = 'reward' "
                "GROUP BY rider_id"
            )
        )
        paid: dict[int, int] = dict(
            (row[0], row[1])
            for row in await db.fetchall(
                "SELECT rider_id, -SUM(amount_fen) FROM ledger WHERE kind = 'payout' "
                "GROUP BY rider_id"
            )
        )
        assert paid == earned
        lines: dict[int, int] = dict(
            (800_000 + row[0], row[1])
            for row in await db.fetchall(
                "SELECT rider_id, COUNT(*) FROM payout_lines GROUP BY rider_id"
            )
        )
        # Never told twice for one batch (a notice whose delivery a kill interrupted is not
        # sent again: at most once).
        assert all(told[chat] <= lines.get(chat, 0) for chat in told), (told, lines)
        # "Paid" at most once per batch too, however the presses and the kill fell.
        assert all(paid_told[chat] <= lines.get(chat, 0) for chat in paid_told)
        assert sum(paid_told.values()) >= len(lines) // 2  # and it does reach riders
        statuses = await db.fetchall("SELECT status, announced_at, line_count FROM payout_batches")
        assert all(row[1] is not None for row in statuses)  # every batch announced
        # Paid once finance pressed; a batch nobody was due in has no file to press.
        assert all(row[0] == ("paid" if row[2] else "exported") for row in statuses)
    finally:
        await db.close()
