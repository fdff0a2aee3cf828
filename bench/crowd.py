"""A crowd of N users sends /start at once; how fast and how cheaply does the bot answer?

Runs the stand-in (tests/fakegram) with Telegram's caps enforced (30 messages/s overall,
20/min per group) in this process, and the bot as a real `python bot.py` child process, then
the same crowd against a bare python-telegram-bot echo bot (bench/echo_bot.py). Prints, for
each: seconds until the last answer versus the ideal N/30, 429s the stand-in answered, answers
missing or doubled, CPU milliseconds per update in the bot process (and, on PostgreSQL, in the
database server's processes), and its peak memory.

With --webhook both bots run in webhook mode instead of long polling: bot.py and the echo bot
get WEBHOOK_URL, WEBHOOK_LISTEN and WEBHOOK_SECRET (the echo bot then calls PTB's run_webhook),
and the crowd's N updates are POSTed to the bot's webhook server concurrently, at most 40 at a
time, as Telegram does (see bench/delivery.py). The bot's CPU then includes serving those POSTs.

With --engine postgresql bot.py keeps its data in a fresh database on a throwaway PostgreSQL
server the bench starts and stops itself (bench/engines.py); the echo bot has no database.

    .venv/bin/python -m bench.crowd [N] [--webhook] [--engine sqlite|postgresql]
                                            (default N = 300, long polling, sqlite)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import engines
from bench.delivery import BenchTelegram, Delivery
from bench.process import cpu_seconds, peak_rss_mb
from tests.fakegram import TgUser

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    name: str
    seconds: float
    ideal: float
    rejections: int
    missing: int
    doubled: int
    cpu_ms_per_update: float
    server_cpu_ms_per_update: float  # the PostgreSQL server's, if any
    peak_rss_mb: float
    delivery: str


async def run_crowd(
    name: str,
    script: str,
    database_url: str,
    server_cpu: Callable[[], float],
    crowd: int,
    workdir: Path,
    webhook: bool,
) -> Result:
    async with BenchTelegram() as fake, Delivery(fake, webhook) as delivery:
        env = {
            **os.environ,
            "BOT_TOKEN": fake.token,
            "BOT_API_URL": fake.base_url,
            "DATABASE_URL": database_url,
            "PYTHONPATH": str(ROOT),
            **delivery.bot_env(),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, script, env=env, cwd=workdir, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            await delivery.bot_ready(timeout=60)
            await asyncio.sleep(0.5)
            fake.enforce_caps(per_second=30, per_group=20)
            users = [TgUser(1_000_000 + i, first_name=f"R{i}") for i in range(crowd)]
            cpu_before = cpu_seconds(process.pid)
            server_before = server_cpu()
            started = time.perf_counter()
            with fake.held_updates():  # webhook: the POSTs start at the first await below
                for user in users:
                    fake.send_text(user, "/start")
            await fake.wait_for(lambda: all(fake.sent_to(u.id) for u in users), timeout=600)
            seconds = time.perf_counter() - started
            await asyncio.sleep(1.0)  # let any duplicate show itself
            cpu = cpu_seconds(process.pid) - cpu_before
            server = server_cpu() - server_before
            peak = peak_rss_mb(process.pid)
            counts = [len(fake.sent_to(u.id)) for u in users]
            return Result(
                name=name,
                seconds=seconds,
                ideal=crowd / 30,
                rejections=fake.cap_rejections,
                missing=counts.count(0),
                doubled=sum(1 for c in counts if c > 1),
                cpu_ms_per_update=1000 * cpu / crowd,
                server_cpu_ms_per_update=1000 * server / crowd,
                peak_rss_mb=peak,
                delivery=delivery.summary(),
            )
        finally:
            process.terminate()
            await process.wait()


async def main(crowd: int, webhook: bool, engine: str) -> None:
    echo = str(ROOT / "bench" / "echo_bot.py")
    with tempfile.TemporaryDirectory() as tmp, engines.databases(engine, Path(tmp)) as dbs:
        workdir = Path(tmp)
        bot_database = engines.database_url(await dbs.fresh("bot"))
        echo_database = engines.database_url(workdir / "echo.db")  # never opened
        results = [
            await run_crowd(
                "bot.py",
                str(ROOT / "bot.py"),
                bot_database,
                dbs.server_cpu_seconds,
                crowd,
                workdir,
                webhook,
            ),
            await run_crowd(
                "bare PTB echo", echo, echo_database, lambda: 0.0, crowd, workdir, webhook
            ),
        ]
    print(f"crowd of {crowd} users sending /start at once, stand-in enforcing 30/s")
    print(f"bot.py database: {engine} (+server ms: the PostgreSQL server's CPU per update)")
    if webhook:
        print("mode: WEBHOOK for both bots (updates POSTed to PTB's webhook server, 40 at a time)")
    else:
        print("mode: long polling for both bots (getUpdates)")
    print(
        f"{'bot':<15} {'last answer s':>13} {'ideal s':>8} {'429s':>5} {'missing':>8} "
        f"{'doubled':>8} {'CPU ms/update':>14} {'+server ms':>11} {'peak MB':>8}"
    )
    for r in results:
        print(
            f"{r.name:<15} {r.seconds:>13.2f} {r.ideal:>8.2f} {r.rejections:>5} {r.missing:>8} "
            f"{r.doubled:>8} {r.cpu_ms_per_update:>14.2f} {r.server_cpu_ms_per_update:>11.2f}"
            f" {r.peak_rss_mb:>8.1f}"
        )
    for r in results:
        print(f"{r.name}: {r.delivery}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.crowd", description="A crowd of N users sends /start at once."
    )
    parser.add_argument("crowd", nargs="?", type=int, default=300, metavar="N")
    parser.add_argument("--webhook", action="store_true", help="webhook mode instead of polling")
    engines.add_engine_option(parser)
    args = parser.parse_args()
    asyncio.run(main(args.crowd, args.webhook, args.engine))
