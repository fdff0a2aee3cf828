"""Updates from different users run concurrently; one user's updates run in arrival order.

A rider's album arrives as several updates at once, and a moderator may tap twice: handling
one person's updates one after another keeps their draft's steps in order, while a crowd of
riders is still served in parallel.

PTB's `BaseUpdateProcessor.process_update` takes a shared slot (of `max_concurrent_updates`)
before `do_process_update` runs, so a user's updates waiting for their turn would each hold
one: a single user forwarding hundreds of messages would fill every slot and stall everyone.
Here an update first waits for its user's turn, holding nothing shared, and takes a slot only
when it is at the head of its user's queue. A user with more than `max_queued` updates waiting
loses the excess and is asked, once per flood, to slow down.

Whichever way an update's handling ends (handled, failed, dropped), `on_settled` hears of it:
the inbox then marks it handled. An update whose handling was cut short by the process dying
is never settled, and is handled again by the next process (services/inbox.py).

While an update is handled, requests to its chat are answers (handlers/infra/transport.py):
they go before the notices waiting for that chat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import BaseUpdateProcessor

from handlers.infra.transport import answering

if TYPE_CHECKING:
    from handlers.common import Runtime

log = logging.getLogger(__name__)

# A user who keeps flooding is asked to slow down again after this many seconds at most.
SLOW_DOWN_REPEAT_SECONDS = 60.0

OverflowNotice = Callable[[Update], Awaitable[None]]
Settled = Callable[[Update], Awaitable[None]]


@dataclass
class _Queue:
    """One user's updates held by the processor: the running one and those waiting."""

    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    held: int = 0  # running or waiting
    waiting: int = 0
    dropped: int = 0


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """Serialises updates per user (or per chat when there is no user), capping each queue."""

    def __init__(
        self,
        max_concurrent_updates: int = 256,
        max_queued: int = 20,
        on_overflow: OverflowNotice | None = None,
        on_settled: Settled | None = None,
    ) -> None:
        super().__init__(max_concurrent_updates)
        if max_queued < 1:
            raise ValueError("max_queued must be >= 1")
        self._max_queued = max_queued
        self._on_overflow = on_overflow
        self._on_settled = on_settled
        self._queues: dict[int, _Queue] = {}
        self._warned_at: dict[int, float] = {}

    # PTB marks `process_update` final and takes the shared slot there, around
    # `do_process_update`; the slot must be taken only after the user's turn has come.
    async def process_update(  # type: ignore[misc]
        self, update: object, coroutine: Awaitable[Any]
    ) -> None:
        key = _owner(update)
        if key is None:
            async with self._semaphore:
                await self._handle(update, coroutine)
            return
        queue = self._queues.setdefault(key, _Queue())
        if queue.waiting >= self._max_queued:
            await self._drop(key, queue, update, coroutine)
            await self._settle(update)
            return
        queue.held += 1
        try:
            queue.waiting += 1
            try:
                await queue.turn.acquire()
            finally:
                queue.waiting -= 1
            try:
                async with self._semaphore:
                    await self._handle(update, coroutine)
            finally:
                queue.turn.release()
        finally:
            queue.held -= 1
            if queue.held == 0:
                del self._queues[key]
                if queue.dropped:
                    log.warning("dropped %d updates of user %s (flood)", queue.dropped, key)

    async def _handle(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the update, then settle it, unless the run is cancelled (the process stops)."""
        try:
            with answering(_chat(update)):  # its answers to this chat go before notices
                await self.do_process_update(update, coroutine)
        except Exception:
            await self._settle(update)
            raise
        await self._settle(update)

    async def _settle(self, update: object) -> None:
        if self._on_settled is None or not isinstance(update, Update):
            return
        try:
            await self._on_settled(update)
        except Exception:  # it will be handled again after a restart: logged, not fatal
            log.exception("could not mark update %d handled", update.update_id)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the update's handlers (the user's turn and a slot are already held)."""
        await coroutine

    async def _drop(
        self, key: int, queue: _Queue, update: object, coroutine: Awaitable[Any]
    ) -> None:
        """Discard an update beyond the user's cap; the first of a flood gets a notice."""
        if isinstance(coroutine, Coroutine):
            coroutine.close()  # never started; closing avoids "was never awaited"
        queue.dropped += 1
        now = time.monotonic()
        self._warned_at = {
            user: at for user, at in self._warned_at.items() if now - at < SLOW_DOWN_REPEAT_SECONDS
        }
        if key in self._warned_at or self._on_overflow is None or not isinstance(update, Update):
            return
        self._warned_at[key] = now
        with answering(_chat(update)):  # it answers the flood: not held behind notices
            await self._on_overflow(update)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""


def slow_down_notice(runtime: Runtime) -> OverflowNotice:
    """Tells a flooding user, in their private chat, that the excess was not handled."""

    async def notice(update: Update) -> None:
        chat, user = update.effective_chat, update.effective_user
        if chat is None or chat.type != chat.PRIVATE:
            return
        try:
            language = (
                await runtime.languages.of(user.id, user.language_code)
                if user is not None
                else runtime.languages.default
            )
            text = runtime.texts.get(language, "flood.slow_down")
            await update.get_bot().send_message(chat.id, text)
        except (TelegramError, OSError) as exc:
            log.warning("could not ask chat %s to slow down: %r", chat.id, exc)

    return notice


def _chat(update: object) -> int | None:
    chat = update.effective_chat if isinstance(update, Update) else None
    return chat.id if chat is not None else None


def _owner(update: object) -> int | None:
    if not isinstance(update, Update):
        return None
    if update.effective_user is not None:
        return update.effective_user.id
    return update.effective_chat.id if update.effective_chat is not None else None
