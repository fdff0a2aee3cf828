"""N complete photo reports through a real `python bot.py`: what does one report cost the bot?

The stand-in (tests/fakegram) runs in this process, the bot as a real `python bot.py` child
process with its own SQLite file and a config.toml setting `[reports] daily_cap = 100000`, so
the per-rider cap never interferes. Before anything is measured, N distinct 1280x960 JPEGs of
roughly 150-300 KB are generated (shapes over a gradient, with sensor-like noise, so each has
different bytes and a realistic size); two in three go as a Telegram "photo" (no EXIF, as
Telegram strips it) followed by a shared location, one in three as an image-file "document"
carrying EXIF capture time and GPS, answered with the bot's one-tap "use the photo's location"
button. Then R riders (default 50) agree to the privacy notice, and only after that the
measured window opens: all riders at once, each doing its share of the N reports one after
another (photo -> location -> category -> description or Skip -> Submit -> reference).

The stand-in's flood caps are OFF for this benchmark: it never answers 429, so we measure the
bot's own cost, not Telegram's pace. The bot's own rate limiter still spaces its sends at
Telegram's 30 messages a second, which bounds the wall time (about 6-7 sends per report).

Printed: reports completed, wall seconds, CPU milliseconds of the bot process per completed
report (from /proc/<pid>/stat over the reporting window only; this covers the photo download,
decode, re-encode, hashing, the database writes and every message), its peak memory (VmHWM),
the database size at the end, and a check that every report got its reference: distinct
references seen in the riders' chats and rows with status 'pending' in the database (read
after the bot has stopped), both compared with N. Figures only, timings are never asserted;
the exit code is 1 only if reports were lost.

Then Submit -> card latency: a second bot, on a fresh database and with MODERATOR_CHAT_ID
set, gets CARD_SAMPLES of the same reports from one rider each, one at a time, spaced so that
the bot's own pacing of the moderators' group (20 messages a minute) never delays a card;
printed: median and 95th percentile seconds from the Submit press to the card's sendPhoto
reaching the stand-in, and the bot's CPU for a whole report with its card (photo to card),
in echo updates. (In the first run cards would queue behind that pacing, and the
latency would measure the queue, so there MODERATOR_CHAT_ID stays unset.)

With --engine postgresql each bot's database is a fresh one on a throwaway PostgreSQL server
the bench starts and stops itself (bench/engines.py); the default is a SQLite file.

With --webhook the bot runs in webhook mode instead of long polling (WEBHOOK_URL,
WEBHOOK_LISTEN, WEBHOOK_SECRET): every update a rider sends is POSTed to the bot's webhook
server with the secret header, as Telegram does (see bench/delivery.py), and the POSTs' answers
are counted. The bot's CPU then includes serving those POSTs instead of long polls.

With --hostile it measures the photo pipeline's memory instead: 5 riders agree,
then all at once send 20 crafted pictures as files, 4 each, small on the wire and large in
pixels: 7000x7000 PNGs and WebPs, PNGs and WebPs at their own (lower) pixel limits, a GIF
(labelled image/png, so it is not refused by its MIME type), a TIFF and a BMP of 7000x7000,
baseline JPEGs at the 50 MP pixel limit, a progressive one and a panorama. Printed: the
bot's peak memory (VmHWM) before the burst and after it, which must stay under 350 MB, and
what each sender was answered; the exit code is 1 if a sender got no answer or the peak
reached 350 MB.

    .venv/bin/python -m bench.report_flow [N] [RIDERS] [--webhook] [--hostile]
                                          [--engine sqlite|postgresql]
                                    (default N = 1000, RIDERS = 50, long polling, sqlite)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from bench import crowd, engines
from bench.cards import SAMPLE_SPACING_SECONDS
from bench.delivery import BenchTelegram, Delivery
from bench.process import cpu_seconds, peak_rss_mb
from storage.db import Database
from tests import images
from tests.fakegram import FakeTelegram, SentMessage, TgUser
from tests.riders import Chat

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = re.compile(r"R-\d{8}-\d{4,}")
WIDTH, HEIGHT = 1280, 960
NOISE_MARGIN = (320, 240)
STEP_TIMEOUT = 60.0  # seconds for one answer of the bot before the rider gives up
BEIJING_BOX = (39.80, 116.20, 40.05, 116.55)  # min_lat, min_lon, max_lat, max_lon
DESCRIPTIONS = (
    "井盖缺失，电动车很容易掉进去",
    "路口红绿灯不亮了",
    "电线垂到路面上，很危险",
    "楼道里堆满纸箱，有火灾隐患",
    "Pothole in the bike lane, about half a metre wide",
)
# Settings that would add moderators' work to the run; left unset for this benchmark.
UNSET = ("MODERATOR_CHAT_ID", "MODERATOR_IDS", "ADMIN_IDS", "FINANCE_CHAT_ID", "CONFIG_FILE")
MODERATOR_GROUP = -100200300  # the Submit -> card run's MODERATOR_CHAT_ID
CARD_SAMPLES = 20
CARD_SETTLE_SECONDS = 0.3  # after the consent and after the card: their work is done by then
ECHO_CROWD = 300  # the echo bot's crowd, for its CPU per update (the unit a report is costed in)


# --- the photos, made before anything is measured ------------------------------------------


@dataclass(frozen=True)
class Shot:
    """One report's photo: the bytes, how it is sent, and where it claims to be."""

    index: int
    data: bytes
    as_document: bool
    gps: tuple[float, float] | None  # in the EXIF (documents only)
    place: tuple[float, float]  # the location the rider shares (photos) or the EXIF's


