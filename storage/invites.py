"""SQL for one-time invitations (services/invites.py)."""

from __future__ import annotations

from storage.db import Connection, Database, Row


async def create(
    db: Database, role: str, target: str | None, by: int, now: int, expires_at: int
) -> int:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT INTO invites (role, target, created_by, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (role, target, by, now, expires_at),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid


async def invite(conn: Connection, invite_id: int) -> Row | None:
    async with conn.execute(
        "SELECT id, role, target, created_by, expires_at, used_by FROM invites WHERE id = ?",
        (invite_id,),
    ) as cursor:
        row: Row | None = await cursor.fetchone()
        return row


async def use(conn: Connection, invite_id: int, telegram_id: int, now: int) -> bool:
    """Spend the invitation: one guarded UPDATE, so two taps make one member."""
    cursor = await conn.execute(
        "UPDATE invites SET used_by = ?, used_at = ? WHERE id = ? AND used_by IS NULL "
        "AND expires_at > ?",
        (telegram_id, now, invite_id, now),
    )
    return cursor.rowcount == 1
