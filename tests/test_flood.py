"""One rider's flood of messages neither stalls the other riders nor earns a 429."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import Update

from handlers.infra.ordering import PerUserUpdateProcessor
from settings import RateLimits
from tests.conftest import BotStarter
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import Chat

FLOODER = TgUser(4001, language_code="en")
NEWCOMER = TgUser(4002, language_code="en")
SLOW_DOWN = "⏳ That was too many messages at once"


async def test_a_flood_does_not_stall_another_rider_nor_earn_a_429(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    # Telegram's caps, with bursts into a private chat scaled from 10 to 3 (still one a second)
    # and a queue of 5 instead of 20, to keep the test short.
    limits = RateLimits(private_messages=3, private_window_seconds=3.0, max_queued_updates=5)
    running = await start_bot(rate_limits=limits)
    fake.enforce_caps(per_second=30, per_group=20, per_private=3, private_window=3.0)
    flooder = Chat(fake, FLOODER)
    await flooder.agree()

    with fake.held_updates():
        for number in range(500):
            fake.send_text(FLOODER, f"look at this {number}")
    sent_at = time.monotonic()
    fake.send_text(NEWCOMER, "/start")
    try:
        await fake.wait_for_messages(NEWCOMER.id, 1)
        (answer,) = [c for c in fake.calls_to("sendMessage") if c.params["chat_id"] == NEWCOMER.id]
        # A behaviour bound, not a benchmark: queued behind the flood, the newcomer would wait
        # minutes (the flooder's messages go out at one a second); a busy machine takes a
        # few seconds at most.
        assert answer.at - sent_at < 10.0
        await running.settled(fake)
        texts = [m.text for m in fake.sent_to(FLOODER.id)]
        assert sum(text.startswith(SLOW_DOWN) for text in texts) == 1
        assert fake.cap_rejections == 0
    finally:
        # Should it fail, a bot pausing on 429s would take many minutes to drain the flood.
        fake.enforce_caps(None, None, None)


def text_update(update_id: int, user_id: int) -> Update:
    return Update.de_json(
        {
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "date": 0,
                "chat": {"id": user_id, "type": "private"},
                "from": {"id": user_id, "is_bot": False, "first_name": "Rider"},
                "text": str(update_id),
            },
        },
        None,
    )


class Recorder:
    """Handler stand-ins that note the order they ran in; `gate` holds them until set."""

    def __init__(self) -> None:
        self.ran: list[int] = []
        self.gate = asyncio.Event()

    async def handle(self, update: Update, blocked: bool = False) -> None:
        if blocked:
            await self.gate.wait()
        await asyncio.sleep(0)
        self.ran.append(update.update_id)


def submit(
    processor: PerUserUpdateProcessor, update: Update, job: Awaitable[Any]
) -> asyncio.Task[None]:
    return asyncio.create_task(processor.process_update(update, job))


async def test_waiting_updates_hold_no_slot_and_keep_their_order() -> None:
    notices: list[int] = []

    async def notice(update: Update) -> None:
        assert update.effective_user is not None
        notices.append(update.effective_user.id)

    processor = PerUserUpdateProcessor(max_concurrent_updates=2, max_queued=3, on_overflow=notice)
    recorder = Recorder()
    busy = [text_update(1, 7)] + [text_update(n, 7) for n in range(2, 11)]
    tasks = [submit(processor, busy[0], recorder.handle(busy[0], blocked=True))]
    tasks += [submit(processor, u, recorder.handle(u)) for u in busy[1:]]
    other = text_update(100, 8)
    tasks.append(submit(processor, other, recorder.handle(other)))

    # User 7's first update is stuck; their queued ones hold no slot, so user 8 goes ahead.
    await wait_until(lambda: recorder.ran == [100])
    recorder.gate.set()
    await asyncio.gather(*tasks)
    assert recorder.ran == [100, 1, 2, 3, 4]  # three queued behind the running one; 6 dropped
    assert notices == [7]  # one "slow down" for the whole flood


async def wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never held")
