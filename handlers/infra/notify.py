"""Delivering the outbox: every notice queued with a state change, rendered and sent once.

One task (started in `post_init`) sends what is due, woken at once when a notice is queued
and every `POLL_SECONDS` otherwise. Each chat's notices go in the order they were queued;
different chats are served concurrently, within the rate limiter's pace. A notice is claimed
before it is sent, so it is sent at most once even across a crash. A person who blocked the
bot, or a message Telegram refuses outright, is given up at once; passing faults (network,
timeouts before sending, 5xx, 429 beyond the retries) are tried again later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from telegram import ForceReply, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.error import BadRequest, Forbidden, TelegramError, TimedOut

from handlers.callbacks import Verb
from handlers.common import BotApplication, Runtime
from services.outbox import At, Category, Dept, Fen, Msg, Notice, Param, Params, Pending

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
CONCURRENT_CHATS = 16
MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
VERBATIM = "text"  # a notice whose `text` parameter is already the final text

# A notice's photo is "<kind>:<id>"; each feature registers how to load its kind:
# (runtime, id) -> (JPEG bytes, or a Telegram file id of an earlier upload).
PhotoLoader = Callable[[Runtime, int], Awaitable[bytes | str | None]]
PHOTO_LOADERS: dict[str, PhotoLoader] = {}


def render(runtime: Runtime, language: str, notice: Notice) -> str:
    """The notice's text in `language`: its head message, then its lines."""
    if notice.message == VERBATIM:
        return str(notice.params.get("text", ""))
    parts = [_render_one(runtime, language, notice.message, notice.params)]
    parts += [_render_one(runtime, language, key, params) for key, params in notice.lines]
    return "\n".join(parts)


def _render_one(runtime: Runtime, language: str, key: str, params: Params) -> str:
    return runtime.texts.get(
        language, key, **{name: _value(runtime, language, v) for name, v in params.items()}
    )


def _value(runtime: Runtime, language: str, value: Param) -> str | int:
    texts, settings = runtime.texts, runtime.settings
    if isinstance(value, Fen):
        return texts.money(language, value.fen)
    if isinstance(value, At):
        return texts.when(language, datetime.fromtimestamp(value.seconds, UTC), settings.timezone)
    if isinstance(value, Msg):
        return texts.get(language, value.key)
    if isinstance(value, Category):
        category = settings.programme.category(value.key)
        return category.name(language) if category else value.key
    if isinstance(value, Dept):
        department = settings.programme.department(value.key)
        return department.name(language) if department else value.key
    return value


def keyboard(runtime: Runtime, language: str, notice: Notice) -> InlineKeyboardMarkup | None:
    """The notice's inline buttons, labelled in `language`."""
    if not notice.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    _render_one(runtime, language, b.label, b.params),
                    callback_data=Verb.known[b.verb].data(b.item, b.argument),
                )
                for b in row
            ]
            for row in notice.buttons
        ]
    )


async def load_photo(runtime: Runtime, reference: str) -> bytes | str | None:
    """The photo a notice names, through its kind's loader (None: gone, send the text)."""
    kind, _, item = reference.partition(":")
    loader = PHOTO_LOADERS.get(kind)
    return None if loader is None or not item.isdigit() else await loader(runtime, int(item))


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """`text` in pieces of at most `limit` characters, cut between lines where possible."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            candidate = line
        current = candidate
    if current or not pieces:
        pieces.append(current)
    return pieces


async def deliver_notices(app: BotApplication) -> None:
    """The delivery loop: runs until cancelled; a failure of one round never ends it."""
    runtime: Runtime = app.bot_data["runtime"]
    outbox = runtime.outbox
    interrupted, retried = await outbox.after_restart()
    if interrupted:
        log.warning("%d notices were being sent when the bot stopped; not sent again", interrupted)
    if retried:
        log.info("%d notices kept for later are tried again now", retried)
    while True:
        outbox.wake.clear()
        try:
            due = await outbox.due()
            if due:
                await _deliver_round(app, runtime, due)
                continue
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notice delivery failed; trying again shortly")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(outbox.wake.wait(), timeout=POLL_SECONDS)


async def _deliver_round(app: BotApplication, runtime: Runtime, due: list[Pending]) -> None:
    """Send one notice per chat (the query returns each chat's earliest), chats concurrently."""
    slots = asyncio.Semaphore(CONCURRENT_CHATS)

    async def one(pending: Pending) -> None:
        async with slots:
            await deliver(app, runtime, pending)

    await asyncio.gather(*(one(pending) for pending in due))


async def deliver(app: BotApplication, runtime: Runtime, pending: Pending) -> None:
    """Claim, send and settle one notice."""
    outbox = runtime.outbox
    if not await outbox.claim(pending):
        return
    notice = pending.notice
    language = notice.language or await runtime.languages.of(notice.chat_id, None)
    text = render(runtime, language, notice)
    photo = await load_photo(runtime, notice.photo) if notice.photo else None
    buttons = keyboard(runtime, language, notice)
    pieces = [] if photo is not None and len(text) <= CAPTION_LIMIT else split_message(text)
    sent = 0
    answering = (
        None
        if notice.reply_to is None
        else ReplyParameters(notice.reply_to, allow_sending_without_reply=True)
    )
    try:
        if photo is not None:
            caption = None if pieces else text
            await app.bot.send_photo(
                notice.chat_id,
                photo,
                caption=caption,
                reply_markup=None if pieces else buttons,
                reply_parameters=answering,
            )
            sent += 1
        for number, piece in enumerate(pieces, start=1):
            markup: ForceReply | InlineKeyboardMarkup | None = None
            if notice.force_reply and not sent:
                markup = ForceReply(selective=True)
            elif number == len(pieces):
                markup = buttons
            await app.bot.send_message(
                notice.chat_id,
                piece,
                reply_markup=markup,
                reply_parameters=None if sent else answering,
            )
            sent += 1
    except (Forbidden, BadRequest) as exc:
        await outbox.failed(pending, exc.message, permanent=True)
        log.warning("notice %s (%s) refused by Telegram: %s", pending.id, notice.message, exc)
    except TimedOut as exc:
        # The message may have arrived: sending again could deliver it twice.
        await outbox.failed(pending, f"timed out, may have arrived: {exc!r}", permanent=True)
        log.warning("notice %s (%s) timed out; not sent again", pending.id, notice.message)
    except TelegramError as exc:
        # Part of a long notice arrived: trying again would repeat that part.
        if not await outbox.failed(pending, repr(exc), permanent=sent > 0):
            log.error("notice %s (%s) given up after many attempts", pending.id, notice.message)
    else:
        await outbox.delivered(pending)
