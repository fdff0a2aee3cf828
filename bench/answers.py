"""How fast is a rider answered while notices for that rider are queued?

The stand-in (tests/fakegram) runs in this process with Telegram's caps enforced (30 messages
a second overall, 20 a minute per group, 10 per 10 s into one private chat), the bot as a real
`python bot.py` child process. RIDERS riders agree to the privacy notice; then each, ROUNDS
times: NOTICES notices for that rider are queued in the bot's outbox (as an approval, a payout
and reminders would queue them), and 1.5 s later, while they are being delivered, the rider
files a report at a fast human pace, one action a second: photo -> location -> category ->
Skip -> Submit, each answered by the bot (the location prompt, the categories, the edited
prompt, the summary, the reference). Between rounds the rider pauses PAUSE seconds.

Printed, for each bot: the seconds from each action to its answer (median, 95th percentile,
max, and how many took over 0.5 s), the 429s the stand-in answered, and how long the notices
took to arrive (queued -> last one received). With --before PATH the same run is made first
against the bot.py of PATH (a checkout of an earlier revision), so the two can be compared
side by side. Figures only; nothing is asserted.

    .venv/bin/python -m bench.answers [--riders 3] [--rounds 2] [--notices 8] [--pause 12]
                                      [--before PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.delivery import BenchTelegram, Delivery
from bench.report_flow import (
    UNSET,
    Inbox,
    PhotoMaker,
    Rider,
    asks_for_location,
    callback_with,
    has_reference,
    stop_bot,
)
from services.outbox import Notice, Outbox
from storage.db import Database
from tests.fakegram import SentMessage, TgUser

ROOT = Path(__file__).resolve().parent.parent
PACE_SECONDS = 1.0  # one action a second
GOAL_SECONDS = 0.5
NOTICE_LEAD_SECONDS = 1.5  # notices queued this long before the rider's first action


@dataclass
class Figures:
    name: str
    latencies: list[float] = field(default_factory=list)
    notice_seconds: list[float] = field(default_factory=list)  # queued -> last one arrived
    rejections: int = 0


class PacedRider(Rider):
    """A rider who acts once a second and notes how long each answer took."""

    async def step(
        self, act: Callable[[], None], answer: Callable[[], Awaitable[SentMessage]]
    ) -> SentMessage:
        acted = time.monotonic()
        act()
        message = await answer()
        self.latencies.append(time.monotonic() - acted)
        await asyncio.sleep(max(0.0, acted + PACE_SECONDS - time.monotonic()))
        return message

    async def journey(self, photo: bytes, place: tuple[float, float]) -> None:
        self.latencies: list[float] = []
        await self.step(lambda: self.photo(photo), lambda: self.until(asks_for_location, "photo"))
        categories = await self.step(
            lambda: self.location(*place), lambda: self.until(callback_with("cat:"), "location")
        )
        ask = await self.step(
            lambda: self.tap(categories, "cat:"),
            lambda: self.changed(categories, "skip:", "category"),
        )
        summary = await self.step(
            lambda: self.tap(ask, "skip:"), lambda: self.changed(categories, "sub:", "skip")
        )
        await self.step(lambda: self.tap(summary, "sub:"), lambda: self.until(has_reference, "sub"))


async def queue_notices(database: Path, chat_id: int, count: int, round_number: int) -> None:
    """`count` notices for `chat_id` in the bot's outbox, written from this process."""
    db = Database(database)
    await db.open()
    try:
        await Outbox(db).send(
            *(
                Notice(chat_id, "text", {"text": f"notice {round_number}.{n} for you"})
                for n in range(count)
            )
        )
    finally:
        await db.close()


async def notices_arrived(fake: BenchTelegram, chat_id: int, round_number: int, count: int) -> None:
    marker = f"notice {round_number}."
    await fake.wait_for(
        lambda: sum(m.text.startswith(marker) for m in fake.sent_to(chat_id)) >= count, 300
    )


