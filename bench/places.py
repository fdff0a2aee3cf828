"""How fast is "near me" with 20,000 places?

Loads N places (default 20,000) spread over a county-sized square (about 60 x 60 km around
Beijing, a third merchants, a quarter with day-time hours), then times `Places.nearest`
(R*Tree box prefilter, haversine, open-now) from random points: prints the median and 95th
percentile in milliseconds, for stations only and with merchants.

    .venv/bin/python -m bench.places [N]
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from services.outbox import Outbox
from services.places import Places, encode
from services.places_file import Hours, PlaceRow, parse_hours
from settings import Settings
from storage import places as store
from storage.db import Database

CENTRE = (39.9087, 116.3975)
HALF_SIDE_DEG = 0.27  # about 30 km
SAMPLES = 500


def fake_places(count: int, rng: random.Random) -> list[PlaceRow]:
    day = parse_hours("mon-fri 08:00-20:00; sat-sun 09:00-18:00")
    rows = []
    for number in range(count):
        merchant = number % 3 == 0
        rows.append(
            PlaceRow(
                kind="merchant" if merchant else "station",
                name=f"place {number}",
                address=f"road {number}",
                town=f"town {number % 12}",
                lat=CENTRE[0] + rng.uniform(-HALF_SIDE_DEG, HALF_SIDE_DEG),
                lon=CENTRE[1] + rng.uniform(-HALF_SIDE_DEG, HALF_SIDE_DEG),
                hours=day if number % 4 == 0 else Hours(always=True),
                amenities=("seats", "water"),
            )
        )
    return rows


async def main(count: int) -> None:
    rng = random.Random(12)
    with tempfile.TemporaryDirectory() as folder:
        db = Database(Path(folder) / "bench.db")
        await db.open()
        settings = Settings(bot_token="1:x")  # noqa: S106 (a stand-in, never used)
        service = Places(
            db, settings, Outbox(db), clock=lambda: datetime(2026, 11, 6, 4, tzinfo=UTC)
        )
        started = time.perf_counter()
        await store.replace_all(
            db, [encode(row) for row in fake_places(count, rng)], admin=1, file_name="", now=0
        )
        print(f"loaded {count} places in {time.perf_counter() - started:.2f} s")
        for merchants in (False, True):
            timings = []
            for _ in range(SAMPLES):
                lat = CENTRE[0] + rng.uniform(-HALF_SIDE_DEG, HALF_SIDE_DEG)
                lon = CENTRE[1] + rng.uniform(-HALF_SIDE_DEG, HALF_SIDE_DEG)
                begun = time.perf_counter()
                page = await service.nearest(lat, lon, merchants=merchants)
                timings.append((time.perf_counter() - begun) * 1000)
                assert len(page.found) == 3
            timings.sort()
            p95 = timings[int(len(timings) * 0.95) - 1]
            what = "stations and merchants" if merchants else "stations only"
            print(
                f"nearest 3 open ({what}), {SAMPLES} queries: median"
                f" {statistics.median(timings):.2f} ms, p95 {p95:.2f} ms, max {timings[-1]:.2f} ms"
            )
        await db.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
