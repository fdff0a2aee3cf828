"""Cases (即时办): an approved report is dispatched to the department that fixes it, and
followed until the rider sees it fixed.

    approval ──► dispatched ──accept (staff)──► accepted ──fixed (staff)──► fixed
                  │   ▲  │                         │  │                      │
                  │   │  └──not_ours (staff)──┐    │  └─cannot_fix (staff)─► cannot_fix (closed)
                  │   │                       ▼    │                         │
                  │   └──reroute (moderator)─ not_ours ◄──not_ours (staff)───┘
                  │                                                          │
                  └─reroute (moderator): to another department               │
       fixed ──confirm (rider "yes", or the clock after confirm_days)──► confirmed (closed)
       fixed ──reopen (rider "no")──► reopened ──accept (staff)──► accepted  (same department)

`TRANSITIONS` below is the whole truth: (state, action, who) -> next state; the diagram
only draws it. Admins count as staff of every department and as moderators. Every change is
one guarded `UPDATE ... WHERE id = ? AND state = ?` plus one `case_events` row in the same
transaction, and the button pressed carries the state its card showed: a second press, two
staff at once or a stale card find the state moved on, change nothing and are told so.

The rider's notices (dispatched with department and due time; fixed with the after-photo and
"is it fixed?") are queued in the outbox in the transaction of the change they report.
Rewards follow verification only: nothing here touches money.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum

from services import workdays
from services.clock import Now, utc_now
from services.outbox import At, Button, Category, Dept, Msg, Notice, Outbox, Param, Params
from services.photos import inspect_in_pool
from services.refusal import Refused
from settings import Programme, Settings
from storage import cases as store
from storage import handoff as handoff_store
from storage import moderation as moderator_store
from storage.db import Connection, Database, Row

AFTER_PHOTO_MAX_SIDE = 1600
REASON_MAX_CHARS = 500
REMIND_AT = 0.75  # of the time to accept and of the time to fix (working time for workdays)


class State(StrEnum):
    DISPATCHED = "dispatched"
    ACCEPTED = "accepted"
    FIXED = "fixed"
    NOT_OURS = "not_ours"
    CANNOT_FIX = "cannot_fix"
    CONFIRMED = "confirmed"
    REOPENED = "reopened"


class Action(StrEnum):
    ACCEPT = "accept"
    FIXED = "fixed"
    NOT_OURS = "not_ours"
    CANNOT_FIX = "cannot_fix"
    REROUTE = "reroute"
    CONFIRM = "confirm"
    REOPEN = "reopen"


class Role(StrEnum):
    MODERATOR = "moderator"
    STAFF = "staff"  # of the case's department
    RIDER = "rider"  # who reported it
    CLOCK = "clock"
    FOLLOWER = "follower"  # reported it again (a duplicate): told and asked, changes nothing


S, A, R = State, Action, Role
TRANSITIONS: dict[tuple[State, Action, Role], State] = {
    (S.DISPATCHED, A.ACCEPT, R.STAFF): S.ACCEPTED,
    (S.DISPATCHED, A.NOT_OURS, R.STAFF): S.NOT_OURS,
    (S.DISPATCHED, A.REROUTE, R.MODERATOR): S.DISPATCHED,
    (S.ACCEPTED, A.FIXED, R.STAFF): S.FIXED,
    (S.ACCEPTED, A.CANNOT_FIX, R.STAFF): S.CANNOT_FIX,
    (S.ACCEPTED, A.NOT_OURS, R.STAFF): S.NOT_OURS,
    (S.ACCEPTED, A.REROUTE, R.MODERATOR): S.DISPATCHED,
    (S.NOT_OURS, A.REROUTE, R.MODERATOR): S.DISPATCHED,
    (S.FIXED, A.CONFIRM, R.RIDER): S.CONFIRMED,
    (S.FIXED, A.CONFIRM, R.CLOCK): S.CONFIRMED,
    (S.FIXED, A.REOPEN, R.RIDER): S.REOPENED,
    (S.REOPENED, A.ACCEPT, R.STAFF): S.ACCEPTED,
    (S.REOPENED, A.NOT_OURS, R.STAFF): S.NOT_OURS,
    (S.REOPENED, A.REROUTE, R.MODERATOR): S.DISPATCHED,
}
NEEDS_REASON = frozenset({A.NOT_OURS, A.CANNOT_FIX, A.REROUTE, A.REOPEN})
CLOSED = frozenset({S.CONFIRMED, S.CANNOT_FIX})
# Button verbs the outbox's notices carry (handlers/cases.py declares them with these names).
VERB_YES = "cyes"  # 满意
VERB_BASIC = "cbasic"  # 基本满意
VERB_NO = "cno"  # 不满意
VERB_ROUTE = "croute"
VERB_EXTEND = "cext"  # a moderator's decision on an extension (item: the request)
VERB_SUPERVISION = "csup"  # the department's reply to a 督办 (item: the case)
PROMPT_EXTEND = "extend"  # a prompt answered with the new date and the reason
PROMPT_SUPERVISION = "supervision"  # a prompt answered with the reply to a 督办
EXTENSION_MAX_DAYS = 90
EXTENSION_PATTERN = re.compile(
    r"(?:(?P<year>\d{4})[-/年])?(?P<month>\d{1,2})[-/月](?P<day>\d{1,2})日?[\s,，:：]*(?P<reason>.*)",
    re.DOTALL,
)


class Answer(StrEnum):
    """The rider's satisfaction with a fix (回访)."""

    SATISFIED = "satisfied"
    BASIC = "basic"
    UNSATISFIED = "unsatisfied"


_ANSWER_OF = {A.CONFIRM: Answer.SATISFIED, A.REOPEN: Answer.UNSATISFIED}
ANSWER_VERBS = {VERB_YES: Answer.SATISFIED, VERB_BASIC: Answer.BASIC, VERB_NO: Answer.UNSATISFIED}
# 不满意: what is wrong, in one tap (or in the rider's own words or photo).
UNSATISFIED_REASONS = ("not_fixed", "partly", "broke_again")


class Light(StrEnum):
    """The county's traffic light of a running case: green, yellow past 75% of a deadline,
    red past it."""

    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"


def next_state(state: State, action: Action, roles: Iterable[Role]) -> State | None:
    """Where `action` by someone with `roles` takes a case in `state` (None: not allowed)."""
    for role in roles:
        found = TRANSITIONS.get((state, action, role))
        if found is not None:
            return found
    return None


