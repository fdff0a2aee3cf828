"""The rider's money as the bot speaks of it: balances, payout details, reversals, batches.

Wraps services/ledger.py and services/payouts.py (the rules and the arithmetic) with who is
asking: riders by Telegram id, admins for reversals, payouts and the audit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from services import ledger, payouts
from services.audit import audit
from services.clock import Now, utc_now
from services.outbox import Button, Fen, Notice, Outbox
from settings import Settings
from storage import ledger as ledger_store
from storage import payouts as payout_store
from storage import reports
from storage.db import Connection, Database
from storage.ledger import Balance, Entry, Payee
from storage.payouts import RiderDue

PAYEE_MARK = "💳"  # every language's payout details prompt starts with it


VERB_PAYEE_START = "payee"  # the button under the 💳 message (handlers/money.py)


def payee_prompt(telegram_id: int, once_key: str | None = None) -> Notice:
    """The 💳 message: why the details are needed, and a button that starts the two steps.
    (Replies to the older ForceReply prompt, still in riders' chats, are read too.)"""
    button = Button("button.payee_start", VERB_PAYEE_START, 1)
    return Notice(telegram_id, "payee.ask", buttons=((button,),), once_key=once_key)


PAYEE_STEP_MINUTES = 30  # an open step is forgotten after this: later text is not taken


@dataclass(frozen=True)
class PayeeStep:
    """Where the guided payout details stand after an answer: the step now open (None:
    none), the problem with the answer just given, or the details waiting for Confirm."""

    step: str | None
    problem: str | None = None
    proposed: PayeeProposed | None = None


@dataclass(frozen=True)
class PayeeSaved:
    masked_name: str
    masked_account: str


@dataclass(frozen=True)
class PayeeProposed:
    """Details parsed from the rider's answer, waiting for Confirm under `token`."""

    token: int
    masked_name: str
    masked_account: str


ANNOUNCE_CLAIM_STALE_SECONDS = 900
"""A claim on a batch's announcement this old is taken over (its holder hung)."""


def _notices(message: str, batch_id: int, riders: tuple[RiderDue, ...]) -> list[Notice]:
    """One notice per rider who can still be told, queued at most once per batch."""
    return [
        Notice(
            due.telegram_id,
            message,
            {"amount": Fen(due.amount_fen)},
            once_key=f"{message}:{batch_id}:{due.rider_id}",
        )
        for due in riders
        if due.telegram_id is not None
    ]


class Money:
    """Money-facing operations; every rider is named by their Telegram id."""

    def __init__(
        self, db: Database, settings: Settings, outbox: Outbox, clock: Now = utc_now
    ) -> None:
        self.db = db
        self.settings = settings
        self.outbox = outbox
        self.clock = clock
        self.token = secrets.token_hex(8)  # this process, as the holder of announcement claims

    def now(self) -> int:
        return int(self.clock().timestamp())

    async def balance(self, telegram_id: int) -> Balance | None:
        rider_id = await reports.rider_id_of(self.db, telegram_id)
        return None if rider_id is None else await ledger.balance(self.db, rider_id)

    async def history(self, telegram_id: int, limit: int = 10) -> list[Entry]:
        rider_id = await reports.rider_id_of(self.db, telegram_id)
        return [] if rider_id is None else await ledger.history(self.db, rider_id, limit)

    # --- payout details -----------------------------------------------------------------

    async def needs_payee(self, telegram_id: int) -> bool:
        """True when the rider has no payout details yet: ask them (first reward is due)."""
        rider_id = await reports.rider_id_of(self.db, telegram_id)
        return rider_id is not None and await ledger.payee(self.db, rider_id) is None

    async def start_payee(self, telegram_id: int) -> bool:
        """Open the guided payout details: the rider's next text is their real name. False
        for someone who is not a rider yet."""
        rider_id = await reports.rider_id_of(self.db, telegram_id)
        if rider_id is None:
            return False
        await ledger_store.open_payee_step(self.db, rider_id, "name", None, self.now())
        return True

    async def payee_step(self, telegram_id: int) -> str | None:
        """The open step ("name" or "account"), if one was opened in the last
        PAYEE_STEP_MINUTES; only then is the rider's text taken as payout details."""
        found = await self._open_step(await reports.rider_id_of(self.db, telegram_id))
        return None if found is None else found[0]

    async def _open_step(self, rider_id: int | None) -> tuple[str, str | None] | None:
        if rider_id is None:
            return None
        since = self.now() - PAYEE_STEP_MINUTES * 60
        return await ledger_store.payee_step(self.db, rider_id, since)

    async def answer_payee_step(self, telegram_id: int, text: str) -> PayeeStep:
        """The rider's answer to the open step: the name (then the account is asked), or
        the account (then both are shown masked for Confirm); a problem keeps the step open."""
        rider_id = await reports.rider_id_of(self.db, telegram_id)
        found = await self._open_step(rider_id)
        if rider_id is None or found is None:
            return PayeeStep(None)
        step, name = found
        text = " ".join(text.split())
        if step == "name":
            problem = ledger.name_problem(text) or (
                None if ledger.is_real_name(text) else "not_a_name"
            )
            if problem is not None:
                return PayeeStep("name", problem=problem)
            await ledger_store.open_payee_step(self.db, rider_id, "account", text, self.now())
            return PayeeStep("account")
        assert name is not None
        account = ledger.normalise_account(text)
        problem = ledger.account_problem(account) or (
            None if ledger.is_account(account) else "not_an_account"
        )
        if problem is not None:
            return PayeeStep("account", problem=problem)
        await ledger_store.close_payee_step(self.db, rider_id)
        token = await ledger_store.propose_payee(
            self.db, Payee(rider_id, name, account, self.now())
        )
        proposed = PayeeProposed(token, ledger.mask_name(name), ledger.mask_account(account))
        return PayeeStep(None, proposed=proposed)

    async def stop_payee_step(self, telegram_id: int) -> bool:
        rider_id = await reports.rider_id_of(self.db, telegram_id)
        return rider_id is not None and await ledger_store.close_payee_step(self.db, rider_id)

    async def propose_payee(self, telegram_id: int, text: str) -> PayeeProposed | None:
        """The rider's answer to the payout details prompt, kept until they confirm it;
        None (nothing kept) unless it is exactly a real name and an account."""
        rider_id = await reports.rider_id_of(self.db, telegram_id)
        parsed = ledger.parse_payee(text)
        if rider_id is None or parsed is None:
            return None
        name, account = parsed
        token = await ledger_store.propose_payee(
            self.db, Payee(rider_id, name, account, self.now())
        )
        return PayeeProposed(token, ledger.mask_name(name), ledger.mask_account(account))

    async def confirm_payee(self, telegram_id: int, token: int) -> PayeeSaved | None:
        """Confirm: the details waiting under `token` become the payee; None if there are
        none (already confirmed, cancelled, replaced, or a forged button)."""
        rider_id = await reports.rider_id_of(self.db, telegram_id)
        if rider_id is None:
            return None
        async with self.db.transaction() as conn:
            taken = await ledger_store.take_proposed_payee(conn, rider_id, token)
            if taken is None:
                return None
            await ledger_store.store_payee(conn, Payee(rider_id, *taken, self.now()))
        return PayeeSaved(ledger.mask_name(taken[0]), ledger.mask_account(taken[1]))

    async def cancel_payee(self, telegram_id: int, token: int) -> bool:
        rider_id = await reports.rider_id_of(self.db, telegram_id)
        if rider_id is None:
            return False
        async with self.db.transaction() as conn:
            return await ledger_store.take_proposed_payee(conn, rider_id, token) is not None

    async def current_payee(self, telegram_id: int) -> PayeeSaved | None:
        rider_id = await reports.rider_id_of(self.db, telegram_id)
        found = None if rider_id is None else await ledger.payee(self.db, rider_id)
        if found is None:
            return None
        return PayeeSaved(ledger.mask_name(found.real_name), ledger.mask_account(found.account))

    # --- admins -------------------------------------------------------------------------

    async def reverse(self, reference: str, reason: str) -> ledger.Reversal | str:
        """Take back an approved report's reward, the rider's notice queued with it; a
        problem key when it can't be."""
        report_id = await reports.report_id_of(self.db, reference)
        if report_id is None:
            return "unknown_report"
        if not reason.strip():
            return "reason_needed"
        async with self.db.transaction() as conn:
            reversal = await ledger.record_reversal(
                conn, report_id=report_id, reason=reason.strip(), now=self.now()
            )
            if reversal is None:
                return "not_approved"
            await ledger_store.mark_report_reversed(conn, report_id, self.now())
            contact = await payout_store.telegram_id_of(conn, reversal.rider_id)
            if reversal.created and contact is not None:
                await self.outbox.queue(conn, [self._reversal_notice(contact, reversal)])
        return reversal

    @staticmethod
    def _reversal_notice(telegram_id: int, reversal: ledger.Reversal) -> Notice:
        return Notice(
            telegram_id,
            "rider.reversed_paid" if reversal.already_paid else "rider.reversed",
            {
                "reference": reversal.reference or "-",
                "reason": reversal.reason,
                "amount": Fen(reversal.amount_fen),
                "points": reversal.points,
            },
            once_key=f"rider.reversed:{reversal.report_id}",
        )

    async def scheduled_batches(self) -> list[payouts.BatchOutcome]:
        """Every due or unfinished batch not yet announced (start-up, the cron, retries)."""
        return await payouts.run_due(
            self.db,
            trigger=self.settings.payout_trigger(),
            minimum_fen=self.settings.programme.payout.minimum_fen,
            now=self.now(),
        )

    async def adhoc_batch(self) -> payouts.BatchOutcome:
        return await payouts.run_adhoc(
            self.db,
            minimum_fen=self.settings.programme.payout.minimum_fen,
            now=self.now(),
            timezone=self.settings.timezone,
        )

    async def claim_announcement(self, batch_id: int) -> bool:
        """True for the one caller that may send this batch's files now."""
        now = self.now()
        return await payout_store.claim(
            self.db,
            batch_id,
            now=now,
            token=self.token,
            stale_before=now - ANNOUNCE_CLAIM_STALE_SECONDS,
        )

    async def delivered_to(self, batch_id: int) -> set[int]:
        return await payout_store.delivered_to(self.db, batch_id)

    async def file_delivered(self, batch_id: int, chat_id: int) -> None:
        await payout_store.record_delivery(self.db, batch_id, chat_id, self.now())

    async def announced(self, outcome: payouts.BatchOutcome) -> bool:
        """The files reached finance: announced, with the riders' "on the way" and the
        reminders of riders without payout details queued in the same transaction."""
        assert outcome.batch_id is not None
        batch_id = outcome.batch_id

        async def tell(conn: Connection, paid: tuple[RiderDue, ...]) -> None:
            await self.outbox.queue(conn, _notices("payout.on_the_way", batch_id, paid))
            await self.outbox.queue(
                conn, self._reminders(outcome.missing_payee, f"batch:{batch_id}")
            )

        return await payouts.mark_announced(self.db, batch_id, self.now(), tell)

    async def announce_failed(self, batch_id: int) -> int:
        """Nobody took the files: release the claim for a retry; the attempts so far."""
        return await payout_store.release(self.db, batch_id, self.token)

    async def tell_admins_undelivered(self, period_key: str, batch_id: int) -> None:
        """Once per failing batch: the admins learn that finance has not got its file."""
        await self.outbox.send(
            *(
                Notice(
                    admin,
                    "payout.undelivered",
                    {"batch": period_key},
                    once_key=f"payout.undelivered:{batch_id}:{admin}",
                )
                for admin in sorted(self.settings.admin_ids)
            )
        )

    async def remind_missing(self, missing: tuple[RiderDue, ...]) -> None:
        """/payout found nothing payable: remind riders without payout details, once per
        amount due (a rider is reminded again only when what they are owed changed)."""
        await self.outbox.send(*self._reminders(missing, "due"))

    @staticmethod
    def _reminders(missing: tuple[RiderDue, ...], occasion: str) -> list[Notice]:
        notices = []
        for due in missing:
            if due.telegram_id is None:
                continue
            once = f"{occasion}:{due.rider_id}:{due.amount_fen}"
            notices.append(
                Notice(
                    due.telegram_id,
                    "payout.need_details",
                    {"amount": Fen(due.amount_fen)},
                    once_key=f"payout.need_details:{once}",
                )
            )
            notices.append(payee_prompt(due.telegram_id, once_key=f"payee.ask:{once}"))
        return notices

    async def mark_paid(self, batch_id: int, admin_id: int) -> payouts.PaidOutcome:
        """One guarded UPDATE; the riders' "paid" queued in its transaction."""

        async def tell(conn: Connection, paid: tuple[RiderDue, ...]) -> None:
            await self.outbox.queue(conn, _notices("payout.paid", batch_id, paid))

        return await payouts.mark_paid(self.db, batch_id, admin_id, self.now(), tell)

    async def recent_batches(self, limit: int = 10) -> list[payout_store.BatchRecord]:
        return await payout_store.recent_batches(self.db, limit)

    async def batch_files(self, period_key: str) -> payouts.BatchOutcome | None:
        """A batch's stored files (never re-rendered), for a copy; None if unknown or open."""
        async with self.db.transaction() as conn:
            batch = await payout_store.batch_by_key(conn, period_key)
        if batch is None or batch.status == "open":
            return None
        return await payouts.stored_outcome(self.db, batch.id)

    async def contact(self, rider_id: int) -> tuple[int, str | None] | None:
        """(Telegram id, chosen language) of a rider who can still be told things."""
        row = await reports.telegram_contact(self.db, rider_id)
        if row is None or row["telegram_id"] is None:
            return None
        return int(row["telegram_id"]), row["language"]

    async def audit(self) -> list[str]:
        return await audit(self.db)
