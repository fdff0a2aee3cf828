"""PostgreSQL behind the same API as the SQLite `Database` (asyncpg).

The storage modules write SQL with `?` placeholders and read `cursor.rowcount`,
`cursor.lastrowid`, `fetchone`/`fetchall` and rows by name or position. `PgConnection` gives
them that surface on an asyncpg connection: `?` becomes `$1..$n`, an INSERT into a table with
an `id` column gets `RETURNING id` for `lastrowid`, and the command tag gives `rowcount`.
Constraint violations and the append-only triggers' refusals raise `storage.db.IntegrityError`,
as on SQLite. SUM and AVG (numeric) come back as int, or float when not whole.

Transactions keep SQLite's meaning: writes are serialised, in this process by an asyncio lock
on the one write connection and across processes by a transaction-scoped advisory lock, so a
read-then-write inside `transaction()` is as safe as under `BEGIN IMMEDIATE`. `fetchone` and
`fetchall` take the same lock, as on SQLite, so a read that follows a wake-up sent from
inside a transaction waits for that transaction's commit. `snapshot()` runs on a reader
connection of its own, REPEATABLE READ and READ ONLY: one committed state throughout.

Migrations live in storage/migrations/postgresql/, numbered like the SQLite ones, and are
tracked in `schema_version`. Leadership (one bot polls Telegram, the others wait) is a
session-level advisory lock held on a connection of its own: see `Leadership`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from typing import Any

import asyncpg
from aiosqlite.context import Result

from storage.db import ENGINES, Database, FetchedCursor, IntegrityError, migrations

WRITE_LOCK_KEY = 0x5355_4950  # "SUIP": every write transaction, across processes
LEADER_LOCK_KEY = 0x4C45_4144  # "LEAD": held by the process that talks to Telegram
IDLE_READERS = 2
log = logging.getLogger(__name__)
LEADER_POLL_SECONDS = 1.0
RECONNECT_MAX_SECONDS = 10.0
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
)
LEADER_NAME = "suishoupai leader"
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+-[0-9]+")
"""What `pg_export_snapshot()` returns (written into SET TRANSACTION SNAPSHOT, which takes
no parameters)."""
STANDBY_NAME = "suishoupai standby"
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z_]\w*")
_DIGITS = re.compile(r"\d+")
Parameters = Iterable[Any] | Mapping[str, Any]
_SCHEMA_VERSION = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
)"""


def placeholders(sql: str) -> tuple[str, tuple[str, ...]]:
    """`?` and `:name` placeholders as `$1..$n` (quoted text and comments left alone), and
    the names in the order of their numbers (empty for `?`)."""
    out: list[str] = []
    names: list[str] = []
    number = 0
    i = 0
    while i < len(sql):
        char = sql[i]
        if char in ("'", '"'):
            end = sql.find(char, i + 1)
            end = len(sql) if end == -1 else end + 1
            out.append(sql[i:end])
            i = end
            continue
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            end = len(sql) if end == -1 else end
            out.append(sql[i:end])
            i = end
            continue
        if char == "?" and (digits := _DIGITS.match(sql, i + 1)):
            out.append(f"${digits.group(0)}")  # ?NNN: numbered, as SQLite allows
            i = digits.end()
            continue
        if char == "?":
            number += 1
            out.append(f"${number}")
        elif char == ":" and sql.startswith("::", i):
            out.append("::")
            i += 2
            continue
        elif char == ":" and (named := _NAME.match(sql, i + 1)):
            name = named.group(0)
            if name not in names:
                names.append(name)
            out.append(f"${names.index(name) + 1}")
            i = named.end()
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out), tuple(names)


def _numeric(text: str) -> int | float:
    """SUM of integers is `numeric` in PostgreSQL: whole numbers come back as int, like SQLite."""
    return int(text) if "." not in text else float(text)


async def connect(url: str) -> asyncpg.Connection:
    connection = await asyncpg.connect(url)
    await connection.set_type_codec(
        "numeric", schema="pg_catalog", encoder=str, decoder=_numeric, format="text"
    )
    return connection


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) else value


def _integer(value: Any) -> Any:
    return (
        int(value)
        if isinstance(value, bool) or (isinstance(value, str) and value.lstrip("-").isdigit())
        else value
    )


def _real(value: Any) -> Any:
    return float(value) if isinstance(value, int) else value


_COERCE: dict[str, Callable[[Any], Any]] = {
    "text": _text,
    "varchar": _text,
    "int8": _integer,
    "int4": _integer,
    "int2": _integer,
    "float8": _real,
    "float4": _real,
    "numeric": _real,
}
_COERCERS: dict[str, tuple[Callable[[Any], Any] | None, ...]] = {}


def _arguments(names: tuple[str, ...], parameters: Parameters) -> tuple[Any, ...]:
    if isinstance(parameters, Mapping):
        return tuple(parameters[name] for name in names)
    return tuple(parameters)


PgCursor = FetchedCursor  # every row fetched whole, as on SQLite


