"""SQL for the `users` table."""

from __future__ import annotations

import time

from storage.db import Database


async def chosen_language(db: Database, telegram_id: int) -> str | None:
    """The language the user picked with /language, or None if they never did."""
    row = await db.fetchone("SELECT language FROM users WHERE telegram_id = ?", (telegram_id,))
    return None if row is None else row["language"]


async def set_language(db: Database, telegram_id: int, language: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO users (telegram_id, language, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (telegram_id) DO UPDATE SET language = excluded.language",
            (telegram_id, language, int(time.time())),
        )
