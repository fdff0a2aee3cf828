"""Cases handed to departments where they already work (e-mail, a signed webhook, Open311)
and their updates taken back, end to end against real local receivers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme

from cli import check_routing
from settings import Channel, DeliveryRules, Department, Programme, Smtp, Web
from tests import images
from tests.conftest import ADMIN, MODERATOR_CHAT, ROOT, BotStarter, RunningBot
from tests.fakegram import FakeTelegram, SentMessage, TgUser
from tests.receivers import (
    SMTP_PASSWORD,
    SMTP_USER,
    MailServer,
    Open311,
    WebhookReceiver,
    free_port,
)
from tests.riders import Chat
from tests.test_cases import RIDER
from tests.test_cases import approve as approve_report

SECRET = "roads-webhook-secret-0123456789"
API_KEY = "open311-api-key-0123456789"
FAST = DeliveryRules(
    retry_seconds=1, retry_max_seconds=2, alert_after=3, timeout_seconds=5, poll_seconds=1
)


def webhook_department(url: str) -> Department:
    channel = Channel("webhook", url=url, secret=SECRET)
    return Department(
        "roads", "公路段", "Roads office", None, ("road_hazard", "public_facility"), (), channel
    )


def email_department() -> Department:
    channel = Channel("email", email="roads@county.example")
    return Department(
        "roads", "公路段", "Roads office", None, ("road_hazard", "public_facility"), (), channel
    )


def open311_department(url: str) -> Department:
    channel = Channel(
        "open311",
        url=url,
        api_key=API_KEY,
        service_codes=(("fire_risk", "FIRE"), ("road_hazard", "FIRE")),
    )
    return Department("power", "供电所", "Power company", None, ("road_hazard",), (), channel)


@pytest.fixture
def ca(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> trustme.CA:
    """A certificate authority the bot trusts (as a county's mail server's would be)."""
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    return authority


@pytest.fixture
async def mail(ca: trustme.CA) -> AsyncIterator[MailServer]:
    server = MailServer(ca)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    found = WebhookReceiver(SECRET)
    await found.start()
    yield found
    await found.stop()


@pytest.fixture
async def open311() -> AsyncIterator[Open311]:
    found = Open311(API_KEY)
    await found.start()
    yield found
    await found.stop()


async def start(start_bot: BotStarter, *departments: Department, **more: Any) -> RunningBot:
    port = free_port()
    return await start_bot(
        programme=Programme(departments=departments, delivery=FAST),
        web=Web("127.0.0.1", port, f"http://127.0.0.1:{port}"),
        **more,
    )


def public(bot: RunningBot) -> str:
    url = bot.settings.web.public_url
    assert url is not None
    return url


async def approve(bot: RunningBot, fake: FakeTelegram, seed: int = 1) -> str:
    """A rider's road hazard, approved at 50 yuan, and the rider told where it went."""
    reference = await approve_report(fake, seed)
    await fake.wait_for(lambda: any(reference in m.text for m in dispatched(fake)))
    await bot.settled(fake)
    return reference


def dispatched(fake: FakeTelegram) -> list[SentMessage]:
    """What the rider was told of dispatches (the same whatever the channel)."""
    return [m for m in fake.sent_to(RIDER.id) if "已派给" in m.text]


async def told(fake: FakeTelegram, chat_id: int, contains: str) -> str:
    await fake.wait_for(lambda: any(contains in m.text for m in fake.sent_to(chat_id)))
    return next(m.text for m in fake.sent_to(chat_id) if contains in m.text)


def sign(body: bytes, secret: str = SECRET, at: int | None = None) -> str:
    stamp = str(int(time.time()) if at is None else at)
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


async def update(
    bot: RunningBot, body: dict[str, Any] | bytes, *, signature: str | None = None
) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Suishoupai-Signature": signature if signature is not None else sign(raw),
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{public(bot)}/departments/roads/updates", data=raw, headers=headers) as got,
    ):
        return got.status, await got.json()


