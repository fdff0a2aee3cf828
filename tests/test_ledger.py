"""The ledger: append-only entries, idempotent credits and reversals, balances, payees."""

from __future__ import annotations

import sqlite3

import pytest

from services import ledger
from settings import Programme
from storage.db import Database
from tests.money_helpers import T0, Money


def test_points_rule() -> None:
    programme = Programme()
    assert ledger.points_for(10_000, programme) == 20  # 10 per report + 1 per 10 yuan
    assert ledger.points_for(5_000, programme) == 15
    assert ledger.points_for(999, programme) == 10
    custom = Programme(points_per_report=5, points_per_10_yuan=2)
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
