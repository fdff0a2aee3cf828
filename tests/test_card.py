"""The 联新卡: signed short-lived tokens, the card image, and what merchant staff see."""

from __future__ import annotations

import base64
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from services import membercard as card_module
from services.membercard import card_number, check_token, make_token
from tests.conftest import RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.money_helpers import Money
from tests.riders import Chat
from tests.test_places import MERCHANT, admin_chat, csv_file, load_places

SECRET = "card-secret-for-tests-0123456789"
RIDER = TgUser(801, first_name="Wang", language_code="en")
STAFF = TgUser(802, language_code="en")


def test_tokens_are_compact_signed_and_expire() -> None:
    token = make_token(12345, 2_000_000_000, SECRET)
    assert len(f"c{token}") <= 64
    assert token.replace("-", "").replace("_", "").isalnum()
    assert check_token(token, SECRET, 1_999_999_999).rider_id == 12345
    assert check_token(token, SECRET, 2_000_000_000).expired
    assert check_token(token, "another-secret-0123456789", 0).rider_id is None
    raw = bytearray(base64.urlsafe_b64decode(token + "=="))
    raw[3] ^= 1  # another rider's number, same signature
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert check_token(forged, SECRET, 0).rider_id is None
    assert check_token("not a token!", SECRET, 0).rider_id is None


async def staff_opens(fake: FakeTelegram, staff: Chat, token: str) -> str:
    fake.send_text(staff.user, f"/start c{token}")
    return (await staff.one()).text


async def test_staff_see_a_valid_card_and_refuse_expired_or_forged_ones(
    start_bot: object, fake: FakeTelegram
) -> None:
    bot: RunningBot = await start_bot(card_secret=SECRET)  # type: ignore[operator]
    await load_places(fake, csv_file(MERCHANT))
    admin = admin_chat(fake)
    fake.send_text(admin.user, f"/merchants add 好味快餐 {STAFF.id}")
    await admin.one()
    rider_id = await Money(bot.app.bot_data["runtime"].db).rider(telegram_id=RIDER.id, payee=False)
    rider = Chat(fake, RIDER)
    rider.text("/card")
    card = await rider.one()
    assert card.kind == "photo"
    assert card.file_bytes
    assert card.file_bytes[:4] == b"\x89PNG"
    assert "W***" in card.text
    assert card_number(rider_id) in card.text

    cards = bot.app.bot_data["runtime"].member_cards
    now = datetime.now(UTC)
    token = make_token(rider_id, int((now + timedelta(minutes=10)).timestamp()), SECRET)
    staff = Chat(fake, STAFF)
    seen = await staff_opens(fake, staff, token)
    assert "Valid Lianxin card: W***" in seen
    assert "好味快餐" in seen
    assert "持卡九折" in (await staff.one()).text  # the shop's benefit

    cards.clock = lambda: now + timedelta(minutes=11)
    assert "expired" in await staff_opens(fake, staff, token)
    forged = make_token(rider_id, int((now + timedelta(hours=1)).timestamp()), "x" * 32)
    assert "Not a valid" in await staff_opens(fake, staff, forged)

    outsider = Chat(fake, TgUser(803, language_code="en"))
    fake.send_text(outsider.user, f"/start c{token}")
    greeting = (await outsider.one()).text
    assert "card" not in greeting.lower()
    assert "W***" not in greeting


async def test_card_without_a_secret_says_it_is_not_available(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    await Money(bot.app.bot_data["runtime"].db).rider(telegram_id=RIDER.id, payee=False)
    rider = Chat(fake, RIDER)
    rider.text("/card")
    assert "not available" in (await rider.one()).text


def test_the_card_draws_chinese_with_the_font_every_install_has() -> None:
    from PIL import ImageFont

    from locales import Texts
    from services import membercard as cards

    path = cards.cjk_font_path()
    assert path is not None  # the bundled subset at least
    font = ImageFont.truetype(path, 40)
    title = Texts().get("zh", "membercard.title")
    missing = font.getmask("\uffff").getbbox()  # a glyph the font lacks: its fallback box
    assert all(font.getmask(char).getbbox() != missing for char in title)
    face = cards.CardFace(
        "新就业群体服务", title, "王**", "LX00000001", "有效至12:00", "https://t.me/x"
    )
    assert cards.draw_card(face, path)[:8] == b"\x89PNG\r\n\x1a\n"


async def test_asking_for_the_card_again_and_again_draws_it_once_off_the_event_loop(
    start_bot: object,
    fake: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, logger="handlers.membercard")
    threads: list[str] = []
    draw = card_module.draw_card

    def watched(face: card_module.CardFace, font: str | None) -> bytes:
        threads.append(threading.current_thread().name)
        return draw(face, font)

    monkeypatch.setattr(card_module, "draw_card", watched)
    bot: RunningBot = await start_bot(card_secret=SECRET)  # type: ignore[operator]
    await Money(bot.app.bot_data["runtime"].db).rider(telegram_id=RIDER.id, payee=False)
    rider = Chat(fake, RIDER)
    for _ in range(20):
        rider.text("/card")
    sent = await rider.next(20)
    assert {message.file_bytes for message in sent} == {sent[0].file_bytes}  # the same card
    assert all("W***" in message.text for message in sent)
    assert caplog.text.count("card drawn") == 1
    assert len(threads) == 1
    assert threads[0].startswith("cards")  # not the event loop's thread
