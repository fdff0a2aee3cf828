"""Who a user is to the bot: which language they are answered in; what staff are called."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from locales import DEFAULT_LANGUAGE, LANGUAGES, language_for
from services.clock import Clock
from storage import users
from storage.db import Database


class Languages:
    """Resolves each user's language, caching their explicit choice in memory."""

    default = DEFAULT_LANGUAGE

    def __init__(self, db: Database) -> None:
        self._db = db
        self._chosen: dict[int, str | None] = {}

    async def of(self, user_id: int, telegram_code: str | None) -> str:
        if user_id not in self._chosen:
            self._chosen[user_id] = await users.chosen_language(self._db, user_id)
        return language_for(telegram_code, self._chosen[user_id])

    def forget(self, user_id: int) -> None:
        """Drop the cached choice (the database changed underneath, e.g. at consent)."""
        self._chosen.pop(user_id, None)

    async def choose(self, user_id: int, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"unsupported language {language!r}")
        await users.set_language(self._db, user_id, language)
        self._chosen[user_id] = language


@dataclass(frozen=True)
class Name:
    """What Telegram calls a person: their name, and their @username if they have one."""

    name: str
    username: str | None = None

    @classmethod
    def of(cls, first: str, last: str | None, username: str | None) -> Name:
        """From what Telegram gives: first and last name, and the @username without its @."""
        return cls(" ".join(filter(None, (first.strip(), (last or "").strip()))) or "?", username)

    def short(self) -> str:
        """For a card: the name alone."""
        return self.name

    def full(self) -> str:
        """For a list of people: the name and the @username."""
        return f"{self.name} @{self.username}" if self.username else self.name


class Names:
    """Staff are named, not numbered: what Telegram last called each moderator, admin and
    staff member, written only when it changes (one dictionary lookup per update)."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._seen: dict[int, Name] = {}

    async def saw(self, telegram_id: int, name: Name) -> None:
        """What this staff member is called now, as their latest update says."""
        if self._seen.get(telegram_id) == name:
            return
        now = int(self._clock().timestamp())
        await users.remember_name(self._db, telegram_id, name.name, name.username, now)
        self._seen[telegram_id] = name

    async def of(self, telegram_ids: Iterable[int]) -> dict[int, Name]:
        """The names of these people that the bot has seen; the unseen are left out."""
        async with self._db.snapshot() as conn:
            found = await users.names(conn, telegram_ids)
        return {key: Name(name, username) for key, (name, username) in found.items()}
