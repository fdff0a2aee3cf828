"""/ask: a rider reaches a person. The question goes to the moderators' chat (or, without
one, to each admin) as a message that names only its number; whoever replies to it there
answers the rider, who is told in their language. The rider's name and id are never shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.clock import Now, utc_now
from services.outbox import Notice, Outbox
from services.refusal import Refused
from settings import Settings
from storage import asks as store
from storage import reports as riders
from storage.db import Database

OPEN_ASKS_PER_RIDER = 3  # unanswered questions a rider may have at once
ASK_MAX_CHARS = 500
ASK_KEY = "ask:"  # the moderators' copies' once_key: ask:<number>:<chat> (storage/reports.py)
ASKED_MARK = "📨"  # the moderators' copy of a question starts with it, in every language


class AskRefusal(StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"
    TOO_MANY = "too_many"
    UNKNOWN = "unknown"  # no such question (a forged or mistyped number)
    GONE = "gone"  # the rider deleted their data


@dataclass(frozen=True)
class Asked:
    number: int


class Asks:
    def __init__(
        self, db: Database, settings: Settings, outbox: Outbox, clock: Now = utc_now
    ) -> None:
        self.db = db
        self.settings = settings
        self.outbox = outbox
        self.clock = clock

    def now(self) -> int:
        return int(self.clock().timestamp())

    def _people(self) -> list[int]:
        chat = self.settings.moderator_chat_id
        return [chat] if chat is not None else sorted(self.settings.admin_ids)

    async def ask(self, telegram_id: int, text: str) -> Asked | Refused[AskRefusal]:
        """Pass the rider's question on; at most `OPEN_ASKS_PER_RIDER` wait at once."""
        text = text.strip()
        if not text:
            return Refused(AskRefusal.EMPTY)
        if len(text) > ASK_MAX_CHARS:
            return Refused(AskRefusal.TOO_LONG, limit=ASK_MAX_CHARS)
        rider_id = await riders.rider_id_of(self.db, telegram_id)
        if rider_id is None:
            return Refused(AskRefusal.GONE)
        async with self.db.transaction() as conn:
            if await store.open_count(conn, rider_id) >= OPEN_ASKS_PER_RIDER:
                return Refused(AskRefusal.TOO_MANY, limit=OPEN_ASKS_PER_RIDER)
            number = await store.add(conn, rider_id, text, self.now())
            await self.outbox.queue(
                conn,
                [
                    Notice(
                        chat,
                        "ask.to_people",
                        {"number": number, "text": text},
                        once_key=f"{ASK_KEY}{number}:{chat}",  # /delete finds it by this
                    )
                    for chat in self._people()
                ],
            )
        return Asked(number)

    async def answer(self, number: int, by: int, text: str) -> Asked | Refused[AskRefusal]:
        """A moderator's reply to question `number` goes to its rider (every reply does; the
        first is recorded as the answer)."""
        text = text.strip()
        if not text:
            return Refused(AskRefusal.EMPTY)
        async with self.db.transaction() as conn:
            row = await store.asker(conn, number)
            if row is None:
                return Refused(AskRefusal.UNKNOWN)
            if row[0] is None:
                return Refused(AskRefusal.GONE)
            await store.answered(conn, number, by, self.now())
            await self.outbox.queue(
                conn, [Notice(int(row[0]), "ask.answered", {"number": number, "text": text})]
            )
        return Asked(number)
