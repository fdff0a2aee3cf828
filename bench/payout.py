"""How long and how much memory does one payout batch take at 100,000 riders?

Builds a temporary database (the real migrations) with RIDERS riders, all with payout details,
and ENTRIES ledger entries: rewards of 50-200 yuan, one approved report each, spread over the
52 weeks before the period's end, and 2% of them reversed. Synthetic rows go in bypassing the
services (`executemany` on SQLite, COPY on PostgreSQL). Then times, with the real services:

- the first batch, which settles every entry at once (the worst case: nothing paid before);
- the next week's batch after 2% more rewards (the steady state: most entries settled);
- `/audit` over the result, and `balance()` / `history()` for one rider;
- then the real bot (`python bot.py` against tests/fakegram) on that database: an admin sends
  /audit and, while it runs, a new user sends /start. The audit reads a snapshot on its own
  read-only connection, so the /start answer should not wait for it (target: under 1 s).

Printed: seconds, and the process's resident memory before each step and at its peak during
the step (VmHWM, reset before each step where Linux allows; it includes SQLite's page cache
and the rendered files; PostgreSQL's server processes are not counted). Figures only; timings
are never asserted.

With --engine postgresql the database is a fresh one on a throwaway PostgreSQL server that
the bench starts and stops itself (bench/engines.py), for the services and for the bot.

    .venv/bin/python -m bench.payout [RIDERS] [ENTRIES] [--engine sqlite|postgresql]
                                                        (default 100000 1000000 sqlite)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Set
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from bench import engines
from bench.engines import CHUNK, Row, Table, continue_after_given_ids, write
from bench.process import start_bot
from services import ledger, payouts
from services.audit import audit
from settings import Programme
from storage.db import Connection, Database
from tests.fakegram import FakeTelegram, TgUser

T = TypeVar("T")
USERS: Table = ("users", ("id", "telegram_id", "created_at", "consented_at"))
PAYEES: Table = ("payees", ("rider_id", "real_name", "account", "updated_at"))
REPORTS: Table = (
    "reports",
    (
        *("id", "reference", "rider_id", "status"),
        *("created_at", "updated_at", "submitted_at", "reward_fen", "points"),
    ),
)
DECISIONS: Table = (
    "decisions",
    (
        *("report_id", "moderator_id", "action", "previous_status", "new_status"),
        *("amount_fen", "created_at"),
    ),
)
LEDGER: Table = (
    "ledger",
    (
        *("rider_id", "kind", "amount_fen", "points", "report_id", "idempotency_key"),
        *("memo", "created_at"),
    ),
)
TZ = ZoneInfo("Asia/Shanghai")
WEEK = 7 * 86_400
PERIOD_END = 1_796_004_000  # Monday 2026-11-30 10:00 Asia/Shanghai, ends 2026-W48
TIERS = (5_000, 10_000, 15_000, 20_000)
REVERSED_SHARE = 0.02
MODERATOR = 4_242
ADMIN = TgUser(4_343, language_code="en")
NEWCOMER = TgUser(4_444, language_code="en")
START_DELAY = 1.0  # seconds after /audit is sent, so that the audit is well under way
START_INTERVAL = 0.5
_PROGRAMME = Programme()


def memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss() -> None:
    """Reset VmHWM; where that fails (not Linux, not allowed) the peak covers the whole run."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


async def measure(name: str, step: Callable[[], Awaitable[T]]) -> T:
    reset_peak_rss()
    before = memory_mb("VmRSS")
    started = time.perf_counter()
    result = await step()
    seconds = time.perf_counter() - started
    print(
        f"{name:<38} {seconds:8.3f} s   RSS before {before:6.0f} MB,"
        f" peak {memory_mb('VmHWM'):6.0f} MB"
    )
    return result


@dataclass(frozen=True)
class Reward:
    """One synthetic approved report and its reward."""

    report_id: int
    rider_id: int
    at: int
    amount_fen: int
    points: int