async def events(bot: RunningBot) -> list[tuple[str, str, str]]:
    rows = await bot.app.bot_data["runtime"].db.fetchall(
        "SELECT action, role, to_state FROM case_events ORDER BY id"
    )
    return [(r[0], r[1], r[2]) for r in rows]


# --- e-mail -------------------------------------------------------------------------------


async def test_a_case_by_email_and_closed_from_its_page(
    start_bot: BotStarter, fake: FakeTelegram, mail: MailServer
) -> None:
    smtp = Smtp("127.0.0.1", mail.port, "bot@county.example", SMTP_USER, SMTP_PASSWORD)
    bot = await start(start_bot, email_department(), smtp=smtp)
    reference = await approve(bot, fake)
    assert "已派给公路段" in await told(fake, RIDER.id, "已派给")
    (message,) = await mail.wait_for(1)
    assert mail.logins  # it logged in, after STARTTLS (the server takes no login before)
    assert message["To"] == "roads@county.example"
    assert message["Subject"] == f"【随手拍工单】{reference} 道路隐患 · 未分区"
    text = message.get_body(("plain",))
    assert text is not None
    body = text.get_content()
    assert f"工单编号：{reference}" in body
    assert "uri.amap.com/marker" in body
    assert "办结时限：" in body
    photos = [part for part in message.iter_attachments()]
    assert [p.get_content_type() for p in photos] == ["image/jpeg"]
    jpeg = photos[0].get_content()
    assert jpeg[:2] == b"\xff\xd8"
    assert b"Exif" not in jpeg[:4096]
    link = re.search(r"http://127\.0\.0\.1:\d+/case/\S+", body)
    assert link is not None

    async with aiohttp.ClientSession() as http:
        async with http.get(link[0]) as page:
            html = await page.text()
            assert page.status == 200
        assert reference in html
        assert "🙋 签收" in html
        nonce = re.findall(r'name="nonce" value="([^"]+)"', html)[0]  # the accept form's
        form = aiohttp.FormData({"status": "accepted", "nonce": nonce})
        async with http.post(link[0], data=form) as done:
            assert done.status == 200
            assert "已记录" in await done.text()
        assert "已签收" in await told(fake, RIDER.id, "已签收")
        # The same form sent twice (a double click, a browser's resend) changes nothing.
        again = aiohttp.FormData({"status": "accepted", "nonce": nonce})
        async with http.post(link[0], data=again) as done:
            assert done.status == 200
        huge = aiohttp.FormData({"status": "fixed", "nonce": "big"})
        huge.add_field("photo", b"\xff\xd8" + bytes(10 * 1024 * 1024), filename="big.jpg")
        async with http.post(link[0], data=huge) as refused:
            assert refused.status == 413
            assert "照片太大了" in await refused.text()
        fixed = aiohttp.FormData({"status": "fixed", "nonce": "n2", "note": "已更换井盖"})
        fixed.add_field("photo", images.jpeg(images.picture(5)), filename="after.jpg")
        async with http.post(link[0], data=fixed) as done:
            assert done.status == 200
        async with http.get(link[0]) as page:
            assert "已修好待确认" in await page.text()
    await fake.wait_for(lambda: any("真的修好了吗" in m.text for m in fake.sent_to(RIDER.id)))
    asked = next(m for m in fake.sent_to(RIDER.id) if "真的修好了吗" in m.text)
    assert asked.kind == "photo"
    assert [label for label, _ in asked.buttons()] == ["😊 满意", "🙂 基本满意", "😞 不满意"]
    assert [e[0] for e in await events(bot)] == ["open", "accept", "fixed"]
    assert (await events(bot))[1][1] == "staff"
    async with (
        aiohttp.ClientSession() as http,
        http.get(link[0].replace("/case/", "/case/x")) as forged,
    ):
        assert forged.status == 404
        assert "链接已失效" in await forged.text()


# --- webhook ------------------------------------------------------------------------------


