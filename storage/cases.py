"""SQL for cases (即时办): the case rows, their append-only events, staff, prompts, photos."""

from __future__ import annotations

from collections.abc import Sequence

from storage.db import Connection, Database, Row, guarded_update

CASE_COLUMNS = (
    "c.id, c.report_id, c.department, c.state, c.urgent, c.opened_at, c.dispatched_at, "
    "c.due_at, c.fixed_at, c.closed_at, c.reopened, c.after_photo_id, c.note, c.card_chat_id, "
    "c.card_message_id, c.card_copy, c.reminded_at, c.breached_at, c.asked_at, c.updated_at, "
    "r.reference, r.category, r.description, r.latitude, r.longitude, "
    "u.telegram_id AS rider_telegram_id, "
    "(SELECT e.actor FROM case_events e WHERE e.case_id = c.id ORDER BY e.id DESC LIMIT 1) "
    "AS last_actor"
)
CASE_FROM = "cases c JOIN reports r ON r.id = c.report_id JOIN users u ON u.id = r.rider_id"
OPEN_STATES = ("dispatched", "accepted", "reopened", "not_ours")
CLOCK_STATES = ("dispatched", "accepted", "reopened")  # the department's time is running


async def create(
    conn: Connection,
    report_id: int,
    department: str,
    urgent: bool,
    now: int,
    due_at: int,
) -> int | None:
    """A new case in state dispatched; None if the report already is one."""
    cursor = await conn.execute(
        "INSERT INTO cases (report_id, department, state, urgent, opened_at, dispatched_at, "
        "due_at, updated_at) VALUES (?, ?, 'dispatched', ?, ?, ?, ?, ?) "
        "ON CONFLICT (report_id) DO NOTHING",
        (report_id, department, int(urgent), now, now, due_at, now),
    )
    return cursor.lastrowid if cursor.rowcount == 1 else None


async def case(conn: Connection, case_id: int) -> Row | None:
    async with conn.execute(
        f"SELECT {CASE_COLUMNS} FROM {CASE_FROM} WHERE c.id = ?",  # noqa: S608
        (case_id,),
    ) as cursor:
        row: Row | None = await cursor.fetchone()
        return row


async def move(conn: Connection, case_id: int, expected: str, new: str, **fields: object) -> bool:
    """The one guarded change: True only for the caller who moved it from `expected`."""
    allowed = {
        "department",
        "dispatched_at",
        "due_at",
        "fixed_at",
        "closed_at",
        "reopened",
        "after_photo_id",
        "note",
        "card_chat_id",
        "card_message_id",
        "card_attempted_at",
        "reminded_at",
        "breached_at",
        "asked_at",
        "updated_at",
    }
    if set(fields) - allowed:
        raise ValueError(f"not case columns: {sorted(set(fields) - allowed)}")
    return await guarded_update(conn, "cases", {"id": case_id}, "state", expected, new, fields)


