"""`Database.snapshots`: reads that run side by side on connections of their own (the audit's
checks) and still see one committed state, though writers keep committing."""

from __future__ import annotations

import asyncio

from storage.db import Connection, Database


async def _users(view: Connection) -> int:
    async with view.execute("SELECT COUNT(*) FROM users") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_snapshots_opened_together_agree_while_a_writer_commits(db: Database) -> None:
    """A writer commits a user after another as fast as it can. Each round opens three
    snapshots at once: all three count the same users, keep counting them after more commits,
    and a later round sees the commits made meanwhile."""
    stop = asyncio.Event()
    committed = asyncio.Condition()
    written = 0

    async def writer() -> None:
        nonlocal written
        while not stop.is_set():
            async with db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO users (telegram_id, created_at) VALUES (?, 0)", (9_000 + written,)
                )
            async with committed:
                written += 1
                committed.notify_all()

    task = asyncio.create_task(writer())
    seen = []
    try:
        for _ in range(15):
            async with db.snapshots(3) as views:
                counts = [await _users(view) for view in views]
                assert len(set(counts)) == 1, counts
                before = written
                async with committed:  # commits land after the snapshots opened
                    await committed.wait_for(lambda: written >= before + 2)  # noqa: B023
                assert [await _users(view) for view in reversed(views)] == counts
                seen.append(counts[0])
    finally:
        stop.set()
        await task
    assert seen == sorted(seen)
    assert seen[-1] > seen[0]  # the writer did commit throughout
    async with db.snapshots(2) as views:
        assert [await _users(view) for view in views] == [written, written]
