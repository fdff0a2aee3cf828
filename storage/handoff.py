"""SQL for handing cases to departments' own systems: deliveries, their attempts, and the
status updates that come back (each taken once)."""

from __future__ import annotations

from storage.db import Connection, Database, Row

DELIVERY_COLUMNS = (
    "id, case_id, department, channel, dispatched_at, idempotency_key, created_at, next_at, "
    "attempts, delivered_at, superseded_at, alerted_at, remote_id, remote_status, polled_at"
)


async def queue(
    conn: Connection, case_id: int, department: str, channel: str, dispatched_at: int, now: int
) -> None:
    """A delivery of this dispatch of the case, due now; earlier undelivered ones of the case
    (another department's, before a reroute) will never go."""
    await conn.execute(
        "UPDATE case_deliveries SET superseded_at = ? WHERE case_id = ? "
        "AND delivered_at IS NULL AND superseded_at IS NULL",
        (now, case_id),
    )
    await conn.execute(
        "INSERT INTO case_deliveries (case_id, department, channel, dispatched_at, "
        "idempotency_key, created_at, next_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (idempotency_key) DO NOTHING",
        (case_id, department, channel, dispatched_at, f"case-{case_id}-{dispatched_at}", now, now),
    )


async def heads(db: Database) -> list[Row]:
    """Each department's oldest delivery still to make: deliveries of one department go in
    order, so a later case never overtakes an earlier one."""
    return await db.fetchall(
        f"SELECT {DELIVERY_COLUMNS} FROM case_deliveries WHERE id IN ("  # noqa: S608
        "SELECT MIN(id) FROM case_deliveries WHERE delivered_at IS NULL "
        "AND superseded_at IS NULL GROUP BY department) ORDER BY id"
    )


async def delivery(db: Database, delivery_id: int) -> Row | None:
    return await db.fetchone(
        f"SELECT {DELIVERY_COLUMNS} FROM case_deliveries WHERE id = ?",  # noqa: S608
        (delivery_id,),
    )


async def attempted(
    db: Database,
    delivery_id: int,
    now: int,
    ok: bool,
    detail: str,
    ms: int,
    next_at: int,
    remote_id: str | None = None,
) -> int:
    """Record one attempt; a success marks the delivery made. The attempts so far."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO case_delivery_attempts (delivery_id, at, ok, detail, ms) "
            "VALUES (?, ?, ?, ?, ?)",
            (delivery_id, now, int(ok), detail[:300], ms),
        )
        await conn.execute(
            "UPDATE case_deliveries SET attempts = attempts + 1, next_at = ?, "
            "delivered_at = CASE WHEN ? = 1 THEN ? ELSE delivered_at END, "
            "remote_id = COALESCE(?, remote_id) WHERE id = ?",
            (next_at, int(ok), now, remote_id, delivery_id),
        )
        async with conn.execute(
            "SELECT attempts FROM case_deliveries WHERE id = ?", (delivery_id,)
        ) as cursor:
            row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def supersede(db: Database, delivery_id: int, now: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE case_deliveries SET superseded_at = ? WHERE id = ? AND delivered_at IS NULL",
            (now, delivery_id),
        )


async def mark_alerted(conn: Connection, delivery_id: int, now: int) -> bool:
    cursor = await conn.execute(
        "UPDATE case_deliveries SET alerted_at = ? WHERE id = ? AND alerted_at IS NULL",
        (now, delivery_id),
    )
    return cursor.rowcount == 1


async def attempts(db: Database, case_id: int) -> list[Row]:
    """Every attempt to hand the case over, oldest first, with its delivery's channel."""
    return await db.fetchall(
        "SELECT d.department, d.channel, d.dispatched_at, a.at, a.ok, a.detail, a.ms "
        "FROM case_delivery_attempts a JOIN case_deliveries d ON d.id = a.delivery_id "
        "WHERE d.case_id = ? ORDER BY a.id",
        (case_id,),
    )


async def undelivered(db: Database) -> dict[int, int]:
    """Cases whose current delivery has failed at least once: case id -> failed attempts."""
    rows = await db.fetchall(
        "SELECT case_id, attempts FROM case_deliveries WHERE delivered_at IS NULL "
        "AND superseded_at IS NULL AND attempts > 0"
    )
    return {int(row["case_id"]): int(row["attempts"]) for row in rows}


async def to_poll(db: Database, department: str, before: int, limit: int) -> list[Row]:
    """Open311 requests to read back: delivered, of a case still open, least recently read."""
    return await db.fetchall(
        f"SELECT {DELIVERY_COLUMNS} FROM case_deliveries d WHERE department = ? "  # noqa: S608
        "AND delivered_at IS NOT NULL AND remote_id IS NOT NULL "
        "AND COALESCE(polled_at, 0) < ? AND EXISTS (SELECT 1 FROM cases c WHERE c.id = d.case_id "
        "AND c.dispatched_at = d.dispatched_at "
        "AND c.state IN ('dispatched', 'accepted', 'reopened')) "
        "ORDER BY COALESCE(polled_at, 0), id LIMIT ?",
        (department, before, limit),
    )


async def polled(db: Database, delivery_id: int, status: str | None, now: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE case_deliveries SET polled_at = ?, remote_status = COALESCE(?, remote_status) "
            "WHERE id = ?",
            (now, status, delivery_id),
        )


async def taken_update(conn: Connection, department: str, update_id: str) -> str | None:
    """The answer given to this update the first time (None: it is new)."""
    async with conn.execute(
        "SELECT answer FROM case_updates WHERE department = ? AND update_id = ?",
        (department, update_id),
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else str(row[0])


async def take_update(
    conn: Connection,
    department: str,
    update_id: str,
    case_id: int,
    status: str,
    answer: str,
    now: int,
) -> bool:
    """Remember an update and its answer; False if it was taken already."""
    cursor = await conn.execute(
        "INSERT INTO case_updates (department, update_id, case_id, status, answer, received_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (department, update_id, case_id, status, answer, now),
    )
    return cursor.rowcount == 1


async def case_by_reference(db: Database, reference: str) -> int | None:
    row = await db.fetchone(
        "SELECT c.id FROM cases c JOIN reports r ON r.id = c.report_id WHERE r.reference = ?",
        (reference,),
    )
    return None if row is None else int(row[0])


async def report_photos(db: Database, report_id: int) -> list[bytes]:
    """The report's photos as the moderators saw them (re-encoded, no metadata), in order."""
    rows = await db.fetchall(
        "SELECT evidence FROM report_photos WHERE report_id = ? AND evidence IS NOT NULL "
        "ORDER BY position",
        (report_id,),
    )
    return [bytes(row[0]) for row in rows]


async def submitted_at(db: Database, report_id: int) -> int | None:
    row = await db.fetchone("SELECT submitted_at FROM reports WHERE id = ?", (report_id,))
    return None if row is None or row[0] is None else int(row[0])
