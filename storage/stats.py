"""SQL for /stats: counts of submitted reports, times to decision, and missed deadlines.

Every function runs inside the caller's `Database.transaction()`, so the three reads see one
consistent state. Each takes the start of "today" and of "this week" as unix seconds and
counts all time as well, in one pass over the table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from storage.db import Connection, Row
from storage.ranks import Ranked, ranks


@dataclass(frozen=True)
class Count:
    """How many submitted reports have one (status, category), per period."""

    status: str
    category: str | None
    today: int
    week: int
    total: int


async def counts(conn: Connection, today: int, week: int) -> list[Count]:
    """Submitted reports by (status, category): submitted since `today`, since `week`, ever."""
    async with conn.execute(
        "SELECT status, category, "
        "COALESCE(SUM(CASE WHEN submitted_at >= ? THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN submitted_at >= ? THEN 1 ELSE 0 END), 0), COUNT(*) "
        "FROM reports WHERE submitted_at IS NOT NULL "
        "GROUP BY status, category ORDER BY status, category",
        (today, week),
    ) as cursor:
        rows = await cursor.fetchall()
    return [Count(row[0], row[1], int(row[2]), int(row[3]), int(row[4])) for row in rows]


async def decision_ranks(
    conn: Connection, today: int, week: int, fractions: Iterable[Fraction]
) -> dict[int, Ranked]:
    """Seconds from submission to decision, ranked for `fractions` (storage/ranks.py), of
    the reports decided since `today` (group 0), since `week` (1) and ever (2). Reversed
    reports keep the time of their original decision."""
    decided = (
        "SELECT {group} AS grp, decided_at - submitted_at AS value FROM reports"
        " WHERE decided_at >= {since} AND submitted_at IS NOT NULL"
    )
    values = " UNION ALL ".join(
        decided.format(group=group, since=since) for group, since in ((0, "?"), (1, "?"), (2, "0"))
    )
    return await ranks(conn, values, (today, week), fractions)


async def breaches(conn: Connection, today: int, week: int) -> tuple[int, int, int]:
    """Reports whose review deadline was missed: recorded since `today`, since `week`, ever."""
    async with conn.execute(
        "SELECT COALESCE(SUM(CASE WHEN breached_at >= ? THEN 1 ELSE 0 END), 0),"
        " COALESCE(SUM(CASE WHEN breached_at >= ? THEN 1 ELSE 0 END), 0), "
        "COUNT(*) FROM reports WHERE breached_at IS NOT NULL",
        (today, week),
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


async def case_rows(conn: Connection) -> list[Row]:
    """(department, state, opened_at, due_at, fixed_at, reopened) of every case."""
    async with conn.execute(
        "SELECT department, state, opened_at, due_at, fixed_at, reopened FROM cases"
    ) as cursor:
        return list(await cursor.fetchall())
