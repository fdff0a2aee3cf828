"""`python bot.py migrate-to postgresql://…`: a county's SQLite database copied into an empty
PostgreSQL database, both audited, balances, reports and photos equal (PostgreSQL pass only)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services import payouts
from storage import ledger as ledger_store
from storage.db import Database
from tests import engines
from tests.conftest import BOT_SCRIPT, PYTHON, bot_process_env
from tests.money_helpers import DAY, T0, Money

pytestmark = pytest.mark.skipif(engines.ENGINE != "postgresql", reason="needs PostgreSQL")
TZ = ZoneInfo("Asia/Shanghai")


async def migrate_to(tmp_path: Path, source: Path, target: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        PYTHON,
        BOT_SCRIPT,
        "migrate-to",
        target,
        env=bot_process_env(None, tmp_path, DATABASE_URL=f"sqlite:///{source}"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_a_county_moves_to_postgresql_with_every_fen(tmp_path: Path) -> None:
    source = tmp_path / "county.db"
    db = Database(source)  # SQLite, whichever engine this pass runs on
    await db.open()
    money = Money(db)
    riders = [await money.rider() for _ in range(3)]
    for n, rider in enumerate(riders):
        await money.approve(rider, 5_000 * (n + 1), now=T0 + n)
    await payouts.run_batch(
        db,
        period_key="2026-W47",
        period_start=T0 - 7 * DAY,
        period_end=T0 + DAY,
        minimum_fen=0,
        now=T0 + DAY + 60,
        timezone=TZ,
    )
    await money.approve(riders[0], 7_700, now=T0 + 2 * DAY)
    async with db.snapshot() as conn:
        expected = await ledger_store.balances(conn)
    await db.close()

    target = engines.database_for(tmp_path / "target.db")
    assert isinstance(target, str)
    code, out = await migrate_to(tmp_path, source, target)
    assert code == 0, out
    assert "both audits clean" in out
    moved = Database(target)
    await moved.open()
    try:
        async with moved.snapshot() as conn:
            assert await ledger_store.balances(conn) == expected
        async with moved.transaction() as conn:  # the ids continue after the copied ones
            cursor = await conn.execute(
                "INSERT INTO users (telegram_id, created_at) VALUES (?, ?)", (424242, T0)
            )
            assert cursor.lastrowid == len(riders) + 1
    finally:
        await moved.close()

    code, out = await migrate_to(tmp_path, source, target)  # not into a database with data
    assert code == 1
    assert "not empty" in out
