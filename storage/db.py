"""The database: SQLite by default, PostgreSQL when DATABASE_URL says so, behind one API.

`Database(path)` opens SQLite; `Database("postgresql://...")` returns a `PgDatabase`
(storage/postgres.py) with the same methods. Services and handlers never learn which runs.

SQLite: the one connection, pragmas, numbered migrations and serialised write transactions.

aiosqlite runs every statement on one worker thread, but two coroutines' statements would
interleave inside one transaction. `Database.transaction()` therefore holds an asyncio lock
across `BEGIN IMMEDIATE ... COMMIT` (rolled back on any error). `fetchone`/`fetchall` take
the same lock, so a read never sees another coroutine's uncommitted writes on the shared
connection; inside a transaction, use the connection it yields.

That connection (`SqliteConnection`) runs each statement and fetches its rows in one trip to
aiosqlite's thread, as PostgreSQL's does (every row fetched whole): aiosqlite's own execute,
fetch and close are a trip each, and each trip (a future, a wake-up of the event loop, the
GIL handed back and forth) costs more than the statement on a small table.

Long reads (/audit, /stats, exports) use `Database.snapshot()` instead: a read transaction
on a separate read-only connection, which with WAL sees one committed state of the database
from its first read to its end, never blocks writers and never waits for the lock.

`recursive_triggers` is on for every connection, so the delete half of `INSERT OR REPLACE`
fires the append-only tables' DELETE triggers; migration 0007 makes those tables refuse a
REPLACE even on connections that leave it off.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import aiosqlite
import asyncpg
from aiosqlite.context import Result

if TYPE_CHECKING:
    from storage.postgres import PgConnection

ENGINES: dict[str, type[Database]] = {}
"""Other engines' `Database`s by name; storage/postgres.py adds itself (the storage package
imports it), so this module imports no other and the storage modules form no cycle."""
BUSY_TIMEOUT_MS = 5000
IDLE_READERS = 2
"""Read-only connections kept open between snapshots; more are opened while busy."""
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

Row = sqlite3.Row
Parameters: TypeAlias = "Iterable[Any] | Mapping[str, Any]"
Connection: TypeAlias = "SqliteConnection | aiosqlite.Connection | PgConnection"
"""What `Database.transaction()` and `snapshot()` yield: `execute(sql, params)` with `?`
placeholders, giving a cursor with `rowcount`, `lastrowid`, `fetchone`, `fetchall` and async
iteration; rows are read by column name or position on both engines."""
IntegrityError = sqlite3.IntegrityError
"""Raised on both engines when a constraint or an append-only trigger refuses a write."""
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
"""What either engine raises when the database cannot be opened or refuses a statement."""


def dialect(conn: Connection) -> str:
    """ "sqlite" or "postgresql": for the few statements the two engines spell differently."""
    return str(getattr(conn, "engine", "sqlite"))


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def migrations(engine: str = "sqlite") -> list[tuple[int, str, str]]:
    """(number, file name, SQL) for every migration of `engine` ("sqlite" or "postgresql")."""
    package = "storage.migrations" if engine == "sqlite" else f"storage.migrations.{engine}"
    found = []
    for entry in resources.files(package).iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [number for number, _, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 0001.. without gaps, found {numbers}")
    return found


class FetchedCursor:
    """What `execute` gives: every row already fetched, the command's row count, the new id."""

    def __init__(self, rows: Sequence[Any], rowcount: int, lastrowid: int | None) -> None:
        self._rows = list(rows)
        self._next = 0
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    async def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchall(self) -> list[Any]:
        rest, self._next = self._rows[self._next :], len(self._rows)
        return rest

    async def close(self) -> None:
        """Nothing to release: rows are fetched whole."""

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        while self._next < len(self._rows):
            self._next += 1
            yield self._rows[self._next - 1]


