"""Cases handed to departments' own systems: how many a second each channel takes against
real local receivers, and how long after a receiver comes back its cases arrive.

For each channel (e-mail through a STARTTLS+login mail server, the signed webhook, an
Open311 stand-in; the receivers of tests/receivers.py) a fresh SQLite database with the
real migrations is seeded with CASES dispatched cases (one 1280x960 photo each), and the
bot's own `Handoff.deliver_due()` hands them all over; the figure is cases a second, wall
time. Then the webhook receiver is down for an hour on an accelerated clock (SPEEDUP times
real time) with the default backoff (`[delivery]`: 30 s doubling to 10 min) and comes
back; the figure is the delay from its return until every waiting case has arrived.

    .venv/bin/python -m bench.handoff [CASES]        (default 300)
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import os
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import trustme
from PIL import Image

from locales import Texts
from services.cases import Cases
from services.handoff import Handoff
from services.outbox import Outbox
from settings import Channel, DeliveryRules, Department, Programme, Settings, Smtp, Web
from storage.db import Database
from tests.receivers import SMTP_PASSWORD, SMTP_USER, MailServer, Open311, WebhookReceiver

SECRET = "bench-webhook-secret-0123456789"
API_KEY = "bench-open311-key-0123456789"
SPEEDUP = 120  # the accelerated clock's seconds per real second
DOWN_SECONDS = 3600


def photo() -> bytes:
    rng = random.Random(7)
    image = Image.new("RGB", (1280, 960))
    image.putdata([(rng.randrange(256), 90, 40) for _ in range(1280 * 960)])
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def seed(path: Path, count: int, department: str, channel: str, jpeg: bytes, now: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO users (id, telegram_id, created_at, consented_at) VALUES (1, 7, 0, 0)"
    )
    for n in range(1, count + 1):
        conn.execute(
            "INSERT INTO reports (id, reference, rider_id, status, category, description,"
            " latitude, longitude, created_at, updated_at, submitted_at, deadline_at,"
            " decided_at, reward_fen) VALUES (?, ?, 1, 'approved', 'road_hazard', ?,"
            " 26.1300, 106.6400, ?, ?, ?, ?, ?, 5000)",
            (n, f"R-20261203-{n:04d}", "井盖缺失，夜间很危险", *(now,) * 5),
        )
        conn.execute(
            "INSERT INTO report_photos (report_id, position, file_unique_id, sha256, phash,"
            " evidence, created_at) VALUES (?, 1, ?, ?, 0, ?, ?)",
            (n, f"u{n}", f"{n:064x}", jpeg, now),
        )
        conn.execute(
            "INSERT INTO cases (id, report_id, department, state, urgent, opened_at,"
            " dispatched_at, due_at, remind_at, accept_due_at, accept_remind_at, updated_at)"
            " VALUES (?, ?, ?, 'dispatched', 0, ?, ?, ?, ?, ?, ?, ?)",
            (n, n, department, now, now, now + 86_400, now + 64_800, now + 18_000, now, now),
        )
        conn.execute(
            "INSERT INTO case_deliveries (case_id, department, channel, dispatched_at,"
            " idempotency_key, created_at, next_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (n, department, channel, now, f"case-{n}-{now}", now, now),
        )
    conn.execute("COMMIT")
    conn.close()


async def handoff_for(
    path: Path, department: Department, count: int, jpeg: bytes, settings: Settings, clock: object
) -> tuple[Database, Handoff]:
    db = Database(path)
    await db.open()  # the real migrations
    await db.close()
    now = int(clock().timestamp())  # type: ignore[operator]
    seed(path, count, department.key, department.send, jpeg, now)
    db = Database(path)
    await db.open()
    cases = Cases(db, settings, Outbox(db, clock), clock)  # type: ignore[arg-type]
    return db, Handoff(db, settings, cases, Texts(), clock)  # type: ignore[arg-type]


async def throughput(
    folder: Path, department: Department, settings: Settings, count: int, jpeg: bytes
) -> float:
    db, handoff = await handoff_for(
        folder / f"{department.send}.db", department, count, jpeg, settings, lambda: now_utc()
    )
    started = time.perf_counter()
    await handoff.deliver_due()
    elapsed = time.perf_counter() - started
    left = await db.fetchone("SELECT COUNT(*) FROM case_deliveries WHERE delivered_at IS NULL")
    assert left is not None
    assert left[0] == 0, f"{left[0]} not delivered"
    await handoff.close()
    await db.close()
    return count / elapsed


def now_utc() -> datetime:
    return datetime.now(UTC)


async def delay_after_return(folder: Path, settings: Settings, jpeg: bytes, count: int) -> float:
    """Accelerated seconds from the receiver's return until every waiting case arrived."""
    receiver = WebhookReceiver(SECRET)
    department = webhook(receiver.url)
    settings = dataclasses.replace(
        settings, programme=Programme(departments=(department,), delivery=DeliveryRules())
    )
    origin, real = time.time(), time.monotonic()

    def fast() -> datetime:
        return datetime.fromtimestamp(origin + (time.monotonic() - real) * SPEEDUP, UTC)

    db, handoff = await handoff_for(folder / "down.db", department, count, jpeg, settings, fast)
    back_at = None
    while len(receiver.events) < count:
        if back_at is None and fast().timestamp() - origin >= DOWN_SECONDS:
            await receiver.start()
            back_at = fast().timestamp()
        await handoff.deliver_due()
        await asyncio.sleep(0.02)
    delay = fast().timestamp() - (back_at or 0)
    attempts = await db.fetchone("SELECT COUNT(*) FROM case_delivery_attempts WHERE ok = 0")
    print(f"  failed attempts while down: {attempts[0] if attempts else '?'}")
    await receiver.stop()
    await handoff.close()
    await db.close()
    return delay


