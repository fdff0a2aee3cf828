"""Money test helpers: riders and approved reports set up in plain SQL, crediting rewards the
way an approval does, for the ledger, payout, property and crash tests."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from services import ledger
from settings import Programme
from storage import moderation as moderation_store
from storage.db import Connection, Database
from tests import engines

DAY = 86_400
T0 = 1_795_000_000  # 2026-11-18, a Wednesday, in Asia/Shanghai
MODERATOR = 900_001


async def record_approval(
    conn: Connection, report_id: int, amount_fen: int, points: int, now: int
) -> None:
    """What an approval writes besides the credit: the decided reward and the decision."""
    await conn.execute(
        "UPDATE reports SET reward_fen = ?, points = ?, decided_by = ?, decided_at = ?"
        " WHERE id = ?",
        (amount_fen, points, MODERATOR, now, report_id),
    )
    await moderation_store.record_decision(
        conn, report_id, MODERATOR, "approve", "pending", "approved", now, amount_fen
    )


async def open_db(path: Path) -> Database:
    db = Database(engines.database_for(path))
    await db.open()
    return db


class Money:
    """Plain-SQL setup of riders and approved reports, crediting rewards as approval does."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._numbers = itertools.count(1)

    async def rider(self, *, telegram_id: int | None = None, payee: bool = True) -> int:
        """A consenting rider; with `payee`, payout details too."""
        number = next(self._numbers)
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO users (telegram_id, created_at, consented_at) VALUES (?, ?, ?)",
                (telegram_id if telegram_id is not None else 700_000 + number, T0, T0),
            )
            rider_id = cursor.lastrowid
        assert rider_id is not None
        if payee:
            await ledger.set_payee(
                self.db, rider_id, f"骑手{number}", f"1380000{number:04d}", now=T0
            )
        return rider_id

    async def approve(
        self, rider_id: int, amount_fen: int = 10_000, *, now: int = T0, credit: bool = True
    ) -> int:
        """An approved report with a reference like R-20261127-0001, credited at `now`."""
        number = next(self._numbers)
        async with self.db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO reports (reference, rider_id, status, created_at, updated_at,"
                " submitted_at) VALUES (?, ?, 'approved', ?, ?, ?)",
                (f"R-20261127-{number:04d}", rider_id, now, now, now),
            )
            report_id = cursor.lastrowid
            assert report_id is not None
            points = ledger.points_for(amount_fen, Programme())
            await record_approval(conn, report_id, amount_fen, points, now)
            if credit:
                await ledger.credit_reward(
                    conn,
                    report_id=report_id,
                    rider_id=rider_id,
                    amount_fen=amount_fen,
                    points=points,
                    now=now,
                )
        return report_id

    async def reference(self, report_id: int) -> str:
        row = await self.db.fetchone("SELECT reference FROM reports WHERE id = ?", (report_id,))
        assert row is not None
        return str(row[0])


@pytest.fixture
def money(db: Database) -> Money:
    return Money(db)


async def seed_weeks(path: Path, riders: int, ends: list[int]) -> dict[int, int]:
    """Riders with payees and rewards credited the day before each end; what each earned."""
    db = await open_db(path)
    earned: dict[int, int] = {}
    async with db.transaction() as conn:
        for rider in range(1, riders + 1):
            await conn.execute(
                "INSERT INTO users (id, telegram_id, created_at) VALUES (?, ?, ?)",
                (rider, 800_000 + rider, T0),
            )
            await conn.execute(
                "INSERT INTO payees (rider_id, real_name, account, updated_at) VALUES (?, ?, ?, ?)",
                (rider, f"骑手{rider}", f"rider_{rider}", T0),
            )
            earned[rider] = 0
        for week, end in enumerate(ends):
            for rider in range(1, riders + 1):
                if (rider + week) % 3:
                    amount = 5_000 * (1 + (rider + week) % 4)
                    cursor = await conn.execute(
                        "INSERT INTO reports (reference, rider_id, status, created_at, updated_at)"
                        " VALUES ('R-' || ? || '-' || ?, ?, 'approved', ?, ?)",
                        (week, rider, rider, end - DAY, end - DAY),
                    )
                    assert cursor.lastrowid is not None
                    await record_approval(conn, cursor.lastrowid, amount, 10, end - DAY)
                    await ledger.credit_reward(
                        conn,
                        report_id=cursor.lastrowid,
                        rider_id=rider,
                        amount_fen=amount,
                        points=10,
                        now=end - DAY,
                    )
                    earned[rider] += amount
    await db.close()
    return earned
