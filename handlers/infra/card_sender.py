"""One sender for every row-driven card (the review card, the case card): rows due a card in
the database, sent one by one at the chat's pace, until none is left; then it waits to be woken.

A card kind says which rows are due, how to read one and where its card goes, how to draw and
send it, and how storage marks the send: `begin` before it (True when an earlier send's fate
is unknown), `refused` when Telegram answered with an error (no copy exists), `sent` with the
message id once it is in the chat (UNSENDABLE for a card Telegram will never take).

A send whose fate is unknown (the process died mid-send, the connection dropped after the
request went out) is sent again marked as a possible second copy: a row without a card would
be forgotten, a second copy only costs a glance, and says so. Both copies' buttons work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from telegram import Message
from telegram.error import BadRequest, TelegramError

from handlers.infra.transport import sent_maybe

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
IDLE_SECONDS = 60.0
UNSENDABLE = 0  # card_message_id of a card Telegram refused, or with no chat to go to

Row = TypeVar("Row")


@dataclass(frozen=True)
class CardKind(Generic[Row]):
    """What the sender needs to know about one kind of card."""

    name: str  # for the logs: "review card", "case card"
    due: Callable[[], Awaitable[list[int]]]  # ids of the rows still to send, in sending order
    load: Callable[[int], Awaitable[Row | None]]
    label: Callable[[Row], str]  # the row's reference, for the logs
    chat: Callable[[Row], int | None]  # where its card goes; None: nowhere (marked UNSENDABLE)
    # Draw and send the card to the chat; True: an earlier copy may be above it.
    send: Callable[[int, Row, bool], Awaitable[Message]]
    begin: Callable[[int], Awaitable[bool]]
    refused: Callable[[int], Awaitable[None]]
    # (row id, chat id, message id, sent marked as a possible second copy)
    sent: Callable[[int, int, int, bool], Awaitable[None]]
    wake: asyncio.Event  # set when a row becomes due


async def send_due(kind: CardKind[Row]) -> bool:
    """Send every card due now; True if any was sent. Telegram errors other than a refusal
    of one card propagate (the caller waits and tries again)."""
    sent_any = False
    for row_id in await kind.due():
        row = await kind.load(row_id)
        if row is None:
            continue
        chat_id = kind.chat(row)
        if chat_id is None:
            await kind.sent(row_id, 0, UNSENDABLE, False)
            continue
        sent_before = await kind.begin(row_id)
        try:
            message = await kind.send(chat_id, row, sent_before)
        except TelegramError as exc:
            if not sent_maybe(exc):
                await kind.refused(row_id)
            if not isinstance(exc, BadRequest):
                raise
            # Telegram will never take this card; don't let it hold up the others.
            log.error("%s for %s refused by Telegram: %s", kind.name, kind.label(row), exc.message)
            await kind.sent(row_id, chat_id, UNSENDABLE, False)
            continue
        await kind.sent(row_id, chat_id, message.message_id, sent_before)
        sent_any = True
    return sent_any


async def send_cards(kind: CardKind[Row]) -> None:
    """Send cards as they fall due, for as long as the bot runs."""
    while True:
        try:
            sent_any = await send_due(kind)
        except TelegramError as exc:
            log.warning("%s not sent, retrying in %ss: %r", kind.name, RETRY_SECONDS, exc)
            await asyncio.sleep(RETRY_SECONDS)
            continue
        except Exception:
            # Anything else (a database hiccup, a bug on one card) must not end the sender.
            log.exception("%s sender failed; retrying in %ss", kind.name, RETRY_SECONDS)
            await asyncio.sleep(RETRY_SECONDS)
            continue
        if not sent_any:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(kind.wake.wait(), timeout=IDLE_SECONDS)
            kind.wake.clear()
