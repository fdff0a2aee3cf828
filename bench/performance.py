"""Department performance (部门绩效) over a seeded year of cases: the figures, and how long
/stats's performance block takes to compute on them.

Builds a temporary SQLite database with the real migrations and CASES cases over 2026 in five
departments: each opened with its 'open' event, 90% accepted (a fifth of them late), 80%
fixed (a tenth past due), 8% returned (退单) and re-routed, 6% reopened (返工), an extension
asked on 10% (granted on 60% of those), and a 回访 answer on every fixed case (70% real:
satisfied, basic or unsatisfied; 30% silent). Then it times `performance()` for the year
(median of RUNS) and prints the table a county office would see.

    .venv/bin/python -m bench.performance [CASES]        (default 1000)
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from services import figures as data
from services.performance import performance
from settings import Department, Programme
from storage.db import Database

TZ = ZoneInfo("Asia/Shanghai")
START = 1_767_196_800  # 2026-01-01 00:00 Asia/Shanghai
YEAR = 365 * 86_400
RUNS = 20
DEPARTMENTS = tuple(
    Department(key, zh, en, -index, ("road_hazard",))
    for index, (key, zh, en) in enumerate(
        (
            ("roads", "县公路局", "Roads"),
            ("power", "供电所", "Power"),
            ("water", "水务局", "Water"),
            ("chengguan", "城关镇办", "Chengguan"),
            ("haohuahong", "好花红镇办", "Haohuahong"),
        ),
        start=1,
    )
)


def seed(path: Path, count: int) -> None:
    randomly = random.Random(19)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO users (id, telegram_id, created_at, consented_at) VALUES (?, ?, 0, 0)",
        ((r, 6_000_000 + r) for r in range(1, 301)),
    )
    keys = [d.key for d in DEPARTMENTS]
    for case_id in range(1, count + 1):
        opened = START + randomly.randrange(YEAR - 10 * 86_400)
        department = randomly.choice(keys)
        conn.execute(
            "INSERT INTO reports (id, reference, rider_id, status, category, created_at,"
            " updated_at, submitted_at, deadline_at, decided_at, reward_fen)"
            " VALUES (?, ?, ?, 'approved', 'road_hazard', ?, ?, ?, ?, ?, 5000)",
            (case_id, f"R-P-{case_id:06d}", randomly.randint(1, 300), *(opened,) * 5),
        )
        events: list[tuple[int | None, str, str, str, int]] = [
            (None, "open", "dispatched", department, opened)
        ]
        accept_due, due = opened + 4 * 3600, opened + 3 * 86_400
        accepted = fixed = None
        if randomly.random() < 0.08:  # returned, then re-routed elsewhere
            events.append((None, "not_ours", "not_ours", department, opened + 3600))
            department = randomly.choice([k for k in keys if k != department])
            events.append((None, "reroute", "dispatched", department, opened + 7200))
        if randomly.random() < 0.9:
            late = randomly.random() < 0.2
            accepted = accept_due + (3600 if late else -randomly.randrange(3600, 3 * 3600))
            events.append((accepted, "accept", "accepted", department, accepted))
        if accepted and randomly.random() < 0.1:
            granted = randomly.random() < 0.6
            conn.execute(
                "INSERT INTO case_extensions (case_id, department, asked_by, reason, old_due_at,"
                " new_due_at, state, asked_at) VALUES (?, ?, 1, '材料', ?, ?, ?, ?)",
                (case_id, department, due, due + 5 * 86_400,
                 "approved" if granted else "refused", accepted + 60),
            )  # fmt: skip
            due += 5 * 86_400 if granted else 0
        if accepted and randomly.random() < 0.8:
            fixed = due + 3600 if randomly.random() < 0.1 else due - randomly.randrange(86_400)
            fixed = max(fixed, accepted + 60)
            events.append((fixed, "fixed", "fixed", department, fixed))
            if randomly.random() < 0.06:
                events.append((fixed, "reopen", "reopened", department, fixed + 3600))
            silent = randomly.random() < 0.3
            answer = "basic" if silent else randomly.choice(("satisfied", "basic", "unsatisfied"))
            conn.execute(
                "INSERT INTO case_feedback (case_id, report_id, round, answer, silent,"
                " created_at) VALUES (?, ?, 0, ?, ?, ?)",
                (case_id, case_id, answer, int(silent), fixed + 86_400),
            )
        conn.execute(
            "INSERT INTO cases (id, report_id, department, state, opened_at, dispatched_at,"
            " due_at, accept_due_at, accepted_at, fixed_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (case_id, case_id, department, "fixed" if fixed else "accepted" if accepted
             else "dispatched", opened, opened, due, accept_due, accepted, fixed, opened),
        )  # fmt: skip
        conn.executemany(
            "INSERT INTO case_events (case_id, role, action, to_state, department, created_at)"
            " VALUES (?, 'staff', ?, ?, ?, ?)",
            [(case_id, action, state, dept, at) for _, action, state, dept, at in events],
        )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        db = Database(path)
        await db.open()  # the real migrations
        await db.close()
        seed(path, count)
        db = Database(path)
        await db.open()
        programme = Programme(departments=DEPARTMENTS)
        period = data.year_period(2026, TZ)
        try:
            times = []
            for _ in range(RUNS):
                started = time.perf_counter()
                rows = await performance(db, programme, period)
                times.append(time.perf_counter() - started)
        finally:
            await db.close()
    print(f"{count:,} cases in 2026, 5 departments (SQLite)")
    print(f"performance() for the year: median {statistics.median(times) * 1000:.1f} ms"
          f" over {RUNS} runs (slowest {max(times) * 1000:.1f} ms)")  # fmt: skip
    print(
        f"{'department':<12} {'recv':>5} {'cases':>5} {'acc/in time':>12} {'fixed/in time':>14}"
        f" {'on time':>8} {'ext ask/ok':>10} {'退单':>4} {'返工':>4} {'answers':>8}"
        f" {'满意率':>6} {'silent':>6} {'med acc h':>9} {'med fix h':>9}"
    )
    for r in rows:
        print(
            f"{r.department:<12} {r.received:>5} {r.cases:>5}"
            f" {f'{r.accepted}/{r.accepted_in_time}':>12} {f'{r.fixed}/{r.fixed_in_time}':>14}"
            f" {percent(r.on_time_rate):>8}"
            f" {f'{r.extensions_asked}/{r.extensions_granted}':>10} {r.returned:>4}"
            f" {r.reopened:>4} {r.answers:>8} {percent(r.satisfaction):>6} {r.silent:>6}"
            f" {r.median_accept_hours!s:>9} {r.median_fix_hours!s:>9}"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
