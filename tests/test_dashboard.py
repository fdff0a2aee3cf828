"""The county office's page, through the bot's own web server: who gets in (an admin's
signed link, a moderator's Telegram Mini App, nobody else), what its data says (cases with
their deadlines' colours, filters, each case's history, department performance), and that
no rider is named on it. The page itself in a real browser: tests/test_dashboard_browser.py."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from services.dashboard import sign_init_data
from services.signing import seal
from services.towns import Towns
from settings import Programme, Web
from tests.conftest import ADMIN, MODERATOR, BotStarter, RunningBot
from tests.fakegram import FakeTelegram, TgUser
from tests.receivers import free_port
from tests.riders import BEIJING, Chat
from tests.test_cases import press
from tests.test_county_cases import (
    CATEGORIES,
    COUNTY_ROADS_CHAT,
    DEPARTMENTS,
    IN_HAOHUAHONG,
    RIDER,
    RIDER_2,
    TOWN_OFFICE_CHAT,
    TOWN_STAFF,
    TOWNS,
    approved,
)

MOD = TgUser(MODERATOR, first_name="审核员甲")
BOSS = TgUser(ADMIN, first_name="管理员")
STRANGER = TgUser(7001, first_name="路人")


@dataclass
class Office:
    """A running bot with three cases: two in 城关镇 (one accepted), one in 好花红镇."""

    bot: RunningBot
    fake: FakeTelegram
    accepted: str  # 城关镇, accepted by the town office
    waiting: str  # 城关镇, dispatched
    elsewhere: str  # 好花红镇, dispatched to the county roads bureau

    @property
    def url(self) -> str:
        public = self.bot.settings.web.public_url
        assert public is not None
        return f"{public}/dashboard"

    @property
    def runtime(self) -> Any:
        return self.bot.app.bot_data["runtime"]

    async def link(self) -> str:
        """What an admin gets with /dashboard: the signed link."""
        before = len(self.fake.sent_to(BOSS.id))
        self.fake.send_text(BOSS, "/dashboard")
        answers = await self.fake.wait_for_messages(BOSS.id, before + 1)
        link = re.search(r"https?://\S+/dashboard\?\S+", answers[before].text)
        assert link is not None, answers[before].text
        return link[0]


async def open_office(
    start_bot: BotStarter, fake: FakeTelegram, public: str | None = None
) -> Office:
    port = free_port()
    programme = Programme(
        categories=CATEGORIES,
        departments=DEPARTMENTS,
        towns=Towns.from_geojson(TOWNS, "towns.geojson"),
    )
    web = Web("127.0.0.1", port, public or f"http://127.0.0.1:{port}")
    bot = await start_bot(programme=programme, web=web)
    await bot.app.bot_data["runtime"].cases.add_staff("chengguan", TOWN_STAFF.id, ADMIN)
    accepted, card = await approved(fake, RIDER, TOWN_OFFICE_CHAT, BEIJING, seed=1)
    await press(bot, fake, TOWN_STAFF, card, "接单")
    waiting, _ = await approved(fake, RIDER_2, TOWN_OFFICE_CHAT, BEIJING, seed=2)
    elsewhere, _ = await approved(fake, RIDER, COUNTY_ROADS_CHAT, IN_HAOHUAHONG, seed=3)
    await bot.settled(fake)
    return Office(bot, fake, accepted, waiting, elsewhere)


async def fetch(url: str, authorization: str | None = None) -> tuple[int, Any]:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as got:
        text = await got.text()
        if got.content_type == "application/json":
            return got.status, json.loads(text)
        return got.status, text


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["t"][0]


def init_data(bot: RunningBot, user: TgUser, *, age: int = 0, token: str | None = None) -> str:
    fields = {
        "auth_date": str(int(time.time()) - age),
        "query_id": "AAH-test",
        "user": json.dumps({"id": user.id, "first_name": user.first_name, "language_code": "zh"}),
    }
    return sign_init_data(token or bot.settings.bot_token, fields)


async def test_an_admins_link_shows_the_cases_their_history_and_no_rider(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    office = await open_office(start_bot, fake)
    link = await office.link()
    answer = fake.sent_to(BOSS.id)[-1]
    assert "有效至" in answer.text
    assert "请勿转发" in answer.text
    assert answer.buttons() == [("🗺 打开县级工作台", link)]
    status, page = await fetch(link)
    assert status == 200
    assert "县级工作台" in page
    assert 'src="dashboard/static/dashboard.js"' in page
    auth = f"Link {token_of(link)}"

    status, overview = await fetch(f"{office.url}/api/overview", auth)
    assert status == 200
    assert [town["name"] for town in overview["map"]["outlines"]] == ["城关镇", "好花红镇"]
    assert overview["map"]["tiles"] == "none"
    towns = [choice["label"] for choice in overview["filters"]["town"]]
    assert towns == ["城关镇", "好花红镇", "未分区"]
    performance = overview["performance"]
    assert performance["headers"][:3] == ["部门", "派发", "案件"]
    assert {row[0]: row[1] for row in performance["rows"]} == {"城关镇办": 2, "县公路局": 1}

    status, everything = await fetch(f"{office.url}/api/cases", auth)
    assert status == 200
    assert everything["total"] == 3
    rows = {row["reference"]: row for row in everything["cases"]}
    assert set(rows) == {office.accepted, office.waiting, office.elsewhere}
    assert rows[office.accepted]["state_label"] == "处置中"
    assert rows[office.waiting]["state_label"] == "待签收"
    assert rows[office.elsewhere]["town"] == "好花红镇"
    assert rows[office.elsewhere]["department"] == "县公路局"
    assert {p[3]: p[2] for p in everything["points"]} == dict.fromkeys(rows, "green")

    status, in_town = await fetch(f"{office.url}/api/cases?town=好花红镇", auth)
    assert [row["reference"] for row in in_town["cases"]] == [office.elsewhere]
    _, accepted = await fetch(f"{office.url}/api/cases?state=accepted&department=chengguan", auth)
    assert [row["reference"] for row in accepted["cases"]] == [office.accepted]
    _, unzoned = await fetch(f"{office.url}/api/cases?town=-", auth)
    assert unzoned["total"] == 0
    assert unzoned["points"] == []

    status, history = await fetch(f"{office.url}/api/cases/{office.accepted}", auth)
    assert status == 200
    steps = [(e["who"], e["action"], e["state"]) for e in history["events"]]
    assert steps == [("系统", "派发", "待签收"), ("部门", "签收", "处置中")]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", e["at"]) for e in history["events"])
    assert (await fetch(f"{office.url}/api/cases/R-19990101-0001", auth))[0] == 404

    # Ten days later the waiting cases are long past their 4-hour acceptance: red on the map.
    later = datetime.now(UTC) + timedelta(days=10)
    office.runtime.clock.source = lambda: later
    auth = f"Link {token_of(await office.link())}"  # the first link has expired by then
    _, next_day = await fetch(f"{office.url}/api/cases?state=dispatched", auth)
    assert {p[3]: p[2] for p in next_day["points"]} == {
        office.waiting: "red",
        office.elsewhere: "red",
    }
    # Nothing names a rider: not their name, nor their Telegram id.
    said = json.dumps([overview, everything, history, next_day], ensure_ascii=False)
    for rider in (RIDER, RIDER_2):
        assert rider.first_name not in said
        assert not re.search(rf"(?<![\d.]){rider.id}(?![\d.])", said)


async def test_nobody_else_gets_in(start_bot: BotStarter, fake: FakeTelegram) -> None:
    office = await open_office(start_bot, fake)
    bot = office.bot
    api = f"{office.url}/api/cases"
    link = await office.link()
    key = bot.settings.link_key

    assert (await fetch(api))[0] == 401  # no credentials
    status, refused = await fetch(api, f"Link {token_of(link)[:-2]}xx")  # forged
    assert status == 401
    assert "已过期或无效" in refused["message"]
    # A link sealed for someone who is not an admin (a moderator) opens nothing.
    moderator_link = seal(key, "dashboard", (MODERATOR,), int(time.time()) + 3600)
    assert (await fetch(api, f"Link {moderator_link}"))[0] == 403
    # A link for the e-mail's case page is not a link to this page.
    other_purpose = seal(key, "case-page", (ADMIN,), int(time.time()) + 3600)
    assert (await fetch(api, f"Link {other_purpose}"))[0] == 401

    assert (await fetch(api, f"tma {init_data(bot, MOD)}"))[0] == 200
    assert (await fetch(api, f"tma {init_data(bot, BOSS)}"))[0] == 200
    status, refused = await fetch(api, f"tma {init_data(bot, RIDER)}")  # a real rider
    assert status == 403
    assert "没有查看县级工作台的权限" in refused["message"]
    assert (await fetch(api, f"tma {init_data(bot, STRANGER)}"))[0] == 403
    assert (await fetch(api, f"tma {init_data(bot, MOD, age=2 * 86400)}"))[0] == 401  # stale
    other_bot = "123456:" + "A" * 35
    assert (await fetch(api, f"tma {init_data(bot, MOD, token=other_bot)}"))[0] == 401
    forged = init_data(bot, RIDER).replace(str(RIDER.id), str(MODERATOR))
    assert (await fetch(api, f"tma {forged}"))[0] == 401
    assert (await fetch(api, "Bearer whatever"))[0] == 401

    # The link expires: a day later (link_hours = 24) the page and its data say so.
    later = datetime.now(UTC) + timedelta(hours=24, minutes=1)
    office.runtime.clock.source = lambda: later
    status, page = await fetch(link)
    assert status == 401
    assert "链接已过期或无效" in page
    assert (await fetch(api, f"Link {token_of(link)}"))[0] == 401
    # Every answer keeps the page to its own files and its address from tile servers.
    async with aiohttp.ClientSession() as http, http.get(link) as got:
        assert "default-src 'none'" in got.headers["Content-Security-Policy"]
        assert got.headers["Referrer-Policy"] == "no-referrer"


async def test_dashboard_by_role(start_bot: BotStarter, fake: FakeTelegram) -> None:
    office = await open_office(start_bot, fake, public="https://county.example/bot")
    runtime = office.runtime
    fake.send_text(BOSS, "/dashboard")
    link, app = await fake.wait_for_messages(BOSS.id, len(fake.sent_to(BOSS.id)) + 2)
    assert link.buttons()[0][1].startswith("https://county.example/bot/dashboard?t=")
    assert app.buttons() == [("🗺 打开县级工作台", "https://county.example/bot/dashboard?lang=zh")]

    before = len(fake.sent_to(MOD.id))
    fake.send_text(MOD, "/dashboard")
    (only,) = (await fake.wait_for_messages(MOD.id, before + 1))[before:]
    assert "在 Telegram 内打开" in only.text
    assert only.buttons() == [("🗺 打开县级工作台", "https://county.example/bot/dashboard?lang=zh")]

    chat = Chat(fake, STRANGER)
    await chat.agree()
    fake.send_text(STRANGER, "/dashboard")
    refusal = await chat.one()
    assert "dashboard" not in refusal.text
    assert "https://" not in refusal.text
    assert not refusal.buttons() or all("dashboard" not in data for _, data in refusal.buttons())
    assert runtime.dashboard.url == "https://county.example/bot/dashboard"


async def test_without_public_url_an_admin_is_told_what_to_set(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    await start_bot()
    fake.send_text(BOSS, "/dashboard")
    (answer,) = await fake.wait_for_messages(BOSS.id, 1)
    assert "PUBLIC_URL" in answer.text


def test_init_data_is_checked_as_telegram_documents_it() -> None:
    """The example of Telegram's own algorithm: HMAC-SHA256 of the sorted fields, keyed by
    HMAC-SHA256("WebAppData", token); a changed field or hash fails."""
    from services.dashboard import init_data_user

    token = "654321:" + "B" * 35
    now = int(time.time())
    fields = {"auth_date": str(now), "user": json.dumps({"id": 42, "language_code": "en"})}
    signed = sign_init_data(token, fields)
    assert init_data_user(token, signed, now) == (42, "en")
    assert init_data_user(token, signed.replace("42", "43"), now) is None
    assert init_data_user(token, signed + "0", now) is None
    assert init_data_user(token, signed, now + 86400 + 1) is None
    assert init_data_user(token, "", now) is None
    no_user = sign_init_data(token, {"auth_date": str(now)})
    assert init_data_user(token, no_user, now) is None


@pytest.mark.parametrize("tiles", ["none", "osm", "amap", "tianditu"])
def test_tiles_setting(tiles: str, tmp_path: Any) -> None:
    from settings import SettingsError, load_settings

    config = tmp_path / "config.toml"
    key = '\ntianditu_key = "browser-key"' if tiles == "tianditu" else ""
    config.write_text(f'[dashboard]\ntiles = "{tiles}"{key}\n', encoding="utf-8")
    env = {"BOT_TOKEN": "123:" + "A" * 35, "CONFIG_FILE": str(config)}
    assert load_settings(env, tmp_path).programme.dashboard.tiles == tiles
    config.write_text('[dashboard]\ntiles = "google"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match=r"dashboard\.tiles"):
        load_settings(env, tmp_path)
    config.write_text('[dashboard]\ntiles = "tianditu"\n', encoding="utf-8")
    with pytest.raises(SettingsError, match="tianditu_key"):
        load_settings(env, tmp_path)


def test_amap_points_are_shifted_to_its_datum() -> None:
    from services.geo import to_gcj02

    assert to_gcj02(39.915, 116.404) == pytest.approx((39.91640428, 116.41024450), abs=1e-7)
    assert to_gcj02(51.5, -0.1) == (51.5, -0.1)  # outside China nothing moves
