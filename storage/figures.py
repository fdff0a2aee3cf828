"""SQL for what the county reports upward: chart figures, the register and the budget.

The chart and register reads run on `Database.snapshot()` (one committed state, no write
lock); `rewards_between` also runs inside a write transaction, where approvals check the
month's budget. Periods are half-open `[start, end)` in unix seconds. No query returns a
rider's name, account or Telegram id.

The charts' figures are counted here, per local week, day or department (storage/ranks.py
for local days and percentiles): a year of reports comes back as a few hundred rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from storage.db import Connection
from storage.ranks import Group, LocalDays, Ranked, local_day, monday, ranks


@dataclass(frozen=True)
class CaseCounts:
    """One department's cases (即时办) opened in a period, for the handling-time chart."""

    department: str
    opened: int
    fixed: int
    fixed_in_time: int  # by their due time


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


async def weekly_submissions(
    conn: Connection, start: int, end: int, days: LocalDays
) -> list[tuple[int, str | None, int]]:
    """(local day number of the week's Monday, category, reports) of the reports submitted in
    the period, per local week and category."""
    day = local_day(conn, "submitted_at", days)
    async with conn.execute(
        f"SELECT {monday('day')}, category, COUNT(*) FROM"  # noqa: S608 (fixed SQL, integers)
        f" (SELECT {day} AS day, category FROM reports"
        "  WHERE submitted_at >= ? AND submitted_at < ?) AS d"
        " GROUP BY 1, 2",
        (start, end),
    ) as cursor:
        return [(int(r[0]), r[1], int(r[2])) for r in await cursor.fetchall()]


def _decided(conn: Connection, days: LocalDays | None) -> str:
    """Seconds from submission to decision of the reports decided in the period (two
    parameters: start, end), grouped by the week of the decision or, without `days`, all
    in one group."""
    group = "0" if days is None else monday(local_day(conn, "decided_at", days))
    return (
        f"SELECT {group} AS grp, decided_at - submitted_at AS value FROM reports"  # noqa: S608
        " WHERE decided_at >= ? AND decided_at < ? AND submitted_at IS NOT NULL"
    )


async def decision_ranks(
    conn: Connection,
    start: int,
    end: int,
    fractions: Iterable[Fraction],
    days: LocalDays | None = None,
) -> dict[Group, Ranked]:
    """Seconds from submission to decision of reports decided in the period, ranked for
    `fractions`: per local week of the decision (its Monday's day number) with `days`, else
    the whole period as group 0."""
    return await ranks(conn, _decided(conn, days), (start, end), fractions)


async def verified(conn: Connection, start: int, end: int) -> int:
    """Reports approved in the period and still approved (a reversal takes one back)."""
    async with conn.execute(
        "SELECT COUNT(*) FROM reports WHERE status = 'approved'"
        " AND decided_at >= ? AND decided_at < ?",
        (start, end),
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def case_counts(conn: Connection, start: int, end: int) -> list[CaseCounts]:
    """Per department, the cases opened in the period: how many, fixed, fixed by their due
    time; in the order each department's first case was opened."""
    async with conn.execute(
        "SELECT department, COUNT(*),"
        " COALESCE(SUM(CASE WHEN fixed_at IS NOT NULL THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN fixed_at <= due_at THEN 1 ELSE 0 END), 0)"
        " FROM cases WHERE opened_at >= ? AND opened_at < ?"
        " GROUP BY department ORDER BY MIN(id)",
        (start, end),
    ) as cursor:
        return [
            CaseCounts(str(r[0]), int(r[1]), int(r[2]), int(r[3])) for r in await cursor.fetchall()
        ]


async def case_hours_ranks(
    conn: Connection, start: int, end: int, fractions: Iterable[Fraction], *, levels: bool
) -> dict[Group, Ranked]:
    """Per department, of the cases opened in the period, ranked for `fractions`: seconds
    from dispatch to fixed of the fixed ones or, with `levels`, every case's service level
    (dispatch to due)."""
    value, fixed = ("due_at", "") if levels else ("fixed_at", " AND fixed_at IS NOT NULL")
    return await ranks(
        conn,
        f"SELECT department AS grp, {value} - dispatched_at AS value FROM cases"  # noqa: S608
        f" WHERE opened_at >= ? AND opened_at < ?{fixed}",
        (start, end),
        fractions,
    )


async def fixed_cases(conn: Connection, start: int, end: int) -> int:
    """Cases whose hazard was (last) fixed in the period."""
    async with conn.execute(
        "SELECT COUNT(*) FROM cases WHERE fixed_at >= ? AND fixed_at < ?", (start, end)
    ) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def daily_rewards(
    conn: Connection, start: int, end: int, days: LocalDays
) -> list[tuple[int, int, int]]:
    """(local day number, rewards less reversals in fen, rewards) booked in the period, per
    local day that has any."""
    day = local_day(conn, "created_at", days)
    async with conn.execute(
        "SELECT day, SUM(amount_fen), SUM(CASE WHEN kind = 'reward' THEN 1 ELSE 0 END) FROM"  # noqa: S608
        f" (SELECT {day} AS day, amount_fen, kind FROM ledger"
        "  WHERE kind IN ('reward', 'reversal') AND created_at >= ? AND created_at < ?) AS d"
        " GROUP BY day",
        (start, end),
    ) as cursor:
        return [(int(r[0]), int(r[1]), int(r[2])) for r in await cursor.fetchall()]


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
