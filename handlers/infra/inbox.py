"""The Application's update queue, writing each update to the inbox before it is confirmed.

PTB's Updater (long polling) and its webhook server both `await update_queue.put(update)`
before they confirm the update to Telegram (the next getUpdates offset; the webhook's 200), so
an update written down here survives a kill at any later moment. See services/inbox.py.

What is written is the update as Telegram sent it: the getUpdates request (handlers/infra/
unparsed.py) and the webhook server hand each update's JSON to `expect` as they receive it,
which also lets the inbox write a whole batch in one transaction. Only an update nobody
announced (a test's, say) is serialised again from PTB's object, which costs far more.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable

from telegram import Bot, Update

from services.inbox import MAX_REPLAYS, Inbox
from storage.db import DATABASE_ERRORS

log = logging.getLogger(__name__)
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0


class JournalingQueue(asyncio.Queue[object]):
    """Updates go into the queue only once written down, and only the first time."""

    def __init__(self, inbox: Inbox) -> None:
        super().__init__()
        self.inbox = inbox

    async def put(self, item: object) -> None:
        if isinstance(item, Update) and not await self._take(item):
            log.info("update %d was taken before; not handled again", item.update_id)
            return
        await super().put(item)

    async def _take(self, update: Update) -> bool:
        """Write the update down, retrying until the database takes it. Polling waits
        meanwhile (nothing is confirmed to Telegram, so nothing is lost) and resumes by
        itself; a failure here must never end the poller, which would stop the bot for good
        while the process lives on."""
        delay = RETRY_FIRST_SECONDS
        failures = 0
        while True:
            try:
                taken = await self.inbox.take(update.update_id, self._payload(update))
            except DATABASE_ERRORS as exc:
                failures += 1
                log.warning(
                    "update inbox: writing update %d failed (%s: %s); polling stalls until the "
                    "database takes it, retry %d in %.1f s",
                    update.update_id, type(exc).__name__, exc, failures, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            if failures:
                log.warning(
                    "update inbox: update %d written after %d failures; polling resumes",
                    update.update_id, failures,
                )  # fmt: skip
            return taken

    def expect(self, updates: Iterable[object]) -> None:
        """Updates just received, as Telegram sent them (decoded JSON objects), whose puts
        follow: the inbox keeps their JSON and writes them all with the first take."""
        self.inbox.expect(
            {
                update["update_id"]: json.dumps(update, ensure_ascii=False)
                for update in updates
                if isinstance(update, dict) and isinstance(update.get("update_id"), int)
            }
        )

    def _payload(self, update: Update) -> str | None:
        """None for an update announced by `expect`, else PTB's object serialised again."""
        if self.inbox.expects(update.update_id):
            return None
        return json.dumps(update.to_dict(), ensure_ascii=False)

    async def replay(self, bot: Bot) -> int:
        """Queue the updates an earlier process took and never finished, oldest first."""
        unfinished, aside = await self.inbox.unhandled()
        if aside:
            log.error(
                "updates %s were handed to %d processes that never finished them; set aside "
                "(not handled), so they cannot stop the bot at every start",
                ", ".join(map(str, aside)), MAX_REPLAYS,
            )  # fmt: skip
        for _, payload in unfinished:
            await super().put(Update.de_json(json.loads(payload), bot))
        if unfinished:
            log.warning(
                "handling %d updates an earlier process took and never finished", len(unfinished)
            )
        return len(unfinished)
