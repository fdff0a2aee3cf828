"""A rider's answer is not held behind the notices queued for that rider, and neither earns
a 429 (handlers/infra/transport.py: answers first, notices at their own pace)."""

from __future__ import annotations

from services.outbox import Notice
from settings import RateLimits
from tests.conftest import BotStarter
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import Chat

RIDER = TgUser(4101, language_code="en")
NOTICES = 6
WINDOW = 4.0  # a private chat takes 4 messages per 4 s here (Telegram: 10 per 10 s)


def notices_seen(fake: FakeTelegram) -> int:
    return sum(m.text.startswith("notice ") for m in fake.sent_to(RIDER.id))


async def test_a_riders_answer_goes_before_the_notices_queued_for_them(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    limits = RateLimits(group_window_seconds=1.0, private_messages=4, private_window_seconds=WINDOW)
    running = await start_bot(rate_limits=limits)
    fake.enforce_caps(per_second=30, per_group=20, per_private=4, private_window=WINDOW)
    rider = Chat(fake, RIDER)
    await rider.agree()
    outbox = running.app.bot_data["runtime"].outbox
    await outbox.send(*(Notice(RIDER.id, "text", {"text": f"notice {n}"}) for n in range(NOTICES)))
    await fake.wait_for(lambda: notices_seen(fake) >= 1, timeout=10)

    before = notices_seen(fake)
    rider.text("/help")
    await fake.wait_for(
        lambda: any("/report" in m.text for m in fake.sent_to(RIDER.id)), timeout=10
    )
    texts = [m.text for m in fake.sent_to(RIDER.id)]
    answered_at = next(i for i, text in enumerate(texts) if "/report" in text)
    ahead = sum(text.startswith("notice ") for text in texts[:answered_at])
    # None of the notices still queued when the rider wrote went ahead of the answer.
    assert ahead == before < NOTICES

    # The notices still arrive, all of them, in order, and Telegram refused nothing.
    await fake.wait_for(lambda: notices_seen(fake) == NOTICES, timeout=60)
    order = [m.text for m in fake.sent_to(RIDER.id) if m.text.startswith("notice ")]
    assert order == [f"notice {n}" for n in range(NOTICES)]
    assert fake.cap_rejections == 0
