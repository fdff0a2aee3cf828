"""Which database engine the suite runs on: SQLite by default, PostgreSQL when
`TEST_DATABASE_URL=postgresql://user@host:port/postgres` names a server the tests may create
databases on (scripts/postgres starts a throwaway one; .ci/run runs the suite on both).

On PostgreSQL every SQLite path a test would use gets a database of its own, created from a
template migrated once per session, and dropped after the test.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from storage.db import Database, is_postgres_url

SERVER_URL = os.environ.get("TEST_DATABASE_URL", "")
ENGINE = "postgresql" if is_postgres_url(SERVER_URL) else "sqlite"
TEMPLATE = f"suite_template_{os.getpid()}"

_T = TypeVar("_T")
_by_path: dict[Path, str] = {}
_template_ready = False
_guard = threading.Lock()


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run `coro` to completion on a loop of its own (callable from sync and async code)."""
    result: list[_T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


def _url(name: str) -> str:
    base, _, _ = SERVER_URL.rpartition("/")
    return f"{base}/{name}"


async def _admin(statements: list[str]) -> None:
    conn = await asyncpg.connect(SERVER_URL)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _make_template() -> None:
    await _admin(
        [f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)", f"CREATE DATABASE {TEMPLATE}"]
    )
    database = Database(_url(TEMPLATE))
    await database.open()
    await database.close()


def database_for(path: Path) -> Path | str:
    """What a test opens where it would open the SQLite file `path`: that file, or on
    PostgreSQL the URL of a fresh database kept for this path until the test ends."""
    if ENGINE == "sqlite":
        return path
    global _template_ready
    with _guard:
        if path not in _by_path:
            if not _template_ready:
                _run(_make_template())
                _template_ready = True
            name = f"t_{uuid.uuid4().hex[:16]}"
            _run(_admin([f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}"]))
            _by_path[path] = _url(name)
        return _by_path[path]


def drop_databases() -> None:
    """Drop every database the test created (PostgreSQL only)."""
    with _guard:
        names = [url.rpartition("/")[2] for url in _by_path.values()]
        _by_path.clear()
    if names:
        _run(_admin([f"DROP DATABASE IF EXISTS {name} WITH (FORCE)" for name in names]))


def drop_template() -> None:
    if ENGINE == "postgresql" and _template_ready:
        _run(_admin([f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"]))


class RawPostgres:
    """A plain connection to the bot's PostgreSQL database, as a stray script would open one,
    with sqlite3's `execute(sql, params).fetchone()` shape. PostgreSQL has no INSERT OR
    REPLACE: such a statement is tried as the plain INSERT it would be there."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._rows: list[Any] = []

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> RawPostgres:
        from storage.postgres import PgConnection, connect

        sql = re.sub(r"^\s*(INSERT\s+OR\s+REPLACE|REPLACE)\s+INTO", "INSERT INTO", sql, flags=re.I)
        sql = re.sub(r"^\s*UPDATE\s+OR\s+REPLACE\b", "UPDATE", sql, flags=re.I)

        async def run() -> list[Any]:
            conn = PgConnection(await connect(self.url), frozenset())
            try:
                async with conn.execute(sql, params) as cursor:
                    return list(await cursor.fetchall())
            finally:
                await conn.raw.close()

        self._rows = _run(run())
        return self

    def fetchone(self) -> Any:
        return tuple(self._rows[0]) if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._rows]


@contextmanager
def raw(db: Database, *, recursive_triggers: bool = False) -> Iterator[Any]:
    """A connection to `db` outside the bot's own: sqlite3 or `RawPostgres`."""
    if db.engine == "postgresql":
        yield RawPostgres(db.url)  # type: ignore[attr-defined]
        return
    conn = sqlite3.connect(db.path, isolation_level=None, timeout=5)
    try:
        conn.execute(f"PRAGMA recursive_triggers = {int(recursive_triggers)}")
        yield conn
    finally:
        conn.close()


def fetchone(path: Path, sql: str) -> Any:
    """One row from the database a bot process keeps where its SQLite file would be `path`,
    read from outside the process (sqlite3, or a plain PostgreSQL connection)."""
    target = database_for(path)
    if isinstance(target, str):
        return RawPostgres(target).execute(sql).fetchone()
    with sqlite3.connect(target) as conn:
        return conn.execute(sql).fetchone()


@asynccontextmanager
async def watching(path: Path) -> AsyncIterator[Callable[[str], Awaitable[Any]]]:
    """`fetchone(sql)` on one connection kept open, to read a bot process's database many
    times a second (`fetchone` above opens a connection per call)."""
    target = database_for(path)
    if isinstance(target, str):
        pg = await asyncpg.connect(target)
        try:

            async def from_postgres(sql: str) -> Any:
                row = await pg.fetchrow(sql)
                return None if row is None else tuple(row)

            yield from_postgres
        finally:
            await pg.close()
        return
    with sqlite3.connect(target, timeout=5) as lite:

        async def from_sqlite(sql: str) -> Any:
            return lite.execute(sql).fetchone()

        yield from_sqlite
