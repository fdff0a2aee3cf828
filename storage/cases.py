"""SQL for cases (即时办): the case rows, their append-only events, staff, prompts, photos."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from storage.db import Connection, Database, Row, guarded_update

CASE_COLUMNS = (
    "c.id, c.report_id, c.department, c.state, c.urgent, c.opened_at, c.dispatched_at, "
    "c.due_at, c.fixed_at, c.closed_at, c.reopened, c.after_photo_id, c.note, c.card_chat_id, "
    "c.card_message_id, c.card_copy, c.reminded_at, c.breached_at, c.asked_at, c.updated_at, "
    "c.remind_at, c.accept_due_at, c.accept_remind_at, c.accepted_at, c.accept_reminded_at, "
    "c.accept_breached_at, c.urged_at, "
    "r.reference, r.category, r.description, r.latitude, r.longitude, r.town, r.grid, "
    "r.venue_name, r.answer AS rider_answer, "
    "(SELECT COUNT(*) FROM reports d WHERE d.duplicate_of = c.report_id) AS followers, "
    "u.telegram_id AS rider_telegram_id, "
    "(SELECT e.actor FROM case_events e WHERE e.case_id = c.id ORDER BY e.id DESC LIMIT 1) "
    "AS last_actor"
)
CASE_FROM = "cases c JOIN reports r ON r.id = c.report_id JOIN users u ON u.id = r.rider_id"
OPEN_STATES = ("dispatched", "accepted", "reopened", "not_ours")
CLOCK_STATES = ("dispatched", "accepted", "reopened")  # the department's time is running


DEADLINE_COLUMNS = ("due_at", "remind_at", "accept_due_at", "accept_remind_at")


async def create(
    conn: Connection,
    report_id: int,
    department: str,
    urgent: bool,
    now: int,
    deadlines: Mapping[str, int],
) -> int | None:
    """A new case in state dispatched; None if the report already is one. `deadlines` holds
    DEADLINE_COLUMNS."""
    cursor = await conn.execute(
        "INSERT INTO cases (report_id, department, state, urgent, opened_at, dispatched_at, "
        "due_at, remind_at, accept_due_at, accept_remind_at, updated_at) "
        "VALUES (?, ?, 'dispatched', ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (report_id) DO NOTHING",
        (
            report_id,
            department,
            int(urgent),
            now,
            now,
            *(deadlines[column] for column in DEADLINE_COLUMNS),
            now,
        ),
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
        "remind_at",
        "accept_due_at",
        "accept_remind_at",
        "accepted_at",
        "accept_reminded_at",
        "accept_breached_at",
        "urged_at",
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
        return await insert_staff(conn, department, telegram_id, by, now)


async def insert_staff(
    conn: Connection, department: str, telegram_id: int, by: int, now: int
) -> bool:
    """In the caller's transaction; False if they were staff of it already."""
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
        "AND (c.reminded_at IS NULL OR c.breached_at IS NULL OR c.urged_at IS NULL "
        "OR (c.accepted_at IS NULL AND c.accept_due_at IS NOT NULL "
        "AND c.accept_breached_at IS NULL)) ORDER BY c.due_at",
    ) as cursor:
        return list(await cursor.fetchall())


MARKS = ("reminded_at", "breached_at", "accept_reminded_at", "accept_breached_at", "urged_at")


async def mark(conn: Connection, column: str, case_id: int, now: int) -> bool:
    if column not in MARKS:
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


# --- followers and satisfaction (回访) ----------------------------------------------------


@dataclass(frozen=True)
class Follower:
    """A rider whose report was marked a duplicate of the case's report ("me too")."""

    report_id: int
    telegram_id: int
    reference: str


async def followers(conn: Connection, report_id: int) -> list[Follower]:
    async with conn.execute(
        "SELECT d.id, u.telegram_id, d.reference FROM reports d JOIN users u ON u.id = d.rider_id"
        " WHERE d.duplicate_of = ? AND u.telegram_id IS NOT NULL ORDER BY d.id",
        (report_id,),
    ) as cursor:
        return [Follower(int(r[0]), int(r[1]), str(r[2])) for r in await cursor.fetchall()]


async def add_feedback(
    conn: Connection,
    case_id: int,
    report_id: int,
    round_: int,
    answer: str,
    silent: bool,
    reason: str | None,
    photo_id: int | None,
    now: int,
) -> bool:
    """One reporter's answer to one fix; False: that fix was answered by them already."""
    cursor = await conn.execute(
        "INSERT INTO case_feedback (case_id, report_id, round, answer, silent, reason, "
        "photo_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (case_id, report_id, round_, answer, int(silent), reason, photo_id, now),
    )
    return cursor.rowcount == 1


