"""/audit: clean on an honest database, each check fires on a database corrupted by hand, and
one snapshot is read, so writes committing while it runs raise no false alarm."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services import ledger, payouts
from services.audit import audit
from storage import payouts as payout_store
from storage.db import Database
from tests.money_helpers import DAY, Money

TZ = ZoneInfo("Asia/Shanghai")
MON_23 = int(datetime(2026, 11, 23, 10, tzinfo=TZ).timestamp())
MON_30 = MON_23 + 7 * DAY  # ends 2026-W48


@dataclass(frozen=True)
class Books:
    """An honest history: A and B paid in batch 1 (then marked paid), A's 200.00 reversed
    after payment, A and C with unpaid rewards since."""

    a: int
    b: int
    c: int
    r1: int  # A, 100.00, paid
    r2: int  # A, 200.00, paid, then reversed
    r4: int  # B, 150.00, paid
    r3: int  # A, 50.00, unpaid
    r5: int  # C, 70.00, unpaid
    refs: dict[str, str]  # "ref1".. -> the report's reference
    batch: int


async def week_batch(db: Database, end: int) -> payouts.BatchOutcome:
    return await payouts.run_batch(
        db,
        period_key=payouts.period_key(end, end - 7 * DAY, TZ),
        period_start=end - 7 * DAY,
        period_end=end,
        minimum_fen=0,
        now=end + 60,
        timezone=TZ,
    )


@pytest.fixture
async def books(db: Database, money: Money) -> Books:
    a, b, c = await money.rider(), await money.rider(), await money.rider()
    r1 = await money.approve(a, 10_000, now=MON_23 + 10)
    r2 = await money.approve(a, 20_000, now=MON_23 + 20)
    r4 = await money.approve(b, 15_000, now=MON_23 + 30)
    outcome = await week_batch(db, MON_30)
    assert outcome.batch_id is not None
    await payouts.mark_paid(db, outcome.batch_id, admin_id=1, now=MON_30 + 100)
    await ledger.reverse_reward(db, report_id=r2, reason="fake photo", now=MON_30 + 200)
    r3 = await money.approve(a, 5_000, now=MON_30 + 300)
    r5 = await money.approve(c, 7_000, now=MON_30 + 400)
    refs = {
        f"ref{n}": await money.reference(report)
        for n, report in ((1, r1), (2, r2), (3, r3), (4, r4), (5, r5))
    }
    return Books(a, b, c, r1, r2, r4, r3, r5, refs, outcome.batch_id)


def corrupt(db: Database, statements: list[str]) -> None:
    """Change the database as only someone bypassing the bot could: every trigger dropped,
    foreign keys and CHECK constraints off."""
    conn = sqlite3.connect(db.path, isolation_level=None, timeout=5)
    try:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        conn.execute("BEGIN IMMEDIATE")
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        for (name,) in triggers.fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        for statement in statements:
            assert conn.execute(statement).rowcount != 0, statement
        conn.execute("COMMIT")
    finally:
        conn.close()


BATCH = "batch {batch} (2026-W48)"
CASES: dict[str, tuple[list[str], str]] = {
    # Riders
    "a decision changed: the ledger disagrees with the balance recomputed without it": (
        ["UPDATE decisions SET amount_fen = 5000 WHERE report_id = {r1}"],
        "rider {a}: entries sum to -150.00, but the rewards decided for their approved reports"
        " (100.00) less their payout lines (300.00) come to -200.00",
    ),
    "a settled reward unlinked from its line": (
        [
            "DELETE FROM payout_items WHERE ledger_id = (SELECT id FROM ledger"
            " WHERE idempotency_key = 'reward:{r1}')"
        ],
        "rider {a}: balance -150.00, but the rewards and reversals no batch settled sum to -50.00",
    ),
    "an entry of no known kind": (
        [
            "INSERT INTO ledger (rider_id, kind, amount_fen, idempotency_key, created_at)"
            " VALUES ({c}, 'bonus', 100, 'bonus:1', 0)"
        ],
        "rider {c}: unpaid + on the way + paid = 71.00, earned - reversed = 70.00",
    ),
    # Batches
    "a batch total changed": (
        ["UPDATE payout_batches SET total_fen = total_fen + 1"],
        BATCH + ": 2 lines sum to 450.00, the batch says 2 lines and 450.01",
    ),
    "a payout entry changed": (
        [
            "UPDATE ledger SET amount_fen = amount_fen + 100"
            " WHERE kind = 'payout' AND rider_id = {b}"
        ],
        BATCH + ": payout entries sum to 449.00, its lines to 450.00",
    ),
    "a payout entry without a line": (
        [
            "INSERT INTO ledger (rider_id, kind, amount_fen, batch_id, idempotency_key,"
            " created_at) VALUES ({c}, 'payout', -100, {batch}, 'payout:{batch}:{c}', 0)"
        ],
        BATCH + ": 0 lines without their payout entry, 1 payout entries without a line",
    ),
    "a line no longer the sum of what it settles": (
        ["DELETE FROM payout_items WHERE rider_id = {b}"],
        BATCH + ": 1 lines differ from the sum of the rewards and reversals they settle",
    ),
    "a report listed in two lines": (
        ["UPDATE payout_lines SET report_refs = report_refs || ',{ref1}' WHERE rider_id = {b}"],
        "report {ref1} is listed in more than one payout line",
    ),
    # Files
    "the XLSX changed": (
        ["UPDATE payout_batches SET file_xlsx = file_xlsx || x'00'"],
        BATCH + ": the stored XLSX does not match its sha256",
    ),
    "the CSV unreadable": (
        ["UPDATE payout_batches SET file_csv = x'00'"],
        BATCH + ": the stored CSV cannot be read (the CSV has no UTF-8 BOM)",
    ),
    "the CSV cut before its total": (
        [
            "UPDATE payout_batches SET file_csv = CAST(substr(CAST(file_csv AS TEXT), 1,"
            " instr(CAST(file_csv AS TEXT), '合计 Total') - 1) AS BLOB)"
        ],
        BATCH + ": the stored CSV cannot be read (the CSV does not end with a total row)",
    ),
    "the CSV cut after its header": (
        [
            "UPDATE payout_batches SET file_csv = CAST(substr(CAST(file_csv AS TEXT), 1,"
            " instr(CAST(file_csv AS TEXT), char(13) || char(10) || 'Telegram ID') + 1)"
            " AS BLOB)"
        ],
        BATCH + ": the stored CSV cannot be read (the CSV does not start with the batch,"
        " period and header rows)",
    ),
    "the CSV's total without its amount": (
        [
            "UPDATE payout_batches SET file_csv = CAST(replace(CAST(file_csv AS TEXT),"
            " '合计 Total,,,450.00,', '合计 Total') AS BLOB)"
        ],
        BATCH + ": the stored CSV cannot be read (a row of the CSV has no amount: ['合计 Total'])",
    ),
    "the CSV of another batch": (
        [
            "UPDATE payout_batches SET file_csv = CAST(replace(CAST(file_csv AS TEXT),"
            " 'Batch,{batch}' || char(13), 'Batch,99' || char(13)) AS BLOB)"
        ],
        BATCH + ": the stored CSV is for batch 99",
    ),
    "the CSV's amounts changed": (
        [
            "UPDATE payout_batches SET file_csv = CAST(replace(CAST(file_csv AS TEXT),"
            " '150.00', '1500.00') AS BLOB)"
        ],
        BATCH + ": the CSV has 2 lines summing to 1800.00 and a total of 450.00; the batch"
        " says 2 lines and 450.00",
    ),
    # Reports
    "a report credited twice": (
        [
            "INSERT INTO ledger (rider_id, kind, amount_fen, report_id, idempotency_key,"
            " created_at) VALUES ({a}, 'reward', 5000, {r3}, 'reward:{r3}:again', 0)"
        ],
        "report {ref3} credited more than once",
    ),
    "a report moved to another rider": (
        ["UPDATE reports SET rider_id = {b} WHERE id = {r3}"],
        "report {ref3} has money entries for a rider who did not send it",
    ),
    "a reward deleted": (
        ["DELETE FROM ledger WHERE idempotency_key = 'reward:{r3}'"],
        "report {ref3} is approved but has no reward entry",
    ),
    "a reversal deleted": (
        ["DELETE FROM ledger WHERE idempotency_key = 'reversal:{r2}'"],
        "report {ref2} is reversed but has no reversal entry",
    ),
    "a rewarded report marked rejected": (
        ["UPDATE reports SET status = 'rejected' WHERE id = {r3}"],
        "report {ref3} has a reward but is neither approved nor reversed",
    ),
    "a reversed report marked approved again": (
        ["UPDATE reports SET status = 'approved' WHERE id = {r2}"],
        "report {ref2} has a reversal entry but its status is not reversed",
    ),
    "a reversed reward deleted": (
        ["DELETE FROM ledger WHERE idempotency_key = 'reward:{r2}'"],
        "report {ref2} has a reversal entry but no reward",
    ),
    "a reversal that does not cancel its reward": (
        ["UPDATE ledger SET amount_fen = -100 WHERE idempotency_key = 'reversal:{r2}'"],
        "report {ref2} has a reversal that does not cancel its reward exactly",
    ),
    "a reward changed": (
        ["UPDATE ledger SET amount_fen = 4000 WHERE idempotency_key = 'reward:{r3}'"],
        "report {ref3} has a reward that differs from the amount its moderator approved",
    ),
}


def fields(books: Books) -> dict[str, object]:
    return {
        **books.refs,
        **{k: v for k, v in vars(books).items() if k != "refs"},
    }


async def test_honest_books_are_clean(db: Database, books: Books) -> None:
    assert await audit(db) == []


@pytest.mark.sqlite_only  # corrupts the file with the triggers and CHECKs bypassed
@pytest.mark.parametrize("case", list(CASES))
async def test_each_check_fires_on_a_corrupted_database(
    db: Database, books: Books, case: str
) -> None:
    statements, expected = CASES[case]
    corrupt(db, [statement.format(**fields(books)) for statement in statements])
    problems = await audit(db)
    assert expected.format(**fields(books)) in problems, problems


async def test_writes_committed_during_the_audit_raise_no_false_alarm(
    db: Database, books: Books, money: Money, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch built and a report approved between two of the audit's queries: with one
    snapshot the audit sees neither; reading each query afresh, it saw half of them."""
    checks = payout_store.batch_checks
    committed: list[payouts.BatchOutcome] = []

    async def then_a_batch(conn: object) -> list[payout_store.BatchCheck]:
        result = await checks(conn)  # type: ignore[arg-type]
        if not committed:
            await money.approve(books.b, 10_000, now=MON_30 + 500)
            committed.append(await week_batch(db, MON_30 + 7 * DAY))
        return result

    monkeypatch.setattr(payout_store, "batch_checks", then_a_batch)
    assert await audit(db) == []
    assert committed[0].total_fen == 17_000  # it paid B and C while the audit ran
    assert await audit(db) == []  # and the next audit sees it, whole


@pytest.mark.sqlite_only  # corrupts the file with the triggers and CHECKs bypassed
async def test_only_what_is_wrong_is_named_and_once(db: Database, books: Books) -> None:
    """The checks sum in the database and hand back only the riders and reports at fault:
    A's points taken below zero and C's unpaid reward changed give exactly their sentences,
    each once, and nothing about the honest riders or reports around them."""
    statements = [
        "INSERT INTO ledger (rider_id, kind, amount_fen, points, idempotency_key, created_at)"
        " VALUES ({a}, 'redemption', 0, -100000, 'redeem:X', 0)",
        "UPDATE ledger SET amount_fen = 6000 WHERE idempotency_key = 'reward:{r5}'",
    ]
    corrupt(db, [statement.format(**fields(books)) for statement in statements])
    assert await audit(db) == [
        f"rider {books.c}: entries sum to 60.00, but the rewards decided for their approved"
        " reports (70.00) less their payout lines (0.00) come to 70.00",
        f"report {books.refs['ref5']} has a reward that differs from the amount its moderator"
        " approved",
        "points were debited for redemption code X, which is not used",
        f"rider {books.a} has negative points",
    ]
