"""Moderators' decisions: who may decide, exactly once, and what the card shows.

`services.reporting.REPORT_TRANSITIONS` says which (status, action, who) moves a report and
where to; `Moderation.act` asks it, then runs the action's own step (`_STEPS`: the ledger
credit and the case of an approval, the question of an ask, ...). Every move is one guarded
`UPDATE ... WHERE id = ? AND status = ?` inside a write transaction; the changed-row count
decides who won, so two presses at once, a double tap or a redelivered update make one
decision. Approvals at or above `second_confirmation_fen` are first *proposed*, and count
only when a different moderator confirms.

    pending ──approve / confirm──► approved      pending ──ask──► needs_info ──answer──► pending
       │ ──reject────► rejected                                       └──return (clock)──► pending
       └ ──duplicate─► duplicate                  pending ──propose──► pending (proposed)

The rider's notice of each outcome, the reminder digests, escalations and the riders' notices
of a missed promise are queued in the outbox in the same transaction as the change they
report, so a crash can lose neither the change nor its notice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from services import budget as budgets
from services import ledger
from services.budget import BudgetUse
from services.cases import Cases
from services.clock import Now, utc_now
from services.geo import bounding_box, haversine_m
from services.money import payee_prompt
from services.outbox import At, Fen, Msg, Notice, Outbox, Params
from services.photos import LOOKALIKE_DISTANCE, hamming
from services.refusal import Refused
from services.reporting import (
    OPEN,
    REPORT_TRANSITIONS,
    ReportAction,
    ReportRole,
    ReportStatus,
    next_status,
)
from settings import Programme, Settings
from storage import ledger as ledger_store
from storage import moderation as store
from storage import reports as report_store
from storage import users
from storage.db import Connection, Database, Row

REJECT_REASONS = ("not_true", "cannot_verify", "out_of_scope", "duplicate", "other")
LOOKALIKE_WINDOW = timedelta(days=30)
NEARBY_WINDOW = timedelta(hours=24)
FOLLOW_UP_SECONDS = 600  # a photo this soon after a rider's answer goes with the answer
A, R, S = ReportAction, ReportRole, ReportStatus
MODERATOR_ACTIONS = frozenset({A.APPROVE, A.PROPOSE, A.CONFIRM, A.REJECT, A.DUPLICATE, A.ASK})
"""What only moderators may do, and never to their own report."""


class DecisionRefusal(StrEnum):
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
    card_copy: bool = False  # the card in the chat says an earlier copy may be above it
    budget: BudgetUse | None = None  # this month's rewards against the budget, if one is set
    town: str | None = None  # 乡镇/街道 of the location (None: 未分区, or no towns file)
    grid: str | None = None
    venue_name: str | None = None
    names: dict[int, str] = field(default_factory=dict)  # moderator id -> name, those known
    views: tuple[tuple[int, int], ...] = ()  # private copies to show decisions on (chat, message)
    voices: tuple[tuple[str | None, int], ...] = ()  # the rider's voice notes: (file id, seconds)

    def who(self, telegram_id: int | None) -> str:
        """A moderator as the card names them: their name, else their number."""
        if telegram_id is None:
            return "-"
        return self.names.get(telegram_id) or str(telegram_id)


@dataclass(frozen=True)
class Decided:
    """A change a moderator (or the rider's answer) made; `card` is the report afterwards."""

    action: str  # approve, propose, reject, duplicate, ask, answer
    card: Card


@dataclass(frozen=True)
class _Move:
    """One allowed action under way: the report as read, who acts, and where it goes."""

    conn: Connection
    row: Row
    actor: int
    new: ReportStatus
    amount_fen: int | None
    detail: str | None
    now: int

    @property
    def decided(self) -> dict[str, object]:
        """The columns a moderator's decision sets."""
        return {"decided_by": self.actor, "decided_at": self.now, "updated_at": self.now}


@dataclass(frozen=True)
class _Done:
    """What an action's step did, for the decisions table."""

    action: ReportAction
    amount_fen: int | None = None
    detail: str | None = None

    @property
    def record(self) -> tuple[int | None, str | None]:
        return self.amount_fen, self.detail


def _lost(row: Row) -> Refused[DecisionRefusal]:
    """The guarded move found the report moved on (someone else decided first)."""
    return Refused(
        DecisionRefusal.ALREADY_DECIDED, state=row["status"], decided_by=row["decided_by"]
    )


def _refusal(row: Row, action: ReportAction) -> Refused[DecisionRefusal]:
    """Why the table refused: the report is past this action, or it is not this actor's."""
    status = row["status"]
    if any(s == status and a == action for (s, a, _) in REPORT_TRANSITIONS):
        return Refused(DecisionRefusal.BAD_CHOICE)
    return _lost(row)


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
        clock: Now = utc_now,
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
        lookalikes = await self._lookalikes(conn, row["id"], photos, submitted)
        nearby = await self._nearby(conn, row, submitted)
        distance = row["photo_distance_m"]
        acted = [who for who in (row["decided_by"], row["proposed_by"]) if who is not None]
        names = {key: name for key, (name, _) in (await users.names(conn, acted)).items()}
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
            mismatch=distance is not None and distance > self.programme.reports.location_mismatch_m,
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
            card_copy=bool(row["card_copy"]),
            budget=await budgets.use(conn, self.programme, self.settings.timezone, self.clock()),
            town=row["town"],
            grid=row["grid"],
            venue_name=row["venue_name"],
            names=names,
            views=tuple(await store.card_views(conn, row["id"])),
            voices=tuple(await report_store.voices_of(conn, row["id"])),
        )

    async def _lookalikes(
        self, conn: Connection, report_id: int, photos: Sequence[Row], submitted: int
    ) -> list[str]:
        """References of recent reports with a photo that looks like one of these."""
        lookalikes: list[str] = []
        others = await store.phashes_since(
            conn, submitted - int(LOOKALIKE_WINDOW.total_seconds()), report_id
        )
        for photo in photos:
            for other in others:
                close = hamming(photo["phash"], other["phash"]) <= LOOKALIKE_DISTANCE
                if close and other["reference"] not in lookalikes:
                    lookalikes.append(other["reference"])
        return lookalikes

    async def _nearby(self, conn: Connection, row: Row, submitted: int) -> list[tuple[int, str]]:
        """(id, reference) of reports close by in the day before this one."""
        if row["latitude"] is None:
            return []
        radius = self.programme.review.duplicate_radius_m
        box = bounding_box(row["latitude"], row["longitude"], radius)
        candidates = await store.reports_in_box(
            conn,
            (box.min_lat, box.min_lon, box.max_lat, box.max_lon),
            submitted - int(NEARBY_WINDOW.total_seconds()),
            row["id"],
        )
        return [
            (c["id"], c["reference"])
            for c in candidates
            if haversine_m(row["latitude"], row["longitude"], c["latitude"], c["longitude"])
            <= radius
        ]

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
        return await store.cards_to_send(self.db, limit, sorted(OPEN), urgent)

    async def begin_card(self, report_id: int) -> bool:
        """A card is about to be sent; True if an earlier send may have reached the chat
        (the process died mid-send, or the connection dropped before Telegram answered)."""
        async with self.db.transaction() as conn:
            return await store.begin_card(conn, report_id, _ts(self.clock()))

    async def card_refused(self, report_id: int) -> None:
        """Telegram answered the send with an error, so no copy of it is in the chat."""
        async with self.db.transaction() as conn:
            await store.card_refused(conn, report_id)

    async def card_sent(
        self, report_id: int, chat_id: int, message_id: int, copy: bool = False
    ) -> None:
        async with self.db.transaction() as conn:
            await store.record_card(conn, report_id, chat_id, message_id, copy)

    async def next_pending(self, after: Card | None = None) -> Card | None:
        """The oldest pending report (after `after`), for /queue."""
        key = (_ts(after.submitted_at), after.report_id) if after else (0, 0)
        report_id = await store.pending_oldest_first(self.db, *key)
        return None if report_id is None else await self.card(report_id)

    # --- decisions ----------------------------------------------------------------------

    async def approve(
        self, report_id: int, moderator_id: int, amount_fen: int
    ) -> Decided | Refused[DecisionRefusal]:
        if amount_fen not in self.programme.review.tiers_fen:
            return Refused(DecisionRefusal.BAD_CHOICE)
        if amount_fen >= self.programme.review.second_confirmation_fen:
            return await self.act(report_id, A.PROPOSE, moderator_id, amount_fen=amount_fen)
        return await self.act(report_id, A.APPROVE, moderator_id, amount_fen=amount_fen)

    async def confirm(
        self, report_id: int, moderator_id: int
    ) -> Decided | Refused[DecisionRefusal]:
        """A second, different moderator confirms a proposed large approval.

        A proposal counts only while its moderator may still decide: one by a moderator
        removed since is voided, and the amount must be chosen again.
        """
        card = await self.card(report_id)
        proposer = None if card is None else card.proposed_by
        if proposer is not None and not await self.is_moderator(proposer):
            async with self.db.transaction() as conn:
                await store.void_proposals(conn, proposer)
            return Refused(DecisionRefusal.PROPOSAL_VOID)
        return await self.act(report_id, A.CONFIRM, moderator_id)

    async def reject(
        self, report_id: int, moderator_id: int, reason: str
    ) -> Decided | Refused[DecisionRefusal]:
        if reason not in REJECT_REASONS:
            return Refused(DecisionRefusal.BAD_CHOICE)
        return await self.act(report_id, A.REJECT, moderator_id, detail=reason)

    async def mark_duplicate(
        self, report_id: int, moderator_id: int, original_id: int
    ) -> Decided | Refused[DecisionRefusal]:
        if original_id == report_id:
            return Refused(DecisionRefusal.BAD_CHOICE)
        return await self.act(report_id, A.DUPLICATE, moderator_id, detail=str(original_id))

    async def ask(
        self, reference: str, moderator_id: int, question: str
    ) -> Decided | Refused[DecisionRefusal]:
        async with self.db.transaction() as conn:
            report_id = await store.report_by_reference(conn, reference)
        if report_id is None:
            return Refused(DecisionRefusal.UNKNOWN_REPORT)
        return await self.act(report_id, A.ASK, moderator_id, detail=question.strip())

    async def act(
        self,
        report_id: int,
        action: ReportAction,
        actor: int | None,
        *,
        amount_fen: int | None = None,
        detail: str | None = None,
    ) -> Decided | Refused[DecisionRefusal]:
        """Carry out one decision (or the rider's answer) by `actor` (None: the clock).

        `REPORT_TRANSITIONS` decides whether it is allowed and where the report goes; the
        action's own step (`_STEPS`) does what it does besides, in the same transaction.
        """
        step = _STEPS[action]  # KeyError: not an action the moderators' side carries out
        moderator = actor is not None and await self.is_moderator(actor)
        if action in MODERATOR_ACTIONS and not moderator:
            return Refused(DecisionRefusal.NOT_MODERATOR)
        now = _ts(self.clock())
        async with self.db.transaction() as conn:
            row = await store.report(conn, report_id)
            if row is None:
                return Refused(DecisionRefusal.UNKNOWN_REPORT)
            if action in MODERATOR_ACTIONS and row["rider_telegram_id"] == actor:
                return Refused(DecisionRefusal.OWN_REPORT)
            roles = self._roles(actor, moderator, row)
            new = next_status(row["status"], action, roles)
            if new is None:
                return _refusal(row, action)
            assert actor is not None  # the clock decides nothing here
            move = _Move(conn, row, actor, new, amount_fen, detail, now)
            done = await step(self, move)
            if isinstance(done, Refused):
                return done
            await store.record_decision(
                conn, report_id, actor, done.action, row["status"], new, now, *done.record
            )
            changed = await store.report(conn, report_id)
            assert changed is not None
            await self.outbox.queue(conn, rider_notices(done.action, changed))
            if done.action == A.ANSWER:
                await self.outbox.queue(
                    conn, self._to_card_chat(changed, "moderation.answer_arrived")
                )
            rider, approved = changed["rider_telegram_id"], changed["status"] == "approved"
            if approved and self.cases is not None:  # told "verified" first, then "dispatched"
                await self.cases.open(conn, changed, now)
            if approved and rider and not await ledger_store.has_payee(conn, changed["rider_id"]):
                await self.outbox.queue(conn, [payee_prompt(rider)])  # a first reward: ask
            return Decided(action=done.action, card=await self._card(conn, changed))

    def _to_card_chat(self, report: Row, key: str) -> list[Notice]:
        """A new message replying to the card in the moderators' chat, which the card's edit
        alone would not make: an edit notifies nobody. The rider's words and photos stay on
        the card only, so /delete has one place to erase them from."""
        chat = self.settings.moderator_chat_id
        if chat is None:
            return []
        on_card = report["card_chat_id"] == chat and report["card_message_id"]
        params: Params = {"reference": report["reference"]}
        return [
            Notice(
                chat,
                key,
                params,
                reply_to=int(report["card_message_id"]) if on_card else None,
            )
        ]

    def _roles(self, actor: int | None, moderator: bool, row: Row) -> set[ReportRole]:
        """Who `actor` is for this report: its rider, a moderator, an admin; None: the clock."""
        if actor is None:
            return {R.CLOCK}
        roles = {R.MODERATOR} if moderator else set()
        if self.is_admin(actor):
            roles |= {R.ADMIN, R.MODERATOR}
        if row["rider_telegram_id"] == actor:
            roles.add(R.RIDER)
        return roles

    async def _move(self, move: _Move, **fields: object) -> bool:
        """The report's guarded move to the table's status, with `fields`; False: lost."""
        row = move.row
        return await store.set_status(move.conn, row["id"], row["status"], move.new, **fields)

    # Each action's own step: the guarded move with its fields, and what follows from it.

    async def _approve(self, move: _Move) -> _Done | Refused[DecisionRefusal]:
        conn, row, now, amount_fen = move.conn, move.row, move.now, move.amount_fen
        assert amount_fen is not None
        moment = datetime.fromtimestamp(now, UTC)
        spent = await budgets.use(conn, self.programme, self.settings.timezone, moment)
        if spent and spent.exceeded_by(amount_fen) and not self.is_admin(move.actor):
            return Refused(DecisionRefusal.OVER_BUDGET)
        points = ledger.points_for(amount_fen, self.programme)
        if not await self._move(move, reward_fen=amount_fen, points=points, **move.decided):
            return _lost(row)
        await ledger.credit_reward(
            conn,
            report_id=row["id"],
            rider_id=row["rider_id"],
            amount_fen=amount_fen,
            points=points,
            now=now,
        )
        if spent is not None:
            after = await budgets.use(conn, self.programme, self.settings.timezone, moment)
            assert after is not None
            await self.outbox.queue(conn, budgets.warnings(self.settings, spent, after))
        detail = f"confirmed proposal by {row['proposed_by']}" if row["proposed_by"] else None
        return _Done(A.APPROVE, amount_fen, detail)

    async def _confirm(self, move: _Move) -> _Done | Refused[DecisionRefusal]:
        """The second moderator's approval of a proposal: an approval at the proposed amount."""
        if move.row["proposed_by"] is None:
            return Refused(DecisionRefusal.BAD_CHOICE)
        if move.row["proposed_by"] == move.actor:
            return Refused(DecisionRefusal.SAME_MODERATOR)
        return await self._approve(replace(move, amount_fen=move.row["proposed_fen"]))

    async def _propose(self, move: _Move) -> _Done | Refused[DecisionRefusal]:
        row, amount_fen = move.row, move.amount_fen
        assert amount_fen is not None
        if row["proposed_by"] is not None:
            return Refused(
                DecisionRefusal.ALREADY_DECIDED, state="proposed", decided_by=row["proposed_by"]
            )
        if not await store.propose(move.conn, row["id"], amount_fen, move.actor):
            return _lost(row)
        return _Done(A.PROPOSE, amount_fen)

    async def _reject(self, move: _Move) -> _Done | Refused[DecisionRefusal]:
        if not await self._move(move, reject_reason=move.detail, **move.decided):
            return _lost(move.row)
        return _Done(A.REJECT, detail=move.detail)

    async def _duplicate(self, move: _Move) -> _Done | Refused[DecisionRefusal]:
        assert move.detail is not None
        original = await store.report(move.conn, int(move.detail))
        if original is None:
            return Refused(DecisionRefusal.BAD_CHOICE)
        if not await self._move(move, duplicate_of=original["id"], **move.decided):
            return _lost(move.row)
        if self.cases is not None:
            await self.cases.followed(move.conn, original["id"], move.row)
        return _Done(A.DUPLICATE, detail=original["reference"])

    async def _ask(self, move: _Move) -> _Done | Refused[DecisionRefusal]:
        fields = {"question": move.detail, "asked_at": move.now, "question_reminded_at": None}
        if not await self._move(move, **fields, updated_at=move.now):
            return _lost(move.row)
        return _Done(A.ASK, detail=move.detail)

    async def _answer(self, move: _Move) -> _Done | Refused[DecisionRefusal]:
        text = move.detail or ""
        answer = text if not move.row["answer"] else f"{move.row['answer']}\n{text}"
        if not await self._move(move, answer=answer, updated_at=move.now):
            return _lost(move.row)
        return _Done(A.ANSWER, detail=text)

    # --- the rider's answer -------------------------------------------------------------

    async def open_question(self, rider_telegram_id: int) -> int | None:
        """The rider's report waiting for their answer, if any."""
        async with self.db.transaction() as conn:
            return await store.open_question(conn, rider_telegram_id)

    async def keep_in_view(self, report_id: int, chat_id: int, message_id: int) -> None:
        """A moderator acted on this private copy of the card: later decisions show there."""
        async with self.db.transaction() as conn:
            await store.add_card_view(conn, report_id, chat_id, message_id)

    async def answered_lately(self, rider_telegram_id: int) -> int | None:
        """The report whose question this rider answered in the last `FOLLOW_UP_SECONDS` and
        that still waits for a decision: a photo sent now goes with that answer."""
        since = _ts(self.clock()) - FOLLOW_UP_SECONDS
        async with self.db.transaction() as conn:
            return await store.answered_since(conn, rider_telegram_id, since)

    async def photo_followed(self, report_id: int) -> Card | None:
        """The rider added a photo to their answer: the moderators' chat hears of it (a reply
        to the card); the card as it is now."""
        async with self.db.transaction() as conn:
            row = await store.report(conn, report_id)
            if row is None:
                return None
            await self.outbox.queue(conn, self._to_card_chat(row, "moderation.photo_arrived"))
            return await self._card(conn, row)

    async def answer(self, rider_telegram_id: int, text: str) -> Decided | None:
        """Attach the rider's answer and put the report back in the moderators' queue."""
        report_id = await self.open_question(rider_telegram_id)
        if report_id is None:
            return None
        done = await self.act(report_id, A.ANSWER, rider_telegram_id, detail=text)
        return done if isinstance(done, Decided) else None

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
        digest_before = now - timedelta(hours=programme.review.digest_after_hours)
        escalate_before = _ts(now - timedelta(hours=programme.review.escalate_after_hours))
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
                    "hours": programme.review.escalate_after_hours,
                    "deadline": programme.review.deadline_hours,
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
            reminded, returned = await self._open_questions(conn, now, notices)
            await store.mark(conn, "digest_at", fresh, _ts(now))
            await store.mark(conn, "escalated_at", [r["id"] for r in escalate], _ts(now))
            await store.mark(conn, "breached_at", [r["id"] for r in breached], _ts(now))
            await self.outbox.queue(conn, notices)
        return PromiseCheck(
            digest=len(waiting) if fresh else 0,
            escalated=len(escalate),
            breached=len(breached),
            reminded=reminded,
            returned=tuple(returned),
        )

    async def _open_questions(
        self, conn: Connection, now: datetime, notices: list[Notice]
    ) -> tuple[int, list[int]]:
        """Remind unanswered questions once, return the expired ones to the moderators (the
        clock's `return`); their notices go to `notices`. (reminded, returned report ids)."""
        programme = self.programme
        remind_before = _ts(now - timedelta(hours=programme.review.question_remind_hours))
        expire_before = _ts(now - timedelta(hours=programme.review.question_expiry_hours))
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
        back = next_status(S.NEEDS_INFO, A.RETURN, {R.CLOCK})
        assert back is not None
        for q in expired:
            if await store.set_status(conn, q["id"], S.NEEDS_INFO, back, updated_at=_ts(now)):
                returned.append(q["id"])
                if q["rider_telegram_id"] is not None:
                    params: Params = {
                        "reference": q["reference"],
                        "hours": programme.review.question_expiry_hours,
                    }
                    notices.append(Notice(q["rider_telegram_id"], "rider.question_expired", params))
        await store.mark(conn, "question_reminded_at", [q["id"] for q in remind], _ts(now))
        return len(remind), returned


Step = Callable[[Moderation, _Move], Awaitable[_Done | Refused[DecisionRefusal]]]
_STEPS: dict[ReportAction, Step] = {
    A.APPROVE: Moderation._approve,
    A.CONFIRM: Moderation._confirm,
    A.PROPOSE: Moderation._propose,
    A.REJECT: Moderation._reject,
    A.DUPLICATE: Moderation._duplicate,
    A.ASK: Moderation._ask,
    A.ANSWER: Moderation._answer,
}
"""Each action the moderators' side carries out, and its step besides the move itself."""

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
    params: Params = {"count": len(waiting), "hours": programme.review.digest_after_hours}
    return Notice(chat_id, "promise.digest", params, lines=tuple(lines))


def _listed(references: list[str]) -> str:
    """References for one line: the first few, and how many more."""
    more = len(references) - REFERENCES_SHOWN
    shown = ", ".join(references[:REFERENCES_SHOWN])
    return f"{shown} (+{more})" if more > 0 else shown
