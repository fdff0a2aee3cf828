"""Property test: random sequences of approvals, reversals, payee changes, batches (some
interrupted) and payments keep the money right at every step."""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter, defaultdict
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from services import finance_file, ledger, payouts
from services.audit import audit
from storage.db import Database
from storage.payouts import REVERSAL_MARK
from tests.money_helpers import T0, Money

T = TypeVar("T")
TZ = ZoneInfo("Asia/Shanghai")
WEEKLY = CronTrigger.from_crontab("0 10 * * mon", timezone=TZ)
TIERS = (5_000, 10_000, 15_000, 20_000)
RIDERS = 4


def interrupted(statement: finance_file.Statement, timezone: Any) -> finance_file.RenderedFiles:
    raise RuntimeError("the process died while rendering")


class LedgerMachine(RuleBasedStateMachine):
    """The model: what each rider earned and had reversed, and which reports are live."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = tempfile.TemporaryDirectory()
        self.db = Database(Path(self.folder.name) / "money.db")
        self.run(self.db.open())
        self.money = Money(self.db)
        self.now = T0
        self.riders: list[int] = []
        self.earned: defaultdict[int, int] = defaultdict(int)
        self.reversed: defaultdict[int, int] = defaultdict(int)
        self.approved: list[tuple[int, int]] = []  # (report, rider), not reversed
        self.batches: list[int] = []
        self.minimum_of: dict[str, int] = {}  # period key -> the minimum its batch was built with

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coroutine)

    def tick(self) -> int:
        self.now += 600
        return self.now

    def teardown(self) -> None:
        self.run(self.db.close())
        self.loop.close()
        self.folder.cleanup()

    @initialize(payees=st.lists(st.booleans(), min_size=RIDERS, max_size=RIDERS))
    def make_riders(self, payees: list[bool]) -> None:
        self.riders = [self.run(self.money.rider(payee=payee)) for payee in payees]

    @rule(rider=st.integers(0, RIDERS - 1), amount=st.sampled_from(TIERS))
    def approve(self, rider: int, amount: int) -> None:
        rider_id = self.riders[rider]
        report = self.run(self.money.approve(rider_id, amount, now=self.tick()))
        self.approved.append((report, rider_id))
        self.earned[rider_id] += amount

    @precondition(lambda self: self.approved)
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        report, rider_id = self.approved.pop(data.draw(st.integers(0, len(self.approved) - 1)))
        reversal = self.run(
            ledger.reverse_reward(self.db, report_id=report, reason="fake", now=self.tick())
        )
        assert reversal is not None
        assert reversal.created
        self.reversed[rider_id] += reversal.amount_fen

    @rule(rider=st.integers(0, RIDERS - 1))
    def set_payee(self, rider: int) -> None:
        self.run(
            ledger.set_payee(self.db, self.riders[rider], "张三", "zhangsan_wx", now=self.tick())
        )

    @rule(
        lag=st.integers(0, 3),
        minimum=st.sampled_from((0, 0, 10_000, 30_000)),
        crash=st.booleans(),
    )
    def scheduled_batch(self, lag: int, minimum: int, crash: bool) -> None:
        """A batch whose end may lie a little in the past (a catch-up), maybe interrupted."""
        end = self.tick() - lag * 600
        self.minimum_of.setdefault(f"P{end}", minimum)
        kwargs: dict[str, Any] = {"render": interrupted} if crash else {}
        try:
            outcome = self.run(
                payouts.run_batch(
                    self.db,
                    period_key=f"P{end}",
                    period_start=end - 3600,
                    period_end=end,
                    minimum_fen=minimum,
                    now=self.now,
                    timezone=TZ,
                    **kwargs,
                )
            )
        except RuntimeError:
            return
        # The same period again gets its batch as first built (idempotent), with that minimum.
        built_with = self.minimum_of[f"P{end}"]
        assert all(due.amount_fen >= max(built_with, 1) for due in outcome.paid)
        if outcome.batch_id is not None:
            self.batches.append(outcome.batch_id)

    @rule()
    def adhoc(self) -> None:
        outcome = self.run(payouts.run_adhoc(self.db, minimum_fen=0, now=self.tick(), timezone=TZ))
        assert (outcome.batch_id is None) == outcome.nothing_to_pay
        if outcome.batch_id is not None:
            self.batches.append(outcome.batch_id)

    @rule()
    def restart(self) -> None:
        """What the bot does at start-up: finish interrupted batches (no Monday passes)."""
        self.run(payouts.run_due(self.db, trigger=WEEKLY, minimum_fen=0, now=self.tick()))

    @precondition(lambda self: self.batches)
    @rule(data=st.data())
    def mark_paid(self, data: st.DataObject) -> None:
        batch_id = data.draw(st.sampled_from(self.batches))
        self.run(payouts.mark_paid(self.db, batch_id, admin_id=1, now=self.tick()))

    @rule()
    def settle_everything(self) -> None:
        """Everyone gives details and /payout runs: nobody is left with money unpaid."""
        for rider in range(RIDERS):
            self.set_payee(rider)
        self.adhoc()
        for rider_id in self.riders:
            assert self.run(ledger.balance(self.db, rider_id)).unpaid_fen <= 0

    @invariant()
    def audit_is_clean(self) -> None:
        assert self.run(audit(self.db)) == []

    @invariant()
    def money_is_accounted_for(self) -> None:
        for rider_id in self.riders:
            balance = self.run(ledger.balance(self.db, rider_id))
            earned, taken_back = self.earned[rider_id], self.reversed[rider_id]
            assert (balance.earned_fen, balance.reversed_fen) == (earned, taken_back)
            assert balance.unpaid_fen + balance.on_the_way_fen + balance.paid_fen == (
                earned - taken_back
            )
            assert balance.on_the_way_fen + balance.paid_fen <= earned

    @invariant()
    def no_report_is_paid_twice(self) -> None:
        rows = self.run(self.db.fetchall("SELECT report_refs FROM payout_lines"))
        listed = Counter(
            ref for row in rows for ref in row[0].split(",") if ref and REVERSAL_MARK not in ref
        )
        assert all(count == 1 for count in listed.values()), listed


LedgerMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerProperties = LedgerMachine.TestCase
