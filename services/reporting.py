"""The rider's report, from the first photo to submission: a state machine kept in the database.

Every step is written as it happens, so a restart, a crash or hours of silence lose nothing:
the rider's next message continues from the stored step.

    photo ──► PHOTOS ──location──► CATEGORY ──button──► DESCRIPTION ──text/skip──► CONFIRM
              │  ▲ more photos (1..max)                     ▲                         │
              └──┘                                          └───── edit ──────────────┤
                                                                            submit ──┴──► pending

A photo may be added, and the location changed, at any step; `/cancel` discards the draft;
a draft untouched for `draft_expiry_hours` expires after one reminder.

Riders type what they saw first: a photo's caption, or text sent at any step but the
description step itself, is appended to the description (pieces joined by a newline, in
order). At the description step typed text replaces it, and skip keeps what is there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum

from services.clock import Now, utc_now
from services.geo import haversine_m, valid_coordinates
from services.outbox import Notice, Outbox
from services.photos import inspect_in_pool, is_stale
from services.refusal import Refused
from settings import Programme
from storage import reports as store
from storage.db import Connection, Database, Row

DESCRIPTION_JOINER = "\n"
EVIDENCE_MAX_SIDE = 1600  # what a moderator's phone shows; keeps the database small
REMINDER_BEFORE_EXPIRY = timedelta(hours=4)
PHOTO_WINDOW = timedelta(hours=1)  # of `photos_per_hour`
VOICE_MAX_SECONDS = 120  # a voice note longer than this is refused: say it in two
VOICE_MAX_BYTES = 2 * 1024 * 1024  # Telegram's Opus voice is ~16 kbit/s: 2 minutes is ~250 KB
VOICES_PER_REPORT = 3
VENUE_MAX_CHARS = 120  # a shared venue's name, as the rider's phone gave it


class ReportStatus(StrEnum):
    """A report's life (see `REPORT_TRANSITIONS`); `status.<value>` names each in locales."""

    DRAFT = "draft"
    EXPIRED = "expired"  # a draft left untouched
    PENDING = "pending"
    NEEDS_INFO = "needs_info"
    APPROVED = "approved"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    REVERSED = "reversed"
    WITHDRAWN = "withdrawn"  # pending when its rider used /delete


class ReportAction(StrEnum):
    """What moves a report on; `decisions.action` records the moderators' and riders' ones."""

    SUBMIT = "submit"
    EXPIRE = "expire"  # the clock: a draft left untouched
    APPROVE = "approve"
    PROPOSE = "propose"  # an approval at or above the second-confirmation amount, first half
    CONFIRM = "confirm"  # the second half: a different moderator confirms the proposal
    REJECT = "reject"
    DUPLICATE = "duplicate"
    ASK = "ask"
    ANSWER = "answer"
    RETURN = "return"  # the clock: a question left unanswered, back to the moderators
    WITHDRAW = "withdraw"  # the rider used /delete while it waited
    REVERSE = "reverse"


class ReportRole(StrEnum):
    """Who acts on a report. Admins are moderators too; the rider is the report's own."""

    RIDER = "rider"
    MODERATOR = "moderator"
    ADMIN = "admin"
    CLOCK = "clock"


