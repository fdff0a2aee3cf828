"""Storage: pragmas, migrations tracked by user_version, and serialised write transactions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from storage.db import DATABASE_ERRORS, Database, migrations
from tests import engines

INSERT_USER = "INSERT INTO users (id, telegram_id, created_at) VALUES (?, ?, ?)"


async def test_open_creates_folder_and_applies_migrations(tmp_path: Path) -> None:
    db = Database(tmp_path / "nested" / "dir" / "bot.db")
    await db.open()
    try:
        assert (tmp_path / "nested" / "dir" / "bot.db").exists()
        assert await db.schema_version() == len(migrations())
        pragmas = {
            name: (await db.fetchone(f"PRAGMA {name}"))[0]  # type: ignore[index]
            for name in (
                "journal_mode",
                "foreign_keys",
                "synchronous",
                "busy_timeout",
                "recursive_triggers",
            )
        }
        assert pragmas == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "synchronous": 2,
            "busy_timeout": 5000,
            "recursive_triggers": 1,  # REPLACE's delete fires the DELETE triggers
        }
    finally:
        await db.close()


async def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    path = engines.database_for(tmp_path / "bot.db")
    first = Database(path)
    await first.open()
    await first.close()
    second = Database(path)
    await second.open()
    try:
        assert await second.migrate() == []
    finally:
        await second.close()


async def test_failed_transaction_rolls_back(tmp_path: Path) -> None:
    db = Database(engines.database_for(tmp_path / "bot.db"))
    await db.open()
    try:

        async def fail_midway() -> None:
            async with db.transaction() as conn:
                await conn.execute(INSERT_USER, (1, 1, 0))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await fail_midway()
        assert await db.fetchall("SELECT id FROM users") == []
    finally:
        await db.close()


async def test_concurrent_writers_do_not_interleave(tmp_path: Path) -> None:
    """Each writer reads then writes; without the lock, increments would be lost or raise."""
    db = Database(engines.database_for(tmp_path / "bot.db"))
    await db.open()
    try:
        async with db.transaction() as conn:
            await conn.execute(INSERT_USER, (1, 1, 0))

        async def increment() -> None:
            async with db.transaction() as conn:
                async with conn.execute("SELECT created_at FROM users WHERE id = 1") as cur:
                    (value,) = await cur.fetchone()  # type: ignore[misc]
                await asyncio.sleep(0)
                await conn.execute("UPDATE users SET created_at = ? WHERE id = 1", (value + 1,))

        await asyncio.gather(*(increment() for _ in range(50)))
        row = await db.fetchone("SELECT created_at FROM users WHERE id = 1")
        assert row is not None
        assert row[0] == 50
    finally:
        await db.close()


async def test_reads_do_not_see_another_writers_uncommitted_rows(tmp_path: Path) -> None:
    db = Database(engines.database_for(tmp_path / "bot.db"))
    await db.open()
    try:
        inside = asyncio.Event()
        release = asyncio.Event()

        async def writer() -> None:
            async with db.transaction() as conn:
                await conn.execute(INSERT_USER, (7, 7, 0))
                inside.set()
                await release.wait()
                raise RuntimeError("rolled back")

        task = asyncio.create_task(writer())
        await inside.wait()
        read = asyncio.create_task(db.fetchall("SELECT id FROM users"))
        # Long enough for an unguarded read to finish (it takes well under a millisecond).
        done, _ = await asyncio.wait({read}, timeout=0.5)
        release.set()
        with pytest.raises(RuntimeError):
            await task
        assert not done, "the read ran while another coroutine's transaction was open"
        assert await read == []
    finally:
        await db.close()


async def test_a_snapshot_reads_committed_rows_without_waiting_for_writers(
    tmp_path: Path,
) -> None:
    db = Database(engines.database_for(tmp_path / "bot.db"))
    await db.open()
    try:
        async with db.transaction() as conn:
            await conn.execute(INSERT_USER, (1, 1, 0))
        inside, release = asyncio.Event(), asyncio.Event()

        async def writer() -> None:
            async with db.transaction() as conn:
                await conn.execute(INSERT_USER, (2, 2, 0))
                inside.set()
                await release.wait()

        async def users() -> list[int]:
            async with db.snapshot() as snapshot, snapshot.execute("SELECT id FROM users") as cur:
                return [row[0] async for row in cur]

        task = asyncio.create_task(writer())
        await inside.wait()
        # The writer holds the lock with an uncommitted row: the snapshot neither waits for
        # it nor sees the row.
        during = await asyncio.wait_for(users(), timeout=5)
        release.set()
        await task
        assert during == [1]
        assert await users() == [1, 2]  # committed: the next snapshot sees it
    finally:
        await db.close()


async def test_a_snapshot_is_one_state_and_read_only(tmp_path: Path) -> None:
    db = Database(engines.database_for(tmp_path / "bot.db"))
    await db.open()
    try:
        async with db.snapshot() as snapshot:
            async with snapshot.execute("SELECT COUNT(*) FROM users") as cur:
                assert tuple(await cur.fetchone()) == (0,)  # type: ignore[arg-type]
            async with db.transaction() as conn:  # commits while the snapshot is open
                await conn.execute(INSERT_USER, (1, 1, 0))
            async with snapshot.execute("SELECT COUNT(*) FROM users") as cur:
                assert tuple(await cur.fetchone()) == (0,)  # type: ignore[arg-type]
            with pytest.raises(DATABASE_ERRORS, match=r"(?i)read-?only"):
                await snapshot.execute(INSERT_USER, (2, 2, 0))
        row = await db.fetchone("SELECT COUNT(*) FROM users")
        assert row is not None
        assert row[0] == 1
    finally:
        await db.close()


async def test_two_databases_on_one_store_do_not_interleave_writes(tmp_path: Path) -> None:
    """Two processes (here: two `Database` objects) writing to the same database: each
    read-then-write transaction sees the other's committed result, none is lost."""
    target = engines.database_for(tmp_path / "bot.db")
    first, second = Database(target), Database(target)
    await first.open()
    await second.open()
    try:
        async with first.transaction() as conn:
            await conn.execute(INSERT_USER, (1, 1, 0))

        async def increment(db: Database) -> None:
            async with db.transaction() as conn:
                async with conn.execute("SELECT created_at FROM users WHERE id = 1") as cur:
                    (value,) = await cur.fetchone()  # type: ignore[misc]
                await asyncio.sleep(0.001)
                await conn.execute("UPDATE users SET created_at = ? WHERE id = 1", (value + 1,))

        await asyncio.gather(*(increment(db) for _ in range(20) for db in (first, second)))
        row = await first.fetchone("SELECT created_at FROM users WHERE id = 1")
        assert row is not None
        assert row[0] == 40
    finally:
        await first.close()
        await second.close()


def test_migration_files_are_numbered_without_gaps() -> None:
    numbers = [number for number, _, _ in migrations()]
    assert numbers == list(range(1, len(numbers) + 1))