def actions_for(state: State, role: Role) -> list[Action]:
    """What someone in `role` may do to a case in `state`, in the table's order."""
    return [a for (s, a, r) in TRANSITIONS if s == state and r == role]


class CaseRefusal(StrEnum):
    """Why an action on a case changed nothing (`case.refused.<value>` in locales)."""

    UNKNOWN = "unknown"
    CHANGED = "changed"  # the case moved on: a second press, a colleague, a stale card
    NOT_YOURS = "not_yours"  # not staff of this department / not this case's rider
    NOT_POSSIBLE = "not_possible"
    NEEDS_REASON = "needs_reason"
    BAD_DEPARTMENT = "bad_department"
    BAD_DATE = "bad_date"  # an extension's new date: missing, past, or not later than due
    PENDING = "pending"  # an extension is already waiting for a decision
    DECIDED = "decided"  # the extension was decided already
    ANSWERED = "answered"  # this fix was answered already (回访) / the 督办 replied to


@dataclass(frozen=True)
class Case:
    id: int
    report_id: int
    reference: str
    category: str | None
    description: str | None
    latitude: float | None
    longitude: float | None
    department: str
    state: State
    urgent: bool
    opened_at: int
    dispatched_at: int
    due_at: int
    fixed_at: int | None
    reopened: int
    note: str | None
    after_photo_id: int | None
    card_chat_id: int | None
    card_message_id: int | None
    card_copy: bool  # the card in the chat says an earlier copy may be above it
    rider_telegram_id: int | None
    last_actor: int | None
    town: str | None = None
    grid: str | None = None
    venue_name: str | None = None
    rider_answer: str | None = None  # the rider's answer to the moderators' question
    followers: int = 0  # reports marked duplicates of this one ("me too")
    remind_at: int | None = None
    accept_due_at: int | None = None
    accept_remind_at: int | None = None
    accepted_at: int | None = None

    def overdue(self, now: int) -> bool:
        return self.state.value in store.CLOCK_STATES and self.due_at < now

    @property
    def awaiting_accept(self) -> bool:
        return self.state in (State.DISPATCHED, State.REOPENED) and self.accept_due_at is not None

    def light(self, now: int) -> Light | None:
        """Green, yellow or red while the department's time runs; None otherwise."""
        return light(
            self.state, now, self.due_at, self.remind_at, self.accept_due_at, self.accept_remind_at
        )


def light(
    state: State,
    now: int,
    due_at: int,
    remind_at: int | None,
    accept_due_at: int | None,
    accept_remind_at: int | None,
) -> Light | None:
    """A case's traffic light from its state and deadlines (see `Light`)."""
    if state.value not in store.CLOCK_STATES:
        return None
    clocks = [(remind_at, due_at)]
    if state in (State.DISPATCHED, State.REOPENED) and accept_due_at is not None:
        clocks.append((accept_remind_at, accept_due_at))  # not yet accepted (签收)
    if any(now >= due for _, due in clocks):
        return Light.RED
    if any(remind is not None and now >= remind for remind, _ in clocks):
        return Light.YELLOW
    return Light.GREEN


def _refused(
    case: Case, roles: set[Role], action: Action, expected: State
) -> Refused[CaseRefusal] | None:
    """Why `action` by someone with `roles` cannot change `case` shown in state `expected`;
    None: it can. Someone with no part in the case learns nothing about it."""
    if not roles:
        return Refused(CaseRefusal.UNKNOWN)
    if case.state != expected:
        return Refused(CaseRefusal.CHANGED, case.state)
    if next_state(case.state, action, roles) is None:
        possible = any((case.state, action, role) in TRANSITIONS for role in Role)
        return Refused(CaseRefusal.NOT_YOURS if possible else CaseRefusal.NOT_POSSIBLE, case.state)
    return None


def _case(row: Row) -> Case:
    return Case(
        id=row["id"],
        report_id=row["report_id"],
        reference=row["reference"],
        category=row["category"],
        description=row["description"],
        latitude=row["latitude"],
        longitude=row["longitude"],
        department=row["department"],
        state=State(row["state"]),
        urgent=bool(row["urgent"]),
        opened_at=row["opened_at"],
        dispatched_at=row["dispatched_at"],
        due_at=row["due_at"],
        fixed_at=row["fixed_at"],
        reopened=row["reopened"],
        note=row["note"],
        after_photo_id=row["after_photo_id"],
        card_chat_id=row["card_chat_id"],
        card_message_id=row["card_message_id"],
        card_copy=bool(row["card_copy"]),
        rider_telegram_id=row["rider_telegram_id"],
        last_actor=row["last_actor"],
        town=row["town"],
        grid=row["grid"],
        venue_name=row["venue_name"],
        rider_answer=row["rider_answer"],
        followers=int(row["followers"]),
        remind_at=row["remind_at"],
        accept_due_at=row["accept_due_at"],
        accept_remind_at=row["accept_remind_at"],
        accepted_at=row["accepted_at"],
    )


def town_param(town: str | None) -> Param:
    """A town for a notice: its name, or 未分区 in the recipient's language."""
    return town if town else Msg("town.none")


@dataclass(frozen=True)
class Noted:
    """Something recorded on a case that leaves its state as it is: a follower's answer, an
    extension asked or decided, a 督办 replied to. `key` names what the person is told
    (`case.done.<key>`); `case` is the case afterwards."""

    key: str
    case: Case


@dataclass(frozen=True)
class Via:
    """A department acting from its own system (its webhook, Open311, the e-mail's page):
    the department's staff, with no Telegram id behind them."""

    department: str


SYSTEM_ACTOR = 0  # who asked, where a column needs someone: the department's own system


def actor_id(who: int | Via | None) -> int | None:
    """The Telegram id an event records (None: the clock or a department's system)."""
    return who if isinstance(who, int) else None


@dataclass(frozen=True)
class Changed:
    """A change made; `before` is the case as it was (its old card may need updating)."""

    action: Action
    before: Case
    case: Case


DEFAULT_FIX = workdays.Span(72, workdays.Unit.HOURS)
DEFAULT_ACCEPT = workdays.Span(18, workdays.Unit.HOURS)


