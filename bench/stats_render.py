"""How long does /stats take at 100,000 reports, and does the bot keep answering meanwhile?

Builds a temporary database (the real migrations) with REPORTS reports over the year before
2026-11-30: categories at random, 80% decided 1-40 hours after submission, 60% approved
with their reward entries, cases for the approved ones in two departments. Then:

- the chart data for `/stats year` (read on a snapshot), and the image drawn on the charts
  thread, timed separately with the PNG's size; then the text figures /stats adds (today,
  this week and all time; the departments' cases; their performance and its image);
- the real bot (`python bot.py` against tests/fakegram) on that database: a moderator sends
  `/stats year` and, while it renders, a new user sends /start every half second; printed:
  the time until all of /stats's answers arrived (its three messages) and the /start answer
  times (first, median, slowest).

Figures only; timings are never asserted.

With --engine postgresql the database is a fresh one on a throwaway PostgreSQL server that
the bench starts and stops itself (bench/engines.py); the rows go in with COPY.

    .venv/bin/python -m bench.stats_render [REPORTS] [--engine sqlite|postgresql]
                                                        (default 100000 sqlite)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bench import engines
from bench.engines import Row, Table, continue_after_given_ids, write
from bench.payout import USERS
from bench.process import start_bot
from locales import Phrases, Texts
from services import charts, payouts
from services import figures as data
from services.performance import performance
from services.stats import Stats, case_stats
from settings import DEFAULT_CATEGORIES, Department, PayoutRules, Programme
from storage.db import Database
from tests.fakegram import FakeTelegram, TgUser

TZ = ZoneInfo("Asia/Shanghai")
END = 1_796_004_000  # 2026-11-30 10:00 Asia/Shanghai
YEAR = 365 * 86_400
MODERATOR = TgUser(4_242, language_code="zh-hans")
NEWCOMER = TgUser(4_444, language_code="en")
START_DELAY = 0.3
START_INTERVAL = 0.5
PAYOUT_SCHEDULE = "0 10 * * mon"  # the default
STATS_MESSAGES = 3  # the charts' image, the text figures, the departments' performance image
DEPARTMENTS = (
    Department("roads", "公路段", "Roads office", -1, ("road_hazard", "public_facility", "other")),
    Department(
        "safety", "应急管理", "Emergencies", -2, ("fire_risk", "traffic_accident", "public_order")
    ),
)
CONFIG = """
[payout]
budget_yuan_per_month = 20000
[[departments]]
key = "roads"
zh = "公路段"
en = "Roads office"
chat_id = -1
categories = ["road_hazard", "public_facility", "other", "sanitation"]
[[departments]]
key = "safety"
zh = "应急管理"
en = "Emergencies"
chat_id = -2
categories = ["fire_risk", "traffic_accident", "public_order"]
"""


REPORTS_TABLE: Table = (
    "reports",
    (
        *("id", "reference", "rider_id", "status", "category", "created_at", "updated_at"),
        *("submitted_at", "deadline_at", "decided_at", "reward_fen", "latitude", "longitude"),
        *("card_chat_id", "card_message_id", "digest_at", "escalated_at", "breached_at"),
    ),
)
LEDGER_TABLE: Table = (
    "ledger",
    ("rider_id", "kind", "amount_fen", "points", "report_id", "idempotency_key", "created_at"),
)
CASES_TABLE: Table = (
    "cases",
    (
        *("report_id", "department", "state", "opened_at", "dispatched_at", "due_at"),
        *("fixed_at", "updated_at", "closed_at", "card_chat_id", "card_message_id"),
        *("reminded_at", "breached_at", "urged_at"),
    ),
)


def rows(count: int) -> tuple[list[Row], list[Row], list[Row]]:
    """The reports, reward entries and cases of the synthetic year (seeded: the same rows on
    either engine), in a steady state: every card already posted, every missed deadline
    already reminded of and recorded, every fixed case confirmed. Otherwise the bot would
    spend the whole run on a backlog of 20,000 review cards and 40,000 confirmations, and
    /start would be slow with or without /stats."""
    randomly = random.Random(13)
    keys = [c.key for c in DEFAULT_CATEGORIES]
    reports: list[Row] = []
    rewards: list[Row] = []
    cases: list[Row] = []
    for report_id in range(1, count + 1):
        submitted = END - randomly.randrange(YEAR)
        category = randomly.choice(keys)
        decided = (
            submitted + randomly.randrange(3600, 40 * 3600) if randomly.random() < 0.8 else None
        )
        approved = decided is not None and randomly.random() < 0.75
        status = "approved" if approved else "rejected" if decided else "pending"
        reward = randomly.choice((5000, 10000)) if approved else None
        rider = randomly.randint(1, 1000)
        missed = submitted + 86_400 if status == "pending" else None
        reports.append(
            (
                *(report_id, f"R-B-{report_id:07d}", rider, status, category, submitted),
                *(submitted, submitted, submitted + 86_400, decided, reward),
                29.3 + randomly.uniform(-0.1, 0.1),
                117.2 + randomly.uniform(-0.1, 0.1),
                *(MODERATOR.id, report_id, missed, missed, missed),
            )
        )
        if approved and decided is not None and reward is not None:
            rewards.append((rider, "reward", reward, 0, report_id, f"reward:{report_id}", decided))
            fixed = (
                decided + randomly.randrange(3600, 72 * 3600) if randomly.random() < 0.8 else None
            )
            department = (
                "safety"
                if category in ("fire_risk", "traffic_accident", "public_order")
                else "roads"
            )
            due = decided + 24 * 3600
            late = None if fixed else due
            cases.append(
                (
                    *(report_id, department, "confirmed" if fixed else "dispatched", decided),
                    *(decided, due, fixed, fixed or decided, fixed),
                    *(-1 if department == "roads" else -2, report_id, late, late, late),
                )
            )
    return reports, rewards, cases


async def build(db: Database, count: int) -> None:
    """1,000 riders and `count` reports with their rewards and cases, bypassing the services
    (COPY on PostgreSQL, executemany on SQLite: bench/engines.py's `write`)."""
    reports, rewards, cases = rows(count)
    async with db.transaction() as conn:
        await write(conn, USERS, [(r, 5_000_000 + r, 0, 0) for r in range(1, 1001)])
        for table, found in (
            (REPORTS_TABLE, reports),
            (LEDGER_TABLE, rewards),
            (CASES_TABLE, cases),
        ):
            await write(conn, table, found)
        await continue_after_given_ids(conn)
    await engines.analyze(db)


async def settle(db: Database) -> None:
    """The payout batch the bot would build at start-up, built now and marked announced (as
    bench/payout.py does): otherwise the bot spends the run telling 1,000 riders about it."""
    trigger = CronTrigger.from_crontab(PAYOUT_SCHEDULE, timezone=TZ)
    await payouts.run_due(db, trigger=trigger, minimum_fen=0, now=int(time.time()))
    async with db.transaction() as conn:
        await conn.execute("UPDATE payout_batches SET announced_at = exported_at")


async def in_process(target: engines.Target) -> None:
    db = Database(target)
    await db.open()
    programme = Programme(departments=DEPARTMENTS, payout=PayoutRules(budget_month_fen=2_000_000))
    period = data.year_period(2026, TZ)
    t = Phrases(Texts(), "zh", TZ)
    try:
        started = time.perf_counter()
        found = await data.charts(db, programme, TZ, period)
        read = time.perf_counter() - started
        started = time.perf_counter()
        png = await charts.draw_in_pool(lambda: charts.stats_png(found, t, programme))
        drawn = time.perf_counter() - started
        print(
            f"/stats year data: {read:.3f} s (n={found.weekly.n:,}); drawing: {drawn:.3f} s;"
            f" PNG {len(png) / 1024:.0f} KB"
        )
        started = time.perf_counter()
        await Stats(db, TZ, [c.key for c in programme.categories]).snapshot()
        figures = time.perf_counter() - started
        started = time.perf_counter()
        await case_stats(db, [d.key for d in DEPARTMENTS])
        cases = time.perf_counter() - started
        started = time.perf_counter()
        rows = await performance(db, programme, period)
        departments = time.perf_counter() - started
        started = time.perf_counter()
        await charts.draw_in_pool(lambda: charts.performance_png(rows, t, programme, period))
        print(
            f"/stats text: today/week/all {figures:.3f} s, cases {cases:.3f} s,"
            f" performance {departments:.3f} s, its image {time.perf_counter() - started:.3f} s"
        )
        started = time.perf_counter()
        picture, points = await charts.render_incidents(
            db, programme.service_area, data.month_period(2026, 10, TZ), t
        )
        print(
            f"incident picture, 2026-10: {time.perf_counter() - started:.3f} s"
            f" for {points:,} reports"
            f" (density grid), PNG {len(picture) / 1024:.0f} KB"
        )
    finally:
        await db.close()


async def in_the_bot(target: engines.Target, workdir: Path) -> None:
    (workdir / "config.toml").write_text(CONFIG, encoding="utf-8")
    async with FakeTelegram() as fake:
        process = await start_bot(
            fake,
            workdir,
            engines.database_url(target),
            MODERATOR_CHAT_ID=str(MODERATOR.id),
            MODERATOR_IDS=str(MODERATOR.id),
        )
        try:
            for attempt in range(2):  # the first /stats also loads matplotlib and the font
                fake.send_text(MODERATOR, "/stats year")
                sent = time.perf_counter()
                answer = asyncio.ensure_future(
                    fake.wait_for_messages(
                        MODERATOR.id, STATS_MESSAGES * (attempt + 1), timeout=600
                    )
                )
                finished: list[float] = []
                answer.add_done_callback(lambda _: finished.append(time.perf_counter()))  # noqa: B023
                times: list[float] = []
                await asyncio.sleep(START_DELAY)
                while not answer.done():
                    newcomer = TgUser(NEWCOMER.id + attempt * 1000 + len(times), language_code="en")
                    start_sent = time.perf_counter()
                    fake.send_text(newcomer, "/start")
                    await fake.wait_for_messages(newcomer.id, 1, timeout=600)
                    times.append(time.perf_counter() - start_sent)
                    await asyncio.sleep(START_INTERVAL)
                messages = await answer
                label = "first" if attempt == 0 else "second"
                kinds = "+".join(m.kind for m in messages[-STATS_MESSAGES:])
                print(
                    f"bot, {label} /stats year: all {STATS_MESSAGES} answers after"
                    f" {finished[0] - sent:.3f} s ({kinds})"
                )
                if times:
                    print(
                        f"  {len(times)} /start during it: first {times[0]:.3f} s, median"
                        f" {statistics.median(times):.3f} s, slowest {max(times):.3f} s"
                    )
        finally:
            process.terminate()
            await process.wait()


async def main(count: int, engine: str) -> None:
    with tempfile.TemporaryDirectory() as folder, engines.databases(engine, Path(folder)) as dbs:
        target = await dbs.fresh("bench")
        async with engines.opened(target) as db:
            started = time.perf_counter()
            await build(db, count)
            await settle(db)
        print(f"built {count:,} reports on {engine} in {time.perf_counter() - started:.1f} s")
        await in_process(target)
        await in_the_bot(target, Path(folder))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.stats_render", description="/stats year at REPORTS reports."
    )
    parser.add_argument("reports", nargs="?", type=int, default=100_000, metavar="REPORTS")
    engines.add_engine_option(parser)
    args = parser.parse_args()
    asyncio.run(main(args.reports, args.engine))
