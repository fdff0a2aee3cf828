"""Tests of the fake Telegram server, driven through the real python-telegram-bot client."""

from __future__ import annotations

import asyncio
import datetime as dtm
import io
import json
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from PIL import Image
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Update,
)
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, ApplicationBuilder, CommandHandler, ContextTypes
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from tests.fakegram import FakeTelegram, TgUser
from tests.fakegram.spec import SPEC_PATH, spec

TOKEN = "123456:TEST-TOKEN"
RIDER = TgUser(id=1001, first_name="Ann", username="ann")


def jpeg(width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="JPEG")
    return buffer.getvalue()


def retry_seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # int vs timedelta, depending on PTB_TIMEDELTA
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN) as server:
        yield server


def make_bot(fake: FakeTelegram, token: str = TOKEN, read_timeout: float = 5.0) -> Bot:
    return Bot(
        token,
        base_url=f"{fake.base_url}/bot",
        base_file_url=f"{fake.base_url}/file/bot",
        request=HTTPXRequest(read_timeout=read_timeout),
    )


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    async with make_bot(fake) as client:
        yield client


async def test_get_me_and_routing(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot, me.first_name) == (123456, "fake_bot", True, "FakeBot")

    with pytest.raises(InvalidToken):
        async with make_bot(fake, token="999:WRONG"):
            pass
    assert fake.calls[-1].status == 401

    async with aiohttp.ClientSession() as session:
        url = f"{fake.base_url}/bot{TOKEN}"
        async with session.post(f"{url}/noSuchMethod") as response:
            assert response.status == 404
            assert await response.json() == {
                "ok": False,
                "error_code": 404,
                "description": "Not Found: method not found",
            }
        # Method names are case-insensitive; JSON bodies and query strings work too.
        async with session.post(f"{url}/SENDMESSAGE", json={"chat_id": 5, "text": "123"}) as r:
            body = await r.json()
        async with session.get(f"{url}/sendmessage?chat_id=5&text=%5B1%5D") as r:
            body2 = await r.json()
    assert body["result"]["text"] == "123"
    assert body2["result"]["text"] == "[1]"
    assert [m.text for m in fake.sent_to(5)] == ["123", "[1]"]
    assert fake.calls_to("sendMessage")[0].params == {"chat_id": 5, "text": "123"}


async def test_send_message_with_inline_keyboard(fake: FakeTelegram, bot: Bot) -> None:
    markup = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("✅ Approve", callback_data="ok:1")],
            [InlineKeyboardButton("Map", url="https://example.com")],
        ]
    )
    message = await bot.send_message(
        RIDER.id, "Review <b>this</b>", reply_markup=markup, parse_mode="HTML"
    )

    call = fake.calls_to("sendMessage")[0]
    assert call.params["chat_id"] == RIDER.id
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "ok:1"
    sent = fake.last_sent(RIDER.id)
    assert (sent.kind, sent.text, sent.message_id) == ("text", "Review this", message.message_id)
    assert sent.raw["entities"] == [{"type": "bold", "offset": 7, "length": 4}]
    assert sent.buttons() == [("✅ Approve", "ok:1"), ("Map", "https://example.com")]
    assert sent.button("Approve") == "ok:1"
    with pytest.raises(AssertionError, match="Approve"):
        sent.button("Reject")
    assert message.reply_markup == markup
    assert message.chat.type == "private"

    group_message = await bot.send_message(-100, "hi")
    assert group_message.chat.type == "supergroup"
    assert group_message.chat.title


async def test_telegram_like_errors(fake: FakeTelegram, bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(RIDER.id, "  ")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(RIDER.id, "x" * 4097)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="x" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(RIDER.id, "hi", reply_markup=too_long)
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(RIDER.id, "speed < 30 <b>km/h", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)reserved"):
        await bot.send_message(RIDER.id, "Done.", parse_mode="MarkdownV2")
    with pytest.raises(BadRequest, match=r"(?i)message caption is too long"):
        await bot.send_photo(RIDER.id, jpeg(), caption="c" * 1025)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=RIDER.id, message_id=99)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(RIDER.id, 99)
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot.get_file("nope")
    fake.block_chat(RIDER.id)
    with pytest.raises(Forbidden, match=r"(?i)bot was blocked by the user"):
        await bot.send_message(RIDER.id, "hi")
    assert fake.sent == []  # failed calls left no trace
    assert [c.status for c in fake.bot_calls()] == [200] + [400] * 9 + [403]  # getMe first
    assert fake.bot_calls()[-1].status == 403


