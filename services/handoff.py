"""Cases handed to departments where they already work, and their updates taken back.

A department's `send` (config.toml) is its channel: its Telegram group (handlers/cases.py
sends the card), or one of the three here. Each dispatch of a case to such a department is
a delivery row (written in the dispatch's transaction, storage/handoff.py) that this module
hands over, oldest first per department, retrying with backoff from the database until the
other side takes it:

- **email**: a case e-mail through SMTP (STARTTLS and login), the photos attached, with a
  link to a small signed page where a clerk accepts, closes or returns the case;
- **webhook**: the case as versioned JSON (`SCHEMA`), signed (services/signing.py), with an
  idempotency key that stays the same on every attempt;
- **open311**: a GeoReport v2 service request; its status is read back every
  `poll_seconds`.

Updates come back signed to the bot's web server (handlers/web.py), from the e-mail's page,
or from an Open311 poll; each goes through `Cases.act`, the same transition table as a press
on a Telegram card, as the department (`Via`), once per update id.

    dispatched --(deliver: 2xx / 250 / service_request_id)--> delivered
        \\--(refused, timed out, down)--> retry in 30 s, 60 s, ... 10 min --> ...
                                  (after `alert_after` failures: admins told, once)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from locales import Texts
from services.cases import Action, Case, CaseRefusal, Cases, Changed, Noted, State, Via
from services.channels import Channels, Failed, WorkOrder
from services.clock import Now, utc_now
from services.outbox import Dept, Notice, Params
from services.photos import PhotoRejected
from services.refusal import Refused
from services.signing import seal, unseal
from settings import Department, Settings
from storage import handoff as store
from storage.db import Database, Row

log = logging.getLogger(__name__)

CHANNELS = ("email", "webhook", "open311")
PHOTO_MAX_BYTES = 5 * 1024 * 1024  # a photo sent back with an update
LINK_DAYS = 180  # how long an e-mail's page and a photo link stay good
PAGE_PURPOSE = "case-page"
PHOTO_PURPOSE = "case-photo"
POLL_BATCH = 50  # Open311 requests read back in one GET


class Status(StrEnum):
    """What a department's system may say of a case."""

    ACCEPTED = "accepted"
    FIXED = "fixed"
    NOT_OURS = "not_ours"
    CANNOT_FIX = "cannot_fix"
    EXTENSION = "extension"


ACTION_OF = {
    Status.ACCEPTED: Action.ACCEPT,
    Status.FIXED: Action.FIXED,
    Status.NOT_OURS: Action.NOT_OURS,
    Status.CANNOT_FIX: Action.CANNOT_FIX,
}
# GeoReport v2 says open or closed; FixMyStreet's and others' richer statuses are read too.
OPEN311_STATUS: Mapping[str, Status | None] = {
    "open": None,
    "acknowledged": Status.ACCEPTED,
    "in_progress": Status.ACCEPTED,
    "investigating": Status.ACCEPTED,
    "action_scheduled": Status.ACCEPTED,
    "closed": Status.FIXED,
    "fixed": Status.FIXED,
    "not_councils_responsibility": Status.NOT_OURS,
    "unable_to_fix": Status.CANNOT_FIX,
    "no_further_action": Status.CANNOT_FIX,
}