_S, _A, _R = ReportStatus, ReportAction, ReportRole
REPORT_TRANSITIONS: dict[tuple[ReportStatus, ReportAction, ReportRole], ReportStatus] = {
    (_S.DRAFT, _A.SUBMIT, _R.RIDER): _S.PENDING,
    (_S.DRAFT, _A.EXPIRE, _R.CLOCK): _S.EXPIRED,
    (_S.PENDING, _A.APPROVE, _R.MODERATOR): _S.APPROVED,
    (_S.PENDING, _A.PROPOSE, _R.MODERATOR): _S.PENDING,
    (_S.PENDING, _A.CONFIRM, _R.MODERATOR): _S.APPROVED,
    (_S.PENDING, _A.REJECT, _R.MODERATOR): _S.REJECTED,
    (_S.PENDING, _A.DUPLICATE, _R.MODERATOR): _S.DUPLICATE,
    (_S.PENDING, _A.ASK, _R.MODERATOR): _S.NEEDS_INFO,
    (_S.PENDING, _A.WITHDRAW, _R.RIDER): _S.WITHDRAWN,
    (_S.NEEDS_INFO, _A.ANSWER, _R.RIDER): _S.PENDING,
    (_S.NEEDS_INFO, _A.RETURN, _R.CLOCK): _S.PENDING,
    (_S.NEEDS_INFO, _A.WITHDRAW, _R.RIDER): _S.WITHDRAWN,
    (_S.APPROVED, _A.REVERSE, _R.ADMIN): _S.REVERSED,
}
"""The whole truth of a report's life: (status, action, who) -> next status.

    draft ──submit (rider)──► pending ──approve, confirm (moderator)──► approved
      │                        │  ▲                                      │
      │                        └──┘ propose (moderator)                  └─reverse (admin)► reversed
      └─expire (clock)─► expired
    pending ──reject (moderator)──► rejected      pending ──duplicate (moderator)──► duplicate
    pending ──ask (moderator)──► needs_info ──answer (rider), return (clock)──► pending
    pending, needs_info ──withdraw (the rider's /delete)──► withdrawn

Every move is one guarded `UPDATE ... WHERE id = ? AND status = ?` (`storage.db.guarded_update`)
in a write transaction: the changed-row count decides who won.
"""
OPEN = frozenset({_S.PENDING, _S.NEEDS_INFO})
"""Submitted and waiting: for a moderator's decision or for the rider's answer."""
DECIDED = frozenset({_S.APPROVED, _S.REJECTED, _S.DUPLICATE, _S.REVERSED})
"""A moderator decided it (a reversed report keeps its decision)."""
FINISHED = DECIDED | {_S.WITHDRAWN}
"""Submitted and nothing more to decide: the photos' retention clock runs."""
CLOSED = frozenset({_S.REJECTED, _S.DUPLICATE, _S.REVERSED, _S.EXPIRED, _S.WITHDRAWN})
"""Ended without a reward that stands: nothing more happens to it."""
REWARDED = frozenset({_S.APPROVED, _S.REVERSED})
"""A reward was credited (and, when reversed, taken back)."""
LISTED = (
    _S.PENDING,
    _S.NEEDS_INFO,
    _S.APPROVED,
    _S.REJECTED,
    _S.DUPLICATE,
    _S.REVERSED,
    _S.EXPIRED,
    _S.WITHDRAWN,
)
"""Every status a submitted report or an expired draft can have, in the order /stats lists
them."""


def next_status(
    status: str, action: ReportAction, roles: Iterable[ReportRole]
) -> ReportStatus | None:
    """Where `action` by someone with `roles` takes a report in `status` (None: not allowed)."""
    known = ReportStatus(status) if status in set(ReportStatus) else None
    for role in roles:
        found = None if known is None else REPORT_TRANSITIONS.get((known, action, role))
        if found is not None:
            return found
    return None


class Step(StrEnum):
    PHOTOS = "photos"  # collecting photos; the location moves it on
    CATEGORY = "category"
    DESCRIPTION = "description"
    CONFIRM = "confirm"


class ReportRefusal(StrEnum):
    """Why the workflow said no; each has a message in locales/ (`report.refused.<value>`)."""

    NOT_CONSENTED = "not_consented"
    NO_DRAFT = "no_draft"
    DAILY_CAP = "daily_cap"
    TOO_MANY_PHOTOS = "too_many_photos"
    PHOTO_REUSED = "photo_reused"  # in one of the rider's own reports (named)
    PHOTO_REUSED_ELSEWHERE = "photo_reused_elsewhere"  # another rider's: no reference shown
    PHOTO_ALREADY_IN_DRAFT = "photo_already_in_draft"
    HOURLY_PHOTO_CAP = "hourly_photo_cap"
    OUTSIDE_AREA = "outside_area"
    BAD_LOCATION = "bad_location"
    NO_PHOTO_LOCATION = "no_photo_location"
    UNKNOWN_CATEGORY = "unknown_category"
    DESCRIPTION_TOO_LONG = "description_too_long"
    NOT_READY = "not_ready"
    STALE_BUTTON = "stale_button"
    VOICE_FIRST = "voice_first"  # a voice note with no report to go with: a photo first
    VOICE_TOO_LONG = "voice_too_long"
    TOO_MANY_VOICES = "too_many_voices"


