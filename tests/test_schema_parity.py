"""The two engines' migrations end in the same schema: a fresh database migrated on SQLite and
one migrated on PostgreSQL have the same tables, columns (nullability, defaults), primary keys,
unique constraints, indexes and triggers, apart from the few differences allowed below, each
with its reason (PostgreSQL pass only: the SQLite pass has no server to compare with)."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from storage.db import Database
from tests import engines

pytestmark = pytest.mark.skipif(
    engines.ENGINE != "postgresql",
    reason="compares SQLite with PostgreSQL: needs TEST_DATABASE_URL (the PostgreSQL pass)",
)

AUTO_ID = "<auto id>"
"""The default of an id PostgreSQL assigns: an identity or serial column."""
ROWID = "<rowid>"
"""SQLite's INTEGER PRIMARY KEY: the rowid, which SQLite fills in when an INSERT leaves it out.
It matches an AUTO_ID, and also a PostgreSQL key without a default: keys the caller always
gives (a Telegram id, a rider's users.id) are INTEGER PRIMARY KEY on SQLite all the same, and
the PostgreSQL pass would refuse an INSERT that left one out. The other way round is a real
difference: a PostgreSQL identity must be a rowid on SQLite, or SQLite would not fill it in."""

SQLITE_ONLY_TABLES = {
    "places_rtree",
    "places_rtree_node",
    "places_rtree_parent",
    "places_rtree_rowid",
}
"""SQLite's R*Tree for the nearest-place search (a virtual table and the shadow tables it keeps).
PostgreSQL has no R*Tree: storage/places.py `in_box` prefilters by box on `places` itself,
through the btree `places_by_position` on (lat, lon) (POSTGRES_ONLY_INDEXES)."""

SQLITE_ONLY_TRIGGERS = {("places", "places_rtree_add"), ("places", "places_rtree_remove")}
"""They keep the R*Tree above in step with `places`; PostgreSQL's btree keeps itself."""

POSTGRES_ONLY_TABLES = {"schema_version"}
"""PostgreSQL records the applied migrations in a table; SQLite in `PRAGMA user_version`."""

POSTGRES_ONLY_INDEXES = {("places", "places_by_position")}
"""PostgreSQL's stand-in for the R*Tree (see SQLITE_ONLY_TABLES)."""

SQLITE_ONLY_TRIGGERS |= {
    (table, f"{table}_no_replace")
    for table in ("decisions", "ledger", "payout_batches", "payout_items", "payout_lines")
}
"""SQLite's `INSERT OR REPLACE` deletes the row in the way without firing its delete
triggers, so the append-only tables refuse an insert whose key exists. PostgreSQL has no
REPLACE: its unique constraints (compared below) refuse such an insert by themselves."""

POSTGRES_ONLY_TRIGGERS = {
    (table, f"{table}_no_truncate")
    for table in (
        "case_events",
        "decisions",
        "ledger",
        "payout_batches",
        "payout_items",
        "payout_lines",
    )
}
"""PostgreSQL's TRUNCATE empties a table without firing its delete triggers, so the
append-only tables refuse it; SQLite has no TRUNCATE (its `DELETE FROM t` fires them)."""


@dataclass(frozen=True)
class Index:
    columns: tuple[str, ...]
    where: str  # the partial index's predicate, normalised; "" for a full index


@dataclass
class Table:
    columns: dict[str, tuple[bool, str | None]] = field(default_factory=dict)  # not null, default
    primary_key: tuple[str, ...] = ()
    unique: set[Index] = field(default_factory=set)  # constraints and unique indexes alike
    indexes: dict[str, Index] = field(default_factory=dict)  # the other indexes, by name


@dataclass
class Schema:
    tables: dict[str, Table] = field(default_factory=dict)
    triggers: set[tuple[str, str]] = field(default_factory=set)  # (table, trigger name)


def normalised(expression: str | None) -> str | None:
    """A default or predicate as either engine would print it: PostgreSQL's casts
    (`'x'::text`), parentheses and letter case dropped, spaces collapsed."""
    if expression is None:
        return None
    text = re.sub(r"::[a-z ]+(\[\])?", "", expression, flags=re.I)
    text = text.replace("(", " ").replace(")", " ")
    text = re.sub(r"\s+", " ", text).strip()
    if text.upper() == "NULL":
        return None
    return text.lower()


def sqlite_schema(path: Path) -> Schema:
    schema = Schema()
    conn = sqlite3.connect(path)
    try:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            )
        ]
        for name in names:
            table = schema.tables[name] = Table()
            info = conn.execute(f"PRAGMA table_info({name})").fetchall()
            key = sorted((pk, column) for _, column, _, _, _, pk in info if pk)
            table.primary_key = tuple(column for _, column in key)
            for _, column, kind, notnull, default, pk in info:
                rowid = pk and len(key) == 1 and str(kind).upper() == "INTEGER"
                table.columns[column] = (
                    bool(notnull or pk),
                    ROWID if rowid else normalised(default),
                )
            for _, index, unique, origin, partial in conn.execute(f"PRAGMA index_list({name})"):
                if origin == "pk":
                    continue
                columns = tuple(str(row[2]) for row in conn.execute(f"PRAGMA index_info({index})"))
                where = ""
                if partial:
                    (sql,) = conn.execute(
                        "SELECT sql FROM sqlite_master WHERE name = ?", (index,)
                    ).fetchone()
                    where = normalised(re.split(r"\bWHERE\b", sql, maxsplit=1, flags=re.I)[1]) or ""
                if unique:
                    table.unique.add(Index(columns, where))
                else:
                    table.indexes[index] = Index(columns, where)
        schema.triggers = {
            (str(table), str(name))
            for name, table in conn.execute(
                "SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger'"
            )
        }
    finally:
        conn.close()
    return schema