async def test_edit_and_delete(fake: FakeTelegram, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    message = await bot.send_message(RIDER.id, "one", reply_markup=keyboard)
    await bot.edit_message_text("two", chat_id=RIDER.id, message_id=message.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("two", chat_id=RIDER.id, message_id=message.message_id)
    sent = fake.last_sent(RIDER.id)
    assert (sent.text, sent.edits, sent.reply_markup) == ("two", 1, None)  # keyboard removed

    await bot.edit_message_reply_markup(RIDER.id, message.message_id, reply_markup=keyboard)
    assert sent.buttons() == [("A", "a")]
    assert await bot.delete_message(RIDER.id, message.message_id)
    assert sent.deleted
    assert fake.sent_to(RIDER.id) == []


async def test_photo_upload_roundtrip(fake: FakeTelegram, bot: Bot) -> None:
    data = jpeg(640, 480)
    message = await bot.send_photo(RIDER.id, data, caption="hazard")
    assert fake.calls_to("sendPhoto")[0].files == {"photo": data}
    assert message.photo[-1].width == 640
    assert message.photo[-1].height == 480
    assert message.photo[0].width == 90  # thumbnail size
    sent = fake.last_sent(RIDER.id)
    assert (sent.kind, sent.text, sent.file_bytes) == ("photo", "hazard", data)

    telegram_file = await bot.get_file(message.photo[-1].file_id)
    assert telegram_file.file_path is not None
    assert "photos/file_" in telegram_file.file_path
    assert await telegram_file.download_as_bytearray() == data

    again = await bot.send_photo(-100, message.photo[-1].file_id)
    assert again.photo[-1].file_unique_id == message.photo[-1].file_unique_id
    assert fake.last_sent(-100).file_bytes == data

    album = await bot.send_media_group(
        RIDER.id, [InputMediaPhoto(jpeg(), caption="a"), InputMediaPhoto(data)]
    )
    assert len(album) == 2
    assert album[0].media_group_id == album[1].media_group_id
    assert any(name.startswith("attached") for name in fake.calls_to("sendMediaGroup")[0].files)
    assert fake.sent_to(RIDER.id)[-1].file_bytes == data

    fake.fail_downloads(status=500)
    with pytest.raises(NetworkError):
        await telegram_file.download_as_bytearray()
    assert await telegram_file.download_as_bytearray() == data


async def test_injected_photo_is_downloadable(fake: FakeTelegram, bot: Bot) -> None:
    data = jpeg(320, 240)
    update = fake.send_photo(RIDER, data, caption="pothole")
    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == [update["update_id"]]
    message = updates[0].message
    assert message is not None
    assert message.caption == "pothole"
    assert (message.photo[-1].width, message.photo[-1].height) == (320, 240)
    assert message.from_user is not None
    assert message.from_user.language_code == "zh-hans"
    photo_file = await bot.get_file(message.photo[-1].file_id)
    assert await photo_file.download_as_bytearray() == data

    same = fake.send_photo(RIDER, data, file_unique_id="SAME")
    again = fake.send_photo(RIDER, data, file_unique_id="SAME")
    assert same["message"]["photo"][-1]["file_unique_id"] == "SAME"
    assert same["message"]["photo"][-1]["file_id"] != again["message"]["photo"][-1]["file_id"]


async def test_get_updates_order_and_offsets(fake: FakeTelegram, bot: Bot) -> None:
    first = fake.send_text(RIDER, "/start@fake_bot now", chat_id=-100)
    fake.send_location(RIDER, 31.2, 121.5, live_period=60)
    fake.send_venue(RIDER, 31.2, 121.5, "Bridge", "Road 1")
    updates = await bot.get_updates(limit=2)
    assert [u.update_id for u in updates] == [first["update_id"], first["update_id"] + 1]
    command = updates[0].message
    assert command is not None
    assert command.chat.type == "supergroup"
    assert command.parse_entities(["bot_command"]).popitem()[1] == "/start@fake_bot"
    assert updates[1].message is not None
    assert updates[1].message.location is not None

    # Not confirmed yet: asked again without offset, the same updates come back.
    assert len(await bot.get_updates()) == 3
    rest = await bot.get_updates(offset=updates[-1].update_id + 1)
    assert [u.update_id for u in rest] == [first["update_id"] + 2]
    venue_message = rest[0].message
    assert venue_message is not None
    assert venue_message.venue is not None
    assert venue_message.location is not None
    assert await bot.get_updates(offset=rest[-1].update_id + 1) == ()
    assert fake.pending_updates == 0

    # Several updates injected together arrive in a single answer.
    moderator = TgUser(id=2002, first_name="Mod")
    with fake.held_updates():
        fake.press_button(RIDER, 7, "approve:7", chat_id=-100)
        fake.press_button(moderator, 7, "reject:7", chat_id=-100)
        assert fake.pending_updates == 0
    batch = await bot.get_updates(offset=rest[-1].update_id + 1)
    assert [u.callback_query.data for u in batch if u.callback_query] == ["approve:7", "reject:7"]

    # Re-delivering an already confirmed update works.
    fake.inject(batch[0].to_dict())
    again = await bot.get_updates(offset=batch[-1].update_id + 1)
    assert [u.update_id for u in again] == [batch[0].update_id]


async def test_long_poll_returns_when_update_arrives(fake: FakeTelegram, bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=dtm.timedelta(seconds=0.3)) == ()
    assert 0.25 < time.monotonic() - started < 2

    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.2)  # let the poll reach the server and start waiting
    started = time.monotonic()
    fake.send_text(RIDER, "hello")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 1
    assert updates[0].message is not None
    assert updates[0].message.text == "hello"

    # A long poll the client gives up on does not disturb the server.
    poll = asyncio.create_task(bot.get_updates(offset=updates[0].update_id + 1, timeout=5))
    await asyncio.sleep(0.1)
    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll
    assert await bot.get_updates(offset=updates[0].update_id + 1) == ()


async def test_callback_query_and_answer(fake: FakeTelegram, bot: Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Approve", callback_data="ok:9")]])
    await bot.send_message(-100, "report #9", reply_markup=keyboard)
    sent = fake.last_sent(-100)
    moderator = TgUser(id=2002, first_name="Mod")
    update = fake.press_button(moderator, sent, sent.button("Approve"))
    (received,) = await bot.get_updates()
    query = received.callback_query
    assert query is not None
    assert query.data == "ok:9"
    assert query.from_user.id == 2002
    assert query.message is not None
    assert query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query.id, text="done")
    assert fake.callback_answers == [
        {"callback_query_id": update["callback_query"]["id"], "text": "done"}
    ]
    with pytest.raises(BadRequest, match=r"(?i)query ID is invalid"):
        await bot.answer_callback_query("12345")


async def test_faults(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail_next("sendmessage", status=429, retry_after=7)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(RIDER.id, "hi")
    assert retry_seconds(caught.value) == 7

    fake.fail_next("*", status=500, chat_id=RIDER.id)
    await bot.send_message(RIDER.id + 1, "other chat is not affected")
    with pytest.raises(NetworkError):
        await bot.send_message(RIDER.id, "hi")
    fake.fail_next("sendMessage", status=502)
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(RIDER.id, "hi")
    assert fake.sent_to(RIDER.id) == []
    assert [c.status for c in fake.calls_to("sendMessage")] == [429, 200, 500, 502]

    fake.fail_next("sendMessage", status=500, delay=1.0)
    async with make_bot(fake, read_timeout=0.2) as impatient:
        with pytest.raises(TimedOut):
            await impatient.send_message(RIDER.id, "slow")
        # Slow success: the message is sent even though the client timed out.
        fake.fail_next("sendMessage", status=200, delay=1.0)
        with pytest.raises(TimedOut):
            await impatient.send_message(RIDER.id, "slow but delivered")
    assert [m.text for m in fake.sent_to(RIDER.id)] == ["slow but delivered"]


async def test_caps(fake: FakeTelegram, bot: Bot) -> None:
    fake.enforce_caps(per_second=30, per_group=20)
    rejected: list[RetryAfter] = []
    for number in range(25):
        try:
            await bot.send_message(-100, f"msg {number}")
        except RetryAfter as error:
            rejected.append(error)
    assert fake.cap_rejections == len(rejected) == 5
    assert all(55 <= retry_seconds(error) <= 60 for error in rejected)
    assert len(fake.sent_to(-100)) == 20

    fake.enforce_caps(per_second=3, per_group=None)
    for _ in range(3):
        await bot.send_chat_action(RIDER.id, "typing")
    with pytest.raises(RetryAfter):
        await bot.send_message(RIDER.id, "too fast")
    fake.enforce_caps(None, None)
    await bot.send_message(RIDER.id, "fine")


async def test_private_chat_cap(fake: FakeTelegram, bot: Bot) -> None:
    fake.enforce_caps(per_second=None, per_group=None, per_private=2, private_window=60.0)
    await bot.send_message(RIDER.id, "one")
    await bot.edit_message_text("one, edited", chat_id=RIDER.id, message_id=1)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(RIDER.id, "too many for this chat")
    assert 55 <= retry_seconds(caught.value) <= 60
    await bot.send_message(RIDER.id + 1, "another chat is counted apart")
    await bot.send_message(-100, "and groups are not counted here")


async def test_commands_and_menu_button(fake: FakeTelegram, bot: Bot) -> None:
    commands = [BotCommand("start", "开始"), BotCommand("report", "随手拍")]
    scope = BotCommandScopeChat(-100)
    assert await bot.set_my_commands(commands, scope=scope, language_code="zh")
    assert await bot.get_my_commands(scope=scope, language_code="zh") == tuple(commands)
    assert await bot.get_my_commands() == ()
    assert fake.commands(scope.to_dict(), "zh")[1] == {"command": "report", "description": "随手拍"}
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Start", "bad")])
    assert await bot.delete_my_commands(scope=scope, language_code="zh")
    assert fake.commands(scope.to_dict(), "zh") == []
    assert await bot.set_chat_menu_button()
    assert fake.menu_button() == {"type": "default"}
    chat = await bot.get_chat(RIDER.id)
    assert chat.type == "private"


async def test_wait_for_reports_recent_calls(fake: FakeTelegram, bot: Bot) -> None:
    await bot.send_message(RIDER.id, "first")
    assert [m.text for m in await fake.wait_for_messages(RIDER.id, 1, timeout=0.1)] == ["first"]
    with pytest.raises(AssertionError, match=r"2 message\(s\) to chat 1001[\s\S]*sendMessage"):
        await fake.wait_for_messages(RIDER.id, 2, timeout=0.1)


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    await update.effective_message.reply_text(
        " ".join(context.args or []) or "empty", do_quote=True
    )


async def test_real_application_polling(fake: FakeTelegram) -> None:
    app: Application = (  # type: ignore[type-arg]
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"{fake.base_url}/bot")
        .base_file_url(f"{fake.base_url}/file/bot")
        .build()
    )
    app.add_handler(CommandHandler("echo", echo))
    await app.initialize()
    assert app.updater is not None
    await app.updater.start_polling(timeout=1, poll_interval=0)
    await app.start()
    try:
        fake.send_text(RIDER, "/echo 你好 world")
        (reply,) = await fake.wait_for_messages(RIDER.id, 1, timeout=5)
        assert reply.text == "你好 world"
        assert reply.raw["reply_to_message"]["text"] == "/echo 你好 world"
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
    assert fake.pending_updates == 0  # the final getUpdates confirmed the update
    assert fake.internal_errors == []


# ---------------------------------------------------------------------- the specification


async def raw_call(
    fake: FakeTelegram,
    method: str,
    params: dict[str, object],
    files: dict[str, bytes] | None = None,
) -> tuple[int, dict[str, object]]:
    """POST ``method`` the way a Bot API client does; non-string values are sent as JSON."""
    form = aiohttp.FormData()
    for key, value in params.items():
        form.add_field(key, value if isinstance(value, str) else json.dumps(value))
    for key, data in (files or {}).items():
        form.add_field(key, data, filename=f"{key}.jpg", content_type="image/jpeg")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/bot{TOKEN}/{method}", data=form) as response,
    ):
        return response.status, await response.json()


