"""The rider's money as the bot speaks of it: balances, payout details, reversals, batches.

Wraps services/ledger.py and services/payouts.py (the rules and the arithmetic) with who is
asking: riders by Telegram id, admins for reversals, payouts and the audit.
"""

from __future__ import annotations

from dataclasses import dataclass

from services import ledger, payouts
from services.audit import audit
from services.clock import Clock, utc_now
from services.outbox import Outbox
from settings import Settings
from storage import reports as riders
from storage.db import Database
from storage.ledger import Balance, Entry, Payee


@dataclass(frozen=True)
class PayeeSaved:
    masked_name: str
    masked_account: str


def split_payee(text: str) -> tuple[str, str] | None:
    """("real name", "account") from one line; the account is the last word, or a phone
    number typed with spaces (`张三 +86 138 1234 8000`)."""
    words = text.split()
    if len(words) < 2:
        return None
    for cut in range(1, len(words)):
        account = ledger.normalise_account("".join(words[cut:]))
        if ledger.account_problem(account) is None and account.isdigit():
            return " ".join(words[:cut]), account
    return " ".join(words[:-1]), words[-1]


class Money:
    """Money-facing operations; every rider is named by their Telegram id."""

    def __init__(
        self, db: Database, settings: Settings, outbox: Outbox, clock: Clock = utc_now
    ) -> None:
        self.db = db
        self.settings = settings
        self.outbox = outbox
        self.clock = clock

    def now(self) -> int:
        return int(self.clock().timestamp())

    async def balance(self, telegram_id: int) -> Balance | None:
        rider_id = await riders.rider_id_of(self.db, telegram_id)
        return None if rider_id is None else await ledger.balance(self.db, rider_id)

    async def history(self, telegram_id: int, limit: int = 10) -> list[Entry]:
        rider_id = await riders.rider_id_of(self.db, telegram_id)
        return [] if rider_id is None else await ledger.history(self.db, rider_id, limit)

    # --- payout details -----------------------------------------------------------------

    async def needs_payee(self, telegram_id: int) -> bool:
        """True when the rider has no payout details yet: ask them (first reward is due)."""
        rider_id = await riders.rider_id_of(self.db, telegram_id)
        return rider_id is not None and await ledger.payee(self.db, rider_id) is None

    async def ask_payee(self, telegram_id: int) -> None:
        """Remember that the rider's next text is their payout details."""
        rider_id = await riders.rider_id_of(self.db, telegram_id)
        if rider_id is not None:
            await riders.set_payee_asked(self.db, rider_id, self.now())

    async def awaiting_payee(self, telegram_id: int) -> bool:
        rider_id = await riders.rider_id_of(self.db, telegram_id)
        return rider_id is not None and await riders.payee_asked(self.db, rider_id)

    async def save_payee(self, telegram_id: int, text: str) -> PayeeSaved | str:
        """Parse "real name  account" (the account is the last word); a problem key if bad."""
        rider_id = await riders.rider_id_of(self.db, telegram_id)
        if rider_id is None:
            return "not_rider"
        split = split_payee(text)
        if split is None:
            return "payee_format"
        name, account = split
        try:
            saved: Payee = await ledger.set_payee(self.db, rider_id, name, account, now=self.now())
        except ValueError as problem:
            return str(problem)
        await riders.set_payee_asked(self.db, rider_id, None)
        return PayeeSaved(ledger.mask_name(saved.real_name), ledger.mask_account(saved.account))

    async def current_payee(self, telegram_id: int) -> PayeeSaved | None:
        rider_id = await riders.rider_id_of(self.db, telegram_id)
        found = None if rider_id is None else await ledger.payee(self.db, rider_id)
        if found is None:
            return None
        return PayeeSaved(ledger.mask_name(found.real_name), ledger.mask_account(found.account))

    # --- admins -------------------------------------------------------------------------

    async def reverse(self, reference: str, reason: str) -> ledger.Reversal | str:
        """Take back an approved report's reward; a problem key when it can't be."""
        report_id = await riders.report_id_of(self.db, reference)
        if report_id is None:
            return "unknown_report"
        if not reason.strip():
            return "reason_needed"
        reversal = await ledger.reverse_reward(
            self.db, report_id=report_id, reason=reason, now=self.now()
        )
        return "not_approved" if reversal is None else reversal

    async def scheduled_batches(self) -> list[payouts.BatchOutcome]:
        """Every due or unfinished scheduled batch not yet announced (start-up and the cron)."""
        return await payouts.run_due(
            self.db,
            trigger=self.settings.payout_trigger(),
            minimum_fen=self.settings.programme.payout_minimum_fen,
            now=self.now(),
        )

    async def adhoc_batch(self) -> payouts.BatchOutcome:
        return await payouts.run_adhoc(
            self.db,
            minimum_fen=self.settings.programme.payout_minimum_fen,
            now=self.now(),
            timezone=self.settings.timezone,
        )

    async def announced(self, batch_id: int) -> None:
        await payouts.mark_announced(self.db, batch_id, self.now())

    async def mark_paid(self, batch_id: int, admin_id: int) -> payouts.PaidOutcome:
        return await payouts.mark_paid(self.db, batch_id, admin_id, self.now())

    async def contact(self, rider_id: int) -> tuple[int, str | None] | None:
        """(Telegram id, chosen language) of a rider who can still be told things."""
        row = await riders.telegram_contact(self.db, rider_id)
        if row is None or row["telegram_id"] is None:
            return None
        return int(row["telegram_id"]), row["language"]

    async def audit(self) -> list[str]:
        return await audit(self.db)