async def postgres_schema(url: str) -> Schema:
    schema = Schema()
    conn = await asyncpg.connect(url)
    try:
        for row in await conn.fetch(
            "SELECT c.relname AS table_name, a.attname, a.attnotnull,"
            " a.attidentity <> '' AS identity,"
            " pg_get_expr(d.adbin, d.adrelid) AS default_value"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')"
            " ORDER BY c.relname, a.attnum"
        ):
            table = schema.tables.setdefault(row["table_name"], Table())
            default = row["default_value"]
            auto = row["identity"] or str(default or "").startswith("nextval(")
            table.columns[row["attname"]] = (
                bool(row["attnotnull"]),
                AUTO_ID if auto else normalised(default),
            )
        for row in await conn.fetch(
            "SELECT t.relname AS table_name, i.relname AS index_name, x.indisunique,"
            " x.indisprimary, x.indnatts,"
            " COALESCE(pg_get_expr(x.indpred, x.indrelid), '') AS predicate,"
            " ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)"
            "       FROM generate_series(1, x.indnatts) AS k ORDER BY k) AS columns"
            " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
            " JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
            " WHERE n.nspname = current_schema()"
        ):
            table = schema.tables[row["table_name"]]
            columns = tuple(column.strip('"') for column in row["columns"])  # "position"
            index = Index(columns, normalised(row["predicate"]) or "")
            if row["indisprimary"]:
                table.primary_key = index.columns
            elif row["indisunique"]:
                table.unique.add(index)
            else:
                table.indexes[row["index_name"]] = index
        schema.triggers = {
            (str(row["relname"]), str(row["tgname"]))
            for row in await conn.fetch(
                "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = current_schema() AND NOT t.tgisinternal"
            )
        }
    finally:
        await conn.close()
    return schema