class PgConnection:
    """An asyncpg connection with the small aiosqlite surface the storage modules use."""

    engine = "postgresql"

    def __init__(self, raw: asyncpg.Connection, tables_with_id: frozenset[str]) -> None:
        self.raw = raw
        self._tables_with_id = tables_with_id
        self._sql: dict[str, tuple[str, tuple[str, ...], bool]] = {}

    def _translate(self, sql: str) -> tuple[str, tuple[str, ...], bool]:
        """The statement for asyncpg, its parameters' names, whether it returns the new id."""
        known = self._sql.get(sql)
        if known is not None:
            return known
        text, names = placeholders(sql)
        text = text.rstrip().rstrip(";")
        insert = _INSERT.match(text)
        returns_id = bool(
            insert
            and insert.group(1).lower() in self._tables_with_id
            and not _RETURNING.search(text)
        )
        if returns_id:
            text += " RETURNING id"
        self._sql[sql] = (text, names, returns_id)
        return text, names, returns_id

    def execute(self, sql: str, parameters: Parameters | None = None) -> Result[PgCursor]:
        return Result(self._execute(sql, parameters or ()))

    def executemany(self, sql: str, parameters: Iterable[Parameters]) -> Result[PgCursor]:
        return Result(self._executemany(sql, parameters))

    async def _coerced(self, text: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """The arguments converted the way SQLite's type affinity would: a number bound where
        text is expected becomes its text (`'reward:' || ?`), and so on."""
        coercers = _COERCERS.get(text)
        if coercers is None:
            try:
                statement = await self.raw.prepare(text)
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise IntegrityError(str(exc)) from exc
            coercers = tuple(_COERCE.get(kind.name) for kind in statement.get_parameters())
            _COERCERS[text] = coercers
        return tuple(
            value if coerce is None or value is None else coerce(value)
            for coerce, value in zip(coercers, args, strict=False)
        )

    async def _execute(self, sql: str, parameters: Parameters) -> PgCursor:
        text, names, returns_id = self._translate(sql)
        args = await self._coerced(text, _arguments(names, parameters))
        try:
            # The public API gives rows or the command tag, not both; this gives both.
            rows, status, _ = await self.raw._execute(text, args, 0, None, return_status=True)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(str(exc)) from exc
        tag = status.decode().split()
        rowcount = int(tag[-1]) if tag and tag[-1].isdigit() and tag[0] != "SELECT" else -1
        lastrowid = int(rows[-1][0]) if returns_id and rows else None
        return PgCursor([] if returns_id else rows, rowcount, lastrowid)

    async def _executemany(self, sql: str, parameters: Iterable[Parameters]) -> PgCursor:
        text, names, _ = self._translate(sql)
        if text.endswith(" RETURNING id") and not _RETURNING.search(sql):
            text = text.removesuffix(" RETURNING id")
        try:
            args = [await self._coerced(text, _arguments(names, p)) for p in parameters]
            await self.raw.executemany(text, args)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(str(exc)) from exc
        return PgCursor([], -1, None)

    async def executescript(self, sql: str) -> None:
        """Several statements without parameters (simple query protocol)."""
        try:
            await self.raw.execute(sql)
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise IntegrityError(str(exc)) from exc


class PgDatabase(Database):
    """The PostgreSQL `Database`: one write connection, reader connections, migrations."""

    engine = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self._leading = False
        self._writer: PgConnection | None = None
        self._lock = asyncio.Lock()
        self._idle: list[PgConnection] = []
        self._tables_with_id: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return "PgDatabase(<postgresql>)"  # the URL may carry a password

    @property
    def writer(self) -> PgConnection:
        if self._writer is None:
            raise RuntimeError("database is not open")
        return self._writer

    async def open(self) -> None:
        raw = await connect(self.url)
        self._writer = PgConnection(raw, frozenset())
        await self.migrate()
        rows = await raw.fetch(
            "SELECT table_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND column_name = 'id'"
        )
        self._tables_with_id = frozenset(str(row[0]) for row in rows)
        self._writer = PgConnection(raw, self._tables_with_id)

    async def _reader(self) -> PgConnection:
        if self._idle:
            return self._idle.pop()
        return PgConnection(await connect(self.url), self._tables_with_id)

    def _release(self, reader: PgConnection) -> None:
        if self._writer is not None and len(self._idle) < IDLE_READERS:
            self._idle.append(reader)
        else:
            _close_later(reader.raw.close())

    @asynccontextmanager
    async def _read(self, begin: str | None) -> AsyncIterator[PgConnection]:
        if self._writer is None:
            raise RuntimeError("database is not open")
        reader = await self._reader()
        try:
            if begin is None:
                yield reader
            else:
                async with reader.raw.transaction(isolation="repeatable_read", readonly=True):
                    yield reader
        except BaseException:
            await reader.raw.close()
            raise
        self._release(reader)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[PgConnection]:
        """One committed state of the database for every query inside; never blocks writers."""
        async with self._read("snapshot") as reader:
            yield reader

    @asynccontextmanager
    async def snapshots(self, count: int) -> AsyncIterator[tuple[PgConnection, ...]]:
        """`count` transactions on connections of their own, all on the first one's snapshot
        (`pg_export_snapshot`, then `SET TRANSACTION SNAPSHOT`): long reads run side by side,
        in server processes of their own, and agree. Nobody waits for anybody."""
        async with AsyncExitStack() as stack:
            first = await stack.enter_async_context(self._read("snapshot"))
            exported = str(await first.raw.fetchval("SELECT pg_export_snapshot()"))
            if not _SNAPSHOT_ID.fullmatch(exported):
                raise RuntimeError(f"unexpected snapshot id {exported!r}")
            readers = [first]
            for _ in range(count - 1):
                reader = await stack.enter_async_context(self._read("snapshot"))
                await reader.raw.execute(f"SET TRANSACTION SNAPSHOT '{exported}'")
                readers.append(reader)
            yield tuple(readers)

    async def would_lead(self) -> bool:
        """Whether this process would lead now (no other process holds the leader lock)."""
        if self._leading:
            return True
        probe = await connect(self.url)
        try:
            free = bool(await probe.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK_KEY))
            if free:
                await probe.execute("SELECT pg_advisory_unlock($1)", LEADER_LOCK_KEY)
            return free
        finally:
            await probe.close()

    async def lead(self, on_wait: Callable[[], None], on_lost: Callable[[], None]) -> None:
        """Wait until this process holds the leader lock. The lock is taken on the connection
        every write goes through, so leading and writing cannot part: when that connection
        drops (the process died, the server restarted, an operator ended the backend) the
        server frees the lock, a standby's next try succeeds within `LEADER_POLL_SECONDS`,
        and `on_lost` tells this process to stop talking to Telegram: it can write no more.
        A standby whose connection drops while it waits connects again and goes on waiting,
        so a database restart never leaves the bot without a leader."""
        waited = False
        delay = LEADER_POLL_SECONDS
        while True:
            try:
                if await self._try_lead(STANDBY_NAME if waited else None):
                    break
                delay = LEADER_POLL_SECONDS
            except CONNECTION_ERRORS as exc:
                log.warning("standby: database connection lost (%s); connecting again", exc)
                await self._reconnect()
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
            if not waited:
                on_wait()
                waited = True
            await asyncio.sleep(delay)

        def lost(_: object) -> None:
            if self._leading:  # not our own close()
                on_lost()

        self.writer.raw.add_termination_listener(lost)
        self._leading = True

    async def _try_lead(self, waiting_as: str | None) -> bool:
        async with self._lock:
            raw = self.writer.raw
            if waiting_as is not None:
                # Operators (and tests) see the roles in pg_stat_activity.application_name.
                await raw.execute(f"SET application_name = '{waiting_as}'")
            if not await raw.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK_KEY):
                return False
            await raw.execute(f"SET application_name = '{LEADER_NAME}'")
            return True

    async def _reconnect(self) -> None:
        """A new write connection for a waiting standby (the old one is gone); quiet while the
        server is still down (the next try says so again)."""
        async with self._lock:
            if self._writer is not None:
                self._writer.raw.terminate()
            with suppress(*CONNECTION_ERRORS):
                self._writer = PgConnection(await connect(self.url), self._tables_with_id)
            for reader in self._idle:
                reader.raw.terminate()
            self._idle = []

    async def close(self) -> None:
        self._leading = False
        idle, self._idle = self._idle, []
        for reader in idle:
            await reader.raw.close()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            async with self._lock:
                await writer.raw.close()

    async def schema_version(self) -> int:
        raw = self.writer.raw
        if not await raw.fetchval("SELECT to_regclass('schema_version') IS NOT NULL"):
            return 0
        return int(await raw.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))

    async def migrate(self) -> list[str]:
        """Apply every migration newer than the recorded version, each in its own transaction.

        Two processes starting at once take turns (the write lock), so each file runs once."""
        applied = []
        raw = self.writer.raw
        async with self._lock:
            await raw.execute(f"SELECT pg_advisory_lock({WRITE_LOCK_KEY})")
            try:
                await raw.execute(_SCHEMA_VERSION)
                current = int(
                    await raw.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
                )
                for number, name, sql in migrations("postgresql"):
                    if number <= current:
                        continue
                    async with raw.transaction():
                        await raw.execute(sql)
                        await raw.execute(
                            "INSERT INTO schema_version (version, name) VALUES ($1, $2)",
                            number,
                            name,
                        )
                    applied.append(name)
            finally:
                await raw.execute(f"SELECT pg_advisory_unlock({WRITE_LOCK_KEY})")
        return applied

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgConnection]:
        """A write transaction: serialised with every other writer, rolled back on error."""
        async with self._lock:
            writer = self.writer
            async with writer.raw.transaction():
                await writer.raw.execute(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
                try:
                    yield writer
                except asyncpg.IntegrityConstraintViolationError as exc:
                    raise IntegrityError(str(exc)) from exc

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Any:
        async with self._lock, self.writer.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with self._lock, self.writer.execute(sql, tuple(params)) as cursor:
            return await cursor.fetchall()


_closing: set[asyncio.Task[None]] = set()


def _close_later(closing: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(closing)
    _closing.add(task)
    task.add_done_callback(_closing.discard)


ENGINES["postgresql"] = PgDatabase