def rewards(riders: int, count: int, first_id: int, since: int, until: int) -> Iterator[Reward]:
    """`count` rewards by random riders, report ids from `first_id` (seeded by it)."""
    randomly = random.Random(first_id)
    for report_id in range(first_id, first_id + count):
        amount = randomly.choice(TIERS)
        yield Reward(
            report_id,
            randomly.randint(1, riders),
            randomly.randrange(since, until),
            amount,
            ledger.points_for(amount, _PROGRAMME),
        )


def reward_rows(batch: list[Reward], reversed_ids: Set[int]) -> Iterator[tuple[Table, list[Row]]]:
    """The reports (reversed or approved), approve decisions and reward entries of `batch`."""
    yield (
        REPORTS,
        [
            (
                r.report_id,
                f"R-20261127-{r.report_id:07d}",
                r.rider_id,
                "reversed" if r.report_id in reversed_ids else "approved",
                r.at,
                r.at,
                r.at,
                r.amount_fen,
                r.points,
            )
            for r in batch
        ],
    )
    yield (
        DECISIONS,
        [
            (r.report_id, MODERATOR, "approve", "pending", "approved", r.amount_fen, r.at)
            for r in batch
        ],
    )
    yield (
        LEDGER,
        [
            (
                r.rider_id,
                "reward",
                r.amount_fen,
                r.points,
                r.report_id,
                f"reward:{r.report_id}",
                None,
                r.at,
            )
            for r in batch
        ],
    )


def reversal_rows(reversed_rewards: list[Reward], at: int) -> list[Row]:
    """Ledger reversals, at time `at`, of `reversed_rewards`."""
    return [
        (
            r.rider_id,
            "reversal",
            -r.amount_fen,
            -r.points,
            r.report_id,
            f"reversal:{r.report_id}",
            "bench",
            at,
        )
        for r in reversed_rewards
    ]


async def insert_rewards(
    conn: Connection,
    made: Iterator[Reward],
    reversed_ids: Set[int] = frozenset(),
) -> list[Reward]:
    """Writes the rewards `made`, in chunks; returns those whose report is in `reversed_ids`."""
    reversed_rewards: list[Reward] = []
    while batch := list(itertools.islice(made, CHUNK)):
        for table, rows in reward_rows(batch, reversed_ids):
            await write(conn, table, rows)
        reversed_rewards += [r for r in batch if r.report_id in reversed_ids]
    return reversed_rewards


async def build(db: Database, riders: int, entries: int) -> int:
    """Riders, payees, rewards and reversals; returns the number of ledger entries."""
    joined = PERIOD_END - 60 * WEEK
    count = round(entries / (1 + REVERSED_SHARE))
    reversed_ids = frozenset(
        random.Random(7).sample(range(1, count + 1), int(count * REVERSED_SHARE))
    )
    async with db.transaction() as conn:
        ids = range(1, riders + 1)
        await write(conn, USERS, [(r, 5_000_000_000 + r, joined, joined) for r in ids])
        await write(conn, PAYEES, [(r, f"骑手{r}", f"1{r:010d}", joined) for r in ids])
        made = rewards(riders, count, 1, PERIOD_END - 52 * WEEK, PERIOD_END)
        reversed_rewards = await insert_rewards(conn, made, reversed_ids)
        await write(conn, LEDGER, reversal_rows(reversed_rewards, PERIOD_END - 3600))
        await continue_after_given_ids(conn)
    await engines.analyze(db)
    return count + len(reversed_rewards)


async def main(riders: int, entries: int, engine: str) -> None:
    with tempfile.TemporaryDirectory() as folder, engines.databases(engine, Path(folder)) as dbs:
        target = await dbs.fresh("bench")
        async with engines.opened(target) as db:
            started = time.perf_counter()
            total = await build(db, riders, entries)
            print(
                f"built {riders:,} riders and {total:,} ledger entries on {engine}"
                f" in {time.perf_counter() - started:.1f} s"
            )
            await run(db, riders)
            size = await engines.database_bytes(db)
            print(f"database size {size / 2**20:.0f} MB")
            async with db.transaction() as conn:
                # As if announced already, so that the bot does not send the files at start-up.
                await conn.execute("UPDATE payout_batches SET announced_at = exported_at")
        await start_during_audit(target, Path(folder))