def random_place(rng: random.Random) -> tuple[float, float]:
    min_lat, min_lon, max_lat, max_lon = BEIJING_BOX
    return round(rng.uniform(min_lat, max_lat), 6), round(rng.uniform(min_lon, max_lon), 6)


class PhotoMaker:
    """Distinct photo-sized JPEGs: shapes over a sky-to-ground gradient, plus noise."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        size = (WIDTH + NOISE_MARGIN[0], HEIGHT + NOISE_MARGIN[1])
        # Gaussian noise is the slow part: made once, each picture takes a different crop.
        self.noise = Image.merge(
            "RGB", [Image.effect_noise(size, rng.uniform(44, 52)) for _ in range(3)]
        )
        self.gradient = Image.linear_gradient("L").resize((WIDTH, HEIGHT))

    def picture(self, rng: random.Random) -> Image.Image:
        def colour() -> tuple[int, int, int]:
            return rng.randrange(256), rng.randrange(256), rng.randrange(256)

        top = Image.new("RGB", (WIDTH, HEIGHT), colour())
        bottom = Image.new("RGB", (WIDTH, HEIGHT), colour())
        image = Image.composite(bottom, top, self.gradient)
        draw = ImageDraw.Draw(image)
        for _ in range(rng.randrange(20, 40)):
            x0, y0 = rng.randrange(WIDTH), rng.randrange(HEIGHT)
            x1 = x0 + rng.randrange(40, WIDTH // 2)
            y1 = y0 + rng.randrange(40, HEIGHT // 2)
            kind = rng.random()
            if kind < 0.4:
                draw.rectangle((x0, y0, x1, y1), fill=colour())
            elif kind < 0.8:
                draw.ellipse((x0, y0, x1, y1), fill=colour())
            else:
                draw.line((x0, y0, x1, y1), fill=colour(), width=rng.randrange(2, 20))
        ox, oy = rng.randrange(NOISE_MARGIN[0]), rng.randrange(NOISE_MARGIN[1])
        grain = self.noise.crop((ox, oy, ox + WIDTH, oy + HEIGHT))
        return Image.blend(image, grain, rng.uniform(0.12, 0.16))

    def shot(self, index: int) -> Shot:
        rng = random.Random(index)
        picture = self.picture(rng)
        place = random_place(rng)
        buffer = io.BytesIO()
        if index % 3 == 2:  # an image file straight from the phone's gallery
            picture.save(
                buffer, "JPEG", quality=rng.randrange(82, 87), exif=images.phone_exif(*place)
            )
            return Shot(index, buffer.getvalue(), as_document=True, gps=place, place=place)
        picture.save(buffer, "JPEG", quality=rng.randrange(82, 88))  # Telegram's re-encoding
        return Shot(index, buffer.getvalue(), as_document=False, gps=None, place=place)


def make_shots(count: int) -> list[Shot]:
    maker = PhotoMaker(seed=count)
    shots = [maker.shot(i) for i in range(count)]
    assert len({shot.data for shot in shots}) == count, "two photos came out identical"
    return shots


# --- the riders ----------------------------------------------------------------------------


class Inbox:
    """The bot's messages indexed by chat, extended incrementally (the stand-in keeps one list,
    and re-scanning it on every recorded call for 50 waiting riders would cost more than the
    bot does)."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.scanned = 0
        self.by_chat: defaultdict[int, list[SentMessage]] = defaultdict(list)

    def of(self, chat_id: int) -> list[SentMessage]:
        sent = self.fake.sent
        if self.scanned < len(sent):
            for message in sent[self.scanned :]:
                self.by_chat[message.chat_id].append(message)
            self.scanned = len(sent)
        return self.by_chat[chat_id]