async def assert_refused(
    fake: FakeTelegram,
    method: str,
    params: dict[str, object],
    description: str,
    files: dict[str, bytes] | None = None,
) -> None:
    """Telegram's 400 answer whose description contains ``description``; nothing was sent."""
    status, body = await raw_call(fake, method, params, files)
    assert (status, body["ok"], body["error_code"]) == (400, False, 400), body
    assert str(body["description"]).startswith("Bad Request: "), body
    assert description in str(body["description"]), body
    assert fake.sent == []


async def test_spec_is_the_projects_own_copy() -> None:
    assert SPEC_PATH.is_relative_to(Path(__file__).parent / "fakegram")
    assert (SPEC_PATH.parent / "LICENSE").read_text().startswith("MIT License")
    assert spec().version == "Bot API 10.1"
    fake = FakeTelegram(TOKEN)
    implemented = [*fake.world.methods, "getUpdates", "setWebhook", "deleteWebhook"]
    assert [name for name in implemented if name not in spec().methods] == []


async def test_spec_refuses_unknown_methods_and_parameters(fake: FakeTelegram) -> None:
    status, body = await raw_call(fake, "sendMesage", {"chat_id": RIDER.id, "text": "hi"})
    assert (status, body["description"]) == (404, "Not Found: method not found")
    await assert_refused(
        fake,
        "sendMessage",
        {"chat_id": RIDER.id, "text": "hi", "disable_notifications": True},
        "unknown parameter disable_notifications",
    )
    await assert_refused(
        fake,
        "sendMessage",
        {"chat_id": RIDER.id, "text": "hi", "reply_to_message_id": 3},  # gone since Bot API 7.0
        "unknown parameter reply_to_message_id",
    )


