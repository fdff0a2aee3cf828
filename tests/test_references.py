"""Report references: one counter a day, R-YYYYMMDD-NNNN, that keeps counting past 9,999."""

from __future__ import annotations

import re
import time

from tests import images
from tests.conftest import RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import Chat, today_prefix


async def test_the_ten_thousandth_report_of_a_day_gets_its_own_reference(
    fake: FakeTelegram, bot: RunningBot
) -> None:
    db = bot.app.bot_data["runtime"].db
    now = int(time.time())
    async with db.transaction() as conn:  # 9,999 reports already submitted today
        cursor = await conn.execute(
            "INSERT INTO users (telegram_id, created_at) VALUES (?, ?)", (5001, now)
        )
        await conn.execute(
            "INSERT INTO reports (reference, rider_id, status, created_at, updated_at, "
            "submitted_at) VALUES (?, ?, 'pending', ?, ?, ?)",
            (f"{today_prefix()}9999", cursor.lastrowid, now, now, now),
        )
    chat = Chat(fake, TgUser(5002, language_code="en"))
    await chat.agree()
    references = []
    for seed in (11, 12):
        submitted = await chat.report(photo=images.jpeg(images.picture(seed)))
        found = re.search(r"R-\d{8}-\d+", submitted.text)
        assert found, submitted.text
        references.append(found.group(0))
    assert references == [f"{today_prefix()}10000", f"{today_prefix()}10001"]
