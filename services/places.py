"""Places for riders: importing the county's file, "near me", place problems, merchant staff.

Nearest search: an R*Tree box around the rider (storage), then exact haversine distances,
then opening hours in the programme's time zone; the box grows (1, 3, 10 km, ... up to the
configured limit) until enough open places are found.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from services import places_file as rules
from services.clock import Now, utc_now
from services.geo import bounding_box, haversine_m, valid_coordinates
from services.outbox import At, Msg, Notice, Outbox
from services.places_file import Hours, PlaceRow, PriceItem
from settings import Settings
from storage import places as store
from storage import reports as riders
from storage.db import Database

SEARCH_RADII_M = (1_000, 3_000, 10_000, 30_000, 100_000)
PHOTO_WINDOW_SECONDS = 600  # a photo sent this soon after flagging a place goes with it
PROBLEMS_PER_RIDER_PER_HOUR = 3  # beyond this a rider's place problems are refused
TOO_MANY_PROBLEMS = "too_many"
ASK_WINDOW_SECONDS = 1800  # a location this soon after "near me" asked for one answers it
# What a rider may say is wrong at a place, asked before anyone is alerted.
PROBLEM_KINDS = ("closed", "broken", "gone", "other")
RECENT_LOCATION_SECONDS = 300  # "near me" uses a location this fresh without asking again


@dataclass(frozen=True)
class Place:
    """A place of the current set, decoded."""

    id: int
    kind: str
    name: str
    address: str
    town: str
    lat: float
    lon: float
    hours: Hours
    amenities: tuple[str, ...]
    benefit: str
    prices: tuple[PriceItem, ...]
    phone: str

    @classmethod
    def of(cls, stored: store.Place) -> Place:
        return cls(
            id=stored.id,
            kind=stored.kind,
            name=stored.name,
            address=stored.address,
            town=stored.town,
            lat=stored.lat,
            lon=stored.lon,
            hours=Hours.from_json(stored.hours_json),
            amenities=tuple(filter(None, stored.amenities.split(","))),
            benefit=stored.benefit,
            prices=rules.prices_from_json(stored.prices_json),
            phone=stored.phone,
        )


@dataclass(frozen=True)
class OpenProblem:
    """A place problem the admins have not marked fixed."""

    id: int
    name: str  # the place's
    what: str  # one of PROBLEM_KINDS
    photo: bool
    at: int


@dataclass(frozen=True)
class Found:
    """A place near the rider: how far, and when a problem there was last fixed."""

    place: Place
    distance_m: float
    checked_at: int | None = None


@dataclass(frozen=True)
class NearbyPage:
    found: list[Found]
    more: bool  # another page of open places exists


@dataclass(frozen=True)
class Imported:
    count: int
    stations: int
    merchants: int


@dataclass(frozen=True)
class ImportRefused:
    """Nothing changed: the file as a whole is unreadable (`file_problem`) or rows were bad."""

    refusals: list[rules.BadRow] = field(default_factory=list)
    file_problem: str | None = None
    detail: str = ""


def encode(row: PlaceRow) -> store.NewPlace:
    return (
        row.kind,
        row.name,
        row.address,
        row.town,
        row.lat,
        row.lon,
        row.hours.to_json(),
        ",".join(row.amenities),
        row.benefit,
        rules.prices_to_json(row.prices),
        row.phone,
    )


class Places:
    """Stations and merchants, as riders and admins use them; people named by Telegram id."""

    def __init__(
        self, db: Database, settings: Settings, outbox: Outbox, clock: Now = utc_now
    ) -> None:
        self.db = db
        self.settings = settings
        self.outbox = outbox
        self.clock = clock

    def now(self) -> int:
        return int(self.clock().timestamp())

    def local_now(self) -> datetime:
        return self.clock().astimezone(self.settings.timezone)

    # --- import -------------------------------------------------------------------------

    def template(self) -> bytes:
        """The places template, its examples standing in the county's first town, else in
        the middle of the service area."""
        programme = self.settings.programme
        first = programme.towns.first()
        if first is not None:
            return rules.template_xlsx(*first)
        centre = programme.service_area.centre()
        return (
            rules.template_xlsx()
            if centre is None
            else rules.template_xlsx(lat=centre[0], lon=centre[1])
        )

    async def import_file(
        self, data: bytes, file_name: str, admin: int
    ) -> Imported | ImportRefused:
        """Check the whole file; replace the current set only if every row is valid."""
        try:
            checked = await rules.check_file_apart(data, file_name)
        except rules.PlacesFileError as problem:
            return ImportRefused(file_problem=problem.key, detail=problem.detail)
        if checked.refusals:
            return ImportRefused(refusals=checked.refusals)
        await store.replace_all(
            self.db,
            [encode(row) for row in checked.rows],
            admin=admin,
            file_name=file_name,
            now=self.now(),
        )
        merchants = sum(1 for row in checked.rows if row.kind == "merchant")
        return Imported(len(checked.rows), len(checked.rows) - merchants, merchants)

    async def undo(self) -> store.PlaceSet | None:
        return await store.undo(self.db)

    async def current_set(self) -> store.PlaceSet | None:
        return await store.current_set(self.db)

    # --- near me ------------------------------------------------------------------------

    async def nearest(
        self,
        lat: float,
        lon: float,
        *,
        merchants: bool = False,
        only_merchants: bool = False,
        offset: int = 0,
        limit: int = 3,
        open_only: bool = True,
    ) -> NearbyPage:
        """The nearest places open now (stations; merchants too if asked), one page."""
        kinds = ("station", "merchant") if merchants else ("station",)
        kinds = ("merchant",) if only_merchants else kinds
        wanted = offset + limit + 1
        moment = self.local_now()
        limit_m = self.settings.programme.places.nearby_max_km * 1000
        radii = [r for r in SEARCH_RADII_M if r < limit_m] + [limit_m]
        chosen: list[tuple[float, store.Place]] = []
        for radius in radii:
            box = bounding_box(lat, lon, radius)
            candidates = await store.in_box(
                self.db, (box.min_lat, box.max_lat, box.min_lon, box.max_lon), kinds
            )
            near = sorted(
                (d, c) for c in candidates if (d := haversine_m(lat, lon, c.lat, c.lon)) <= radius
            )
            chosen = []
            for distance, candidate in near:
                if not open_only or Hours.from_json(candidate.hours_json).open_at(moment):
                    chosen.append((distance, candidate))
                    if len(chosen) >= wanted:
                        break
            if len(chosen) >= wanted:
                break
        page = [(d, Place.of(c)) for d, c in chosen[offset : offset + limit]]
        checked = await store.last_checked(self.db, [c for _, c in chosen[offset : offset + limit]])
        return NearbyPage(
            [Found(p, d, checked.get(p.id)) for d, p in page], more=len(chosen) >= wanted
        )

    async def ask_location(self, telegram_id: int) -> None:
        """Remember that "near me" asked this rider for a location."""
        rider_id = await store.consented_rider(self.db, telegram_id)
        if rider_id is not None:
            await store.set_nearby_asked(self.db, rider_id, self.now())

    async def answers_ask(self, telegram_id: int, lat: float, lon: float) -> bool:
        """If "near me" asked this rider for a location lately, keep this one: True."""
        rider_id = await store.consented_rider(self.db, telegram_id)
        if rider_id is None or not valid_coordinates(lat, lon):
            return False
        now = self.now()
        if not await store.nearby_asked_since(self.db, rider_id, now - ASK_WINDOW_SECONDS):
            return False
        await store.save_location(self.db, rider_id, lat, lon, now)
        await store.set_nearby_asked(self.db, rider_id, None)
        return True

    async def last_location(self, telegram_id: int) -> tuple[float, float] | None:
        """The newest location the rider shared today (programme time zone)."""
        midnight = self.local_now().replace(hour=0, minute=0, second=0, microsecond=0)
        found = await self._location_since(telegram_id, int(midnight.timestamp()))
        return None if found is None else found[:2]

    async def recent_location(self, telegram_id: int) -> tuple[float, float, int] | None:
        """(lat, lon, seconds ago) of a location shared in the last RECENT_LOCATION_SECONDS:
        where the rider is now, near enough; None: ask for it."""
        found = await self._location_since(telegram_id, self.now() - RECENT_LOCATION_SECONDS)
        return None if found is None else (found[0], found[1], max(0, self.now() - found[2]))

    async def _location_since(
        self, telegram_id: int, since: int
    ) -> tuple[float, float, int] | None:
        rider_id = await riders.rider_id_of(self.db, telegram_id)
        return None if rider_id is None else await store.last_location(self.db, rider_id, since)

    async def towns(self) -> list[tuple[str, int]]:
        return await store.towns(self.db)

    async def in_town(self, town: str, *, merchants: bool = False) -> list[Found]:
        kinds = ("station", "merchant") if merchants else ("station",)
        stored = await store.in_town(self.db, town, kinds)
        checked = await store.last_checked(self.db, stored)
        return [Found(Place.of(s), math.nan, checked.get(s.id)) for s in stored]

    async def place(self, place_id: int) -> Place | None:
        stored = await store.place(self.db, place_id)
        return None if stored is None else Place.of(stored)

    def is_open(self, place: Place) -> bool:
        return place.hours.open_at(self.local_now())

    # --- problems -----------------------------------------------------------------------

    async def flag_problem(self, telegram_id: int, place_id: int, what: str) -> int | str | None:
        """A rider says what is wrong at a place (one of `PROBLEM_KINDS`): tell the admins,
        once per place until it is fixed. The same rider flagging the same place again changes
        nothing; past `PROBLEMS_PER_RIDER_PER_HOUR` the rider is refused (`TOO_MANY_PROBLEMS`),
        so one rider cannot flood the admins. None: no such place, or no such kind."""
        stored = await store.place(self.db, place_id)
        if stored is None or what not in PROBLEM_KINDS:
            return None
        rider_id = await riders.rider_id_of(self.db, telegram_id)
        now = self.now()
        async with self.db.transaction() as conn:
            open_ones = await store.open_problems_at(conn, stored)
            mine = next((row for row in open_ones if row["rider_id"] == rider_id), None)
            if mine is not None:
                return int(mine["id"])
            if rider_id is not None and (
                await store.problems_since(conn, rider_id, now - 3600)
                >= PROBLEMS_PER_RIDER_PER_HOUR
            ):
                return TOO_MANY_PROBLEMS
            problem_id = await store.add_problem(
                conn, place=stored, rider_id=rider_id, what=what, now=now
            )
            if open_ones:
                return problem_id  # the admins already know of this place's problem
            await self.outbox.queue(
                conn,
                [
                    Notice(
                        admin,
                        "places.problem.admin",
                        {
                            "id": problem_id,
                            "name": stored.name,
                            "address": stored.address,
                            "what": Msg(f"places.problem.what.{what}"),
                            "when": At(now),
                        },
                        once_key=f"place-problem:{problem_id}:{admin}",
                    )
                    for admin in sorted(self.settings.admin_ids)
                ],
            )
        return problem_id

    async def add_problem_photo(self, telegram_id: int, file_id: str) -> int | None:
        """Attach a photo to the rider's problem report of the last few minutes."""
        rider_id = await riders.rider_id_of(self.db, telegram_id)
        if rider_id is None:
            return None
        row = await store.open_problem_of(self.db, rider_id, self.now() - PHOTO_WINDOW_SECONDS)
        if row is None:
            return None
        await store.set_problem_photo(self.db, int(row["id"]), file_id)
        await self.outbox.send(
            *(
                Notice(
                    admin,
                    "places.problem.photo_added",
                    {"id": int(row["id"]), "name": str(row["place_name"])},
                )
                for admin in sorted(self.settings.admin_ids)
            )
        )
        return int(row["id"])

    async def problem_photo(self, problem_id: int) -> str | None:
        row = await store.problem(self.db, problem_id)
        return None if row is None else row["photo_file_id"]

    async def open_problems(self) -> list[OpenProblem]:
        """Every problem not yet fixed, oldest first."""
        return [
            OpenProblem(
                id=int(r["id"]),
                name=str(r["place_name"]),
                what=str(r["what"]),
                photo=r["photo_file_id"] is not None,
                at=int(r["created_at"]),
            )
            for r in await store.open_problems(self.db)
        ]

    async def fix_problem(self, problem_id: int, admin: int) -> bool:
        async with self.db.transaction() as conn:
            return await store.fix_problem(conn, problem_id, admin, self.now())

    # --- merchant staff -----------------------------------------------------------------

    async def merchant(self, reference: str) -> Place | None:
        """A merchant of the current set, by its name or its id."""
        stored = await store.by_name(self.db, "merchant", reference.strip())
        if stored is None and reference.strip().isdigit():
            by_id = await store.place(self.db, int(reference))
            stored = by_id if by_id is not None and by_id.kind == "merchant" else None
        return None if stored is None else Place.of(stored)

    async def add_staff(self, reference: str, telegram_id: int, admin: int) -> Place | None:
        found = await self.merchant(reference)
        if found is not None:
            await store.add_staff(self.db, telegram_id, found.name, admin, self.now())
        return found

    async def remove_staff(self, telegram_id: int) -> bool:
        return await store.remove_staff(self.db, telegram_id)

    async def staff_merchant(self, telegram_id: int) -> str | None:
        return await store.staff_merchant(self.db, telegram_id)

    async def staff_ids(self) -> list[int]:
        return await store.staff_ids(self.db)