async def test_a_case_by_webhook_and_its_signed_updates_back(
    start_bot: BotStarter, fake: FakeTelegram, receiver: WebhookReceiver
) -> None:
    bot = await start(start_bot, webhook_department(receiver.url))
    reference = await approve(bot, fake)
    (event,) = await receiver.wait_for(1)
    assert receiver.refused == 0
    assert event["schema"] == "suishoupai.case/1"
    assert event["event"] == "case.dispatched"
    case = event["case"]
    assert case["reference"] == reference
    assert case["category"] == {"code": "road_hazard", "name": "道路隐患"}
    assert case["urgency"] == "normal"
    assert case["channel"] == "suishoupai"
    assert case["location"]["crs"] == "WGS84"
    assert case["due_at"].endswith("+08:00")
    assert case["updates_url"].endswith("/departments/roads/updates")
    (photo,) = case["photos"]
    async with aiohttp.ClientSession() as http, http.get(photo["url"]) as got:
        assert got.status == 200
        assert (await got.read())[:2] == b"\xff\xd8"
    assert receiver.keys == [event["id"]]

    accepted = {"id": "u-1", "reference": reference, "status": "accepted"}
    assert await update(bot, accepted) == (
        200,
        {"ok": True, "reference": reference, "state": "accepted"},
    )
    assert "已签收" in await told(fake, RIDER.id, "已签收")
    status, replay = await update(bot, accepted)
    assert (status, replay["replayed"], replay["state"]) == (200, True, "accepted")

    forged = json.dumps({"id": "u-2", "reference": reference, "status": "fixed"}).encode()
    status, body = await update(bot, forged, signature=sign(forged, "not-the-secret-at-all"))
    assert (status, body["error"]) == (401, "bad_signature")
    status, body = await update(bot, forged, signature=sign(forged, at=int(time.time()) - 3600))
    assert (status, body["error"]) == (401, "bad_signature")  # a captured request, replayed late
    status, body = await update(
        bot, {"id": "u-3", "reference": "R-19990101-0001", "status": "fixed"}
    )
    assert (status, body["error"]) == (404, "unknown_case")
    status, body = await update(bot, {"id": "u-4", "reference": reference, "status": "done"})
    assert (status, body["error"]) == (400, "bad_request")
    huge = base64.b64encode(bytes(10 * 1024 * 1024)).decode()
    status, body = await update(
        bot, {"id": "u-5", "reference": reference, "status": "fixed", "photo": huge}
    )
    assert (status, body["error"]) == (413, "too_large")
    assert "5 MB" in body["message"]
    later = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%d")
    extension = {"id": "u-e", "reference": reference, "status": "extension", "due": later}
    status, body = await update(bot, extension | {"note": "需要采购井盖"})
    assert (status, body["state"]) == (200, "accepted")
    extension_asked = await told(fake, MODERATOR_CHAT, "延期")
    assert reference in extension_asked
    assert "需要采购井盖" in extension_asked
    receiver.after_photo = images.jpeg(images.picture(9))
    fixed = {"id": "u-6", "reference": reference, "status": "fixed"}
    status, body = await update(bot, fixed | {"photo_url": f"{receiver.url[:-6]}/after.jpg"})
    assert (status, body["state"]) == (200, "fixed")
    await fake.wait_for(lambda: any("真的修好了吗" in m.text for m in fake.sent_to(RIDER.id)))
    asked = next(m for m in fake.sent_to(RIDER.id) if "真的修好了吗" in m.text)
    assert asked.kind == "photo"
    fake.press_button(RIDER, asked, asked.button("😊 满意"))
    await bot.settled(fake)
    status, body = await update(bot, {"id": "u-7", "reference": reference, "status": "fixed"})
    assert (status, body["error"], body["state"]) == (409, "not_allowed", "confirmed")
    assert [e[0] for e in await events(bot)] == ["open", "accept", "extend_ask", "fixed", "confirm"]
    assert len(receiver.events) == 1  # delivered once


