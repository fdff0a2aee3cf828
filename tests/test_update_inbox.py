"""Updates Telegram delivered are not lost when the bot dies before handling them, and an
update Telegram delivers again is not handled twice (services/inbox.py)."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import pytest

from services.inbox import MAX_REPLAYS, Inbox
from storage.db import Database
from tests import engines, images
from tests.conftest import BotProcess, RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import Chat

RIDER = TgUser(7301, language_code="en")


async def test_an_update_the_killed_bot_took_is_handled_after_the_restart(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    first = BotProcess(fake, tmp_path)
    await first.start()
    rider = Chat(fake, RIDER)
    await rider.agree()
    # The answer to /help hangs (Telegram took it, its reply is slow), so the rider's photo
    # waits behind it, in the bot's memory: the bot polls again meanwhile, which tells Telegram
    # to forget the photo, and is killed before its turn.
    fake.fail_next("sendMessage", status=200, delay=30, chat_id=RIDER.id)
    rider.text("/help")
    await rider.one()
    fake.send_photo(RIDER, images.jpeg(images.picture(4)))
    await fake.wait_for(lambda: fake.pending_updates == 0, timeout=4)  # confirmed by an offset
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert "1/5 photos received" not in fake.last_sent(RIDER.id).text

    second = BotProcess(fake, tmp_path)
    await second.start()
    try:
        # /help was cut short mid-answer, so it is answered again (at least once), then the photo.
        help_again, photo_taken = await rider.next(2)
        assert "/help" in help_again.text or "help" in help_again.text.lower()
        assert "1/5 photos received" in photo_taken.text
        rider.location(39.9, 116.4)
        assert "What kind of hazard" in (await rider.one()).text
    finally:
        assert await second.stop() == 0, second.log
    assert "handling 2 updates an earlier process took and never finished" in second.log
    (photos,) = engines.fetchone(tmp_path / "bot.db", "SELECT COUNT(*) FROM report_photos")
    assert photos == 1
    # Handled: what the rider sent is no longer kept beside the update's id.
    (kept,) = engines.fetchone(
        tmp_path / "bot.db", "SELECT COUNT(*) FROM update_inbox WHERE payload IS NOT NULL"
    )
    assert kept == 0


async def test_an_update_delivered_again_is_not_handled_again(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    rider = Chat(fake, RIDER)
    await rider.agree()
    photo = fake.send_photo(RIDER, images.jpeg(images.picture(5)))
    assert "1/5 photos received" in (await rider.one()).text
    fake.inject(photo)  # Telegram sends it again (as it does when its offset was never confirmed)
    rider.location(39.9, 116.4)
    assert "What kind of hazard" in (await rider.one()).text  # and nothing about the photo
    row = await bot.app.bot_data["runtime"].db.fetchone("SELECT COUNT(*) FROM report_photos")
    assert row[0] == 1


async def test_a_failed_inbox_write_stalls_polling_and_never_stops_it(
    bot: RunningBot, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    rider = Chat(fake, RIDER)
    await rider.agree()
    inbox = bot.app.bot_data["runtime"].inbox
    take = inbox.take
    failures = [sqlite3.OperationalError("database is locked")] * 3

    async def busy_then_take(update_id: int, payload: str) -> bool:
        if failures:  # the database busy longer than its busy timeout, three times over
            raise failures.pop()
        return bool(await take(update_id, payload))

    inbox.take = busy_then_take
    rider.text("/help")
    assert "/report" in (await rider.one()).text  # handled once the database took it
    assert not failures
    assert "polling stalls until the database takes it, retry 3" in caplog.text
    assert "written after 3 failures; polling resumes" in caplog.text
    rider.text("/help")  # the poller lives on
    assert "/report" in (await rider.one()).text


async def test_an_update_that_killed_every_process_is_set_aside_not_replayed_for_ever(
    db: Database,
) -> None:
    inbox = Inbox(db)
    assert await inbox.take(41, '{"update_id": 41}')
    assert await inbox.take(42, '{"update_id": 42}')
    for start in range(MAX_REPLAYS):  # each start replays what the last one never finished
        again, aside = await inbox.unhandled()
        assert [update_id for update_id, _ in again] == ([41, 42] if start == 0 else [41])
        assert aside == []
        if start == 0:
            await inbox.handled(42)  # this one finished on its first replay
    again, aside = await inbox.unhandled()
    assert (again, aside) == ([], [41])
    assert await inbox.unhandled() == ([], [])
    assert not await inbox.take(41, '{"update_id": 41}')  # still known: not handled twice
