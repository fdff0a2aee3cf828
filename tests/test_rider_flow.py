"""A rider's report end to end: consent, photos, location, category, description, submit."""

from __future__ import annotations

import dataclasses

from services.geo import ServiceArea
from settings import Programme
from tests import images
from tests.conftest import MODERATOR, MODERATOR_CHAT, BotStarter, RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import BEIJING, Chat, photo_with_gps, reference_in, today_prefix

ZH = TgUser(301, first_name="小李", language_code="zh-hans")
EN = TgUser(302, first_name="Ana", language_code="en")


async def reports_in_db(bot: RunningBot) -> list[dict[str, object]]:
    rows = await bot.app.bot_data["runtime"].db.fetchall(
        "SELECT r.reference, r.status, r.category, r.description, r.latitude, r.longitude, "
        "r.location_source, r.photo_distance_m, (SELECT COUNT(*) FROM report_photos p "
        "WHERE p.report_id = r.id) AS photos FROM reports r ORDER BY r.id"
    )
    return [dict(row) for row in rows]


async def test_new_user_sees_privacy_notice_and_nothing_is_stored(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = Chat(fake, ZH)
    chat.text("/start")
    notice = await chat.one()
    assert "隐私说明" in notice.text
    assert "收款信息" in notice.text  # payout details only when a first reward is due
    assert "90天后删除" in notice.text
    assert notice.button("同意")
    assert len(notice.text.splitlines()) <= 10  # one phone screen; the rest behind a button
    chat.press(notice, "完整隐私说明")
    full = await chat.one()
    assert full.text.startswith("隐私说明：")
    assert "账务记录" in full.text  # what stays after /delete
    users = await bot.app.bot_data["runtime"].db.fetchall("SELECT * FROM users")
    assert users == []


async def test_chinese_rider_completes_a_report(bot: RunningBot, fake: FakeTelegram) -> None:
    chat = Chat(fake, ZH)
    thanks = await chat.agree()
    assert thanks.text.startswith("谢谢")
    assert thanks.reply_markup == {
        "keyboard": [[{"text": "📷 随手拍"}, {"text": "🏠 附近驿站"}]],
        "resize_keyboard": True,
        "is_persistent": True,
    }
    chat.photo()
    ask_location = await chat.one()
    assert "1/5" in ask_location.text
    assert ask_location.reply_markup is not None
    assert ask_location.reply_markup["keyboard"][0][0] == {
        "text": "📍 发送位置",
        "request_location": True,
    }
    chat.location(*BEIJING)
    categories = await chat.one()
    assert "哪一类隐患" in categories.text
    assert [text for text, _ in categories.buttons()][:2] == ["道路隐患", "交通事故"]
    chat.press(categories, "火灾隐患")
    ask_description = await chat.becomes(categories, "skip:")  # the same message, changed
    assert "500" in ask_description.text
    chat.text("<b>电线</b> 掉在 *路边* & 冒烟")
    summary = await chat.one()
    assert "说明：<b>电线</b> 掉在 *路边* & 冒烟" in summary.text
    assert "类别：火灾隐患" in summary.text
    assert "位置：39.90870, 116.39750" in summary.text  # no towns file: the coordinates
    assert "parse_mode" not in fake.calls_to("sendMessage")[-1].params
    chat.press(summary, "提交")
    submitted = await chat.one()
    assert submitted.text.startswith(f"✅ 已提交！线索编号{today_prefix()}0001")
    assert "24小时" in submitted.text
    assert await reports_in_db(bot) == [
        {
            "reference": f"{today_prefix()}0001",
            "status": "pending",
            "category": "fire_risk",
            "description": "<b>电线</b> 掉在 *路边* & 冒烟",
            "latitude": BEIJING[0],
            "longitude": BEIJING[1],
            "location_source": "shared",
            "photo_distance_m": None,
            "photos": 1,
        }
    ]


async def test_caption_and_text_typed_early_become_the_description(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = Chat(fake, ZH)
    await chat.agree()
    chat.photo(caption="西门路口井盖缺失，晚上很危险")
    ask_location = await chat.one()
    assert "📝 说明：西门路口井盖缺失，晚上很危险" in ask_location.text
    chat.text("东门菜市场门口电线掉下来了")
    noted = await chat.one()
    assert noted.text.startswith("📝 已记下说明")
    assert "西门路口井盖缺失，晚上很危险\n东门菜市场门口电线掉下来了" in noted.text
    chat.location(*BEIJING)
    await chat.one()
    chat.text("旁边还有个坑")  # typed while the category buttons are showing
    noted = await chat.one()
    assert noted.text.startswith("📝 已记下说明")
    assert noted.button("道路隐患")
    chat.press(noted, "道路隐患")
    # The words are the description already: no "keep" tap, straight to the confirm screen.
    summary = await chat.becomes(noted, "sub:")
    kept = "西门路口井盖缺失，晚上很危险\n东门菜市场门口电线掉下来了\n旁边还有个坑"
    assert f"说明：{kept}" in summary.text
    assert summary.button("修改说明")
    chat.press(summary, "提交")
    reference = reference_in(await chat.one())
    (report,) = await reports_in_db(bot)
    assert report["description"] == kept
    card = (await fake.wait_for_messages(MODERATOR_CHAT, 1))[0]
    assert reference in card.text
    assert f"📝 {kept}" in card.text


async def test_album_caption_and_changing_the_description_in_the_summary(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = Chat(fake, EN)
    await chat.agree()
    with fake.held_updates():
        fake.send_photo(EN, images.jpeg(images.picture(1)), media_group_id="album")
        fake.send_photo(
            EN, images.jpeg(images.picture(2)), media_group_id="album", caption="Wire down"
        )
    ask_location = await chat.one()  # one answer to the album
    assert "2/5 photos received" in ask_location.text
    assert "📝 Description: Wire down" in ask_location.text
    chat.location(*BEIJING)
    categories = await chat.one()
    chat.press(categories, "Fire risk")
    summary = await chat.becomes(categories, "sub:")  # the caption is the description
    assert "Description: Wire down" in summary.text
    chat.text("Sparking")  # typed under the summary: added, and the summary shown again
    summary = await chat.one()
    assert summary.text.startswith("📝 Noted")
    assert "Description: Wire down\nSparking" in summary.text
    chat.press(summary, "Change description")
    ask_description = await chat.becomes(summary, "skip:")
    assert "Wire down\nSparking" in ask_description.text
    assert ask_description.button("Keep")
    chat.text("Wire down by the school gate, sparking")
    summary = await chat.one()
    assert "Description: Wire down by the school gate, sparking" in summary.text
    chat.press(summary, "Submit")
    await chat.one()
    (report,) = await reports_in_db(bot)
    assert report["description"] == "Wire down by the school gate, sparking"


async def test_english_rider_uses_the_photos_own_location(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = Chat(fake, EN)
    await chat.agree()
    fake.send_document(EN, photo_with_gps(*BEIJING), file_name="IMG_0001.jpg")
    ask_location, offer = await chat.next(2)
    assert ask_location.text.startswith("📸 1/5 photos received")
    assert "The photo says where it was taken (39.90870, 116.39750)" in offer.text
    chat.press(offer, "Use the photo's location")
    categories = await chat.becomes(offer, "cat:")
    chat.press(categories, "Road hazard")
    chat.press(await chat.becomes(categories, "skip:"), "Skip")
    summary = await chat.becomes(categories, "sub:")
    assert "Description: (none)" in summary.text
    chat.press(summary, "Submit")
    submitted = await chat.one()
    assert submitted.text.startswith(f"✅ Submitted! Your reference is {today_prefix()}0001.")
    (report,) = await reports_in_db(bot)
    assert report["location_source"] == "photo"
    assert report["photo_distance_m"] == 0.0


async def test_album_of_photos_and_a_far_location_is_flagged(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = Chat(fake, EN)
    await chat.agree()
    with fake.held_updates():
        fake.send_document(EN, photo_with_gps(*BEIJING, seed=1), media_group_id="album")
        for seed in (2, 3):
            fake.send_photo(EN, images.jpeg(images.picture(seed)), media_group_id="album")
    count, offer = await chat.next(2)  # one answer to the album, and the GPS offer
    assert "3/5 photos received" in count.text
    assert offer.button("Use the photo's location")
    chat.location(BEIJING[0] + 0.01, BEIJING[1])  # about 1.1 km north
    categories = await chat.one()
    assert "about 1112 m from where the photo was taken" in categories.text
    (report,) = await reports_in_db(bot)
    assert report["photos"] == 3


async def test_venue_and_live_location_are_accepted(bot: RunningBot, fake: FakeTelegram) -> None:
    chat = Chat(fake, EN)
    await chat.agree()
    chat.photo()
    await chat.one()
    fake.send_venue(EN, *BEIJING, "Gate", "Chang'an Avenue")
    await chat.one()
    (report,) = await reports_in_db(bot)
    assert report["location_source"] == "venue"
    chat.location(*BEIJING, live_period=900)  # changing the location later is allowed
    await chat.one()
    (report,) = await reports_in_db(bot)
    assert report["location_source"] == "live"


async def test_photo_before_consent_is_kept_until_agreed(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = Chat(fake, ZH)
    chat.photo()
    notice = await chat.one()
    assert "隐私说明" in notice.text
    assert await reports_in_db(bot) == []
    chat.press(notice, "同意")
    thanks, ask_location = await chat.next(2)
    assert "刚才那张照片已收到" in thanks.text
    assert "1/5" in ask_location.text


async def test_returning_rider_is_welcomed_back_with_status(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = Chat(fake, ZH)
    await chat.agree()
    await chat.report()
    chat.photo(images.jpeg(images.picture(9)))
    await chat.one()
    chat.text("/start")
    welcome = await chat.one()
    assert welcome.text.startswith("小李，欢迎回来！你已上报1条线索，1条待审核，0条核实有效")
    assert "没提交" in welcome.text


async def test_my_lists_reports_and_cancel_discards_the_draft(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = Chat(fake, EN)
    await chat.agree()
    chat.text("/my")
    assert (await chat.one()).text.startswith("You have not sent any reports yet")
    confirmation = await chat.report(category="Fire risk")
    reference = reference_in(confirmation)
    chat.photo(images.jpeg(images.picture(5)))
    await chat.one()
    chat.text("/cancel")
    assert (await chat.one()).text.startswith("Report discarded.")
    chat.text("/my")
    listing = await chat.one()
    assert listing.text == f"Your latest reports:\n{reference} · Fire risk · waiting for review"
    assert len(await reports_in_db(bot)) == 1


async def test_the_cancel_button_on_the_keyboard_discards(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = Chat(fake, ZH)
    await chat.agree()
    chat.photo()
    await chat.one()
    chat.text("✖️ 取消上报")
    assert (await chat.one()).text.startswith("已放弃这条线索")
    assert await reports_in_db(bot) == []


async def test_references_count_up_through_the_day(bot: RunningBot, fake: FakeTelegram) -> None:
    first, second = Chat(fake, ZH), Chat(fake, EN)
    await first.agree()
    await second.agree()
    one = reference_in(await first.report(images.jpeg(images.picture(11))))
    two = reference_in(await second.report(images.jpeg(images.picture(12)), category="Other"))
    assert (one, two) == (f"{today_prefix()}0001", f"{today_prefix()}0002")


async def test_privacy_and_delete(bot: RunningBot, fake: FakeTelegram) -> None:
    chat = Chat(fake, EN)
    await chat.agree()
    await chat.report()
    chat.text("/privacy")
    assert (await chat.one()).text.startswith("Privacy notice:")
    chat.text("/delete")
    confirm = await chat.one()
    chat.press(confirm, "Keep")
    assert (await chat.one()).text == "OK, nothing was deleted."
    chat.text("/delete")
    confirm = await chat.one()
    chat.press(confirm, "Yes, delete")
    assert (await chat.one()).text.startswith("Your personal data and photos have been deleted.")
    db = bot.app.bot_data["runtime"].db
    assert await db.fetchall("SELECT * FROM report_photos") == []
    (user,) = await db.fetchall("SELECT telegram_id, erased_at FROM users")
    assert user["telegram_id"] is None
    assert user["erased_at"] is not None
    (report,) = await reports_in_db(bot)
    assert report["status"] == "withdrawn"
    assert report["latitude"] is None


async def test_draft_survives_a_restart_of_the_application(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    first = await start_bot()
    chat = Chat(fake, ZH)
    await chat.agree()
    chat.photo()
    await chat.one()
    chat.location(*BEIJING)
    categories = await chat.one()
    await first.stop()
    second = await start_bot()
    chat.press(categories, "道路隐患")  # a button from before the restart still works
    chat.press(await chat.becomes(categories, "skip:"), "跳过")
    chat.press(await chat.becomes(categories, "sub:"), "提交")
    assert "已提交" in (await chat.one()).text
    assert (await reports_in_db(second))[0]["status"] == "pending"


async def test_service_area_refuses_outside_and_keeps_the_draft(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    area = ServiceArea.box(39.4, 115.4, 41.1, 117.5)  # Beijing
    bot = await start_bot(programme=dataclasses.replace(Programme(), service_area=area))
    chat = Chat(fake, EN)
    await chat.agree()
    chat.photo()
    await chat.one()
    chat.location(31.2304, 121.4737)  # Shanghai
    refused = await chat.one()
    assert refused.text.startswith("That location is outside the area, which this programme")
    assert "1/5 photos received" in refused.text
    chat.location(*BEIJING)
    assert "What kind of hazard" in (await chat.one()).text
    (report,) = await reports_in_db(bot)
    assert report["photos"] == 1


async def test_a_location_outside_a_named_area_names_it(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    """The rider learns where the programme works, in their language."""
    area = ServiceArea.from_config(
        {"box": [25.9, 106.4, 26.4, 106.9], "name": "惠水县", "name_en": "Huishui County"}
    )
    await start_bot(programme=dataclasses.replace(Programme(), service_area=area))
    for user, expected in ((EN, "outside Huishui County"), (ZH, "这个位置在惠水县以外")):
        chat = Chat(fake, user)
        await chat.agree()
        chat.photo()
        await chat.one()
        chat.location(*BEIJING)
        assert expected in (await chat.one()).text


def voice_note(fake: FakeTelegram, seconds: int, size: int = 40_000) -> dict[str, object]:
    """A voice message's `voice` field, its file known to the stand-in."""
    stored = fake.world.register_file(b"OggS" + bytes(size - 4), "voice", mime_type="audio/ogg")
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "duration": seconds,
        "mime_type": "audio/ogg",
        "file_size": size,
    }


async def test_a_voice_note_is_part_of_the_report_and_plays_on_the_card(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    chat = Chat(fake, ZH)
    await chat.agree()
    fake.send_message_fields(ZH, voice=voice_note(fake, 9))  # before any photo
    assert (await chat.one()).text.startswith("🎙 请先拍一张隐患照片")
    chat.photo()
    await chat.one()
    note = voice_note(fake, 12)
    fake.send_message_fields(ZH, voice=note)
    noted = await chat.one()
    assert noted.text.startswith("🎙 已收到语音（12秒）")
    fake.send_message_fields(ZH, voice=voice_note(fake, 121))
    assert "语音太长了（最多120秒）" in (await chat.one()).text
    chat.location(*BEIJING)
    summary = await chat.categorise(await chat.one(), "道路隐患")
    assert "语音：1条，共12秒" in summary.text
    chat.press(summary, "提交")
    await chat.one()
    card = (await fake.wait_for_messages(MODERATOR_CHAT, 1))[0]
    assert "🎙 语音1段，共12秒" in card.text
    fake.press_button(TgUser(MODERATOR), card, card.button("听语音"))
    await fake.wait_for(lambda: any(m.kind == "voice" for m in fake.sent_to(MODERATOR_CHAT)))
    played = next(m for m in fake.sent_to(MODERATOR_CHAT) if m.kind == "voice")
    assert played.raw["voice"]["file_id"] == note["file_id"]
    assert played.text.startswith(reference_in(card))