async def test_a_receiver_down_for_an_hour_gets_every_case_once_and_in_order(
    start_bot: BotStarter, fake: FakeTelegram
) -> None:
    receiver = WebhookReceiver(SECRET)  # not started: connections are refused
    bot = await start(start_bot, webhook_department(receiver.url))
    runtime = bot.app.bot_data["runtime"]
    first = await approve(bot, fake, seed=1)
    second = await approve(bot, fake, seed=2)
    alert = await told(fake, ADMIN, "未能送达")
    assert first in alert
    assert "cannot connect" in alert
    admin = Chat(fake, TgUser(ADMIN))
    admin.seen = len(fake.sent_to(ADMIN))
    admin.text("/cases")
    listed = (await admin.one()).text
    assert first in listed
    assert "未送达" in listed
    # An hour passes while it is down: the bot keeps trying, at most retry_max_seconds apart.
    real = runtime.clock.source
    runtime.clock.source = lambda: datetime.fromtimestamp(real().timestamp() + 3600, UTC)
    receiver.status = 503  # up, but failing
    await receiver.start()
    await eventually(lambda: attempts(bot, "HTTP 503"))
    receiver.status = 200
    got = await receiver.wait_for(2)
    assert [e["case"]["reference"] for e in got] == [first, second]
    assert len(set(receiver.keys)) == len(receiver.keys) == 2
    assert "已送达" in await told(fake, ADMIN, "已送达")
    assert await attempts(bot, "cannot connect")
    assert len(await attempts(bot, "HTTP 200")) == 2
    await receiver.stop()


async def attempts(bot: RunningBot, detail: str) -> list[int]:
    """The cases of the delivery attempts whose outcome says `detail`."""
    rows = await bot.app.bot_data["runtime"].db.fetchall(
        "SELECT d.case_id, a.detail FROM case_delivery_attempts a "
        "JOIN case_deliveries d ON d.id = a.delivery_id ORDER BY a.id"
    )
    return [int(r[0]) for r in rows if detail in r[1]]


async def eventually(check: Callable[[], Awaitable[object]]) -> None:
    deadline = time.monotonic() + 30
    while not await check():
        assert time.monotonic() < deadline, "it never happened"
        await asyncio.sleep(0.05)


# --- Open311 ------------------------------------------------------------------------------


async def test_a_case_by_open311_and_its_status_read_back(
    start_bot: BotStarter, fake: FakeTelegram, open311: Open311
) -> None:
    bot = await start(start_bot, open311_department(open311.url))
    reference = await approve(bot, fake)
    await fake.wait_for(lambda: bool(open311.requests))
    assert open311.errors == []
    (request,) = open311.requests.values()
    assert request["service_code"] == "FIRE"
    assert request["description"].startswith(f"[{reference}] 道路隐患")
    assert request["media_url"].startswith(public(bot))
    stored = await bot.app.bot_data["runtime"].db.fetchone("SELECT remote_id FROM case_deliveries")
    assert stored is not None
    assert stored[0] == request["service_request_id"]
    request_id = request["service_request_id"]
    open311.set_status(request_id, "in_progress")
    assert "已签收" in await told(fake, RIDER.id, "已签收")
    polls = open311.polls

    async def read_twice_more() -> bool:
        return open311.polls >= polls + 2

    await eventually(read_twice_more)  # the same status read again changes nothing
    assert [e[:2] for e in await events(bot)] == [("open", "clock"), ("accept", "staff")]
    open311.set_status(request_id, "closed", "已修复，更换井盖")
    await fake.wait_for(lambda: any("真的修好了吗" in m.text for m in fake.sent_to(RIDER.id)))
    assert [e[:2] for e in await events(bot)] == [
        ("open", "clock"),
        ("accept", "staff"),
        ("fixed", "staff"),
    ]
    note = await bot.app.bot_data["runtime"].db.fetchone(
        "SELECT note FROM case_events WHERE action = 'fixed'"
    )
    assert note is not None
    assert note[0] == "已修复，更换井盖"


