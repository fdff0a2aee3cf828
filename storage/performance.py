"""SQL for each department's performance (部门绩效) over a period; see services/performance.py.

Every function runs on the caller's `Database.snapshot()`: one committed state, no write
lock; the median times come from ranks (storage/ranks.py), not from every case."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from storage.db import Connection, Row
from storage.ranks import Group, Ranked, ranks


async def _rows(conn: Connection, sql: str, params: tuple[object, ...]) -> list[Row]:
    async with conn.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


IN_TIME = "CASE WHEN {done} IS NOT NULL AND ({due} IS NULL OR {done} <= {due}) THEN 1 ELSE 0 END"


async def case_counts(conn: Connection, start: int, end: int) -> dict[str, tuple[int, ...]]:
    """Per department, over the cases it holds that were opened in the period: (cases,
    accepted, accepted in time, fixed, fixed in time)."""
    rows = await _rows(
        conn,
        "SELECT department, COUNT(*), "  # noqa: S608 (fixed fragments only)
        "SUM(CASE WHEN accepted_at IS NOT NULL THEN 1 ELSE 0 END), "
        f"SUM({IN_TIME.format(done='accepted_at', due='accept_due_at')}), "
        "SUM(CASE WHEN fixed_at IS NOT NULL THEN 1 ELSE 0 END), "
        f"SUM({IN_TIME.format(done='fixed_at', due='due_at')}) "
        "FROM cases WHERE opened_at >= ? AND opened_at < ? GROUP BY department",
        (start, end),
    )
    return {str(r[0]): tuple(int(v or 0) for v in r[1:]) for r in rows}


async def event_counts(conn: Connection, start: int, end: int) -> dict[str, tuple[int, int, int]]:
    """Per department, events in the period: (dispatched to it, returned 退单, reopened 返工)."""
    rows = await _rows(
        conn,
        "SELECT department, "
        "SUM(CASE WHEN action IN ('open', 'reroute') THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN action = 'not_ours' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN action = 'reopen' THEN 1 ELSE 0 END) "
        "FROM case_events WHERE created_at >= ? AND created_at < ? "
        "AND action IN ('open', 'reroute', 'not_ours', 'reopen') GROUP BY department",
        (start, end),
    )
    return {str(r[0]): (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0)) for r in rows}


async def extension_counts(conn: Connection, start: int, end: int) -> dict[str, tuple[int, int]]:
    """Per department, extensions asked in the period: (asked, granted)."""
    rows = await _rows(
        conn,
        "SELECT department, COUNT(*), SUM(CASE WHEN state = 'approved' THEN 1 ELSE 0 END) "
        "FROM case_extensions WHERE asked_at >= ? AND asked_at < ? GROUP BY department",
        (start, end),
    )
    return {str(r[0]): (int(r[1]), int(r[2] or 0)) for r in rows}


async def feedback_counts(
    conn: Connection, start: int, end: int
) -> dict[str, tuple[int, int, int]]:
    """Per department, 回访 answers given in the period: (real answers, of which 满意 or
    基本满意, silent ones)."""
    rows = await _rows(
        conn,
        "SELECT c.department, SUM(CASE WHEN f.silent = 0 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN f.silent = 0 AND f.answer IN ('satisfied', 'basic') THEN 1 ELSE 0 END), "
        "SUM(f.silent) FROM case_feedback f JOIN cases c ON c.id = f.case_id "
        "WHERE f.created_at >= ? AND f.created_at < ? GROUP BY c.department",
        (start, end),
    )
    return {str(r[0]): (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0)) for r in rows}


async def duration_ranks(
    conn: Connection, start: int, end: int, fractions: Iterable[Fraction], *, to: str
) -> dict[Group, Ranked]:
    """Per department, of the cases opened in the period and accepted, seconds from dispatch
    to `to` ("accepted_at" or "fixed_at", where there is one), ranked for `fractions`."""
    if to not in ("accepted_at", "fixed_at"):
        raise ValueError(f"not a case's moment: {to!r}")
    return await ranks(
        conn,
        f"SELECT department AS grp, {to} - dispatched_at AS value FROM cases"  # noqa: S608
        " WHERE opened_at >= ? AND opened_at < ? AND accepted_at IS NOT NULL"
        f" AND {to} IS NOT NULL",
        (start, end),
        fractions,
    )
