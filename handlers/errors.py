"""The global error handler: log what failed (with the update's context), tell the user."""

from __future__ import annotations

import logging
import re

from telegram import Update
from telegram.error import Forbidden, TelegramError

from handlers.common import BotContext, language_of

log = logging.getLogger(__name__)
_UPDATE_ID = re.compile(r"""['"]update_id['"]\s*:\s*(-?\d+)""")


class UnparsedUpdates(logging.Filter):
    """PTB logs an update it cannot parse whole; keep only its id, never what a user sent.

    Matches PTB's "Received data was ..." records (getUpdates and the webhook server) and
    its debug line "Webhook received data: ...".
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("telegram") or "eceived data" not in str(record.msg):
            return True
        ids = ", ".join(_UPDATE_ID.findall(str(record.args))) or "unknown"
        if record.levelno < logging.WARNING:
            record.msg, record.args = "webhook received update %s", (ids,)
            return True
        error = record.exc_info[1] if record.exc_info else None
        record.msg = "could not parse update %s from Telegram (%s); its contents are not logged"
        record.args = (ids, type(error).__name__ if error else "unknown error")
        record.exc_info = record.exc_text = None
        return True


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
        language = await language_of(context, update.effective_user)
        await context.bot.send_message(
            chat.id, context.runtime.texts.get(language, "error.generic")
        )
    except (TelegramError, OSError) as exc:
        log.warning("could not tell chat %s about the error: %r", chat.id, exc)
