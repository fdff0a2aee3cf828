"""The two engines' migrations end in the same schema: a fresh database migrated on SQLite and
one migrated on PostgreSQL have the same tables, columns (type, nullability, default), primary
and foreign keys, unique constraints, indexes and triggers, apart from the few differences
allowed below, each with its reason. The comparison runs on the PostgreSQL pass only (the SQLite
pass has no server to compare with); the last test, SQLite's upgrade, runs on both."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import asyncpg
import pytest

from storage.db import Database, migrations
from tests import engines

needs_postgres = pytest.mark.skipif(
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

SQLITE_ONLY_TRIGGERS |= {("payout_items", "payout_items_only_while_open")}
POSTGRES_ONLY_TRIGGERS = {("payout_items", "payout_items_checked")}
SQLITE_ONLY_FOREIGN_KEYS = {"payout_items"}
"""A first batch writes a million payout_items. PostgreSQL checks a statement's items
together, in one statement-level trigger (payout_items_checked: the entry exists, the line
exists, the batch is open); SQLite has no statement-level triggers and keeps the two foreign
keys and the per-row trigger, which cost it far less a row (migration 0034)."""

POSTGRES_ONLY_TRIGGERS |= {
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


TYPES = {
    "integer": "integer",
    "bigint": "integer",
    "real": "real",
    "double precision": "real",
    "text": "text",
    "blob": "blob",
    "bytea": "blob",
}
"""A column's type by the values it holds: SQLite's INTEGER and PostgreSQL's BIGINT both
hold a 64-bit integer (the bot stores times, fen and Telegram ids as such)."""

REFERENTIAL_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL"}
"""pg_constraint's confdeltype/confupdtype, as SQLite's PRAGMA foreign_key_list spells them."""


class Column(NamedTuple):
    kind: str  # a value of TYPES, or the declared type when TYPES does not know it
    not_null: bool
    default: str | None  # normalised, or AUTO_ID / ROWID


class ForeignKey(NamedTuple):
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    on_delete: str
    on_update: str


@dataclass(frozen=True)
class Index:
    columns: tuple[str, ...]
    where: str  # the partial index's predicate, normalised; "" for a full index


@dataclass
class Table:
    columns: dict[str, Column] = field(default_factory=dict)
    primary_key: tuple[str, ...] = ()
    foreign_keys: set[ForeignKey] = field(default_factory=set)
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
                table.columns[column] = Column(
                    TYPES.get(str(kind).lower(), str(kind).lower()),
                    bool(notnull or rowid),  # a TEXT PRIMARY KEY takes NULL on SQLite
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
        for name, table in schema.tables.items():
            keys: dict[int, list[tuple[str, str | None, str, str, str]]] = {}
            for number, _, parent, child, parent_column, on_update, on_delete, _ in conn.execute(
                f"PRAGMA foreign_key_list({name})"
            ):
                keys.setdefault(number, []).append(
                    (child, parent_column, parent, on_delete, on_update)
                )
            for rows in keys.values():
                parent = rows[0][2]
                parent_columns = tuple(row[1] or "" for row in rows)
                if not any(parent_columns):  # REFERENCES parent: its primary key
                    parent_columns = schema.tables[parent].primary_key
                table.foreign_keys.add(
                    ForeignKey(
                        tuple(row[0] for row in rows),
                        parent,
                        parent_columns,
                        rows[0][3],
                        rows[0][4],
                    )
                )
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
            " format_type(a.atttypid, NULL) AS kind,"
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
            table.columns[row["attname"]] = Column(
                TYPES.get(row["kind"], row["kind"]),
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
        for row in await conn.fetch(
            "SELECT t.relname AS table_name, p.relname AS parent,"
            " f.confdeltype::text AS confdeltype, f.confupdtype::text AS confupdtype,"
            " ARRAY(SELECT a.attname FROM unnest(f.conkey) WITH ORDINALITY AS k (n, i)"
            "       JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.n"
            "       ORDER BY k.i) AS columns,"
            " ARRAY(SELECT a.attname FROM unnest(f.confkey) WITH ORDINALITY AS k (n, i)"
            "       JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.n"
            "       ORDER BY k.i) AS parent_columns"
            " FROM pg_constraint f JOIN pg_class t ON t.oid = f.conrelid"
            " JOIN pg_class p ON p.oid = f.confrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
            " WHERE f.contype = 'f' AND n.nspname = current_schema()"
        ):
            schema.tables[row["table_name"]].foreign_keys.add(
                ForeignKey(
                    tuple(row["columns"]),
                    row["parent"],
                    tuple(row["parent_columns"]),
                    REFERENTIAL_ACTIONS.get(row["confdeltype"], row["confdeltype"]),
                    REFERENTIAL_ACTIONS.get(row["confupdtype"], row["confupdtype"]),
                )
            )
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
            if (
                a is not None
                and b is not None
                and a.default == ROWID
                and b.default in (AUTO_ID, None)
            ):
                a = a._replace(default=b.default)
            if a != b:
                found.append(f"{name}.{column}: SQLite {a}, PostgreSQL {b}")
        if lite.primary_key != pg.primary_key:
            found.append(
                f"{name}: primary key SQLite {lite.primary_key}, PostgreSQL {pg.primary_key}"
            )
        for key in sorted(lite.foreign_keys - pg.foreign_keys):
            if name not in SQLITE_ONLY_FOREIGN_KEYS:
                found.append(f"{name}: foreign key {key} only on SQLite")
        for key in sorted(pg.foreign_keys - lite.foreign_keys):
            found.append(f"{name}: foreign key {key} only on PostgreSQL")
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


@needs_postgres
async def test_both_engines_migrate_to_the_same_schema(tmp_path: Path) -> None:
    path, url = await migrated(tmp_path)
    found = differences(sqlite_schema(path), await postgres_schema(url))
    assert not found, "\n".join(found)


@needs_postgres
async def test_the_allowed_differences_are_there_to_allow(tmp_path: Path) -> None:
    """Each allowance names something one engine really has, so none outlives its reason."""
    path, url = await migrated(tmp_path)
    sqlite, postgres = sqlite_schema(path), await postgres_schema(url)
    assert set(sqlite.tables) - set(postgres.tables) >= SQLITE_ONLY_TABLES
    assert set(postgres.tables) - set(sqlite.tables) >= POSTGRES_ONLY_TABLES
    assert sqlite.triggers - postgres.triggers >= SQLITE_ONLY_TRIGGERS
    assert postgres.triggers - sqlite.triggers >= POSTGRES_ONLY_TRIGGERS
    for table in SQLITE_ONLY_FOREIGN_KEYS:
        assert sqlite.tables[table].foreign_keys
        assert not postgres.tables[table].foreign_keys
    for table, index in POSTGRES_ONLY_INDEXES:
        assert index in postgres.tables[table].indexes
        assert index not in sqlite.tables[table].indexes


@needs_postgres
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
        await pg.execute("ALTER TABLE case_prompts ADD FOREIGN KEY (asked_of) REFERENCES users")
        await pg.execute(
            "ALTER TABLE rider_cards ALTER COLUMN masked_name TYPE bytea USING masked_name::bytea"
        )
    finally:
        await pg.close()

    found = differences(sqlite_schema(path), await postgres_schema(url))
    assert [line.split(":")[0].split(" ")[0] for line in found] == [
        "case_prompts",
        "outbox.language",
        "outbox",
        "payees",
        "places.town",
        "rider_cards.masked_name",
        "users.nickname",
        "trigger",
    ], found


async def test_redemption_codes_keep_their_rows_when_the_code_becomes_not_null(
    tmp_path: Path,
) -> None:
    """SQLite's rebuild of redemption_codes (schema_parity migration) on a database in use."""
    (parity,) = [number for number, name, _ in migrations() if name.endswith("_schema_parity.sql")]
    path = tmp_path / "county.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        for number, _, sql in migrations():
            if number < parity:
                conn.executescript(f"BEGIN;\n{sql}\n;PRAGMA user_version = {number};\nCOMMIT;")
        conn.execute("INSERT INTO users (id, telegram_id, created_at) VALUES (1, 4242, 100)")
        conn.execute(
            "INSERT INTO redemption_codes (code, rider_id, merchant_name, item, points,"
            " created_at, expires_at, status, used_at, used_by, press)"
            " VALUES ('ABCD2345', 1, 'Noodles', 'tea', 30, 100, 200, 'used', 150, 77, 'q1')"
        )
    finally:
        conn.close()

    db = Database(path)
    await db.open()
    try:
        rows = await db.fetchall("SELECT * FROM redemption_codes")
        assert [tuple(row) for row in rows] == [
            ("ABCD2345", 1, "Noodles", "tea", 30, 100, 200, "used", 150, 77, "q1")
        ]
        with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
            async with db.transaction() as write:
                await write.execute(
                    "INSERT INTO redemption_codes (code, rider_id, merchant_name, item, points,"
                    " created_at, expires_at) VALUES (NULL, 1, 'Noodles', 'tea', 30, 100, 200)"
                )
    finally:
        await db.close()
