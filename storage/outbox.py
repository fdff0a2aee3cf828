"""SQL for the outbox of messages to deliver later."""

from __future__ import annotations

from storage.db import Database, Row


async def enqueue(db: Database, chat_id: int, text: str, now: int, next_attempt_at: int) -> int:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT INTO outbox (chat_id, text, created_at, attempts, next_attempt_at) "
            "VALUES (?, ?, ?, 1, ?)",
            (chat_id, text, now, next_attempt_at),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid


async def due(db: Database, now: int, limit: int) -> list[Row]:
    return await db.fetchall(
        "SELECT id, chat_id, text, attempts FROM outbox WHERE sent_at IS NULL "
        "AND gave_up_at IS NULL AND next_attempt_at <= ? ORDER BY id LIMIT ?",
        (now, limit),
    )


async def mark_sent(db: Database, message_id: int, now: int) -> None:
    async with db.transaction() as conn:
        await conn.execute("UPDATE outbox SET sent_at = ? WHERE id = ?", (now, message_id))


async def retry_later(
    db: Database, message_id: int, attempts: int, next_attempt_at: int, error: str
) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
            (attempts, next_attempt_at, error, message_id),
        )


async def give_up(db: Database, message_id: int, now: int, error: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE outbox SET gave_up_at = ?, last_error = ? WHERE id = ?",
            (now, error, message_id),
        )
