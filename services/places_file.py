"""Service stations (服务驿站) and friendly merchants (友好商户): the county's places file.

Admins send an XLSX or CSV, one row a place. Each header cell carries its key in parentheses
(`名称 (name)`, `Latitude (lat)`), so a file whose labels are in any language imports. Every
row is checked; a file with any refused row changes nothing and the admin gets the list of
refusals (row number, column, why). GCJ-02 coordinates (Amap, Tencent) become WGS-84 here.

Opening hours: `24h` (or `24小时`), a time range alone for every day (`08:00-22:00`), or
groups such as `mon-fri 08:00-20:00; sat 09:00-12:00
14:00-18:00` (`周一-周五` works too). A range ending before it starts runs past midnight
(`22:00-02:00`); a day not named is closed.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import multiprocessing
import re
import resource
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from services import spreadsheet
from services.geo import gcj02_to_wgs84, valid_coordinates, wgs84_to_gcj02

KINDS = ("station", "merchant")
AMENITIES = (
    "seats",
    "microwave",
    "water",
    "phone_charging",
    "ebike_charging",
    "battery_swap",
    "toilet",
    "first_aid",
    "rest_area",
    "policy_advice",
)
AMENITY_ICONS = {
    "seats": "🪑",
    "microwave": "🍱",
    "water": "🚰",
    "phone_charging": "🔌",
    "ebike_charging": "⚡",
    "battery_swap": "🔋",
    "toilet": "🚻",
    "first_aid": "⛑️",
    "rest_area": "🛋️",
    "policy_advice": "📋",
}
# What people type in the amenities cell besides the keys themselves; the first word of each
# key is the one the refusal lists as accepted. A bare 充电 at a riders' station means phones.
_AMENITY_WORDS = {
    "座椅": "seats",
    "座位": "seats",
    "桌椅": "seats",
    "微波炉": "microwave",
    "热饭": "microwave",
    "热水": "water",
    "饮用水": "water",
    "饮水": "water",
    "饮水机": "water",
    "开水": "water",
    "手机充电": "phone_charging",
    "充电": "phone_charging",
    "充电宝": "phone_charging",
    "电动车充电": "ebike_charging",
    "电瓶车充电": "ebike_charging",
    "充电桩": "ebike_charging",
    "换电": "battery_swap",
    "换电柜": "battery_swap",
    "厕所": "toilet",
    "卫生间": "toilet",
    "洗手间": "toilet",
    "公厕": "toilet",
    "急救箱": "first_aid",
    "急救": "first_aid",
    "药箱": "first_aid",
    "医药箱": "first_aid",
    "休息区": "rest_area",
    "休息室": "rest_area",
    "休息": "rest_area",
    "政策咨询": "policy_advice",
    "咨询": "policy_advice",
}
COLUMNS = (
    "kind",
    "name",
    "address",
    "town",
    "lat",
    "lon",
    "coords",
    "hours",
    "amenities",
    "benefit",
    "prices",
    "phone",
)
REQUIRED = ("kind", "name", "address", "lat", "lon", "coords", "hours")
TEMPLATE_LABELS = {
    "kind": "类型 station/merchant",
    "name": "名称",
    "address": "地址",
    "town": "镇街",
    "lat": "纬度",
    "lon": "经度",
    "coords": "坐标系 wgs84/gcj02",
    "hours": "营业时间",
    "amenities": "设施",
    "benefit": "优惠",
    "prices": "积分兑换",
    "phone": "电话",
}
MAX_ROWS = 50_000
MAX_COLUMNS = 40  # the template has 12; a sheet's declared used range is never trusted
MAX_FILE_BYTES = 10 * 1024 * 1024
READ_MEMORY_BYTES = 1024 * 1024 * 1024  # address space of the process that reads one file
READ_SECONDS = 120
NAME_MAX = 60
TEXT_MAX = 300
MINUTES_PER_DAY = 24 * 60
_HEADER_KEY = re.compile(r"[(（]\s*([A-Za-z_]+)\s*[)）]\s*$")
_DAYS_EN = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAYS_ZH = ("一", "二", "三", "四", "五", "六", "日")
_DAY = r"(?:mon|tue|wed|thu|fri|sat|sun|(?:周|星期)[一二三四五六日天])"
_DAYS_PART = re.compile(rf"^({_DAY})(?:\s*[-–~至]\s*({_DAY}))?\s*[:：]?\s*(.*)$", re.I)
_TIME_RANGE = re.compile(r"^(\d{1,2})[:：](\d{2})\s*[-–~至]\s*(\d{1,2})[:：](\d{2})$")
_PRICE = re.compile(r"^(.+?)\s*(?:=|:|：|—|-)\s*(\d{1,6})\s*(?:积分|分|points?|pts)?$", re.I)
_PHONE = re.compile(r"^\+?[\d\s\-()]{5,24}$")
TWENTY_FOUR_HOURS = ("24h", "24小时", "24/7", "全天")


class PlacesFileError(Exception):
    """The file as a whole cannot be read; `key` names the problem for the admin."""

    def __init__(self, key: str, detail: str = "") -> None:
        super().__init__(key, detail)
        self.key = key
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.key}: {self.detail}"


@dataclass(frozen=True)
class Hours:
    """Opening hours: per weekday (0 = Monday) a list of (start, end) minutes; end may pass
    midnight (up to 48 h), meaning the hours run on into the next day."""

    always: bool = False
    days: tuple[tuple[tuple[int, int], ...], ...] = ((),) * 7

    def open_at(self, moment: datetime) -> bool:
        """Whether the place is open at `moment` (a local time in the programme's zone)."""
        if self.always:
            return True
        minute = moment.hour * 60 + moment.minute
        today = moment.weekday()
        if any(start <= minute < end for start, end in self.days[today]):
            return True
        yesterday = (today - 1) % 7
        return any(start <= minute + MINUTES_PER_DAY < end for start, end in self.days[yesterday])

    def to_json(self) -> str:
        return json.dumps({"always": self.always, "days": self.days}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Hours:
        data = json.loads(text)
        days = tuple(tuple((int(a), int(b)) for a, b in day) for day in data["days"])
        return cls(always=bool(data["always"]), days=days)


def parse_hours(text: str) -> Hours:
    """Hours from the file's cell; raises ValueError naming what could not be read."""
    cleaned = text.strip().lower()
    if cleaned in TWENTY_FOUR_HOURS:
        return Hours(always=True)
    days: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    groups = [part.strip() for part in re.split(r"[;；\n]|,(?=\s*[a-z周星])", cleaned)]
    for group in filter(None, groups):
        found = _DAYS_PART.match(group)
        if found is None and group[:1].isdigit():
            chosen, parsed = list(range(7)), _time_ranges(group)  # "08:00-22:00": every day
        elif found is None:
            raise ValueError(group)
        else:
            first, last, ranges = found.groups()
            start_day = _day_number(first)
            end_day = start_day if last is None else _day_number(last)
            chosen = [(start_day + step) % 7 for step in range((end_day - start_day) % 7 + 1)]
            parsed = _time_ranges(ranges)
        for day in chosen:
            days[day].extend(parsed)
    if not any(days):
        raise ValueError(text)
    return Hours(days=tuple(tuple(sorted(day)) for day in days))


def _day_number(word: str) -> int:
    word = word.lower()
    if word[:3] in _DAYS_EN:
        return _DAYS_EN.index(word[:3])
    char = word[-1].replace("天", "日")
    return _DAYS_ZH.index(char)


def _time_ranges(text: str) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for part in filter(None, re.split(r"[\s,，、]+(?=\d)", text.strip())):
        found = _TIME_RANGE.match(part.strip())
        if found is None:
            raise ValueError(part)
        h1, m1, h2, m2 = (int(g) for g in found.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(part)
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start:
            end += MINUTES_PER_DAY  # past midnight
        ranges.append((start, end))
    if not ranges:
        raise ValueError(text)
    return ranges


def format_hours(hours: Hours, day_names: Sequence[str], always: str) -> str:
    """Hours for people: `周一-周五 08:00-20:00; 周六 09:00-12:00`; days with equal hours
    are grouped."""
    if hours.always:
        return always
    groups: list[tuple[int, int, tuple[tuple[int, int], ...]]] = []
    for day, ranges in enumerate(hours.days):
        if groups and groups[-1][2] == ranges and groups[-1][1] == day - 1:
            groups[-1] = (groups[-1][0], day, ranges)
        else:
            groups.append((day, day, ranges))
    parts = []
    for first, last, ranges in groups:
        if not ranges:
            continue
        days = day_names[first] if first == last else f"{day_names[first]}-{day_names[last]}"
        times = " ".join(f"{_clock(a)}-{_clock(b)}" for a, b in ranges)
        parts.append(f"{days} {times}")
    return "; ".join(parts)


def _clock(minutes: int) -> str:
    if minutes > MINUTES_PER_DAY:
        minutes -= MINUTES_PER_DAY  # a range running past midnight
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class PriceItem:
    """Something a merchant gives for points."""

    name: str
    points: int


@dataclass(frozen=True)
class PlaceRow:
    """One valid row of the places file, coordinates already WGS-84."""

    kind: str
    name: str
    address: str
    town: str
    lat: float
    lon: float
    hours: Hours
    amenities: tuple[str, ...] = ()
    benefit: str = ""
    prices: tuple[PriceItem, ...] = ()
    phone: str = ""


@dataclass(frozen=True)
class BadRow:
    """Why one row (numbered as in the spreadsheet, header = 1) was refused."""

    row: int
    column: str
    reason: str  # a key under places.problem_kind.*
    value: str = ""  # what the cell held (for "duplicate", the row it repeats)

    @property
    def quoted(self) -> bool:
        """Whether the admin is shown the cell's value beside the problem."""
        return bool(self.value) and self.reason != "duplicate"


@dataclass
class Checked:
    """The outcome of reading a file: the valid rows and every refusal."""

    rows: list[PlaceRow] = field(default_factory=list)
    refusals: list[BadRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


def read_table(data: bytes, file_name: str) -> list[list[str]]:
    """The cells of the first sheet (XLSX) or of the CSV (UTF-8, with or without BOM)."""
    if len(data) > MAX_FILE_BYTES:
        raise PlacesFileError("too_big")
    lower = file_name.lower()
    if lower.endswith(".xlsx") or data[:2] == b"PK":
        return _read_xlsx(data)
    if lower.endswith(".csv") or lower.endswith(".txt"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise PlacesFileError("not_utf8") from None
        return [list(row) for row in csv.reader(io.StringIO(text))]
    raise PlacesFileError("unknown_format")


def _read_xlsx(data: bytes) -> list[list[str]]:
    import openpyxl  # only admins' imports need it

    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise PlacesFileError("bad_xlsx", type(exc).__name__) from None
    try:
        sheet = book.worksheets[0]
        table: list[list[str]] = []
        # Bounded whatever the sheet declares: a tiny file may claim A1:XFD1048576, and
        # openpyxl pads every row to the declared width and fills the rows in between.
        for values in sheet.iter_rows(max_row=MAX_ROWS + 2, max_col=MAX_COLUMNS, values_only=True):
            table.append([_cell(value) for value in values])
        while table and not any(table[-1]):
            table.pop()
        if len(table) > MAX_ROWS + 1:
            raise PlacesFileError("too_many_rows")
        return table
    finally:
        book.close()


async def check_file_apart(data: bytes, file_name: str) -> Checked:
    """`check_table(read_table(...))` in a process of its own, so a hostile file can neither
    hold the event loop nor take the bot's memory: at most `READ_MEMORY_BYTES` and
    `READ_SECONDS`; PlacesFileError when it cannot be read."""
    return await asyncio.to_thread(_check_in_child, data, file_name)


def _check_in_child(data: bytes, file_name: str) -> Checked:
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=_child_reads, args=(sender, data, file_name, READ_MEMORY_BYTES), daemon=True
    )
    child.start()
    sender.close()
    try:
        if not receiver.poll(READ_SECONDS):
            raise PlacesFileError("too_hard", f"not read in {READ_SECONDS} s")
        outcome = receiver.recv()
    except EOFError:  # the child died: its memory limit, or a crash in a parser
        raise PlacesFileError("too_hard", "the reader ran out of memory") from None
    finally:
        child.kill()
        child.join()
        receiver.close()
    if isinstance(outcome, PlacesFileError):
        raise outcome
    assert isinstance(outcome, Checked)
    return outcome


def _child_reads(sender: Connection, data: bytes, file_name: str, memory: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        sender.send(check_table(read_table(data, file_name)))
    except PlacesFileError as refused:
        sender.send(refused)
    except MemoryError:
        sender.send(PlacesFileError("too_hard", "the reader ran out of memory"))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) > 1000:
        return str(int(value))  # a phone number typed as a number
    return str(value).strip()


def header_keys(header: Sequence[str]) -> list[str | None]:
    """The column key of each header cell: the word in parentheses, else the cell itself."""
    keys: list[str | None] = []
    for cell in header:
        found = _HEADER_KEY.search(cell)
        key = (found.group(1) if found else cell).strip().lower()
        keys.append(key if key in COLUMNS else None)
    return keys


def check_table(table: list[list[str]]) -> Checked:
    """Validate every row; raises PlacesFileError when the header itself is unusable."""
    checked = Checked()
    body = [(number, row) for number, row in enumerate(table, start=1) if any(row)]
    if not body:
        raise PlacesFileError("empty")
    (_, header), rows = body[0], body[1:]
    keys = header_keys(header)
    missing = [key for key in REQUIRED if key not in keys]
    if missing:
        raise PlacesFileError("missing_columns", ", ".join(missing))
    if len(rows) > MAX_ROWS:
        raise PlacesFileError("too_many_rows")
    checked.ignored_columns = [cell for cell, key in zip(header, keys, strict=False) if not key]
    seen: dict[tuple[str, str], int] = {}
    for number, cells in rows:
        values = {key: cells[i].strip() for i, key in enumerate(keys) if key and i < len(cells)}
        outcome = check_row(number, values)
        if isinstance(outcome, BadRow):
            checked.refusals.append(outcome)
            continue
        name_key = (outcome.kind, outcome.name)
        if name_key in seen:
            checked.refusals.append(BadRow(number, "name", "duplicate", str(seen[name_key])))
            continue
        seen[name_key] = number
        checked.rows.append(outcome)
    if not checked.rows and not checked.refusals:
        raise PlacesFileError("empty")
    return checked


def check_row(number: int, values: dict[str, str]) -> PlaceRow | BadRow:
    """One row as a place, or the first reason it cannot be one."""

    def refuse(column: str, problem: str) -> BadRow:
        return BadRow(number, column, problem, values.get(column, "")[:40])

    for key in REQUIRED:
        if not values.get(key):
            return refuse(key, "missing")
    kind = values["kind"].lower()
    kind = {"驿站": "station", "服务驿站": "station", "商户": "merchant"}.get(kind, kind)
    if kind not in KINDS:
        return refuse("kind", "bad_kind")
    if len(values["name"]) > NAME_MAX:
        return refuse("name", "too_long")
    for key in ("address", "town", "benefit"):
        if len(values.get(key, "")) > TEXT_MAX:
            return refuse(key, "too_long")
    try:
        lat, lon = float(values["lat"]), float(values["lon"])
    except ValueError:
        return refuse("lat", "bad_number")
    if not valid_coordinates(lat, lon):
        return refuse("lat", "bad_coordinates")
    system = values["coords"].lower().replace("-", "").replace(" ", "")
    if system not in ("wgs84", "gcj02"):
        return refuse("coords", "bad_coords")
    if system == "gcj02":
        lat, lon = gcj02_to_wgs84(lat, lon)
    try:
        hours = parse_hours(values["hours"])
    except ValueError:
        return refuse("hours", "bad_hours")
    try:
        amenities = parse_amenities(values.get("amenities", ""))
    except ValueError as unknown:
        return BadRow(number, "amenities", "bad_amenity", str(unknown)[:40])
    prices = parse_prices(values.get("prices", ""))
    if prices is None:
        return refuse("prices", "bad_prices")
    if prices and kind != "merchant":
        return refuse("prices", "prices_not_merchant")
    phone = values.get("phone", "")
    if phone and not _PHONE.match(phone):
        return refuse("phone", "bad_phone")
    return PlaceRow(
        kind=kind,
        name=values["name"],
        address=values["address"],
        town=values.get("town", ""),
        lat=round(lat, 7),
        lon=round(lon, 7),
        hours=hours,
        amenities=amenities,
        benefit=values.get("benefit", ""),
        prices=prices,
        phone=phone,
    )


def parse_amenities(text: str) -> tuple[str, ...]:
    """Amenity keys from `seats, water` or `座椅、热水`; ValueError naming an unknown word."""
    found: list[str] = []
    for word in filter(None, (w.strip().lower() for w in re.split(r"[,，、;；/\s]+", text))):
        key = word if word in AMENITIES else _AMENITY_WORDS.get(word)
        if key is None:
            raise ValueError(word)
        if key not in found:
            found.append(key)
    return tuple(sorted(found, key=AMENITIES.index))


def parse_prices(text: str) -> tuple[PriceItem, ...] | None:
    """Items from `热饭一份=30; 矿泉水=5`; None if an item has no whole number of points."""
    items: list[PriceItem] = []
    for part in filter(None, (p.strip() for p in re.split(r"[;；\n]", text))):
        found = _PRICE.match(part)
        if found is None or int(found.group(2)) <= 0 or len(found.group(1)) > NAME_MAX:
            return None
        items.append(PriceItem(found.group(1).strip(), int(found.group(2))))
    return tuple(items)


def accepted_amenities() -> str:
    """What the amenities cell accepts, for the refusal: each key with its first Chinese word."""
    words = {key: word for word, key in reversed(_AMENITY_WORDS.items())}
    return "、".join(f"{words[key]} {key}" for key in AMENITIES)


def prices_to_json(items: Iterable[PriceItem]) -> str:
    return json.dumps([[item.name, item.points] for item in items], ensure_ascii=False)


def prices_from_json(text: str) -> tuple[PriceItem, ...]:
    return tuple(PriceItem(str(name), int(points)) for name, points in json.loads(text or "[]"))


# Where the template's examples stand when the county gave no area and no towns.
EXAMPLE_TOWN, EXAMPLE_LAT, EXAMPLE_LON = "城关镇", 39.9087, 116.3975


def template_xlsx(
    town: str = EXAMPLE_TOWN, lat: float = EXAMPLE_LAT, lon: float = EXAMPLE_LON
) -> bytes:
    """The places template: labelled headers with their keys, and two example rows standing
    in `town` at (lat, lon), WGS-84; the merchant's are given as GCJ-02, as Amap shows them."""
    output = io.BytesIO()
    book = spreadsheet.workbook(output)
    sheet = book.add_worksheet("places")
    bold = book.add_format({"bold": True})
    for column, key in enumerate(COLUMNS):
        sheet.write(0, column, f"{TEMPLATE_LABELS[key]} ({key})", bold)
        sheet.set_column(column, column, 18)
    merchant_lat, merchant_lon = wgs84_to_gcj02(lat + 0.0012, lon + 0.0015)
    examples = [
        (
            "station",
            f"{town}服务驿站",
            f"{town}人民路1号",
            town,
            f"{lat:.5f}",
            f"{lon:.5f}",
            "wgs84",
            "24h",
            "座椅、微波炉、热水、充电、急救箱",
            "",
            "",
            "0854-1234567",
        ),
        (
            "merchant",
            "好味快餐",
            f"{town}人民路8号",
            town,
            f"{merchant_lat:.5f}",
            f"{merchant_lon:.5f}",
            "gcj02",
            "周一-周五 10:00-21:00; 周六-周日 10:00-22:00",
            "热水、充电",
            "联新卡持卡骑手九折",
            "热饭一份=30; 矿泉水=5",
            "13800000000",
        ),
    ]
    for row, example in enumerate(examples, start=1):
        for column, value in enumerate(example):
            sheet.write_string(row, column, value)
    book.close()
    return output.getvalue()


def walking_minutes(metres: float) -> int:
    return max(1, round(metres / 80))  # about 4.8 km/h


def riding_minutes(metres: float) -> int:
    return max(1, round(metres / 250))  # an e-bike in town, about 15 km/h