async def test_spec_refuses_missing_required_parameters(fake: FakeTelegram) -> None:
    await assert_refused(fake, "sendMessage", {"chat_id": RIDER.id}, "message text is empty")
    await assert_refused(fake, "sendMessage", {"text": "hi"}, "chat_id is empty")
    await assert_refused(fake, "sendPhoto", {"chat_id": RIDER.id}, 'parameter "photo" is required')
    await assert_refused(fake, "answerCallbackQuery", {}, '"callback_query_id" is required')
    reply = {"chat_id": RIDER.id, "text": "hi", "reply_parameters": {"chat_id": RIDER.id}}
    await assert_refused(fake, "sendMessage", reply, 'field "message_id" is required')


async def test_spec_refuses_wrong_types(fake: FakeTelegram) -> None:
    await assert_refused(
        fake, "sendMessage", {"chat_id": 1.5, "text": "hi"}, "must be of type Integer or String"
    )
    await assert_refused(
        fake,
        "sendMessage",
        {"chat_id": RIDER.id, "text": "hi", "disable_notification": "maybe"},
        'parameter "disable_notification" must be of type Boolean',
    )
    await assert_refused(
        fake,
        "sendLocation",
        {"chat_id": RIDER.id, "latitude": "north", "longitude": 2},
        'parameter "latitude" must be of type Float',
    )
    await assert_refused(
        fake, "deleteMessages", {"chat_id": RIDER.id, "message_ids": ["1"]}, "[0] must be of type"
    )
    await assert_refused(
        fake,
        "sendMediaGroup",
        {"chat_id": RIDER.id, "media": [{"type": "picture", "media": "attach://a"}]},
        "it is none of InputMediaAudio",
        files={"a": jpeg()},
    )


