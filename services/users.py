"""Who a user is to the bot: for now, which language they are answered in."""

from __future__ import annotations

from locales import DEFAULT_LANGUAGE, LANGUAGES, language_for
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