def callback_with(prefix: str) -> Callable[[SentMessage], bool]:
    """Whether a message has an inline button whose callback data starts with ``prefix``."""

    def matches(message: SentMessage) -> bool:
        return any(data.startswith(prefix) for _, data in message.buttons())

    return matches


def asks_for_location(message: SentMessage) -> bool:
    """The draft's reply keyboard, whose first button shares the rider's location."""
    rows = (message.reply_markup or {}).get("keyboard") or []
    return any(isinstance(b, dict) and b.get("request_location") for row in rows for b in row)


def has_reference(message: SentMessage) -> bool:
    return REFERENCE.search(message.text) is not None


class LostReport(Exception):
    pass


@dataclass
class Outcome:
    references: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # photo sent -> reference received
    lost: list[str] = field(default_factory=list)


class Rider(Chat):
    """A rider (tests/riders.Chat) who waits on the shared inbox and reads answers by content."""

    def __init__(self, fake: FakeTelegram, user: TgUser, inbox: Inbox) -> None:
        super().__init__(fake, user)
        self.inbox = inbox
        self.submitted_at = 0.0  # time.monotonic() of the last Submit press, as Call.at

    async def next(
        self,
        count: int = 1,
        timeout: float = STEP_TIMEOUT,  # noqa: ASYNC109 - as Chat.next
    ) -> list[SentMessage]:
        await self.fake.wait_for(
            lambda: len(self.inbox.of(self.user.id)) >= self.seen + count, timeout
        )
        new = self.inbox.of(self.user.id)[self.seen : self.seen + count]
        self.seen += count
        return new

    async def until(self, wanted: Callable[[SentMessage], bool], step: str) -> SentMessage:
        """The bot's next message to this rider that is ``wanted`` (others are passed over)."""
        chat = self.inbox.of(self.user.id)
        found: list[SentMessage] = []

        def arrived() -> bool:
            self.inbox.of(self.user.id)  # takes in what the bot sent since
            while self.seen < len(chat):
                message = chat[self.seen]
                self.seen += 1
                if wanted(message):
                    found.append(message)
                    return True
            return False

        try:
            await self.fake.wait_for(arrived, STEP_TIMEOUT)
        except AssertionError:
            last = [m.text[:80] for m in chat[-3:]]
            raise LostReport(f"rider {self.user.id}: no answer to {step}; last: {last}") from None
        return found[0]

    async def changed(self, message: SentMessage, prefix: str, step: str) -> SentMessage:
        """`message` once the bot has edited it to carry a button of `prefix`."""
        try:
            await self.fake.wait_for(lambda: callback_with(prefix)(message), STEP_TIMEOUT)
        except AssertionError:
            raise LostReport(f"rider {self.user.id}: no answer to {step}") from None
        return message

    def tap(self, message: SentMessage, prefix: str, choice: int = 0) -> None:
        options = [data for _, data in message.buttons() if data.startswith(prefix)]
        self.fake.press_button(self.user, message, options[choice % len(options)])

    async def file_report(self, shot: Shot) -> str:
        """photo -> location -> category -> description or Skip -> Submit; the reference."""
        number = shot.index
        if shot.as_document:
            self.fake.send_document(
                self.user, shot.data, file_name=f"IMG_{number:05d}.jpg", mime_type="image/jpeg"
            )
            offer = await self.until(callback_with("loc:"), "the photo")
            self.tap(offer, "loc:")
            categories = await self.changed(offer, "cat:", "the photo's location")
        else:
            self.photo(shot.data)
            await self.until(asks_for_location, "the photo")
            self.location(*shot.place)
            categories = await self.until(callback_with("cat:"), "the location")
        # The categories' message changes into the description prompt, then the summary.
        self.tap(categories, "cat:", number)
        ask = await self.changed(categories, "skip:", "the category")
        if number % 2:
            self.text(DESCRIPTIONS[number % len(DESCRIPTIONS)])
            summary = await self.until(callback_with("sub:"), "the description")
        else:
            self.tap(ask, "skip:")
            summary = await self.changed(categories, "sub:", "the description")
        self.submitted_at = time.monotonic()
        self.tap(summary, "sub:")
        confirmation = await self.until(has_reference, "Submit")
        found = REFERENCE.search(confirmation.text)
        assert found is not None
        return found.group(0)

    async def file_reports(self, shots: list[Shot], outcome: Outcome) -> None:
        for offset, shot in enumerate(shots):
            started = time.perf_counter()
            try:
                reference = await self.file_report(shot)
            except LostReport as lost:
                outcome.lost.append(f"{lost} (and {len(shots) - offset - 1} more not tried)")
                return
            outcome.references.append(reference)
            outcome.seconds.append(time.perf_counter() - started)


