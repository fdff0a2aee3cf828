"""Every request to Telegram passes here: paced to Telegram's caps, retried when it is safe.

PTB's `AIORateLimiter` is a leaky bucket that lets a full bucket out at once; Telegram (and
our stand-in) count a sliding window, so a burst after a quiet spell would earn 429s. We give
the buckets a capacity of one message, which spaces requests evenly at the cap (with a small
margin for network jitter) and keeps a crowd's answers flowing at Telegram's pace.
PTB paces groups only; a private chat takes about one message a second, so we keep each
private chat's requests to `private_messages` per sliding `private_window_seconds`, counted
from when each answer came back: Telegram received the request before that, so the window it
counts is never shorter than ours, whatever the network's delays. Requests Telegram refused
or failed (4xx, 5xx) are not counted; one we stopped waiting for is, and so is one in flight.
429s are retried by the parent class (`max_retries`); network errors and 5xx here.

Within a private chat, answers go first. A request made while an update of that same chat is
being handled (`answering`, set by handlers/infra/ordering.py) answers the person's own
action: it waits behind no notice, only for room in the window, and Telegram lets such a
burst through. Everything else to that chat (the outbox's notices, review cards, reminders)
is background and keeps to the sustained pace instead: one per `window / private_messages`,
never while the person is in a conversation (an answer went out less than `QUIET_SPACINGS`
of those spacings ago), and never into the last half of the window, which stays free for
the person's next steps. So a notice queued for a rider who is filing a report waits for a
pause, and a rider who acts right after a burst of notices is answered at once. Background
that has waited a whole window takes any room, as an answer would: the wait stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import math
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextvars import ContextVar
from typing import Any

from telegram.error import BadRequest, NetworkError, TelegramError, TimedOut
from telegram.ext import AIORateLimiter

from settings import RateLimits

log = logging.getLogger(__name__)

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]
# Headroom below the caps, so jitter between our clock and the server's never crosses them.
PACE_MARGIN = 1.03
# A timed-out request may still have been carried out; only these are safe to send again.
# Sends are not: a second attempt could deliver the same message twice.
_REPEATABLE_PREFIXES = ("get", "edit", "answer", "set", "delete")
# Background waits this many spacings after an answer: a person acting about once a second
# is still in the conversation.
QUIET_SPACINGS = 2.0

_ANSWERING: ContextVar[int | None] = ContextVar("answering", default=None)


@contextlib.contextmanager
def answering(chat_id: int | None) -> Iterator[None]:
    """Requests to `chat_id` made inside answer an update of that chat: they go first."""
    token = _ANSWERING.set(chat_id)
    try:
        yield
    finally:
        _ANSWERING.reset(token)


def remember_sniffio_is_missing() -> None:
    """httpcore looks for sniffio with an `import` at every connection-pool lock or event it
    makes, several per request; without sniffio installed, each failed import searches every
    directory on sys.path again (stat calls, a tenth of the bot's CPU per request). A `None`
    in sys.modules makes that import fail at once, as Python documents; httpcore then assumes
    asyncio, which is what runs here. Nothing changes when sniffio is installed."""
    if importlib.util.find_spec("sniffio") is None:
        sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]


class PacedRateLimiter(AIORateLimiter):
    """`AIORateLimiter` with even pacing and bounded retries of network errors and 5xx."""

    def __init__(self, limits: RateLimits) -> None:
        super().__init__(
            overall_max_rate=1,
            overall_time_period=PACE_MARGIN / limits.messages_per_second,
            group_max_rate=1,
            group_time_period=PACE_MARGIN * limits.group_window_seconds / limits.group_messages,
            max_retries=limits.max_retries,
        )
        self._network_retries = limits.network_retries
        self._private_messages = limits.private_messages
        self._private_window = PACE_MARGIN * limits.private_window_seconds
        # Background never takes the last half of a private chat's window: it stays free for
        # the person's answers.
        self._background_messages = max(1, limits.private_messages - limits.private_messages // 2)
        self._private_chats: dict[int, _ChatPace] = {}
        self._pruned_at = 0.0

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> JSONResult:
        for attempt in range(self._network_retries + 1):
            try:
                async with self._private_turn(data.get("chat_id")):
                    return await super().process_request(
                        callback, args, kwargs, endpoint, data, rate_limit_args
                    )
            except BadRequest:
                raise
            except TimedOut:
                if attempt == self._network_retries or not endpoint.startswith(
                    _REPEATABLE_PREFIXES
                ):
                    raise
            except NetworkError as exc:
                # A send cut off mid-way may have been delivered: sending it again could post
                # it twice, so the caller decides (a review card is sent again marked as such).
                if attempt == self._network_retries or (
                    sent_maybe(exc) and not endpoint.startswith(_REPEATABLE_PREFIXES)
                ):
                    raise
                log.info("%s failed (%s); retry %d", endpoint, exc.message, attempt + 1)
            await asyncio.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    @contextlib.asynccontextmanager
    async def _private_turn(self, chat_id: object) -> AsyncIterator[None]:
        """Wait until a request to this private chat keeps within its window (other chats
        pass): an answer as soon as there is room, background at its own pace."""
        chat = _private_chat(chat_id)
        if chat is None:
            yield
            return
        loop = asyncio.get_running_loop()
        self._forget_idle_chats(loop.time())
        pace = self._private_chats.get(chat)
        if pace is None:
            pace = self._private_chats[chat] = _ChatPace(self._private_messages)
        answer = _ANSWERING.get() == chat
        async with pace.answers if answer else pace.background:
            await self._room(pace, answer)
            pace.in_flight += 1
            failed = False
            try:
                yield
            except TelegramError as exc:
                # Telegram answered with an error, so nothing was sent; unless we gave up waiting.
                failed = not isinstance(exc, TimedOut)
                raise
            finally:
                pace.in_flight -= 1
                pace.done(loop.time(), counted=not failed, answer=answer)

    async def _room(self, pace: _ChatPace, answer: bool) -> None:
        """Wait until `pace` has room for one more request of its kind."""
        loop = asyncio.get_running_loop()
        spacing = self._private_window / self._private_messages
        started = loop.time()
        while True:
            # Background that waited a whole window goes like an answer: a rider who never
            # pauses must not hold up the notices of everyone (they are delivered in rounds).
            if answer or loop.time() - started >= self._private_window:
                wait = pace.wait_for_room(loop.time(), self._private_window, self._private_messages)
            else:
                wait = max(
                    pace.wait_for_room(
                        loop.time(), self._private_window, self._background_messages
                    ),
                    pace.last_background + spacing - loop.time(),
                    pace.last_answer + QUIET_SPACINGS * spacing - loop.time(),
                )
            if wait <= 0:
                return
            pace.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pace.changed.wait(), None if math.isinf(wait) else wait)

    def _forget_idle_chats(self, now: float) -> None:
        """Drop chats whose window has passed, at most once per window, to bound memory."""
        if now - self._pruned_at < self._private_window:
            return
        self._pruned_at = now
        self._private_chats = {
            chat: pace
            for chat, pace in self._private_chats.items()
            if pace.busy() or (pace.answered and pace.answered[-1] > now - self._private_window)
        }


class _ChatPace:
    """One private chat's turns (answers, background) and its latest requests' times."""

    def __init__(self, messages: int) -> None:
        self.answers = asyncio.Lock()
        self.background = asyncio.Lock()
        self.answered: deque[float] = deque(maxlen=messages)  # when each came back
        self.in_flight = 0
        self.changed = asyncio.Event()  # a request came back: room may have opened
        self.last_answer = -math.inf
        self.last_background = -math.inf

    def busy(self) -> bool:
        return self.answers.locked() or self.background.locked() or self.in_flight > 0

    def wait_for_room(self, now: float, window: float, limit: int) -> float:
        """Seconds until fewer than `limit` requests are in the window or in flight (inf:
        only a request in flight coming back can make room)."""
        recent = [at for at in self.answered if at > now - window]
        excess = len(recent) + self.in_flight - limit
        if excess < 0:
            return 0.0
        return recent[excess] + window - now if excess < len(recent) else math.inf

    def done(self, now: float, *, counted: bool, answer: bool) -> None:
        if counted:
            self.answered.append(now)
        if answer:
            self.last_answer = now
        else:
            self.last_background = now
        self.changed.set()


def _private_chat(chat_id: object) -> int | None:
    """The id of a private chat (positive), or None for groups, channels and no chat."""
    if isinstance(chat_id, str) and chat_id.isdigit():
        chat_id = int(chat_id)
    return chat_id if isinstance(chat_id, int) and chat_id > 0 else None


def sent_maybe(error: TelegramError) -> bool:
    """Whether a call that failed with `error` may still have taken effect: it timed out or
    its connection broke after the request went out. Not when Telegram (or a proxy before it)
    answered with an error, nor when the connection was refused."""
    if isinstance(error, TimedOut):
        return True
    if isinstance(error, BadRequest) or not isinstance(error, NetworkError):
        return False
    return error.message.startswith("httpx.") and not error.message.startswith("httpx.ConnectError")
