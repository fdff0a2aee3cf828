"""The update inbox: nothing Telegram delivered is lost when the process dies.

Telegram forgets an update once the bot confirms it: with long polling, the next getUpdates
call's offset confirms everything before it, and PTB makes that call while the updates it just
took may still wait in the bot's queues; a webhook is confirmed by its 200. So each update is
written here first (before the confirmation can happen) and marked handled when its handling
ends. After a crash, the next leader (a restart, or the standby) handles what was taken but not
finished. Handling is at least once: an update killed after its effects committed but before
it was marked is handled again, which the guarded changes underneath (one decision per report,
one credit per approval, a draft submitted once) absorb.

Handled updates keep their id, not their contents, for `KEPT_AFTER_HANDLING`: Telegram resends
an update whose offset was never confirmed (up to 24 hours), and a known id is not handled
twice.
"""

from __future__ import annotations

from datetime import timedelta

from services.clock import Now, utc_now
from storage import inbox as store
from storage.db import Database

KEPT_AFTER_HANDLING = timedelta(days=2)
MAX_REPLAYS = 5


class Inbox:
    def __init__(self, db: Database, clock: Now = utc_now) -> None:
        self.db = db
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock().timestamp())

    async def take(self, update_id: int, payload: str) -> bool:
        """Write an update down before it is confirmed; False if it was taken before."""
        return await store.take(self.db, update_id, payload, self._now())

    async def handled(self, update_id: int) -> None:
        await store.handled(self.db, update_id, self._now())

    async def written_ago(self) -> float | None:
        """Seconds since the newest update was written down; None before the first."""
        last = await store.last_received(self.db)
        return None if last is None else self._now() - last

    async def unhandled(self) -> tuple[list[tuple[int, str]], list[int]]:
        """What a process took and never finished, oldest first, to handle now; and the ids
        of those set aside because they were replayed `MAX_REPLAYS` times already (each
        replay that never finished most likely killed the process that took it)."""
        rows = await store.unhandled(self.db)
        aside = set(await store.replaying(self.db, [r["update_id"] for r in rows], MAX_REPLAYS,
                                          self._now()))  # fmt: skip
        again = [(r["update_id"], r["payload"]) for r in rows if r["update_id"] not in aside]
        return again, sorted(aside)

    async def purge(self) -> int:
        """Forget the ids of updates handled more than `KEPT_AFTER_HANDLING` ago."""
        before = self.clock() - KEPT_AFTER_HANDLING
        return await store.purge(self.db, int(before.timestamp()))