# --- hostile pictures (--hostile) ----------------------------------------------------------

HOSTILE_RIDERS = 5
HOSTILE_PEAK_LIMIT_MB = 350
HOSTILE_TIMEOUT = 300.0  # seconds for every answer to the burst
ANSWERS = {  # what each answer contains, in both languages; a refusal shows the draft too
    "too many pixels": ("这张图片尺寸过大", "That picture is too large"),
    "unsupported format": ("只支持 JPEG", "Only JPEG, PNG and WEBP"),
    "hourly limit": ("一小时内最多", "in the last hour"),
    "accepted": ("已收到", "photos received"),
}


@dataclass(frozen=True)
class Crafted:
    """One hostile picture, sent as a file."""

    kind: str
    data: bytes
    file_name: str
    mime_type: str


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def shapes(size: tuple[int, int], mode: str, seed: int) -> Image.Image:
    """A flat picture with a few ellipses: compresses to little whatever its size."""
    rng = random.Random(seed)
    image = Image.new(mode, size, "gray")
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.ellipse((x, y, x + size[0] // 6, y + size[1] // 6), fill="red")
    return image


def crafted_pictures() -> list[Crafted]:
    """The 20 pictures, heaviest first so that every rider starts with one."""
    big = (7000, 7000)
    jpeg_limit = (8660, 5773)  # 49.99 MP, just under the 50 MP pixel limit
    made: list[Crafted] = []
    for fill in (0x70, 0x71, 0x72):
        data = images.png_rgba(*big, orientation=6, fill=fill)
        made.append(Crafted("PNG 7000x7000 RGBA", data, "big.png", "image/png"))
    for fill in (0x73, 0x74):
        data = images.png_rgba(4096, 4096, orientation=6, fill=fill)
        made.append(Crafted("PNG 4096x4096 RGBA", data, "limit.png", "image/png"))
    for seed in (1, 2):
        data = encoded(shapes(big, "RGBA", seed), "WEBP", quality=50)
        made.append(Crafted("WebP 7000x7000", data, "big.webp", "image/webp"))
    for seed in (3, 4):
        data = encoded(shapes((2048, 2048), "RGBA", seed), "WEBP", quality=50)
        made.append(Crafted("WebP 2048x2048", data, "limit.webp", "image/webp"))
    for seed in (5, 6, 7):
        data = encoded(shapes(jpeg_limit, "RGB", seed), "JPEG", quality=80)
        made.append(Crafted("JPEG 8660x5773", data, "limit.jpg", "image/jpeg"))
    data = encoded(shapes(jpeg_limit, "RGB", 8), "JPEG", quality=80, progressive=True)
    made.append(Crafted("JPEG 8660x5773 progressive", data, "prog.jpg", "image/jpeg"))
    data = encoded(shapes((16000, 3125), "RGB", 9), "JPEG", quality=80)
    made.append(Crafted("JPEG 16000x3125 panorama", data, "pano.jpg", "image/jpeg"))
    for colour in (0, 1):
        data = encoded(Image.new("P", big, colour), "GIF")
        made.append(Crafted("GIF 7000x7000 (as image/png)", data, "gif.png", "image/png"))
    for mode in ("1", "L"):
        data = images.tiff(big, mode)
        made.append(Crafted("TIFF 7000x7000", data, "scan.tif", "image/tiff"))
    for width in (7000, 7001):
        data = images.bmp_header(width, 7000)
        made.append(Crafted("BMP 7000x7000 (RLE header)", data, "old.bmp", "image/bmp"))
    assert len({picture.data for picture in made}) == len(made) == 20, "not 20 distinct"
    return made


def answer_kind(message: SentMessage) -> str:
    for kind, markers in ANSWERS.items():
        if any(marker in message.text for marker in markers):
            return kind
    return f"other: {message.text[:40]!r}"


async def send_burst(rider: Rider, pictures: list[Crafted]) -> list[str]:
    """Send every picture without waiting, then the kind of each answer (or 'no answer')."""
    for number, picture in enumerate(pictures):
        rider.fake.send_document(
            rider.user,
            picture.data,
            file_name=f"{number}-{picture.file_name}",
            mime_type=picture.mime_type,
        )
    chat = rider.inbox.of(rider.user.id)
    expected = rider.seen + len(pictures)
    with contextlib.suppress(AssertionError):  # a timeout: count what did arrive
        await rider.fake.wait_for(
            lambda: len(rider.inbox.of(rider.user.id)) >= expected, HOSTILE_TIMEOUT
        )
    answers = [answer_kind(m) for m in chat[rider.seen : expected]]
    return answers + ["no answer"] * (len(pictures) - len(answers))


async def run_hostile(dbs: engines.Databases, webhook: bool) -> int:
    started = time.perf_counter()
    pictures = crafted_pictures()
    made = time.perf_counter() - started
    workdir = dbs.folder
    log = workdir / "bot.log"
    async with BenchTelegram() as fake, Delivery(fake, webhook) as delivery:
        env = bot_env(fake, delivery, await dbs.fresh("bot"))
        fake.enforce_caps(per_second=None, per_group=None)
        bot = await start_bot(delivery, env, workdir, log)
        try:
            inbox = Inbox(fake)
            riders = [
                Rider(fake, TgUser(3_000_000 + i, f"骑手{i}", "en" if i == 4 else "zh-hans"), inbox)
                for i in range(HOSTILE_RIDERS)
            ]
            await asyncio.gather(*(rider.agree() for rider in riders))
            await asyncio.sleep(0.5)
            before = peak_rss_mb(bot.pid)
            cpu_before = cpu_seconds(bot.pid)
            window_started = time.perf_counter()
            shares = [pictures[i::HOSTILE_RIDERS] for i in range(HOSTILE_RIDERS)]
            answers = await asyncio.gather(
                *(send_burst(rider, share) for rider, share in zip(riders, shares, strict=True))
            )
            wall = time.perf_counter() - window_started
            cpu = cpu_seconds(bot.pid) - cpu_before
            peak = peak_rss_mb(bot.pid)
        finally:
            await stop_bot(bot)
    errors = read_log(log).count("Traceback")

    print(f"hostile pictures: {len(pictures)} sent at once as files by {HOSTILE_RIDERS} riders")
    print(f"mode: {'WEBHOOK' if webhook else 'long polling'}; {delivery.summary()}")
    print(f"database: {dbs.engine}")
    by_kind: defaultdict[str, list[str]] = defaultdict(list)
    sizes: defaultdict[str, list[int]] = defaultdict(list)
    for share, answered in zip(shares, answers, strict=True):
        for picture, answer in zip(share, answered, strict=True):
            by_kind[picture.kind].append(answer)
            sizes[picture.kind].append(len(picture.data))
    for kind, answered in by_kind.items():
        counted = ", ".join(f"{answered.count(a)} {a}" for a in sorted(set(answered)))
        print(f"  {len(answered)} x {kind:30} {max(sizes[kind]) // 1024:5} KB  -> {counted}")
    print(f"(pictures made in {made:.1f} s, not measured)")
    print(f"bot peak memory before the burst  {before:.1f} MB (VmHWM)")
    print(f"bot peak memory after the burst   {peak:.1f} MB (VmHWM; limit {HOSTILE_PEAK_LIMIT_MB})")
    print(f"wall seconds {wall:.1f}; bot CPU seconds {cpu:.1f}; tracebacks in bot log: {errors}")
    missing = sum(answered.count("no answer") for answered in answers)
    answered_riders = sum("no answer" not in answered for answered in answers)
    print(f"senders answered for every picture: {answered_riders} of {HOSTILE_RIDERS}")
    if missing or peak >= HOSTILE_PEAK_LIMIT_MB:
        print(f"FAILED: {missing} pictures without an answer; peak {peak:.1f} MB")
        return 1
    print(f"every sender got an answer; peak under {HOSTILE_PEAK_LIMIT_MB} MB")
    return 0


# --- measuring the bot ---------------------------------------------------------------------


async def database_figures(target: engines.Target) -> tuple[int, int, int, int]:
    """(bytes on disk, pending reports, distinct references, photo bytes), read after the
    bot has stopped."""
    db = Database(target)
    await db.open()
    try:
        size = await engines.database_bytes(db)
        row = await db.fetchone(
            "SELECT (SELECT COUNT(*) FROM reports WHERE status = 'pending'),"
            " (SELECT COUNT(DISTINCT reference) FROM reports),"
            " (SELECT SUM(LENGTH(evidence)) FROM report_photos)"
        )
    finally:
        await db.close()
    assert row is not None
    return size, int(row[0]), int(row[1]), int(row[2] or 0)


def bot_env(
    fake: FakeTelegram, delivery: Delivery, database: engines.Target, **settings: str
) -> dict[str, str]:
    """The bot's environment: ours without UNSET, the stand-in, `database` and `settings`."""
    env = {key: value for key, value in os.environ.items() if key not in UNSET}
    return env | {
        "BOT_TOKEN": fake.token,
        "BOT_API_URL": fake.base_url,
        "DATABASE_URL": engines.database_url(database),
        "PYTHONPATH": str(ROOT),
        **delivery.bot_env(),
        **settings,
    }


async def card_arrival(fake: FakeTelegram, reference: str) -> float:
    """When the review card of `reference` reached the stand-in (its sendPhoto's Call.at)."""
    found: list[float] = []

    def arrived() -> bool:
        for call in reversed(fake.calls):
            if (
                call.method == "sendPhoto"
                and str(call.params.get("chat_id")) == str(MODERATOR_GROUP)
                and reference in str(call.params.get("caption", ""))
            ):
                found.append(call.at)
                return True
        return False

    await fake.wait_for(arrived, STEP_TIMEOUT)
    return found[0]


async def card_latency(
    dbs: engines.Databases, config: Path, shots: list[Shot], webhook: bool
) -> tuple[list[float], float]:
    """A bot of its own with MODERATOR_CHAT_ID set: riders file one report each, one at a
    time; seconds from each Submit press to its card's sendPhoto reaching the stand-in, and
    the bot's CPU seconds per report with its card (from the photo to CARD_SETTLE_SECONDS
    after the card, so the card's own bookkeeping counts; the spacing between does not).
    Spaced SAMPLE_SPACING_SECONDS apart, so the group's pacing (20 a minute) never enters."""
    log = dbs.folder / "cards.log"
    async with BenchTelegram() as fake, Delivery(fake, webhook) as delivery:
        settings = {"MODERATOR_CHAT_ID": str(MODERATOR_GROUP), "CONFIG_FILE": str(config)}
        env = bot_env(fake, delivery, await dbs.fresh("cards"), **settings)
        fake.enforce_caps(per_second=None, per_group=None)
        bot = await start_bot(delivery, env, dbs.folder, log)
        try:
            inbox = Inbox(fake)
            seconds = []
            cpu = 0.0
            for number, shot in enumerate(shots):
                rider = Rider(fake, TgUser(4_000_000 + number, f"骑手{number}", "zh-hans"), inbox)
                await rider.agree()
                await asyncio.sleep(CARD_SETTLE_SECONDS)
                cpu_before = cpu_seconds(bot.pid)
                reference = await rider.file_report(shot)
                seconds.append(await card_arrival(fake, reference) - rider.submitted_at)
                await asyncio.sleep(CARD_SETTLE_SECONDS)
                cpu += cpu_seconds(bot.pid) - cpu_before
                await asyncio.sleep(SAMPLE_SPACING_SECONDS)
            return seconds, cpu / len(shots)
        finally:
            await stop_bot(bot)


def read_log(path: Path) -> str:
    return path.read_text(errors="replace")


async def progress(outcome: Outcome, total: int, started: float) -> None:
    while True:
        await asyncio.sleep(15)
        done = len(outcome.references)
        print(
            f"  ... {done}/{total} reports after {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )


async def start_bot(
    delivery: Delivery, env: dict[str, str], workdir: Path, log: Path
) -> asyncio.subprocess.Process:
    """Start `python bot.py` and return once it polls, or serves its webhook (stderr to ``log``)."""
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bot.py"), env=env, cwd=workdir, stderr=stderr
        )
    ready = asyncio.ensure_future(delivery.bot_ready(timeout=60))
    exited = asyncio.ensure_future(process.wait())
    await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
    if exited.done():
        ready.cancel()
        tail = read_log(log)[-2000:]
        raise SystemExit(f"bot.py exited with {process.returncode} at start-up:\n{tail}")
    exited.cancel()
    ready.result()
    return process


async def stop_bot(process: asyncio.subprocess.Process) -> None:
    """SIGTERM (the bot closes its database and exits 0), SIGKILL if it hangs."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()


async def run(total: int, rider_count: int, dbs: engines.Databases, webhook: bool) -> int:
    rider_count = max(1, min(rider_count, total))
    started = time.perf_counter()
    shots = make_shots(total)
    made = time.perf_counter() - started
    sizes = sorted(len(shot.data) for shot in shots)
    documents = sum(shot.as_document for shot in shots)

    workdir = dbs.folder
    database = await dbs.fresh("bot")
    config = workdir / "config.toml"
    config.write_text("[reports]\ndaily_cap = 100000\n", encoding="utf-8")
    log = workdir / "bot.log"
    async with BenchTelegram() as fake, Delivery(fake, webhook) as delivery:
        env = bot_env(fake, delivery, database, CONFIG_FILE=str(config))
        fake.enforce_caps(per_second=None, per_group=None)  # OFF: the bot's cost, not Telegram's
        bot = await start_bot(delivery, env, workdir, log)
        try:
            await asyncio.sleep(0.5)
            inbox = Inbox(fake)
            riders = [  # one in five speaks English
                Rider(
                    fake,
                    TgUser(2_000_000 + i, f"骑手{i}", "en" if i % 5 == 4 else "zh-hans"),
                    inbox,
                )
                for i in range(rider_count)
            ]
            await asyncio.gather(*(rider.agree() for rider in riders))
            await asyncio.sleep(0.5)  # the consent's answers settle before the window opens

            outcome = Outcome()
            shares = [shots[i::rider_count] for i in range(rider_count)]
            calls_before = len(fake.calls)
            cpu_before = cpu_seconds(bot.pid)
            server_before = dbs.server_cpu_seconds()
            own_cpu_before = time.process_time()
            window_started = time.perf_counter()
            ticker = asyncio.ensure_future(progress(outcome, total, window_started))
            await asyncio.gather(
                *(
                    rider.file_reports(share, outcome)
                    for rider, share in zip(riders, shares, strict=True)
                )
            )
            wall = time.perf_counter() - window_started
            cpu = cpu_seconds(bot.pid) - cpu_before
            server_cpu = dbs.server_cpu_seconds() - server_before
            own_cpu = time.process_time() - own_cpu_before
            ticker.cancel()
            window_calls = fake.calls[calls_before:]
            peak = peak_rss_mb(bot.pid)
        finally:
            await stop_bot(bot)
        rejections = fake.cap_rejections

    size, pending, stored_references, evidence = await database_figures(database)
    card_seconds, card_cpu = await card_latency(dbs, config, shots[:CARD_SAMPLES], webhook)
    echo = await crowd.run_crowd(
        "bare PTB echo",
        str(ROOT / "bench" / "echo_bot.py"),
        engines.database_url(workdir / "echo.db"),  # never opened
        lambda: 0.0,
        ECHO_CROWD,
        workdir,
        webhook,
    )
    completed = len(outcome.references)
    distinct = len(set(outcome.references))
    paced = sum(1 for call in window_calls if "chat_id" in call.params)
    sent_to_riders = sum(1 for call in window_calls if call.method == "sendMessage")
    errors = read_log(log).count("Traceback")

    print(f"report flow: {total} reports by {rider_count} riders at once, each in sequence")
    print(f"mode: {'WEBHOOK' if webhook else 'long polling'}; {delivery.summary()}")
    print(f"database: {dbs.engine}")
    print("stand-in caps OFF (no 429s; the bot's own limiter still paces sends at 30/s)")
    print(
        f"photos: {total} distinct {WIDTH}x{HEIGHT} JPEGs, {total - documents} as photo, "
        f"{documents} as document with EXIF GPS; {sizes[0] // 1024}-{sizes[-1] // 1024} KB, "
        f"median {sizes[len(sizes) // 2] // 1024} KB (made in {made:.1f} s, not measured)"
    )
    print(f"reports completed            {completed} of {total}")
    print(f"wall seconds                 {wall:.1f}")
    if completed:
        print(f"CPU ms per completed report  {1000 * cpu / completed:.1f}  (bot process)")
        print(
            f"  = {1000 * cpu / completed / echo.cpu_ms_per_update:.1f} echo updates (the bare "
            f"PTB echo bot, this run: {echo.cpu_ms_per_update:.2f} ms per /start of a crowd "
            f"of {ECHO_CROWD}, as bench/crowd.py measures it)"
        )
        if dbs.server is not None:
            print(
                f"  + PostgreSQL server        {1000 * server_cpu / completed:.1f}  ms per report"
            )
    print(f"bot CPU seconds in window    {cpu:.1f}  ({100 * cpu / wall:.0f}% of one core)")
    print(f"peak memory (VmHWM)          {peak:.1f} MB")
    print(
        f"database size at the end     {size / 1024 / 1024:.1f} MB  "
        f"({size / max(completed, 1) / 1024:.0f} KB per report; evidence JPEGs "
        f"{evidence / 1024 / 1024:.1f} MB)"
    )
    if outcome.seconds:
        latency = sorted(outcome.seconds)
        p95 = latency[min(len(latency) - 1, int(0.95 * len(latency)))]
        print(
            f"seconds per report (photo -> reference): median "
            f"{statistics.median(latency):.2f}, p95 {p95:.2f}, max {latency[-1]:.2f}"
        )
    card_p95 = (
        statistics.quantiles(card_seconds, n=20, method="inclusive")[-1]
        if len(card_seconds) > 1
        else card_seconds[0]
    )
    print(
        f"Submit -> card (sendPhoto at the stand-in), {len(card_seconds)} reports one at a time"
        f" by a second bot with MODERATOR_CHAT_ID: median {statistics.median(card_seconds):.3f},"
        f" p95 {card_p95:.3f}, max {max(card_seconds):.3f} s"
    )
    print(
        f"  whole report with its card, one at a time: {1000 * card_cpu:.1f} ms bot CPU = "
        f"{1000 * card_cpu / echo.cpu_ms_per_update:.1f} echo updates"
    )
    print(
        f"bot requests with a chat_id  {paced} ({paced / wall:.1f}/s; "
        f"{paced / max(completed, 1):.1f} per report, {sent_to_riders} sendMessage); "
        f"429s answered: {rejections}"
    )
    print(f"stand-in (this process) CPU  {own_cpu:.1f} s;  tracebacks in bot log: {errors}")
    print(f"distinct references in replies  {distinct} (N = {total})")
    print(f"rows with status 'pending'      {pending} (N = {total}); distinct: {stored_references}")
    lost = total - min(distinct, pending)
    for line in outcome.lost[:5]:
        print(f"  lost: {line}")
    if lost:
        print(f"LOST REPORTS: {lost}")
        return 1
    print("every report got its reference")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.report_flow",
        description="N complete photo reports through a real `python bot.py`.",
    )
    parser.add_argument("total", nargs="?", type=int, default=1000, metavar="N")
    parser.add_argument("riders", nargs="?", type=int, default=50, metavar="RIDERS")
    parser.add_argument("--webhook", action="store_true", help="webhook mode instead of polling")
    parser.add_argument(
        "--hostile", action="store_true", help="20 crafted pictures at once by 5 riders (memory)"
    )
    engines.add_engine_option(parser)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="report_flow-") as tmp,
        engines.databases(args.engine, Path(tmp)) as dbs,
    ):
        if args.hostile:
            return asyncio.run(run_hostile(dbs, args.webhook))
        return asyncio.run(run(args.total, args.riders, dbs, args.webhook))


if __name__ == "__main__":
    sys.exit(main())