async def record_event(
    conn: Connection,
    case_id: int,
    actor: int | None,
    role: str,
    action: str,
    from_state: str | None,
    to_state: str,
    department: str,
    now: int,
    note: str | None = None,
    photo_id: int | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO case_events (case_id, actor, role, action, from_state, to_state, "
        "department, note, photo_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (case_id, actor, role, action, from_state, to_state, department, note, photo_id, now),
    )


async def events(db: Database, case_id: int) -> list[Row]:
    return await db.fetchall(
        "SELECT actor, role, action, from_state, to_state, department, note, photo_id, "
        "created_at FROM case_events WHERE case_id = ? ORDER BY id",
        (case_id,),
    )


async def add_photo(conn: Connection, case_id: int, kind: str, jpeg: bytes, now: int) -> int:
    cursor = await conn.execute(
        "INSERT INTO case_photos (case_id, kind, jpeg, created_at) VALUES (?, ?, ?, ?)",
        (case_id, kind, jpeg, now),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


async def photo(db: Database, photo_id: int) -> Row | None:
    return await db.fetchone("SELECT jpeg, file_id FROM case_photos WHERE id = ?", (photo_id,))


async def remember_photo_file(db: Database, photo_id: int, file_id: str) -> None:
    async with db.transaction() as conn:
        await conn.execute("UPDATE case_photos SET file_id = ? WHERE id = ?", (file_id, photo_id))


async def purge_photos(conn: Connection, before: int) -> int:
    """Forget the pictures of photos older than `before` (retention); returns how many."""
    cursor = await conn.execute(
        "UPDATE case_photos SET jpeg = NULL, file_id = NULL WHERE created_at < ? "
        "AND jpeg IS NOT NULL",
        (before,),
    )
    return cursor.rowcount


# --- cards --------------------------------------------------------------------------------


async def cards_to_send(db: Database, limit: int) -> list[int]:
    """Cases whose department card is still to send: urgent first, then oldest dispatch."""
    rows = await db.fetchall(
        "SELECT id FROM cases WHERE card_message_id IS NULL "
        "AND state IN ('dispatched', 'reopened') ORDER BY urgent DESC, dispatched_at, id LIMIT ?",
        (limit,),
    )
    return [int(row[0]) for row in rows]


async def begin_card(db: Database, case_id: int, now: int) -> bool:
    """Note that a case card is being sent; True if an earlier attempt's fate is unknown."""
    async with db.transaction() as conn:
        async with conn.execute(
            "SELECT card_attempted_at FROM cases WHERE id = ?", (case_id,)
        ) as cursor:
            row = await cursor.fetchone()
        await conn.execute("UPDATE cases SET card_attempted_at = ? WHERE id = ?", (now, case_id))
    return row is not None and row[0] is not None


async def card_refused(db: Database, case_id: int) -> None:
    """Telegram answered the send with an error: no copy of the card exists."""
    async with db.transaction() as conn:
        await conn.execute("UPDATE cases SET card_attempted_at = NULL WHERE id = ?", (case_id,))


async def record_card(
    db: Database, case_id: int, chat_id: int, message_id: int, copy: bool
) -> None:
    """The card is in the chat (`copy`: marked as a possible second copy); a later fresh
    dispatch starts with no attempt behind it."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE cases SET card_chat_id = ?, card_message_id = ?, card_copy = ?, "
            "card_attempted_at = NULL WHERE id = ?",
            (chat_id, message_id, int(copy), case_id),
        )


# --- staff --------------------------------------------------------------------------------


async def add_staff(db: Database, department: str, telegram_id: int, by: int, now: int) -> bool:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT INTO department_staff (department, telegram_id, added_by, added_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (department, telegram_id, by, now),
        )
        return cursor.rowcount == 1


async def remove_staff(db: Database, department: str, telegram_id: int) -> bool:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM department_staff WHERE department = ? AND telegram_id = ?",
            (department, telegram_id),
        )
        return cursor.rowcount == 1


async def staff(db: Database) -> list[Row]:
    return await db.fetchall(
        "SELECT department, telegram_id FROM department_staff ORDER BY department, added_at"
    )


async def departments_of(db: Database, telegram_id: int) -> list[str]:
    rows = await db.fetchall(
        "SELECT department FROM department_staff WHERE telegram_id = ? ORDER BY department",
        (telegram_id,),
    )
    return [str(row[0]) for row in rows]


async def is_staff(conn: Connection, department: str, telegram_id: int) -> bool:
    async with conn.execute(
        "SELECT 1 FROM department_staff WHERE department = ? AND telegram_id = ?",
        (department, telegram_id),
    ) as cursor:
        return await cursor.fetchone() is not None


async def category_of(conn: Connection, reference: str) -> str | None:
    async with conn.execute(
        "SELECT category FROM reports WHERE reference = ?", (reference,)
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else row[0]


async def added_moderators(conn: Connection) -> list[int]:
    async with conn.execute("SELECT telegram_id FROM moderators") as cursor:
        return [int(row[0]) for row in await cursor.fetchall()]


# --- prompts ------------------------------------------------------------------------------


async def save_prompt(
    db: Database,
    chat_id: int,
    message_id: int,
    case_id: int,
    action: str,
    expected_state: str,
    department: str | None,
    asked_of: int,
    now: int,
) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO case_prompts (chat_id, message_id, case_id, action, "
            "expected_state, department, asked_of, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (chat_id, message_id, case_id, action, expected_state, department, asked_of, now),
        )


async def prompt(db: Database, chat_id: int, message_id: int, asked_of: int) -> Row | None:
    """The prompt a reply answers, left open."""
    return await db.fetchone(
        "SELECT case_id, action, expected_state, department FROM case_prompts"
        " WHERE chat_id = ? AND message_id = ? AND asked_of = ?",
        (chat_id, message_id, asked_of),
    )


async def take_prompt(conn: Connection, chat_id: int, message_id: int, asked_of: int) -> Row | None:
    """The prompt a reply answers, consumed: a second reply to it finds nothing."""
    async with conn.execute(
        "DELETE FROM case_prompts WHERE chat_id = ? AND message_id = ? AND asked_of = ? "
        "RETURNING case_id, action, expected_state, department",
        (chat_id, message_id, asked_of),
    ) as cursor:
        row: Row | None = await cursor.fetchone()
        return row


# --- lists and the clock ------------------------------------------------------------------


async def open_cases(db: Database, departments: Sequence[str] | None) -> list[Row]:
    """Open cases (of `departments`, or all): overdue first, then by due time."""
    states = ", ".join(f"'{state}'" for state in OPEN_STATES)
    where = f"c.state IN ({states})"
    params: tuple[object, ...] = ()
    if departments is not None:
        where += f" AND c.department IN ({', '.join('?' for _ in departments)})"
        params = tuple(departments)
    return await db.fetchall(
        f"SELECT {CASE_COLUMNS} FROM {CASE_FROM} WHERE {where} "  # noqa: S608
        "ORDER BY c.department, c.due_at, c.id",
        params,
    )


async def running(conn: Connection) -> list[Row]:
    """Cases whose department's time is running (for reminders and breaches)."""
    states = ", ".join(f"'{state}'" for state in CLOCK_STATES)
    async with conn.execute(
        f"SELECT {CASE_COLUMNS} FROM {CASE_FROM} WHERE c.state IN ({states}) "  # noqa: S608
        "AND (c.reminded_at IS NULL OR c.breached_at IS NULL) ORDER BY c.due_at",
    ) as cursor:
        return list(await cursor.fetchall())


async def mark(conn: Connection, column: str, case_id: int, now: int) -> bool:
    if column not in ("reminded_at", "breached_at"):
        raise ValueError(column)
    cursor = await conn.execute(
        f"UPDATE cases SET {column} = ? WHERE id = ? AND {column} IS NULL",  # noqa: S608
        (now, case_id),
    )
    return cursor.rowcount == 1


async def fixed_before(conn: Connection, before: int) -> list[int]:
    """Fixed cases whose rider has been silent since before `before`."""
    async with conn.execute(
        "SELECT id FROM cases WHERE state = 'fixed' AND fixed_at <= ? ORDER BY fixed_at",
        (before,),
    ) as cursor:
        return [int(row[0]) for row in await cursor.fetchall()]


async def state_by_reference(db: Database, references: Sequence[str]) -> dict[str, str]:
    """The case state of each report (by reference) that became a case."""
    if not references:
        return {}
    rows = await db.fetchall(
        "SELECT r.reference, c.state FROM cases c JOIN reports r ON r.id = c.report_id "  # noqa: S608
        f"WHERE r.reference IN ({', '.join('?' for _ in references)})",
        tuple(references),
    )
    return {str(row[0]): str(row[1]) for row in rows}


async def for_stats(db: Database) -> list[Row]:
    return await db.fetchall(
        "SELECT department, state, opened_at, due_at, fixed_at, reopened FROM cases"
    )
