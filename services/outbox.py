"""Notices that follow a state change: queued in the change's own transaction, sent after.

A service that changes state (a decision, a payout, a reminder) queues its notices with
`outbox.queue(conn, notices)` inside the same transaction, so the change and its notices
commit together or not at all. The delivery loop (handlers/infra/notify.py) renders each notice in
the recipient's language and sends it, at most once: a notice is claimed before it is sent,
and one claimed by a process that died before confirming it is not sent again.

A notice names a message key and its parameters; amounts, times, other messages and
categories are kept as values (`Fen`, `At`, `Msg`, `Category`) and formatted at delivery in
the recipient's language. When Telegram cannot take it now, the pause doubles from a minute up
to an hour; after `MAX_ATTEMPTS` (about a day of trying) the notice is given up and logged.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from services.clock import Now, utc_now
from storage import outbox as store
from storage.db import Connection, Database

FIRST_PAUSE_SECONDS = 60
LONGEST_PAUSE_SECONDS = 3600
MAX_ATTEMPTS = 30
KEPT_AFTER_DELIVERY = timedelta(days=30)


def pause_after(attempts: int) -> int:
    """Seconds to wait after `attempts` failed attempts."""
    return int(min(FIRST_PAUSE_SECONDS * 2 ** max(attempts - 1, 0), LONGEST_PAUSE_SECONDS))


@dataclass(frozen=True)
class Fen:
    """An amount of money, written in the recipient's way (`100.00 元`)."""

    fen: int


@dataclass(frozen=True)
class At:
    """A moment (unix seconds), written in the programme's time zone."""

    seconds: int


@dataclass(frozen=True)
class Msg:
    """Another message, by key (a reject reason, a status), in the recipient's language."""

    key: str


@dataclass(frozen=True)
class Category:
    """A report category, by key, named in the recipient's language."""

    key: str


@dataclass(frozen=True)
class Dept:
    """A department (config.toml `[[departments]]`), by key, named in the recipient's language."""

    key: str


Param = str | int | Fen | At | Msg | Category | Dept
Params = dict[str, Param]


@dataclass(frozen=True)
class Button:
    """An inline button under a notice: its label (a message key) and what pressing it sends,
    as a verb name, an item and an argument (the deliverer builds the callback data)."""

    label: str
    verb: str
    item: int
    argument: str = ""
    params: Params = field(default_factory=dict)  # of the label


@dataclass(frozen=True)
class Notice:
    """One message for one chat; `lines` follow the head message, one per line."""

    chat_id: int
    message: str
    params: Params = field(default_factory=dict)
    lines: tuple[tuple[str, Params], ...] = ()
    language: str | None = None  # None: the recipient's own language at delivery
    once_key: str | None = None  # a second notice with the same key is not queued
    force_reply: bool = False  # the recipient answers by replying to it
    buttons: tuple[tuple[Button, ...], ...] = ()  # rows of inline buttons
    photo: str | None = None  # "<kind>:<id>", resolved by the deliverer's photo loaders
    reply_to: int | None = None  # a message in the chat it answers (sent anyway if gone)


_KINDS: dict[str, type[Fen | At | Msg | Category | Dept]] = {
    "fen": Fen,
    "at": At,
    "msg": Msg,
    "category": Category,
    "dept": Dept,
}


def _encode_params(params: Params) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, Fen):
            encoded[name] = {"fen": value.fen}
        elif isinstance(value, At):
            encoded[name] = {"at": value.seconds}
        elif isinstance(value, Msg):
            encoded[name] = {"msg": value.key}
        elif isinstance(value, Category):
            encoded[name] = {"category": value.key}
        elif isinstance(value, Dept):
            encoded[name] = {"dept": value.key}
        else:
            encoded[name] = value
    return encoded


def _decode_params(encoded: dict[str, Any]) -> Params:
    params: Params = {}
    for name, value in encoded.items():
        if isinstance(value, dict):
            ((kind, inner),) = value.items()
            params[name] = _KINDS[kind](inner)
        else:
            params[name] = value
    return params


