"""Pieces several features show or use: the main keyboard, dropping a message's buttons,
downloads, the photo held until consent, the "share your location" ask, the pointer to /help,
the spendable-points line and a review card's refresh. No feature module is imported here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest, NetworkError, TelegramError

from handlers.access import Audience, allow
from handlers.callbacks import Verb
from handlers.common import BotContext
from handlers.infra.card_sender import UNSENDABLE
from handlers.review_card import CardView, view
from handlers.speak import Speaker
from locales import Phrases
from services.invites import INVITE_DAYS
from services.invites import Role as InviteRole
from services.moderation import Card

# Called with the original report's id when a report is marked its duplicate (handlers/cases.py
# registers the redraw of the original's case card, which counts the riders following it).
DUPLICATE_MARKED: list[Callable[[BotContext, int], Awaitable[None]]] = []

HELD_PHOTO = "held_photo"  # a photo sent before consent, kept in memory only
DOWNLOAD_ATTEMPTS = 3
TOWN = Verb("ntown")  # item: place-set id; argument: "<town index>" or "<index>m"

# Where a photo held until consent goes once the rider agrees: the report's photo handler,
# registered by handlers/report.py (onboarding hands it over without importing the report).
HELD_PHOTO_TAKERS: list[Callable[[Update, BotContext], Awaitable[None]]] = []


async def take_held_photo(update: Update, context: BotContext) -> None:
    for take in HELD_PHOTO_TAKERS:
        await take(update, context)


def main_keyboard(t: Phrases) -> ReplyKeyboardMarkup:
    """The persistent keyboard: start a report; places near me (handlers/places.py)."""
    return ReplyKeyboardMarkup(
        [[t("keyboard.report"), t("keyboard.nearby")]], resize_keyboard=True, is_persistent=True
    )


async def drop_buttons(message: object) -> None:
    """Remove the buttons of a message that has done its job (best effort)."""
    if isinstance(message, Message):
        with contextlib.suppress(TelegramError):
            await message.edit_reply_markup(None)


async def download(context: BotContext, file_id: str) -> bytes:
    """The file's bytes; a failed download is tried again a few times before giving up."""
    for attempt in range(DOWNLOAD_ATTEMPTS):
        try:
            file = await context.bot.get_file(file_id)
            return bytes(await file.download_as_bytearray())
        except BadRequest:
            raise
        except NetworkError:
            if attempt == DOWNLOAD_ATTEMPTS - 1:
                raise
            await asyncio.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


@allow(Audience.ANYONE)
async def unknown(update: Update, context: BotContext) -> None:
    """Anything no other handler took: point the user to /help."""
    if update.effective_chat and update.effective_chat.type == "private":
        await Speaker(update, context).reply("fallback.unknown")


async def spendable_line(update: Update, context: BotContext) -> None:
    """/balance's extra line when codes not yet used hold some of the points shown there
    (handlers/money.py): the points a rider can spend now."""
    user = update.effective_user
    if user is None:
        return
    found = await context.runtime.points.spendable(user.id)
    if found is not None and found[1] > 0:
        await Speaker(update, context).reply("points.spendable", points=found[0], held=found[1])


async def ask_location(update: Update, context: BotContext) -> None:
    """No location today: a one-tap location button, and the towns to pick from instead."""
    say = Speaker(update, context)
    if update.effective_user is not None:
        await context.runtime.places.ask_location(update.effective_user.id)
    language = await say.language()
    texts = context.runtime.texts
    keyboard = ReplyKeyboardMarkup(
        [
            [KeyboardButton(texts.get(language, "nearby.share_button"), request_location=True)],
            [texts.get(language, "keyboard.report"), texts.get(language, "keyboard.nearby")],
        ],
        resize_keyboard=True,
        is_persistent=True,
    )
    await say.reply("nearby.ask_location", reply_markup=keyboard)
    await send_towns(update, context, merchants=False)


async def send_towns(update: Update, context: BotContext, *, merchants: bool) -> None:
    say = Speaker(update, context)
    current = await context.runtime.places.current_set()
    towns = await context.runtime.places.towns()
    if current is None or not towns:
        await say.reply("nearby.no_places")
        return
    suffix = "m" if merchants else ""
    rows = [
        [
            InlineKeyboardButton(
                f"{town or await say.text('nearby.no_town')} ({count})",
                callback_data=TOWN.data(current.id, f"{index}{suffix}"),
            )
        ]
        for index, (town, count) in enumerate(towns[:40])
    ]
    await say.reply("nearby.pick_town", reply_markup=InlineKeyboardMarkup(rows))


async def refresh_card(context: BotContext, card: Card, pressed: Message | None = None) -> None:
    """Show a card's new state wherever it is: the moderator chat, the private copies a
    moderator acted on (a proposal made from /queue), and where it was pressed."""
    drawn = view(context.runtime)
    places: set[tuple[int | None, int | None]] = set(card.views)
    recorded = (card.card_chat_id, card.card_message_id)
    if card.card_chat_id is not None and card.card_message_id not in (None, UNSENDABLE):
        places.add(recorded)
    if pressed is not None:
        places.add((pressed.chat.id, pressed.message_id))
    for chat_id, message_id in places:
        copy = card.card_copy and (chat_id, message_id) == recorded
        with contextlib.suppress(BadRequest):  # unchanged, or the message is gone
            await context.bot.edit_message_caption(
                chat_id=chat_id,
                message_id=message_id,
                caption=marked(drawn, card, copy),
                reply_markup=drawn.decision_buttons(card),
            )


def marked(drawn: CardView, card: Card, copy: bool) -> str:
    """A card's caption; a possible second copy says so first, and keeps saying so."""
    caption = drawn.caption(card)
    return f"{drawn.t('card.sent_again')}\n{caption}" if copy else caption


async def send_invite(
    update: Update, context: BotContext, role: InviteRole, target: str | None, shown: str
) -> None:
    """An admin's one-time link for `role` (at `target`, named `shown`), to forward to the
    person who should join: whoever taps it first joins, within INVITE_DAYS."""
    user = update.effective_user
    if user is None:
        return
    payload = await context.runtime.invites.create(role, target, user.id)
    link = f"https://t.me/{context.bot.username}?start={payload}"
    say = Speaker(update, context)
    await say.reply(
        "invite.made",
        role=await say.text(f"invite.role.{role}"),
        target=await say.text("invite.target", name=shown) if shown else "",
        link=link,
        days=INVITE_DAYS,
    )


async def people(context: BotContext, telegram_ids: Iterable[int]) -> str:
    """People for a list an admin reads: `小李 @xiaoli (9003)`, the number kept for /… remove;
    someone the bot has not yet seen is their number alone. "-" for nobody."""
    wanted = list(telegram_ids)
    names = await context.runtime.names.of(wanted)
    return (
        ", ".join(f"{names[who].full()} ({who})" if who in names else str(who) for who in wanted)
        or "-"
    )
