"""Moderators' decisions: who may decide, exactly once, and what the card shows.

Every decision is one guarded transition (`UPDATE ... WHERE status = 'pending'`) inside a
write transaction; the changed-row count decides who won, so two presses at once, a double
tap or a redelivered update make one decision. Approval credits the ledger in the same
transaction. Approvals at or above `second_confirmation_fen` are first *proposed*, and count
only when a different moderator confirms.

    pending ──approve──► approved          pending ──ask──► needs_info ──rider answers──► pending
       │ ──reject────► rejected                                  └──no answer in time──► pending
       └ ──duplicate─► duplicate

The rider's notice of each outcome, the reminder digests, escalations and the riders' notices
of a missed promise are queued in the outbox in the same transaction as the change they
report, so a crash can lose neither the change nor its notice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from services import budget as budgets
from services import ledger
from services.budget import BudgetUse
from services.cases import Cases
from services.clock import Clock, utc_now
from services.geo import bounding_box, haversine_m
from services.money import payee_prompt
from services.outbox import At, Fen, Msg, Notice, Outbox, Params
from services.photos import LOOKALIKE_DISTANCE, hamming
from settings import Programme, Settings
from storage import ledger as ledger_store
from storage import moderation as store
from storage.db import Connection, Database, Row

REJECT_REASONS = ("not_true", "cannot_verify", "out_of_scope", "duplicate", "other")
LOOKALIKE_WINDOW = timedelta(days=30)
NEARBY_WINDOW = timedelta(hours=24)


class Problem(StrEnum):
    """Why a moderator's action changed nothing (`moderation.refused.<value>` in locales)."""

    NOT_MODERATOR = "not_moderator"
    OWN_REPORT = "own_report"
    ALREADY_DECIDED = "already_decided"
    SAME_MODERATOR = "same_moderator"
    UNKNOWN_REPORT = "unknown_report"
    BAD_CHOICE = "bad_choice"
    PROPOSAL_VOID = "proposal_void"
    OVER_BUDGET = "over_budget"  # past the month's reward budget: an admin must approve it


@dataclass(frozen=True)
class Declined:
    """A moderator's action that changed nothing, and why."""

    problem: Problem
    decided_by: int | None = None
    status: str | None = None


@dataclass(frozen=True)
class Card:
    """What a moderator needs to judge a report, and its state."""

    report_id: int
    reference: str
    status: str
    category: str | None
    submitted_at: datetime
    deadline_at: datetime
    latitude: float | None
    longitude: float | None
    photo_distance_m: float | None
    description: str | None
    track: tuple[int, int, int]  # approved, rejected, submitted
    photo_count: int
    not_fresh: bool
    mismatch: bool
    lookalikes: tuple[str, ...]  # references of reports with similar-looking photos
    nearby: tuple[tuple[int, str], ...]  # (id, reference) of reports close by, last 24 h
    rider_telegram_id: int | None
    rider_language: str | None
    decided_by: int | None
    decided_at: datetime | None
    reward_fen: int | None
    points: int | None
    reject_reason: str | None
    duplicate_reference: str | None
    question: str | None
    answer: str | None
    proposed_fen: int | None
    proposed_by: int | None
    card_chat_id: int | None
    card_message_id: int | None
    budget: BudgetUse | None = None  # this month's rewards against the budget, if one is set


