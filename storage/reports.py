"""SQL for riders (consent, erasure), report drafts, submitted reports and their photos."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from storage.db import Connection, Database, Row, placeholders


@dataclass(frozen=True)
class PhotoRow:
    """A stored photo of a report, without its evidence bytes."""

    position: int
    file_unique_id: str
    sha256: str
    phash: int
    taken_at: int | None
    gps_latitude: float | None
    gps_longitude: float | None
    not_fresh: bool


@dataclass(frozen=True)
class NewPhoto:
    file_unique_id: str
    sha256: str
    phash: int
    evidence: bytes
    taken_at: int | None
    gps: tuple[float, float] | None
    not_fresh: bool


# --- riders -----------------------------------------------------------------------------


async def rider_by_telegram_id(db: Database, telegram_id: int) -> Row | None:
    return await db.fetchone(
        "SELECT id, telegram_id, language, consented_at FROM users WHERE telegram_id = ?",
        (telegram_id,),
    )


async def record_consent(
    conn: Connection, telegram_id: int, language: str | None, now: int
) -> None:
    await conn.execute(
        "INSERT INTO users (telegram_id, language, created_at, consented_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (telegram_id) DO UPDATE SET "
        "consented_at = COALESCE(users.consented_at, excluded.consented_at), "
        "language = COALESCE(users.language, excluded.language)",
        (telegram_id, language, now, now),
    )


async def consented_rider_id(conn: Connection, telegram_id: int) -> int | None:
    async with conn.execute(
        "SELECT id FROM users WHERE telegram_id = ? AND consented_at IS NOT NULL", (telegram_id,)
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else int(row[0])


ERASED_RIDER = 0  # stands in for an erased rider's Telegram id where one was recorded


async def erase_rider(
    conn: Connection, telegram_id: int, now: int, waiting: Collection[str]
) -> bool:
    """Forget who the rider is and what they sent; keep only what the accounts need.

    Erased: the Telegram id and language, photos, drafts, descriptions, locations, the
    moderators' questions and the rider's answers (on the reports and in the decisions),
    what the rider said and showed on their cases, messages waiting in the outbox for them,
    the live and the unconfirmed payout details, the rider's /ask questions, live redemption
    codes (and, by the trigger of migration 0014, the rider's place, card name and place
    problems). Kept: the reports'
    references, categories and outcomes and the ledger, under the internal id only; and
    payout lines already in a batch (with the name and account finance received in the
    exported file), which are accounting records.
    """
    async with conn.execute("SELECT id FROM users WHERE telegram_id = ?", (telegram_id,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return False
    rider_id = int(row[0])
    for table in ("report_photos", "report_voices"):
        await conn.execute(
            f"DELETE FROM {table} WHERE report_id IN (SELECT id FROM reports WHERE rider_id = ?)",  # noqa: S608
            (rider_id,),
        )
    await conn.execute("DELETE FROM reports WHERE rider_id = ? AND status = 'draft'", (rider_id,))
    await conn.execute(  # its reports still `waiting` for a decision are withdrawn
        "UPDATE reports SET status = 'withdrawn', updated_at = ? "  # noqa: S608
        f"WHERE rider_id = ? AND status IN ({placeholders(waiting)})",
        (now, rider_id, *waiting),
    )
    await conn.execute(
        "UPDATE reports SET description = NULL, latitude = NULL, longitude = NULL, "
        "photo_distance_m = NULL, question = NULL, answer = NULL, venue_name = NULL "
        "WHERE rider_id = ?",
        (rider_id,),
    )
    # A question and an answer are the rider's words; the answer's "moderator" is the rider.
    await conn.execute(
        "UPDATE decisions SET detail = NULL, "
        "moderator_id = CASE WHEN action = 'answer' THEN ? ELSE moderator_id END "
        "WHERE action IN ('ask', 'answer') "
        "AND report_id IN (SELECT id FROM reports WHERE rider_id = ?)",
        (ERASED_RIDER, rider_id),
    )
    await _erase_from_cases(conn, rider_id, telegram_id)
    await conn.execute("DELETE FROM outbox WHERE chat_id = ?", (telegram_id,))
    await conn.execute("DELETE FROM payees WHERE rider_id = ?", (rider_id,))
    await conn.execute("DELETE FROM payee_pending WHERE rider_id = ?", (rider_id,))
    await conn.execute("DELETE FROM payee_steps WHERE rider_id = ?", (rider_id,))
    await conn.execute(  # the moderators' copies of the rider's /ask questions (services/asks)
        "DELETE FROM outbox WHERE message = 'ask.to_people' AND EXISTS (SELECT 1 FROM rider_asks a"
        " WHERE a.rider_id = ? AND outbox.once_key LIKE 'ask:' || a.id || ':%')",
        (rider_id,),
    )
    await conn.execute("DELETE FROM rider_asks WHERE rider_id = ?", (rider_id,))
    await conn.execute("DELETE FROM photo_intake WHERE rider_id = ?", (rider_id,))
    # Codes stay (the merchants' statements count them); a live one is void, and the press
    # that asked for it (a Telegram id of the rider's button press) is forgotten.
    await conn.execute(
        "UPDATE redemption_codes SET press = NULL, "
        "status = CASE WHEN status = 'issued' THEN 'cancelled' ELSE status END "
        "WHERE rider_id = ?",
        (rider_id,),
    )
    await conn.execute(
        "UPDATE users SET telegram_id = NULL, language = NULL, consented_at = NULL, "
        "payee_asked_at = NULL, erased_at = ? WHERE id = ?",
        (now, rider_id),
    )
    return True


async def _erase_from_cases(conn: Connection, rider_id: int, telegram_id: int) -> None:
    """The rider's words, photos and id on the cases their reports became; the cases go on."""
    theirs = "SELECT c.id FROM cases c JOIN reports r ON r.id = c.report_id WHERE r.rider_id = ?"
    await conn.execute(
        f"UPDATE cases SET note = NULL WHERE id IN ({theirs}) AND note IN ("  # noqa: S608
        "SELECT e.note FROM case_events e WHERE e.case_id = cases.id AND e.role = 'rider')",
        (rider_id,),
    )
    await conn.execute(
        "UPDATE case_events SET note = NULL, photo_id = NULL, actor = ? "  # noqa: S608
        f"WHERE role = 'rider' AND case_id IN ({theirs})",
        (ERASED_RIDER, rider_id),
    )
    # 回访 answers keep their verdict (the figures count it); the rider's words and photo go,
    # on their own cases and on the cases they followed as a duplicate's reporter.
    mine = "SELECT id FROM reports WHERE rider_id = ?"
    async with conn.execute(
        f"SELECT photo_id FROM case_feedback WHERE report_id IN ({mine}) "  # noqa: S608
        "AND photo_id IS NOT NULL",
        (rider_id,),
    ) as cursor:
        followed = [int(row[0]) for row in await cursor.fetchall()]
    await conn.execute(
        "UPDATE case_feedback SET reason = NULL, photo_id = NULL "  # noqa: S608
        f"WHERE report_id IN ({mine})",
        (rider_id,),
    )
    await conn.execute(  # (a follower's photo on the rider's case is the follower's)
        f"DELETE FROM case_photos WHERE kind = 'rider' AND case_id IN ({theirs}) "  # noqa: S608
        "AND id NOT IN (SELECT photo_id FROM case_feedback WHERE photo_id IS NOT NULL)",
        (rider_id,),
    )
    if followed:
        await conn.execute(
            f"DELETE FROM case_photos WHERE id IN ({placeholders(followed)})",  # noqa: S608
            tuple(followed),
        )
    await conn.execute("DELETE FROM case_prompts WHERE asked_of = ?", (telegram_id,))