def deadlines(programme: Programme, zone: tzinfo, category: str | None, now: int) -> dict[str, int]:
    """A dispatch's two deadlines (accept, fix) and their reminder points, as counted: hours
    on the wall clock, working days by the statutory calendar (services/workdays.py)."""
    found = programme.category(category or "")
    spans = {
        "": found.fix if found else DEFAULT_FIX,
        "accept_": found.accept if found else DEFAULT_ACCEPT,
    }
    start = datetime.fromtimestamp(now, UTC)
    times: dict[str, int] = {}
    for prefix, span in spans.items():
        due = workdays.deadline(start, span, zone)
        remind = workdays.point_in_span(start, due, span, zone, REMIND_AT)
        times[f"{prefix}due_at"] = int(due.timestamp())
        times[f"{prefix}remind_at"] = int(remind.timestamp())
    return times


def satisfaction_buttons(case_id: int) -> tuple[Button, ...]:
    """满意 / 基本满意 / 不满意, one tap each, under the "fixed" notice."""
    return tuple(
        Button(f"case.button.{answer}", verb, case_id, State.FIXED)
        for verb, answer in ANSWER_VERBS.items()
    )


def dispatched_notice(case: Case, once: str, riders: Iterable[int] = ()) -> list[Notice]:
    """The dispatch told to the case's rider and to `riders` (those who reported it again)."""
    params: Params = {
        "reference": case.reference,
        "department": Dept(case.department),
        "due": At(case.due_at),
        "town": town_param(case.town),
    }
    told = [case.rider_telegram_id] if case.rider_telegram_id is not None else []
    return [
        Notice(rider, "case.rider.dispatched", params, once_key=f"{once}:{rider}")
        for rider in [*told, *riders]
    ]


async def queue_handoff(
    conn: Connection,
    programme: Programme,
    case_id: int,
    department: str,
    dispatched_at: int,
    now: int,
) -> None:
    """A dispatch to a department working in its own system is handed over by its channel
    (services/handoff.py), in the dispatch's transaction; a Telegram group gets its card."""
    found = programme.department(department)
    if found is not None and found.send != "telegram":
        await handoff_store.queue(conn, case_id, department, found.send, dispatched_at, now)


async def open_case(
    conn: Connection, outbox: Outbox, programme: Programme, zone: tzinfo, report: Row, now: int
) -> int | None:
    """Make an approved report a case of its department, in the approval's transaction.

    Nothing happens when no department handles the category (or none are configured)."""
    department = programme.department_for(report["category"], report["town"])
    if department is None:
        return None
    category = programme.category(report["category"] or "")
    urgent = bool(category and category.urgent)
    times = deadlines(programme, zone, report["category"], now)
    case_id = await store.create(conn, report["id"], department.key, urgent, now, times)
    if case_id is None:
        return None
    await store.record_event(
        conn, case_id, None, Role.CLOCK, "open", None, State.DISPATCHED, department.key, now
    )
    await queue_handoff(conn, programme, case_id, department.key, now, now)
    row = await store.case(conn, case_id)
    assert row is not None
    followers = [f.telegram_id for f in await store.followers(conn, report["id"])]
    once = f"case:{case_id}:dispatched:{now}"
    await outbox.queue(conn, dispatched_notice(_case(row), once, followers))
    return case_id


