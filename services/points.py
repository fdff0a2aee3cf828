"""Points that buy something: redemption codes at friendly merchants.

A rider picks an item they can afford; the bot issues a one-time code (8 characters from an
alphabet without look-alikes) valid for 15 minutes, whose points are held until it is used,
cancelled or expires. A merchant's staff member spends it: in ONE write transaction, the
guarded UPDATE marks the code used (issued, unexpired, this merchant) and the `redeem:<code>`
ledger entry takes the points; the changed-row count decides, so two staff pressing at once
redeem it exactly once, and the database refuses an entry taking points below zero.
"""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from services import spreadsheet
from services.clock import Now, utc_now
from services.membercard import card_number
from services.outbox import Notice, Outbox
from settings import Settings
from storage import places as place_store
from storage import points as store
from storage.db import Database
from storage.points import Code

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L
CODE_LENGTH = 8
CODE_MINUTES = 15


class NotEnoughPoints(Exception):
    """Raised inside the redemption's transaction to roll it back."""


@dataclass(frozen=True)
class Issued:
    code: str
    merchant: str
    item: str
    points: int
    expires_at: int


@dataclass(frozen=True)
class Redeemed:
    code: Code
    rider_telegram_id: int | None


def normalise_code(text: str) -> str:
    """What a person typed, as a code: upper case, look-alikes read as the letter meant."""
    return text.strip().upper().replace("-", "").replace(" ", "")


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def looks_like_code(text: str) -> bool:
    return len(text) == CODE_LENGTH and all(char in ALPHABET for char in text)


