"""SQL for places (stations and merchants), their problems, merchant staff and riders'
last shared locations.

The current set is the one riders see; the previous one is kept for one undo. The R*Tree
`places_rtree` holds every kept place as a point, filled by triggers (on PostgreSQL, a btree
on (lat, lon) serves the same box prefilter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Connection, Database, Row


@dataclass(frozen=True)
class Place:
    """A stored place; hours and prices are the JSON services/places_file.py writes."""

    id: int
    kind: str
    name: str
    address: str
    town: str
    lat: float
    lon: float
    hours_json: str
    amenities: str  # comma-separated keys
    benefit: str
    prices_json: str
    phone: str


NewPlace = tuple[str, str, str, str, float, float, str, str, str, str, str]
"""kind, name, address, town, lat, lon, hours JSON, amenities, benefit, prices JSON, phone."""


@dataclass(frozen=True)
class PlaceSet:
    id: int
    loaded_at: int
    place_count: int
    file_name: str


_PLACE_COLUMNS = (
    "p.id, p.kind, p.name, p.address, p.town, p.lat, p.lon, p.hours, p.amenities,"
    " p.benefit, p.prices, p.phone"
)
_CURRENT = "p.set_id = (SELECT id FROM place_sets WHERE state = 'current')"


def _place(row: Row) -> Place:
    return Place(*row)


async def replace_all(
    db: Database, rows: Sequence[NewPlace], *, admin: int, file_name: str, now: int
) -> int:
    """Make `rows` the current set in one transaction; the old current becomes previous."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM place_sets WHERE state = 'previous'")
        await conn.execute("UPDATE place_sets SET state = 'previous' WHERE state = 'current'")
        cursor = await conn.execute(
            "INSERT INTO place_sets (state, loaded_at, loaded_by, place_count, file_name)"
            " VALUES ('current', ?, ?, ?, ?)",
            (now, admin, len(rows), file_name),
        )
        set_id = cursor.lastrowid
        assert set_id is not None
        await conn.executemany(
            "INSERT INTO places (set_id, kind, name, address, town, lat, lon, hours, amenities,"
            " benefit, prices, phone) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(set_id, *row) for row in rows],
        )
        return set_id


async def undo(db: Database) -> PlaceSet | None:
    """Bring back the previous set (dropping the current one); None when there is none."""
    async with db.transaction() as conn:
        async with conn.execute("SELECT 1 FROM place_sets WHERE state = 'previous'") as cur:
            if await cur.fetchone() is None:
                return None
        await conn.execute("DELETE FROM place_sets WHERE state = 'current'")
        await conn.execute("UPDATE place_sets SET state = 'current' WHERE state = 'previous'")
    return await current_set(db)


async def current_set(db: Database) -> PlaceSet | None:
    row = await db.fetchone(
        "SELECT id, loaded_at, place_count, file_name FROM place_sets WHERE state = 'current'"
    )
    return None if row is None else PlaceSet(*row)


async def in_box(
    db: Database, box: tuple[float, float, float, float], kinds: Sequence[str]
) -> list[Place]:
    """Current places of `kinds` inside `box` = (min_lat, max_lat, min_lon, max_lon), found
    through the R*Tree."""
    marks = ",".join("?" * len(kinds))
    if db.engine == "postgresql":  # no R*Tree there: the btree on (lat, lon) prefilters
        source = "places AS p WHERE p.lat >= ? AND p.lat <= ? AND p.lon >= ? AND p.lon <= ?"
    else:
        source = (
            "places_rtree AS r CROSS JOIN places AS p ON p.id = r.id"
            " WHERE r.min_lat >= ? AND r.max_lat <= ? AND r.min_lon >= ? AND r.max_lon <= ?"
        )
    rows = await db.fetchall(
        f"SELECT {_PLACE_COLUMNS} FROM {source}"  # noqa: S608
        f" AND {_CURRENT} AND p.kind IN ({marks})",
        (*box, *kinds),
    )
    return [_place(row) for row in rows]


async def place(db: Database, place_id: int) -> Place | None:
    """A place of the current set by id."""
    row = await db.fetchone(
        f"SELECT {_PLACE_COLUMNS} FROM places AS p WHERE p.id = ? AND {_CURRENT}",  # noqa: S608
        (place_id,),
    )
    return None if row is None else _place(row)


