"""Telling people things that must reach them: now if Telegram takes it, else later.

A message that fails with a passing fault (network, timeout, 5xx, 429 beyond the retries)
goes into the outbox, which a job drains every minute; a person who blocked the bot, or a
message Telegram refuses outright, is logged and not retried.
"""

from __future__ import annotations

import logging

from telegram.error import BadRequest, Forbidden, TelegramError

from handlers.common import BotContext

log = logging.getLogger(__name__)
DRAIN_SECONDS = 60


async def notify(context: BotContext, chat_id: int, text: str) -> bool:
    """Send `text`; on a passing failure keep it for the drain job. True if sent now."""
    try:
        await context.bot.send_message(chat_id, text)
        return True
    except (Forbidden, BadRequest) as exc:
        log.warning("message to %s refused by Telegram: %s", chat_id, exc.message)
    except TelegramError as exc:
        log.info("message to %s failed (%r); kept in the outbox", chat_id, exc)
        await context.runtime.outbox.later(chat_id, text)
    return False


async def drain_outbox(context: BotContext) -> None:
    """Try every message whose pause is over, oldest first."""
    outbox = context.runtime.outbox
    for message in await outbox.due():
        try:
            await context.bot.send_message(message.chat_id, message.text)
        except (Forbidden, BadRequest) as exc:
            await outbox.failed(message, exc.message, permanent=True)
            log.warning("outbox message %s given up: %s", message.id, exc.message)
        except TelegramError as exc:
            again = await outbox.failed(message, repr(exc), permanent=False)
            if not again:
                log.error("outbox message %s given up after many attempts", message.id)
        else:
            await outbox.delivered(message)