class Points:
    """Spending points; riders and staff named by their Telegram id."""

    def __init__(
        self, db: Database, settings: Settings, outbox: Outbox, clock: Now = utc_now
    ) -> None:
        self.db = db
        self.settings = settings
        self.outbox = outbox
        self.clock = clock

    def now(self) -> int:
        return int(self.clock().timestamp())

    def _day_start(self) -> int:
        local: datetime = self.clock().astimezone(self.settings.timezone)
        return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())

    async def spendable(self, telegram_id: int) -> tuple[int, int] | None:
        """(spendable points, points held by live codes) of a consented rider."""
        rider_id = await place_store.consented_rider(self.db, telegram_id)
        if rider_id is None:
            return None
        async with self.db.transaction() as conn:
            total = await store.ledger_points(conn, rider_id)
            held = await store.reserved_points(conn, rider_id, self.now())
        return max(total - held, 0), held

    async def issue(
        self, telegram_id: int, merchant: str, item: str, points: int, press: str | None = None
    ) -> Issued | str:
        """A code for `item` at `merchant` (its price re-checked by the caller's lookup);
        a problem key when it cannot be issued. `press` names the button press that asked:
        the same press handled again (an update replayed after a kill) gets the same code."""
        rider_id = await place_store.consented_rider(self.db, telegram_id)
        if rider_id is None:
            return "not_rider"
        now = self.now()
        expires = now + CODE_MINUTES * 60
        async with self.db.transaction() as conn:
            earlier = None if press is None else await store.code_for_press(conn, press)
            if earlier is not None:
                return Issued(
                    earlier.code, earlier.merchant_name, earlier.item, earlier.points,
                    earlier.expires_at,
                )  # fmt: skip
            if (
                await store.codes_since(conn, rider_id, self._day_start())
                >= self.settings.programme.points.codes_per_rider_per_day
            ):
                return "daily_limit"
            total = await store.ledger_points(conn, rider_id)
            held = await store.reserved_points(conn, rider_id, now)
            if total - held < points:
                return "not_enough"
            for _ in range(5):
                code = new_code()
                if await store.insert_code(
                    conn,
                    code=code,
                    rider_id=rider_id,
                    merchant=merchant,
                    item=item,
                    points=points,
                    now=now,
                    expires_at=expires,
                    press=press,
                ):
                    return Issued(code, merchant, item, points, expires)
        return "busy"

    async def cancel(self, telegram_id: int, code: str) -> bool:
        rider_id = await place_store.consented_rider(self.db, telegram_id)
        return rider_id is not None and await store.cancel(self.db, code, rider_id)

    async def look(self, staff_id: int, code: str) -> Code | str:
        """What a staff member's scan or /redeem shows before they confirm; or a problem key."""
        merchant = await place_store.staff_merchant(self.db, staff_id)
        if merchant is None:
            return "not_staff"
        found = await store.code(self.db, code)
        if found is not None and await store.owner_telegram_id(self.db, code) == staff_id:
            return "own_code"
        return self._problem(found, merchant) or found  # type: ignore[return-value]

    def _problem(self, found: Code | None, merchant: str) -> str | None:
        if found is None:
            return "unknown"
        if found.merchant_name != merchant:
            return "other_merchant"
        if found.status == "used":
            return "used"
        if found.status == "cancelled":
            return "cancelled"
        if found.expires_at <= self.now():
            return "expired"
        return None

    async def redeem(self, staff_id: int, code: str) -> Redeemed | str:
        """Spend the code: one transaction, one guarded UPDATE, one ledger entry."""
        merchant = await place_store.staff_merchant(self.db, staff_id)
        if merchant is None:
            return "not_staff"
        if await store.owner_telegram_id(self.db, code) == staff_id:
            return "own_code"  # a code's owner never changes: checked before the transaction
        now = self.now()
        try:
            async with self.db.transaction() as conn:
                if (
                    await store.redemptions_since(conn, merchant, now - 3600)
                    >= self.settings.programme.points.redemptions_per_merchant_per_hour
                ):
                    return "hourly_limit"
                if not await store.mark_used(conn, code, merchant, staff_id, now):
                    found = await store.code_in(conn, code)
                    return self._problem(found, merchant) or "unknown"
                found = await store.code_in(conn, code)
                assert found is not None
                if await store.ledger_points(conn, found.rider_id) < found.points:
                    raise NotEnoughPoints
                await store.insert_redemption(
                    conn,
                    rider_id=found.rider_id,
                    points=found.points,
                    code=code,
                    memo=f"{found.merchant_name}: {found.item}",
                    now=now,
                )
                rider = await store.telegram_id_of(conn, found.rider_id)
                if rider is not None:
                    await self.outbox.queue(
                        conn,
                        [
                            Notice(
                                rider,
                                "points.redeemed_rider",
                                {
                                    "item": found.item,
                                    "merchant": found.merchant_name,
                                    "points": found.points,
                                },
                                once_key=f"redeemed:{code}",
                            )
                        ],
                    )
                return Redeemed(found, rider)
        except NotEnoughPoints:
            return "not_enough"

    async def statement(self, month: str) -> list[Code] | None:
        """Every redemption used in `month` (YYYY-MM, programme time zone); None if bad."""
        try:
            start = datetime.strptime(month, "%Y-%m").replace(tzinfo=self.settings.timezone)
        except ValueError:
            return None
        end = (start + timedelta(days=32)).replace(day=1)
        return await store.used_between(self.db, int(start.timestamp()), int(end.timestamp()))


def statement_xlsx(merchant: str, month: str, codes: list[Code], zone: tzinfo) -> bytes:
    """A merchant's month-end statement: one line per code redeemed, and the total."""
    out = io.BytesIO()
    book = spreadsheet.workbook(out)
    sheet = book.add_worksheet(month)
    bold = book.add_format({"bold": True})
    sheet.write_row(0, 0, [merchant, month], bold)
    sheet.write_row(1, 0, ["code", "used at", "item", "points", "card", "staff id"], bold)
    for row, code in enumerate(codes, start=2):
        used = datetime.fromtimestamp(code.used_at or 0, UTC).astimezone(zone)
        sheet.write_row(
            row,
            0,
            [
                code.code,
                f"{used:%Y-%m-%d %H:%M}",
                code.item,
                code.points,
                card_number(code.rider_id),
                code.used_by or 0,
            ],
        )
    total = len(codes) + 2
    sheet.write_row(total, 0, ["total", "", "", sum(c.points for c in codes)], bold)
    sheet.set_column(0, 5, 16)
    book.close()
    return out.getvalue()
