"""Copy a county's SQLite database into an empty PostgreSQL database (`bot.py migrate-to`).

Both are opened with `Database`, so both carry every migration first. Tables are copied
parents first (by their foreign keys), row by row with the same ids, inside one PostgreSQL
transaction with the tables' own triggers switched off for it (an exported batch must arrive
exported, which the append-only rules would otherwise refuse); foreign keys and CHECKs stay
on. Identity sequences then continue after the copied ids. Nothing is written to SQLite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from storage import ledger as ledger_store
from storage.db import Database
from storage.postgres import _COERCE, PgDatabase

SKIPPED = ("sqlite_", "places_rtree")  # SQLite's own, and the R*Tree (a btree on PostgreSQL)


class NotEmpty(Exception):
    """The target database already holds data."""


async def _sqlite_tables(source: Database) -> dict[str, list[str]]:
    """Every table to copy, parents before children, with its columns."""
    rows = await source.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    names = sorted(str(r[0]) for r in rows if not str(r[0]).startswith(SKIPPED))
    parents: dict[str, set[str]] = {}
    columns: dict[str, list[str]] = {}
    for name in names:
        keys = await source.fetchall(f"PRAGMA foreign_key_list({name})")
        parents[name] = {str(k["table"]) for k in keys} - {name}
        columns[name] = [
            str(c["name"]) for c in await source.fetchall(f"PRAGMA table_info({name})")
        ]
    ordered: list[str] = []
    while len(ordered) < len(names):
        ready = [n for n in names if n not in ordered and parents[n] <= set(ordered)]
        if not ready:
            raise RuntimeError(f"foreign keys form a cycle among {set(names) - set(ordered)}")
        ordered.extend(ready)
    return {name: columns[name] for name in ordered}


async def copy(source_path: Path, target_url: str) -> dict[str, int]:
    """Copy every row; the number of rows per table. Refuses a target that holds data."""
    source = Database(source_path)
    target = Database(target_url)
    assert isinstance(target, PgDatabase)
    await source.open()
    await target.open()
    try:
        tables = await _sqlite_tables(source)
        copied: dict[str, int] = {}
        raw = target.writer.raw
        async with target.transaction():
            for table in tables:
                if await raw.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):  # noqa: S608
                    raise NotEmpty(f"{table} is not empty; migrate-to needs an empty database")
            for table, columns in tables.items():
                types = {
                    str(r[0]): str(r[1])
                    for r in await raw.fetch(
                        "SELECT column_name, udt_name FROM information_schema.columns"
                        " WHERE table_schema = current_schema() AND table_name = $1",
                        table,
                    )
                }
                shared = [c for c in columns if c in types]
                async with source.snapshot() as conn:
                    listing = ", ".join(shared)
                    async with conn.execute(f"SELECT {listing} FROM {table}") as cursor:  # noqa: S608
                        rows = [tuple(row) for row in await cursor.fetchall()]
                coerce = [_COERCE.get(types[c]) for c in shared]
                records = [
                    tuple(
                        v if f is None or v is None else f(v)
                        for f, v in zip(coerce, row, strict=True)
                    )
                    for row in rows
                ]
                await raw.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
                await raw.copy_records_to_table(table, records=records, columns=shared)
                await raw.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
                if "id" in shared and types.get("id") == "int8":
                    await raw.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
                        f" (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
                    )
                copied[table] = len(records)
        return copied
    finally:
        await source.close()
        await target.close()


FACTS = {
    "reports": "SELECT id, reference, status, rider_id FROM reports ORDER BY id",
    "photos": "SELECT report_id, position, sha256, evidence FROM report_photos ORDER BY id",
    "ledger": "SELECT id, rider_id, kind, amount_fen, points, idempotency_key FROM ledger"
    " ORDER BY id",
    "payout batches": "SELECT id, period_key, status, total_fen, file_sha256 FROM payout_batches"
    " ORDER BY id",
}


async def facts(db: Database) -> dict[str, object]:
    """What `migrate-to` compares between the two engines: balances, then each of `FACTS`."""
    async with db.snapshot() as conn:
        found: dict[str, object] = {"balances": await ledger_store.balances(conn)}
        for name, sql in FACTS.items():
            async with conn.execute(sql) as cursor:
                found[name] = [tuple(row) for row in await cursor.fetchall()]
    return found


def summary(copied: dict[str, int]) -> list[tuple[str, Any]]:
    """Tables with rows, largest first."""
    return sorted(((t, n) for t, n in copied.items() if n), key=lambda item: -item[1])