class SqliteConnection:
    """The write connection inside `Database.transaction()`: a statement, its rows, its row
    count and new id in one trip to aiosqlite's thread."""

    engine = "sqlite"

    def __init__(self, raw: aiosqlite.Connection) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Parameters | None = None) -> Result[FetchedCursor]:
        return Result(self._in_thread(_execute, sql, () if parameters is None else parameters))

    def executemany(self, sql: str, parameters: Iterable[Parameters]) -> Result[FetchedCursor]:
        return Result(self._in_thread(_executemany, sql, parameters))

    async def _in_thread(
        self, run: Callable[[sqlite3.Connection, str, Any], FetchedCursor], sql: str, args: Any
    ) -> FetchedCursor:
        # aiosqlite's one way to run a function on its thread, where the sqlite3 connection
        # lives (its public methods are built on it).
        fetched: FetchedCursor = await self.raw._execute(  # type: ignore[no-untyped-call]
            run, self.raw._conn, sql, args
        )
        return fetched


def _execute(raw: sqlite3.Connection, sql: str, parameters: Parameters) -> FetchedCursor:
    """On aiosqlite's thread: run one statement and fetch all it returns."""
    cursor = raw.execute(sql, parameters if isinstance(parameters, Mapping) else tuple(parameters))
    try:
        return FetchedCursor(cursor.fetchall(), cursor.rowcount, cursor.lastrowid)
    finally:
        cursor.close()


def _executemany(
    raw: sqlite3.Connection, sql: str, parameters: Iterable[Parameters]
) -> FetchedCursor:
    cursor = raw.executemany(sql, parameters)  # type: ignore[arg-type]
    try:
        return FetchedCursor([], cursor.rowcount, cursor.lastrowid)
    finally:
        cursor.close()