@pytest.mark.parametrize(
    ("markup", "description"),
    [
        ({"inline_keyboard": [{"text": "a", "callback_data": "a"}]}, '"inline_keyboard"[0] must'),
        ({"inline_keyboard": [[{"text": "a"}]]}, "exactly one of"),
        ({"inline_keyboard": [[{"text": "a", "callback_data": "a", "url": "https://x.y"}]]}, "got"),
        (
            {"inline_keyboard": [[{"text": "a", "callback-data": "a"}]]},
            'unknown field "callback-data"',
        ),
        ({"inline_keyboard": [[{"callback_data": "a"}]]}, 'field "text" is required'),
        ({"keyboard": [[{"text": "a", "request_location": "yes"}]]}, "must be of type Boolean"),
        (
            {"keyboard": [[{"text": "a", "request_location": True, "request_contact": True}]]},
            "at most",
        ),
        (
            {"keyboard": [["a"]], "resize_keyboard": True, "one_time": True},
            'unknown field "one_time"',
        ),
        ({"remove_keyboard": True, "force_reply": True}, "can't parse"),
        ({"force_reply": True, "input_field_placeholder": "p" * 65}, "1-64 characters"),
        ({"inline_keyboards": []}, "it is none of InlineKeyboardMarkup"),
    ],
)
async def test_spec_refuses_wrongly_shaped_keyboards(
    fake: FakeTelegram, markup: dict[str, object], description: str
) -> None:
    params = {"chat_id": RIDER.id, "text": "hi", "reply_markup": markup}
    await assert_refused(fake, "sendMessage", params, description)


