"""Driving a rider's side of a conversation through the stand-in, step by step."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.ledger import parse_payee
from tests import images
from tests.fakegram import FakeTelegram, SentMessage, TgUser

BEIJING = (39.9087, 116.3975)  # Tiananmen
REFERENCE = re.compile(r"R-\d{8}-\d{4,}")


def today_prefix() -> str:
    return f"R-{datetime.now(ZoneInfo('Asia/Shanghai')):%Y%m%d}-"


def photo_with_gps(lat: float, lon: float, seed: int = 3) -> bytes:
    """A JPEG file whose EXIF says it was taken at (lat, lon), now."""
    return images.jpeg(images.picture(seed), exif=images.phone_exif(lat, lon))


class Chat:
    """One user's private chat with the bot, reading the bot's answers in order."""

    def __init__(self, fake: FakeTelegram, user: TgUser) -> None:
        self.fake = fake
        self.user = user
        self.seen = 0

    async def next(
        self,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 - as wait_for_messages
    ) -> list[SentMessage]:
        """The next `count` messages the bot sends to this chat."""
        messages = await self.fake.wait_for_messages(self.user.id, self.seen + count, timeout)
        new = messages[self.seen : self.seen + count]
        self.seen += count
        return new

    async def one(self) -> SentMessage:
        (message,) = await self.next()
        return message

    def text(self, text: str) -> None:
        self.fake.send_text(self.user, text)

    def photo(self, data: bytes | None = None, **kwargs: object) -> None:
        self.fake.send_photo(self.user, data or images.jpeg(), **kwargs)  # type: ignore[arg-type]

    def location(self, lat: float, lon: float, **kwargs: object) -> None:
        self.fake.send_location(self.user, lat, lon, **kwargs)  # type: ignore[arg-type]

    def press(self, message: SentMessage, label: str) -> None:
        self.fake.press_button(self.user, message, message.button(label))

    async def agree(self, timeout: float = 10.0) -> SentMessage:  # noqa: ASYNC109 - as next
        """/start and accept the privacy notice; returns the bot's thank-you."""
        self.text("/start")
        (notice,) = await self.next(timeout=timeout)
        self.press(notice, "✅")
        (thanks,) = await self.next(timeout=timeout)
        return thanks

    def answer_prompt(self, text: str) -> None:
        """Reply to the bot's latest 💳 payout details prompt."""
        prompt = next(
            m for m in reversed(self.fake.sent_to(self.user.id)) if m.text.startswith("💳")
        )
        self.fake.send_text(self.user, text, reply_to_message_id=prompt.message_id)

    async def give_payee(self, text: str) -> SentMessage:
        """The guided payout details for "name account": the 💳 message's button, the name,
        the account (typed, no reply needed), Confirm; the bot's answer."""
        parsed = parse_payee(text)
        assert parsed is not None, text
        prompt = next(
            m for m in reversed(self.fake.sent_to(self.user.id)) if m.text.startswith("💳")
        )
        self.press(prompt, "✍️")
        await self.one()  # step 1: the name
        self.text(parsed[0])
        await self.one()  # step 2: the account
        self.text(parsed[1])
        check = await self.one()
        self.press(check, "✅")
        return await self.one()

    async def report(
        self,
        photo: bytes | None = None,
        location: tuple[float, float] = BEIJING,
        category: str | None = None,
        description: str | None = None,
    ) -> SentMessage:
        """A whole report, from photo to Submit; returns the bot's confirmation."""
        self.photo(photo)
        await self.one()
        self.location(*location)
        categories = await self.one()
        chinese = (self.user.language_code or "zh").startswith("zh")
        category = category or ("道路隐患" if chinese else "Road hazard")
        # The categories' message becomes the description prompt, then the summary.
        if description is None:
            summary = await self.categorise(categories, category)
        else:
            self.press(categories, category)
            await self.becomes(categories, "skip:")
            self.text(description)
            summary = await self.one()
        self.press(summary, "✅")
        return await self.one()

    async def categorise(
        self,
        categories: SentMessage,
        category: str,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> SentMessage:
        """Press `category` on the categories' message, then skip the description on it; the
        summary (that same message, changed)."""
        self.press(categories, category)
        self.press(await self.becomes(categories, "skip:", timeout), "")
        return await self.becomes(categories, "sub:", timeout)

    async def becomes(
        self,
        message: SentMessage,
        verb: str,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> SentMessage:
        """`message` once the bot has edited it to carry a button of `verb` (`skip:`,
        `sub:`): the report's steps change one message rather than send new ones."""
        await self.fake.wait_for(
            lambda: any(data.startswith(verb) for _, data in message.buttons()), timeout
        )
        return message


def reference_in(message: SentMessage) -> str:
    found = REFERENCE.search(message.text)
    assert found, message.text
    return found.group(0)


def handled_again(update: dict[str, Any]) -> dict[str, Any]:
    """`update` as the bot meets it again after a kill between its handling and its being marked
    handled (services/inbox.py): the same contents. Injected under a new id, since an id the bot
    has seen is not handled again: this checks that the handlers themselves absorb a repeat."""
    return {key: value for key, value in update.items() if key != "update_id"}