def encode(notice: Notice) -> str:
    """The notice's body as stored: JSON without its chat and keys."""
    body: dict[str, Any] = {"params": _encode_params(notice.params)}
    if notice.lines:
        body["lines"] = [[key, _encode_params(params)] for key, params in notice.lines]
    if notice.force_reply:
        body["force_reply"] = True
    if notice.buttons:
        body["buttons"] = [
            [[b.label, b.verb, b.item, b.argument, _encode_params(b.params)] for b in row]
            for row in notice.buttons
        ]
    if notice.photo:
        body["photo"] = notice.photo
    if notice.reply_to is not None:
        body["reply_to"] = notice.reply_to
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def decode(chat_id: int, message: str, language: str | None, body: str) -> Notice:
    data = json.loads(body)
    return Notice(
        chat_id=chat_id,
        message=message,
        params=_decode_params(data.get("params", {})),
        lines=tuple((key, _decode_params(params)) for key, params in data.get("lines", [])),
        language=language,
        force_reply=bool(data.get("force_reply", False)),
        buttons=tuple(
            tuple(
                Button(label, verb, item, argument, _decode_params(params))
                for label, verb, item, argument, params in row
            )
            for row in data.get("buttons", [])
        ),
        photo=data.get("photo"),
        reply_to=data.get("reply_to"),
    )


@dataclass(frozen=True)
class Pending:
    """A notice due for delivery, as the delivery loop sees it."""

    id: int
    notice: Notice
    attempts: int


class Outbox:
    """Delivery bookkeeping: what is due, claimed, sent, retried, given up or purged."""

    def __init__(self, db: Database, clock: Now = utc_now) -> None:
        self.db = db
        self.clock = clock
        # Set whenever a notice is queued. The delivery loop's next read waits for the
        # queueing transaction to commit (reads share its lock), so it never sees too little.
        self.wake = asyncio.Event()

    def _now(self) -> int:
        return int(self.clock().timestamp())

    async def queue(self, conn: Connection, notices: Iterable[Notice]) -> int:
        """Queue `notices` inside the caller's transaction; returns how many were new."""
        queued = 0
        now = self._now()
        for notice in notices:
            queued += await store.enqueue(
                conn,
                chat_id=notice.chat_id,
                language=notice.language,
                message=notice.message,
                body=encode(notice),
                once_key=notice.once_key,
                now=now,
            )
        if queued:
            self.wake.set()
        return queued

    async def send(self, *notices: Notice) -> int:
        """Queue notices on their own, when no state change goes with them."""
        async with self.db.transaction() as conn:
            return await self.queue(conn, notices)

    async def due(self, limit: int = 100) -> list[Pending]:
        rows = await store.due(self.db, self._now(), limit)
        return [
            Pending(
                row["id"],
                decode(row["chat_id"], row["message"], row["language"], row["body"]),
                row["attempts"],
            )
            for row in rows
        ]

    async def in_progress(self) -> int:
        """Notices due now or being sent (none: the outbox has caught up)."""
        return await store.unsettled_due(self.db, self._now())

    async def claim(self, pending: Pending) -> bool:
        return await store.claim(self.db, pending.id, self._now())

    async def delivered(self, pending: Pending) -> None:
        await store.mark_sent(self.db, pending.id, self._now())

    async def failed(self, pending: Pending, error: str, *, permanent: bool) -> bool:
        """Record a failed attempt; True if it will be tried again."""
        attempts = pending.attempts + 1
        if permanent or attempts >= MAX_ATTEMPTS:
            await store.give_up(self.db, pending.id, self._now(), error)
            return False
        await store.retry_later(
            self.db, pending.id, attempts, self._now() + pause_after(attempts), error
        )
        return True

    async def after_restart(self) -> tuple[int, int]:
        """At start-up: notices a dead process had claimed are not sent again (their delivery
        is uncertain); notices waiting out a pause are tried at once (a restart often ends an
        outage). Returns (abandoned, retried now)."""
        now = self._now()
        abandoned = await store.abandon_interrupted(self.db, now)
        return len(abandoned), await store.retry_now(self.db, now)

    async def purge(self) -> int:
        """Forget notices settled more than `KEPT_AFTER_DELIVERY` ago."""
        before = self.clock() - KEPT_AFTER_DELIVERY
        return await store.purge_finished(self.db, int(before.timestamp()))