class Database:
    """Owns the aiosqlite connection; open in `post_init`, close in `post_shutdown`.

    Given a postgresql:// URL instead of a path, it is a `PgDatabase`."""

    engine = "sqlite"

    def __new__(cls, target: Path | str, *args: Any, **kwargs: Any) -> Database:
        if cls is Database and is_postgres_url(target):
            return object.__new__(ENGINES["postgresql"])
        return object.__new__(cls)

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._connection: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._idle_readers: list[aiosqlite.Connection] = []

    @property
    def connection(self) -> aiosqlite.Connection:
        if self._connection is None:
            raise RuntimeError("database is not open")
        return self._connection

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: no implicit transactions; we issue BEGIN/COMMIT ourselves.
        connection = await aiosqlite.connect(self.path, isolation_level=None)
        connection.row_factory = sqlite3.Row
        for pragma in (
            f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = FULL",
            "PRAGMA foreign_keys = ON",
            "PRAGMA secure_delete = ON",  # erased rows do not linger in free pages
            "PRAGMA recursive_triggers = ON",
        ):
            await connection.execute(pragma)
        self._connection = connection
        await self.migrate()

    async def _open_reader(self) -> aiosqlite.Connection:
        """A read-only connection (`mode=ro`): it can never write, whatever it is asked."""
        reader = await aiosqlite.connect(
            f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
        )
        reader.row_factory = sqlite3.Row
        for pragma in (
            f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
            "PRAGMA query_only = ON",
        ):
            await reader.execute(pragma)
        return reader

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Connection]:
        """A read transaction on a read-only connection of its own: every query inside sees
        the same committed state, and neither waits for nor holds up writers."""
        async with self.snapshots(1) as (reader,):
            yield reader

    @asynccontextmanager
    async def snapshots(self, count: int) -> AsyncIterator[tuple[Connection, ...]]:
        """`count` snapshots of one committed state, each on a read-only connection (and
        aiosqlite thread) of its own, so that long reads run side by side and still agree.

        A WAL read transaction takes its snapshot at its first read. For two or more, those
        first reads happen while this process holds the write lock and `BEGIN IMMEDIATE` on
        the writer (no commit, from here or another process, can land between them): writers
        wait for that moment, a few milliseconds, and never for the reads themselves."""
        if self._connection is None:
            raise RuntimeError("database is not open")
        async with AsyncExitStack() as stack:
            readers: tuple[Connection, ...]
            if count == 1:
                readers = (await stack.enter_async_context(self._read_transaction()),)
            else:
                async with self._lock:
                    await self.connection.execute("BEGIN IMMEDIATE")
                    try:
                        readers = tuple(
                            [
                                await stack.enter_async_context(self._read_transaction(pin=True))
                                for _ in range(count)
                            ]
                        )
                    finally:
                        await self.connection.execute("ROLLBACK")
            yield readers

    @asynccontextmanager
    async def _read_transaction(self, *, pin: bool = False) -> AsyncIterator[Connection]:
        """A read transaction on an idle reader or a new one; with `pin`, its snapshot is
        taken now (by a first read) rather than at its first query."""
        reader = self._idle_readers.pop() if self._idle_readers else await self._open_reader()
        try:
            await reader.execute("BEGIN")
            try:
                if pin:
                    await reader.execute_fetchall("SELECT 1 FROM sqlite_schema LIMIT 1")
                yield reader
            finally:
                await reader.execute("COMMIT")
        except BaseException:
            await reader.close()
            raise
        if self._connection is not None and len(self._idle_readers) < IDLE_READERS:
            self._idle_readers.append(reader)
        else:
            await reader.close()

    async def would_lead(self) -> bool:
        """SQLite: one process owns the file, so it always leads."""
        return True

    async def lead(self, on_wait: Callable[[], None], on_lost: Callable[[], None]) -> None:
        """SQLite: nothing to wait for (a standby needs PostgreSQL)."""

    async def close(self) -> None:
        readers, self._idle_readers = self._idle_readers, []
        for reader in readers:
            await reader.close()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            async with self._lock:
                await connection.close()

    async def schema_version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0]) if row else 0

    async def migrate(self) -> list[str]:
        """Apply every migration newer than `PRAGMA user_version`, each in its own transaction."""
        applied = []
        current = await self.schema_version()
        for number, name, sql in migrations():
            if number <= current:
                continue
            async with self._lock:
                try:
                    # executescript commits any open transaction first, so the whole file,
                    # its version bump included, runs inside this one explicit transaction.
                    await self.connection.executescript(
                        f"BEGIN IMMEDIATE;\n{sql}\n;PRAGMA user_version = {number};\nCOMMIT;"
                    )
                except BaseException:
                    if self.connection.in_transaction:
                        await self.connection.execute("ROLLBACK")
                    raise
            applied.append(name)
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A write transaction: serialised with other writers, rolled back on error."""
        async with self._lock:
            connection = SqliteConnection(self.connection)
            await connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                await connection.execute("ROLLBACK")
                raise
            else:
                await connection.execute("COMMIT")

    # One trip to aiosqlite's thread per read (execute, fetch and close together), not three:
    # a read's cost on the event loop is mostly those hand-overs.
    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        async with self._lock:
            return list(await self.connection.execute_fetchall(sql, tuple(params)))


_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _name(identifier: str) -> str:
    """A table or column name written into SQL: only plain lower-case names pass."""
    if not _NAME.match(identifier):
        raise ValueError(f"not a plain SQL name: {identifier!r}")
    return identifier


def placeholders(values: Iterable[object]) -> str:
    """`?, ?, ?` for an `IN (...)` list of `values` (a list of none matches nothing)."""
    return ", ".join("?" for _ in values) or "NULL"


async def guarded_update(
    conn: Connection,
    table: str,
    where: Mapping[str, object],
    column: str,
    expected: str,
    new: str,
    fields: Mapping[str, object] | None = None,
    *,
    condition: str = "",
    condition_params: Iterable[object] = (),
) -> bool:
    """The one guarded state change: `UPDATE table SET column = new, fields... WHERE
    where... AND column = expected [AND condition]`. True only for the caller whose statement
    changed the row, so two at once (two presses, two processes) make one change.

    `where` names the row (`{"id": 5}`); `condition` is an extra SQL test with its own `?`
    parameters (`expires_at > ?`). Same statement on both engines.
    """
    fields = fields or {}
    assignments = "".join(f", {_name(name)} = ?" for name in fields)
    keys = "".join(f"{_name(name)} = ? AND " for name in where)
    extra = f" AND ({condition})" if condition else ""
    state = _name(column)
    cursor = await conn.execute(
        f"UPDATE {_name(table)} SET {state} = ?{assignments}"  # noqa: S608
        f" WHERE {keys}{state} = ?{extra}",
        (new, *fields.values(), *where.values(), expected, *condition_params),
    )
    return bool(cursor.rowcount == 1)
