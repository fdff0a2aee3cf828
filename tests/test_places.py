"""Stations and merchants: GCJ-02, the places file, near me, open now, place problems."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import zipfile
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from openpyxl import Workbook, load_workbook

from services import places_file as rules
from services.geo import ServiceArea, gcj02_to_wgs84, haversine_m, wgs84_to_gcj02
from services.places_file import check_table, parse_hours, read_table
from settings import Programme
from tests.conftest import ADMIN, BotStarter, RunningBot
from tests.fakegram import FakeTelegram, SentMessage, TgUser
from tests.riders import Chat

SHANGHAI = ZoneInfo("Asia/Shanghai")
BOSS = TgUser(ADMIN, language_code="en")

# (WGS-84 lat, lon), (GCJ-02 lat, lon) pairs published with two independent implementations:
# the first three are the test vectors of googollee/eviltransform (python/test.py: Shanghai,
# Shenzhen, Beijing); the last is the example in the README test of wandergis/coordtransform
# (wgs84togcj02(116.404, 39.915) -> 116.41024449916938, 39.91640428150164).
REFERENCE_PAIRS = [
    ((31.1774276, 121.5272106), (31.17530398364597, 121.531541859215)),
    ((22.543847, 113.912316), (22.540796131694766, 113.9171764808363)),
    ((39.911954, 116.377817), (39.91334545536069, 116.38404722455657)),
    ((39.915, 116.404), (39.91640428150164, 116.41024449916938)),
]


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE_PAIRS)
def test_gcj02_matches_published_reference_points(
    wgs: tuple[float, float], gcj: tuple[float, float]
) -> None:
    assert haversine_m(*wgs84_to_gcj02(*wgs), *gcj) < 5
    assert haversine_m(*gcj02_to_wgs84(*gcj), *wgs) < 5
    assert haversine_m(*wgs, *gcj) > 300  # the offset the conversion removes is real


def test_gcj02_is_not_applied_outside_china() -> None:
    assert gcj02_to_wgs84(48.8584, 2.2945) == (48.8584, 2.2945)


HEADER = [
    "类型 (kind)",
    "名称 (name)",
    "地址 (address)",
    "镇街 (town)",
    "纬度 (lat)",
    "经度 (lon)",
    "坐标系 (coords)",
    "营业时间 (hours)",
    "设施 (amenities)",
    "优惠 (benefit)",
    "积分兑换 (prices)",
    "电话 (phone)",
]
# Around Tiananmen (WGS-84), a few hundred metres apart.
STATION_24H = ["station", "天安门驿站", "东长安街1号", "东城", "39.9087", "116.3975", "wgs84",
               "24h", "seats, water, 急救箱", "", "", "010-12345678"]  # fmt: skip
STATION_DAY = ["station", "前门驿站", "前门大街2号", "东城", "39.9000", "116.3975", "wgs84",
               "mon-sun 08:00-20:00", "seats, microwave", "", "", ""]  # fmt: skip
STATION_FAR = ["station", "西城驿站", "西单3号", "西城", "39.9087", "116.3700", "wgs84",
               "24h", "toilet", "", "", ""]  # fmt: skip
MERCHANT = ["merchant", "好味快餐", "前门大街8号", "东城", "39.9090", "116.3990", "wgs84",
            "24h", "water", "持卡九折", "热饭一份=30; 矿泉水=5", "13800000000"]  # fmt: skip


def csv_file(*rows: list[str], bom: bool = True) -> bytes:
    lines = [",".join(HEADER), *(",".join(f'"{c}"' for c in row) for row in rows)]
    return ("\ufeff" if bom else "").encode() + "\n".join(lines).encode()


def xlsx_file(header: list[str], *rows: list[str]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_rows_are_checked_one_by_one() -> None:
    bad_kind = [*STATION_24H[:0], "shop", *STATION_24H[1:]]
    bad_hours = [*STATION_DAY[:7], "whenever", *STATION_DAY[8:]]
    bad_amenity = [*STATION_FAR[:8], "jacuzzi", *STATION_FAR[9:]]
    prices_on_station = [*STATION_FAR[:10], "饭=3", *STATION_FAR[11:]]
    checked = check_table(
        read_table(
            csv_file(STATION_24H, bad_kind, bad_hours, bad_amenity, prices_on_station, MERCHANT),
            "places.csv",
        )
    )
    assert [(r.row, r.column, r.reason) for r in checked.refusals] == [
        (3, "kind", "bad_kind"),
        (4, "hours", "bad_hours"),
        (5, "amenities", "bad_amenity"),
        (6, "prices", "prices_not_merchant"),
    ]
    assert [row.name for row in checked.rows] == ["天安门驿站", "好味快餐"]
    assert checked.rows[0].amenities == ("seats", "water", "first_aid")
    assert [(i.name, i.points) for i in checked.rows[1].prices] == [("热饭一份", 30), ("矿泉水", 5)]


def test_what_county_files_say_is_understood_and_an_unknown_word_is_named() -> None:
    """A county's own file: hours with no days (every day), facilities as its staff write
    them; an unknown facility is named, so the admin knows which word to change."""
    every_day = [*STATION_DAY[:7], "08:00-22:00", "充电、洗手间、药箱、饮水机", *STATION_DAY[9:]]
    unknown = [*STATION_FAR[:8], "座椅、WiFi", *STATION_FAR[9:]]
    checked = check_table(read_table(csv_file(every_day, unknown), "places.csv"))
    (place,) = checked.rows
    assert place.amenities == ("water", "phone_charging", "toilet", "first_aid")
    sunday = datetime(2026, 11, 8, tzinfo=SHANGHAI)
    assert place.hours.open_at(sunday.replace(hour=8))
    assert place.hours.open_at(sunday.replace(hour=21, minute=59))
    assert not place.hours.open_at(sunday.replace(hour=22))
    (refusal,) = checked.refusals
    assert (refusal.row, refusal.column, refusal.reason, refusal.value) == (
        3,
        "amenities",
        "bad_amenity",
        "wifi",
    )


def test_gcj02_rows_are_stored_as_wgs84() -> None:
    (wgs, gcj) = REFERENCE_PAIRS[3]
    row = [*STATION_24H[:4], str(gcj[0]), str(gcj[1]), "gcj02", *STATION_24H[7:]]
    (place,) = check_table(read_table(csv_file(row, bom=False), "p.csv")).rows
    assert haversine_m(place.lat, place.lon, *wgs) < 5


def test_hours_edges_and_overnight() -> None:
    day = parse_hours("周一-周五08:00-20:00; sat 22:00-02:00")
    friday = datetime(2026, 11, 6, tzinfo=SHANGHAI)  # a Friday
    assert not day.open_at(friday.replace(hour=7, minute=59))
    assert day.open_at(friday.replace(hour=8, minute=0))
    assert day.open_at(friday.replace(hour=19, minute=59))
    assert not day.open_at(friday.replace(hour=20, minute=0))
    sunday_early = datetime(2026, 11, 8, 1, 30, tzinfo=SHANGHAI)  # Saturday night runs on
    assert day.open_at(sunday_early)
    assert not day.open_at(sunday_early.replace(hour=2))


# --- end to end -------------------------------------------------------------------------


ADMINS: dict[int, Chat] = {}


async def load_places(fake: FakeTelegram, data: bytes, name: str = "places.csv") -> str:
    """Send the file as the admin; the admin's answer."""
    admin = admin_chat(fake)
    fake.send_document(BOSS, data, file_name=name, mime_type="text/csv")
    return (await admin.one()).text


