"""Payout batches: periods and catch-up, netting, carry-forward, crash safety, the files."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from services import figures, finance_file, ledger, payouts
from services.audit import audit
from settings import Programme
from storage import ledger as ledger_store
from storage import payouts as payout_store
from storage.db import Connection, Database
from tests.money_helpers import DAY, T0, Money, open_db, seed_weeks

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Shanghai")
WEEKLY = CronTrigger.from_crontab("0 10 * * mon", timezone=TZ)
MON_23 = int(datetime(2026, 11, 23, 10, tzinfo=TZ).timestamp())  # ends 2026-W47
MON_30 = MON_23 + 7 * DAY  # ends 2026-W48


async def batch(
    db: Database, end: int, *, key: str | None = None, minimum_fen: int = 0, **kwargs: Any
) -> payouts.BatchOutcome:
    """The scheduled batch for the week ending at `end`, run a minute after it."""
    return await payouts.run_batch(
        db,
        period_key=key or payouts.period_key(end, end - 7 * DAY, TZ),
        period_start=end - 7 * DAY,
        period_end=end,
        minimum_fen=minimum_fen,
        now=end + 60,
        timezone=TZ,
        **kwargs,
    )


def paid(outcome: payouts.BatchOutcome) -> dict[int, int]:
    return {due.rider_id: due.amount_fen for due in outcome.paid}


async def assert_audit_clean(db: Database) -> None:
    assert await audit(db) == []


# Periods ---------------------------------------------------------------------------------


def test_period_keys() -> None:
    assert payouts.period_key(MON_30, MON_23, TZ) == "2026-W48"
    daily = MON_30 + DAY
    assert payouts.period_key(daily, MON_30, TZ) == "2026-12-01-1000"
    assert payouts.period_key(MON_30, None, TZ) == "2026-11-30-1000"


def test_due_periods_catches_up_every_missed_week() -> None:
    now = MON_30 + 14 * DAY + 3600  # down since the W47 batch; three Mondays passed
    periods = payouts.due_periods(WEEKLY, MON_23, now)
    assert periods == [
        payouts.Period("2026-W48", MON_23, MON_30),
        payouts.Period("2026-W49", MON_30, MON_30 + 7 * DAY),
        payouts.Period("2026-W50", MON_30 + 7 * DAY, MON_30 + 14 * DAY),
    ]
    assert payouts.due_periods(WEEKLY, MON_30 + 14 * DAY, now) == []


def test_due_periods_edges() -> None:
    # A fire time is closed at that very second; one second before it is not.
    assert [p.key for p in payouts.due_periods(WEEKLY, MON_23, MON_30)] == ["2026-W48"]
    assert payouts.due_periods(WEEKLY, MON_23, MON_30 - 1) == []
    # No batch yet: only the latest closed period.
    assert payouts.due_periods(WEEKLY, None, MON_30 + DAY) == [
        payouts.Period("2026-W48", MON_23, MON_30)
    ]
    # A year down: only the latest `limit` periods.
    later = payouts.due_periods(WEEKLY, MON_23, MON_23 + 70 * 7 * DAY, limit=52)
    assert len(later) == 52
    assert later[-1].end == MON_23 + 70 * 7 * DAY
    assert [p.end - p.start for p in later] == [7 * DAY] * 52
    # The schedule changed: the first period starts where the last batch ended.
    odd_end = MON_23 + 3 * DAY
    assert payouts.due_periods(WEEKLY, odd_end, MON_30) == [
        payouts.Period("2026-W48", odd_end, MON_30)
    ]


def test_due_periods_with_a_frequent_schedule() -> None:
    every_minute = CronTrigger.from_crontab("* * * * *", timezone=TZ)
    periods = payouts.due_periods(every_minute, MON_30 - 600, MON_30 + 30, limit=5)
    assert [p.end for p in periods] == [MON_30 - 240 + 60 * i for i in range(5)]
    assert len({p.key for p in periods}) == 5


# Batches ---------------------------------------------------------------------------------


async def test_reward_batch_paid_moves_money_through_the_balance(
    db: Database, money: Money
) -> None:
    rider = await money.rider()
    await money.approve(rider, 10_000, now=MON_23 + 100)
    outcome = await batch(db, MON_30)
    assert outcome.batch_id is not None
    assert outcome.status == "exported"
    assert (outcome.period.key, paid(outcome), outcome.total_fen) == (
        "2026-W48",
        {rider: 10_000},
        10_000,
    )
    assert outcome.files is not None
    assert (outcome.files.xlsx_name, outcome.files.csv_name) == (
        "payout-2026-W48.xlsx",
        "payout-2026-W48.csv",
    )
    on_the_way = await ledger.balance(db, rider)
    assert (on_the_way.unpaid_fen, on_the_way.on_the_way_fen, on_the_way.paid_fen) == (0, 10_000, 0)

    marked = await payouts.mark_paid(db, outcome.batch_id, admin_id=9001, now=MON_30 + 3600)
    assert (marked.marked, marked.status, marked.period_key) == (True, "paid", "2026-W48")
    assert [(due.rider_id, due.amount_fen) for due in marked.paid] == [(rider, 10_000)]
    again = await payouts.mark_paid(db, outcome.batch_id, admin_id=9001, now=MON_30 + 7200)
    assert (again.marked, again.status, again.paid) == (False, "paid", ())
    assert (await payouts.mark_paid(db, 999, admin_id=9001, now=MON_30)).status is None

    done = await ledger.balance(db, rider)
    assert (done.unpaid_fen, done.on_the_way_fen, done.paid_fen, done.earned_fen) == (
        0,
        0,
        10_000,
        10_000,
    )
    entries = await ledger.history(db, rider)
    assert next((e.kind, e.amount_fen, e.batch_key, e.batch_status) for e in entries) == (
        "payout",
        -10_000,
        "2026-W48",
        "paid",
    )
    await assert_audit_clean(db)


async def test_a_batch_pays_only_what_was_credited_before_its_end(
    db: Database, money: Money
) -> None:
    rider = await money.rider()
    early = await money.approve(rider, 5_000, now=MON_30 - 1)
    await money.approve(rider, 20_000, now=MON_30)  # credited at the fire time: next period
    outcome = await batch(db, MON_30)
    assert paid(outcome) == {rider: 5_000}
    row = await db.fetchone("SELECT report_refs FROM payout_lines")
    assert row is not None
    assert row[0] == await money.reference(early)
    assert (await ledger.balance(db, rider)).unpaid_fen == 20_000
    await assert_audit_clean(db)


async def test_rerunning_a_period_changes_nothing(db: Database, money: Money) -> None:
    riders = [await money.rider() for _ in range(3)]
    for rider in riders:
        await money.approve(rider, 10_000, now=MON_23 + 10)
    first = await batch(db, MON_30)
    await money.approve(riders[0], 10_000, now=MON_23 + 20)  # late credit: not in this batch
    second = await batch(db, MON_30)
    assert (second.batch_id, paid(second), second.files) == (
        first.batch_id,
        paid(first),
        first.files,
    )
    row = await db.fetchone("SELECT COUNT(*) FROM payout_lines")
    assert row is not None
    assert row[0] == 3
    assert await payouts.mark_announced(db, second.batch_id or 0, MON_30 + 120)
    assert not await payouts.mark_announced(db, second.batch_id or 0, MON_30 + 180)
    third = await batch(db, MON_30)
    assert third.announced
    assert third.missing_payee == ()


async def test_reversal_before_payment_is_never_paid(db: Database, money: Money) -> None:
    rider, other = await money.rider(), await money.rider()
    reversed_report = await money.approve(rider, 10_000, now=MON_23 + 10)
    kept = await money.approve(rider, 5_000, now=MON_23 + 20)
    await money.approve(other, 10_000, now=MON_23 + 30)
    reversal = await ledger.reverse_reward(
        db, report_id=reversed_report, reason="fake", now=MON_23 + 40
    )
    assert reversal is not None
    assert not reversal.already_paid
    outcome = await batch(db, MON_30)
    assert paid(outcome) == {rider: 5_000, other: 10_000}
    refs = await db.fetchall("SELECT report_refs FROM payout_lines ORDER BY rider_id")
    assert refs[0][0] == await money.reference(kept)  # the reversed report is not listed
    await assert_audit_clean(db)


async def test_reversal_after_a_batch_reached_its_end_is_netted_at_once(
    db: Database, money: Money
) -> None:
    """A catch-up batch run after a reversal does not pay the reward taken back."""
    rider = await money.rider()
    report = await money.approve(rider, 10_000, now=MON_23 + 10)
    await money.approve(rider, 5_000, now=MON_23 + 20)
    await ledger.reverse_reward(db, report_id=report, reason="fake", now=MON_30 + 10)
    outcome = await batch(db, MON_30)
    assert paid(outcome) == {rider: 5_000}
    await assert_audit_clean(db)


async def test_reversal_after_payment_is_carried_into_the_next_batches(
    db: Database, money: Money
) -> None:
    rider = await money.rider()
    report = await money.approve(rider, 10_000, now=MON_23 + 10)
    first = await batch(db, MON_30)
    assert first.batch_id is not None
    await payouts.mark_paid(db, first.batch_id, admin_id=1, now=MON_30 + 100)
    reversal = await ledger.reverse_reward(db, report_id=report, reason="fake", now=MON_30 + 200)
    assert reversal is not None
    assert reversal.already_paid
    owed = await ledger.balance(db, rider)
    assert (owed.unpaid_fen, owed.paid_fen, owed.reversed_fen) == (-10_000, 10_000, 10_000)

    small = await money.approve(rider, 5_000, now=MON_30 + 300)
    second = await batch(db, MON_30 + 7 * DAY)  # net -5000: no line, still owing
    assert second.nothing_to_pay
    assert second.batch_id is not None
    assert (await ledger.balance(db, rider)).unpaid_fen == -5_000

    big = await money.approve(rider, 20_000, now=MON_30 + 7 * DAY + 300)
    third = await batch(db, MON_30 + 14 * DAY)
    assert paid(third) == {rider: 15_000}
    row = await db.fetchone(
        "SELECT report_refs FROM payout_lines WHERE batch_id = ?", (third.batch_id,)
    )
    assert row is not None
    assert row[0].split(",") == [
        f"{await money.reference(report)}(冲正)",
        await money.reference(small),
        await money.reference(big),
    ]
    final = await ledger.balance(db, rider)
    assert final.unpaid_fen + final.on_the_way_fen + final.paid_fen == 25_000
    assert (final.unpaid_fen, final.on_the_way_fen, final.paid_fen) == (0, 15_000, 10_000)
    await assert_audit_clean(db)


async def test_minimum_carries_small_balances_forward(db: Database, money: Money) -> None:
    rider, big = await money.rider(), await money.rider()
    await money.approve(rider, 5_000, now=MON_23 + 10)
    await money.approve(big, 10_000, now=MON_23 + 10)
    first = await batch(db, MON_30, minimum_fen=10_000)
    assert paid(first) == {big: 10_000}
    await money.approve(rider, 5_000, now=MON_30 + 10)
    second = await batch(db, MON_30 + 7 * DAY, minimum_fen=10_000)
    assert paid(second) == {rider: 10_000}
    await assert_audit_clean(db)


async def test_missing_payee_is_carried_forward_then_paid_once(db: Database, money: Money) -> None:
    rider = await money.rider(payee=False, telegram_id=555)
    await money.approve(rider, 10_000, now=MON_23 + 10)
    first = await batch(db, MON_30)
    assert first.nothing_to_pay
    assert [(d.rider_id, d.telegram_id, d.amount_fen) for d in first.missing_payee] == [
        (rider, 555, 10_000)
    ]
    await ledger.set_payee(db, rider, "李四", "lisi_wechat", now=MON_30 + 100)
    await money.approve(rider, 5_000, now=MON_30 + 200)
    second = await batch(db, MON_30 + 7 * DAY)
    assert (paid(second), second.missing_payee) == ({rider: 15_000}, ())
    third = await batch(db, MON_30 + 14 * DAY)
    assert third.nothing_to_pay
    await assert_audit_clean(db)


async def test_payee_snapshot_and_erased_rider_in_the_file(db: Database, money: Money) -> None:
    rider = await money.rider()
    await money.approve(rider, 12_345, now=MON_23 + 10)
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE users SET telegram_id = NULL, erased_at = ? WHERE id = ?", (MON_23, rider)
        )
    outcome = await batch(db, MON_30)
    await ledger.set_payee(db, rider, "改名", "changed_account", now=MON_30 + 120)
    assert outcome.files is not None
    rows = list(csv.reader(io.StringIO(outcome.files.csv.decode("utf-8-sig"))))
    assert rows[4][:4] == [f"#{rider}", f"骑手{1}", "13800000001", "123.45"]
    assert outcome.paid[0].telegram_id is None
    again = await batch(db, MON_30)
    assert again.files == outcome.files  # the snapshot, not today's details


# Ad hoc ----------------------------------------------------------------------------------


async def test_adhoc_pays_everything_up_to_now_and_then_nothing(db: Database, money: Money) -> None:
    rider, waiting = await money.rider(), await money.rider(payee=False)
    await money.approve(rider, 10_000, now=T0)
    await money.approve(rider, 5_000, now=T0 + 50)  # credited in the same second as /payout
    await money.approve(waiting, 5_000, now=T0 + 10)
    first = await payouts.run_adhoc(db, minimum_fen=0, now=T0 + 50, timezone=TZ)
    assert (first.kind, first.period.key, paid(first)) == (
        "adhoc",
        f"adhoc-{T0 + 50}",
        {rider: 15_000},
    )
    assert first.period.start == T0
    assert [due.rider_id for due in first.missing_payee] == [waiting]
    second = await payouts.run_adhoc(db, minimum_fen=0, now=T0 + 60, timezone=TZ)
    assert second.nothing_to_pay
    assert second.batch_id is None
    assert second.files is None
    assert [due.rider_id for due in second.missing_payee] == [waiting]
    row = await db.fetchone("SELECT COUNT(*) FROM payout_batches")
    assert row is not None
    assert row[0] == 1
    await assert_audit_clean(db)


async def test_adhoc_and_scheduled_batches_never_pay_twice(db: Database, money: Money) -> None:
    rider = await money.rider()
    await money.approve(rider, 10_000, now=MON_23 + 10)
    adhoc = await payouts.run_adhoc(db, minimum_fen=0, now=MON_30 + 3600, timezone=TZ)
    assert paid(adhoc) == {rider: 10_000}
    scheduled = await batch(db, MON_30)  # the week's batch, caught up after the /payout
    assert scheduled.nothing_to_pay
    assert (await ledger.balance(db, rider)).on_the_way_fen == 10_000
    await assert_audit_clean(db)


# The scheduled job and catch-up ----------------------------------------------------------


async def test_run_due_catches_up_missed_weeks(db: Database, money: Money) -> None:
    rider = await money.rider()
    await money.approve(rider, 10_000, now=MON_23 - 100)
    first = await payouts.run_due(db, trigger=WEEKLY, minimum_fen=0, now=MON_23 + 5)
    assert [(o.period.key, paid(o)) for o in first] == [("2026-W47", {rider: 10_000})]
    for outcome in first:
        await payouts.mark_announced(db, outcome.batch_id or 0, MON_23 + 10)

    # Down for three weeks, with rewards credited (by another instance) in between.
    await money.approve(rider, 5_000, now=MON_23 + DAY)
    await money.approve(rider, 15_000, now=MON_30 + 7 * DAY + DAY)
    now = MON_30 + 14 * DAY + 3600
    caught_up = await payouts.run_due(db, trigger=WEEKLY, minimum_fen=0, now=now)
    assert [(o.period.key, paid(o)) for o in caught_up] == [
        ("2026-W48", {rider: 5_000}),
        ("2026-W49", {}),
        ("2026-W50", {rider: 15_000}),
    ]
    # Not announced yet: handed back again, built again never.
    again = await payouts.run_due(db, trigger=WEEKLY, minimum_fen=0, now=now + 60)
    assert [o.batch_id for o in again] == [o.batch_id for o in caught_up]
    for outcome in again:
        await payouts.mark_announced(db, outcome.batch_id or 0, now + 120)
    assert await payouts.run_due(db, trigger=WEEKLY, minimum_fen=0, now=now + 180) == []
    row = await db.fetchone("SELECT COUNT(*) FROM payout_batches")
    assert row is not None
    assert row[0] == 4
    await assert_audit_clean(db)


async def test_run_due_finishes_an_interrupted_batch(db: Database, money: Money) -> None:
    rider = await money.rider()
    await money.approve(rider, 10_000, now=MON_23 + 10)

    def crash(statement: finance_file.Statement, timezone: Any) -> finance_file.RenderedFiles:
        raise RuntimeError("killed while rendering")

    with pytest.raises(RuntimeError):
        await payouts.run_due(db, trigger=WEEKLY, minimum_fen=0, now=MON_30 + 5, render=crash)
    status = await db.fetchone("SELECT status FROM payout_batches")
    assert status is not None
    assert status[0] == "open"
    # Restarted a week later: the open batch is finished, then the next week is built.
    outcomes = await payouts.run_due(db, trigger=WEEKLY, minimum_fen=0, now=MON_30 + 7 * DAY + 5)
    assert [(o.period.key, o.status, paid(o)) for o in outcomes] == [
        ("2026-W48", "exported", {rider: 10_000}),
        ("2026-W49", "exported", {}),
    ]
    await assert_audit_clean(db)


# Crash safety ----------------------------------------------------------------------------


class Crash(Exception):
    """Stands for the process dying: the open transaction never commits."""


class CrashingDatabase(Database):
    """Raises `Crash` at the n-th statement run inside a write transaction."""

    def __init__(self, path: Path, crash_at: int) -> None:
        super().__init__(path)
        self.crash_at = crash_at
        self.statements = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        async with super().transaction() as conn:
            database = self
            real_execute = conn.execute

            def execute(sql: str, parameters: Any = None) -> Any:
                database.statements += 1
                if database.statements == database.crash_at:
                    raise Crash(sql)
                return real_execute(sql, parameters)

            conn.execute = execute  # type: ignore[method-assign]
            try:
                yield conn
            finally:
                conn.execute = real_execute  # type: ignore[method-assign]


@pytest.mark.sqlite_only  # copies a seeded SQLite file for every run
async def test_a_crash_at_any_statement_then_a_rerun_pays_each_rider_once(tmp_path: Path) -> None:
    setup = await open_db(tmp_path / "seed.db")
    money = Money(setup)
    riders = [await money.rider(payee=i != 1) for i in range(4)]
    for i, rider in enumerate(riders):
        await money.approve(rider, 5_000 * (i + 1), now=MON_23 + i)
    await setup.close()
    seed = (tmp_path / "seed.db").read_bytes()

    crash_points = 0
    for crash_at in range(1, 40):
        path = tmp_path / f"crash{crash_at}.db"
        path.write_bytes(seed)
        crashing = CrashingDatabase(path, crash_at)
        await crashing.open()
        try:
            await batch(crashing, MON_30)
        except Crash:
            crash_points += 1
        await crashing.close()
        if crashing.statements < crash_at:
            break  # the batch completed before reaching this statement
        db = await open_db(path)
        outcome = await batch(db, MON_30)
        assert paid(outcome) == {riders[0]: 5_000, riders[2]: 15_000, riders[3]: 20_000}
        lines = await db.fetchall("SELECT rider_id, COUNT(*) FROM payout_lines GROUP BY rider_id")
        assert all(count == 1 for _, count in lines)
        await assert_audit_clean(db)
        await db.close()
    assert crash_points >= 10


CHILD = """
import asyncio, sys
from pathlib import Path
from zoneinfo import ZoneInfo
from services import payouts
from storage.db import Database

