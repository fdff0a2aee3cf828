"""SQL for the county office's page: cases as the office sees them (no rider columns)."""

from __future__ import annotations

from dataclasses import dataclass

from storage.cases import CLOCK_STATES, OPEN_STATES
from storage.db import Connection, Row

CASE_COLUMNS = (
    "c.id, r.reference, r.category, r.town, c.department, c.state, c.urgent, c.opened_at, "
    "c.due_at, c.remind_at, c.accept_due_at, c.accept_remind_at, c.fixed_at, c.closed_at, "
    "r.latitude, r.longitude"
)
FROM = "cases c JOIN reports r ON r.id = c.report_id"
NO_TOWN = "-"  # the town filter for cases outside every town (未分区)
_OPEN = ", ".join(f"'{state}'" for state in OPEN_STATES)
_RUNNING = ", ".join(f"'{state}'" for state in CLOCK_STATES)


@dataclass(frozen=True)
class Filters:
    """What the table is narrowed to; None: any. `state` may also be "open"."""

    town: str | None = None
    department: str | None = None
    category: str | None = None
    state: str | None = None

    def where(self) -> tuple[str, tuple[object, ...]]:
        clauses: list[str] = []
        params: list[object] = []
        if self.town == NO_TOWN:
            clauses.append("r.town IS NULL")
        elif self.town is not None:
            clauses.append("r.town = ?")
            params.append(self.town)
        for column, value in (("c.department", self.department), ("r.category", self.category)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.state == "open":
            clauses.append(f"c.state IN ({_OPEN})")
        elif self.state is not None:
            clauses.append("c.state = ?")
            params.append(self.state)
        return " AND ".join(clauses) or "1 = 1", tuple(params)


# Running cases first (the nearest deadline first), then the rest, newest first.
_ORDER = (
    f"CASE WHEN c.state IN ({_RUNNING}) THEN 0 ELSE 1 END, "
    f"CASE WHEN c.state IN ({_RUNNING}) THEN c.due_at ELSE -c.opened_at END, c.id"
)


async def _all(conn: Connection, sql: str, params: tuple[object, ...] = ()) -> list[Row]:
    async with conn.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


async def cases(conn: Connection, filters: Filters, limit: int) -> tuple[list[Row], int]:
    """Up to `limit` cases matching `filters` in the table's order, and how many match."""
    where, params = filters.where()
    rows = await _all(
        conn,
        f"SELECT {CASE_COLUMNS} FROM {FROM} WHERE {where} "  # noqa: S608
        f"ORDER BY {_ORDER} LIMIT ?",
        (*params, limit),
    )
    (count,) = await _all(conn, f"SELECT COUNT(*) FROM {FROM} WHERE {where}", params)  # noqa: S608
    return rows, int(count[0])


async def running(conn: Connection, filters: Filters) -> list[Row]:
    """Every case matching `filters` whose department's time is running and that has a
    place: the map's points."""
    where, params = filters.where()
    return await _all(
        conn,
        f"SELECT c.state, c.due_at, c.remind_at, c.accept_due_at, c.accept_remind_at, "  # noqa: S608
        f"r.reference, r.latitude, r.longitude FROM {FROM} WHERE {where} "
        f"AND c.state IN ({_RUNNING}) AND r.latitude IS NOT NULL ORDER BY c.id",
        params,
    )


async def history(conn: Connection, reference: str) -> list[Row] | None:
    """Every event of the case of `reference`, oldest first; None: no such case."""
    found = await _all(
        conn,
        f"SELECT c.id FROM {FROM} WHERE r.reference = ?",  # noqa: S608
        (reference,),
    )
    if not found:
        return None
    return await _all(
        conn,
        "SELECT role, action, from_state, to_state, department, note, created_at "
        "FROM case_events WHERE case_id = ? ORDER BY id",
        (found[0][0],),
    )


async def choices(conn: Connection) -> tuple[list[str], list[str]]:
    """The towns and categories the cases name (the filters' options besides configured ones)."""
    towns = await _all(
        conn,
        f"SELECT DISTINCT r.town FROM {FROM} WHERE r.town IS NOT NULL ORDER BY r.town",  # noqa: S608
    )
    categories = await _all(
        conn,
        f"SELECT DISTINCT r.category FROM {FROM} WHERE r.category IS NOT NULL "  # noqa: S608
        "ORDER BY r.category",
    )
    return [str(r[0]) for r in towns], [str(r[0]) for r in categories]
