"""SQL for the `users` table."""

from __future__ import annotations

import time
from collections.abc import Iterable

from storage.db import Connection, Database, placeholders


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


async def remember_name(
    db: Database, telegram_id: int, name: str, username: str | None, now: int
) -> None:
    """What Telegram calls a staff member now (name, @username without the @)."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO staff_names (telegram_id, name, username, seen_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (telegram_id) DO UPDATE SET name = excluded.name, "
            "username = excluded.username, seen_at = excluded.seen_at",
            (telegram_id, name, username, now),
        )


async def names(conn: Connection, telegram_ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
    """(name, username) of each of these people the bot has seen as staff."""
    wanted = sorted(set(telegram_ids))
    if not wanted:
        return {}
    marks = placeholders(wanted)
    async with conn.execute(
        f"SELECT telegram_id, name, username FROM staff_names WHERE telegram_id IN ({marks})",  # noqa: S608
        tuple(wanted),
    ) as cursor:
        rows = await cursor.fetchall()
    return {int(row[0]): (str(row[1]), row[2]) for row in rows}
