"""Which database engine a benchmark's bot runs on: SQLite files, or a throwaway PostgreSQL.

`--engine sqlite` (the default): each bot run gets a file of its own in the bench's folder.
`--engine postgresql`: the bench starts its own server with `scripts/postgres start DIR` (it
installs the distribution's server when none is found and we are root) and stops it at the
end; each bot run gets a fresh database on it (CREATE DATABASE), migrated by whoever opens it
first, as a new SQLite file is.

    with engines.databases(args.engine, folder) as databases:
        target = asyncio.run(databases.fresh("bot"))   # a Path (SQLite) or a postgresql:// URL
        env["DATABASE_URL"] = engines.database_url(target)
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.process import TICKS
from storage.db import Connection, Database
from storage.postgres import PgConnection

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("sqlite", "postgresql")
Target = Path | str
"""What `Database(...)` opens: a SQLite file's path, or a postgresql:// URL."""
Row = tuple[object, ...]
Table = tuple[str, tuple[str, ...]]  # name, columns
CHUNK = 50_000  # rows per bulk write


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="sqlite",
        help="the bot's database: SQLite files (default) or a throwaway PostgreSQL server",
    )


@dataclass(frozen=True)
class Server:
    """A running throwaway PostgreSQL server: its URL and its folder (scripts/postgres)."""

    url: str
    folder: Path

    def cpu_seconds(self) -> float:
        """CPU the server has used so far: the postmaster with its reaped backends, plus the
        backends still running (SQLite's work is in the bot's own process; this is not)."""
        postmaster = int((self.folder / "data" / "postmaster.pid").read_text().split()[0])
        total = _stat_seconds(postmaster, with_children=True)
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    total += _stat_seconds(int(stat.parent.name), with_children=False)
        return total


def _stat_seconds(pid: int, *, with_children: bool) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICKS


@contextmanager
def throwaway_server() -> Iterator[Server]:
    """A PostgreSQL server of our own for the duration (scripts/postgres)."""
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as folder:
        script = str(ROOT / "scripts" / "postgres")
        try:
            started = subprocess.run(
                [script, "start", folder], check=True, stdout=subprocess.PIPE, text=True
            )
            yield Server(started.stdout.strip().splitlines()[-1], Path(folder))
        finally:
            subprocess.run([script, "stop", folder], check=False)


async def fresh_database(server_url: str) -> str:
    """CREATE DATABASE on the server at `server_url`; returns the new database's URL."""
    name = f"bench_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


@asynccontextmanager
async def opened(target: Target) -> AsyncIterator[Database]:
    """The database at `target`, migrated as the bot would (the real migrations); closed
    after."""
    db = Database(target)
    await db.open()
    try:
        yield db
    finally:
        await db.close()


async def write(conn: Connection, table: Table, rows: Sequence[Row]) -> None:
    """Bulk insert, bypassing the services, `CHUNK` rows at a time: COPY on PostgreSQL,
    executemany on SQLite."""
    name, columns = table
    marks = ", ".join("?" * len(columns))
    insert = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 constants
    for start in range(0, len(rows), CHUNK):
        chunk = list(rows[start : start + CHUNK])
        if isinstance(conn, PgConnection):
            await conn.raw.copy_records_to_table(name, records=chunk, columns=list(columns))
        else:
            await conn.executemany(insert, chunk)


async def continue_after_given_ids(conn: Connection) -> None:
    """Users and reports were written with their ids: on PostgreSQL their identities must
    continue after them, or the next user or report the bot adds collides (SQLite does so)."""
    if isinstance(conn, PgConnection):
        await conn.raw.execute(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), max(id)) FROM users;"
            "SELECT setval(pg_get_serial_sequence('reports', 'id'), max(id)) FROM reports"
        )


async def analyze(db: Database) -> None:
    """Fresh planner statistics after a bulk load, as a database in use would have. On
    PostgreSQL also VACUUM, as autovacuum would have done to a year of rows long before: a
    bulk load leaves every row's hint bits and the visibility map for the first reader to
    write, so the first step timed after it would pay for the load."""
    if db.engine == "postgresql":
        conn = await asyncpg.connect(db.url)  # type: ignore[attr-defined]
        try:
            await conn.execute("VACUUM (ANALYZE)")  # not inside a transaction
        finally:
            await conn.close()
        return
    async with db.transaction() as conn:
        await conn.execute("ANALYZE")


def database_url(target: Target) -> str:
    """DATABASE_URL for a bot process that should use `target`."""
    return target if isinstance(target, str) else f"sqlite:///{target.resolve()}"


async def database_bytes(db: Database) -> int:
    """The size of an open database: its SQLite files (with -wal, -shm) or pg_database_size."""
    if db.engine == "postgresql":
        row = await db.fetchone("SELECT pg_database_size(current_database())")
        assert row is not None
        return int(row[0])
    return sum(p.stat().st_size for p in db.path.parent.glob(db.path.name + "*") if p.is_file())


@dataclass(frozen=True)
class Databases:
    """Where a benchmark's bot runs keep their data: `fresh()` gives each run its own."""

    engine: str
    folder: Path
    server: Server | None = None

    async def fresh(self, name: str) -> Target:
        """A new, empty database: `folder/name.db`, or a new database on the server."""
        if self.server is None:
            return self.folder / f"{name}.db"
        return await fresh_database(self.server.url)

    def server_cpu_seconds(self) -> float:
        """CPU used so far by the PostgreSQL server (0 on SQLite, which has none)."""
        return 0.0 if self.server is None else self.server.cpu_seconds()


@contextmanager
def databases(engine: str, folder: Path) -> Iterator[Databases]:
    """`Databases` on `engine`; for PostgreSQL a server is started now and stopped after."""
    if engine == "sqlite":
        yield Databases(engine, folder)
        return
    if engine != "postgresql":
        raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
    with throwaway_server() as server:
        yield Databases(engine, folder, server)
