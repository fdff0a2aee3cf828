"""SQL for moderators, review cards, decisions and the 24-hour promise."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from storage.db import Connection, Database, Row, guarded_update, placeholders

REPORT_COLUMNS = (
    "r.id, r.reference, r.status, r.rider_id, u.telegram_id AS rider_telegram_id, "
    "u.language AS rider_language, r.category, r.description, r.latitude, r.longitude, "
    "r.photo_distance_m, r.submitted_at, r.deadline_at, r.card_chat_id, r.card_message_id, "
    "r.card_copy, r.town, r.grid, r.venue_name, "
    "r.decided_by, r.decided_at, r.reward_fen, r.points, r.reject_reason, r.duplicate_of, "
    "r.question, r.answer, r.proposed_fen, r.proposed_by, r.updated_at, "
    "(SELECT d.reference FROM reports d WHERE d.id = r.duplicate_of) AS duplicate_reference"
)


async def report(conn: Connection, report_id: int) -> Row | None:
    async with conn.execute(
        f"SELECT {REPORT_COLUMNS} FROM reports r JOIN users u ON u.id = r.rider_id "  # noqa: S608
        "WHERE r.id = ? AND r.reference IS NOT NULL",
        (report_id,),
    ) as cursor:
        row: Row | None = await cursor.fetchone()
        return row


async def report_by_reference(conn: Connection, reference: str) -> int | None:
    async with conn.execute("SELECT id FROM reports WHERE reference = ?", (reference,)) as cur:
        row = await cur.fetchone()
    return None if row is None else int(row[0])


async def set_status(
    conn: Connection, report_id: int, expected: str, new: str, **fields: object
) -> bool:
    """The one guarded transition: True only for the caller who moved it from `expected`."""
    allowed = {
        "decided_by",
        "decided_at",
        "reward_fen",
        "points",
        "reject_reason",
        "duplicate_of",
        "question",
        "answer",
        "proposed_fen",
        "proposed_by",
        "updated_at",
        "asked_at",
        "question_reminded_at",
    }
    if set(fields) - allowed:
        raise ValueError(f"not report columns: {sorted(set(fields) - allowed)}")
    return await guarded_update(conn, "reports", {"id": report_id}, "status", expected, new, fields)


async def propose(conn: Connection, report_id: int, amount_fen: int, moderator_id: int) -> bool:
    cursor = await conn.execute(
        "UPDATE reports SET proposed_fen = ?, proposed_by = ? "
        "WHERE id = ? AND status = 'pending' AND proposed_by IS NULL",
        (amount_fen, moderator_id, report_id),
    )
    return cursor.rowcount == 1


async def record_decision(
    conn: Connection,
    report_id: int,
    moderator_id: int,
    action: str,
    previous_status: str,
    new_status: str,
    now: int,
    amount_fen: int | None = None,
    detail: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO decisions (report_id, moderator_id, action, previous_status, new_status, "
        "amount_fen, detail, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (report_id, moderator_id, action, previous_status, new_status, amount_fen, detail, now),
    )


async def track_record(conn: Connection, rider_id: int) -> tuple[int, int, int]:
    """(approved, rejected, submitted) for a rider."""
    async with conn.execute(
        "SELECT COALESCE(SUM(CASE WHEN status = 'approved' THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN status = 'rejected' THEN 1 ELSE 0 END), 0), "
        "COUNT(*) FROM reports WHERE rider_id = ? AND reference IS NOT NULL",
        (rider_id,),
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


async def photo_facts(conn: Connection, report_id: int) -> Sequence[Row]:
    async with conn.execute(
        "SELECT position, phash, not_fresh, gps_latitude, gps_longitude, evidence_file_id, "
        "evidence IS NOT NULL AS has_evidence FROM report_photos WHERE report_id = ? "
        "ORDER BY position",
        (report_id,),
    ) as cursor:
        return list(await cursor.fetchall())


async def evidence(conn: Connection, report_id: int, position: int) -> Row | None:
    async with conn.execute(
        "SELECT evidence, evidence_file_id FROM report_photos WHERE report_id = ? AND position = ?",
        (report_id, position),
    ) as cursor:
        row: Row | None = await cursor.fetchone()
        return row


async def remember_evidence_file(
    conn: Connection, report_id: int, position: int, file_id: str
) -> None:
    await conn.execute(
        "UPDATE report_photos SET evidence_file_id = ? WHERE report_id = ? AND position = ?",
        (file_id, report_id, position),
    )


async def phashes_since(conn: Connection, since: int, except_report: int) -> Sequence[Row]:
    async with conn.execute(
        "SELECT p.phash, r.reference FROM report_photos p JOIN reports r ON r.id = p.report_id "
        "WHERE r.submitted_at >= ? AND r.id <> ? AND r.reference IS NOT NULL",
        (since, except_report),
    ) as cursor:
        return list(await cursor.fetchall())


async def reports_in_box(
    conn: Connection,
    box: tuple[float, float, float, float],
    since: int,
    except_report: int,
) -> Sequence[Row]:
    """Submitted reports inside the (min_lat, min_lon, max_lat, max_lon) box since `since`."""
    async with conn.execute(
        "SELECT id, reference, latitude, longitude FROM reports "
        "WHERE latitude BETWEEN ? AND ? AND longitude BETWEEN ? AND ? AND submitted_at >= ? "
        "AND id <> ? AND reference IS NOT NULL ORDER BY submitted_at",
        (box[0], box[2], box[1], box[3], since, except_report),
    ) as cursor:
        return list(await cursor.fetchall())


# --- cards ------------------------------------------------------------------------------


async def cards_to_send(
    db: Database, limit: int, waiting: Collection[str], urgent: Sequence[str] = ()
) -> list[int]:
    """Cards still to send of reports in a `waiting` status: urgent categories first, then in
    submission order."""
    rows = await db.fetchall(
        "SELECT id FROM reports WHERE card_message_id IS NULL AND reference IS NOT NULL "  # noqa: S608
        f"AND status IN ({placeholders(waiting)}) "
        # Submission order: references count up within a day (and may grow a digit).
        f"ORDER BY category IN ({placeholders(urgent)}) DESC, "
        "submitted_at, LENGTH(reference), reference LIMIT ?",
        (*waiting, *urgent, limit),
    )
    return [int(row[0]) for row in rows]


async def begin_card(conn: Connection, report_id: int, now: int) -> bool:
    """Note that a card is being sent; True if an earlier attempt's fate is unknown."""
    async with conn.execute(
        "SELECT card_attempted_at FROM reports WHERE id = ?", (report_id,)
    ) as cursor:
        row = await cursor.fetchone()
    await conn.execute("UPDATE reports SET card_attempted_at = ? WHERE id = ?", (now, report_id))
    return row is not None and row[0] is not None