async def by_name(db: Database, kind: str, name: str) -> Place | None:
    row = await db.fetchone(
        f"SELECT {_PLACE_COLUMNS} FROM places AS p"  # noqa: S608
        f" WHERE p.kind = ? AND p.name = ? AND {_CURRENT}",
        (kind, name),
    )
    return None if row is None else _place(row)


async def towns(db: Database) -> list[tuple[str, int]]:
    """(town, number of places) of the current set, by name."""
    rows = await db.fetchall(
        f"SELECT p.town, COUNT(*) FROM places AS p WHERE {_CURRENT}"  # noqa: S608
        " GROUP BY p.town ORDER BY p.town"
    )
    return [(str(row[0]), int(row[1])) for row in rows]


async def in_town(db: Database, town: str, kinds: Sequence[str]) -> list[Place]:
    marks = ",".join("?" * len(kinds))
    rows = await db.fetchall(
        f"SELECT {_PLACE_COLUMNS} FROM places AS p"  # noqa: S608
        f" WHERE {_CURRENT} AND p.town = ? AND p.kind IN ({marks}) ORDER BY p.name",
        (town, *kinds),
    )
    return [_place(row) for row in rows]


# --- problems ---------------------------------------------------------------------------


async def add_problem(
    conn: Connection, *, place: Place, rider_id: int | None, what: str, now: int
) -> int:
    cursor = await conn.execute(
        "INSERT INTO place_problems (place_kind, place_name, rider_id, what, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (place.kind, place.name, rider_id, what, now),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


async def open_problems_at(conn: Connection, place: Place) -> list[Row]:
    """Problems reported at `place` and not yet fixed, oldest first."""
    async with conn.execute(
        "SELECT id, rider_id FROM place_problems WHERE place_kind = ? AND place_name = ?"
        " AND fixed_at IS NULL ORDER BY id",
        (place.kind, place.name),
    ) as cur:
        return list(await cur.fetchall())


async def problems_since(conn: Connection, rider_id: int, since: int) -> int:
    async with conn.execute(
        "SELECT COUNT(*) FROM place_problems WHERE rider_id = ? AND created_at >= ?",
        (rider_id, since),
    ) as cur:
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def open_problem_of(db: Database, rider_id: int, since: int) -> Row | None:
    """The rider's latest problem report since `since` that has no photo yet."""
    return await db.fetchone(
        "SELECT id, place_kind, place_name FROM place_problems WHERE rider_id = ?"
        " AND created_at >= ? AND photo_file_id IS NULL AND fixed_at IS NULL"
        " ORDER BY id DESC LIMIT 1",
        (rider_id, since),
    )


async def set_problem_photo(db: Database, problem_id: int, file_id: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE place_problems SET photo_file_id = ? WHERE id = ?", (file_id, problem_id)
        )


async def problem(db: Database, problem_id: int) -> Row | None:
    return await db.fetchone(
        "SELECT id, place_kind, place_name, photo_file_id, created_at, fixed_at"
        " FROM place_problems WHERE id = ?",
        (problem_id,),
    )


async def fix_problem(conn: Connection, problem_id: int, admin: int, now: int) -> bool:
    """Mark the problem fixed; False if unknown or fixed already."""
    cursor = await conn.execute(
        "UPDATE place_problems SET fixed_at = ?, fixed_by = ? WHERE id = ? AND fixed_at IS NULL",
        (now, admin, problem_id),
    )
    return cursor.rowcount == 1


async def open_problems(db: Database) -> list[Row]:
    return await db.fetchall(
        "SELECT id, place_kind, place_name, photo_file_id, what, created_at FROM place_problems"
        " WHERE fixed_at IS NULL ORDER BY id"
    )


async def last_checked(db: Database, places: Sequence[Place]) -> dict[int, int]:
    """Place id -> when a problem there was last fixed, for the places that had one."""
    found: dict[int, int] = {}
    for item in places:
        row = await db.fetchone(
            "SELECT MAX(fixed_at) FROM place_problems WHERE place_kind = ? AND place_name = ?",
            (item.kind, item.name),
        )
        if row is not None and row[0] is not None:
            found[item.id] = int(row[0])
    return found


# --- merchant staff ---------------------------------------------------------------------


async def add_staff(db: Database, telegram_id: int, merchant: str, admin: int, now: int) -> None:
    async with db.transaction() as conn:
        await insert_staff(conn, telegram_id, merchant, admin, now)


async def insert_staff(
    conn: Connection, telegram_id: int, merchant: str, admin: int, now: int
) -> None:
    """In the caller's transaction: one merchant per staff member, the latest wins."""
    await conn.execute(
        "INSERT INTO merchant_staff (telegram_id, merchant_name, added_by, added_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (telegram_id) DO UPDATE SET"
        " merchant_name = excluded.merchant_name, added_by = excluded.added_by,"
        " added_at = excluded.added_at",
        (telegram_id, merchant, admin, now),
    )


async def remove_staff(db: Database, telegram_id: int) -> bool:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM merchant_staff WHERE telegram_id = ?", (telegram_id,)
        )
        return cursor.rowcount == 1


