"""The global error handler: log what failed (with the update's context), tell the user."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import Forbidden, TelegramError

from handlers.common import BotContext
from handlers.speak import Speaker

log = logging.getLogger(__name__)


async def on_error(update: object, context: BotContext) -> None:
    """Log a handler's failure and, where there is a user, say briefly that it went wrong."""
    error = context.error
    if not isinstance(update, Update):
        log.error("error outside an update: %r", error, exc_info=error)
        return
    log.error(
        "update %s failed in chat %s: %r",
        update.update_id,
        update.effective_chat.id if update.effective_chat else None,
        error,
        exc_info=error,
    )
    chat = update.effective_chat
    if chat is None or chat.type != "private" or isinstance(error, Forbidden):
        return
    try:
        await Speaker(update, context).reply("error.generic")
    except (TelegramError, OSError) as exc:
        log.warning("could not tell chat %s about the error: %r", chat.id, exc)