async def start_during_audit(target: engines.Target, workdir: Path) -> None:
    """The real bot on the bench database: /start from a new user while /audit runs."""
    async with FakeTelegram() as fake:
        process = await start_bot(
            fake,
            workdir,
            engines.database_url(target),
            MODERATOR_CHAT_ID=str(MODERATOR),
            ADMIN_IDS=str(ADMIN.id),
        )
        try:
            await starts_during_audit(fake)
        finally:
            process.terminate()
            await process.wait()


async def starts_during_audit(fake: FakeTelegram) -> None:
    """/audit, then from START_DELAY on a /start from a new user every START_INTERVAL until
    the audit answers; prints the audit's time and the /start answer times."""
    finished: list[float] = []
    fake.send_text(ADMIN, "/audit")
    sent = time.perf_counter()
    audit_answer = asyncio.ensure_future(fake.wait_for_messages(ADMIN.id, 1, timeout=1800))
    audit_answer.add_done_callback(lambda _: finished.append(time.perf_counter()))
    answer_times: list[float] = []
    await asyncio.sleep(START_DELAY)
    while not audit_answer.done():
        newcomer = TgUser(NEWCOMER.id + len(answer_times), language_code="en")
        start_sent = time.perf_counter()
        fake.send_text(newcomer, "/start")
        await fake.wait_for_messages(newcomer.id, 1, timeout=600)
        answer_times.append(time.perf_counter() - start_sent)
        await asyncio.sleep(START_INTERVAL)
    answer = (await audit_answer)[-1]
    print(f"bot: /audit answered after {finished[0] - sent:8.3f} s: {answer.text[:40]!r}")
    if answer_times:
        print(
            f"bot: {len(answer_times)} /start sent during it (from {START_DELAY:.0f} s, every"
            f" {START_INTERVAL} s): first answered after {answer_times[0]:.3f} s, median"
            f" {statistics.median(answer_times):.3f} s, slowest {max(answer_times):.3f} s"
        )


async def run(db: Database, riders: int) -> None:
    def week(end: int) -> Callable[[], Awaitable[payouts.BatchOutcome]]:
        return lambda: payouts.run_batch(
            db,
            period_key=payouts.period_key(end, end - WEEK, TZ),
            period_start=end - WEEK,
            period_end=end,
            minimum_fen=0,
            now=end + 60,
            timezone=TZ,
        )

    first = await measure("first batch (all entries unpaid)", week(PERIOD_END))
    print(
        f"  {first.period.key}: {len(first.paid):,} lines, {ledger.yuan(first.total_fen)} yuan,"
        f" XLSX {len(first.files.xlsx) / 2**20 if first.files else 0:.1f} MB"
    )

    row = await db.fetchone("SELECT MAX(id) FROM reports")
    assert row is not None
    added = riders // 5
    async with db.transaction() as conn:
        await insert_rewards(
            conn, rewards(riders, added, row[0] + 1, PERIOD_END, PERIOD_END + WEEK)
        )

    second = await measure(f"next week's batch (+{added:,} rewards)", week(PERIOD_END + WEEK))
    print(
        f"  {second.period.key}: {len(second.paid):,} lines, {ledger.yuan(second.total_fen)} yuan"
    )

    problems = await measure("audit", lambda: audit(db))
    print(f"  {len(problems)} violations")
    rider = riders // 2
    await measure("balance() of one rider", lambda: ledger.balance(db, rider))
    await measure("history() of one rider", lambda: ledger.history(db, rider))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.payout", description="A payout batch at RIDERS riders."
    )
    parser.add_argument("riders", nargs="?", type=int, default=100_000, metavar="RIDERS")
    parser.add_argument("entries", nargs="?", type=int, default=1_000_000, metavar="ENTRIES")
    engines.add_engine_option(parser)
    args = parser.parse_args()
    asyncio.run(main(args.riders, args.entries, args.engine))
