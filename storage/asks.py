"""SQL for /ask: riders' questions for a person, and who answered them."""

from __future__ import annotations

from storage.db import Connection, Row


async def open_count(conn: Connection, rider_id: int) -> int:
    """The rider's questions nobody has answered yet."""
    async with conn.execute(
        "SELECT COUNT(*) FROM rider_asks WHERE rider_id = ? AND answered_at IS NULL", (rider_id,)
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def add(conn: Connection, rider_id: int, text: str, now: int) -> int:
    cursor = await conn.execute(
        "INSERT INTO rider_asks (rider_id, text, asked_at) VALUES (?, ?, ?)",
        (rider_id, text, now),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


async def asker(conn: Connection, ask_id: int) -> Row | None:
    """The question's rider (Telegram id, None once erased) and whether it was answered."""
    async with conn.execute(
        "SELECT u.telegram_id, a.answered_at FROM rider_asks a "
        "LEFT JOIN users u ON u.id = a.rider_id WHERE a.id = ?",
        (ask_id,),
    ) as cursor:
        row: Row | None = await cursor.fetchone()
        return row


async def answered(conn: Connection, ask_id: int, by: int, now: int) -> None:
    """The first answer is the one recorded; later ones are sent on all the same."""
    await conn.execute(
        "UPDATE rider_asks SET answered_at = ?, answered_by = ? "
        "WHERE id = ? AND answered_at IS NULL",
        (now, by, ask_id),
    )
