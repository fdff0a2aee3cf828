"""SQL for points redemptions: one-time codes and their `redemption` ledger entries."""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Connection, Database, guarded_update


@dataclass(frozen=True)
class Code:
    code: str
    rider_id: int
    merchant_name: str
    item: str
    points: int
    created_at: int
    expires_at: int
    status: str  # issued | used | cancelled
    used_at: int | None
    used_by: int | None


_CODE_COLUMNS = (
    "code, rider_id, merchant_name, item, points, created_at, expires_at, status, used_at, used_by"
)


async def ledger_points(conn: Connection, rider_id: int) -> int:
    async with conn.execute(
        "SELECT COALESCE(SUM(points), 0) FROM ledger WHERE rider_id = ?", (rider_id,)
    ) as cur:
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def reserved_points(conn: Connection, rider_id: int, now: int) -> int:
    """Points held by the rider's codes that are issued and not yet expired."""
    async with conn.execute(
        "SELECT COALESCE(SUM(points), 0) FROM redemption_codes"
        " WHERE rider_id = ? AND status = 'issued' AND expires_at > ?",
        (rider_id, now),
    ) as cur:
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def codes_since(conn: Connection, rider_id: int, since: int) -> int:
    async with conn.execute(
        "SELECT COUNT(*) FROM redemption_codes WHERE rider_id = ? AND created_at >= ?",
        (rider_id, since),
    ) as cur:
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def insert_code(
    conn: Connection,
    *,
    code: str,
    rider_id: int,
    merchant: str,
    item: str,
    points: int,
    now: int,
    expires_at: int,
    press: str | None = None,
) -> bool:
    cursor = await conn.execute(
        "INSERT INTO redemption_codes (code, rider_id, merchant_name, item, points, created_at,"
        " expires_at, press) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (code) DO NOTHING",
        (code, rider_id, merchant, item, points, now, expires_at, press),
    )
    return cursor.rowcount == 1


async def code_for_press(conn: Connection, press: str) -> Code | None:
    """The code an earlier handling of the same press issued, if any."""
    async with conn.execute(
        f"SELECT {_CODE_COLUMNS} FROM redemption_codes WHERE press = ?",  # noqa: S608
        (press,),
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else Code(*row)


async def code(db: Database, value: str) -> Code | None:
    row = await db.fetchone(
        f"SELECT {_CODE_COLUMNS} FROM redemption_codes WHERE code = ?",  # noqa: S608
        (value,),
    )
    return None if row is None else Code(*row)


async def cancel(db: Database, value: str, rider_id: int) -> bool:
    async with db.transaction() as conn:
        mine = {"code": value, "rider_id": rider_id}
        return await guarded_update(conn, "redemption_codes", mine, "status", "issued", "cancelled")


async def redemptions_since(conn: Connection, merchant: str, since: int) -> int:
    async with conn.execute(
        "SELECT COUNT(*) FROM redemption_codes WHERE merchant_name = ? AND status = 'used'"
        " AND used_at >= ?",
        (merchant, since),
    ) as cur:
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def mark_used(conn: Connection, value: str, merchant: str, staff: int, now: int) -> bool:
    """The guarded UPDATE: only an issued, unexpired code of this merchant; True if this
    call spent it."""
    return await guarded_update(
        conn,
        "redemption_codes",
        {"code": value, "merchant_name": merchant},
        "status",
        "issued",
        "used",
        {"used_at": now, "used_by": staff},
        condition="expires_at > ?",
        condition_params=(now,),
    )


async def insert_redemption(
    conn: Connection, *, rider_id: int, points: int, code: str, memo: str, now: int
) -> None:
    """The `redeem:<code>` entry taking `points` (positive) off the rider's points."""
    await conn.execute(
        "INSERT INTO ledger (rider_id, kind, amount_fen, points, idempotency_key, memo,"
        " created_at) VALUES (?, 'redemption', 0, ?, 'redeem:' || ?, ?, ?)",
        (rider_id, -points, code, memo, now),
    )


async def used_between(db: Database, start: int, end: int) -> list[Code]:
    """Codes used in [start, end), by merchant and time."""
    rows = await db.fetchall(
        f"SELECT {_CODE_COLUMNS} FROM redemption_codes"  # noqa: S608
        " WHERE status = 'used' AND used_at >= ? AND used_at < ?"
        " ORDER BY merchant_name, used_at, code",
        (start, end),
    )
    return [Code(*row) for row in rows]


async def anomalies(conn: Connection) -> list[tuple[str, str]]:
    """(problem, code) where points and codes disagree.

    Problems: used_without_entry, entry_without_used_code, entry_mismatch. (Negative points
    are found by `ledger.rider_checks`, which sums every rider's entries anyway.)
    """
    async with conn.execute(
        """
        SELECT 'used_without_entry', c.code FROM redemption_codes AS c
        WHERE c.status = 'used' AND NOT EXISTS (
            SELECT 1 FROM ledger AS l WHERE l.idempotency_key = 'redeem:' || c.code)
        UNION ALL
        SELECT 'entry_without_used_code', substr(l.idempotency_key, 8) FROM ledger AS l
        WHERE l.kind = 'redemption' AND NOT EXISTS (
            SELECT 1 FROM redemption_codes AS c
            WHERE 'redeem:' || c.code = l.idempotency_key AND c.status = 'used')
        UNION ALL
        SELECT 'entry_mismatch', c.code FROM redemption_codes AS c
        JOIN ledger AS l ON l.idempotency_key = 'redeem:' || c.code
        WHERE l.rider_id <> c.rider_id OR l.points <> -c.points
        """
    ) as cursor:
        return [(str(row[0]), str(row[1])) for row in await cursor.fetchall()]


async def code_in(conn: Connection, value: str) -> Code | None:
    """The code as the caller's transaction sees it."""
    async with conn.execute(
        f"SELECT {_CODE_COLUMNS} FROM redemption_codes WHERE code = ?",  # noqa: S608
        (value,),
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else Code(*row)


async def owner_telegram_id(db: Database, value: str) -> int | None:
    """The Telegram id of the rider a code was issued to."""
    row = await db.fetchone(
        "SELECT u.telegram_id FROM redemption_codes c JOIN users u ON u.id = c.rider_id"
        " WHERE c.code = ?",
        (value,),
    )
    return None if row is None or row[0] is None else int(row[0])


async def telegram_id_of(conn: Connection, rider_id: int) -> int | None:
    async with conn.execute("SELECT telegram_id FROM users WHERE id = ?", (rider_id,)) as cur:
        row = await cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])
