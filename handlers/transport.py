"""Every request to Telegram passes here: paced to Telegram's caps, retried when it is safe.

PTB's `AIORateLimiter` is a leaky bucket that lets a full bucket out at once; Telegram (and
our stand-in) count a sliding window, so a burst after a quiet spell would earn 429s. We give
the buckets a capacity of one message, which spaces requests evenly at the cap (with a small
margin for network jitter) and keeps a crowd's answers flowing at Telegram's pace.
429s are retried by the parent class (`max_retries`); network errors and 5xx here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.error import BadRequest, NetworkError, TimedOut
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
                if attempt == self._network_retries:
                    raise
                log.info("%s failed (%s); retry %d", endpoint, exc.message, attempt + 1)
            await asyncio.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")
