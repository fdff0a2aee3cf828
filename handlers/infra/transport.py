"""Every request to Telegram passes here: paced to Telegram's caps, retried when it is safe.

PTB's `AIORateLimiter` is a leaky bucket that lets a full bucket out at once; Telegram (and
our stand-in) count a sliding window, so a burst after a quiet spell would earn 429s. We give
the buckets a capacity of one message, which spaces requests evenly at the cap (with a small
margin for network jitter) and keeps a crowd's answers flowing at Telegram's pace.
PTB paces groups only; a private chat takes about one message a second, so we keep each
private chat's requests to `private_messages` per sliding `private_window_seconds`, counted
from when each answer came back: Telegram received the request before that, so the window it
counts is never shorter than ours, whatever the network's delays. Requests Telegram refused
or failed (4xx, 5xx) are not counted; one we stopped waiting for is.
429s are retried by the parent class (`max_retries`); network errors and 5xx here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
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
        """Wait until a request to this private chat keeps within its window (other chats pass)."""
        chat = _private_chat(chat_id)
        if chat is None:
            yield
            return
        loop = asyncio.get_running_loop()
        self._forget_idle_chats(loop.time())
        pace = self._private_chats.get(chat)
        if pace is None:
            pace = self._private_chats[chat] = _ChatPace(self._private_messages)
        async with pace.turn:
            if len(pace.answered) == self._private_messages:
                await asyncio.sleep(pace.answered[0] + self._private_window - loop.time())
            failed = False
            try:
                yield
            except TelegramError as exc:
                # Telegram answered with an error, so nothing was sent; unless we gave up waiting.
                failed = not isinstance(exc, TimedOut)
                raise
            finally:
                if not failed:
                    pace.answered.append(loop.time())

    def _forget_idle_chats(self, now: float) -> None:
        """Drop chats whose window has passed, at most once per window, to bound memory."""
        if now - self._pruned_at < self._private_window:
            return
        self._pruned_at = now
        self._private_chats = {
            chat: pace
            for chat, pace in self._private_chats.items()
            if pace.turn.locked()
            or (pace.answered and pace.answered[-1] > now - self._private_window)
        }


class _ChatPace:
    """One private chat's turn and the times its latest requests were answered."""

    def __init__(self, messages: int) -> None:
        self.turn = asyncio.Lock()
        self.answered: deque[float] = deque(maxlen=messages)


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
