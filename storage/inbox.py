"""SQL for the update inbox: each update from Telegram, kept until it has been handled."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from storage.db import Database, Row


async def take(db: Database, update_id: int, payload: str, now: int) -> bool:
    """Write an update down; False if it was taken before (pending or already handled)."""
    return update_id in await journal(db, {update_id: payload}, (), now)


async def handled(db: Database, update_id: int, now: int) -> None:
    """The update's handling ended: forget what it said, keep that it was seen."""
    await journal(db, {}, (update_id,), now)


async def journal(
    db: Database, takes: Mapping[int, str], handled: Iterable[int], now: int
) -> set[int]:
    """In one transaction: write down the updates `takes` (id -> payload) and mark the
    updates `handled` done (their payload forgotten, their id kept). Returns the ids of
    `takes` written now; the others were taken before (pending or handled already).

    The statements keep one shape whatever the batch's size (a range read, then row by row),
    so PostgreSQL prepares each of them once."""
    async with db.transaction() as conn:
        taken: set[int] = set()
        if takes:
            cursor = await conn.execute(
                "SELECT update_id FROM update_inbox WHERE update_id BETWEEN ? AND ?",
                (min(takes), max(takes)),
            )
            known = {int(row[0]) for row in await cursor.fetchall()}
            rows = [(i, payload, now) for i, payload in takes.items() if i not in known]
            if rows:
                await conn.executemany(
                    "INSERT INTO update_inbox (update_id, payload, received_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (update_id) DO NOTHING",
                    rows,
                )
            taken = {row[0] for row in rows}
        marks = [(now, update_id) for update_id in handled]
        if marks:
            await conn.executemany(
                "UPDATE update_inbox SET payload = NULL, handled_at = ? "
                "WHERE update_id = ? AND handled_at IS NULL",
                marks,
            )
        return taken


async def last_received(db: Database) -> int | None:
    """When the newest update was written down (unix seconds), None before the first."""
    row = await db.fetchone("SELECT MAX(received_at) FROM update_inbox")
    return None if row is None or row[0] is None else int(row[0])


async def unhandled(db: Database) -> list[Row]:
    """Updates taken but never handled, oldest first, with how often each was replayed."""
    return await db.fetchall(
        "SELECT update_id, payload, replays FROM update_inbox WHERE handled_at IS NULL"
        " ORDER BY update_id"
    )


async def replaying(db: Database, update_ids: list[int], limit: int, now: int) -> list[int]:
    """Count one more replay of each update; those replayed `limit` times already are set
    aside instead (handled, their payload forgotten). Returns the ids set aside."""
    async with db.transaction() as conn:
        aside: list[int] = []
        for update_id in update_ids:
            cursor = await conn.execute(
                "UPDATE update_inbox SET handled_at = ?, payload = NULL"
                " WHERE update_id = ? AND handled_at IS NULL AND replays >= ?",
                (now, update_id, limit),
            )
            if cursor.rowcount:
                aside.append(update_id)
            else:
                await conn.execute(
                    "UPDATE update_inbox SET replays = replays + 1 WHERE update_id = ?",
                    (update_id,),
                )
        return aside


async def purge(db: Database, handled_before: int) -> int:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM update_inbox WHERE handled_at < ?", (handled_before,)
        )
        return cursor.rowcount