async def test_open311_that_refuses_a_request_is_retried_and_admins_told(
    start_bot: BotStarter, fake: FakeTelegram, open311: Open311
) -> None:
    channel = Channel("open311", url=open311.url, api_key=API_KEY)  # road_hazard: unknown code
    bot = await start(
        start_bot, Department("power", "供电所", "Power", None, ("road_hazard",), (), channel)
    )
    reference = await approve(bot, fake)
    alert = await told(fake, ADMIN, "未能送达")
    assert reference in alert
    assert "service_code 'road_hazard' not found" in alert
    assert open311.requests == {}
    rows = await bot.app.bot_data["runtime"].db.fetchall("SELECT ok FROM case_delivery_attempts")
    assert len(rows) >= FAST.alert_after
    assert not any(row[0] for row in rows)


# --- check --------------------------------------------------------------------------------


async def test_check_tries_each_channel_without_sending_a_case(
    fake: FakeTelegram,
    tmp_path: Path,
    mail: MailServer,
    receiver: WebhookReceiver,
    open311: Open311,
) -> None:
    from telegram import Bot

    from tests.conftest import settings_for

    roads = email_department()
    hooks = Department(
        "water",
        "水务局",
        "Water office",
        None,
        ("public_facility",),
        (),
        webhook_department(receiver.url).channel,
    )
    power = open311_department(open311.url)
    power = Department("power", "供电所", "Power", None, ("fire_risk",), (), power.channel)
    roads = Department("roads", "公路段", "Roads", None, ("road_hazard",), (), roads.channel)
    smtp = Smtp("127.0.0.1", mail.port, "bot@county.example", SMTP_USER, SMTP_PASSWORD)
    settings = settings_for(
        fake, tmp_path, programme=Programme(departments=(roads, hooks, power)), smtp=smtp
    )
    async with Bot(fake.token, base_url=f"{fake.base_url}/bot") as bot:
        lines = await check_routing(bot, settings)
        assert any(line.startswith("ok    department roads: email: mail server") for line in lines)
        assert any("ok    department water: webhook" in line for line in lines)
        assert any("ok    department power: open311" in line for line in lines)
        assert mail.messages == []
        assert [e["event"] for e in receiver.events] == ["ping"]
        assert open311.requests == {}
        await receiver.stop()
        lines = await check_routing(bot, settings)
        assert any(
            line.startswith("FAIL  department water: webhook cannot connect") for line in lines
        )


async def test_the_readme_receiver_takes_a_signed_case_and_refuses_a_forged_one(
    start_bot: BotStarter, fake: FakeTelegram, tmp_path: Path
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (example,) = [
        block.split("```", 1)[0]
        for block in readme.split("```python\n")[1:]
        if "X-Suishoupai-Signature" in block
    ]
    script = tmp_path / "receiver.py"
    script.write_text(example, encoding="utf-8")
    port = free_port()
    env = {"PATH": os.environ.get("PATH", ""), "PORT": str(port), "POWER_WEBHOOK_SECRET": SECRET}
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}/hooks/suishoupai"

        async def listening() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            writer.close()
            return True

        await eventually(listening)
        bot = await start(start_bot, webhook_department(url))
        await approve(bot, fake)
        assert process.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].startswith("case-"):  # after aiohttp's banner
            lines.append((await asyncio.wait_for(process.stdout.readline(), timeout=30)).decode())
        assert lines[-1].startswith("case-1-")
        rows = await bot.app.bot_data["runtime"].db.fetchall(
            "SELECT detail FROM case_delivery_attempts"
        )
        assert [r[0] for r in rows] == ["HTTP 200"]
        forged = b'{"id": "x"}'
        headers = {"X-Suishoupai-Signature": sign(forged, "someone-elses-secret-123")}
        async with (
            aiohttp.ClientSession() as http,
            http.post(url, data=forged, headers=headers) as refused,
        ):
            assert refused.status == 401
    finally:
        process.terminate()
        await process.wait()
