"""Scheduled work: each job asks the services what is due and tells the people concerned."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from handlers.common import BotContext
from handlers.widgets import refresh_card
from services import backup as backups
from services.retention import purge

log = logging.getLogger(__name__)


async def sweep_drafts(context: BotContext) -> None:
    """Remind riders of drafts about to expire (once), and tell them when one expired."""
    reminded, expired = await context.runtime.reporting.sweep_drafts()
    if reminded or expired:
        log.info("drafts: %d reminded, %d expired", reminded, expired)


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
    now = runtime.clock()
    days = runtime.settings.programme.retention.photo_days
    purged = await purge(runtime.db, now, days)
    case_photos = await runtime.cases.purge_photos(days)
    notices = await runtime.outbox.purge()
    update_ids = await runtime.inbox.purge()
    log.info(
        "retention: %d photos deleted, %d expired drafts purged, %d photos of erased riders, "
        "%d case photos deleted, %d settled notices forgotten, %d handled update ids forgotten",
        purged.photos,
        purged.drafts,
        purged.erased_riders_photos,
        case_photos,
        notices,
        update_ids,
    )


async def promise_job(context: BotContext) -> None:
    """Keep the 24-hour promise: digests, escalations, riders' notices, expired questions."""
    runtime = context.runtime
    check = await runtime.moderation.promise_check()
    for report_id in check.returned:  # back to pending: the card shows its buttons again
        card = await runtime.moderation.card(report_id)
        if card is not None:
            await refresh_card(context, card)
    if check.digest or check.escalated or check.breached or check.reminded or check.returned:
        log.info(
            "promise: digest %d, escalated %d, breached %d, questions reminded %d, expired %d",
            check.digest,
            check.escalated,
            check.breached,
            check.reminded,
            len(check.returned),
        )