async def case_of_report(conn: Connection, report_id: int) -> int | None:
    async with conn.execute("SELECT id FROM cases WHERE report_id = ?", (report_id,)) as cursor:
        row = await cursor.fetchone()
    return None if row is None else int(row[0])


async def case_by_reference(conn: Connection, reference: str) -> int | None:
    async with conn.execute(
        "SELECT c.id FROM cases c JOIN reports r ON r.id = c.report_id WHERE r.reference = ?",
        (reference,),
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else int(row[0])


async def latest_rider_photo(db: Database, case_id: int) -> int | None:
    """The newest photo a rider added to the case (evidence of "not fixed")."""
    row = await db.fetchone(
        "SELECT id FROM case_photos WHERE case_id = ? AND kind = 'rider' "
        "AND (jpeg IS NOT NULL OR file_id IS NOT NULL) ORDER BY id DESC LIMIT 1",
        (case_id,),
    )
    return None if row is None else int(row[0])


# --- extensions (延期) -------------------------------------------------------------------


async def add_extension(
    conn: Connection,
    case_id: int,
    department: str,
    asked_by: int,
    reason: str,
    old_due: int,
    new_due: int,
    now: int,
) -> int | None:
    """A request waiting for a decision; None: one is waiting already."""
    cursor = await conn.execute(
        "INSERT INTO case_extensions (case_id, department, asked_by, reason, old_due_at, "
        "new_due_at, asked_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (case_id, department, asked_by, reason, old_due, new_due, now),
    )
    return cursor.lastrowid if cursor.rowcount == 1 else None


async def extension(conn: Connection, extension_id: int) -> Row | None:
    async with conn.execute(
        "SELECT id, case_id, department, asked_by, reason, old_due_at, new_due_at, state "
        "FROM case_extensions WHERE id = ?",
        (extension_id,),
    ) as cursor:
        row: Row | None = await cursor.fetchone()
        return row


async def decide_extension(
    conn: Connection, extension_id: int, state: str, by: int, now: int
) -> bool:
    """The one decision on a request: True only for the caller who made it."""
    return await guarded_update(
        conn,
        "case_extensions",
        {"id": extension_id},
        "state",
        "pending",
        state,
        {"decided_by": by, "decided_at": now},
    )


async def move_due(conn: Connection, case_id: int, due_at: int, remind_at: int, now: int) -> None:
    """An approved extension: the new fix deadline, its reminder and breach still to come."""
    await conn.execute(
        "UPDATE cases SET due_at = ?, remind_at = ?, reminded_at = NULL, breached_at = NULL, "
        "urged_at = NULL, updated_at = ? WHERE id = ?",
        (due_at, remind_at, now, case_id),
    )


# --- supervision (督办) ------------------------------------------------------------------


async def add_supervision(
    conn: Connection, case_id: int, by: int, text: str, now: int, reply_due: int
) -> int:
    cursor = await conn.execute(
        "INSERT INTO case_supervisions (case_id, issued_by, text, issued_at, reply_due_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (case_id, by, text, now, reply_due),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


async def reply_supervision(
    conn: Connection, case_id: int, reply: str, by: int, now: int
) -> Row | None:
    """The department's reply to the case's oldest unanswered 督办; None: none waits."""
    async with conn.execute(
        "SELECT id, issued_by, text FROM case_supervisions WHERE case_id = ? "
        "AND replied_at IS NULL ORDER BY id LIMIT 1",
        (case_id,),
    ) as cursor:
        row: Row | None = await cursor.fetchone()
    if row is None:
        return None
    cursor = await conn.execute(
        "UPDATE case_supervisions SET reply = ?, replied_by = ?, replied_at = ? "
        "WHERE id = ? AND replied_at IS NULL",
        (reply, by, now, row["id"]),
    )
    return row if cursor.rowcount == 1 else None


async def supervisions_unanswered(conn: Connection, now: int) -> list[Row]:
    """督办 whose reply time passed with no reply and that were not escalated yet."""
    async with conn.execute(
        "SELECT s.id, s.case_id, s.text, s.reply_due_at, c.department, r.reference "
        "FROM case_supervisions s JOIN cases c ON c.id = s.case_id "
        "JOIN reports r ON r.id = c.report_id WHERE s.replied_at IS NULL "
        "AND s.escalated_at IS NULL AND s.reply_due_at <= ? ORDER BY s.id",
        (now,),
    ) as cursor:
        return list(await cursor.fetchall())


async def mark_escalated(conn: Connection, supervision_id: int, now: int) -> bool:
    cursor = await conn.execute(
        "UPDATE case_supervisions SET escalated_at = ? WHERE id = ? AND escalated_at IS NULL",
        (now, supervision_id),
    )
    return cursor.rowcount == 1
