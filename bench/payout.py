"""How long and how much memory does one payout batch take at 100,000 riders?

Builds a temporary database (the real migrations) with RIDERS riders, all with payout details,
and ENTRIES ledger entries: rewards of 50-200 yuan, one approved report each, spread over the
52 weeks before the period's end, and 2% of them reversed. Synthetic rows go in with
`executemany`, bypassing the services. Then times, with the real services:

- the first batch, which settles every entry at once (the worst case: nothing paid before);
- the next week's batch after 2% more rewards (the steady state: most entries settled);
- `/audit` over the result, and `balance()` / `history()` for one rider;
- then the real bot (`python bot.py` against tests/fakegram) on that database: an admin sends
  /audit and, while it runs, a new user sends /start. The audit reads a snapshot on its own
  read-only connection, so the /start answer should not wait for it (target: under 1 s).

Printed: seconds, and the process's resident memory before each step and at its peak during
the step (VmHWM, reset before each step where Linux allows; it includes SQLite's page cache
and the rendered files). Figures only; timings are never asserted.

    .venv/bin/python -m bench.payout [RIDERS] [ENTRIES]      (default 100000 1000000)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from services import ledger, payouts
from services.audit import audit
from settings import Programme
from storage.db import Database
from tests.fakegram import FakeTelegram, TgUser

T = TypeVar("T")
TZ = ZoneInfo("Asia/Shanghai")
WEEK = 7 * 86_400
PERIOD_END = 1_796_004_000  # Monday 2026-11-30 10:00 Asia/Shanghai, ends 2026-W48
TIERS = (5_000, 10_000, 15_000, 20_000)
REVERSED_SHARE = 0.02
CHUNK = 50_000
MODERATOR = 4_242
ADMIN = TgUser(4_343, language_code="en")
NEWCOMER = TgUser(4_444, language_code="en")
START_DELAY = 1.0  # seconds after /audit is sent, so that the audit is well under way
START_INTERVAL = 0.5
ROOT = Path(__file__).resolve().parent.parent
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


def insert_rewards(
    conn: sqlite3.Connection, riders: int, count: int, first_id: int, since: int, until: int
) -> int:
    """`count` approved reports and their rewards by random riders; returns how many."""
    randomly = random.Random(first_id)

    def rows() -> Iterator[tuple[int, str, int, int, int, int]]:
        for report_id in range(first_id, first_id + count):
            amount = randomly.choice(TIERS)
            yield (
                report_id,
                f"R-20261127-{report_id:07d}",
                randomly.randint(1, riders),
                randomly.randrange(since, until),
                amount,
                ledger.points_for(amount, _PROGRAMME),
            )

    batch: list[tuple[int, str, int, int, int, int]] = []
    for row in rows():
        batch.append(row)
        if len(batch) == CHUNK:
            _write_rewards(conn, batch)
            batch.clear()
    _write_rewards(conn, batch)
    return count


def _write_rewards(
    conn: sqlite3.Connection, rows: list[tuple[int, str, int, int, int, int]]
) -> None:
    conn.executemany(
        "INSERT INTO reports (id, reference, rider_id, status, created_at, updated_at,"
        " submitted_at, reward_fen, points) VALUES (?, ?, ?, 'approved', ?, ?, ?, ?, ?)",
        ((r, ref, rider, at, at, at, amount, points) for r, ref, rider, at, amount, points in rows),
    )
    conn.executemany(
        "INSERT INTO decisions (report_id, moderator_id, action, previous_status, new_status,"
        " amount_fen, created_at) VALUES (?, ?, 'approve', 'pending', 'approved', ?, ?)",
        ((r, MODERATOR, amount, at) for r, _, _, at, amount, _ in rows),
    )
    conn.executemany(
        "INSERT INTO ledger (rider_id, kind, amount_fen, points, report_id, idempotency_key,"
        " created_at) VALUES (?, 'reward', ?, ?, ?, ?, ?)",
        ((rider, amount, points, r, f"reward:{r}", at) for r, _, rider, at, amount, points in rows),
    )


def reverse_some(conn: sqlite3.Connection, share: float, seed: int, at: int) -> int:
    """Reverse a random `share` of the approved reports at time `at`."""
    reports = [row[0] for row in conn.execute("SELECT id FROM reports WHERE status = 'approved'")]
    chosen = random.Random(seed).sample(reports, int(len(reports) * share))
    conn.executemany("UPDATE reports SET status = 'reversed' WHERE id = ?", ((r,) for r in chosen))
    conn.execute("CREATE TEMP TABLE chosen AS SELECT value AS id FROM json_each(?)", (str(chosen),))
    conn.execute(
        "INSERT INTO ledger (rider_id, kind, amount_fen, points, report_id, idempotency_key,"
        " memo, created_at) SELECT rider_id, 'reversal', -amount_fen, -points, report_id,"
        " 'reversal:' || report_id, 'bench', ? FROM ledger"
        " WHERE kind = 'reward' AND report_id IN (SELECT id FROM temp.chosen)",
        (at,),
    )
    conn.execute("DROP TABLE temp.chosen")
    return len(chosen)


def build(path: Path, riders: int, entries: int) -> int:
    """Riders, payees, rewards and reversals; returns the number of ledger entries."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO users (id, telegram_id, created_at, consented_at) VALUES (?, ?, ?, ?)",
        (
            (r, 5_000_000_000 + r, PERIOD_END - 60 * WEEK, PERIOD_END - 60 * WEEK)
            for r in range(1, riders + 1)
        ),
    )
    conn.executemany(
        "INSERT INTO payees (rider_id, real_name, account, updated_at) VALUES (?, ?, ?, ?)",
        ((r, f"骑手{r}", f"1{r:010d}", PERIOD_END - 60 * WEEK) for r in range(1, riders + 1)),
    )
    rewards = round(entries / (1 + REVERSED_SHARE))
    insert_rewards(conn, riders, rewards, 1, PERIOD_END - 52 * WEEK, PERIOD_END)
    reversed_count = reverse_some(conn, REVERSED_SHARE, 7, PERIOD_END - 3600)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return rewards + reversed_count


