"""The Application's update queue, writing each update to the inbox before it is confirmed.

PTB's Updater (long polling) and its webhook server both `await update_queue.put(update)`
before they confirm the update to Telegram (the next getUpdates offset; the webhook's 200), so
an update written down here survives a kill at any later moment. See services/inbox.py.
"""

from __future__ import annotations

import asyncio
import json
import logging

from telegram import Bot, Update

from services.inbox import Inbox

log = logging.getLogger(__name__)


class JournalingQueue(asyncio.Queue[object]):
    """Updates go into the queue only once written down, and only the first time."""

    def __init__(self, inbox: Inbox) -> None:
        super().__init__()
        self.inbox = inbox

    async def put(self, item: object) -> None:
        if isinstance(item, Update) and not await self.inbox.take(
            item.update_id, json.dumps(item.to_dict(), ensure_ascii=False)
        ):
            log.info("update %d was taken before; not handled again", item.update_id)
            return
        await super().put(item)

    async def replay(self, bot: Bot) -> int:
        """Queue the updates an earlier process took and never finished, oldest first."""
        unfinished = await self.inbox.unhandled()
        for _, payload in unfinished:
            await super().put(Update.de_json(json.loads(payload), bot))
        if unfinished:
            log.warning(
                "handling %d updates an earlier process took and never finished", len(unfinished)
            )
        return len(unfinished)