async def consented_rider(db: Database, telegram_id: int) -> int | None:
    """The internal id of a rider who agreed to the privacy notice."""
    row = await db.fetchone(
        "SELECT id FROM users WHERE telegram_id = ? AND consented_at IS NOT NULL", (telegram_id,)
    )
    return None if row is None else int(row[0])


async def staff_merchant(db: Database, telegram_id: int) -> str | None:
    """The merchant (by name) this person works for, if they are registered staff."""
    row = await db.fetchone(
        "SELECT merchant_name FROM merchant_staff WHERE telegram_id = ?", (telegram_id,)
    )
    return None if row is None else str(row[0])


async def staff_of(db: Database, merchant: str) -> list[int]:
    rows = await db.fetchall(
        "SELECT telegram_id FROM merchant_staff WHERE merchant_name = ? ORDER BY telegram_id",
        (merchant,),
    )
    return [int(row[0]) for row in rows]


# --- riders' locations and cards --------------------------------------------------------


async def save_location(db: Database, rider_id: int, lat: float, lon: float, now: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO rider_locations (rider_id, lat, lon, at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (rider_id) DO UPDATE SET lat = excluded.lat, lon = excluded.lon,"
            " at = excluded.at",
            (rider_id, lat, lon, now),
        )


async def last_location(db: Database, rider_id: int, since: int) -> tuple[float, float, int] | None:
    """(lat, lon, when) of the newest location the rider sent since `since`: stored, or on a
    report or draft."""
    row = await db.fetchone(
        "SELECT lat, lon, at FROM ("
        " SELECT lat, lon, at FROM rider_locations WHERE rider_id = ?1 AND at >= ?2"
        " UNION ALL"
        " SELECT latitude, longitude, updated_at FROM reports WHERE rider_id = ?1"
        " AND latitude IS NOT NULL AND updated_at >= ?2 AND location_source <> 'photo'"
        ") AS seen ORDER BY at DESC LIMIT 1",
        (rider_id, since),
    )
    return None if row is None else (float(row[0]), float(row[1]), int(row[2]))


async def set_nearby_asked(db: Database, rider_id: int, asked_at: int | None) -> None:
    async with db.transaction() as conn:
        if asked_at is None:
            await conn.execute("DELETE FROM nearby_asks WHERE rider_id = ?", (rider_id,))
        else:
            await conn.execute(
                "INSERT INTO nearby_asks (rider_id, asked_at) VALUES (?, ?)"
                " ON CONFLICT (rider_id) DO UPDATE SET asked_at = excluded.asked_at",
                (rider_id, asked_at),
            )


async def nearby_asked_since(db: Database, rider_id: int, since: int) -> bool:
    row = await db.fetchone(
        "SELECT 1 FROM nearby_asks WHERE rider_id = ? AND asked_at >= ?", (rider_id, since)
    )
    return row is not None


async def save_card_name(db: Database, rider_id: int, masked_name: str, now: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO rider_cards (rider_id, masked_name, issued_at) VALUES (?, ?, ?)"
            " ON CONFLICT (rider_id) DO UPDATE SET masked_name = excluded.masked_name",
            (rider_id, masked_name, now),
        )


async def card_name(db: Database, rider_id: int) -> str | None:
    """The masked name on the card of a rider who still consents."""
    row = await db.fetchone(
        "SELECT c.masked_name FROM rider_cards AS c JOIN users AS u ON u.id = c.rider_id"
        " WHERE c.rider_id = ? AND u.consented_at IS NOT NULL",
        (rider_id,),
    )
    return None if row is None else str(row[0])


async def staff_ids(db: Database) -> list[int]:
    """Every merchant staff member's Telegram id."""
    rows = await db.fetchall("SELECT telegram_id FROM merchant_staff ORDER BY telegram_id")
    return [int(row[0]) for row in rows]