async def test_spec_refuses_reply_keyboard_where_only_inline_is_allowed(
    fake: FakeTelegram, bot: Bot
) -> None:
    message = await bot.send_message(RIDER.id, "hi")
    status, body = await raw_call(
        fake,
        "editMessageReplyMarkup",
        {
            "chat_id": RIDER.id,
            "message_id": message.message_id,
            "reply_markup": {"keyboard": [["a"]]},
        },
    )
    assert status == 400
    assert "can't parse InlineKeyboardMarkup" in str(body["description"])


async def test_spec_text_caption_and_data_limits(fake: FakeTelegram) -> None:
    await assert_refused(
        fake, "sendMessage", {"chat_id": RIDER.id, "text": "x" * 4097}, "message is too long"
    )
    await assert_refused(
        fake,
        "sendPhoto",
        {"chat_id": RIDER.id, "caption": "c" * 1025},
        "message caption is too long",
        files={"photo": jpeg()},
    )
    album = [{"type": "photo", "media": "attach://a", "caption": "c" * 1025}]
    await assert_refused(
        fake,
        "sendMediaGroup",
        {"chat_id": RIDER.id, "media": album},
        "message caption is too long",
        files={"a": jpeg()},
    )
    for data in ("x" * 65, "é" * 33, ""):  # 65 bytes, 66 bytes (33 characters), empty
        keyboard = {"inline_keyboard": [[{"text": "b", "callback_data": data}]]}
        params = {"chat_id": RIDER.id, "text": "hi", "reply_markup": keyboard}
        await assert_refused(fake, "sendMessage", params, "BUTTON_DATA_INVALID")
    fake.press_button(RIDER, 1, "x")
    query_id = fake.world.callback_ids.copy().pop()
    await assert_refused(
        fake,
        "answerCallbackQuery",
        {"callback_query_id": query_id, "text": "t" * 201},
        "MESSAGE_TOO_LONG",
    )

    keyboard = {"inline_keyboard": [[{"text": "b", "callback_data": "é" * 32}]]}  # 64 bytes
    status, _ = await raw_call(fake, "sendMessage", {"chat_id": 5, "text": "x" * 4096})
    assert status == 200
    status, _ = await raw_call(
        fake, "sendMessage", {"chat_id": 5, "text": "hi", "reply_markup": keyboard}
    )
    assert status == 200
    status, _ = await raw_call(
        fake, "sendPhoto", {"chat_id": 5, "caption": "c" * 1024}, files={"photo": jpeg()}
    )
    assert status == 200
    # The text limit counts characters after entities parsing, not the markup.
    long_html = "<b>" + "x" * 4090 + "</b>"
    status, _ = await raw_call(
        fake, "sendMessage", {"chat_id": 5, "text": long_html, "parse_mode": "HTML"}
    )
    assert status == 200