async def checkpoint(db: Database) -> None:
    """Copy the WAL into the database file and empty it, so erased rows leave no old copy.
    (PostgreSQL: autovacuum reclaims dead rows; there is no file of ours to rewrite.)"""
    if db.engine == "sqlite":
        await db.fetchone("PRAGMA wal_checkpoint(TRUNCATE)")


# --- drafts -----------------------------------------------------------------------------


async def draft_of(conn: Connection, rider_id: int) -> Row | None:
    async with conn.execute(
        "SELECT id, rider_id, step, latitude, longitude, location_source, photo_distance_m, "
        "category, description, venue_name, updated_at, reminded_at FROM reports "
        "WHERE rider_id = ? AND status = 'draft'",
        (rider_id,),
    ) as cursor:
        row: Row | None = await cursor.fetchone()
        return row


async def create_draft(conn: Connection, rider_id: int, now: int) -> int:
    cursor = await conn.execute(
        "INSERT INTO reports (rider_id, created_at, updated_at) VALUES (?, ?, ?)",
        (rider_id, now, now),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


async def update_draft(conn: Connection, draft_id: int, now: int, **fields: object) -> None:
    """Set the given columns of a draft and mark it touched (clearing any expiry reminder)."""
    allowed = {
        "step",
        "latitude",
        "longitude",
        "location_source",
        "photo_distance_m",
        "category",
        "description",
        "town",
        "grid",
        "venue_name",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not draft columns: {sorted(unknown)}")
    assignments = "".join(f"{name} = ?, " for name in fields)
    await conn.execute(
        f"UPDATE reports SET {assignments}updated_at = ?, reminded_at = NULL "  # noqa: S608
        "WHERE id = ? AND status = 'draft'",
        (*fields.values(), now, draft_id),
    )


async def delete_draft(conn: Connection, rider_id: int) -> bool:
    cursor = await conn.execute(
        "DELETE FROM reports WHERE rider_id = ? AND status = 'draft'", (rider_id,)
    )
    return cursor.rowcount > 0


async def photos_of(conn: Connection, report_id: int) -> list[PhotoRow]:
    async with conn.execute(
        "SELECT position, file_unique_id, sha256, phash, taken_at, gps_latitude, gps_longitude, "
        "not_fresh FROM report_photos WHERE report_id = ? ORDER BY position",
        (report_id,),
    ) as cursor:
        return [
            PhotoRow(
                position=row["position"],
                file_unique_id=row["file_unique_id"],
                sha256=row["sha256"],
                phash=row["phash"],
                taken_at=row["taken_at"],
                gps_latitude=row["gps_latitude"],
                gps_longitude=row["gps_longitude"],
                not_fresh=bool(row["not_fresh"]),
            )
            for row in await cursor.fetchall()
        ]


async def add_photo(
    conn: Connection, report_id: int, position: int, photo: NewPhoto, now: int
) -> None:
    lat, lon = photo.gps if photo.gps else (None, None)
    await conn.execute(
        "INSERT INTO report_photos (report_id, position, file_unique_id, sha256, phash, "
        "evidence, taken_at, gps_latitude, gps_longitude, not_fresh, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            report_id,
            position,
            photo.file_unique_id,
            photo.sha256,
            photo.phash,
            photo.evidence,
            photo.taken_at,
            lat,
            lon,
            int(photo.not_fresh),
            now,
        ),
    )


async def report_using_photo(
    conn: Connection, draft_id: int | None, file_unique_id: str, sha256: str | None
) -> Row | None:
    """The submitted report, or this draft, that already holds this photo (by either id)."""
    async with conn.execute(
        "SELECT r.id, r.reference, r.rider_id FROM report_photos p "
        "JOIN reports r ON r.id = p.report_id "
        "WHERE (p.file_unique_id = ? OR p.sha256 = ?) "
        "AND (r.reference IS NOT NULL OR r.id = ?) ORDER BY r.id LIMIT 1",
        (file_unique_id, sha256, draft_id),
    ) as cursor:
        row: Row | None = await cursor.fetchone()
        return row


async def rider_of_report(conn: Connection, report_id: int) -> int | None:
    async with conn.execute("SELECT rider_id FROM reports WHERE id = ?", (report_id,)) as cursor:
        row = await cursor.fetchone()
    return None if row is None else int(row[0])


# --- photos per hour --------------------------------------------------------------------


async def take_photo_slot(
    conn: Connection, rider_id: int, now: int, since: int, limit: int
) -> bool:
    """Record a photo from the rider, unless ``limit`` were already received since ``since``.

    Rows from before ``since`` (any rider's) are deleted first: only the window is kept.
    """
    await conn.execute("DELETE FROM photo_intake WHERE received_at < ?", (since,))
    cursor = await conn.execute(
        "INSERT INTO photo_intake (rider_id, received_at) SELECT ?, ? WHERE "
        "(SELECT COUNT(*) FROM photo_intake WHERE rider_id = ? AND received_at >= ?) < ?",
        (rider_id, now, rider_id, since, limit),
    )
    return cursor.rowcount == 1


# --- submission -------------------------------------------------------------------------


async def submitted_since(conn: Connection, rider_id: int, since: int) -> int:
    async with conn.execute(
        "SELECT COUNT(*) FROM reports WHERE rider_id = ? AND submitted_at >= ?",
        (rider_id, since),
    ) as cursor:
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


async def submit(
    conn: Connection, draft_id: int, reference_prefix: str, now: int, deadline: int
) -> str | None:
    """Turn the draft into a pending report with the next reference of the day."""
    # The day's counter compared as a number: as text, "...-10000" sorts before "...-9999".
    async with conn.execute(
        "SELECT MAX(CAST(substr(reference, length(?) + 1) AS INTEGER)) FROM reports "
        "WHERE reference LIKE ? || '%'",
        (reference_prefix, reference_prefix),
    ) as cursor:
        row = await cursor.fetchone()
    number = int(row[0]) + 1 if row and row[0] is not None else 1
    reference = f"{reference_prefix}{number:04d}"  # four digits, more after 9,999 in a day
    cursor = await conn.execute(
        "UPDATE reports SET status = 'pending', reference = ?, submitted_at = ?, deadline_at = ?, "
        "updated_at = ? WHERE id = ? AND status = 'draft'",
        (reference, now, deadline, now, draft_id),
    )
    return reference if cursor.rowcount == 1 else None


async def reference_of(conn: Connection, report_id: int, rider_id: int) -> str | None:
    """The reference of the rider's report, if it has been submitted."""
    async with conn.execute(
        "SELECT reference FROM reports WHERE id = ? AND rider_id = ?", (report_id, rider_id)
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else row[0]


async def latest_reports(db: Database, rider_id: int, limit: int) -> Sequence[Row]:
    return await db.fetchall(
        "SELECT reference, status, category, submitted_at, town FROM reports "
        "WHERE rider_id = ? AND reference IS NOT NULL ORDER BY submitted_at DESC, id DESC LIMIT ?",
        (rider_id, limit),
    )


async def status_counts(db: Database, rider_id: int) -> dict[str, int]:
    rows = await db.fetchall(
        "SELECT status, COUNT(*) FROM reports WHERE rider_id = ? GROUP BY status", (rider_id,)
    )
    return {row[0]: int(row[1]) for row in rows}


# --- expiry -----------------------------------------------------------------------------


async def drafts_to_remind(conn: Connection, untouched_since: int) -> list[Row]:
    async with conn.execute(
        "SELECT r.id, u.telegram_id, u.language FROM reports r JOIN users u ON u.id = r.rider_id "
        "WHERE r.status = 'draft' AND r.updated_at <= ? AND r.reminded_at IS NULL",
        (untouched_since,),
    ) as cursor:
        return list(await cursor.fetchall())


async def mark_reminded(conn: Connection, draft_ids: Sequence[int], now: int) -> None:
    await conn.executemany(
        "UPDATE reports SET reminded_at = ? WHERE id = ? AND status = 'draft'",
        [(now, draft_id) for draft_id in draft_ids],
    )


async def expire_drafts(conn: Connection, untouched_since: int, now: int) -> list[Row]:
    async with conn.execute(
        "SELECT r.id, u.telegram_id, u.language FROM reports r JOIN users u ON u.id = r.rider_id "
        "WHERE r.status = 'draft' AND r.updated_at <= ?",
        (untouched_since,),
    ) as cursor:
        rows = list(await cursor.fetchall())
    await conn.executemany(
        "UPDATE reports SET status = 'expired', updated_at = ? WHERE id = ? AND status = 'draft'",
        [(now, row["id"]) for row in rows],
    )
    return rows


# --- payout details requests ------------------------------------------------------------


async def set_payee_asked(db: Database, rider_id: int, asked_at: int | None) -> None:
    async with db.transaction() as conn:
        await conn.execute("UPDATE users SET payee_asked_at = ? WHERE id = ?", (asked_at, rider_id))


async def payee_asked(db: Database, rider_id: int) -> bool:
    row = await db.fetchone("SELECT payee_asked_at FROM users WHERE id = ?", (rider_id,))
    return row is not None and row[0] is not None


async def rider_id_of(db: Database, telegram_id: int) -> int | None:
    row = await db.fetchone("SELECT id FROM users WHERE telegram_id = ?", (telegram_id,))
    return None if row is None else int(row[0])


async def report_id_of(db: Database, reference: str) -> int | None:
    row = await db.fetchone("SELECT id FROM reports WHERE reference = ?", (reference,))
    return None if row is None else int(row[0])


async def telegram_contact(db: Database, rider_id: int) -> Row | None:
    """(telegram_id, language) of a rider, for telling them something."""
    return await db.fetchone("SELECT telegram_id, language FROM users WHERE id = ?", (rider_id,))


async def voices_of(conn: Connection, report_id: int) -> list[tuple[str | None, int]]:
    """(file id, seconds) of the report's voice notes, in order; the id is None once erased."""
    async with conn.execute(
        "SELECT file_id, seconds FROM report_voices WHERE report_id = ? ORDER BY position",
        (report_id,),
    ) as cursor:
        return [(row[0], int(row[1])) for row in await cursor.fetchall()]


async def add_voice(
    conn: Connection,
    report_id: int,
    file_id: str,
    unique_id: str,
    seconds: int,
    size: int,
    now: int,
) -> bool:
    """Add a voice note after the report's others; False if this one is there already."""
    cursor = await conn.execute(
        "INSERT INTO report_voices (report_id, position, file_id, file_unique_id, seconds, "
        "bytes, created_at) SELECT ?, COALESCE(MAX(position), 0) + 1, ?, ?, ?, ?, ? "
        "FROM report_voices WHERE report_id = ? ON CONFLICT DO NOTHING",
        (report_id, file_id, unique_id, seconds, size, now, report_id),
    )
    return cursor.rowcount == 1