async def main(path, ends):
    db = Database(Path(path))
    await db.open()
    print("open", flush=True)
    for end in ends:
        await payouts.run_batch(db, period_key=f"P{end}", period_start=end - 604800,
            period_end=end, minimum_fen=0, now=end + 60, timezone=ZoneInfo("Asia/Shanghai"))
    print("done", flush=True)
    await db.close()

asyncio.run(main(sys.argv[1], [int(a) for a in sys.argv[2:]]))
"""


@pytest.mark.sqlite_only  # copies a seeded SQLite file for every run
async def test_sigkill_during_batches_then_rerun_pays_exactly_what_was_earned(
    tmp_path: Path,
) -> None:
    """A real process building four batches, killed with SIGKILL at random moments twice
    per scenario, then run to the end: the audit is clean and everyone got what they earned."""
    seed, path = tmp_path / "seed.db", tmp_path / "killed.db"
    ends = [MON_30 + 7 * DAY * week for week in range(4)]
    earned = await seed_weeks(seed, 1000, ends)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", CHILD, str(path), *map(str, ends)]

    async def start() -> subprocess.Popen[bytes]:
        child = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, cwd=ROOT)
        assert child.stdout is not None
        await asyncio.to_thread(child.stdout.readline)
        return child

    path.write_bytes(seed.read_bytes())
    child = await start()
    started = time.monotonic()
    assert child.stdout is not None
    await asyncio.to_thread(child.stdout.readline)
    work = time.monotonic() - started  # how long building the four batches takes
    await asyncio.to_thread(child.wait)

    randomly = random.Random(48)
    interrupted = 0
    for _ in range(5):
        path.write_bytes(seed.read_bytes())
        for _ in range(2):
            child = await start()
            await asyncio.sleep(randomly.uniform(0, work / 2))  # early: a loaded machine varies
            child.send_signal(signal.SIGKILL)
            interrupted += await asyncio.to_thread(child.wait) == -signal.SIGKILL
        finished = await asyncio.to_thread(subprocess.run, args, env=env, capture_output=True)
        assert finished.returncode == 0, finished.stderr.decode()
        db = await open_db(path)
        try:
            await assert_audit_clean(db)
            async with db.snapshot() as conn:
                balances = await ledger_store.balances(conn)
            assert {r: (b.unpaid_fen, b.on_the_way_fen) for r, b in balances.items()} == {
                rider: (0, amount) for rider, amount in earned.items()
            }
            row = await db.fetchone("SELECT COUNT(*), SUM(status = 'exported') FROM payout_batches")
            assert row is not None
            assert tuple(row) == (4, 4)
        finally:
            await db.close()
    assert interrupted >= 6, (interrupted, work)  # most kills land mid-work


# Files -----------------------------------------------------------------------------------


def xlsx_rows(data: bytes) -> list[list[str]]:
    """Cell values of the first sheet, read with the standard library."""
    main = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        shared = (
            archive.read("xl/sharedStrings.xml") if "xl/sharedStrings.xml" in names else b"<s/>"
        )
        sheet = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    strings = [
        "".join(t.text or "" for t in si.iter(f"{main}t")) for si in ElementTree.fromstring(shared)
    ]
    rows: list[list[str]] = []
    for row in sheet.iter(f"{main}row"):
        while len(rows) < int(row.get("r", "0")) - 1:
            rows.append([])  # rows without cells are left out of the XML
        cells = []
        for cell in row.iter(f"{main}c"):
            if cell.get("t") == "s":
                cells.append(strings[int(cell.findtext(f"{main}v", ""))])
            elif cell.get("t") == "inlineStr":
                cells.append("".join(t.text or "" for t in cell.iter(f"{main}t")))
            else:
                cells.append(cell.findtext(f"{main}v", ""))
        rows.append(cells)
    return rows


async def test_the_finance_files(db: Database, money: Money) -> None:
    first, second = await money.rider(telegram_id=111), await money.rider(telegram_id=222)
    refs = [
        await money.reference(await money.approve(first, 10_000, now=MON_23 + 10)),
        await money.reference(await money.approve(first, 5_005, now=MON_23 + 20)),
        await money.reference(await money.approve(second, 20_000, now=MON_23 + 30)),
    ]
    await ledger.set_payee(db, second, "=cmd()", "@evil_account", now=MON_23)
    outcome = await batch(db, MON_30)
    assert outcome.files is not None

    sheet = xlsx_rows(outcome.files.xlsx)
    assert sheet[0] == [finance_file.BATCH_LABEL, str(outcome.batch_id)]
    assert sheet[1][:2] == [finance_file.PERIOD_LABEL, "2026-W48"]
    assert "2026-11-23 10:00 – 2026-11-30 10:00" in sheet[1][2]
    assert sheet[3] == list(finance_file.COLUMNS)
    assert sheet[4] == ["111", "骑手1", "13800000001", "150.05", f"{refs[0]},{refs[1]}"]
    assert sheet[5] == ["222", "=cmd()", "@evil_account", "200.00", refs[2]]
    assert sheet[6] == [finance_file.TOTAL_LABEL, "350.05"]
    assert "0.00" in zipfile.ZipFile(io.BytesIO(outcome.files.xlsx)).read("xl/styles.xml").decode()

    assert outcome.files.csv.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(outcome.files.csv.decode("utf-8-sig"))))
    assert rows[4] == ["111", "骑手1", "13800000001", "150.05", f"{refs[0]},{refs[1]}", ""]
    assert rows[5] == ["222", "'=cmd()", "'@evil_account", "200.00", refs[2], ""]
    assert rows[6] == [finance_file.TOTAL_LABEL, "", "", "350.05", ""]
    totals = finance_file.read_csv_totals(outcome.files.csv)
    assert (totals.batch_id, totals.line_count, totals.lines_fen, totals.total_fen) == (
        outcome.batch_id,
        2,
        35_005,
        35_005,
    )


def test_rendering_is_deterministic() -> None:
    statement = finance_file.Statement(
        batch_id=7,
        period_key="2026-W48",
        period_start=MON_23,
        period_end=MON_30,
        created_at=MON_30 + 60,
        lines=[finance_file.StatementLine(1, 42, "张三", "13812348000", 10_000, "R-1")],
    )
    assert finance_file.render(statement, TZ) == finance_file.render(statement, TZ)


def test_xlsx_amounts_are_exact_decimals_not_floats() -> None:
    """Each amount cell holds the exact decimal text the CSV shows (a float wrote `200`)."""
    amounts = [20_000, 15_005, 1, 10, 99_999_999_999_999]
    statement = finance_file.Statement(
        batch_id=7,
        period_key="2026-W48",
        period_start=MON_23,
        period_end=MON_30,
        created_at=MON_30 + 60,
        lines=[
            finance_file.StatementLine(n, n, "张三", "13812348000", fen, f"R-{n}")
            for n, fen in enumerate(amounts, start=1)
        ],
    )
    sheet = xlsx_rows(finance_file.render_xlsx(statement, TZ))
    assert [row[3] for row in sheet[4:-1]] == [ledger.yuan(fen) for fen in amounts]
    assert sheet[-1] == [finance_file.TOTAL_LABEL, "1000000000350.15"]


def test_parse_yuan() -> None:
    assert [finance_file.parse_yuan(t) for t in ("0.00", "123.45", "-0.50")] == [0, 12_345, -50]
    for bad in ("1.5", "1", "1e3", "١٢.٣٤"):
        with pytest.raises(ValueError, match="amount"):
            finance_file.parse_yuan(bad)


# Guards and the audit --------------------------------------------------------------------


async def test_exported_batches_are_frozen_and_one_way(db: Database, money: Money) -> None:
    await money.approve(await money.rider(), 10_000, now=MON_23 + 10)
    outcome = await batch(db, MON_30)
    for statement in (
        "UPDATE payout_batches SET total_fen = 1",
        "UPDATE payout_batches SET file_csv = CAST('0' AS BYTEA)"
        if db.engine == "postgresql"
        else "UPDATE payout_batches SET file_csv = x'00'",
        "UPDATE payout_batches SET status = 'open'",
        "DELETE FROM payout_batches",
        "UPDATE payout_lines SET amount_fen = 1",
        "DELETE FROM payout_items",
    ):
        with pytest.raises(sqlite3.IntegrityError):
            async with db.transaction() as conn:
                await conn.execute(statement)
    assert outcome.batch_id is not None
    await payouts.mark_paid(db, outcome.batch_id, admin_id=1, now=MON_30 + 100)
    with pytest.raises(sqlite3.IntegrityError):
        async with db.transaction() as conn:
            await conn.execute("UPDATE payout_batches SET paid_by = 2")
    await assert_audit_clean(db)


async def test_the_headline_says_approved_in_a_batch_and_paid_from_the_ledger(
    db: Database, money: Money
) -> None:
    """核定 (approved), 发放中 (in a batch not yet paid) and 已发放 (paid) are what the ledger
    and the batches hold, not one figure called 发放."""
    first, second = await money.rider(), await money.rider()
    await money.approve(first, 10_000, now=MON_23 + 100)
    await money.approve(second, 5_000, now=MON_23 + 200)
    week = figures.Period(
        "weeks",
        datetime.fromtimestamp(MON_23 - DAY, TZ),
        datetime.fromtimestamp(MON_23 + 7 * DAY, TZ),
        2026,
    )
    await money.approve(first, 20_000, now=MON_30 + 100)  # after the batch's end: not in it

    async def headline() -> figures.Charts:
        return await figures.charts(db, Programme(), TZ, week)

    before = (await headline()).headline
    assert (before.rewards_fen, before.in_batch_fen, before.paid_fen) == (15_000, 0, 0)
    outcome = await batch(db, MON_30)
    assert outcome.batch_id is not None
    sent = (await headline()).headline
    assert (sent.rewards_fen, sent.in_batch_fen, sent.paid_fen) == (15_000, 15_000, 0)
    await payouts.mark_paid(db, outcome.batch_id, admin_id=9001, now=MON_30 + 3600)
    done = (await headline()).headline
    assert (done.rewards_fen, done.in_batch_fen, done.paid_fen) == (15_000, 0, 15_000)


async def test_files_stream_every_line_once_across_pages(
    db: Database, money: Money, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The files are rendered from the stored lines read a page at a time: with pages of two,
    five riders' lines are each in both files once, in order, and the totals are the batch's;
    a reward credited exactly at the period's end waits for the next batch, a reversed one is
    not paid, and a rider without details is held back, not paid."""
    monkeypatch.setattr(payout_store, "LINES_PAGE", 2)
    riders = [await money.rider(telegram_id=900 + n) for n in range(5)]
    for n, rider in enumerate(riders):
        await money.approve(rider, 1_000 * (n + 1), now=MON_23 + 10 + n)
    await money.approve(riders[0], 7_000, now=MON_30)  # at the end: the next batch's
    reversed_report = await money.approve(riders[1], 9_000, now=MON_23 + 20)
    await ledger.reverse_reward(db, report_id=reversed_report, reason="fake", now=MON_23 + 30)
    no_details = await money.rider(telegram_id=999, payee=False)
    await money.approve(no_details, 4_000, now=MON_23 + 40)

    outcome = await batch(db, MON_30)
    assert outcome.files is not None
    assert paid(outcome) == {rider: 1_000 * (n + 1) for n, rider in enumerate(riders)}
    assert outcome.total_fen == 15_000
    assert [due.rider_id for due in outcome.missing_payee] == [no_details]
    rows = list(csv.reader(io.StringIO(outcome.files.csv.decode("utf-8-sig"))))
    assert [row[0] for row in rows[4:-1]] == [str(900 + n) for n in range(5)]
    assert rows[-1][3] == "150.00"
    sheet = xlsx_rows(outcome.files.xlsx)
    assert [row[0] for row in sheet[4:-1]] == [str(900 + n) for n in range(5)]
    assert sheet[-1] == [finance_file.TOTAL_LABEL, "150.00"]
    totals = finance_file.read_csv_totals(outcome.files.csv)
    assert (totals.line_count, totals.lines_fen, totals.total_fen) == (5, 15_000, 15_000)
    assert await audit(db) == []