@pytest.mark.parametrize(
    ("command", "description", "refusal"),
    [
        ("Start", "go", "BOT_COMMAND_INVALID"),
        ("re-port", "go", "BOT_COMMAND_INVALID"),
        ("/start", "go", "BOT_COMMAND_INVALID"),
        ("c" * 33, "go", "BOT_COMMAND_INVALID"),
        ("", "go", "BOT_COMMAND_INVALID"),
        ("start", "", "BOT_COMMAND_DESCRIPTION_INVALID"),
        ("start", "d" * 257, "BOT_COMMAND_DESCRIPTION_INVALID"),
    ],
)
async def test_spec_refuses_bad_commands(
    fake: FakeTelegram, command: str, description: str, refusal: str
) -> None:
    commands = [{"command": "ok", "description": "fine"}]
    commands.append({"command": command, "description": description})
    await assert_refused(fake, "setMyCommands", {"commands": commands}, refusal)
    assert fake.commands() == []


async def test_spec_accepts_valid_calls(fake: FakeTelegram, bot: Bot) -> None:
    first = await bot.send_message(RIDER.id, "first")
    valid: list[tuple[str, dict[str, object]]] = [
        (
            "sendMessage",
            {
                "chat_id": RIDER.id,
                "text": "see https://example.com",
                "link_preview_options": {"is_disabled": True},
                "reply_parameters": {"message_id": first.message_id},
                "protect_content": "true",
                "reply_markup": {
                    "keyboard": [["text only", {"text": "📍", "request_location": True}]],
                    "resize_keyboard": True,
                    "one_time_keyboard": True,
                    "input_field_placeholder": "where?",
                },
            },
        ),
        (
            "sendMessage",
            {"chat_id": RIDER.id, "text": "bye", "reply_markup": {"remove_keyboard": True}},
        ),
        (
            "sendMessage",
            {"chat_id": "-100", "text": "why?", "reply_markup": {"force_reply": True}},
        ),
        (
            "sendMessage",
            {
                "chat_id": RIDER.id,
                "text": "choose",
                "reply_markup": {
                    "inline_keyboard": [
                        [
                            {"text": "✅", "callback_data": "ok:1"},
                            {"text": "Map", "url": "https://x.y"},
                        ],
                        [{"text": "Copy", "copy_text": {"text": "R-1"}}],
                    ]
                },
            },
        ),
        ("sendLocation", {"chat_id": RIDER.id, "latitude": "31.2", "longitude": 121.5}),
        (
            "setMyCommands",
            {
                "commands": [{"command": "report_1", "description": "随手拍"}],
                "scope": {"type": "chat", "chat_id": RIDER.id},
                "language_code": "zh",
            },
        ),
        ("setChatMenuButton", {"menu_button": {"type": "commands"}}),
        ("getUpdates", {"offset": "1", "limit": 10, "timeout": 0, "allowed_updates": ["message"]}),
        ("deleteMessages", {"chat_id": RIDER.id, "message_ids": [first.message_id]}),
    ]
    for method, params in valid:
        status, body = await raw_call(fake, method, params)
        assert (method, status) == (method, 200), body
    status, body = await raw_call(
        fake,
        "sendMediaGroup",
        {
            "chat_id": RIDER.id,
            "media": [
                {"type": "photo", "media": "attach://a", "caption": "one"},
                {"type": "photo", "media": "attach://b", "has_spoiler": True},
            ],
        },
        files={"a": jpeg(), "b": jpeg()},
    )
    assert status == 200, body
