"""The time services read: one clock for the whole runtime, the real UTC one unless a test
sets its own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Now = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Clock:
    """What time it is for every service of one runtime: build it once, hand it to each, so a
    test that moves time moves it for all of them (`runtime.clock.source = lambda: ...`)."""

    def __init__(self, source: Now = utc_now) -> None:
        self.source = source

    def __call__(self) -> datetime:
        return self.source()
