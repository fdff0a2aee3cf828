"""Two real `python bot.py` processes on one PostgreSQL database: one leads (polls Telegram,
runs the jobs), the other waits; SIGKILL the leader and the standby takes over.

PostgreSQL only: with SQLite there is one process and no standby.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from bot import LEASE_LOST_EXIT
from storage.postgres import LEADER_NAME, STANDBY_NAME
from tests import engines, images
from tests.conftest import MODERATOR, MODERATOR_CHAT, BotProcess
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import Chat, reference_in

pytestmark = pytest.mark.skipif(engines.ENGINE != "postgresql", reason="a standby needs PostgreSQL")

RIDERS = [TgUser(5100 + n, language_code="en") for n in range(3)]


async def until(tmp_path: Path, sql: str) -> None:
    """Until `sql` finds a row in the bot's database."""
    for _ in range(600):
        if engines.fetchone(tmp_path / "bot.db", sql):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never true: {sql}")


async def standby_waiting(tmp_path: Path) -> None:
    """Until a process waits as the standby of the bot's database."""
    await until(
        tmp_path,
        "SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"  # noqa: S608
        f" AND application_name = '{STANDBY_NAME}'",
    )


async def test_the_standby_takes_over_when_the_leader_is_killed(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    env = {"MODERATOR_CHAT_ID": str(MODERATOR_CHAT), "MODERATOR_IDS": str(MODERATOR)}
    first = BotProcess(fake, tmp_path, **env)
    await first.start()
    await fake.wait_for(lambda: bool(fake.calls_to("getUpdates")), timeout=30)
    second = BotProcess(fake, tmp_path, **env)
    await second.start()
    await standby_waiting(tmp_path)
    rider = Chat(fake, RIDERS[0])
    await rider.agree()
    before = reference_in(
        await rider.report(images.jpeg(images.picture(1)), category="Road hazard")
    )

    # (A card being sent at the moment of a kill is sent again by the next leader: the card
    # sender records a card after Telegram took it. Wait for the record, to test the takeover
    # alone.)
    await fake.wait_for_messages(MODERATOR_CHAT, 1)
    await until(tmp_path, "SELECT 1 FROM reports WHERE card_message_id IS NOT NULL")
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    # The standby notices the lease is free and starts polling; the next rider is answered.
    late = Chat(fake, RIDERS[1])
    try:
        await late.agree()
        after = reference_in(
            await late.report(images.jpeg(images.picture(2)), category="Road hazard")
        )
    except BaseException:
        await second.stop()
        print(second.log)
        raise
    assert before != after
    await fake.wait_for_messages(MODERATOR_CHAT, 2)

    assert await second.stop() == 0, second.log
    assert "standby: another process leads; waiting to take over" in second.log
    # Exactly one process polled at a time: Telegram would have answered a second one 409.
    assert [c for c in fake.calls_to("getUpdates") if c.status == 409] == []
    cards = [reference_in(m) for m in fake.sent_to(MODERATOR_CHAT)]  # each card's own first
    assert sorted(cards) == sorted([before, after])


async def test_check_says_whether_this_process_would_lead(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    from tests.conftest import BOT_SCRIPT, PYTHON, bot_process_env

    async def check() -> str:
        process = await asyncio.create_subprocess_exec(
            PYTHON,
            BOT_SCRIPT,
            "check",
            env=bot_process_env(fake, tmp_path),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        return out.decode()

    assert "engine postgresql" in (alone := await check())
    assert "would lead" in alone
    leader = BotProcess(fake, tmp_path)
    await leader.start()
    try:
        await fake.wait_for(lambda: bool(fake.calls_to("getUpdates")), timeout=30)
        assert "would wait: another process leads" in await check()
    finally:
        assert await leader.stop() == 0, leader.log


async def end_backends(tmp_path: Path, application_names: tuple[str, ...]) -> None:
    """What an operator's pg_terminate_backend, or a server restart, does to the bot."""
    names = ", ".join(f"'{name}'" for name in application_names)
    engines.fetchone(
        tmp_path / "bot.db",
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity"  # noqa: S608
        f" WHERE datname = current_database() AND application_name IN ({names})",
    )


async def answered_after_takeover(fake: FakeTelegram, rider: TgUser, waiting: BotProcess) -> None:
    try:
        chat = Chat(fake, rider)
        await chat.agree()
    except BaseException:
        await waiting.stop()
        print(waiting.log)
        raise


@pytest.mark.parametrize(
    "ended",
    [(LEADER_NAME,), (LEADER_NAME, STANDBY_NAME)],
    ids=["the leader's connection ended", "every connection ended, as by a restart"],
)
async def test_a_leader_whose_connection_drops_stops_and_a_leader_remains(
    fake: FakeTelegram, tmp_path: Path, ended: tuple[str, ...]
) -> None:
    first = BotProcess(fake, tmp_path)
    await first.start()
    await fake.wait_for(lambda: bool(fake.calls_to("getUpdates")), timeout=30)
    second = BotProcess(fake, tmp_path)
    await second.start()
    await standby_waiting(tmp_path)
    await Chat(fake, RIDERS[0]).agree()

    await end_backends(tmp_path, ended)
    # The leader can write no more: it stops, saying why, and asks to be started again.
    assert await first.wait() == LEASE_LOST_EXIT, first.log
    assert "leadership lost (database connection dropped); stopping" in first.log
    await answered_after_takeover(fake, RIDERS[2], second)  # the standby leads now
    assert await second.stop() == 0, second.log
    if STANDBY_NAME in ended:
        assert "standby: database connection lost" in second.log
    assert [c for c in fake.calls_to("getUpdates") if c.status == 409] == []
