"""SQL for what the county reports upward: chart figures, the register and the budget.

The chart and register reads run on `Database.snapshot()` (one committed state, no write
lock); `rewards_between` also runs inside a write transaction, where approvals check the
month's budget. Periods are half-open `[start, end)` in unix seconds. No query returns a
rider's name, account or Telegram id.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.db import Connection


@dataclass(frozen=True)
class Case:
    """One case (即时办) opened in a period, for the handling-time chart."""

    department: str
    opened_at: int
    dispatched_at: int
    due_at: int
    fixed_at: int | None


@dataclass(frozen=True)
class RegisterRow:
    """One report of the register (台账): nothing that names the rider."""

    reference: str
    submitted_at: int
    decided_at: int | None
    status: str
    category: str | None
    latitude: float | None
    longitude: float | None
    description: str | None
    reward_fen: int | None
    points: int | None
    department: str | None
    case_state: str | None
    dispatched_at: int | None
    fixed_at: int | None
    due_at: int | None  # the case's service level
    deadline_at: int | None  # the review promise
    updated_at: int
    payout_batch: str | None
    photos: int
    town: str | None = None  # tagged from the towns file at submission
    outcome_note: str | None = None  # the department's latest words on the case (处置结果)


async def submissions(conn: Connection, start: int, end: int) -> list[tuple[int, str | None]]:
    """(submitted_at, category) of every report submitted in the period."""
    async with conn.execute(
        "SELECT submitted_at, category FROM reports WHERE submitted_at >= ? AND submitted_at < ?",
        (start, end),
    ) as cursor:
        return [(int(row[0]), row[1]) for row in await cursor.fetchall()]


async def decision_times(conn: Connection, start: int, end: int) -> list[tuple[int, int]]:
    """(decided_at, seconds from submission to decision) of reports decided in the period."""
    async with conn.execute(
        "SELECT decided_at, decided_at - submitted_at FROM reports"
        " WHERE decided_at >= ? AND decided_at < ? AND submitted_at IS NOT NULL",
        (start, end),
    ) as cursor:
        return [(int(row[0]), int(row[1])) for row in await cursor.fetchall()]


async def verified(conn: Connection, start: int, end: int) -> int:
    """Reports approved in the period and still approved (a reversal takes one back)."""
    async with conn.execute(
        "SELECT COUNT(*) FROM reports WHERE status = 'approved'"
        " AND decided_at >= ? AND decided_at < ?",
        (start, end),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def cases(conn: Connection, start: int, end: int) -> list[Case]:
    """Cases opened in the period."""
    async with conn.execute(
        "SELECT department, opened_at, dispatched_at, due_at, fixed_at FROM cases"
        " WHERE opened_at >= ? AND opened_at < ?",
        (start, end),
    ) as cursor:
        rows = await cursor.fetchall()
    return [Case(r[0], int(r[1]), int(r[2]), int(r[3]), r[4]) for r in rows]


async def fixed_cases(conn: Connection, start: int, end: int) -> int:
    """Cases whose hazard was (last) fixed in the period."""
    async with conn.execute(
        "SELECT COUNT(*) FROM cases WHERE fixed_at >= ? AND fixed_at < ?", (start, end)
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def reward_entries(conn: Connection, start: int, end: int) -> list[tuple[int, int, str]]:
    """(created_at, amount_fen, kind) of the rewards and reversals booked in the period."""
    async with conn.execute(
        "SELECT created_at, amount_fen, kind FROM ledger"
        " WHERE kind IN ('reward', 'reversal') AND created_at >= ? AND created_at < ?",
        (start, end),
    ) as cursor:
        return [(int(r[0]), int(r[1]), str(r[2])) for r in await cursor.fetchall()]


async def reward_states(conn: Connection, start: int, end: int) -> tuple[int, int, int]:
    """Of the rewards less reversals booked in the period (核定), in fen: how much is in a
    payout batch not yet paid (发放中), and how much in a batch marked paid (已发放)."""
    async with conn.execute(
        "SELECT COALESCE(SUM(l.amount_fen), 0),"
        " COALESCE(SUM(CASE WHEN b.status <> 'paid' THEN l.amount_fen END), 0),"
        " COALESCE(SUM(CASE WHEN b.status = 'paid' THEN l.amount_fen END), 0)"
        " FROM ledger l LEFT JOIN payout_items i ON i.ledger_id = l.id"
        " LEFT JOIN payout_batches b ON b.id = i.batch_id"
        " WHERE l.kind IN ('reward', 'reversal') AND l.created_at >= ? AND l.created_at < ?",
        (start, end),
    ) as cursor:
        row = await cursor.fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


async def rewards_between(conn: Connection, start: int, end: int) -> int:
    """Rewards less reversals booked in the period, in fen: what the budget has spent."""
    async with conn.execute(
        "SELECT COALESCE(SUM(amount_fen), 0) FROM ledger"
        " WHERE kind IN ('reward', 'reversal') AND created_at >= ? AND created_at < ?",
        (start, end),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def register(conn: Connection, start: int, end: int) -> list[RegisterRow]:
    """Every report submitted in the period, oldest first, with its case and payout batch."""
    async with conn.execute(
        "SELECT r.reference, r.submitted_at, r.decided_at, r.status, r.category,"
        " r.latitude, r.longitude, r.description, r.reward_fen, r.points,"
        " c.department, c.state, c.dispatched_at, c.fixed_at, c.due_at, r.deadline_at,"
        " CASE WHEN c.updated_at > r.updated_at THEN c.updated_at ELSE r.updated_at END,"
        " b.period_key,"
        " (SELECT COUNT(*) FROM report_photos p WHERE p.report_id = r.id), r.town,"
        " (SELECT e.note FROM case_events e WHERE e.case_id = c.id AND e.role = 'staff'"
        "  ORDER BY e.id DESC LIMIT 1)"
        " FROM reports r"
        " LEFT JOIN cases c ON c.report_id = r.id"
        " LEFT JOIN ledger l ON l.idempotency_key = 'reward:' || r.id"
        " LEFT JOIN payout_items i ON i.ledger_id = l.id"
        " LEFT JOIN payout_batches b ON b.id = i.batch_id"
        " WHERE r.submitted_at >= ? AND r.submitted_at < ? AND r.reference IS NOT NULL"
        " ORDER BY r.submitted_at, r.id",
        (start, end),
    ) as cursor:
        rows = await cursor.fetchall()
    return [
        RegisterRow(
            reference=r[0],
            submitted_at=int(r[1]),
            decided_at=r[2],
            status=r[3],
            category=r[4],
            latitude=r[5],
            longitude=r[6],
            description=r[7],
            reward_fen=r[8],
            points=r[9],
            department=r[10],
            case_state=r[11],
            dispatched_at=r[12],
            fixed_at=r[13],
            due_at=r[14],
            deadline_at=r[15],
            updated_at=int(r[16]),
            payout_batch=r[17],
            photos=int(r[18]),
            town=r[19],
            outcome_note=r[20],
        )
        for r in rows
    ]


async def towns(conn: Connection) -> list[tuple[float, float, str]]:
    """(lat, lon, town) of the current places that name their town or street."""
    async with conn.execute(
        "SELECT p.lat, p.lon, p.town FROM places p JOIN place_sets s ON s.id = p.set_id"
        " WHERE s.state = 'current' AND p.town <> ''"
    ) as cursor:
        return [(float(r[0]), float(r[1]), str(r[2])) for r in await cursor.fetchall()]


async def points_in(
    conn: Connection, start: int, end: int
) -> list[tuple[float, float, str, str | None]]:
    """(lat, lon, status, case state) of reports with a place submitted in the period."""
    async with conn.execute(
        "SELECT r.latitude, r.longitude, r.status, c.state FROM reports r"
        " LEFT JOIN cases c ON c.report_id = r.id"
        " WHERE r.submitted_at >= ? AND r.submitted_at < ? AND r.latitude IS NOT NULL",
        (start, end),
    ) as cursor:
        return [(float(r[0]), float(r[1]), str(r[2]), r[3]) for r in await cursor.fetchall()]
