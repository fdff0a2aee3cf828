"""The county office's page on a seeded year: how long its first load and its data take.

Seeds a fresh database (the real migrations; bulk inserts that bypass the services) with
REPORTS reports over the year before now in three towns, 60% of them approved into cases of
two departments in the states a year leaves them: most confirmed, some fixed and waiting for
the rider, a few returned or beyond repair, and the last weeks' still running, with deadlines
around now so the map has green, yellow and red. Each case has its events (open, accept,
fixed, confirm). Then the real bot (`python bot.py` against tests/fakegram, PUBLIC_URL set)
gives an admin the /dashboard link, and this prints:

- the cases API (what the table and the map load on each filter change): median and slowest
  of RUNS requests, unfiltered and filtered by town and by state, with the rows, the map's
  points and the answer's size;
- the overview API (filters, towns' outlines, the year's department performance), once cold
  and then warm, and one case's history;
- the page's first load in the distribution's headless Chromium (scripts/browser), driven by
  Playwright: from navigation until the table and the map's points are drawn, in a fresh
  browser page each time (median of 3), with a screenshot if --screenshot names a file.

Figures only; nothing is asserted.

    .venv/bin/python -m bench.dashboard [REPORTS] [--engine sqlite|postgresql]
                                        [--screenshot docs/dashboard.png]   (default 100000)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from playwright.async_api import async_playwright

from bench import engines
from bench.engines import continue_after_given_ids, write
from bench.payout import USERS
from bench.process import ROOT, start_bot
from tests.fakegram import FakeTelegram, TgUser
from tests.receivers import free_port
from tests.test_dashboard_browser import FLAGS

ADMIN = TgUser(4_343, language_code="zh-hans")
DAY = 86_400
YEAR = 365 * DAY
RUNS = 20
TOWNS = ("城关镇", "好花红镇", "摆金镇")
WEST, SOUTH, SIDE = 106.60, 26.10, 0.10  # three squares in a row, 0.1 degrees a side
CONFIG = """
[towns]
file = "towns.geojson"
[[categories]]
key = "road_hazard"
zh = "道路隐患"
en = "Road hazard"
tier_yuan = 50
fix_workdays = 5
accept_hours = 8
[[categories]]
key = "public_facility"
zh = "公共设施损坏"
en = "Damaged public facility"
tier_yuan = 50
fix_hours = 72
[[categories]]
key = "fire_risk"
zh = "消防隐患"
en = "Fire risk"
tier_yuan = 100
fix_hours = 48
accept_hours = 2
[[departments]]
key = "roads"
zh = "县公路局"
en = "County roads bureau"
chat_id = -1
categories = ["road_hazard", "public_facility"]
[[departments]]
key = "fire"
zh = "县消防救援大队"
en = "Fire brigade"
chat_id = -2
categories = ["fire_risk"]
"""
REPORTS = (
    "reports",
    ("id", "reference", "rider_id", "status", "category", "created_at", "updated_at",
     "submitted_at", "deadline_at", "decided_at", "reward_fen", "latitude", "longitude", "town"),
)  # fmt: skip
CASES = (
    "cases",
    ("id", "report_id", "department", "state", "opened_at", "dispatched_at", "due_at",
     "remind_at", "accept_due_at", "accept_remind_at", "accepted_at", "fixed_at", "closed_at",
     "updated_at"),
)  # fmt: skip
EVENTS = (
    "case_events",
    ("case_id", "actor", "role", "action", "from_state", "to_state", "department", "created_at"),
)


def towns_file() -> str:
    features = []
    for index, name in enumerate(TOWNS):
        west = WEST + index * SIDE
        ring = [[west, SOUTH], [west + SIDE, SOUTH], [west + SIDE, SOUTH + SIDE],
                [west, SOUTH + SIDE], [west, SOUTH]]  # fmt: skip
        features.append(
            {
                "type": "Feature",
                "properties": {"name": name},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)


def seeded(count: int, now: int) -> dict[str, list[tuple[object, ...]]]:
    """The rows of a year of `count` reports and their cases, in the tables' columns."""
    randomly = random.Random(22)
    categories = ("road_hazard", "public_facility", "fire_risk")
    rows: dict[str, list[tuple[object, ...]]] = {"reports": [], "cases": [], "case_events": []}
    for report_id in range(1, count + 1):
        submitted = now - randomly.randrange(YEAR)
        category = randomly.choice(categories)
        town = randomly.randrange(len(TOWNS))
        lat = SOUTH + randomly.uniform(0.005, SIDE - 0.005)
        lon = WEST + town * SIDE + randomly.uniform(0.005, SIDE - 0.005)
        approved = randomly.random() < 0.6
        decided = submitted + randomly.randrange(1800, 20 * 3600)
        status = "approved" if approved else "rejected"
        rows["reports"].append(
            (report_id, f"R-{report_id:07d}", randomly.randint(1, 1000), status, category,
             submitted, decided, submitted, submitted + DAY, decided,
             5000 if approved else None, lat, lon, TOWNS[town])
        )  # fmt: skip
        if approved:
            department = "fire" if category == "fire_risk" else "roads"
            case, events = _case(
                randomly, len(rows["cases"]) + 1, report_id, department, decided, now
            )
            rows["cases"].append(case)
            rows["case_events"] += events
    return rows


