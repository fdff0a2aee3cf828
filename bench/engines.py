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
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from storage.db import Database

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("sqlite", "postgresql")
Target = Path | str
"""What `Database(...)` opens: a SQLite file's path, or a postgresql:// URL."""


def add_engine_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="sqlite",
        help="the bot's database: SQLite files (default) or a throwaway PostgreSQL server",
    )


@contextmanager
def throwaway_server() -> Iterator[str]:
    """A PostgreSQL server of our own for the duration (scripts/postgres); yields its URL."""
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as folder:
        script = str(ROOT / "scripts" / "postgres")
        try:
            started = subprocess.run(
                [script, "start", folder], check=True, stdout=subprocess.PIPE, text=True
            )
            yield started.stdout.strip().splitlines()[-1]
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
    server_url: str | None = None

    async def fresh(self, name: str) -> Target:
        """A new, empty database: `folder/name.db`, or a new database on the server."""
        if self.server_url is None:
            return self.folder / f"{name}.db"
        return await fresh_database(self.server_url)


@contextmanager
def databases(engine: str, folder: Path) -> Iterator[Databases]:
    """`Databases` on `engine`; for PostgreSQL a server is started now and stopped after."""
    if engine == "sqlite":
        yield Databases(engine, folder)
        return
    if engine != "postgresql":
        raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
    with throwaway_server() as url:
        yield Databases(engine, folder, url)
