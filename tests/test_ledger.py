"""The ledger: append-only entries, idempotent credits and reversals, balances, payees."""

from __future__ import annotations

import sqlite3
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services import ledger, payouts
from settings import PointsRules, Programme
from storage.db import Database
from tests.engines import raw
from tests.money_helpers import DAY, T0, Money

TZ = ZoneInfo("Asia/Shanghai")


def refused(conn: Any, sql: str, params: tuple[object, ...] = ()) -> bool:
    """True if the statement failed on a trigger or constraint (and so changed nothing)."""
    try:
        conn.execute(sql, params)
    except sqlite3.IntegrityError:
        return True
    return False


def test_points_rule() -> None:
    programme = Programme()
    assert ledger.points_for(10_000, programme) == 20  # 10 per report + 1 per 10 yuan
    assert ledger.points_for(5_000, programme) == 15
    assert ledger.points_for(999, programme) == 10
    custom = Programme(points=PointsRules(per_report=5, per_10_yuan=2))
    assert ledger.points_for(20_000, custom) == 45


def test_yuan_is_exact() -> None:
    assert [ledger.yuan(fen) for fen in (0, 5, 10_000, 12_345, -50, -10_001)] == [
        "0.00",
        "0.05",
        "100.00",
        "123.45",
        "-0.50",
        "-100.01",
    ]