async def card_refused(conn: Connection, report_id: int) -> None:
    """Telegram answered the send with an error: no copy of the card exists."""
    await conn.execute("UPDATE reports SET card_attempted_at = NULL WHERE id = ?", (report_id,))


async def record_card(
    conn: Connection, report_id: int, chat_id: int, message_id: int, copy: bool
) -> None:
    """The card is in the chat (`copy`: marked as a possible second copy)."""
    await conn.execute(
        "UPDATE reports SET card_chat_id = ?, card_message_id = ?, card_copy = ? WHERE id = ?",
        (chat_id, message_id, int(copy), report_id),
    )


# --- moderators -------------------------------------------------------------------------


async def is_added_moderator(db: Database, telegram_id: int) -> bool:
    row = await db.fetchone("SELECT 1 FROM moderators WHERE telegram_id = ?", (telegram_id,))
    return row is not None


async def is_added_moderator_in(conn: Connection, telegram_id: int) -> bool:
    """`is_added_moderator`, inside the caller's transaction."""
    async with conn.execute(
        "SELECT 1 FROM moderators WHERE telegram_id = ?", (telegram_id,)
    ) as cursor:
        return await cursor.fetchone() is not None


async def added_moderators(db: Database) -> list[int]:
    rows = await db.fetchall("SELECT telegram_id FROM moderators ORDER BY added_at")
    return [int(row[0]) for row in rows]


async def add_moderator(db: Database, telegram_id: int, added_by: int, now: int) -> bool:
    async with db.transaction() as conn:
        return await insert_moderator(conn, telegram_id, added_by, now)


async def insert_moderator(conn: Connection, telegram_id: int, added_by: int, now: int) -> bool:
    """In the caller's transaction; False if they were one already."""
    cursor = await conn.execute(
        "INSERT INTO moderators (telegram_id, added_by, added_at) VALUES (?, ?, ?) "
        "ON CONFLICT (telegram_id) DO NOTHING",
        (telegram_id, added_by, now),
    )
    return cursor.rowcount == 1


