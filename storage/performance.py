"""SQL for each department's performance (部门绩效) over a period; see services/performance.py."""

from __future__ import annotations

from storage.db import Database

IN_TIME = "CASE WHEN {done} IS NOT NULL AND ({due} IS NULL OR {done} <= {due}) THEN 1 ELSE 0 END"


async def case_counts(db: Database, start: int, end: int) -> dict[str, tuple[int, ...]]:
    """Per department, over the cases it holds that were opened in the period: (cases,
    accepted, accepted in time, fixed, fixed in time)."""
    rows = await db.fetchall(
        "SELECT department, COUNT(*), "  # noqa: S608 (fixed fragments only)
        "SUM(CASE WHEN accepted_at IS NOT NULL THEN 1 ELSE 0 END), "
        f"SUM({IN_TIME.format(done='accepted_at', due='accept_due_at')}), "
        "SUM(CASE WHEN fixed_at IS NOT NULL THEN 1 ELSE 0 END), "
        f"SUM({IN_TIME.format(done='fixed_at', due='due_at')}) "
        "FROM cases WHERE opened_at >= ? AND opened_at < ? GROUP BY department",
        (start, end),
    )
    return {str(r[0]): tuple(int(v or 0) for v in r[1:]) for r in rows}


async def event_counts(db: Database, start: int, end: int) -> dict[str, tuple[int, int, int]]:
    """Per department, events in the period: (dispatched to it, returned 退单, reopened 返工)."""
    rows = await db.fetchall(
        "SELECT department, "
        "SUM(CASE WHEN action IN ('open', 'reroute') THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN action = 'not_ours' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN action = 'reopen' THEN 1 ELSE 0 END) "
        "FROM case_events WHERE created_at >= ? AND created_at < ? "
        "AND action IN ('open', 'reroute', 'not_ours', 'reopen') GROUP BY department",
        (start, end),
    )
    return {str(r[0]): (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0)) for r in rows}


async def extension_counts(db: Database, start: int, end: int) -> dict[str, tuple[int, int]]:
    """Per department, extensions asked in the period: (asked, granted)."""
    rows = await db.fetchall(
        "SELECT department, COUNT(*), SUM(CASE WHEN state = 'approved' THEN 1 ELSE 0 END) "
        "FROM case_extensions WHERE asked_at >= ? AND asked_at < ? GROUP BY department",
        (start, end),
    )
    return {str(r[0]): (int(r[1]), int(r[2] or 0)) for r in rows}


async def feedback_counts(db: Database, start: int, end: int) -> dict[str, tuple[int, int, int]]:
    """Per department, 回访 answers given in the period: (real answers, of which 满意 or
    基本满意, silent ones)."""
    rows = await db.fetchall(
        "SELECT c.department, SUM(CASE WHEN f.silent = 0 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN f.silent = 0 AND f.answer IN ('satisfied', 'basic') THEN 1 ELSE 0 END), "
        "SUM(f.silent) FROM case_feedback f JOIN cases c ON c.id = f.case_id "
        "WHERE f.created_at >= ? AND f.created_at < ? GROUP BY c.department",
        (start, end),
    )
    return {str(r[0]): (int(r[1] or 0), int(r[2] or 0), int(r[3] or 0)) for r in rows}


async def durations(db: Database, start: int, end: int) -> list[tuple[str, int | None, int | None]]:
    """(department, seconds to accept, seconds to fix) of the cases opened in the period."""
    rows = await db.fetchall(
        "SELECT department, accepted_at - dispatched_at, fixed_at - dispatched_at FROM cases "
        "WHERE opened_at >= ? AND opened_at < ? AND accepted_at IS NOT NULL",
        (start, end),
    )
    return [(str(r[0]), r[1], r[2]) for r in rows]
