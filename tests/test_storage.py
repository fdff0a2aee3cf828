"""Storage: pragmas, migrations tracked by user_version, and serialised write transactions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from storage.db import Database, migrations

INSERT_USER = "INSERT INTO users (id, telegram_id, created_at) VALUES (?, ?, ?)"


async def test_open_creates_folder_and_applies_migrations(tmp_path: Path) -> None:
    db = Database(tmp_path / "nested" / "dir" / "bot.db")
    await db.open()
    try:
        assert (tmp_path / "nested" / "dir" / "bot.db").exists()
        assert await db.schema_version() == len(migrations())
        pragmas = {
            name: (await db.fetchone(f"PRAGMA {name}"))[0]  # type: ignore[index]
            for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
        }
        assert pragmas == {
            "journal_mode": "wal",
            "foreign_keys": 1,
            "synchronous": 2,
            "busy_timeout": 5000,
        }
    finally:
        await db.close()


async def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
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
    db = Database(tmp_path / "bot.db")
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
    db = Database(tmp_path / "bot.db")
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
    db = Database(tmp_path / "bot.db")
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
        await asyncio.sleep(0.05)
        release.set()
        with pytest.raises(RuntimeError):
            await task
        assert await read == []
    finally:
        await db.close()


def test_migration_files_are_numbered_without_gaps() -> None:
    numbers = [number for number, _, _ in migrations()]
    assert numbers == list(range(1, len(numbers) + 1))
