"""SIGKILL the real `python bot.py` after a decision has committed but before its notice
reached the rider; after a restart the rider hears of it exactly once."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from tests import engines
from tests.conftest import MODERATOR, MODERATOR_CHAT, BotProcess
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import Chat, reference_in

RIDER = TgUser(4242, language_code="en")
MOD = TgUser(MODERATOR)


async def wait_for_row(path: Path, sql: str) -> None:
    for _ in range(400):
        if engines.fetchone(path, sql):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never true: {sql}")


async def test_a_decision_killed_before_its_notice_is_told_once_after_restart(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    path = tmp_path / "bot.db"
    env = {"MODERATOR_CHAT_ID": str(MODERATOR_CHAT), "MODERATOR_IDS": str(MODERATOR)}
    bot = BotProcess(fake, tmp_path, **env)
    await bot.start()
    rider = Chat(fake, RIDER)
    await rider.agree()
    reference = reference_in(await rider.report(category="Road hazard"))
    (card,) = await fake.wait_for_messages(MODERATOR_CHAT, 1)
    # Telegram cannot reach the rider now: the first attempt and its retries all fail.
    fake.fail_next("sendMessage", status=500, times=4, chat_id=RIDER.id)
    fake.press_button(MOD, card, card.button("✅ 50"))
    await wait_for_row(
        path,
        "SELECT 1 FROM outbox WHERE message = 'rider.approved' AND attempts = 1 "
        "AND sent_at IS NULL AND claimed_at IS NULL",
    )
    assert await bot.stop(signal.SIGKILL) == -signal.SIGKILL
    # the decision committed; the notice did not go out
    assert engines.fetchone(path, "SELECT status FROM reports") == ("approved",)
    assert not [m for m in fake.sent_to(RIDER.id) if m.text.startswith("🎉")]

    restarted = BotProcess(fake, tmp_path, **env)
    await restarted.start()
    try:
        await fake.wait_for(
            lambda: any(m.text.startswith("🎉") for m in fake.sent_to(RIDER.id)), timeout=30
        )
        await wait_for_row(
            path, "SELECT 1 FROM outbox WHERE message = 'payee.ask' AND sent_at IS NOT NULL"
        )
    finally:
        assert await restarted.stop() == 0, restarted.log
    approvals = [m for m in fake.sent_to(RIDER.id) if m.text.startswith("🎉")]
    assert len(approvals) == 1
    assert reference in approvals[0].text