async def remove_moderator(db: Database, telegram_id: int) -> tuple[bool, list[int]]:
    """Remove an added moderator and void their open proposals; (removed, voided report ids)."""
    async with db.transaction() as conn:
        cursor = await conn.execute("DELETE FROM moderators WHERE telegram_id = ?", (telegram_id,))
        removed = cursor.rowcount == 1
        voided = await void_proposals(conn, telegram_id) if removed else []
        return removed, voided


async def void_proposals(conn: Connection, moderator_id: int) -> list[int]:
    """Clear the open proposals of a moderator who may no longer decide."""
    async with conn.execute(
        "UPDATE reports SET proposed_fen = NULL, proposed_by = NULL "
        "WHERE proposed_by = ? AND status = 'pending' RETURNING id",
        (moderator_id,),
    ) as cursor:
        return [int(row[0]) for row in await cursor.fetchall()]


# --- the queue and the promise -------------------------------------------------------------


async def pending_oldest_first(db: Database, after_submitted: int, after_id: int) -> int | None:
    row = await db.fetchone(
        "SELECT id FROM reports WHERE status = 'pending' AND (submitted_at, id) > (?, ?) "
        "ORDER BY submitted_at, id LIMIT 1",
        (after_submitted, after_id),
    )
    return None if row is None else int(row[0])


async def waiting_since(conn: Connection, submitted_before: int) -> Sequence[Row]:
    async with conn.execute(
        "SELECT r.id, r.reference, r.submitted_at, r.deadline_at, r.digest_at, r.escalated_at, "
        "r.breached_at, u.telegram_id AS rider_telegram_id, u.language AS rider_language "
        "FROM reports r JOIN users u ON u.id = r.rider_id "
        "WHERE r.status = 'pending' AND r.submitted_at <= ? ORDER BY r.submitted_at",
        (submitted_before,),
    ) as cursor:
        return list(await cursor.fetchall())


async def mark(conn: Connection, column: str, report_ids: Sequence[int], now: int) -> None:
    if column not in ("digest_at", "escalated_at", "breached_at", "question_reminded_at"):
        raise ValueError(column)
    await conn.executemany(
        f"UPDATE reports SET {column} = ? WHERE id = ? AND {column} IS NULL",  # noqa: S608
        [(now, report_id) for report_id in report_ids],
    )


async def open_question(conn: Connection, rider_telegram_id: int) -> int | None:
    async with conn.execute(
        "SELECT r.id FROM reports r JOIN users u ON u.id = r.rider_id "
        "WHERE u.telegram_id = ? AND r.status = 'needs_info' ORDER BY r.submitted_at LIMIT 1",
        (rider_telegram_id,),
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else int(row[0])


async def answered_since(conn: Connection, rider_telegram_id: int, since: int) -> int | None:
    """The report whose question this rider answered at or after `since` and that still waits
    for a moderator's decision, if any."""
    async with conn.execute(
        "SELECT r.id FROM reports r JOIN users u ON u.id = r.rider_id "
        "JOIN decisions d ON d.report_id = r.id AND d.action = 'answer' "
        "WHERE u.telegram_id = ? AND r.status = 'pending' AND d.created_at >= ? "
        "ORDER BY d.created_at DESC LIMIT 1",
        (rider_telegram_id, since),
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else int(row[0])


async def open_questions(conn: Connection, asked_before: int) -> Sequence[Row]:
    """Reports waiting for their rider's answer since before `asked_before`."""
    async with conn.execute(
        "SELECT r.id, r.reference, r.question, r.asked_at, r.question_reminded_at, "
        "u.telegram_id AS rider_telegram_id FROM reports r JOIN users u ON u.id = r.rider_id "
        "WHERE r.status = 'needs_info' AND r.asked_at <= ? ORDER BY r.asked_at",
        (asked_before,),
    ) as cursor:
        return list(await cursor.fetchall())


async def add_card_view(conn: Connection, report_id: int, chat_id: int, message_id: int) -> None:
    """A private copy of the report's card that should follow its decisions."""
    await conn.execute(
        "INSERT INTO card_views (report_id, chat_id, message_id) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (report_id, chat_id, message_id),
    )


async def card_views(conn: Connection, report_id: int) -> list[tuple[int, int]]:
    async with conn.execute(
        "SELECT chat_id, message_id FROM card_views WHERE report_id = ? ORDER BY chat_id",
        (report_id,),
    ) as cursor:
        return [(int(row[0]), int(row[1])) for row in await cursor.fetchall()]