def admin_chat(fake: FakeTelegram) -> Chat:
    """The admin's one chat in this test (reading on from what was read before)."""
    if id(fake) not in ADMINS:
        ADMINS.clear()
        ADMINS[id(fake)] = Chat(fake, BOSS)
    return ADMINS[id(fake)]


async def test_a_file_with_bad_rows_changes_nothing_and_says_why(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    assert "Imported 2 places" in await load_places(fake, csv_file(STATION_24H, MERCHANT))
    bad = [*STATION_DAY[:4], "91", *STATION_DAY[5:]]
    answer = await load_places(fake, csv_file(STATION_FAR, bad))
    assert "1 rows are not valid" in answer
    assert "row 3 lat “91”: coordinates out of range" in answer
    current = await bot.app.bot_data["runtime"].places.current_set()
    assert current.place_count == 2  # the good file still stands


async def test_a_refused_row_names_the_word_and_what_the_column_accepts(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    bad_kind = ["shop", *STATION_24H[1:]]
    bad_amenity = [*STATION_FAR[:8], "jacuzzi", *STATION_FAR[9:]]
    no_hours = [*STATION_DAY[:7], "", *STATION_DAY[8:]]
    twice = [*STATION_24H[:2], *STATION_FAR[2:]]
    answer = await load_places(fake, csv_file(STATION_24H, bad_kind, bad_amenity, no_hours, twice))
    assert "row 3 kind “shop”: kind must be station or merchant" in answer
    assert (
        "row 4 amenities “jacuzzi”: unknown amenity; accepted: 座椅 seats、微波炉 microwave"
        in answer
    )
    assert "、充电 phone_charging" not in answer  # each facility once, by its first word
    assert "手机充电 phone_charging" in answer
    assert "政策咨询 policy_advice" in answer
    assert "row 5 hours: required, empty" in answer
    assert "row 6 name: same name as row 2" in answer


async def test_the_template_stands_in_the_county(start_bot: BotStarter, fake: FakeTelegram) -> None:
    """The template's examples are in the configured service area, not in Beijing; they
    import as they are."""
    area = ServiceArea.box(25.9, 106.5, 26.3, 106.9)  # 惠水县, roughly
    await start_bot(programme=dataclasses.replace(Programme(), service_area=area))
    admin = Chat(fake, BOSS)
    fake.send_text(BOSS, "/places template")
    template = await admin.one()
    assert template.file_bytes is not None
    sheet = load_workbook(io.BytesIO(template.file_bytes)).active
    rows = [[str(cell.value or "") for cell in row] for row in sheet.iter_rows(min_row=2)]
    checked = check_table(read_table(template.file_bytes, "places-template.xlsx"))
    assert not checked.refusals
    assert all(area.contains(place.lat, place.lon) for place in checked.rows)
    assert rows[1][6] == "gcj02"  # the merchant's shows Amap's coordinates at work
    fake.send_document(BOSS, template.file_bytes, file_name="places-template.xlsx")
    assert "Imported 2 places" in (await admin.one()).text


async def test_a_valid_file_replaces_the_set_and_undo_brings_it_back(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    xlsx = xlsx_file(HEADER, STATION_24H, STATION_DAY, STATION_FAR)
    fake.send_document(BOSS, xlsx, file_name="places.xlsx", mime_type="application/octet-stream")
    admin = admin_chat(fake)
    assert "Imported 3 places (3 stations, 0 merchants)" in (await admin.one()).text
    assert "Imported 1 places" in await load_places(fake, csv_file(MERCHANT))
    fake.send_text(BOSS, "/places undo")
    assert "previous list is back (3 places)" in (await admin.one()).text
    fake.send_text(BOSS, "/places undo")
    assert "no previous list" in (await admin.one()).text


async def test_headers_in_any_language_and_the_template(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    admin = admin_chat(fake)
    fake.send_text(BOSS, "/places template")
    template = await admin.one()
    assert template.kind == "document"
    assert template.file_bytes is not None
    sheet = load_workbook(io.BytesIO(template.file_bytes)).active
    keys = [str(cell.value).rsplit("(", 1)[1].rstrip(")") for cell in sheet[1]]
    assert keys[:3] == ["kind", "name", "address"]
    english = [h.replace(h.split(" (")[0], "Label") for h in HEADER]
    fake.send_document(BOSS, xlsx_file(english, STATION_24H), file_name="p.xlsx")
    assert "Imported 1 places" in (await admin.one()).text
    fake.send_document(BOSS, xlsx_file(["Name", "Where"], ["a", "b"]), file_name="p.xlsx")
    assert "Missing columns: kind, address, lat, lon, coords, hours" in (await admin.one()).text


async def test_riders_cannot_load_places(bot: RunningBot, fake: FakeTelegram) -> None:
    rider = Chat(fake, TgUser(501))
    await rider.agree()
    fake.send_document(rider.user, csv_file(STATION_24H), file_name="p.csv")
    assert "管理员" in (await rider.one()).text
    assert await bot.app.bot_data["runtime"].places.current_set() is None


async def ask_then_share(rider: Chat, lat: float, lon: float) -> None:
    """/nearby with no location today asks for one (and lists towns); then share it."""
    rider.text("/nearby")
    await rider.next(2)
    rider.location(lat, lon)


def at_local(bot: RunningBot, hour: int, minute: int) -> None:
    """Pretend it is hour:minute today in Asia/Shanghai for the places service."""
    moment = datetime(2026, 11, 6, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)
    bot.app.bot_data["runtime"].clock.source = lambda: moment


async def test_nearby_with_a_location_lists_open_places_with_venues(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    await load_places(fake, csv_file(STATION_24H, STATION_DAY, STATION_FAR, MERCHANT))
    at_local(bot, 12, 0)
    rider = Chat(fake, TgUser(502, language_code="en"))
    await rider.agree()
    await ask_then_share(rider, 39.9087, 116.3980)
    listing, *venues = await rider.next(4)
    assert "Tiananmen" not in listing.text
    lines = listing.text.split("\n\n")
    assert lines[1].startswith("1. 🏠 天安门驿站")
    assert "40 m" in lines[1]
    assert "min walk" in lines[1]
    assert "🪑seats 🚰hot/drinking water ⛑️first aid" in lines[1]
    assert "open 24 hours" in lines[1]
    assert lines[2].startswith("2. 🏠 前门驿站")
    assert "Mon-Sun 08:00-20:00" in lines[2]
    assert "好味快餐" not in listing.text  # merchants only when asked
    assert [v.kind for v in venues] == ["venue"] * 3
    assert venues[0].params["title"] == "天安门驿站"
    rider.press(listing, "merchants too")
    with_merchants = (await rider.next(4))[0]
    assert "2. 🏪 好味快餐" in with_merchants.text
    assert "热饭一份 30 points" in with_merchants.text
    rider.press(with_merchants, "3 more")
    more = (await rider.next(2))[0]
    assert more.text.split("\n\n")[1].startswith("4. 🏠 西城驿站")


async def test_open_now_at_the_edges_of_opening_hours(bot: RunningBot, fake: FakeTelegram) -> None:
    await load_places(fake, csv_file(STATION_DAY))
    rider = Chat(fake, TgUser(503, language_code="en"))
    await rider.agree()
    at_local(bot, 7, 59)  # 23:59 UTC the day before: the zone decides, not UTC
    await ask_then_share(rider, 39.9000, 116.3975)
    assert "No station near you is open" in (await rider.one()).text
    at_local(bot, 8, 0)
    rider.text("/nearby")  # a minute later: the same location, and it says so
    listing = (await rider.next(2))[0].text
    assert "1. 🏠 前门驿站" in listing
    assert "from your location 1 min ago" in listing
    at_local(bot, 20, 0)
    rider.text("/nearby")  # twelve hours later: where is the rider now?
    ask, _towns = await rider.next(2)
    assert ask.text.startswith("📍 Tap")
    rider.location(39.9000, 116.3975)
    assert "No station near you is open" in (await rider.one()).text


async def test_nearby_without_a_location_asks_for_one_and_lists_towns(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    await load_places(fake, csv_file(STATION_24H, STATION_DAY, STATION_FAR))
    at_local(bot, 12, 0)
    rider = Chat(fake, TgUser(504))
    await rider.agree()
    rider.text("🏠 附近驿站")
    ask, towns = await rider.next(2)
    assert any(text == "📍 发送我的位置" for text, _ in ask.buttons())
    assert [t for t, _ in towns.buttons()] == ["东城 (2)", "西城 (1)"]
    rider.press(towns, "东城")
    listing = (await rider.next(3))[0]
    assert "天安门驿站" in listing.text
    assert "前门驿站" in listing.text
    assert "🟢 现在开着" in listing.text


async def test_a_place_problem_reaches_the_admins_and_the_fix_shows(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    await load_places(fake, csv_file(STATION_24H))
    rider, venue = await asked_what_is_wrong(fake, 505)
    assert not [m for m in fake.sent_to(BOSS.id) if "天安门驿站" in m.text]  # not yet: it asks
    rider.press(venue, "Closed")
    prompt = await rider.one()
    assert prompt.text.startswith("📷")
    assert venue.buttons() == []  # the card's question is answered
    admin = admin_chat(fake)
    notice = await admin.one()
    assert "#1" in notice.text
    assert "天安门驿站" in notice.text
    assert "🚪 关门了" in notice.text  # the admin never chose a language: the default
    assert "/places fixed 1" in notice.text
    fake.send_text(BOSS, "/places problems")
    assert "#1 天安门驿站: 🚪 Closed" in (await admin.one()).text
    fake.send_text(BOSS, "/places fixed 1")
    assert "marked fixed" in (await admin.one()).text
    rider.text("/nearby")
    today = datetime.now(SHANGHAI).strftime("%Y-%m-%d")
    assert f"checked on {today}" in (await rider.next(2))[0].text


async def asked_what_is_wrong(fake: FakeTelegram, rider_id: int) -> tuple[Chat, SentMessage]:
    """A new English rider near 天安门驿站 taps its card's ⚠️ button; the card's buttons
    become the choices of what is wrong. The rider's chat, and the card."""
    rider = Chat(fake, TgUser(rider_id, language_code="en"))
    await rider.agree()
    await ask_then_share(rider, 39.9087, 116.3975)
    _, venue = await rider.next(2)
    rider.press(venue, "Something wrong")
    await fake.wait_for(lambda: any("Closed" in text for text, _ in venue.buttons()))
    return rider, venue


async def test_a_made_up_kind_of_problem_alerts_nobody(bot: RunningBot, fake: FakeTelegram) -> None:
    await load_places(fake, csv_file(STATION_24H))
    rider, venue = await asked_what_is_wrong(fake, 509)
    place_id = venue.button("Closed").split(":")[1]
    before = len(fake.callback_answers)
    fake.press_button(rider.user, venue, f"pwhat:{place_id}:fire")
    await fake.wait_for(lambda: len(fake.callback_answers) > before)
    assert "expired" in fake.callback_answers[-1].get("text", "")
    await bot.settled(fake)
    assert not [m for m in fake.sent_to(BOSS.id) if "天安门驿站" in m.text]
    assert await bot.app.bot_data["runtime"].places.open_problems() == []


async def test_one_rider_cannot_flood_the_admins_with_place_problems(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    await load_places(fake, csv_file(STATION_24H, STATION_DAY, STATION_FAR, MERCHANT))
    rider, venue = await asked_what_is_wrong(fake, 507)
    flooder = rider.user
    closed = venue.button("Closed")
    for _ in range(10):  # the same button, pressed again and again
        fake.press_button(flooder, venue, closed)
    await bot.settled(fake)
    admin = admin_chat(fake)
    assert len([m for m in fake.sent_to(BOSS.id) if "天安门驿站" in m.text]) == 1
    await admin.one()

    other, venue = await asked_what_is_wrong(fake, 508)
    other.press(venue, "broken")
    await fake.wait_for(  # thanked, and may add a photo
        lambda: any(m.text.startswith("📷") for m in fake.sent_to(other.user.id))
    )
    await bot.settled(fake)
    assert len([m for m in fake.sent_to(BOSS.id) if "天安门驿站" in m.text]) == 1  # merged

    places = bot.app.bot_data["runtime"].places
    ids = [row[0] for row in await bot.app.bot_data["runtime"].db.fetchall(
        "SELECT id FROM places ORDER BY id")]  # fmt: skip
    outcomes = [await places.flag_problem(flooder.id, place_id, "closed") for place_id in ids]
    assert outcomes[-1] == "too_many"  # 3 an hour: the fourth place is refused
    assert all(isinstance(outcome, int) for outcome in outcomes[:-1])
    await bot.settled(fake)
    notices = [m for m in fake.sent_to(BOSS.id) if "/places fixed" in m.text]
    assert len(notices) == 3  # 天安门驿站 once, and the two places nobody had flagged yet


async def test_a_location_nobody_asked_for_goes_to_the_report(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    await load_places(fake, csv_file(STATION_24H))
    rider = Chat(fake, TgUser(506))
    await rider.agree()
    rider.location(39.9087, 116.3975)
    assert (await rider.one()).text.startswith("请先发一张隐患照片")
    rider.text("/nearby")
    await rider.next(2)  # asks for a location
    reply = await rider.report()  # a draft in progress: its location is the hazard's
    assert "R-" in reply.text
    rider.text("/nearby")  # the report's location counts as today's
    assert "天安门驿站" in (await rider.next(2))[0].text


def huge_used_range(*rows: list[str]) -> bytes:
    """A valid places file whose sheet claims A1:XFD1048576: a cell in its last corner."""
    book = Workbook()
    sheet = book.active
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    sheet.cell(row=1_048_576, column=16_384, value="x")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_a_tiny_file_with_a_huge_used_range_is_read_within_bounds(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    data = huge_used_range(STATION_24H, MERCHANT)
    assert len(data) < 20_000
    rider = Chat(fake, TgUser(509, language_code="en"))
    await rider.agree()
    answer = await load_places(fake, data, name="places.xlsx")
    assert answer.startswith("✅ Imported 2 places"), answer  # the far corner is never read
    rider.text("/help")  # the bot answered others all along (the file is read apart)
    assert "/report" in (await rider.one()).text


def test_a_reader_past_its_memory_is_refused_not_the_bot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 600 MB cell packed into a file of under a megabyte (an XLSX is a zip)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx_file(HEADER, STATION_24H))) as real:
        parts = {name: real.read(name) for name in real.namelist()}
    sheet = parts.pop("xl/worksheets/sheet1.xml")
    head, _, _ = sheet.partition(b"</sheetData>")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as bomb:
        for name, part in parts.items():
            bomb.writestr(name, part)
        with bomb.open("xl/worksheets/sheet1.xml", "w") as cells:
            cells.write(head + b'<row r="3"><c r="A3" t="inlineStr"><is><t>')
            for _ in range(600):
                cells.write(b"A" * 1_000_000)
            cells.write(b"</t></is></c></row></sheetData></worksheet>")
    assert len(out.getvalue()) < rules.MAX_FILE_BYTES
    monkeypatch.setattr(rules, "READ_MEMORY_BYTES", 400 * 1024 * 1024)
    with pytest.raises(rules.PlacesFileError) as refused:
        asyncio.run(rules.check_file_apart(out.getvalue(), "places.xlsx"))
    assert refused.value.key == "too_hard"


async def test_a_fresh_location_after_nearby_is_for_nearby_and_the_list_says_which(
    bot: RunningBot, fake: FakeTelegram
) -> None:
    """/nearby with a location from a few minutes ago lists from it and says so; a location
    sent right after (the rider moved) lists again from there, not as a report's place."""
    await load_places(fake, csv_file(STATION_24H))
    at_local(bot, 12, 0)
    rider = Chat(fake, TgUser(507, language_code="zh-hans"))
    await rider.agree()

    async def listing() -> str:
        await bot.settled(fake)
        lists = [m.text for m in fake.sent_to(507)[rider.seen :] if m.text.startswith("🏠")]
        rider.seen = len(fake.sent_to(507))
        assert len(lists) == 1, lists
        return lists[0]

    await ask_then_share(rider, 39.9087, 116.3975)
    assert "（按你刚发的位置）" in await listing()
    at_local(bot, 12, 3)
    rider.text("/nearby")
    assert "按你3分钟前发的位置" in await listing()
    rider.location(39.9087, 116.3975)
    assert "（按你刚发的位置）" in await listing()
    assert all("请先发一张隐患照片" not in m.text for m in fake.sent_to(507))
