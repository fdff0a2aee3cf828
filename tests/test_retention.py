"""Retention: photos deleted days after a decision, expired drafts purged, counts logged."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from handlers import jobs
from tests import images
from tests.conftest import MODERATOR_CHAT, RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import Chat

MOD = TgUser(9002)


async def photo_evidence(bot: RunningBot) -> list[tuple[str | None, bool]]:
    rows = await bot.app.bot_data["runtime"].db.fetchall(
        "SELECT r.status, p.evidence IS NOT NULL FROM report_photos p "
        "JOIN reports r ON r.id = p.report_id ORDER BY p.id"
    )
    return [(row[0], bool(row[1])) for row in rows]


async def test_photos_go_after_the_retention_period_and_expired_drafts_are_purged(
    bot: RunningBot, fake: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    decided, waiting = Chat(fake, TgUser(801, language_code="en")), Chat(fake, TgUser(802))
    await decided.agree()
    await waiting.agree()
    await decided.report(images.jpeg(images.picture(1)), category="Road hazard")
    await waiting.report(images.jpeg(images.picture(2)))
    (card, _) = await fake.wait_for_messages(MODERATOR_CHAT, 2)
    fake.press_button(MOD, card, card.button("✅ 50"))
    await fake.wait_for(lambda: "✅" in card.text.splitlines()[-1])
    db = bot.app.bot_data["runtime"].db
    async with db.transaction() as conn:  # a draft that expired long ago
        await conn.execute(
            "INSERT INTO reports (rider_id, status, created_at, updated_at) "
            "VALUES (1, 'expired', 0, 0)"
        )
    queue = bot.app.job_queue
    assert queue is not None
    caplog.set_level(logging.INFO, logger="handlers.jobs")
    queue.run_once(jobs.retention, 0)
    await fake.wait_for(lambda: "retention:" in caplog.text)
    assert "0 photos deleted, 1 expired drafts purged" in caplog.text
    assert await photo_evidence(bot) == [("approved", True), ("pending", True)]

    later = datetime.now(UTC) + timedelta(days=91)
    bot.app.bot_data["runtime"].clock.source = lambda: later
    caplog.clear()
    queue.run_once(jobs.retention, 0)
    await fake.wait_for(lambda: "retention:" in caplog.text)
    assert "1 photos deleted, 0 expired drafts purged" in caplog.text
    assert await photo_evidence(bot) == [("approved", False), ("pending", True)]


async def test_case_photos_go_after_the_retention_period(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    runtime = bot.app.bot_data["runtime"]
    now = int(datetime.now(UTC).timestamp())
    old, fresh = now - 91 * 86400, now - 89 * 86400
    async with runtime.db.transaction() as conn:
        for created in (old, fresh):
            await conn.execute(
                "INSERT INTO case_photos (case_id, kind, jpeg, file_id, created_at) "
                "VALUES (1, 'after', ?, 'F', ?)",
                (b"\xff\xd8", created),
            )
    await bot.run_job(fake, jobs.retention)
    rows = await runtime.db.fetchall("SELECT jpeg IS NOT NULL FROM case_photos ORDER BY id")
    assert [bool(row[0]) for row in rows] == [False, True]  # 91 days old gone, 89 kept