@dataclass(frozen=True)
class Draft:
    """A rider's report in progress, as stored."""

    id: int
    rider_id: int
    step: Step
    photo_count: int
    photo_gps: tuple[float, float] | None  # the first EXIF position among the photos
    location: tuple[float, float] | None
    photo_distance_m: float | None
    category: str | None
    description: str | None
    venue: str | None = None  # the place named by a shared venue
    voices: tuple[int, ...] = ()  # the seconds of each voice note, in order


@dataclass(frozen=True)
class Submitted:
    reference: str
    report_id: int
    already: bool = False  # a repeated press of Submit: nothing new happened


def _after_category(draft: Draft) -> Step:
    """A description written already (a caption, words typed early) is not asked for again:
    the confirm screen shows it, with its button to change it."""
    return Step.CONFIRM if draft.description else Step.DESCRIPTION


def _ts(moment: datetime) -> int:
    return int(moment.timestamp())


def _reused(used: Row, rider_id: int | None) -> Refused[ReportRefusal]:
    """A photo already in a report: the rider's own report is named, another rider's is not."""
    if used["rider_id"] != rider_id:
        return Refused(ReportRefusal.PHOTO_REUSED_ELSEWHERE)
    return Refused(ReportRefusal.PHOTO_REUSED, reference=used["reference"])