@dataclass(frozen=True)
class Decided:
    """A change a moderator (or the rider's answer) made; `card` is the report afterwards."""

    action: str  # approve, propose, reject, duplicate, ask, answer
    card: Card


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def _dt(seconds: int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def rider_notices(action: str, report: Row) -> list[Notice]:
    """What the rider is told of a decision on their report (nothing for a proposal)."""
    chat_id = report["rider_telegram_id"]
    if chat_id is None or action in ("propose", "answer"):
        return []
    reference = report["reference"]
    once = f"decision:{report['id']}:{report['status']}:{report['updated_at'] or ''}"
    if report["status"] == "approved":
        params = {"reference": reference, "amount": Fen(report["reward_fen"] or 0)}
        params["points"] = report["points"] or 0
        return [Notice(chat_id, "rider.approved", params, once_key=once)]
    if report["status"] == "rejected":
        params = {"reference": reference, "reason": Msg(f"reject.{report['reject_reason']}")}
        return [Notice(chat_id, "rider.rejected", params, once_key=once)]
    if report["status"] == "duplicate":
        params = {"reference": reference, "original": report["duplicate_reference"] or "-"}
        return [Notice(chat_id, "rider.duplicate", params, once_key=once)]
    params = {"reference": reference, "question": report["question"] or ""}
    return [Notice(chat_id, "rider.needs_info", params, once_key=once)]


class Moderation:
    """Moderators' side of the workflow; Telegram ids throughout."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        outbox: Outbox,
        clock: Clock = utc_now,
        cases: Cases | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.programme = settings.programme
        self.outbox = outbox
        self.clock = clock
        self.cases = cases  # approved reports become cases (即时办) when departments exist

    # --- who may act --------------------------------------------------------------------

    async def is_moderator(self, telegram_id: int) -> bool:
        settings = self.settings
        if telegram_id in settings.moderator_ids or telegram_id in settings.admin_ids:
            return True
        return await store.is_added_moderator(self.db, telegram_id)

    def is_admin(self, telegram_id: int) -> bool:
        return telegram_id in self.settings.admin_ids

    async def moderators(self) -> tuple[frozenset[int], list[int]]:
        """(from the settings, added with /mods add)."""
        configured = self.settings.moderator_ids | self.settings.admin_ids
        return configured, await store.added_moderators(self.db)

    async def add_moderator(self, telegram_id: int, admin_id: int) -> bool:
        return await store.add_moderator(self.db, telegram_id, admin_id, _ts(self.clock()))

    async def remove_moderator(self, telegram_id: int) -> tuple[bool, list[int]]:
        """(removed, reports whose proposal by them was voided: their cards need refreshing)."""
        return await store.remove_moderator(self.db, telegram_id)

    # --- the card -----------------------------------------------------------------------

    async def card(self, report_id: int) -> Card | None:
        async with self.db.transaction() as conn:
            row = await store.report(conn, report_id)
            return None if row is None else await self._card(conn, row)

    async def _card(self, conn: Connection, row: Row) -> Card:
        photos = await store.photo_facts(conn, row["id"])
        submitted = _ts(self.clock()) if row["submitted_at"] is None else row["submitted_at"]
        lookalikes: list[str] = []
        others = await store.phashes_since(
            conn, submitted - int(LOOKALIKE_WINDOW.total_seconds()), row["id"]
        )
        for photo in photos:
            for other in others:
                close = hamming(photo["phash"], other["phash"]) <= LOOKALIKE_DISTANCE
                if close and other["reference"] not in lookalikes:
                    lookalikes.append(other["reference"])
        nearby: list[tuple[int, str]] = []
        if row["latitude"] is not None:
            radius = self.programme.duplicate_radius_m
            box = bounding_box(row["latitude"], row["longitude"], radius)
            candidates = await store.reports_in_box(
                conn,
                (box.min_lat, box.min_lon, box.max_lat, box.max_lon),
                submitted - int(NEARBY_WINDOW.total_seconds()),
                row["id"],
            )
            nearby = [
                (c["id"], c["reference"])
                for c in candidates
                if haversine_m(row["latitude"], row["longitude"], c["latitude"], c["longitude"])
                <= radius
            ]
        distance = row["photo_distance_m"]
        return Card(
            report_id=row["id"],
            reference=row["reference"],
            status=row["status"],
            category=row["category"],
            submitted_at=datetime.fromtimestamp(submitted, UTC),
            deadline_at=datetime.fromtimestamp(row["deadline_at"] or submitted, UTC),
            latitude=row["latitude"],
            longitude=row["longitude"],
            photo_distance_m=distance,
            description=row["description"],
            track=await store.track_record(conn, row["rider_id"]),
            photo_count=len(photos),
            not_fresh=any(p["not_fresh"] for p in photos),
            mismatch=distance is not None and distance > self.programme.location_mismatch_m,
            lookalikes=tuple(lookalikes),
            nearby=tuple(nearby),
            rider_telegram_id=row["rider_telegram_id"],
            rider_language=row["rider_language"],
            decided_by=row["decided_by"],
            decided_at=_dt(row["decided_at"]),
            reward_fen=row["reward_fen"],
            points=row["points"],
            reject_reason=row["reject_reason"],
            duplicate_reference=row["duplicate_reference"],
            question=row["question"],
            answer=row["answer"],
            proposed_fen=row["proposed_fen"],
            proposed_by=row["proposed_by"],
            card_chat_id=row["card_chat_id"],
            card_message_id=row["card_message_id"],
            budget=await budgets.use(conn, self.programme, self.settings.timezone, self.clock()),
        )

    async def photo(self, report_id: int, position: int) -> tuple[bytes | None, str | None]:
        """(evidence JPEG, Telegram file id of an earlier upload) of one photo."""
        async with self.db.transaction() as conn:
            row = await store.evidence(conn, report_id, position)
        return (None, None) if row is None else (row["evidence"], row["evidence_file_id"])

    async def remember_photo_upload(self, report_id: int, position: int, file_id: str) -> None:
        async with self.db.transaction() as conn:
            await store.remember_evidence_file(conn, report_id, position, file_id)

    async def cards_to_send(self, limit: int = 20) -> list[int]:
        urgent = [c.key for c in self.programme.categories if c.urgent]
        return await store.cards_to_send(self.db, limit, urgent)

    async def begin_card(self, report_id: int) -> bool:
        """A card is about to be sent; True if an earlier send may have reached the chat
        (the process died mid-send, or the connection dropped before Telegram answered)."""
        async with self.db.transaction() as conn:
            return await store.begin_card(conn, report_id, _ts(self.clock()))

    async def card_refused(self, report_id: int) -> None:
        """Telegram answered the send with an error, so no copy of it is in the chat."""
        async with self.db.transaction() as conn:
            await store.card_refused(conn, report_id)

    async def card_sent(self, report_id: int, chat_id: int, message_id: int) -> None:
        async with self.db.transaction() as conn:
            await store.record_card(conn, report_id, chat_id, message_id)

    async def next_pending(self, after: Card | None = None) -> Card | None:
        """The oldest pending report (after `after`), for /queue."""
        key = (_ts(after.submitted_at), after.report_id) if after else (0, 0)
        report_id = await store.pending_oldest_first(self.db, *key)
        return None if report_id is None else await self.card(report_id)

    # --- decisions ----------------------------------------------------------------------

    async def approve(
        self, report_id: int, moderator_id: int, amount_fen: int
    ) -> Decided | Declined:
        if amount_fen not in self.programme.reward_tiers_fen:
            return Declined(Problem.BAD_CHOICE)
        if amount_fen >= self.programme.second_confirmation_fen:
            return await self._decide(report_id, moderator_id, "propose", amount_fen)
        return await self._decide(report_id, moderator_id, "approve", amount_fen)

    async def confirm(self, report_id: int, moderator_id: int) -> Decided | Declined:
        """A second, different moderator confirms a proposed large approval.

        A proposal counts only while its moderator may still decide: one by a moderator
        removed since is voided, and the amount must be chosen again.
        """
        card = await self.card(report_id)
        proposer = None if card is None else card.proposed_by
        if proposer is not None and not await self.is_moderator(proposer):
            async with self.db.transaction() as conn:
                await store.void_proposals(conn, proposer)
            return Declined(Problem.PROPOSAL_VOID)
        return await self._decide(report_id, moderator_id, "confirm", None)

    async def reject(self, report_id: int, moderator_id: int, reason: str) -> Decided | Declined:
        if reason not in REJECT_REASONS:
            return Declined(Problem.BAD_CHOICE)
        return await self._decide(report_id, moderator_id, "reject", None, reason)

    async def mark_duplicate(
        self, report_id: int, moderator_id: int, original_id: int
    ) -> Decided | Declined:
        if original_id == report_id:
            return Declined(Problem.BAD_CHOICE)
        return await self._decide(report_id, moderator_id, "duplicate", None, str(original_id))

    async def ask(self, reference: str, moderator_id: int, question: str) -> Decided | Declined:
        async with self.db.transaction() as conn:
            report_id = await store.report_by_reference(conn, reference)
        if report_id is None:
            return Declined(Problem.UNKNOWN_REPORT)
        return await self._decide(report_id, moderator_id, "ask", None, question.strip())

    async def _decide(
        self,
        report_id: int,
        moderator_id: int,
        action: str,
        amount_fen: int | None,
        detail: str | None = None,
    ) -> Decided | Declined:
        if not await self.is_moderator(moderator_id):
            return Declined(Problem.NOT_MODERATOR)
        now = _ts(self.clock())
        async with self.db.transaction() as conn:
            row = await store.report(conn, report_id)
            if row is None:
                return Declined(Problem.UNKNOWN_REPORT)
            if row["rider_telegram_id"] == moderator_id:
                return Declined(Problem.OWN_REPORT)
            if row["status"] != "pending":
                return Declined(Problem.ALREADY_DECIDED, row["decided_by"], row["status"])
            done = await self._apply(conn, row, moderator_id, action, amount_fen, detail, now)
            if isinstance(done, Declined):
                return done
            changed = await store.report(conn, report_id)
            assert changed is not None
            await self.outbox.queue(conn, rider_notices(done, changed))
            rider, approved = changed["rider_telegram_id"], changed["status"] == "approved"
            if approved and rider and not await ledger_store.has_payee(conn, changed["rider_id"]):
                await self.outbox.queue(conn, [payee_prompt(rider)])  # a first reward: ask
            return Decided(action=done, card=await self._card(conn, changed))

    async def _apply(
        self,
        conn: Connection,
        row: Row,
        moderator_id: int,
        action: str,
        amount_fen: int | None,
        detail: str | None,
        now: int,
    ) -> str | Declined:
        """Carry out one decision on a pending report; returns the action recorded."""
        report_id = row["id"]
        decided = {"decided_by": moderator_id, "decided_at": now, "updated_at": now}
        if action == "propose":
            assert amount_fen is not None
            if row["proposed_by"] is not None:
                return Declined(Problem.ALREADY_DECIDED, row["proposed_by"], "proposed")
            if not await store.propose(conn, report_id, amount_fen, moderator_id):
                return Declined(Problem.ALREADY_DECIDED, row["decided_by"], row["status"])
            await store.record_decision(
                conn, report_id, moderator_id, "propose", "pending", "pending", now, amount_fen
            )
            return "propose"
        if action == "confirm":
            if row["proposed_by"] is None:
                return Declined(Problem.BAD_CHOICE)
            if row["proposed_by"] == moderator_id:
                return Declined(Problem.SAME_MODERATOR)
            action, amount_fen = "approve", row["proposed_fen"]
        if action == "approve":
            assert amount_fen is not None
            moment = datetime.fromtimestamp(now, UTC)
            spent = await budgets.use(conn, self.programme, self.settings.timezone, moment)
            if spent and spent.exceeded_by(amount_fen) and not self.is_admin(moderator_id):
                return Declined(Problem.OVER_BUDGET)
            points = ledger.points_for(amount_fen, self.programme)
            if not await store.set_status(
                conn,
                report_id,
                "pending",
                "approved",
                reward_fen=amount_fen,
                points=points,
                **decided,
            ):
                return Declined(Problem.ALREADY_DECIDED, row["decided_by"], row["status"])
            await ledger.credit_reward(
                conn,
                report_id=report_id,
                rider_id=row["rider_id"],
                amount_fen=amount_fen,
                points=points,
                now=now,
            )
            if self.cases is not None:
                await self.cases.open(conn, row, now)
            if spent is not None:
                after = await budgets.use(conn, self.programme, self.settings.timezone, moment)
                assert after is not None
                await self.outbox.queue(conn, budgets.warnings(self.settings, spent, after))
            detail = f"confirmed proposal by {row['proposed_by']}" if row["proposed_by"] else None
        elif action == "reject":
            if not await store.set_status(
                conn, report_id, "pending", "rejected", reject_reason=detail, **decided
            ):
                return Declined(Problem.ALREADY_DECIDED, row["decided_by"], row["status"])
        elif action == "duplicate":
            assert detail is not None
            original = await store.report(conn, int(detail))
            if original is None:
                return Declined(Problem.BAD_CHOICE)
            if not await store.set_status(
                conn, report_id, "pending", "duplicate", duplicate_of=original["id"], **decided
            ):
                return Declined(Problem.ALREADY_DECIDED, row["decided_by"], row["status"])
            detail = original["reference"]
        elif action == "ask":
            if not await store.set_status(
                conn,
                report_id,
                "pending",
                "needs_info",
                question=detail,
                asked_at=now,
                question_reminded_at=None,
                updated_at=now,
            ):
                return Declined(Problem.ALREADY_DECIDED, row["decided_by"], row["status"])
        else:
            raise ValueError(action)
        new_status = {"approve": "approved", "reject": "rejected", "duplicate": "duplicate"}
        await store.record_decision(
            conn,
            report_id,
            moderator_id,
            action,
            "pending",
            new_status.get(action, "needs_info"),
            now,
            amount_fen,
            detail,
        )
        return action

    # --- the rider's answer -------------------------------------------------------------

    async def open_question(self, rider_telegram_id: int) -> int | None:
        """The rider's report waiting for their answer, if any."""
        async with self.db.transaction() as conn:
            return await store.open_question(conn, rider_telegram_id)

    async def answer(self, rider_telegram_id: int, text: str) -> Decided | None:
        """Attach the rider's answer and put the report back in the moderators' queue."""
        now = _ts(self.clock())
        async with self.db.transaction() as conn:
            report_id = await store.open_question(conn, rider_telegram_id)
            if report_id is None:
                return None
            row = await store.report(conn, report_id)
            assert row is not None
            answer = text if not row["answer"] else f"{row['answer']}\n{text}"
            if not await store.set_status(
                conn, report_id, "needs_info", "pending", answer=answer, updated_at=now
            ):
                return None
            await store.record_decision(
                conn,
                report_id,
                rider_telegram_id,
                "answer",
                "needs_info",
                "pending",
                now,
                detail=text,
            )
            changed = await store.report(conn, report_id)
            assert changed is not None
            return Decided(action="answer", card=await self._card(conn, changed))

    # --- the 24-hour promise ------------------------------------------------------------

    async def promise_check(self) -> PromiseCheck:
        """Queue what keeps the 24-hour promise, each in the transaction that records it.

        A digest goes to the moderators when a report has newly waited longer than
        `digest_after_hours`, and lists every report waiting that long, so each digest shows
        the whole backlog and nothing is repeated without news. Each report is escalated to
        the admins once, and its rider told once when the deadline passes. A question the
        rider leaves unanswered is reminded once, and after `question_expiry_hours` the report
        returns to the moderators to decide on what they have.
        """
        now = self.clock()
        programme, settings = self.programme, self.settings
        digest_before = now - timedelta(hours=programme.digest_after_hours)
        escalate_before = _ts(now - timedelta(hours=programme.escalate_after_hours))
        remind_before = _ts(now - timedelta(hours=programme.question_remind_hours))
        expire_before = _ts(now - timedelta(hours=programme.question_expiry_hours))
        async with self.db.transaction() as conn:
            waiting = await store.waiting_since(conn, _ts(digest_before))
            fresh = [r["id"] for r in waiting if r["digest_at"] is None]
            escalate = [
                r for r in waiting if r["submitted_at"] <= escalate_before and not r["escalated_at"]
            ]
            breached = [r for r in waiting if r["deadline_at"] <= _ts(now) and not r["breached_at"]]
            notices: list[Notice] = []
            if fresh and settings.moderator_chat_id is not None:
                notices.append(digest_notice(settings.moderator_chat_id, waiting, programme))
            if escalate:
                references = _listed([r["reference"] for r in escalate])
                params: Params = {
                    "references": references,
                    "hours": programme.escalate_after_hours,
                    "deadline": programme.review_deadline_hours,
                }
                notices += [
                    Notice(admin, "promise.escalation", dict(params))
                    for admin in sorted(settings.admin_ids)
                ]
            notices += [
                Notice(r["rider_telegram_id"], "promise.breach", {"reference": r["reference"]})
                for r in breached
                if r["rider_telegram_id"] is not None
            ]
            questions = await store.open_questions(conn, asked_before=remind_before)
            remind = [q for q in questions if not q["question_reminded_at"]]
            expired = [q for q in questions if q["asked_at"] <= expire_before]
            notices += [
                Notice(
                    q["rider_telegram_id"],
                    "rider.question_reminder",
                    {"reference": q["reference"], "question": q["question"] or ""},
                )
                for q in remind
                if q["rider_telegram_id"] is not None and q not in expired
            ]
            returned = []
            for q in expired:
                if await store.set_status(
                    conn, q["id"], "needs_info", "pending", updated_at=_ts(now)
                ):
                    returned.append(q["id"])
                    if q["rider_telegram_id"] is not None:
                        notices.append(
                            Notice(
                                q["rider_telegram_id"],
                                "rider.question_expired",
                                {
                                    "reference": q["reference"],
                                    "hours": programme.question_expiry_hours,
                                },
                            )
                        )
            await store.mark(conn, "digest_at", fresh, _ts(now))
            await store.mark(conn, "escalated_at", [r["id"] for r in escalate], _ts(now))
            await store.mark(conn, "breached_at", [r["id"] for r in breached], _ts(now))
            await store.mark(conn, "question_reminded_at", [q["id"] for q in remind], _ts(now))
            await self.outbox.queue(conn, notices)
        return PromiseCheck(
            digest=len(waiting) if fresh else 0,
            escalated=len(escalate),
            breached=len(breached),
            reminded=len(remind),
            returned=tuple(returned),
        )


DIGEST_LINES_SHOWN = 100
REFERENCES_SHOWN = 30


@dataclass(frozen=True)
class PromiseCheck:
    """What one promise check queued; `returned`: reports whose question expired."""

    digest: int
    escalated: int
    breached: int
    reminded: int
    returned: tuple[int, ...]


def digest_notice(chat_id: int, waiting: Sequence[Row], programme: Programme) -> Notice:
    """The backlog digest: a line per report, the oldest first, summarised past a hundred."""
    lines: list[tuple[str, Params]] = [
        (
            "promise.digest_line",
            {"reference": row["reference"], "deadline": At(row["deadline_at"])},
        )
        for row in waiting[:DIGEST_LINES_SHOWN]
    ]
    if len(waiting) > DIGEST_LINES_SHOWN:
        lines.append(("promise.digest_more", {"count": len(waiting) - DIGEST_LINES_SHOWN}))
    params: Params = {"count": len(waiting), "hours": programme.digest_after_hours}
    return Notice(chat_id, "promise.digest", params, lines=tuple(lines))


def _listed(references: list[str]) -> str:
    """References for one line: the first few, and how many more."""
    more = len(references) - REFERENCES_SHOWN
    shown = ", ".join(references[:REFERENCES_SHOWN])
    return f"{shown} (+{more})" if more > 0 else shown
