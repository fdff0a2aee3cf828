"""When to try an undelivered message again, and when to stop.

The pause doubles from a minute up to an hour; after `MAX_ATTEMPTS` (about a day of trying)
the message is given up and logged. A person who blocked the bot is not retried at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.reporting import Clock, utc_now
from storage import outbox as store
from storage.db import Database

FIRST_PAUSE_SECONDS = 60
LONGEST_PAUSE_SECONDS = 3600
MAX_ATTEMPTS = 30


def pause_after(attempts: int) -> int:
    """Seconds to wait after `attempts` failed attempts."""
    return int(min(FIRST_PAUSE_SECONDS * 2 ** max(attempts - 1, 0), LONGEST_PAUSE_SECONDS))


@dataclass(frozen=True)
class Pending:
    id: int
    chat_id: int
    text: str
    attempts: int


class Outbox:
    def __init__(self, db: Database, clock: Clock = utc_now) -> None:
        self.db = db
        self.clock = clock

    def _now(self) -> int:
        return int(self.clock().timestamp())

    async def later(self, chat_id: int, text: str) -> None:
        """Keep a message that failed now, for the drain job."""
        now = self._now()
        await store.enqueue(self.db, chat_id, text, now, now + pause_after(1))

    async def due(self, limit: int = 50) -> list[Pending]:
        rows = await store.due(self.db, self._now(), limit)
        return [Pending(row["id"], row["chat_id"], row["text"], row["attempts"]) for row in rows]

    async def delivered(self, message: Pending) -> None:
        await store.mark_sent(self.db, message.id, self._now())

    async def failed(self, message: Pending, error: str, *, permanent: bool) -> bool:
        """Record a failed attempt; True if it will be tried again."""
        attempts = message.attempts + 1
        if permanent or attempts >= MAX_ATTEMPTS:
            await store.give_up(self.db, message.id, self._now(), error)
            return False
        await store.retry_later(
            self.db, message.id, attempts, self._now() + pause_after(attempts), error
        )
        return True