class Reporting:
    """The rider-facing workflow. Every method takes the rider's Telegram id."""

    def __init__(
        self,
        db: Database,
        programme: Programme,
        zone: tzinfo,
        outbox: Outbox,
        clock: Now = utc_now,
    ) -> None:
        self.db = db
        self.programme = programme
        self.zone = zone
        self.outbox = outbox
        self.clock = clock

    # --- riders -------------------------------------------------------------------------

    async def has_consented(self, telegram_id: int) -> bool:
        row = await store.rider_by_telegram_id(self.db, telegram_id)
        return row is not None and row["consented_at"] is not None

    async def consent(self, telegram_id: int, language: str) -> None:
        """Record the agreement, and the language to send the rider's news in."""
        async with self.db.transaction() as conn:
            await store.record_consent(conn, telegram_id, language, _ts(self.clock()))

    async def status_counts(self, telegram_id: int) -> dict[str, int]:
        row = await store.rider_by_telegram_id(self.db, telegram_id)
        return {} if row is None else await store.status_counts(self.db, row["id"])

    async def erase(self, telegram_id: int) -> bool:
        """Erase the rider's personal data and photos (money records stay, pseudonymised)."""
        async with self.db.transaction() as conn:
            erased = await store.erase_rider(conn, telegram_id, _ts(self.clock()), sorted(OPEN))
        if erased:
            await store.checkpoint(self.db)  # secure_delete zeroes the pages; empty the WAL too
        return erased

    async def my_reports(self, telegram_id: int, limit: int = 10) -> list[Row]:
        row = await store.rider_by_telegram_id(self.db, telegram_id)
        return [] if row is None else list(await store.latest_reports(self.db, row["id"], limit))

    # --- the draft ----------------------------------------------------------------------

    async def draft(self, telegram_id: int) -> Draft | None:
        row = await store.rider_by_telegram_id(self.db, telegram_id)
        if row is None:
            return None
        async with self.db.transaction() as conn:
            return await self._load(conn, row["id"])

    def location_mismatch(self, draft: Draft) -> bool:
        """Whether the shared location is too far from where the photo says it was taken."""
        limit = self.programme.reports.location_mismatch_m
        return draft.photo_distance_m is not None and draft.photo_distance_m > limit

    async def _rider_id(self, conn: Connection, telegram_id: int) -> int | None:
        return await store.consented_rider_id(conn, telegram_id)

    async def _load(self, conn: Connection, rider_id: int) -> Draft | None:
        row = await store.draft_of(conn, rider_id)
        if row is None:
            return None
        photos = await store.photos_of(conn, row["id"])
        gps = next(
            (
                (p.gps_latitude, p.gps_longitude)
                for p in photos
                if p.gps_latitude is not None and p.gps_longitude is not None
            ),
            None,
        )
        location = (row["latitude"], row["longitude"]) if row["latitude"] is not None else None
        return Draft(
            id=row["id"],
            rider_id=rider_id,
            step=Step(row["step"]),
            photo_count=len(photos),
            photo_gps=gps,
            location=location,
            photo_distance_m=row["photo_distance_m"],
            category=row["category"],
            description=row["description"],
            venue=row["venue_name"],
            voices=tuple(seconds for _, seconds in await store.voices_of(conn, row["id"])),
        )

    async def check_photo_allowed(
        self, telegram_id: int, file_unique_id: str
    ) -> Refused[ReportRefusal] | None:
        """Cheap checks before downloading a photo: consent, the daily cap, reuse, the count.

        Last, the hourly photo limit: a photo that passes counts against it from now on.
        """
        async with self.db.transaction() as conn:
            rider_id = await self._rider_id(conn, telegram_id)
            if rider_id is None:
                return Refused(ReportRefusal.NOT_CONSENTED)
            draft = await self._load(conn, rider_id)
            refusal = await self._photo_refusal(conn, rider_id, draft, file_unique_id, None)
            return refusal or await self._take_photo_slot(conn, rider_id)

    async def take_photo_slot(self, telegram_id: int) -> Refused[ReportRefusal] | None:
        """Count a photo against the rider's hourly limit before downloading it, or refuse it."""
        async with self.db.transaction() as conn:
            rider_id = await self._rider_id(conn, telegram_id)
            if rider_id is None:
                return Refused(ReportRefusal.NOT_CONSENTED)
            return await self._take_photo_slot(conn, rider_id)

    async def _take_photo_slot(
        self, conn: Connection, rider_id: int
    ) -> Refused[ReportRefusal] | None:
        """Photos cost memory and CPU to check: `photos_per_hour` across all drafts."""
        now = self.clock()
        limit = self.programme.reports.photos_per_hour
        if await store.take_photo_slot(conn, rider_id, _ts(now), _ts(now - PHOTO_WINDOW), limit):
            return None
        return Refused(ReportRefusal.HOURLY_PHOTO_CAP, limit=limit)

    async def _photo_refusal(
        self,
        conn: Connection,
        rider_id: int,
        draft: Draft | None,
        file_unique_id: str,
        sha256: str | None,
    ) -> Refused[ReportRefusal] | None:
        if draft is None:
            cap = self.programme.reports.daily_cap
            if await store.submitted_since(conn, rider_id, self._start_of_day()) >= cap:
                return Refused(ReportRefusal.DAILY_CAP, limit=cap)
        elif draft.photo_count >= self.programme.reports.max_photos:
            return Refused(ReportRefusal.TOO_MANY_PHOTOS, limit=self.programme.reports.max_photos)
        used = await store.report_using_photo(
            conn, draft.id if draft else None, file_unique_id, sha256
        )
        if used is None:
            return None
        if draft is not None and used["id"] == draft.id:
            return Refused(ReportRefusal.PHOTO_ALREADY_IN_DRAFT)
        return _reused(used, rider_id)

    async def add_photo(
        self, telegram_id: int, file_unique_id: str, data: bytes
    ) -> Draft | Refused[ReportRefusal]:
        """Check, clean and store a photo, starting a draft if there is none.

        Raises `PhotoRejected` for bytes that are not a safe image of an allowed format.
        """
        now = self.clock()
        photo = await self._evidence(file_unique_id, data)
        async with self.db.transaction() as conn:
            rider_id = await self._rider_id(conn, telegram_id)
            if rider_id is None:
                return Refused(ReportRefusal.NOT_CONSENTED)
            draft = await self._load(conn, rider_id)
            refusal = await self._photo_refusal(conn, rider_id, draft, file_unique_id, photo.sha256)
            if refusal is not None:
                return refusal
            if draft is None:
                draft_id = await store.create_draft(conn, rider_id, _ts(now))
                position = 1
            else:
                draft_id, position = draft.id, draft.photo_count + 1
                await store.update_draft(conn, draft_id, _ts(now))
            await store.add_photo(conn, draft_id, position, photo, _ts(now))
            loaded = await self._load(conn, rider_id)
            assert loaded is not None
            if loaded.location and loaded.photo_gps and loaded.photo_distance_m is None:
                # The location came first; measure it against this photo's position now.
                distance = haversine_m(*loaded.location, *loaded.photo_gps)
                await store.update_draft(conn, draft_id, _ts(now), photo_distance_m=distance)
                loaded = await self._load(conn, rider_id)
                assert loaded is not None
            return loaded

    async def add_voice(
        self,
        telegram_id: int,
        report_id: int | None,
        file_id: str,
        unique_id: str,
        seconds: int,
        size: int,
    ) -> Refused[ReportRefusal] | None:
        """A voice note for the rider's draft (`report_id` None), or for the submitted report
        a moderator asked about; the same note twice is kept once."""
        if seconds > VOICE_MAX_SECONDS or size > VOICE_MAX_BYTES:
            return Refused(ReportRefusal.VOICE_TOO_LONG, limit=VOICE_MAX_SECONDS)
        async with self.db.transaction() as conn:
            if report_id is None:
                rider_id = await self._rider_id(conn, telegram_id)
                draft = None if rider_id is None else await self._load(conn, rider_id)
                if draft is None:
                    return Refused(ReportRefusal.VOICE_FIRST)
                report_id = draft.id
            if len(await store.voices_of(conn, report_id)) >= VOICES_PER_REPORT:
                return Refused(ReportRefusal.TOO_MANY_VOICES, limit=VOICES_PER_REPORT)
            now = _ts(self.clock())
            await store.add_voice(conn, report_id, file_id, unique_id, seconds, size, now)
        return None

    async def attach_photo(
        self, report_id: int, file_unique_id: str, data: bytes
    ) -> Refused[ReportRefusal] | None:
        """Add a photo to a submitted report (a rider's answer to a moderator's question).

        Raises `PhotoRejected` for bytes that are not a safe image of an allowed format.
        """
        photo = await self._evidence(file_unique_id, data)
        async with self.db.transaction() as conn:
            used = await store.report_using_photo(conn, report_id, file_unique_id, photo.sha256)
            if used is not None:
                return _reused(used, await store.rider_of_report(conn, report_id))
            count = len(await store.photos_of(conn, report_id))
            await store.add_photo(conn, report_id, count + 1, photo, _ts(self.clock()))
        return None

    async def _evidence(self, file_unique_id: str, data: bytes) -> store.NewPhoto:
        """Decode, check and clean a photo in the photos pool."""
        evidence = await inspect_in_pool(
            data,
            local_tz=self.zone,
            max_pixels=self.programme.reports.photo_max_pixels,
            max_side=EVIDENCE_MAX_SIDE,
            decode_budget=self.programme.reports.photo_decode_mb * 1024 * 1024,
        )
        stale = is_stale(
            evidence.taken_at,
            self.clock(),
            timedelta(hours=self.programme.reports.photo_fresh_hours),
        )
        return store.NewPhoto(
            file_unique_id=file_unique_id,
            sha256=evidence.sha256,
            phash=evidence.phash - (1 << 64) if evidence.phash >= 1 << 63 else evidence.phash,
            evidence=evidence.jpeg,
            taken_at=_ts(evidence.taken_at) if evidence.taken_at else None,
            gps=evidence.gps,
            not_fresh=stale,
        )

    async def set_location(
        self,
        telegram_id: int,
        latitude: float,
        longitude: float,
        source: str,
        venue: str | None = None,
    ) -> Draft | Refused[ReportRefusal]:
        """Record where the hazard is (and the town and grid it falls in, and the name of a
        shared venue); moves a draft collecting photos on to the category."""
        if not valid_coordinates(latitude, longitude):
            return Refused(ReportRefusal.BAD_LOCATION)
        if not self.programme.service_area.contains(latitude, longitude):
            return Refused(ReportRefusal.OUTSIDE_AREA)
        now = _ts(self.clock())
        async with self.db.transaction() as conn:
            rider_id = await self._rider_id(conn, telegram_id)
            if rider_id is None:
                return Refused(ReportRefusal.NOT_CONSENTED)
            draft = await self._load(conn, rider_id)
            if draft is None:
                return Refused(ReportRefusal.NO_DRAFT)
            distance = (
                haversine_m(latitude, longitude, *draft.photo_gps) if draft.photo_gps else None
            )
            zone = self.programme.towns.locate(latitude, longitude)
            await store.update_draft(
                conn,
                draft.id,
                now,
                latitude=latitude,
                longitude=longitude,
                town=zone.town,
                grid=zone.grid,
                venue_name=(venue or "").strip()[:VENUE_MAX_CHARS] or None,
                location_source=source,
                photo_distance_m=distance,
                step=Step.CATEGORY if draft.step == Step.PHOTOS else draft.step,
            )
            loaded = await self._load(conn, rider_id)
            assert loaded is not None
            return loaded

    async def use_photo_location(
        self, telegram_id: int, draft_id: int
    ) -> Draft | Refused[ReportRefusal]:
        """The one-tap location: the position in the photo's EXIF."""
        draft = await self.draft(telegram_id)
        if draft is None or draft.id != draft_id:
            return Refused(ReportRefusal.STALE_BUTTON)
        if draft.photo_gps is None:
            return Refused(ReportRefusal.NO_PHOTO_LOCATION)
        return await self.set_location(telegram_id, *draft.photo_gps, source="photo")

    async def set_category(
        self, telegram_id: int, draft_id: int, key: str
    ) -> Draft | Refused[ReportRefusal]:
        if self.programme.category(key) is None:
            return Refused(ReportRefusal.UNKNOWN_CATEGORY)
        return await self._advance(
            telegram_id,
            draft_id,
            (Step.CATEGORY, Step.DESCRIPTION, Step.CONFIRM),
            category=key,
            step=_after_category,
        )

    async def set_description(
        self, telegram_id: int, draft_id: int | None, text: str | None
    ) -> Draft | Refused[ReportRefusal]:
        """Replace the description with `text`, or keep it (None: skip or keep); move on."""
        if text is None:
            return await self._advance(
                telegram_id, draft_id, (Step.DESCRIPTION,), step=Step.CONFIRM
            )
        if len(text) > self.programme.reports.description_max_chars:
            return self._too_long()
        return await self._advance(
            telegram_id, draft_id, (Step.DESCRIPTION,), description=text, step=Step.CONFIRM
        )

    async def add_to_description(
        self, telegram_id: int, text: str
    ) -> Draft | Refused[ReportRefusal]:
        """Append the rider's words (a caption, text sent early) to the draft's description.

        The limit applies to the joined text: a piece that would exceed it is refused and the
        stored description stays. A piece already in the description (an update delivered
        twice) changes nothing.
        """
        piece = text.strip()
        async with self.db.transaction() as conn:
            rider_id = await self._rider_id(conn, telegram_id)
            if rider_id is None:
                return Refused(ReportRefusal.NOT_CONSENTED)
            draft = await self._load(conn, rider_id)
            if draft is None:
                return Refused(ReportRefusal.NO_DRAFT)
            if not piece or (draft.description and piece in draft.description):
                return draft
            joined = DESCRIPTION_JOINER.join(filter(None, (draft.description, piece)))
            if len(joined) > self.programme.reports.description_max_chars:
                return self._too_long()
            await store.update_draft(conn, draft.id, _ts(self.clock()), description=joined)
            loaded = await self._load(conn, rider_id)
            assert loaded is not None
            return loaded

    async def edit_description(
        self, telegram_id: int, draft_id: int
    ) -> Draft | Refused[ReportRefusal]:
        """From the summary back to the description step, where typing replaces it."""
        return await self._advance(telegram_id, draft_id, (Step.CONFIRM,), step=Step.DESCRIPTION)

    def _too_long(self) -> Refused[ReportRefusal]:
        return Refused(
            ReportRefusal.DESCRIPTION_TOO_LONG, limit=self.programme.reports.description_max_chars
        )

    async def _advance(
        self,
        telegram_id: int,
        draft_id: int | None,
        allowed: tuple[Step, ...],
        **fields: object,
    ) -> Draft | Refused[ReportRefusal]:
        async with self.db.transaction() as conn:
            rider_id = await self._rider_id(conn, telegram_id)
            if rider_id is None:
                return Refused(ReportRefusal.NOT_CONSENTED)
            draft = await self._load(conn, rider_id)
            if draft is None or (draft_id is not None and draft.id != draft_id):
                return Refused(ReportRefusal.STALE_BUTTON)
            if draft.step not in allowed:
                return Refused(ReportRefusal.STALE_BUTTON)
            step = fields.pop("step")
            if callable(step):
                step = step(draft)
            # Changing the category later keeps the rider where they were.
            next_step = step if draft.step == allowed[0] else draft.step
            await store.update_draft(conn, draft.id, _ts(self.clock()), step=next_step, **fields)
            loaded = await self._load(conn, rider_id)
            assert loaded is not None
            return loaded

    async def submit(self, telegram_id: int, draft_id: int) -> Submitted | Refused[ReportRefusal]:
        """Give the draft its reference and make it pending for the moderators."""
        now = self.clock()
        async with self.db.transaction() as conn:
            rider_id = await self._rider_id(conn, telegram_id)
            if rider_id is None:
                return Refused(ReportRefusal.NOT_CONSENTED)
            draft = await self._load(conn, rider_id)
            if draft is None or draft.id != draft_id:
                done = await store.reference_of(conn, draft_id, rider_id)
                if done is not None:
                    return Submitted(done, draft_id, already=True)
                return Refused(ReportRefusal.STALE_BUTTON)
            if draft.step != Step.CONFIRM or draft.location is None or not draft.photo_count:
                return Refused(ReportRefusal.NOT_READY)
            cap = self.programme.reports.daily_cap
            if await store.submitted_since(conn, rider_id, self._start_of_day()) >= cap:
                return Refused(ReportRefusal.DAILY_CAP, limit=cap)
            prefix = f"R-{now.astimezone(self.zone):%Y%m%d}-"
            deadline = now + timedelta(hours=self.programme.review.deadline_hours)
            reference = await store.submit(conn, draft.id, prefix, _ts(now), _ts(deadline))
            assert reference is not None
            return Submitted(reference, draft.id)

    async def cancel(self, telegram_id: int) -> bool:
        async with self.db.transaction() as conn:
            rider_id = await self._rider_id(conn, telegram_id)
            return rider_id is not None and await store.delete_draft(conn, rider_id)

    # --- expiry -------------------------------------------------------------------------

    async def sweep_drafts(self) -> tuple[int, int]:
        """Remind riders of drafts close to expiry (once) and expire the untouched ones; the
        riders' notices are queued with the change. Returns (reminded, expired)."""
        now = self.clock()
        expiry = timedelta(hours=self.programme.reports.draft_expiry_hours)
        reminder_before = min(REMINDER_BEFORE_EXPIRY, expiry / 2)
        hours = int(reminder_before.total_seconds() // 3600)
        async with self.db.transaction() as conn:
            expired = await store.expire_drafts(conn, _ts(now - expiry), _ts(now))
            to_remind = await store.drafts_to_remind(conn, _ts(now - expiry + reminder_before))
            await store.mark_reminded(conn, [row["id"] for row in to_remind], _ts(now))
            notices = [
                Notice(row["telegram_id"], "draft.reminder", {"hours": hours})
                for row in to_remind
                if row["telegram_id"] is not None
            ] + [
                Notice(
                    row["telegram_id"],
                    "draft.expired",
                    {"hours": self.programme.reports.draft_expiry_hours},
                )
                for row in expired
                if row["telegram_id"] is not None
            ]
            await self.outbox.queue(conn, notices)
        return len(to_remind), len(expired)

    def _start_of_day(self) -> int:
        local = self.clock().astimezone(self.zone)
        return _ts(local.replace(hour=0, minute=0, second=0, microsecond=0))
