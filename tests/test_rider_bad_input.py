"""Bad input from riders: each gets a clear answer in their language and loses nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handlers import jobs
from settings import Programme, ReportRules
from tests import images
from tests.conftest import BotStarter, RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import BEIJING, Chat, handled_again, reference_in, today_prefix

ZH = TgUser(401, first_name="老王", language_code="zh-hans")
EN = TgUser(402, first_name="Bo", language_code="en")


async def draft_photos(bot: RunningBot) -> int:
    row = await bot.app.bot_data["runtime"].db.fetchone(
        "SELECT COUNT(*) FROM report_photos p JOIN reports r ON r.id = p.report_id "
        "WHERE r.status = 'draft'"
    )
    return int(row[0])


async def started(fake: FakeTelegram, user: TgUser) -> Chat:
    """A rider who agreed and has a draft with one photo, waiting for the location."""
    chat = Chat(fake, user)
    await chat.agree()
    chat.photo()
    await chat.one()
    return chat


async def test_files_that_are_not_usable_pictures(bot: RunningBot, fake: FakeTelegram) -> None:
    chat = await started(fake, EN)
    cases = [
        (images.text_file(), "notes.txt", "text/plain", "That file is not a picture."),
        (images.truncated_jpeg(), "broken.jpg", "image/jpeg", "That picture is damaged"),
        (images.png_bomb(20_000, 20_000), "huge.png", "image/png", "That picture is too large"),
        (images.bmp(), "old.bmp", "image/bmp", "Only JPEG, PNG and WEBP pictures"),
        (images.gif(), "funny.gif", "image/gif", "Videos, GIFs and stickers are not accepted"),
    ]
    for data, name, mime, expected in cases:
        fake.send_document(EN, data, file_name=name, mime_type=mime)
        answer = await chat.one()
        assert answer.text.startswith(expected), (name, answer.text)
        assert await draft_photos(bot) == 1
    # The draft carries on as if nothing happened.
    chat.location(*BEIJING)
    assert "What kind of hazard" in (await chat.one()).text


async def test_oversized_file_is_refused_without_downloading(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = await started(fake, ZH)
    fake.send_message_fields(
        ZH,
        document={
            "file_id": "BIG",
            "file_unique_id": "BIG-U",
            "file_name": "raw.jpg",
            "mime_type": "image/jpeg",
            "file_size": 25 * 1024 * 1024,
        },
    )
    answer = await chat.one()
    assert answer.text.startswith("文件太大了")
    assert fake.calls_to("getFile")[-1].params["file_id"] != "BIG"


async def test_video_and_sticker_are_refused(bot: RunningBot, fake: FakeTelegram) -> None:
    chat = await started(fake, ZH)
    fake.send_message_fields(
        ZH,
        video={"file_id": "V", "file_unique_id": "VU", "width": 1, "height": 1, "duration": 3},
    )
    assert (await chat.one()).text.startswith("暂不支持视频")
    assert await draft_photos(bot) == 1


async def test_location_without_a_photo(bot: RunningBot, fake: FakeTelegram) -> None:
    chat = Chat(fake, EN)
    await chat.agree()
    chat.location(*BEIJING)
    assert (await chat.one()).text == "Send a photo of the hazard first, then the location."


async def test_text_where_a_location_or_button_is_expected_is_kept(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = await started(fake, ZH)
    chat.text("就在路口")
    noted = await chat.one()
    assert noted.text.startswith("📝 已记下说明")
    assert "📍 发送位置" in noted.text  # and still asks for the location
    chat.location(*BEIJING)
    await chat.one()
    chat.text("火灾")
    noted = await chat.one()
    assert "📝 说明：就在路口\n火灾" in noted.text
    assert noted.button("火灾隐患")


async def test_words_that_would_make_the_description_too_long_are_refused(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = Chat(fake, EN)
    await chat.agree()
    chat.photo(caption="a" * 490)
    await chat.one()
    chat.text("b" * 10)  # 490 + newline + 10 = 501 > 500
    refused = await chat.one()
    assert refused.text.startswith("That description is too long (at most 500 characters)")
    assert "Description: " + "a" * 490 + "\n" in refused.text
    chat.photo(images.jpeg(images.picture(5)), caption="c" * 10)
    too_long, count = await chat.next(2)  # the photo is kept, its caption is not
    assert too_long.text.startswith("That description is too long")
    assert "2/5 photos received" in count.text
    chat.text("d" * 9)  # exactly 500 once joined
    assert "Description: " + "a" * 490 + "\n" + "d" * 9 in (await chat.one()).text
    description = await bot.app.bot_data["runtime"].db.fetchone("SELECT description FROM reports")
    assert description[0] == "a" * 490 + "\n" + "d" * 9


async def test_text_delivered_twice_is_kept_once(bot: RunningBot, fake: FakeTelegram) -> None:
    chat = await started(fake, EN)
    update = fake.send_text(EN, "Manhole cover missing")
    await chat.one()
    fake.inject(handled_again(update))  # the same update met again after a kill
    again = await chat.one()
    assert again.text.count("Manhole cover missing") == 1
    row = await bot.app.bot_data["runtime"].db.fetchone("SELECT description FROM reports")
    assert row[0] == "Manhole cover missing"


async def test_long_description_is_refused_and_can_be_shortened(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = await started(fake, EN)
    chat.location(*BEIJING)
    categories = await chat.one()
    chat.press(categories, "Road hazard")
    await chat.becomes(categories, "skip:")
    chat.text("x" * 501)
    refused = await chat.one()
    assert refused.text.startswith("That description is too long (at most 500 characters)")
    assert refused.button("Skip")
    chat.text("y" * 500)
    assert "Description: " + "y" * 500 in (await chat.one()).text


async def test_old_buttons_and_double_taps(bot: RunningBot, fake: FakeTelegram) -> None:
    chat = await started(fake, EN)
    chat.location(*BEIJING)
    categories = await chat.one()
    stale = categories.button("Fire risk")  # kept, as a phone shows an old button
    summary = await chat.categorise(categories, "Road hazard")
    with fake.held_updates():
        chat.press(summary, "Submit")
        chat.press(summary, "Submit")
    first, second = await chat.next(2)
    assert first.text.startswith(f"✅ Submitted! Your reference is {today_prefix()}0001.")
    assert second.text.startswith(f"This report is already submitted as {today_prefix()}0001.")
    fake.press_button(chat.user, categories, stale)  # from the finished report
    assert (await chat.one()).text == "This button has expired."
    rows = await bot.app.bot_data["runtime"].db.fetchall("SELECT category FROM reports")
    assert [row[0] for row in rows] == ["road_hazard"]


async def test_updates_delivered_twice_change_nothing(bot: RunningBot, fake: FakeTelegram) -> None:
    chat = Chat(fake, ZH)
    await chat.agree()
    update = fake.send_photo(ZH, images.jpeg())
    await chat.one()
    fake.inject(handled_again(update))  # the same update met again after a kill
    again = await chat.one()
    assert again.text.startswith("这张照片已经在当前线索里了")
    assert await draft_photos(bot) == 1


async def test_daily_cap(start_bot: BotStarter, fake: FakeTelegram) -> None:
    await start_bot(programme=Programme(reports=ReportRules(daily_cap=1)))
    chat = Chat(fake, ZH)
    await chat.agree()
    await chat.report()
    chat.photo(images.jpeg(images.picture(21)))
    assert (await chat.one()).text.startswith("今天已经上报了1条线索，达到每日上限")


async def test_reused_photo_is_refused_without_another_riders_reference(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    first, second = Chat(fake, ZH), Chat(fake, EN)
    await first.agree()
    await second.agree()
    photo = images.jpeg(images.picture(31))
    reference = reference_in(await first.report(photo))
    second.photo(photo)  # same bytes, a new Telegram file, another rider
    refused = await second.one()
    assert refused.text == "This photo was already used in another report. Please take a new one."
    assert reference not in refused.text
    fake.send_photo(EN, images.jpeg(images.picture(32)), file_unique_id=fake_unique_id(fake))
    assert "already used in another report" in (await second.one()).text
    first.photo(photo)  # the rider's own earlier report is named
    assert reference in (await first.one()).text


def fake_unique_id(fake: FakeTelegram) -> str:
    """The file_unique_id of the first photo any rider sent (the stand-in keeps the updates)."""
    first_photo = next(c for c in fake.calls_to("getFile"))
    return str(first_photo.result["file_unique_id"])


async def test_sixth_photo_is_refused(bot: RunningBot, fake: FakeTelegram) -> None:
    chat = await started(fake, EN)
    for seed in range(40, 44):
        chat.photo(images.jpeg(images.picture(seed)))
        await chat.one()
    chat.photo(images.jpeg(images.picture(50)))
    refused = await chat.one()
    assert refused.text.startswith("A report can have at most 5 photos; this one was not added.")
    assert await draft_photos(bot) == 5


async def test_failed_download_is_retried(bot: RunningBot, fake: FakeTelegram) -> None:
    chat = Chat(fake, EN)
    await chat.agree()
    fake.fail_downloads(times=1, status=500)
    fake.fail_next("getFile", status=502)
    chat.photo()
    assert "1/5 photos received" in (await chat.one()).text


async def test_draft_reminder_then_expiry(bot: RunningBot, fake: FakeTelegram) -> None:
    chat = await started(fake, ZH)
    reporting = bot.app.bot_data["runtime"].reporting
    now = datetime.now(UTC)
    reporting.clock = lambda: now + timedelta(hours=21)
    await bot.run_job(fake, jobs.sweep_drafts)
    reminder = await chat.one()
    assert reminder.text.startswith("你有一条线索还没提交，4小时后将自动作废")
    reporting.clock = lambda: now + timedelta(hours=22)
    await bot.run_job(fake, jobs.sweep_drafts)  # before expiry: reminded once only
    assert len(fake.sent_to(ZH.id)) == chat.seen
    reporting.clock = lambda: now + timedelta(hours=24, minutes=1)
    await bot.run_job(fake, jobs.sweep_drafts)
    expired = await chat.one()
    assert expired.text.startswith("你那条未提交的线索已超过24小时")
    chat.location(*BEIJING)
    assert (await chat.one()).text.startswith("请先发一张隐患照片")
