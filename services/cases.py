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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from enum import StrEnum

from services.clock import Now, utc_now
from services.outbox import At, Button, Category, Dept, Notice, Outbox, Params
from services.photos import inspect_in_pool
from services.refusal import Refused
from settings import Programme, Settings
from storage import cases as store
from storage import moderation as moderator_store
from storage.db import Connection, Database, Row

AFTER_PHOTO_MAX_SIDE = 1600
REASON_MAX_CHARS = 500
REMIND_AT = 0.75  # of the time to fix


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
NEEDS_REASON = frozenset({A.NOT_OURS, A.CANNOT_FIX, A.REROUTE})
CLOSED = frozenset({S.CONFIRMED, S.CANNOT_FIX})
# Button verbs the outbox's notices carry (handlers/cases.py declares them with these names).
VERB_YES = "cyes"
VERB_NO = "cno"
VERB_ROUTE = "croute"


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

    def overdue(self, now: int) -> bool:
        return self.state.value in store.CLOCK_STATES and self.due_at < now


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
    )


@dataclass(frozen=True)
class Changed:
    """A change made; `before` is the case as it was (its old card may need updating)."""

    action: Action
    before: Case
    case: Case


def _due(programme: Programme, category: str | None, now: int) -> int:
    found = programme.category(category or "")
    return now + int(timedelta(hours=found.fix_hours if found else 72).total_seconds())


def dispatched_notice(case: Case, once: str) -> list[Notice]:
    if case.rider_telegram_id is None:
        return []
    params: Params = {"reference": case.reference, "department": Dept(case.department)}
    params["due"] = At(case.due_at)
    return [Notice(case.rider_telegram_id, "case.rider.dispatched", params, once_key=once)]


