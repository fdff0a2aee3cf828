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

The writes are group-committed, since one transaction per update (and one more per mark) was
most of what the inbox cost. A take or a mark that comes while an inbox transaction runs
waits for it to end and goes into the next one, together with all that came meanwhile; and the
updates of a getUpdates batch, announced by `expect` as they arrive, are all written by the
first take of the batch (PTB hands them over one at a time, each waiting for the last). Each
caller still returns only once its own row is committed, so nothing a kill can repeat grows:
an update is written before it can be confirmed, as with a transaction each (the confirmation
is the next getUpdates, or the webhook's answer, both after the take returned); and a mark is
as durable when `handled` returns as it was, only the time between an update's effects and its
mark grows, by at most one inbox transaction (milliseconds), and a kill in that gap repeats
the update as it always could, absorbed by the guarded changes. Writing a whole batch early
adds nothing to repeat either: an update written but never put is not yet handled, so the next
process handles it once (its id stops Telegram's resend of it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta

from services.clock import Now, utc_now
from storage import inbox as store
from storage.db import Database

KEPT_AFTER_HANDLING = timedelta(days=2)
MAX_REPLAYS = 5


class WriteInterrupted(OSError):
    """The inbox transaction a take or a mark waited for was cancelled (the bot is stopping):
    an OSError, so that the takes waiting for it retry like after any database failure."""


class Inbox:
    def __init__(self, db: Database, clock: Now = utc_now) -> None:
        self.db = db
        self.clock = clock
        self._writing = asyncio.Lock()  # one inbox transaction at a time
        self._queued: dict[int, str] = {}  # updates for the next transaction: id -> payload
        self._marks: set[int] = set()  # handled marks for the next transaction
        self._next: asyncio.Future[set[int]] | None = None  # its outcome: the ids it took
        self._expected: dict[int, asyncio.Future[set[int]]] = {}  # announced, not yet taken

    def _now(self) -> int:
        return int(self.clock().timestamp())

    def expect(self, updates: Mapping[int, str]) -> None:
        """Updates just received (id -> payload as received), whose takes will follow: they
        are written with the next transaction, so the first take writes them all."""
        for update_id, payload in updates.items():
            if update_id not in self._expected:
                self._queued[update_id] = payload
                self._expected[update_id] = self._next_outcome()

    def expects(self, update_id: int) -> bool:
        """Whether `update_id` was announced (its take needs no payload of its own)."""
        return update_id in self._expected

    async def take(self, update_id: int, payload: str | None) -> bool:
        """Write an update down before it is confirmed; False if it was taken before.
        `payload` may be None for an update announced by `expect`."""
        outcome = self._expected.pop(update_id, None)
        if outcome is None:
            if payload is None:
                raise ValueError(f"update {update_id} was not announced: its payload is needed")
            self._queued[update_id] = payload
            outcome = self._next_outcome()
        return update_id in await self._committed(outcome)

    async def handled(self, update_id: int) -> None:
        """Mark the update handled; returns once the mark is committed."""
        self._marks.add(update_id)
        await self._committed(self._next_outcome())

    def _next_outcome(self) -> asyncio.Future[set[int]]:
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        return self._next

    async def _committed(self, outcome: asyncio.Future[set[int]]) -> set[int]:
        """Wait until the transaction of `outcome` has committed, running it if it has not
        started when the previous one ends (then `outcome` is still the next one's)."""
        async with self._writing:
            if not outcome.done():
                await self._write()
        return outcome.result()

    async def _write(self) -> None:
        """One transaction for everything queued; its outcome goes to all who wait for it."""
        queued, marks, outcome = self._queued, self._marks, self._next
        self._queued, self._marks, self._next = {}, set(), None
        assert outcome is not None
        try:
            taken = await store.journal(self.db, queued, marks, self._now())
        except Exception as exc:
            outcome.set_exception(exc)
            return
        except BaseException:
            outcome.set_exception(WriteInterrupted("update inbox: write cancelled"))
            raise
        outcome.set_result(taken)

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