@dataclass(frozen=True)
class Reply:
    """What an update's sender is answered: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == 200


def _error(status: int, error: str, message: str, **more: Any) -> Reply:
    return Reply(status, {"ok": False, "error": error, "message": message, **more})


REFUSAL_MESSAGES = {
    CaseRefusal.UNKNOWN: (404, "unknown_case", "no such case for this department"),
    CaseRefusal.NEEDS_REASON: (400, "needs_note", "this status needs a note saying why"),
    CaseRefusal.BAD_DATE: (400, "bad_due", "due must be a later date (YYYY-MM-DD) and a note"),
    CaseRefusal.PENDING: (409, "extension_pending", "an extension is already waiting"),
}


def refusal_answer(refused: Refused[CaseRefusal], status: Status) -> Reply:
    if refused.reason in REFUSAL_MESSAGES:
        code, error, message = REFUSAL_MESSAGES[refused.reason]
        return _error(code, error, message)
    state = str(refused.state) if refused.state is not None else None
    return _error(
        409, "not_allowed", f"the case is {state}: {status} is not possible now", state=state
    )


class Handoff:
    """Hands cases over by their departments' channels and applies what comes back."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        cases: Cases,
        texts: Texts,
        clock: Now = utc_now,
    ) -> None:
        self.db = db
        self.settings = settings
        self.programme = settings.programme
        self.rules = settings.programme.delivery
        self.cases = cases
        self.texts = texts
        self.clock = clock
        self.channels = Channels(settings, texts)
        self._polled_at = 0.0

    async def close(self) -> None:
        await self.channels.close()

    @property
    def departments(self) -> list[Department]:
        return [d for d in self.programme.departments if d.send in CHANNELS]

    @property
    def enabled(self) -> bool:
        return bool(self.departments)

    def now(self) -> int:
        return int(self.clock().timestamp())

    async def undelivered(self) -> dict[int, int]:
        """Cases not yet handed over after a failed attempt: case id -> attempts so far."""
        return await store.undelivered(self.db)

    async def case_id(self, reference: str) -> int | None:
        return await store.case_by_reference(self.db, reference)

    async def photo(self, report_id: int, position: int) -> bytes | None:
        """A report photo for a photo link (None once retention has erased it)."""
        photos = await store.report_photos(self.db, report_id)
        return photos[position - 1] if 0 < position <= len(photos) else None

    # --- handing over ---------------------------------------------------------------------

    async def run(self) -> None:
        """Hand over what is due, read Open311 back, wait; for as long as the bot runs."""
        wake = self.cases.handoff_wake
        while True:
            wake.clear()
            try:
                wait = await self.deliver_due()
                wait = min(wait, await self.poll_due())
            except Exception:
                log.exception("handing cases over failed; retrying in 5 s")
                wait = 5.0
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=wait)

    async def deliver_due(self) -> float:
        """Each department's due deliveries, in order, departments side by side (one that
        is down holds up only itself); seconds until the next one falls due."""
        heads = await store.heads(self.db)
        now = self.now()
        due = [row["department"] for row in heads if row["next_at"] <= now]
        await asyncio.gather(*(self._deliver_department(key) for key in due))
        later = [int(row["next_at"]) for row in await store.heads(self.db)]
        return float(max(0, min(later) - self.now())) if later else 3600.0

    async def _deliver_department(self, key: str) -> None:
        while True:
            head = next((r for r in await store.heads(self.db) if r["department"] == key), None)
            if head is None or head["next_at"] > self.now():
                return
            if not await self.deliver(head):
                return

    async def deliver(self, row: Row) -> bool:
        """One attempt at one delivery; True if the department has it (or never will need
        it: the case moved on before it went)."""
        department = self.programme.department(row["department"])
        case = await self.cases.case(row["case_id"])
        now = self.now()
        if (
            department is None
            or department.send != row["channel"]
            or case is None
            or case.department != row["department"]
            or case.dispatched_at != row["dispatched_at"]
            or case.state not in (State.DISPATCHED, State.REOPENED)
        ):
            await store.supersede(self.db, row["id"], now)
            return True
        order = await self._order(row, department, case)
        started = time.perf_counter()
        try:
            done = await self.channels.send(department, order)
        except Failed as exc:
            ms = round((time.perf_counter() - started) * 1000)
            attempts = int(row["attempts"]) + 1
            rules = self.rules
            pause = min(rules.retry_seconds * 2 ** (attempts - 1), rules.retry_max_seconds)
            await store.attempted(self.db, row["id"], now, False, exc.detail, ms, now + pause)
            log.warning(
                "case %s not delivered to %s by %s (attempt %s): %s; next in %ss",
                order.reference,
                department.key,
                department.send,
                attempts,
                exc.detail,
                pause,
            )
            if attempts >= self.rules.alert_after:
                await self._tell_admins(row, order.reference, department, "undelivered", exc.detail)
            return False
        ms = round((time.perf_counter() - started) * 1000)
        await store.attempted(self.db, row["id"], now, True, done.detail, ms, now, done.remote_id)
        if row["alerted_at"] is not None:
            await self._tell_admins(row, order.reference, department, "delivered", done.detail)
        return True

    async def _tell_admins(
        self, row: Row, reference: str, department: Department, kind: str, detail: str
    ) -> None:
        params: Params = {
            "reference": reference,
            "department": Dept(department.key),
            "channel": department.send,
            "detail": detail,
            "attempts": int(row["attempts"]) + 1,
        }
        notices = [
            Notice(admin, f"handoff.admin.{kind}", params, once_key=f"handoff:{row['id']}:{kind}")
            for admin in sorted(self.settings.admin_ids)
        ] + [
            Notice(chat, f"handoff.admin.{kind}", params, once_key=f"handoff:{row['id']}:{kind}:m")
            for chat in [self.settings.moderator_chat_id]
            if chat is not None
        ]
        async with self.db.transaction() as conn:
            if kind == "undelivered" and not await store.mark_alerted(conn, row["id"], self.now()):
                return
            await self.cases.outbox.queue(conn, notices)

    async def _order(self, row: Row, department: Department, case: Case) -> WorkOrder:
        photos = tuple(await store.report_photos(self.db, case.report_id))
        public = self.settings.web.public_url
        expires = self.now() + LINK_DAYS * 86400
        key = self.settings.link_key
        urls: tuple[str, ...] = ()
        page = updates = None
        if public is not None:
            urls = tuple(
                f"{public}/photos/{seal(key, PHOTO_PURPOSE, (case.report_id, n), expires)}.jpg"
                for n in range(1, len(photos) + 1)
            )
            sealed = seal(key, PAGE_PURPOSE, (case.id, case.dispatched_at), expires)
            page = f"{public}/case/{sealed}"
            updates = f"{public}/departments/{department.key}/updates"
        found = self.programme.category(case.category or "")
        return WorkOrder(
            key=row["idempotency_key"],
            delivery_id=row["id"],
            reference=case.reference,
            event="case.reopened" if case.state == State.REOPENED else "case.dispatched",
            received_at=await store.submitted_at(self.db, case.report_id) or case.opened_at,
            dispatched_at=case.dispatched_at,
            category=case.category,
            category_name=found.name("zh") if found else (case.category or "-"),
            town=case.town,
            grid=case.grid,
            latitude=case.latitude,
            longitude=case.longitude,
            place=case.venue_name,
            description=case.description,
            urgent=case.urgent,
            accept_due_at=case.accept_due_at,
            due_at=case.due_at,
            reopened=case.reopened,
            note=case.note,
            photos=photos,
            photo_urls=urls,
            page_url=page,
            updates_url=updates,
        )

    async def poll_due(self) -> float:
        """Read Open311 requests back every `poll_seconds`; seconds until the next read."""
        period = self.rules.poll_seconds
        openers = [d for d in self.departments if d.send == "open311"]
        if not openers or period == 0:
            return 3600.0
        left = self._polled_at + period - time.monotonic()
        if left > 0:
            return left
        self._polled_at = time.monotonic()
        for department in openers:
            try:
                await self.poll(department)
            except Failed as exc:
                log.warning("Open311 requests of %s not read: %s", department.key, exc.detail)
        return float(period)

    async def poll(self, department: Department) -> int:
        """Read the department's open requests back and apply each status change; how many
        changed a case."""
        now = self.now()
        rows = await store.to_poll(self.db, department.key, now, POLL_BATCH)
        if not rows:
            return 0
        ids = {str(row["remote_id"]): row for row in rows}
        changed = 0
        for item in await self.channels.read_requests(department, list(ids)):
            row = ids.get(str(item.get("service_request_id"))) if isinstance(item, dict) else None
            if row is None or not isinstance(item.get("status"), str):
                continue
            remote = item["status"].lower()
            await store.polled(self.db, row["id"], remote, now)
            status = OPEN311_STATUS.get(remote)
            if remote == row["remote_status"] or status is None:
                continue
            answer = await self.apply(
                department.key,
                f"open311:{item['service_request_id']}:{remote}:{item.get('updated_datetime')}",
                row["case_id"],
                status,
                note=str(item.get("status_notes") or "") or None,
            )
            changed += answer.ok
        for row in rows:
            await store.polled(self.db, row["id"], None, now)
        return changed

    # --- updates back ---------------------------------------------------------------------

    async def apply(
        self,
        department: str,
        update_id: str,
        case_id: int | None,
        status: Status,
        *,
        note: str | None = None,
        photo: bytes | None = None,
        due: str | None = None,
    ) -> Reply:
        """One status update from a department's system, applied once: a replay (the same
        update id) is answered as the first time and changes nothing. "fixed" on a case not
        yet accepted accepts it first (a system may report both at once)."""
        async with self.db.transaction() as conn:
            earlier = await store.taken_update(conn, department, update_id)
        if earlier is not None:
            return Reply(200, {**json.loads(earlier), "replayed": True})
        case = None if case_id is None else await self.cases.case(case_id)
        if case is None or case.department != department:
            return _error(404, "unknown_case", "no such case for this department")
        answer = await self._carry_out(case.id, status, note, photo, due)
        if not answer.ok:
            return answer
        async with self.db.transaction() as conn:
            taken = await store.take_update(
                conn,
                department,
                update_id,
                case.id,
                status,
                json.dumps(answer.body),
                self.now(),
            )
            earlier = None if taken else await store.taken_update(conn, department, update_id)
        if earlier is not None:
            return Reply(200, {**json.loads(earlier), "replayed": True})
        return answer

    async def _carry_out(
        self,
        case_id: int,
        status: Status,
        note: str | None,
        photo: bytes | None,
        due: str | None,
    ) -> Reply:
        case = await self.cases.case(case_id)
        assert case is not None
        via = Via(case.department)
        jpeg = None
        if photo is not None:
            try:
                jpeg = await self.cases.clean_photo(photo)
            except PhotoRejected as exc:
                return _error(422, "bad_photo", f"the photo cannot be used: {exc.reason}")
        outcome: Changed | Noted | Refused[CaseRefusal]
        if status == Status.EXTENSION:
            outcome = await self.cases.ask_extension(case.id, via, f"{due or ''} {note or ''}")
        else:
            if status == Status.FIXED and case.state in (State.DISPATCHED, State.REOPENED):
                accepted = await self.cases.act(case.id, via, Action.ACCEPT, case.state)
                if isinstance(accepted, Refused):
                    return refusal_answer(accepted, status)
                case = accepted.case
            outcome = await self.cases.act(
                case.id, via, ACTION_OF[status], case.state, note=note, jpeg=jpeg
            )
        if isinstance(outcome, Refused):
            return refusal_answer(outcome, status)
        return Reply(
            200, {"ok": True, "reference": outcome.case.reference, "state": outcome.case.state}
        )

    async def case_of_page(self, token: str) -> tuple[int, str] | None:
        """The (case id, department) an e-mail's page link is for, while that dispatch is
        the case's current one; None for a forged, expired or outdated link."""
        values = unseal(self.settings.link_key, PAGE_PURPOSE, token, 2, self.now())
        if values is None:
            return None
        case = await self.cases.case(values[0])
        if case is None or case.dispatched_at != values[1]:
            return None
        return case.id, case.department


def decode_photo(value: object) -> bytes | None:
    """A base64 photo from an update's JSON (None if absent); ValueError if not base64."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("photo must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("photo is not base64") from None
