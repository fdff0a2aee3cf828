"""The report's life table, driven through the services against a real database.

Every (status, action, role) the moderators' side carries out: the allowed ones move the
report to the table's status and record the decision, the rest are refused and change
nothing. The clock's and the other services' moves (submit, expire, return, withdraw,
reverse) are each checked where they happen.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.ledger import reverse_reward
from services.moderation import MODERATOR_ACTIONS, Decided, DecisionRefusal, Moderation
from services.outbox import Outbox
from services.refusal import Refused
from services.reporting import (
    REPORT_TRANSITIONS,
    ReportAction,
    Reporting,
    ReportRole,
    ReportStatus,
)
from settings import Programme, Settings
from storage.db import Database
from tests.conftest import RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.reports_helpers import Seed
from tests.test_moderation import submit

S, A, R = ReportStatus, ReportAction, ReportRole
RIDER = 42  # Seed's rider
MODERATOR = 9002
PROPOSER = 9003
ADMIN = 9001
ACTORS: dict[ReportRole, int | None] = {
    R.RIDER: RIDER,
    R.MODERATOR: MODERATOR,
    R.ADMIN: ADMIN,
    R.CLOCK: None,
}
DECISIONS = (A.APPROVE, A.PROPOSE, A.CONFIRM, A.REJECT, A.DUPLICATE, A.ASK, A.ANSWER)
UNSUBMITTED = (S.DRAFT, S.EXPIRED)  # no reference yet
NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)


def expected(status: ReportStatus, action: ReportAction, role: ReportRole) -> ReportStatus | None:
    """The table's answer for one role; admins count as moderators too."""
    found = REPORT_TRANSITIONS.get((status, action, role))
    if found is None and role == R.ADMIN:
        found = REPORT_TRANSITIONS.get((status, action, R.MODERATOR))
    return found


def settings() -> Settings:
    return Settings(
        bot_token="1:test",
        moderator_ids=frozenset({MODERATOR, PROPOSER}),
        admin_ids=frozenset({ADMIN}),
        programme=Programme(),
    )


async def report_in(seed: Seed, status: ReportStatus, action: ReportAction) -> int:
    """A report in `status`, set up so that `action`'s own conditions hold."""
    report_id = await seed.report(NOW - timedelta(hours=1), status=status)
    async with seed.db.transaction() as conn:
        if status in UNSUBMITTED:
            await conn.execute("UPDATE reports SET reference = NULL WHERE id = ?", (report_id,))
        if action == A.CONFIRM:  # a proposal by another moderator to confirm
            await conn.execute(
                "UPDATE reports SET proposed_fen = 20000, proposed_by = ? WHERE id = ?",
                (PROPOSER, report_id),
            )
    return report_id


async def state(db: Database, report_id: int) -> tuple[object, ...]:
    """Everything an action could change: the report's row, its decisions, the ledger."""
    row = await db.fetchone("SELECT * FROM reports WHERE id = ?", (report_id,))
    assert row is not None
    decisions = await db.fetchall("SELECT * FROM decisions WHERE report_id = ?", (report_id,))
    ledger = await db.fetchall("SELECT * FROM ledger WHERE report_id = ?", (report_id,))
    return tuple(row), [tuple(d) for d in decisions], [tuple(e) for e in ledger]


async def act(
    moderation: Moderation,
    report_id: int,
    original_id: int,
    action: ReportAction,
    role: ReportRole,
) -> Decided | Refused[DecisionRefusal]:
    """One action with arguments that pass its own checks (a tier, a reason, an original)."""
    amounts = {A.APPROVE: 5000, A.PROPOSE: 20000}
    details = {
        A.REJECT: "not_true",
        A.DUPLICATE: str(original_id),
        A.ASK: "哪个路口？",
        A.ANSWER: "人民路口",
    }
    return await moderation.act(
        report_id,
        action,
        ACTORS[role],
        amount_fen=amounts.get(action),
        detail=details.get(action),
    )


@pytest.mark.parametrize(
    ("status", "action", "role"), list(itertools.product(ReportStatus, DECISIONS, ReportRole))
)
async def test_every_decision_moves_only_where_the_table_allows(
    db: Database, status: ReportStatus, action: ReportAction, role: ReportRole
) -> None:
    seed = Seed(db)
    original = await seed.report(NOW - timedelta(hours=3), status="approved")
    report_id = await report_in(seed, status, action)
    moderation = Moderation(db, settings(), Outbox(db), clock=lambda: NOW)
    before = await state(db, report_id)
    outcome = await act(moderation, report_id, original, action, role)
    after = await state(db, report_id)
    goes_to = expected(status, action, role)
    if goes_to is None:
        assert isinstance(outcome, Refused)
        assert after == before
        return
    assert isinstance(outcome, Decided), outcome
    assert outcome.card.status == goes_to
    row = await db.fetchone("SELECT status FROM reports WHERE id = ?", (report_id,))
    assert row is not None
    assert row[0] == goes_to
    recorded = await db.fetchall(
        "SELECT previous_status, new_status FROM decisions WHERE report_id = ?", (report_id,)
    )
    assert [tuple(r) for r in recorded] == [(status, goes_to)]