def webhook(url: str) -> Department:
    channel = Channel("webhook", url=url, secret=SECRET)
    return Department("roads", "公路段", "Roads", None, ("road_hazard",), (), channel)


async def main(count: int) -> None:
    logging.getLogger("services.handoff").setLevel(logging.ERROR)
    jpeg = photo()
    print(f"{count} cases per channel, one {len(jpeg) // 1024} KB photo each")
    ca = trustme.CA()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        bundle = folder / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        os.environ["SSL_CERT_FILE"] = str(bundle)
        mail = MailServer(ca)
        mail.start()
        receiver = WebhookReceiver(SECRET)
        await receiver.start()
        open311 = Open311(API_KEY)
        await open311.start()
        departments = {
            "email": Department(
                "roads",
                "公路段",
                "Roads",
                None,
                ("road_hazard",),
                (),
                Channel("email", email="roads@county.example"),
            ),
            "webhook": webhook(receiver.url),
            "open311": Department(
                "roads",
                "公路段",
                "Roads",
                None,
                ("road_hazard",),
                (),
                Channel(
                    "open311",
                    url=open311.url,
                    api_key=API_KEY,
                    service_codes=(("road_hazard", "FIRE"),),
                ),
            ),
        }
        base = Settings(
            bot_token="1:BENCH",  # noqa: S106
            smtp=Smtp("127.0.0.1", mail.port, "bot@county.example", SMTP_USER, SMTP_PASSWORD),
            web=Web(public_url="https://bot.county.example"),
        )
        for name_, department in departments.items():
            settings = dataclasses.replace(base, programme=Programme(departments=(department,)))
            rate = await throughput(folder, department, settings, count, jpeg)
            print(f"{name_:8} {rate:7.1f} cases/s handed off")
        assert len(mail.raw) == len(receiver.events) == len(open311.requests) == count
        assert not open311.errors
        mail.stop()
        await receiver.stop()
        await open311.stop()
        waiting = 20
        print(
            f"webhook receiver down {DOWN_SECONDS // 60} min with {waiting} cases waiting"
            f" (clock x{SPEEDUP}, default backoff):"
        )
        delay = await delay_after_return(folder, base, jpeg, waiting)
        print(
            f"  all {waiting} delivered {delay:.0f} s after it came back"
            f" (at most retry_max_seconds = {DeliveryRules().retry_max_seconds} s)"
        )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