async def open_case(
    conn: Connection, outbox: Outbox, programme: Programme, report: Row, now: int
) -> int | None:
    """Make an approved report a case of its department, in the approval's transaction.

    Nothing happens when no department handles the category (or none are configured)."""
    department = programme.department_for(report["category"])
    if department is None:
        return None
    category = programme.category(report["category"] or "")
    urgent = bool(category and category.urgent)
    due = _due(programme, report["category"], now)
    case_id = await store.create(conn, report["id"], department.key, urgent, now, due)
    if case_id is None:
        return None
    await store.record_event(
        conn, case_id, None, Role.CLOCK, "open", None, State.DISPATCHED, department.key, now
    )
    row = await store.case(conn, case_id)
    assert row is not None
    await outbox.queue(conn, dispatched_notice(_case(row), f"case:{case_id}:dispatched:{now}"))
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

    def _now(self) -> int:
        return int(self.clock().timestamp())

    @property
    def enabled(self) -> bool:
        return bool(self.programme.departments)

    async def open(self, conn: Connection, report: Row, now: int) -> int | None:
        """The approval hook (services/moderation.py): the case, and its sender woken."""
        case_id = await open_case(conn, self.outbox, self.programme, report, now)
        if case_id is not None:
            self.wake.set()
        return case_id

    # --- who ----------------------------------------------------------------------------

    def is_admin(self, telegram_id: int) -> bool:
        return telegram_id in self.settings.admin_ids

    async def _is_moderator(self, conn: Connection, telegram_id: int) -> bool:
        settings = self.settings
        if telegram_id in settings.moderator_ids or telegram_id in settings.admin_ids:
            return True
        return await moderator_store.is_added_moderator_in(conn, telegram_id)

    async def roles(self, conn: Connection, telegram_id: int, case: Case) -> set[Role]:
        found = set()
        if self.is_admin(telegram_id) or await store.is_staff(conn, case.department, telegram_id):
            found.add(Role.STAFF)
        if await self._is_moderator(conn, telegram_id):
            found.add(Role.MODERATOR)
        if case.rider_telegram_id == telegram_id:
            found.add(Role.RIDER)
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
        action: Action,
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
    ) -> Changed | Refused[CaseRefusal] | None:
        """A reply to one of the bot's prompts; None when it answers no open prompt. What the
        reply brings is checked before the prompt is used up: a refused photo (PhotoRejected)
        or a missing reason leaves the prompt open for the next reply."""
        waiting = await store.prompt(self.db, chat_id, message_id, telegram_id)
        if waiting is None:
            return None
        action = Action(waiting["action"])
        if action in NEEDS_REASON and not text.strip():
            return Refused(CaseRefusal.NEEDS_REASON)
        jpeg = await self._clean(photo) if photo is not None else None
        async with self.db.transaction() as conn:
            prompt = await store.take_prompt(conn, chat_id, message_id, telegram_id)
        if prompt is None:
            return None
        expected = State(prompt["expected_state"])
        if action == Action.REOPEN:  # the rider's photo after "no": added to the case
            return await self.add_rider_photo(prompt["case_id"], telegram_id, text, jpeg)
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
        telegram_id: int | None,
        action: Action,
        expected: State,
        *,
        note: str | None = None,
        jpeg: bytes | None = None,
        department: str | None = None,
    ) -> Changed | Refused[CaseRefusal]:
        """Carry out one action on a case shown in state `expected`; None actor: the clock.
        `jpeg` is a photo already cleaned (`_clean`). Someone with no part in the case is
        told it does not exist, whatever it is: a forged button learns nothing."""
        note = (note or "").strip()[:REASON_MAX_CHARS] or None
        if action in NEEDS_REASON and note is None:
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
                photo_id = await store.add_photo(conn, case_id, "after", jpeg, now)
                fields["after_photo_id"] = photo_id
            if not await store.move(conn, case_id, before.state, new, **fields):
                return Refused(CaseRefusal.CHANGED, before.state)
            moved_to = str(fields.get("department", before.department))
            await store.record_event(
                conn,
                case_id,
                telegram_id,
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
            await self.outbox.queue(conn, self._notices(action, before, after, now))
        if after.card_message_id is None:
            self.wake.set()
        return Changed(action, before, after)

    def _fields(
        self, case: Case, action: Action, now: int, note: str | None, department: str | None
    ) -> dict[str, object]:
        fields: dict[str, object] = {"updated_at": now}
        if note is not None:
            fields["note"] = note
        if action == Action.FIXED:
            fields["fixed_at"] = now
        elif action in (Action.CONFIRM, Action.CANNOT_FIX):
            fields["closed_at"] = now
        elif action in (Action.REROUTE, Action.REOPEN):
            # A fresh dispatch: a new card in the department's chat, the clock starts again.
            fields |= {
                "dispatched_at": now,
                "due_at": _due(self.programme, case.category, now),
                "card_chat_id": None,
                "card_message_id": None,
                "card_attempted_at": None,
                "reminded_at": None,
                "breached_at": None,
            }
            if action == Action.REROUTE:
                fields["department"] = department
            else:
                fields["reopened"] = case.reopened + 1
        return fields

    def _notices(self, action: Action, before: Case, after: Case, now: int) -> list[Notice]:
        rider = after.rider_telegram_id
        once = f"case:{after.id}:{action}:{now}"
        params: Params = {"reference": after.reference, "department": Dept(after.department)}
        notices: list[Notice] = []
        moderators = self.settings.moderator_chat_id
        if action == Action.REROUTE:
            notices += dispatched_notice(after, once)
        elif action == Action.FIXED and rider is not None:
            notices.append(
                Notice(
                    rider,
                    "case.rider.fixed",
                    params,
                    once_key=once,
                    photo=f"case:{after.after_photo_id}" if after.after_photo_id else None,
                    buttons=(
                        (
                            Button("case.button.yes", VERB_YES, after.id, State.FIXED),
                            Button("case.button.no", VERB_NO, after.id, State.FIXED),
                        ),
                    ),
                )
            )
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

    async def _clean(self, photo: bytes) -> bytes:
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

    @property
    def _zone(self) -> tzinfo:
        return self.settings.timezone

    async def add_rider_photo(
        self, case_id: int, telegram_id: int, text: str, jpeg: bytes | None
    ) -> Changed | Refused[CaseRefusal]:
        """The rider's photo (cleaned) and words after saying "not fixed": recorded."""
        now = self._now()
        async with self.db.transaction() as conn:
            row = await store.case(conn, case_id)
            if row is None:
                return Refused(CaseRefusal.UNKNOWN)
            case = _case(row)
            if case.rider_telegram_id != telegram_id:
                return Refused(CaseRefusal.NOT_YOURS, case.state)
            photo_id = (
                None if jpeg is None else await store.add_photo(conn, case_id, "rider", jpeg, now)
            )
            await store.record_event(
                conn,
                case_id,
                telegram_id,
                Role.RIDER,
                "rider_photo",
                case.state,
                case.state,
                case.department,
                now,
                text.strip()[:REASON_MAX_CHARS] or None,
                photo_id,
            )
            department = self.programme.department(case.department)
            if department is not None:
                await self.outbox.queue(
                    conn,
                    [
                        Notice(
                            department.chat_id,
                            "case.department.rider_photo",
                            {"reference": case.reference, "note": text.strip() or "-"},
                            photo=None if photo_id is None else f"case:{photo_id}",
                            language=None,
                        )
                    ],
                )
        return Changed(Action.REOPEN, case, case)

    # --- the clock ----------------------------------------------------------------------

    async def service_check(self) -> ServiceCheck:
        """Reminders at 75% of the time, breaches (recorded, told to the department and each
        admin), and fixed cases the rider left unanswered for `case_confirm_days` confirmed."""
        now = self._now()
        reminded: list[int] = []
        breached: list[int] = []
        async with self.db.transaction() as conn:
            for row in await store.running(conn):
                case = _case(row)
                department = self.programme.department(case.department)
                chat = department.chat_id if department else None
                params: Params = {"reference": case.reference, "due": At(case.due_at)}
                if now >= case.due_at and row["breached_at"] is None:
                    await store.mark(conn, "breached_at", case.id, now)
                    await store.mark(conn, "reminded_at", case.id, now)
                    await store.record_event(
                        conn,
                        case.id,
                        None,
                        Role.CLOCK,
                        "breach",
                        case.state,
                        case.state,
                        case.department,
                        now,
                    )
                    notices = [
                        Notice(
                            a, "case.admin.breach", params | {"department": Dept(case.department)}
                        )
                        for a in sorted(self.settings.admin_ids)
                    ]
                    if chat is not None:
                        notices.append(Notice(chat, "case.department.breach", params))
                    await self.outbox.queue(conn, notices)
                    breached.append(case.id)
                    continue
                remind_at = case.dispatched_at + REMIND_AT * (case.due_at - case.dispatched_at)
                if now >= remind_at and row["reminded_at"] is None:
                    await store.mark(conn, "reminded_at", case.id, now)
                    if chat is not None:
                        await self.outbox.queue(
                            conn, [Notice(chat, "case.department.reminder", params)]
                        )
                    reminded.append(case.id)
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
class ServiceCheck:
    reminded: tuple[int, ...]
    breached: tuple[int, ...]
    confirmed: tuple[Changed, ...]
