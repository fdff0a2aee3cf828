"""SQL for the outbox: notices queued inside a change's transaction, claimed, then settled."""

from __future__ import annotations

from storage.db import Connection, Database, Row


async def enqueue(
    conn: Connection,
    *,
    chat_id: int,
    language: str | None,
    message: str,
    body: str,
    once_key: str | None,
    now: int,
) -> bool:
    """Queue one notice inside the caller's transaction; False if `once_key` was queued before."""
    cursor = await conn.execute(
        "INSERT INTO outbox (chat_id, language, message, body, once_key, created_at, "
        "next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (once_key) DO NOTHING",
        (chat_id, language, message, body, once_key, now, now),
    )
    return cursor.rowcount == 1


async def due(db: Database, now: int, limit: int) -> list[Row]:
    """Each chat's earliest open notice, if its time has come: a chat's notices keep order."""
    return await db.fetchall(
        "SELECT id, chat_id, language, message, body, attempts FROM outbox AS o "
        "WHERE sent_at IS NULL AND gave_up_at IS NULL AND claimed_at IS NULL "
        "AND next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox AS e "
        "WHERE e.chat_id = o.chat_id AND e.id < o.id AND e.sent_at IS NULL "
        "AND e.gave_up_at IS NULL) ORDER BY id LIMIT ?",
        (now, limit),
    )


async def unsettled_due(db: Database, now: int) -> int:
    """How many notices are due or being sent right now."""
    row = await db.fetchone(
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND gave_up_at IS NULL "
        "AND next_attempt_at <= ?",
        (now,),
    )
    return int(row[0]) if row else 0


async def claim(db: Database, notice_id: int, now: int) -> bool:
    """Take one notice for a delivery attempt; False if another attempt has it."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE outbox SET claimed_at = ? WHERE id = ? AND claimed_at IS NULL "
            "AND sent_at IS NULL AND gave_up_at IS NULL",
            (now, notice_id),
        )
        return cursor.rowcount == 1


async def mark_sent(db: Database, notice_id: int, now: int) -> None:
    async with db.transaction() as conn:
        await conn.execute("UPDATE outbox SET sent_at = ? WHERE id = ?", (now, notice_id))


async def retry_later(
    db: Database, notice_id: int, attempts: int, next_attempt_at: int, error: str
) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ?, "
            "claimed_at = NULL WHERE id = ?",
            (attempts, next_attempt_at, error, notice_id),
        )


async def give_up(db: Database, notice_id: int, now: int, error: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE outbox SET gave_up_at = ?, last_error = ? WHERE id = ?",
            (now, error, notice_id),
        )


async def abandon_interrupted(db: Database, now: int) -> list[Row]:
    """Notices claimed by a process that stopped before settling them: their delivery is
    uncertain, so they are given up (at most once) and returned for the log."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "SELECT id, chat_id, message FROM outbox WHERE claimed_at IS NOT NULL "
            "AND sent_at IS NULL AND gave_up_at IS NULL"
        )
        rows = list(await cursor.fetchall())
        await conn.execute(
            "UPDATE outbox SET gave_up_at = ?, last_error = 'interrupted while sending' "
            "WHERE claimed_at IS NOT NULL AND sent_at IS NULL AND gave_up_at IS NULL",
            (now,),
        )
    return rows


async def retry_now(db: Database, now: int) -> int:
    """Make every notice waiting for a retry due now; returns how many."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE outbox SET next_attempt_at = ? WHERE sent_at IS NULL AND gave_up_at IS NULL "
            "AND claimed_at IS NULL AND next_attempt_at > ?",
            (now, now),
        )
        return cursor.rowcount


async def purge_finished(db: Database, before: int) -> int:
    """Delete notices sent or given up before `before`; returns how many."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM outbox WHERE created_at < ? AND (sent_at IS NOT NULL "
            "OR gave_up_at IS NOT NULL)",
            (before,),
        )
        return cursor.rowcount
