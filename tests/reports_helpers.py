"""Plain-SQL set-up for the reports-upward tests: reports, cases and rewards at chosen moments."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from storage.db import Database

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def ts(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


class Seed:
    """One rider's reports, their rewards and cases, written straight into the tables."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._numbers = itertools.count(1)
        self.rider_id: int | None = None

    async def report(
        self,
        submitted: datetime,
        category: str | None = "road_hazard",
        *,
        status: str = "pending",
        decided: datetime | None = None,
        reward_fen: int | None = None,
        description: str | None = "井盖缺失",
        place: tuple[float, float] | None = (29.30, 117.20),
        reversed_at: datetime | None = None,
    ) -> int:
        """A submitted report; approved ones get their reward entry at `decided`."""
        number = next(self._numbers)
        async with self.db.transaction() as conn:
            if self.rider_id is None:
                cursor = await conn.execute(
                    "INSERT INTO users (telegram_id, created_at, consented_at) VALUES (42, 0, 0)"
                )
                self.rider_id = cursor.lastrowid
            cursor = await conn.execute(
                "INSERT INTO reports (reference, rider_id, status, category, description,"
                " latitude, longitude, created_at, updated_at, submitted_at, deadline_at,"
                " decided_at, reward_fen, points)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    f"R-{submitted:%Y%m%d}-{number:04d}",
                    self.rider_id,
                    status,
                    category,
                    description,
                    None if place is None else place[0],
                    None if place is None else place[1],
                    ts(submitted),
                    ts(decided or submitted),
                    ts(submitted),
                    ts(submitted + timedelta(hours=24)),
                    ts(decided),
                    reward_fen,
                    None if reward_fen is None else reward_fen // 1000,
                ),
            )
            report_id = cursor.lastrowid
            assert report_id is not None
            if reward_fen is not None and decided is not None:
                await conn.execute(
                    "INSERT INTO ledger (rider_id, kind, amount_fen, points, report_id,"
                    " idempotency_key, created_at) VALUES (?, 'reward', ?, 0, ?, ?, ?)",
                    (self.rider_id, reward_fen, report_id, f"reward:{report_id}", ts(decided)),
                )
            if reversed_at is not None and reward_fen is not None:
                await conn.execute(
                    "INSERT INTO ledger (rider_id, kind, amount_fen, points, report_id,"
                    " idempotency_key, created_at) VALUES (?, 'reversal', ?, 0, ?, ?, ?)",
                    (
                        self.rider_id,
                        -reward_fen,
                        report_id,
                        f"reversal:{report_id}",
                        ts(reversed_at),
                    ),
                )
        return report_id

    async def case(
        self,
        report_id: int,
        department: str,
        opened: datetime,
        fix_hours: int,
        fixed: datetime | None = None,
    ) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO cases (report_id, department, state, opened_at, dispatched_at,"
                " due_at, fixed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    report_id,
                    department,
                    "dispatched" if fixed is None else "fixed",
                    ts(opened),
                    ts(opened),
                    ts(opened + timedelta(hours=fix_hours)),
                    ts(fixed),
                    ts(fixed or opened),
                ),
            )