def test_moderators_decide_and_the_rider_answers() -> None:
    for status, action, role in REPORT_TRANSITIONS:
        if action in MODERATOR_ACTIONS:
            assert role == R.MODERATOR, (status, action)
        if action in (A.ANSWER, A.SUBMIT, A.WITHDRAW):
            assert role == R.RIDER, (status, action)
        if action in (A.EXPIRE, A.RETURN):
            assert role == R.CLOCK, (status, action)
    assert [key for key in REPORT_TRANSITIONS if key[1] == A.REVERSE] == [
        (S.APPROVED, A.REVERSE, R.ADMIN)
    ]


def test_moderators_decide_only_what_waits_for_them() -> None:
    decided_from = {status for (status, action, _) in REPORT_TRANSITIONS if action in DECISIONS}
    assert decided_from == {S.PENDING, S.NEEDS_INFO}
    assert REPORT_TRANSITIONS[(S.PENDING, A.APPROVE, R.MODERATOR)] == S.APPROVED
    assert REPORT_TRANSITIONS[(S.PENDING, A.CONFIRM, R.MODERATOR)] == S.APPROVED
    assert REPORT_TRANSITIONS[(S.PENDING, A.PROPOSE, R.MODERATOR)] == S.PENDING
    assert REPORT_TRANSITIONS[(S.PENDING, A.ASK, R.MODERATOR)] == S.NEEDS_INFO
    assert REPORT_TRANSITIONS[(S.NEEDS_INFO, A.ANSWER, R.RIDER)] == S.PENDING
    assert [
        key for key in REPORT_TRANSITIONS if key[0] == S.NEEDS_INFO and key[1] in DECISIONS
    ] == [(S.NEEDS_INFO, A.ANSWER, R.RIDER)]


def test_finished_reports_allow_nothing() -> None:
    for status in (S.REJECTED, S.DUPLICATE, S.REVERSED, S.EXPIRED, S.WITHDRAWN):
        assert not [key for key in REPORT_TRANSITIONS if key[0] == status]


@pytest.mark.parametrize("status", list(ReportStatus))
async def test_an_unanswered_question_returns_only_from_needs_info(
    db: Database, status: ReportStatus
) -> None:
    seed = Seed(db)
    report_id = await report_in(seed, status, A.RETURN)
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE reports SET asked_at = ?, question = 'where?' WHERE id = ?",
            (int((NOW - timedelta(days=30)).timestamp()), report_id),
        )
    later = Moderation(db, settings(), Outbox(db), clock=lambda: NOW)
    checked = await later.promise_check()
    row = await db.fetchone("SELECT status FROM reports WHERE id = ?", (report_id,))
    assert row is not None
    goes_to = REPORT_TRANSITIONS.get((status, A.RETURN, R.CLOCK))
    assert row[0] == (goes_to or status)
    assert checked.returned == ((report_id,) if goes_to else ())


@pytest.mark.parametrize("status", [s for s in ReportStatus if s != S.DRAFT])
async def test_the_riders_delete_withdraws_only_waiting_reports(
    db: Database, status: ReportStatus
) -> None:
    seed = Seed(db)
    report_id = await report_in(seed, status, A.WITHDRAW)
    reporting = Reporting(db, Programme(), ZoneInfo("Asia/Shanghai"), Outbox(db))
    assert await reporting.erase(RIDER)
    row = await db.fetchone("SELECT status FROM reports WHERE id = ?", (report_id,))
    assert row is not None
    assert row[0] == REPORT_TRANSITIONS.get((status, A.WITHDRAW, R.RIDER), status)


async def test_an_untouched_draft_expires(db: Database) -> None:
    seed = Seed(db)
    report_id = await report_in(seed, S.DRAFT, A.EXPIRE)
    zone = ZoneInfo("Asia/Shanghai")
    later = NOW + timedelta(days=30)
    reporting = Reporting(db, Programme(), zone, Outbox(db), clock=lambda: later)
    assert (await reporting.sweep_drafts())[1] == 1
    row = await db.fetchone("SELECT status FROM reports WHERE id = ?", (report_id,))
    assert row is not None
    assert row[0] == REPORT_TRANSITIONS[(S.DRAFT, A.EXPIRE, R.CLOCK)]


@pytest.mark.parametrize("status", [s for s in ReportStatus if s not in UNSUBMITTED])
async def test_reversal_takes_back_only_an_approval(db: Database, status: ReportStatus) -> None:
    seed = Seed(db)
    report_id = await seed.report(
        NOW - timedelta(hours=2), status=status, decided=NOW - timedelta(hours=1), reward_fen=5000
    )
    now = int(NOW.timestamp())
    await reverse_reward(db, report_id=report_id, reason="照片不实", now=now)
    row = await db.fetchone("SELECT status FROM reports WHERE id = ?", (report_id,))
    assert row is not None
    assert row[0] == REPORT_TRANSITIONS.get((status, A.REVERSE, R.ADMIN), status)


async def test_submitting_makes_a_draft_pending(bot: RunningBot, fake: FakeTelegram) -> None:
    reference = await submit(fake, TgUser(801, first_name="小王", language_code="zh-hans"))
    await bot.settled(fake)
    row = await bot.app.bot_data["runtime"].db.fetchone(
        "SELECT status FROM reports WHERE reference = ?", (reference,)
    )
    assert row is not None
    assert row[0] == REPORT_TRANSITIONS[(S.DRAFT, A.SUBMIT, R.RIDER)]