def _case(
    randomly: random.Random, case_id: int, report_id: int, department: str, opened: int, now: int
) -> tuple[tuple[object, ...], list[tuple[object, ...]]]:
    """One case: running if opened in the last week (deadlines spread around now),
    else closed the way most are; and its events."""
    fix, accept = 5 * DAY, 8 * 3600
    due, accept_due = opened + fix, opened + accept
    remind, accept_remind = opened + int(fix * 0.75), opened + int(accept * 0.75)
    accepted = opened + randomly.randrange(600, accept + 4 * 3600)
    fixed = accepted + randomly.randrange(3600, fix)
    if now - opened < 7 * DAY:  # still running
        state = "accepted" if accepted < now and randomly.random() < 0.85 else "dispatched"
    else:
        state = randomly.choices(
            ("confirmed", "fixed", "not_ours", "cannot_fix"), (0.85, 0.08, 0.03, 0.04)
        )[0]
    events: list[tuple[object, ...]] = [
        (case_id, None, "clock", "open", None, "dispatched", department, opened)
    ]
    if state != "dispatched" and state != "not_ours":
        events.append(
            (case_id, 1, "staff", "accept", "dispatched", "accepted", department, accepted)
        )
    if state in ("fixed", "confirmed"):
        events.append((case_id, 1, "staff", "fixed", "accepted", "fixed", department, fixed))
    if state == "confirmed":
        events.append(
            (case_id, 2, "rider", "confirm", "fixed", "confirmed", department, fixed + DAY)
        )
    if state in ("not_ours", "cannot_fix"):
        events.append((case_id, 1, "staff", state, events[-1][5], state, department, accepted))
    shown_accepted = accepted if state != "dispatched" and state != "not_ours" else None
    shown_fixed = fixed if state in ("fixed", "confirmed") else None
    closed = fixed + DAY if state == "confirmed" else accepted if state == "cannot_fix" else None
    case = (
        case_id, report_id, department, state, opened, opened, due, remind, accept_due,
        accept_remind, shown_accepted, shown_fixed, closed, opened,
    )  # fmt: skip
    return case, events


async def build(target: engines.Target, count: int) -> None:
    rows = seeded(count, int(time.time()))
    async with engines.opened(target) as db:
        async with db.transaction() as conn:
            await write(conn, USERS, [(r, 5_000_000 + r, 0, 0) for r in range(1, 1001)])
            await write(conn, REPORTS, rows["reports"])
            await write(conn, CASES, rows["cases"])
            await write(conn, EVENTS, rows["case_events"])
            await continue_after_given_ids(conn)
        await engines.analyze(db)


async def timed(
    http: aiohttp.ClientSession, url: str, auth: str, runs: int
) -> tuple[list[float], dict[str, Any], int]:
    """Seconds of each of `runs` GETs of `url`, the last answer and its size in bytes."""
    times: list[float] = []
    body = b""
    for _ in range(runs):
        started = time.perf_counter()
        async with http.get(url, headers={"Authorization": auth}) as got:
            body = await got.read()
            got.raise_for_status()
        times.append(time.perf_counter() - started)
    return times, json.loads(body), len(body)