async def main(riders: int, entries: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        db = Database(path)
        await db.open()  # the real migrations
        await db.close()
        started = time.perf_counter()
        total = build(path, riders, entries)
        print(
            f"built {riders:,} riders and {total:,} ledger entries"
            f" in {time.perf_counter() - started:.1f} s"
        )

        db = Database(path)
        await db.open()
        try:
            await run(db, path, riders)
        finally:
            await db.close()
        print(f"database file {path.stat().st_size / 2**20:.0f} MB")
        await start_during_audit(path, Path(folder))


async def start_during_audit(path: Path, workdir: Path) -> None:
    """The real bot on the bench database: /start from a new user while /audit runs."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        # As if announced already, so that the bot does not send the files at start-up.
        conn.execute("UPDATE payout_batches SET announced_at = exported_at")
    async with FakeTelegram() as fake:
        env = {
            **os.environ,
            "BOT_TOKEN": fake.token,
            "BOT_API_URL": fake.base_url,
            "DATABASE_URL": f"sqlite:///{path}",
            "MODERATOR_CHAT_ID": str(MODERATOR),
            "ADMIN_IDS": str(ADMIN.id),
            "PYTHONPATH": str(ROOT),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "bot.py"),
            env=env,
            cwd=workdir,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await fake.wait_for(lambda: bool(fake.calls_to("getUpdates")), timeout=300)
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


async def run(db: Database, path: Path, riders: int) -> None:
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

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    row = conn.execute("SELECT MAX(id) FROM reports").fetchone()
    added = insert_rewards(conn, riders, riders // 5, row[0] + 1, PERIOD_END, PERIOD_END + WEEK)
    conn.execute("COMMIT")
    conn.close()

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
    arguments = [int(a) for a in sys.argv[1:3]]
    riders, entries = [*arguments, *(100_000, 1_000_000)[len(arguments) :]]
    asyncio.run(main(riders, entries))