async def ride(
    rider: PacedRider,
    fake: BenchTelegram,
    database: Path,
    photos: list[bytes],
    args: argparse.Namespace,
    figures: Figures,
) -> None:
    waits: list[asyncio.Task[None]] = []
    for round_number in range(args.rounds):
        queued = time.monotonic()
        await queue_notices(database, rider.user.id, args.notices, round_number)

        async def arrived(round_number: int = round_number, queued: float = queued) -> None:
            await notices_arrived(fake, rider.user.id, round_number, args.notices)
            figures.notice_seconds.append(time.monotonic() - queued)

        waits.append(asyncio.create_task(arrived()))
        await asyncio.sleep(NOTICE_LEAD_SECONDS)
        await rider.journey(photos[round_number], (39.9 + round_number / 100, 116.4))
        figures.latencies += rider.latencies
        await asyncio.sleep(args.pause)
    await asyncio.gather(*waits)


async def run_bot(name: str, root: Path, args: argparse.Namespace, photos: list[bytes]) -> Figures:
    figures = Figures(name)
    with tempfile.TemporaryDirectory(prefix="answers-") as tmp:
        workdir = Path(tmp)
        database = workdir / "bot.db"
        config = workdir / "config.toml"
        config.write_text("[reports]\ndaily_cap = 100000\n", encoding="utf-8")
        async with BenchTelegram() as fake, Delivery(fake, webhook=False) as delivery:
            env = {k: v for k, v in os.environ.items() if k not in UNSET} | {
                "BOT_TOKEN": fake.token,
                "BOT_API_URL": fake.base_url,
                "DATABASE_URL": f"sqlite:///{database}",
                "PYTHONPATH": str(root),
                "CONFIG_FILE": str(config),
                **delivery.bot_env(),
            }
            bot = await asyncio.create_subprocess_exec(
                sys.executable,
                str(root / "bot.py"),
                env=env,
                cwd=workdir,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                await delivery.bot_ready(timeout=60)
                fake.enforce_caps()  # Telegram's: 30/s, 20/min per group, 10/10 s per chat
                inbox = Inbox(fake)
                riders = [
                    PacedRider(fake, TgUser(5_000_000 + i, f"骑手{i}", "zh-hans"), inbox)
                    for i in range(args.riders)
                ]
                await asyncio.gather(*(rider.agree() for rider in riders))
                await asyncio.sleep(11)  # the consent's answers leave the chats' windows
                await asyncio.gather(
                    *(ride(rider, fake, database, photos, args, figures) for rider in riders)
                )
                figures.rejections = fake.cap_rejections
            finally:
                await stop_bot(bot)
    return figures


def report(figures: Figures, args: argparse.Namespace) -> None:
    latencies = sorted(figures.latencies)
    p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    slow = sum(seconds > GOAL_SECONDS for seconds in latencies)
    print(
        f"{figures.name:<16} {len(latencies):>7} {statistics.median(latencies):>8.3f} "
        f"{p95:>8.3f} {latencies[-1]:>8.3f} {slow:>7} {figures.rejections:>5} "
        f"{max(figures.notice_seconds):>10.1f}"
    )


async def main(args: argparse.Namespace) -> None:
    maker = PhotoMaker(seed=7)
    photos = [maker.shot(3 * n).data for n in range(args.rounds)]  # sent as photos
    bots = [("this tree", ROOT)]
    if args.before is not None:
        bots.insert(0, ("before", args.before))
    results = [await run_bot(name, root, args, photos) for name, root in bots]
    print(
        f"{args.riders} riders, {args.rounds} rounds each: {args.notices} notices queued for the "
        f"rider, then a report at one action a second ({PACE_SECONDS:.0f} s apart); "
        "stand-in enforcing Telegram's caps (30/s, 20/min per group, 10 per 10 s per chat)"
    )
    print(
        f"{'bot':<16} {'answers':>7} {'median s':>8} {'p95 s':>8} {'max s':>8} "
        f"{'> 0.5 s':>7} {'429s':>5} {'notices s':>10}"
    )
    for figures in results:
        report(figures, args)
    print("notices s: from queuing a round's notices to the last of them reaching the rider")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.answers", description=__doc__)
    parser.add_argument("--riders", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--notices", type=int, default=8)
    parser.add_argument("--pause", type=float, default=12.0, help="seconds between rounds")
    parser.add_argument("--before", help="also run the bot.py of this checkout, first")
    arguments = parser.parse_args()
    arguments.before = Path(arguments.before).resolve() if arguments.before else None
    asyncio.run(main(arguments))
