"""Takeover time: two real `python bot.py` processes on one PostgreSQL database; SIGKILL the
leader, at once a rider sends /start, and time until the rider is answered (the standby polls
the leader lock every LEADER_POLL_SECONDS, then starts like any bot). The killed process is
started again as the next standby. Prints each takeover and the median.

    scripts/postgres start /tmp/pg      # prints a URL; any empty database will do
    .venv/bin/python -m bench.takeover postgresql://bot@127.0.0.1:PORT/postgres [KILLS]
"""

from __future__ import annotations

import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg

from tests.fakegram import FakeTelegram, TgUser

ROOT = Path(__file__).resolve().parent.parent
STANDBY = "suishoupai standby"


async def standby_waiting(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for _ in range(1200):
            if await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name = $1",
                STANDBY,
            ):
                return
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise RuntimeError("no standby appeared")


def answered(fake: FakeTelegram, rider: TgUser) -> Callable[[], bool]:
    return lambda: bool(fake.sent_to(rider.id))


async def main(url: str, kills: int) -> None:
    async with FakeTelegram(token="123456:BENCH-TOKEN") as fake:  # noqa: S106
        with tempfile.TemporaryDirectory() as folder:
            env = {
                **os.environ,
                "BOT_TOKEN": fake.token,
                "BOT_API_URL": fake.base_url,
                "DATABASE_URL": url,
                "PYTHONPATH": str(ROOT),
            }

            async def start() -> asyncio.subprocess.Process:
                return await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(ROOT / "bot.py"),
                    env=env,
                    cwd=folder,
                    stderr=asyncio.subprocess.DEVNULL,
                )

            leader = await start()
            await fake.wait_for(lambda: bool(fake.calls_to("getUpdates")), timeout=60)
            standby = await start()
            times = []
            for kill in range(kills):
                await standby_waiting(url)
                rider = TgUser(700_000 + kill, first_name=f"R{kill}")
                killed = time.perf_counter()
                leader.send_signal(signal.SIGKILL)
                await leader.wait()
                fake.send_text(rider, "/start")
                await fake.wait_for(answered(fake, rider), timeout=60)
                times.append(time.perf_counter() - killed)
                print(f"kill {kill + 1}: answered after {times[-1]:.2f} s", flush=True)
                leader, standby = standby, await start()
            for process in (leader, standby):
                process.send_signal(signal.SIGTERM)
                await process.wait()
            print(
                f"takeover: median {statistics.median(times):.2f} s, max {max(times):.2f} s"
                f" over {kills} kills"
            )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10))