class Cases:
    """Departments' and riders' side of a case; Telegram ids throughout."""

    def __init__(
        self, db: Database, settings: Settings, outbox: Outbox, clock: Now = utc_now
    ) -> None:
        self.db = db
        self.settings = settings
        self.programme = settings.programme
        self.outbox = outbox
        self.clock = clock
        self.wake = asyncio.Event()  # set when a card is due: wakes the card sender
        self.handoff_wake = asyncio.Event()  # set when a case is to go by another channel

    def _now(self) -> int:
        return int(self.clock().timestamp())

    @property
    def enabled(self) -> bool:
        return bool(self.programme.departments)

    async def open(self, conn: Connection, report: Row, now: int) -> int | None:
        """The approval hook (services/moderation.py): the case, and its sender woken."""
        case_id = await open_case(
            conn, self.outbox, self.programme, self.settings.timezone, report, now
        )
        if case_id is not None:
            self.wake.set()
            self.handoff_wake.set()
        return case_id

    async def followed(self, conn: Connection, original_id: int, duplicate: Row) -> None:
        """A report marked a duplicate of one that is a case: its rider follows the case
        ("me too"), told where it stands now, and later of its dispatch and fix."""
        case_id = await store.case_of_report(conn, original_id)
        row = None if case_id is None else await store.case(conn, case_id)
        if row is None or duplicate["rider_telegram_id"] is None:
            return
        case = _case(row)
        params: Params = {
            "reference": case.reference,
            "yours": duplicate["reference"],
            "state": Msg(f"case.my.{case.state}"),
            "department": Dept(case.department),
        }
        await self.outbox.queue(
            conn, [Notice(int(duplicate["rider_telegram_id"]), "case.rider.following", params)]
        )

    # --- who ----------------------------------------------------------------------------

    def is_admin(self, telegram_id: int) -> bool:
        return telegram_id in self.settings.admin_ids

    async def _is_moderator(self, conn: Connection, telegram_id: int) -> bool:
        settings = self.settings
        if telegram_id in settings.moderator_ids or telegram_id in settings.admin_ids:
            return True
        return await moderator_store.is_added_moderator_in(conn, telegram_id)

    async def roles(self, conn: Connection, telegram_id: int | Via, case: Case) -> set[Role]:
        if isinstance(telegram_id, Via):
            return {Role.STAFF} if telegram_id.department == case.department else set()
        found = set()
        if self.is_admin(telegram_id) or await store.is_staff(conn, case.department, telegram_id):
            found.add(Role.STAFF)
        if await self._is_moderator(conn, telegram_id):
            found.add(Role.MODERATOR)
        if case.rider_telegram_id == telegram_id:
            found.add(Role.RIDER)
        elif any(f.telegram_id == telegram_id for f in await store.followers(conn, case.report_id)):
            found.add(Role.FOLLOWER)
        return found

    async def is_staff_anywhere(self, telegram_id: int) -> bool:
        return self.is_admin(telegram_id) or bool(await store.departments_of(self.db, telegram_id))

    async def departments_of(self, telegram_id: int) -> list[str]:
        if self.is_admin(telegram_id):
            return [d.key for d in self.programme.departments]
        return await store.departments_of(self.db, telegram_id)

    # --- reading ------------------------------------------------------------------------

    async def case_for(self, case_id: int, telegram_id: int) -> Case | None:
        """The case, if the person has a part in it (its department's staff, a moderator or
        admin, its rider); None otherwise, as for a case that does not exist."""
        async with self.db.transaction() as conn:
            row = await store.case(conn, case_id)
            if row is None:
                return None
            case = _case(row)
            return case if await self.roles(conn, telegram_id, case) else None

    async def case(self, case_id: int) -> Case | None:
        async with self.db.transaction() as conn:
            row = await store.case(conn, case_id)
        return None if row is None else _case(row)

    async def case_of_report(self, report_id: int) -> Case | None:
        async with self.db.transaction() as conn:
            case_id = await store.case_of_report(conn, report_id)
            row = None if case_id is None else await store.case(conn, case_id)
        return None if row is None else _case(row)

    async def cards_to_send(self, limit: int = 20) -> list[int]:
        return await store.cards_to_send(self.db, limit)

    async def begin_card(self, case_id: int) -> bool:
        """A case card is about to be sent; True if an earlier send may have reached the chat
        (the process died mid-send, or the connection dropped before Telegram answered)."""
        return await store.begin_card(self.db, case_id, self._now())

    async def card_refused(self, case_id: int) -> None:
        """Telegram answered the send with an error, so no copy of it is in the chat."""
        await store.card_refused(self.db, case_id)

    async def card_sent(
        self, case_id: int, chat_id: int, message_id: int, copy: bool = False
    ) -> None:
        await store.record_card(self.db, case_id, chat_id, message_id, copy)

    async def photo(self, photo_id: int) -> bytes | str | None:
        """A case photo: Telegram's file id of an earlier upload, or the JPEG."""
        row = await store.photo(self.db, photo_id)
        if row is None:
            return None
        found: bytes | str | None = row["file_id"] or row["jpeg"]
        return found

    async def rider_evidence(self, case: Case) -> bytes | str | None:
        """For a reopened case, the rider's photo of what is still wrong (None: none given)."""
        if case.state != State.REOPENED:
            return None
        photo_id = await store.latest_rider_photo(self.db, case.id)
        return None if photo_id is None else await self.photo(photo_id)

    async def remember_photo_upload(self, photo_id: int, file_id: str) -> None:
        await store.remember_photo_file(self.db, photo_id, file_id)

    async def events(self, case_id: int) -> list[Row]:
        return await store.events(self.db, case_id)

    async def open_cases(self, telegram_id: int, *, moderator: bool) -> list[Case]:
        """/cases: every open case for a moderator, the department's for staff; overdue first."""
        departments = None if moderator else await self.departments_of(telegram_id)
        rows = await store.open_cases(self.db, departments)
        now = self._now()
        cases = [_case(row) for row in rows]
        order = {d.key: i for i, d in enumerate(self.programme.departments)}
        return sorted(
            cases, key=lambda c: (order.get(c.department, 99), not c.overdue(now), c.due_at)
        )

    async def state_by_reference(self, references: list[str]) -> dict[str, str]:
        return await store.state_by_reference(self.db, references)

    # --- staff --------------------------------------------------------------------------

    async def add_staff(self, department: str, telegram_id: int, admin_id: int) -> bool | None:
        """None: no such department."""
        if self.programme.department(department) is None:
            return None
        return await store.add_staff(self.db, department, telegram_id, admin_id, self._now())

    async def remove_staff(self, department: str, telegram_id: int) -> bool:
        return await store.remove_staff(self.db, department, telegram_id)

    async def staff(self) -> dict[str, list[int]]:
        listed: dict[str, list[int]] = {d.key: [] for d in self.programme.departments}
        for row in await store.staff(self.db):
            listed.setdefault(row["department"], []).append(row["telegram_id"])
        return listed

    # --- prompts ------------------------------------------------------------------------

    async def remember_prompt(
        self,
        chat_id: int,
        message_id: int,
        case: Case,
        action: Action | str,
        asked_of: int,
        department: str | None = None,
    ) -> None:
        await store.save_prompt(
            self.db,
            chat_id,
            message_id,
            case.id,
            action,
            case.state,
            department,
            asked_of,
            self._now(),
        )

    async def answer_prompt(
        self, chat_id: int, message_id: int, telegram_id: int, text: str, photo: bytes | None
    ) -> Changed | Noted | Refused[CaseRefusal] | None:
        """A reply to one of the bot's prompts; None when it answers no open prompt. What the
        reply brings is checked before the prompt is used up: a refused photo (PhotoRejected)
        or a missing reason leaves the prompt open for the next reply."""
        waiting = await store.prompt(self.db, chat_id, message_id, telegram_id)
        if waiting is None:
            return None
        kind = waiting["action"]
        needs_words = kind in (PROMPT_EXTEND, PROMPT_SUPERVISION) or (
            kind in NEEDS_REASON and not (kind == Action.REOPEN and photo is not None)
        )
        if needs_words and not text.strip():
            return Refused(CaseRefusal.NEEDS_REASON)
        if kind == PROMPT_EXTEND and self.parse_extension(text) is None:
            return Refused(CaseRefusal.BAD_DATE)
        jpeg = await self.clean_photo(photo) if photo is not None else None
        async with self.db.transaction() as conn:
            prompt = await store.take_prompt(conn, chat_id, message_id, telegram_id)
        if prompt is None:
            return None
        case_id = prompt["case_id"]
        if kind == PROMPT_EXTEND:
            return await self.ask_extension(case_id, telegram_id, text)
        if kind == PROMPT_SUPERVISION:
            return await self.reply_supervision(case_id, telegram_id, text)
        action = Action(kind)
        expected = State(prompt["expected_state"])
        if action == Action.REOPEN:  # 不满意, in the rider's own words or photo
            return await self.answer(case_id, telegram_id, Answer.UNSATISFIED, note=text, jpeg=jpeg)
        return await self.act(
            prompt["case_id"],
            telegram_id,
            action,
            expected,
            note=text,
            jpeg=jpeg,
            department=prompt["department"],
        )

    async def check(
        self, case_id: int, telegram_id: int, action: Action, expected: State
    ) -> Refused[CaseRefusal] | None:
        """Whether `action` would be allowed now (before asking for its reason or photo)."""
        async with self.db.transaction() as conn:
            row = await store.case(conn, case_id)
            if row is None:
                return Refused(CaseRefusal.UNKNOWN)
            case = _case(row)
            return _refused(case, await self.roles(conn, telegram_id, case), action, expected)

    # --- changes ------------------------------------------------------------------------

    async def act(
        self,
        case_id: int,
        telegram_id: int | Via | None,
        action: Action,
        expected: State,
        *,
        note: str | None = None,
        jpeg: bytes | None = None,
        department: str | None = None,
        answer: Answer | None = None,
    ) -> Changed | Refused[CaseRefusal]:
        """Carry out one action on a case shown in state `expected`; None actor: the clock.
        `jpeg` is a photo already cleaned (`_clean`): the after-photo of a fix, the rider's
        evidence of a reopening. `answer`: the rider's 回访 answer that confirms or reopens
        (the clock's confirmation counts as a silent 基本满意). Someone with no part in the
        case is told it does not exist, whatever it is: a forged button learns nothing."""
        note = (note or "").strip()[:REASON_MAX_CHARS] or None
        photo_says_it = action == Action.REOPEN and jpeg is not None
        if action in NEEDS_REASON and note is None and not photo_says_it:
            return Refused(CaseRefusal.NEEDS_REASON)
        if action == Action.REROUTE and self.programme.department(department or "") is None:
            return Refused(CaseRefusal.BAD_DEPARTMENT)
        now = self._now()
        async with self.db.transaction() as conn:
            row = await store.case(conn, case_id)
            if row is None:
                return Refused(CaseRefusal.UNKNOWN)
            before = _case(row)
            roles = (
                {Role.CLOCK} if telegram_id is None else await self.roles(conn, telegram_id, before)
            )
            refused = _refused(before, roles, action, expected)
            new = next_state(before.state, action, roles)
            if refused is not None or new is None:
                return refused or Refused(CaseRefusal.NOT_POSSIBLE, before.state)
            role = next(r for r in roles if (before.state, action, r) in TRANSITIONS)
            fields = self._fields(before, action, now, note, department)
            photo_id = None
            if jpeg is not None:
                kind = "rider" if action == Action.REOPEN else "after"
                photo_id = await store.add_photo(conn, case_id, kind, jpeg, now)
                if kind == "after":
                    fields["after_photo_id"] = photo_id
            if not await store.move(conn, case_id, before.state, new, **fields):
                return Refused(CaseRefusal.CHANGED, before.state)
            if action in (Action.CONFIRM, Action.REOPEN):
                silent = telegram_id is None
                await store.add_feedback(
                    conn,
                    case_id,
                    before.report_id,
                    before.reopened,
                    Answer.BASIC if silent else (answer or _ANSWER_OF[action]),
                    silent,
                    note if action == Action.REOPEN else None,
                    photo_id,
                    now,
                )
            moved_to = str(fields.get("department", before.department))
            await store.record_event(
                conn,
                case_id,
                actor_id(telegram_id),
                role,
                action,
                before.state,
                new,
                moved_to,
                now,
                note,
                photo_id,
            )
            changed = await store.case(conn, case_id)
            assert changed is not None
            after = _case(changed)
            if action in (Action.REROUTE, Action.REOPEN):
                await queue_handoff(conn, self.programme, case_id, after.department, now, now)
            followers = await store.followers(conn, after.report_id)
            await self.outbox.queue(
                conn, self._notices(action, before, after, now, [f.telegram_id for f in followers])
            )
        if after.card_message_id is None:
            self.wake.set()
            self.handoff_wake.set()
        return Changed(action, before, after)

    def _fields(
        self, case: Case, action: Action, now: int, note: str | None, department: str | None
    ) -> dict[str, object]:
        fields: dict[str, object] = {"updated_at": now}
        if note is not None:
            fields["note"] = note
        if action == Action.ACCEPT:
            fields["accepted_at"] = now
        elif action == Action.FIXED:
            fields["fixed_at"] = now
        elif action in (Action.CONFIRM, Action.CANNOT_FIX):
            fields["closed_at"] = now
        elif action in (Action.REROUTE, Action.REOPEN):
            # A fresh dispatch: a new card in the department's chat, the clocks start again.
            fields |= deadlines(self.programme, self._zone, case.category, now)
            fields |= {
                "dispatched_at": now,
                "card_chat_id": None,
                "card_message_id": None,
                "card_attempted_at": None,
                "reminded_at": None,
                "breached_at": None,
                "accepted_at": None,
                "fixed_at": None,  # a fix the rider sent back, or of another department
                "accept_reminded_at": None,
                "accept_breached_at": None,
                "urged_at": None,
            }
            if action == Action.REROUTE:
                fields["department"] = department
            else:
                fields["reopened"] = case.reopened + 1
        return fields

    def _notices(
        self, action: Action, before: Case, after: Case, now: int, followers: list[int]
    ) -> list[Notice]:
        rider = after.rider_telegram_id
        once = f"case:{after.id}:{action}:{now}"
        params: Params = {"reference": after.reference, "department": Dept(after.department)}
        notices: list[Notice] = []
        moderators = self.settings.moderator_chat_id
        if action == Action.REROUTE:
            notices += dispatched_notice(after, once, followers)
        elif action == Action.ACCEPT:
            told = [rider] if rider is not None else []
            notices += [
                Notice(telegram_id, "case.rider.accepted", params, once_key=f"{once}:{telegram_id}")
                for telegram_id in [*told, *followers]
            ]
        elif action == Action.FIXED:
            asked = [rider] if rider is not None else []
            notices += [
                Notice(
                    telegram_id,
                    "case.rider.fixed",
                    params,
                    once_key=f"{once}:{telegram_id}",
                    photo=f"case:{after.after_photo_id}" if after.after_photo_id else None,
                    buttons=(satisfaction_buttons(after.id),),
                )
                for telegram_id in [*asked, *followers]
            ]
        elif action == Action.CANNOT_FIX:
            reason: Params = {"reason": after.note or "-"}
            if rider is not None:
                notices.append(
                    Notice(rider, "case.rider.cannot_fix", params | reason, once_key=once)
                )
            if moderators is not None:
                notices.append(Notice(moderators, "case.moderators.cannot_fix", params | reason))
        elif action == Action.NOT_OURS and moderators is not None:
            rows = [
                (
                    Button(
                        "case.button.route",
                        VERB_ROUTE,
                        after.id,
                        d.key,
                        {"department": Dept(d.key)},
                    ),
                )
                for d in self.programme.departments
                if d.key != before.department
            ]
            notices.append(
                Notice(
                    moderators,
                    "case.moderators.returned",
                    params | {"reason": after.note or "-"},
                    buttons=tuple(rows),
                )
            )
        return notices

    async def clean_photo(self, photo: bytes) -> bytes:
        """The photo re-encoded without metadata, like the riders' evidence."""
        programme = self.programme
        evidence = await inspect_in_pool(
            photo,
            local_tz=self._zone,
            max_pixels=programme.reports.photo_max_pixels,
            max_side=AFTER_PHOTO_MAX_SIDE,
            decode_budget=programme.reports.photo_decode_mb * 1024 * 1024,
        )
        return evidence.jpeg

    def _department_chat(self, case: Case) -> int | None:
        """The case's department's Telegram group, if it has one (a department working in
        its own system may have none: then its reminders go nowhere but the admins')."""
        department = self.programme.department(case.department)
        return None if department is None else department.chat_id

    @property
    def _zone(self) -> tzinfo:
        return self.settings.timezone

    # --- 回访: the riders' satisfaction ----------------------------------------------------

    async def answer(
        self,
        case_id: int,
        telegram_id: int,
        answer: Answer,
        *,
        note: str | None = None,
        jpeg: bytes | None = None,
    ) -> Changed | Noted | Refused[CaseRefusal]:
        """A reporter's answer to "is it fixed?". The case's rider confirms it (满意, 基本满意)
        or reopens it (不满意, with a reason or a photo); a rider who reported it again (a
        follower) is recorded and, when not satisfied, heard by the department."""
        async with self.db.transaction() as conn:
            row = await store.case(conn, case_id)
            if row is None:
                return Refused(CaseRefusal.UNKNOWN)
            case = _case(row)
            roles = await self.roles(conn, telegram_id, case)
        if Role.RIDER in roles:
            action = Action.REOPEN if answer == Answer.UNSATISFIED else Action.CONFIRM
            return await self.act(
                case_id, telegram_id, action, State.FIXED, note=note, jpeg=jpeg, answer=answer
            )
        if Role.FOLLOWER not in roles:
            return Refused(CaseRefusal.UNKNOWN)
        return await self._follower_answer(case, telegram_id, answer, note, jpeg)

    async def _follower_answer(
        self,
        case: Case,
        telegram_id: int,
        answer: Answer,
        note: str | None,
        jpeg: bytes | None,
    ) -> Noted | Refused[CaseRefusal]:
        if case.fixed_at is None or case.state not in (State.FIXED, State.CONFIRMED):
            return Refused(CaseRefusal.CHANGED, case.state)
        note = (note or "").strip()[:REASON_MAX_CHARS] or None
        if answer == Answer.UNSATISFIED and note is None and jpeg is None:
            return Refused(CaseRefusal.NEEDS_REASON)
        now = self._now()
        async with self.db.transaction() as conn:
            mine = next(
                f
                for f in await store.followers(conn, case.report_id)
                if f.telegram_id == telegram_id
            )
            photo_id = (
                None if jpeg is None else await store.add_photo(conn, case.id, "rider", jpeg, now)
            )
            if not await store.add_feedback(
                conn, case.id, mine.report_id, case.reopened, answer, False, note, photo_id, now
            ):
                return Refused(CaseRefusal.ANSWERED)
            chat = self._department_chat(case)
            if answer == Answer.UNSATISFIED and chat is not None:
                await self.outbox.queue(
                    conn,
                    [
                        Notice(
                            chat,
                            "case.department.follower_unsatisfied",
                            {"reference": case.reference, "note": note or "-"},
                            photo=None if photo_id is None else f"case:{photo_id}",
                            language=None,
                        )
                    ],
                )
        return Noted(f"answer_{answer}", case)

    async def can_answer(self, case_id: int, telegram_id: int) -> Refused[CaseRefusal] | None:
        """Whether the person may still answer "is it fixed?" (before asking what is wrong)."""
        async with self.db.transaction() as conn:
            row = await store.case(conn, case_id)
            if row is None:
                return Refused(CaseRefusal.UNKNOWN)
            case = _case(row)
            roles = await self.roles(conn, telegram_id, case)
        if Role.RIDER in roles:
            return _refused(case, roles, Action.REOPEN, State.FIXED)
        if Role.FOLLOWER in roles:
            return None if case.fixed_at is not None else Refused(CaseRefusal.CHANGED, case.state)
        return Refused(CaseRefusal.UNKNOWN)

    # --- 延期: extensions -------------------------------------------------------------------

    def parse_extension(self, text: str) -> tuple[int, str] | None:
        """'2026-12-20 需要采购材料' (or 12-20, 2026/12/20, 12月20日): the end of that day in
        the programme's time zone, and the reason; None without a date or a reason."""
        match = EXTENSION_PATTERN.match(text.strip())
        if match is None or not match["reason"].strip():
            return None
        today = datetime.fromtimestamp(self._now(), self._zone).date()
        year = int(match["year"]) if match["year"] else today.year
        try:
            day = date(year, int(match["month"]), int(match["day"]))
        except ValueError:
            return None
        if not match["year"] and day < today:
            day = day.replace(year=year + 1)
        end = datetime.combine(day + timedelta(days=1), time(), self._zone)
        return int(end.timestamp()), match["reason"].strip()[:REASON_MAX_CHARS]

    async def ask_extension(
        self, case_id: int, telegram_id: int | Via, text: str
    ) -> Noted | Refused[CaseRefusal]:
        """The department asks for more time: recorded, and put to the moderators."""
        parsed = self.parse_extension(text)
        if parsed is None:
            return Refused(CaseRefusal.BAD_DATE)
        new_due, reason = parsed
        now = self._now()
        async with self.db.transaction() as conn:
            row = await store.case(conn, case_id)
            if row is None:
                return Refused(CaseRefusal.UNKNOWN)
            case = _case(row)
            roles = await self.roles(conn, telegram_id, case)
            if not roles:
                return Refused(CaseRefusal.UNKNOWN)
            if Role.STAFF not in roles or case.state.value not in store.CLOCK_STATES:
                return Refused(CaseRefusal.NOT_POSSIBLE, case.state)
            latest = now + int(timedelta(days=EXTENSION_MAX_DAYS).total_seconds())
            if not case.due_at < new_due <= latest:
                return Refused(CaseRefusal.BAD_DATE)
            asked_by = actor_id(telegram_id)
            extension_id = await store.add_extension(
                conn,
                case.id,
                case.department,
                SYSTEM_ACTOR if asked_by is None else asked_by,
                reason,
                case.due_at,
                new_due,
                now,
            )
            if extension_id is None:
                return Refused(CaseRefusal.PENDING)
            await self._event(conn, case, asked_by, Role.STAFF, "extend_ask", now, reason)
            moderators = self.settings.moderator_chat_id
            if moderators is not None:
                params: Params = {
                    "reference": case.reference,
                    "department": Dept(case.department),
                    "due": At(case.due_at),
                    "new_due": At(new_due),
                    "reason": reason,
                }
                buttons = (
                    Button("case.button.extend_yes", VERB_EXTEND, extension_id, "yes"),
                    Button("case.button.extend_no", VERB_EXTEND, extension_id, "no"),
                )
                await self.outbox.queue(
                    conn,
                    [Notice(moderators, "case.moderators.extension", params, buttons=(buttons,))],
                )
        return Noted("extend_ask", case)

    async def decide_extension(
        self, extension_id: int, telegram_id: int, approve: bool
    ) -> Noted | Refused[CaseRefusal]:
        """A moderator's or admin's one tap: the deadline moves only when approved."""
        now = self._now()
        async with self.db.transaction() as conn:
            request = await store.extension(conn, extension_id)
            if request is None or not await self._is_moderator(conn, telegram_id):
                return Refused(CaseRefusal.UNKNOWN)
            row = await store.case(conn, request["case_id"])
            assert row is not None
            case = _case(row)
            state = "approved" if approve else "refused"
            if not await store.decide_extension(conn, extension_id, state, telegram_id, now):
                return Refused(CaseRefusal.DECIDED)
            new_due = int(request["new_due_at"])
            if approve:
                category = self.programme.category(case.category or "")
                span = category.fix if category else DEFAULT_FIX
                remind = workdays.point_in_span(
                    datetime.fromtimestamp(case.dispatched_at, UTC),
                    datetime.fromtimestamp(new_due, UTC),
                    span,
                    self._zone,
                    REMIND_AT,
                )
                await store.move_due(conn, case.id, new_due, int(remind.timestamp()), now)
            action = f"extend_{'approve' if approve else 'refuse'}"
            await self._event(conn, case, telegram_id, Role.MODERATOR, action, now)
            params: Params = {"reference": case.reference, "new_due": At(new_due)}
            chat = self._department_chat(case)
            notices = []
            if chat is not None:
                key = f"case.department.extension_{state}"
                notices.append(Notice(chat, key, params))
            if approve and case.rider_telegram_id is not None:
                notices.append(Notice(case.rider_telegram_id, "case.rider.extended", params))
            await self.outbox.queue(conn, notices)
            changed = await store.case(conn, case.id)
            assert changed is not None
        return Noted(action, _case(changed))

    # --- 督办: supervision -----------------------------------------------------------------

    async def supervise(
        self, reference: str, telegram_id: int, text: str
    ) -> Noted | Refused[CaseRefusal]:
        """An admin's supervision notice on an open case: to the department, with a reply
        due within `supervision_reply_hours`."""
        text = text.strip()[:REASON_MAX_CHARS]
        if not text:
            return Refused(CaseRefusal.NEEDS_REASON)
        if not self.is_admin(telegram_id):
            return Refused(CaseRefusal.UNKNOWN)
        now = self._now()
        hours = self.programme.cases.supervision_reply_hours
        reply_due = now + int(timedelta(hours=hours).total_seconds())
        async with self.db.transaction() as conn:
            case_id = await store.case_by_reference(conn, reference.strip().upper())
            row = None if case_id is None else await store.case(conn, case_id)
            if row is None:
                return Refused(CaseRefusal.UNKNOWN)
            case = _case(row)
            if case.state in CLOSED:
                return Refused(CaseRefusal.NOT_POSSIBLE, case.state)
            await store.add_supervision(conn, case.id, telegram_id, text, now, reply_due)
            await self._event(conn, case, telegram_id, Role.MODERATOR, "supervise", now, text)
            chat = self._department_chat(case)
            if chat is not None:
                params: Params = {"reference": case.reference, "text": text, "due": At(reply_due)}
                button = Button("case.button.supervision_reply", VERB_SUPERVISION, case.id)
                await self.outbox.queue(
                    conn,
                    [
                        Notice(
                            chat,
                            "case.department.supervision",
                            params,
                            buttons=((button,),),
                        )
                    ],
                )
        return Noted("supervise", case)

    async def may_reply_supervision(
        self, case_id: int, telegram_id: int
    ) -> tuple[Case | None, Refused[CaseRefusal] | None]:
        case = await self.case_for(case_id, telegram_id)
        if case is None:
            return None, Refused(CaseRefusal.UNKNOWN)
        async with self.db.transaction() as conn:
            roles = await self.roles(conn, telegram_id, case)
        if Role.STAFF not in roles:
            return case, Refused(CaseRefusal.NOT_YOURS, case.state)
        return case, None

    async def reply_supervision(
        self, case_id: int, telegram_id: int, text: str
    ) -> Noted | Refused[CaseRefusal]:
        """The department's reply to the case's 督办, told to the admin who issued it."""
        case, refused = await self.may_reply_supervision(case_id, telegram_id)
        if refused is not None or case is None:
            return refused or Refused(CaseRefusal.UNKNOWN)
        text = text.strip()[:REASON_MAX_CHARS]
        now = self._now()
        async with self.db.transaction() as conn:
            replied = await store.reply_supervision(conn, case.id, text, telegram_id, now)
            if replied is None:
                return Refused(CaseRefusal.ANSWERED)
            await self._event(conn, case, telegram_id, Role.STAFF, "supervision_reply", now, text)
            params: Params = {
                "reference": case.reference,
                "department": Dept(case.department),
                "text": replied["text"],
                "reply": text,
            }
            await self.outbox.queue(
                conn, [Notice(int(replied["issued_by"]), "case.admin.supervision_reply", params)]
            )
        return Noted("supervision_reply", case)

    async def _event(
        self,
        conn: Connection,
        case: Case,
        actor: int | None,
        role: Role,
        action: str,
        now: int,
        note: str | None = None,
    ) -> None:
        """An event that leaves the case's state as it is (a reminder, a breach, a 督办)."""
        await store.record_event(
            conn, case.id, actor, role, action, case.state, case.state, case.department, now, note
        )

    # --- the clock ----------------------------------------------------------------------

    async def service_check(self) -> ServiceCheck:
        """The clock of every running case: for each deadline (accept, fix) a reminder to
        the department at 75% and a breach at 100% (told to the department and each admin);
        the 催办 `urge_after_hours` past the fix deadline; 督办 left unanswered escalated to
        the admins; and fixed cases left unanswered for `confirm_days` confirmed (基本满意,
        counted as silent)."""
        now = self._now()
        reminded: list[int] = []
        breached: list[int] = []
        async with self.db.transaction() as conn:
            for row in await store.running(conn):
                case = _case(row)
                for clock in self._clocks(case, row):
                    if now >= clock.due and row[clock.breached] is None:
                        await self._breach(conn, case, clock, now)
                        breached.append(case.id)
                    elif now >= clock.remind and row[clock.reminded] is None:
                        await self._remind(conn, case, clock, now)
                        reminded.append(case.id)
                urge_at = case.due_at + self.programme.cases.urge_after_hours * 3600
                if now >= urge_at and row["urged_at"] is None:
                    await self._urge(conn, case, now)
            for supervision in await store.supervisions_unanswered(conn, now):
                await self._escalate(conn, supervision, now)
            silent_since = now - int(
                timedelta(days=self.programme.cases.confirm_days).total_seconds()
            )
            waiting = await store.fixed_before(conn, silent_since)
        confirmed = []
        for case_id in waiting:
            done = await self.act(case_id, None, Action.CONFIRM, State.FIXED)
            if isinstance(done, Changed):
                confirmed.append(done)
        return ServiceCheck(tuple(reminded), tuple(breached), tuple(confirmed))

    @staticmethod
    def _clocks(case: Case, row: Row) -> list[_Clock]:
        """The deadlines running for a case: accepting it (until accepted), and fixing it."""
        clocks = []
        if case.awaiting_accept and case.accept_due_at is not None:
            remind = case.accept_remind_at or case.accept_due_at
            clocks.append(
                _Clock(
                    "accept", case.accept_due_at, remind, "accept_reminded_at", "accept_breached_at"
                )
            )
        remind = case.remind_at or int(
            case.dispatched_at + REMIND_AT * (case.due_at - case.dispatched_at)
        )
        clocks.append(_Clock("fix", case.due_at, remind, "reminded_at", "breached_at"))
        return clocks

    async def _remind(self, conn: Connection, case: Case, clock: _Clock, now: int) -> None:
        if not await store.mark(conn, clock.reminded, case.id, now):
            return
        chat = self._department_chat(case)
        if chat is not None:
            params: Params = {"reference": case.reference, "due": At(clock.due)}
            key = f"case.department.{clock.name}_reminder"
            await self.outbox.queue(conn, [Notice(chat, key, params)])

    async def _breach(self, conn: Connection, case: Case, clock: _Clock, now: int) -> None:
        if not await store.mark(conn, clock.breached, case.id, now):
            return
        await store.mark(conn, clock.reminded, case.id, now)
        action = "breach" if clock.name == "fix" else "accept_breach"
        await self._event(conn, case, None, Role.CLOCK, action, now)
        params: Params = {"reference": case.reference, "due": At(clock.due)}
        notices = [
            Notice(
                admin,
                f"case.admin.{clock.name}_breach",
                params | {"department": Dept(case.department)},
            )
            for admin in sorted(self.settings.admin_ids)
        ]
        chat = self._department_chat(case)
        if chat is not None:
            notices.append(Notice(chat, f"case.department.{clock.name}_breach", params))
        await self.outbox.queue(conn, notices)

    async def _urge(self, conn: Connection, case: Case, now: int) -> None:
        """催办: the day after the deadline, the department is pressed once more."""
        if not await store.mark(conn, "urged_at", case.id, now):
            return
        await self._event(conn, case, None, Role.CLOCK, "urge", now)
        chat = self._department_chat(case)
        if chat is not None:
            params: Params = {"reference": case.reference, "due": At(case.due_at)}
            await self.outbox.queue(conn, [Notice(chat, "case.department.urge", params)])

    async def _escalate(self, conn: Connection, supervision: Row, now: int) -> None:
        """A 督办 the department left unanswered: to every admin."""
        if not await store.mark_escalated(conn, supervision["id"], now):
            return
        row = await store.case(conn, supervision["case_id"])
        assert row is not None
        await self._event(conn, _case(row), None, Role.CLOCK, "escalate", now, supervision["text"])
        params: Params = {
            "reference": supervision["reference"],
            "department": Dept(supervision["department"]),
            "text": supervision["text"],
            "due": At(supervision["reply_due_at"]),
        }
        await self.outbox.queue(
            conn,
            [
                Notice(admin, "case.admin.supervision_escalated", params)
                for admin in sorted(self.settings.admin_ids)
            ],
        )

    async def overdue_digest(self) -> int:
        """The daily list of overdue cases, to each admin privately; returns how many."""
        now = self._now()
        overdue = [c for c in await self.open_cases(0, moderator=True) if c.overdue(now)]
        if not overdue:
            return 0
        lines: tuple[tuple[str, Params], ...] = tuple(
            (
                "case.admin.overdue_line",
                {"reference": c.reference, "department": Dept(c.department), "due": At(c.due_at)},
            )
            for c in overdue[:100]
        )
        await self.outbox.send(
            *[
                Notice(admin, "case.admin.overdue", {"count": len(overdue)}, lines=lines)
                for admin in sorted(self.settings.admin_ids)
            ]
        )
        return len(overdue)

    # --- urgent reports -----------------------------------------------------------------

    def is_urgent(self, category: str | None) -> bool:
        found = self.programme.category(category or "")
        return bool(found and found.urgent)

    async def urgent_submitted(self, reference: str) -> int:
        """Tell every moderator privately of an urgent report; returns how many were told."""
        async with self.db.transaction() as conn:
            category = await store.category_of(conn, reference)
            if not self.is_urgent(category):
                return 0
            assert category is not None
            notices = await duty_notices(conn, self.settings, reference, category)
            return await self.outbox.queue(conn, notices)

    async def purge_photos(self, retention_days: int) -> int:
        before = self._now() - int(timedelta(days=retention_days).total_seconds())
        async with self.db.transaction() as conn:
            return await store.purge_photos(conn, before)


async def duty_notices(
    conn: Connection, settings: Settings, reference: str, category: str
) -> list[Notice]:
    """An urgent report's notice to every moderator privately (the 24-hour desk)."""
    on_duty = set(settings.moderator_ids | settings.admin_ids)
    on_duty |= set(await store.added_moderators(conn))
    params: Params = {"reference": reference, "category": Category(category)}
    return [
        Notice(m, "case.moderators.urgent", dict(params), once_key=f"urgent:{reference}:{m}")
        for m in sorted(on_duty)
    ]


@dataclass(frozen=True)
class _Clock:
    """One deadline of a case: its name (accept, fix), due and reminder times, and the
    columns that record that it was reminded and breached."""

    name: str
    due: int
    remind: int
    reminded: str
    breached: str


@dataclass(frozen=True)
class ServiceCheck:
    reminded: tuple[int, ...]
    breached: tuple[int, ...]
    confirmed: tuple[Changed, ...]
