"""Photos cannot exhaust memory: hostile pictures, and photos per rider per hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.outbox import Outbox
from services.refusal import Refused
from services.reporting import Reporting, ReportRefusal
from settings import Programme, ReportRules
from storage import reports as store
from storage.db import Database
from tests import images
from tests.conftest import MODERATOR, MODERATOR_CHAT, BotStarter, RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import BEIJING, Chat

ZH = TgUser(901, first_name="小李", language_code="zh-hans")
EN = TgUser(902, first_name="Ann", language_code="en")


async def draft_photos(bot: RunningBot) -> int:
    row = await bot.app.bot_data["runtime"].db.fetchone(
        "SELECT COUNT(*) FROM report_photos p JOIN reports r ON r.id = p.report_id "
        "WHERE r.status = 'draft'"
    )
    return int(row[0])


async def test_photos_per_hour_count_across_cancelled_drafts(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    bot = await start_bot(programme=Programme(reports=ReportRules(photos_per_hour=7)))
    chat = Chat(fake, EN)
    await chat.agree()
    seeds = iter(range(100, 200))
    for count in (5, 2):  # five photos, /cancel, then more: all count
        for _ in range(count):
            chat.photo(images.jpeg(images.picture(next(seeds))))
            assert "photos received" in (await chat.one()).text
        if count == 5:
            chat.text("/cancel")
            await chat.one()
    downloads = len(fake.calls_to("getFile"))
    chat.photo(images.jpeg(images.picture(next(seeds))))
    refused = await chat.one()
    assert refused.text.startswith("You have sent 7 photos in the last hour")
    assert len(fake.calls_to("getFile")) == downloads  # refused before downloading
    assert await draft_photos(bot) == 2  # the draft carries on
    chat.location(*BEIJING)
    assert "What kind of hazard" in (await chat.one()).text


async def test_photos_answering_a_question_count_too(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    await start_bot(programme=Programme(reports=ReportRules(photos_per_hour=2)))
    chat = Chat(fake, EN)
    await chat.agree()
    await chat.report(category="Road hazard")  # the first photo of the hour
    chat.photo(images.jpeg(images.picture(300)))  # the second, starting a new draft
    assert "1/5 photos received" in (await chat.one()).text
    card = (await fake.wait_for_messages(MODERATOR_CHAT, 1))[0]
    moderator = TgUser(MODERATOR, first_name="审核员")
    fake.press_button(moderator, card, card.button("补充信息"))
    prompt = (await fake.wait_for_messages(MODERATOR_CHAT, 2))[1]
    fake.send_message_fields(
        moderator, chat_id=MODERATOR_CHAT, text="再拍一张近景？", reply_to_message=prompt.raw
    )
    assert "A moderator has a question" in (await chat.one()).text
    downloads = len(fake.calls_to("getFile"))
    chat.photo(images.jpeg(images.picture(301)))  # an answer to the question: the third
    assert (await chat.one()).text.startswith("You have sent 2 photos in the last hour")
    assert len(fake.calls_to("getFile")) == downloads


async def test_hourly_limit_is_a_sliding_hour(db: Database) -> None:
    now = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
    reporting = Reporting(
        db,
        Programme(reports=ReportRules(photos_per_hour=2)),
        ZoneInfo("Asia/Shanghai"),
        Outbox(db),
        clock=lambda: now,
    )
    await reporting.consent(EN.id, "en")
    assert await reporting.take_photo_slot(EN.id) is None
    now += timedelta(minutes=30)
    assert await reporting.take_photo_slot(EN.id) is None
    assert await reporting.take_photo_slot(EN.id) == Refused(
        ReportRefusal.HOURLY_PHOTO_CAP, limit=2
    )
    now += timedelta(minutes=31)  # the first photo is more than an hour old
    assert await reporting.take_photo_slot(EN.id) is None
    assert await reporting.take_photo_slot(EN.id) is not None
    async with db.transaction() as conn:  # another rider has a limit of their own
        await store.record_consent(conn, ZH.id, "zh", 0)
    assert await reporting.take_photo_slot(ZH.id) is None


async def test_hostile_pictures_are_refused_and_the_draft_stays(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = Chat(fake, ZH)
    await chat.agree()
    chat.photo()
    await chat.one()
    cases = [
        (images.png_rgba(7000, 7000), "huge.png", "image/png", "这张图片尺寸过大"),
        (images.tiff((7000, 7000), "1"), "scan.tif", "image/tiff", "只支持 JPEG、PNG、WEBP"),
        (images.large_gif((7000, 7000)), "fake.png", "image/png", "只支持 JPEG、PNG、WEBP"),
        (images.bmp_header(7000, 7000), "old.bmp", "image/bmp", "只支持 JPEG、PNG、WEBP"),
    ]
    for data, name, mime, expected in cases:
        fake.send_document(ZH, data, file_name=name, mime_type=mime)
        answer = await chat.one()
        assert answer.text.startswith(expected), (name, answer.text)
        assert await draft_photos(bot) == 1
