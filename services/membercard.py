"""The 联新卡: a card image with a QR deep link carrying a short-lived signed token.

Token (Telegram's start payload allows 64 characters of A-Za-z0-9_-): card number (4 bytes)
+ expiry (4 bytes, unix seconds) + the first 8 bytes of HMAC-SHA256 over both with
CARD_SECRET, base64url without padding: 22 characters. It is never an id alone: a forged or
altered token fails the HMAC, an old one its expiry.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import io
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Final

import segno
from PIL import Image, ImageDraw, ImageFont

from services import ledger
from services.clock import Now, utc_now
from settings import Settings
from storage import places as place_store
from storage.db import Database

TOKEN_MINUTES = 10
_MAC_BYTES = 8
_PACK = struct.Struct(">II")
CARD_SIZE = (1012, 638)  # ID-1 card proportions
# The CJK subset the project ships for its charts (services/fonts, SIL OFL), then fonts a
# machine may have with every character, for names the subset lacks.
BUNDLED_FONT = "NotoSansCJKsc-Subset.otf"
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
)
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def card_number(rider_id: int) -> str:
    return f"LX{rider_id:08d}"


def make_token(rider_id: int, expires_at: int, secret: str) -> str:
    payload = _PACK.pack(rider_id, expires_at)
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).decode().rstrip("=")


@dataclass(frozen=True)
class Checked:
    rider_id: int | None  # None: forged or unreadable
    expired: bool = False


def check_token(token: str, secret: str, now: int) -> Checked:
    """Whose card the token is, and whether it has expired; rider None if forged."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return Checked(None)
    if len(raw) != _PACK.size + _MAC_BYTES:
        return Checked(None)
    payload, mac = raw[: _PACK.size], raw[_PACK.size :]
    expected = hmac.new(secret.encode(), payload, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        return Checked(None)
    rider_id, expires_at = _PACK.unpack(payload)
    return Checked(rider_id, expired=expires_at <= now)


def cjk_font_path() -> str | None:
    """A font that can draw Chinese: a full one if the machine has it, else the bundled
    subset (which every install has)."""
    found = next((path for path in CJK_FONTS if Path(path).is_file()), None)
    bundled = Path(str(resources.files("services").joinpath("fonts", BUNDLED_FONT)))
    return found or (str(bundled) if bundled.is_file() else None)


def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if path is not None:
        return ImageFont.truetype(path, size)
    if Path(LATIN_FONT).is_file():
        return ImageFont.truetype(LATIN_FONT, size)
    return ImageFont.load_default(size)


@dataclass(frozen=True)
class CardFace:
    """What the card shows, already in the language the image is drawn in."""

    programme: str
    title: str
    name: str
    number: str
    validity: str
    link: str


def draw_card(face: CardFace, font_path: str | None) -> bytes:
    """The card as a PNG: programme, title, masked name, number, validity and the QR."""
    image = Image.new("RGB", CARD_SIZE, (178, 34, 34))
    draw = ImageDraw.Draw(image)
    width, height = CARD_SIZE
    draw.rectangle((0, height - 150, width, height), fill=(140, 20, 20))
    draw.text((48, 40), face.programme, font=_font(font_path, 36), fill=(255, 230, 180))
    draw.text((48, 100), face.title, font=_font(font_path, 64), fill="white")
    draw.text((48, 250), face.name, font=_font(font_path, 52), fill="white")
    draw.text((48, 330), face.number, font=_font(font_path, 40), fill=(255, 230, 180))
    draw.text((48, height - 110), face.validity, font=_font(font_path, 30), fill="white")
    qr = segno.make(face.link, error="m")
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=7, border=2)
    code = Image.open(buffer).convert("RGB")
    side = 340
    code = code.resize((side, side), Image.Resampling.NEAREST)
    image.paste(code, (width - side - 48, 48))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


# One thread draws every image the bot makes for a rider (cards, code QRs): never the event
# loop, and a crowd asking at once waits its turn instead of slowing everyone's answers.
_DRAWING: Final = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cards")
REUSE_SECONDS = 60  # /card again this soon shows the same card (its QR is valid 10 minutes)


async def draw_apart(face: CardFace, font_path: str | None) -> bytes:
    """`draw_card` on the drawing thread."""
    return await asyncio.get_running_loop().run_in_executor(_DRAWING, draw_card, face, font_path)


async def qr_apart(link: str) -> bytes:
    """`qr_png` on the drawing thread."""
    return await asyncio.get_running_loop().run_in_executor(_DRAWING, qr_png, link)


@dataclass(frozen=True)
class Drawn:
    """A card drawn for a rider, kept a minute so asking again costs nothing."""

    image: bytes
    masked_name: str
    number: str
    at: int


def qr_png(link: str) -> bytes:
    """A plain QR code (for a redemption code's deep link)."""
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="png", scale=8, border=3)
    return buffer.getvalue()


@dataclass(frozen=True)
class Scan:
    """What a merchant's staff member sees after scanning a card."""

    outcome: str  # valid | expired | forged | not_staff | unknown_rider
    masked_name: str = ""
    number: str = ""
    merchant: str = ""


class MemberCards:
    """Opening a rider's card and checking a scanned one."""

    def __init__(self, db: Database, settings: Settings, clock: Now = utc_now) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self._drawn: dict[int, Drawn] = {}

    def recent(self, telegram_id: int) -> Drawn | None:
        """The card drawn for this rider in the last `REUSE_SECONDS`, if any."""
        drawn = self._drawn.get(telegram_id)
        return drawn if drawn is not None and self.now() - drawn.at < REUSE_SECONDS else None

    def remember(self, telegram_id: int, image: bytes, masked_name: str, number: str) -> Drawn:
        now = self.now()
        for key in [k for k, d in self._drawn.items() if now - d.at >= REUSE_SECONDS]:
            del self._drawn[key]
        drawn = self._drawn[telegram_id] = Drawn(image, masked_name, number, now)
        return drawn

    def now(self) -> int:
        return int(self.clock().timestamp())

    @property
    def enabled(self) -> bool:
        return self.settings.card_secret is not None

    async def open(self, telegram_id: int, first_name: str) -> tuple[str, str, str, int] | None:
        """(masked name, card number, token, token expiry) for a consented rider."""
        secret = self.settings.card_secret
        rider_id = await place_store.consented_rider(self.db, telegram_id)
        if secret is None or rider_id is None:
            return None
        payee = await ledger.payee(self.db, rider_id)
        masked = ledger.mask_name(payee.real_name if payee else first_name or "?")
        now = self.now()
        await place_store.save_card_name(self.db, rider_id, masked, now)
        expires = now + TOKEN_MINUTES * 60
        return masked, card_number(rider_id), make_token(rider_id, expires, secret), expires

    async def scan(self, staff_id: int, token: str) -> Scan:
        merchant = await place_store.staff_merchant(self.db, staff_id)
        if merchant is None:
            return Scan("not_staff")
        if self.settings.card_secret is None:
            return Scan("forged")
        checked = check_token(token, self.settings.card_secret, self.now())
        if checked.rider_id is None:
            return Scan("forged")
        if checked.expired:
            return Scan("expired", number=card_number(checked.rider_id))
        name = await place_store.card_name(self.db, checked.rider_id)
        if name is None:
            return Scan("unknown_rider")
        return Scan("valid", name, card_number(checked.rider_id), merchant)