def figure(times: list[float]) -> str:
    return f"median {statistics.median(times) * 1000:.0f} ms, slowest {max(times) * 1000:.0f} ms"


async def first_loads(link: str, screenshot: Path | None) -> list[float]:
    finder = await asyncio.create_subprocess_exec(
        str(ROOT / "scripts/browser"), stdout=asyncio.subprocess.PIPE
    )
    chromium = (await finder.communicate())[0].decode().strip()
    loads: list[float] = []
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=chromium, args=FLAGS)
        try:
            for attempt in range(3):
                page = await browser.new_page(viewport={"width": 1280, "height": 1000})
                started = time.perf_counter()
                await page.goto(link)
                await page.wait_for_selector("body[data-ready=yes]", timeout=120_000)
                loads.append(time.perf_counter() - started)
                if screenshot is not None and attempt == 0:
                    await page.screenshot(path=str(screenshot), full_page=True)
                await page.close()
        finally:
            await browser.close()
    return loads


FILTERS = (
    ("all cases", ""),
    ("one town", "?town=好花红镇"),
    ("open only", "?state=open"),
    ("one town, one department, open", "?town=摆金镇&department=roads&state=open"),
)


async def the_apis(api: str, auth: str) -> None:
    async with aiohttp.ClientSession() as http:
        cold, _, _ = await timed(http, f"{api}/overview", auth, 1)
        warm, _, size = await timed(http, f"{api}/overview", auth, 5)
        print(
            f"overview API (performance of the year): cold {cold[0] * 1000:.0f} ms,"
            f" then {figure(warm)}; {size / 1024:.0f} KB"
        )
        for label, query in FILTERS:
            times, body, size = await timed(http, f"{api}/cases{query}", auth, RUNS)
            print(
                f"cases API, {label}: {figure(times)} over {RUNS}; {body['total']:,} match,"
                f" {body['shown']} rows, {len(body['points']):,} map points, {size / 1024:.0f} KB"
            )
        reference = body["cases"][0]["reference"]
        times, _, _ = await timed(http, f"{api}/cases/{reference}", auth, RUNS)
        print(f"one case's history: {figure(times)}")


async def admins_link(fake: FakeTelegram) -> str:
    fake.send_text(ADMIN, "/dashboard")
    (answer,) = await fake.wait_for_messages(ADMIN.id, 1, timeout=60)
    found = re.search(r"https?://\S+/dashboard\?\S+", answer.text)
    assert found is not None, answer.text
    return found[0]


async def main(count: int, engine: str, screenshot: Path | None) -> None:
    with tempfile.TemporaryDirectory() as folder, engines.databases(engine, Path(folder)) as dbs:
        workdir = Path(folder)
        target = await dbs.fresh("dashboard")
        started = time.perf_counter()
        await build(target, count)
        print(f"{engine}: seeded {count:,} reports in {time.perf_counter() - started:.1f} s")
        (workdir / "config.toml").write_text(CONFIG, encoding="utf-8")
        (workdir / "towns.geojson").write_text(towns_file(), encoding="utf-8")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        async with FakeTelegram() as fake:
            process = await start_bot(
                fake, workdir, engines.database_url(target), ADMIN_IDS=str(ADMIN.id),
                PUBLIC_URL=base, WEB_LISTEN=f"127.0.0.1:{port}",
            )  # fmt: skip
            try:
                link = await admins_link(fake)
                await the_apis(
                    f"{base}/dashboard/api", f"Link {parse_qs(urlsplit(link).query)['t'][0]}"
                )
                loads = await first_loads(link, screenshot)
                print(
                    "page's first load in Chromium (navigation to table and map drawn): "
                    + ", ".join(f"{s:.2f} s" for s in loads)
                    + f"; median {statistics.median(loads):.2f} s"
                )
            finally:
                process.terminate()
                await process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("reports", nargs="?", type=int, default=100_000)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    asyncio.run(main(args.reports, args.engine, args.screenshot))