async def test_ledger_refuses_update_and_delete(db: Database, money: Money) -> None:
    await money.approve(await money.rider())
    for statement in ("UPDATE ledger SET amount_fen = 1", "DELETE FROM ledger"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            async with db.transaction() as conn:
                await conn.execute(statement)
    row = await db.fetchone("SELECT COUNT(*), SUM(amount_fen) FROM ledger")
    assert tuple(row) == (1, 10_000)  # type: ignore[arg-type]


@pytest.mark.parametrize("recursive_triggers", [False, True])
async def test_replace_cannot_swap_a_ledger_entry(
    db: Database, money: Money, recursive_triggers: bool
) -> None:
    """INSERT OR REPLACE deletes the row it collides with, without DELETE triggers unless
    recursive_triggers is on: the ledger refuses it either way."""
    rider = await money.rider()
    report = await money.approve(rider, 10_000)
    other = await money.approve(rider, 5_000, credit=False)
    before = await db.fetchall("SELECT * FROM ledger")
    insert = (
        "INSERT OR REPLACE INTO ledger (id, rider_id, kind, amount_fen, points, report_id,"
        " idempotency_key, created_at) VALUES (?, ?, 'reward', 1, 0, ?, 'reward:' || ?, 0)"
    )
    with raw(db, recursive_triggers=recursive_triggers) as conn:
        (entry,) = conn.execute("SELECT id FROM ledger").fetchone()
        assert refused(conn, insert, (None, rider, report, report))  # the same key
        assert refused(conn, insert, (entry, rider, other, other))  # the same id, a new key
        assert refused(conn, "REPLACE INTO ledger SELECT * FROM ledger")
        assert refused(conn, "UPDATE ledger SET amount_fen = 1")
        assert refused(conn, "DELETE FROM ledger")
    assert [tuple(row) for row in await db.fetchall("SELECT * FROM ledger")] == [
        tuple(row) for row in before
    ]


async def test_decisions_are_append_only(db: Database, money: Money) -> None:
    await money.approve(await money.rider())
    before = await db.fetchall("SELECT * FROM decisions")
    assert len(before) == 1
    with raw(db, recursive_triggers=False) as conn:
        assert refused(conn, "UPDATE decisions SET amount_fen = 1")
        # /delete's one exception blanks a question's words only, never an approval's.
        assert refused(conn, "UPDATE decisions SET detail = NULL")
        assert refused(conn, "UPDATE decisions SET detail = NULL, amount_fen = NULL")
        assert refused(conn, "DELETE FROM decisions")
        assert refused(conn, "INSERT OR REPLACE INTO decisions SELECT * FROM decisions")
        assert refused(
            conn,
            "INSERT OR REPLACE INTO decisions (id, report_id, moderator_id, action,"
            " previous_status, new_status, amount_fen, created_at)"
            " SELECT id, report_id, 1, 'reject', 'pending', 'rejected', NULL, 0 FROM decisions",
        )
    assert [tuple(r) for r in await db.fetchall("SELECT * FROM decisions")] == [
        tuple(r) for r in before
    ]


async def test_only_a_questions_words_can_be_erased_from_a_decision(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO users (telegram_id, created_at) VALUES (5, 0)")
        await conn.execute(
            "INSERT INTO reports (reference, rider_id, status, created_at, updated_at) "
            "VALUES ('R-1', 1, 'pending', 0, 0)"
        )
        for action, who in (("ask", 9002), ("answer", 5)):
            await conn.execute(
                "INSERT INTO decisions (report_id, moderator_id, action, previous_status, "
                "new_status, detail, created_at) "
                "VALUES (1, ?, ?, 'pending', 'pending', 'words', 0)",
                (who, action),
            )
    with raw(db, recursive_triggers=True) as conn:
        assert refused(conn, "UPDATE decisions SET detail = 'other words'")
        assert refused(conn, "UPDATE decisions SET detail = NULL, created_at = 1")
        assert refused(conn, "UPDATE decisions SET detail = NULL, moderator_id = 0")  # the ask's
        conn.execute(
            "UPDATE decisions SET detail = NULL, moderator_id = CASE WHEN action = 'answer' "
            "THEN 0 ELSE moderator_id END"
        )
    rows = await db.fetchall("SELECT action, moderator_id, detail FROM decisions ORDER BY id")
    assert [tuple(row) for row in rows] == [("ask", 9002, None), ("answer", 0, None)]


async def test_nothing_joins_or_leaves_an_exported_batch(db: Database, money: Money) -> None:
    paid_rider, late_rider = await money.rider(), await money.rider()
    await money.approve(paid_rider, 10_000, now=T0)
    end = T0 + 2 * DAY
    outcome = await payouts.run_batch(
        db,
        period_key="2026-W47",
        period_start=end - 7 * DAY,
        period_end=end,
        minimum_fen=0,
        now=end + 60,
        timezone=TZ,
    )
    assert (outcome.status, outcome.total_fen) == ("exported", 10_000)
    late_report = await money.approve(late_rider, 20_000, now=end + 120)
    tables = ("payout_batches", "payout_lines", "payout_items", "ledger")
    before = {t: await db.fetchall(f"SELECT * FROM {t}") for t in tables}  # noqa: S608
    with raw(db, recursive_triggers=False) as conn:
        batch = outcome.batch_id
        (late_entry,) = conn.execute(
            "SELECT id FROM ledger WHERE report_id = ?", (late_report,)
        ).fetchone()
        line = (
            "INSERT {} INTO payout_lines (batch_id, rider_id, amount_fen, report_refs,"
            " payee_name, payee_account) VALUES (?, ?, 20000, 'R-late', 'x', 'y')"
        )
        assert refused(conn, line.format(""), (batch, late_rider))  # a line added later
        assert refused(conn, line.format("OR REPLACE"), (batch, paid_rider))  # a line swapped
        assert refused(conn, "UPDATE payout_lines SET amount_fen = 1")
        assert refused(conn, "DELETE FROM payout_lines")
        assert refused(
            conn,
            "INSERT INTO payout_items (ledger_id, batch_id, rider_id) VALUES (?, ?, ?)",
            (late_entry, batch, paid_rider),
        )
        assert refused(conn, "INSERT OR REPLACE INTO payout_items SELECT * FROM payout_items")
        assert refused(
            conn,
            "INSERT INTO ledger (rider_id, kind, amount_fen, batch_id, idempotency_key,"
            " created_at) VALUES (?, 'payout', -20000, ?, 'payout:' || ? || ':' || ?, 0)",
            (late_rider, batch, batch, late_rider),
        )
        assert refused(conn, "UPDATE payout_batches SET status = 'open'")
        assert refused(conn, "INSERT OR REPLACE INTO payout_batches SELECT * FROM payout_batches")
        assert refused(
            conn,
            "INSERT OR REPLACE INTO payout_batches (period_key, kind, period_start, period_end,"
            " created_at) VALUES ('2026-W47', 'adhoc', 0, 0, 0)",
        )
        assert refused(
            conn,
            "INSERT INTO payout_batches (period_key, kind, period_start, period_end, status,"
            " file_sha256, exported_at, paid_at, paid_by, created_at)"
            " VALUES ('forged', 'adhoc', 0, 0, 'paid', 'x', 0, 0, 1, 0)",
        )
    for table in tables:
        after = await db.fetchall(f"SELECT * FROM {table}")  # noqa: S608
        assert [tuple(r) for r in after] == [tuple(r) for r in before[table]], table


async def test_a_payout_item_settles_an_entry_that_exists_on_a_line_of_its_batch(
    db: Database, money: Money
) -> None:
    """PostgreSQL checks a statement's items together (one trigger per statement), SQLite row
    by row: either way a forged item is refused, and one bad row refuses its whole statement."""
    rider = await money.rider()
    await money.approve(rider, 10_000, now=T0)
    with raw(db) as conn:
        if db.engine == "sqlite":
            conn.execute("PRAGMA foreign_keys = ON")  # as the bot's own connection has it
        (entry,) = conn.execute("SELECT id FROM ledger WHERE rider_id = ?", (rider,)).fetchone()
        (batch,) = conn.execute(
            "INSERT INTO payout_batches (period_key, kind, period_start, period_end, created_at)"
            " VALUES ('forged', 'adhoc', 0, 0, 0) RETURNING id"
        ).fetchone()
        conn.execute(
            "INSERT INTO payout_lines (batch_id, rider_id, amount_fen, report_refs, payee_name,"
            " payee_account) VALUES (?, ?, 10000, 'R-1', 'x', 'y')",
            (batch, rider),
        )
        item = "INSERT INTO payout_items (ledger_id, batch_id, rider_id) VALUES (?, ?, ?)"
        assert refused(conn, item, (entry + 1_000, batch, rider))  # no such entry
        assert refused(conn, item, (entry, batch + 1, rider))  # no such batch, so no line
        other = await money.rider()
        assert refused(conn, item, (entry, batch, other))  # the batch has no line for them
        good_and_bad = (entry, batch, rider, entry + 1_000, batch, rider)
        assert refused(conn, item + ", (?, ?, ?)", good_and_bad)
        assert conn.execute("SELECT COUNT(*) FROM payout_items").fetchone() == (0,)
        conn.execute(item, (entry, batch, rider))
        assert conn.execute("SELECT ledger_id FROM payout_items").fetchall() == [(entry,)]


async def test_an_open_batch_cannot_take_another_batchs_key(db: Database) -> None:
    """UPDATE OR REPLACE onto an existing period key would delete that batch."""
    with raw(db, recursive_triggers=False) as conn:
        for key in ("a", "b"):
            conn.execute(
                "INSERT INTO payout_batches (period_key, kind, period_start, period_end,"
                " created_at) VALUES (?, 'adhoc', 0, 0, 0)",
                (key,),
            )
        assert refused(conn, "UPDATE OR REPLACE payout_batches SET period_key = 'a' WHERE id = 2")
        assert refused(conn, "UPDATE OR REPLACE payout_batches SET id = 1 WHERE id = 2")
        assert conn.execute("SELECT id, period_key FROM payout_batches").fetchall() == [
            (1, "a"),
            (2, "b"),
        ]


async def test_credit_twice_makes_one_entry(db: Database, money: Money) -> None:
    rider = await money.rider()
    report = await money.approve(rider, credit=False)
    results = []
    for _ in range(2):
        async with db.transaction() as conn:
            results.append(
                await ledger.credit_reward(
                    conn, report_id=report, rider_id=rider, amount_fen=15_000, points=25, now=T0
                )
            )
    assert results == [True, False]
    balance = await ledger.balance(db, rider)
    assert (balance.unpaid_fen, balance.earned_fen, balance.points) == (15_000, 15_000, 25)


async def test_credit_rolls_back_with_the_approval(db: Database, money: Money) -> None:
    """Credited inside the decision's transaction: a failed decision leaves no money."""
    rider = await money.rider()
    report = await money.approve(rider, credit=False)
    with pytest.raises(RuntimeError):
        async with db.transaction() as conn:
            await ledger.credit_reward(
                conn, report_id=report, rider_id=rider, amount_fen=10_000, points=20, now=T0
            )
            raise RuntimeError("the decision failed after the credit")
    assert (await ledger.balance(db, rider)).earned_fen == 0


async def test_credit_refuses_the_wrong_rider_and_negative_amounts(
    db: Database, money: Money
) -> None:
    rider, other = await money.rider(), await money.rider()
    report = await money.approve(rider, credit=False)
    async with db.transaction() as conn:
        with pytest.raises(ValueError, match="not sent by"):
            await ledger.credit_reward(
                conn, report_id=report, rider_id=other, amount_fen=100, points=1, now=T0
            )
        with pytest.raises(ValueError, match="negative"):
            await ledger.credit_reward(
                conn, report_id=report, rider_id=rider, amount_fen=-100, points=1, now=T0
            )


async def test_reversal_is_idempotent_and_moves_the_report(db: Database, money: Money) -> None:
    rider = await money.rider()
    report = await money.approve(rider, 20_000)
    first = await ledger.reverse_reward(db, report_id=report, reason="fake photo", now=T0 + 60)
    second = await ledger.reverse_reward(db, report_id=report, reason="again", now=T0 + 120)
    assert first is not None
    assert second is not None
    assert (first.created, first.amount_fen, first.points, first.already_paid) == (
        True,
        20_000,
        30,
        False,
    )
    assert (second.created, second.reason) == (False, "fake photo")
    assert first.reference == await money.reference(report)
    balance = await ledger.balance(db, rider)
    assert (balance.unpaid_fen, balance.points, balance.earned_fen, balance.reversed_fen) == (
        0,
        0,
        20_000,
        20_000,
    )
    row = await db.fetchone("SELECT status FROM reports WHERE id = ?", (report,))
    assert row is not None
    assert row[0] == "reversed"


async def test_reversal_refuses_a_report_without_reward(db: Database, money: Money) -> None:
    report = await money.approve(await money.rider(), credit=False)
    assert await ledger.reverse_reward(db, report_id=report, reason="x", now=T0) is None
    assert await db.fetchone("SELECT 1 FROM ledger") is None
    with pytest.raises(ValueError, match="reason"):
        await ledger.reverse_reward(db, report_id=report, reason="  ", now=T0)


async def test_history_newest_first_with_references(db: Database, money: Money) -> None:
    rider = await money.rider()
    first = await money.approve(rider, 5_000, now=T0)
    second = await money.approve(rider, 10_000, now=T0 + 10)
    await ledger.reverse_reward(db, report_id=first, reason="duplicate", now=T0 + 20)
    entries = await ledger.history(db, rider)
    assert [(e.kind, e.amount_fen, e.report_reference) for e in entries] == [
        ("reversal", -5_000, await money.reference(first)),
        ("reward", 10_000, await money.reference(second)),
        ("reward", 5_000, await money.reference(first)),
    ]
    assert entries[0].memo == "duplicate"
    assert len(await ledger.history(db, rider, limit=2)) == 2
    assert await ledger.history(db, 12345) == []


async def test_balance_of_a_rider_without_entries_is_zero(db: Database) -> None:
    assert await ledger.balance(db, 42) == ledger.Balance(0, 0, 0, 0, 0, 0)


async def test_payee_is_normalised_stored_and_replaced(db: Database, money: Money) -> None:
    rider = await money.rider(payee=False)
    assert await ledger.payee(db, rider) is None
    saved = await ledger.set_payee(db, rider, " 张三丰 ", "+86 138-1234-8000", now=T0)
    assert (saved.real_name, saved.account) == ("张三丰", "13812348000")
    assert await ledger.payee(db, rider) == saved
    await ledger.set_payee(db, rider, "张三丰", "zhangsan@qq.com", now=T0 + 1)
    stored = await ledger.payee(db, rider)
    assert stored is not None
    assert (stored.account, stored.updated_at) == ("zhangsan@qq.com", T0 + 1)
    with pytest.raises(ValueError, match="account_spaces"):
        await ledger.set_payee(db, rider, "张三丰", "wx id", now=T0)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("张三", None),
        ("Zhang San", None),
        ("", "name_empty"),
        ("   ", "name_empty"),
        ("张" * 41, "name_too_long"),
        ("张\n三", "name_control_chars"),
        ("张\u200b三", "name_control_chars"),
    ],
)
def test_name_problems(name: str, problem: str | None) -> None:
    assert ledger.name_problem(name) == problem


@pytest.mark.parametrize(
    ("account", "problem"),
    [
        ("13812348000", None),
        ("zhangsan@qq.com", None),
        ("wxid_abc123", None),
        ("abcd", "account_too_short"),
        ("a" * 61, "account_too_long"),
        ("wx id", "account_spaces"),
        ("wxid\x07x", "account_unprintable"),
    ],
)
def test_account_problems(account: str, problem: str | None) -> None:
    assert ledger.account_problem(ledger.normalise_account(account)) == problem


def test_normalise_account_only_rewrites_phone_numbers() -> None:
    assert ledger.normalise_account("138 1234 8000") == "13812348000"
    assert ledger.normalise_account("0086-13812348000") == "13812348000"
    assert ledger.normalise_account(" wx-id(1) ") == "wx-id(1)"


def test_masks() -> None:
    assert ledger.mask_account("13812348000") == "138****8000"
    assert ledger.mask_account("zhangsan@qq.com") == "zha****.com"
    assert ledger.mask_account("wxid_abc12") == "****12"
    assert ledger.mask_account("ab") == "****"
    assert ledger.mask_name("张三丰") == "张**"
    assert ledger.mask_name("张三") == "张*"
    assert ledger.mask_name("张") == "*"