def differences(sqlite: Schema, postgres: Schema) -> list[str]:
    found: list[str] = []
    lite_tables = set(sqlite.tables) - SQLITE_ONLY_TABLES
    pg_tables = set(postgres.tables) - POSTGRES_ONLY_TABLES
    found += [f"table {name} only on SQLite" for name in sorted(lite_tables - pg_tables)]
    found += [f"table {name} only on PostgreSQL" for name in sorted(pg_tables - lite_tables)]
    for name in sorted(lite_tables & pg_tables):
        lite, pg = sqlite.tables[name], postgres.tables[name]
        for column in sorted(set(lite.columns) | set(pg.columns)):
            a, b = lite.columns.get(column), pg.columns.get(column)
            if a is not None and b is not None and a[1] == ROWID and b[1] in (AUTO_ID, None):
                a = (a[0], b[1])
            if a != b:
                found.append(f"{name}.{column}: SQLite (not null, default) {a}, PostgreSQL {b}")
        if lite.primary_key != pg.primary_key:
            found.append(
                f"{name}: primary key SQLite {lite.primary_key}, PostgreSQL {pg.primary_key}"
            )
        for index in sorted(lite.unique - pg.unique, key=repr):
            found.append(f"{name}: unique {index} only on SQLite")
        for index in sorted(pg.unique - lite.unique, key=repr):
            found.append(f"{name}: unique {index} only on PostgreSQL")
        lite_indexes = set(lite.indexes.items())
        pg_indexes = {
            item for item in pg.indexes.items() if (name, item[0]) not in POSTGRES_ONLY_INDEXES
        }
        for index_name, index in sorted(lite_indexes - pg_indexes, key=repr):
            found.append(f"{name}: index {index_name} {index} only on SQLite")
        for index_name, index in sorted(pg_indexes - lite_indexes, key=repr):
            found.append(f"{name}: index {index_name} {index} only on PostgreSQL")
    lite_triggers = sqlite.triggers - SQLITE_ONLY_TRIGGERS
    pg_triggers = postgres.triggers - POSTGRES_ONLY_TRIGGERS
    found += [f"trigger {t} only on SQLite" for t in sorted(lite_triggers - pg_triggers)]
    found += [f"trigger {t} only on PostgreSQL" for t in sorted(pg_triggers - lite_triggers)]
    return found


async def migrated(tmp_path: Path) -> tuple[Path, str]:
    """A fresh SQLite file and a fresh PostgreSQL database, every migration applied to each."""
    path = tmp_path / "lite.db"
    url = engines.database_for(tmp_path / "pg.db")  # from the suite's migrated template
    assert isinstance(url, str)
    for db in (Database(path), Database(url)):
        await db.open()
        await db.close()
    return path, url


async def test_both_engines_migrate_to_the_same_schema(tmp_path: Path) -> None:
    path, url = await migrated(tmp_path)
    found = differences(sqlite_schema(path), await postgres_schema(url))
    assert not found, "\n".join(found)


async def test_the_allowed_differences_are_there_to_allow(tmp_path: Path) -> None:
    """Each allowance names something one engine really has, so none outlives its reason."""
    path, url = await migrated(tmp_path)
    sqlite, postgres = sqlite_schema(path), await postgres_schema(url)
    assert set(sqlite.tables) - set(postgres.tables) >= SQLITE_ONLY_TABLES
    assert set(postgres.tables) - set(sqlite.tables) >= POSTGRES_ONLY_TABLES
    assert sqlite.triggers - postgres.triggers >= SQLITE_ONLY_TRIGGERS
    assert postgres.triggers - sqlite.triggers >= POSTGRES_ONLY_TRIGGERS
    for table, index in POSTGRES_ONLY_INDEXES:
        assert index in postgres.tables[table].indexes
        assert index not in sqlite.tables[table].indexes


async def test_a_migration_written_for_one_engine_only_is_noticed(tmp_path: Path) -> None:
    path, url = await migrated(tmp_path)
    conn = sqlite3.connect(path)
    try:
        conn.executescript(
            "ALTER TABLE users ADD COLUMN nickname TEXT NOT NULL DEFAULT 'x';"
            "CREATE INDEX outbox_by_chat ON outbox (chat_id);"
            "CREATE UNIQUE INDEX payees_one_account ON payees (account);"
            "CREATE TRIGGER users_touched AFTER UPDATE ON users BEGIN SELECT 1; END;"
        )
    finally:
        conn.close()
    pg = await asyncpg.connect(url)
    try:
        await pg.execute("ALTER TABLE places ALTER COLUMN town SET DEFAULT 'y'")
        await pg.execute("ALTER TABLE outbox ALTER COLUMN language SET NOT NULL")
    finally:
        await pg.close()

    found = differences(sqlite_schema(path), await postgres_schema(url))
    assert [line.split(":")[0].split(" ")[0] for line in found] == [
        "outbox.language",
        "outbox",
        "payees",
        "places.town",
        "users.nickname",
        "trigger",
    ], found
