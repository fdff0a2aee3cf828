"""Scheduled work: each job asks the services what is due and tells the people concerned."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from telegram.error import Forbidden, TelegramError

from handlers.common import BotContext
from locales import language_for
from services import backup as backups
from services.reporting import REMINDER_BEFORE_EXPIRY
from services.retention import purge

log = logging.getLogger(__name__)


async def sweep_drafts(context: BotContext) -> None:
    """Remind riders of drafts about to expire (once), and tell them when one expired."""
    runtime = context.runtime
    to_remind, expired = await runtime.reporting.sweep_drafts()
    hours = int(REMINDER_BEFORE_EXPIRY.total_seconds() // 3600)
    notices = [(row, "draft.reminder") for row in to_remind] + [
        (row, "draft.expired") for row in expired
    ]
    for row, key in notices:
        if row["telegram_id"] is None:
            continue
        language = language_for(None, row["language"])
        try:
            await context.bot.send_message(
                row["telegram_id"], runtime.texts.get(language, key, hours=hours)
            )
        except Forbidden:
            pass  # the rider blocked the bot; nothing more to do
        except TelegramError as exc:
            log.warning("draft notice to %s not delivered: %r", row["telegram_id"], exc)
    if to_remind or expired:
        log.info("drafts: %d reminded, %d expired", len(to_remind), len(expired))


async def backup(context: BotContext) -> None:
    """The daily online backup, in a thread (the database stays in use meanwhile)."""
    settings = context.runtime.settings
    path = await asyncio.to_thread(
        backups.backup,
        settings.database_path,
        settings.backup_dir,
        settings.backups_kept,
        datetime.now(settings.timezone),
    )
    log.info("backup written to %s", path)


async def retention(context: BotContext) -> None:
    """The daily purge the privacy notice promises; logs counts, never contents."""
    runtime = context.runtime
    now = runtime.reporting.clock()
    purged = await purge(runtime.db, now, runtime.settings.programme.photo_retention_days)
    log.info(
        "retention: %d photos deleted, %d expired drafts purged, %d photos of erased riders",
        purged.photos,
        purged.drafts,
        purged.erased_riders_photos,
    )
