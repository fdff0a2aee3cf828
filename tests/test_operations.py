"""Running it for real: check, backup and restore, webhook mode, logs an operator can use."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import sqlite3
import subprocess
from pathlib import Path

import aiohttp
import pytest

from services.audit import audit
from storage.db import Database
from tests.conftest import (
    ADMIN,
    BOT_SCRIPT,
    MODERATOR,
    MODERATOR_CHAT,
    PYTHON,
    TOKEN,
    BotProcess,
    bot_process_env,
)
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import Chat, reference_in

SECRET = "s3cret-token-for-tests"


def run(
    tmp_path: Path, fake: FakeTelegram | None, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, BOT_SCRIPT, *args],
        env=bot_process_env(fake, tmp_path, **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_check_passes_against_a_working_server(fake: FakeTelegram, tmp_path: Path) -> None:
    result = await asyncio.to_thread(run, tmp_path, fake, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["ok", "ok", "ok", "ok", "ok"]
    assert "schema version" in lines[1]
    assert lines[2].endswith("without a proxy (@fake_bot)")
    assert lines[-1] == "ok    updates (0 waiting at Telegram)"
    assert TOKEN not in result.stdout + result.stderr


async def test_check_warns_when_updates_wait_and_none_are_written_down(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    fake.send_text(TgUser(4242), "/start")  # Telegram holds it; no bot fetches it
    result = await asyncio.to_thread(run, tmp_path, fake, "check")
    assert result.returncode == 0, result.stdout + result.stderr  # a warning, not a failure
    assert (
        "WARN  updates: 1 waiting at Telegram and none ever written down: the bot's poller is "
        "stalled or no bot is running (its log says why)"
    ) in result.stdout.splitlines()


def test_check_fails_when_the_bot_api_is_unreachable(tmp_path: Path) -> None:
    result = run(tmp_path, None, "check", BOT_API_URL=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    last = result.stdout.splitlines()[-1]
    assert last.startswith("FAIL  Bot API")
    assert "without a proxy (connection refused)" in last
    assert TOKEN not in result.stdout + result.stderr


def test_check_names_the_proxy_it_used_and_its_failure_in_one_line(tmp_path: Path) -> None:
    proxy = f"127.0.0.1:{free_port()}"
    result = run(
        tmp_path,
        None,
        "check",
        BOT_API_URL="https://api.telegram.invalid",
        ALL_PROXY=f"http://ops:hunter2-secret@{proxy}",
    )
    assert result.returncode == 1
    assert result.stdout.splitlines()[-1] == (
        "FAIL  Bot API: cannot reach the Bot API at https://api.telegram.invalid through proxy "
        f"http://ops:***@{proxy} (connection refused); "
        "check the network, HTTPS_PROXY/ALL_PROXY or BOT_API_URL"
    )
    assert "hunter2" not in result.stdout + result.stderr


def test_unknown_subcommand_is_refused(tmp_path: Path) -> None:
    result = run(tmp_path, None, "frobnicate")
    assert result.returncode == 2
    assert "usage" in result.stderr


@pytest.mark.sqlite_only  # PostgreSQL is backed up with pg_dump, not `bot.py backup`
async def test_backup_while_running_restores_to_the_same_reports(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    bot = BotProcess(fake, tmp_path, BACKUP_DIR=str(tmp_path / "backups"), BACKUPS_KEPT="2")
    await bot.start()
    try:
        chat = Chat(fake, TgUser(88, language_code="en"))
        await chat.agree()
        reference = reference_in(await chat.report(category="Road hazard"))
        for _ in range(3):  # while the bot runs; only the newest two are kept
            result = await asyncio.to_thread(
                run,
                tmp_path,
                fake,
                "backup",
                BACKUP_DIR=str(tmp_path / "backups"),
                BACKUPS_KEPT="2",
            )
            assert result.returncode == 0, result.stderr
            await asyncio.sleep(1.1)
    finally:
        assert await bot.stop() == 0
    backups = sorted((tmp_path / "backups").glob("bot-*.db"))
    assert len(backups) == 2
    # Restoring is one step: copy the backup over the database file while the bot is stopped.
    restored = tmp_path / "restored.db"
    shutil.copy(backups[-1], restored)
    with sqlite3.connect(restored) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = db.execute("SELECT reference, status FROM reports").fetchall()
    assert rows == [(reference, "pending")]
    database = Database(restored)
    await database.open()
    try:
        assert await audit(database) == []  # what /audit checks, on the restored copy
    finally:
        await database.close()


async def test_webhook_refuses_a_wrong_secret_and_serves_the_right_one(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    """Even at debug level, where PTB logs setWebhook's parameters, the secret stays out."""
    port = free_port()
    bot = _webhook_bot(fake, tmp_path, port, LOG_LEVEL="debug")
    await bot.start()
    try:
        await fake.wait_for(lambda: bool(fake.calls_to("setWebhook")), timeout=30)
        set_hook = fake.calls_to("setWebhook")[-1].params
        assert set_hook["url"] == "https://bot.example.org/telegram/hook"
        assert set_hook["secret_token"] == SECRET
        user = TgUser(99, language_code="en")
        url = f"http://127.0.0.1:{port}/telegram/hook"
        await _listening(port)
        async with aiohttp.ClientSession() as http:
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong-secret-123456"}):
                update = {"update_id": 1, "message": _start_message(user)}
                async with http.post(url, json=update, headers=headers) as response:
                    assert response.status == 403
            update = {"update_id": 2, "message": _start_message(user)}
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            async with http.post(url, json=update, headers=headers) as response:
                assert response.status == 200
            message = {**_start_message(user), "date": "yesterday", "text": "秘密 13900001111"}
            malformed = {"update_id": 3, "message": message}
            async with http.post(url, json=malformed, headers=headers) as response:
                assert response.status == 200  # taken and skipped: Telegram moves past it
        (answer,) = await fake.wait_for_messages(user.id, 1, timeout=30)
        assert answer.text.startswith("Hi Rider!")
    finally:
        assert await bot.stop() == 0, bot.log
    assert "could not parse update 3" in bot.log
    assert "13900001111" not in bot.log
    assert "秘密" not in bot.log
    assert "setWebhook" in bot.log
    assert SECRET not in bot.log
    assert TOKEN not in bot.log


async def _listening(port: int) -> None:
    """Wait until the bot's webhook server accepts connections."""
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError(f"nothing listens on port {port}")


def _start_message(user: TgUser) -> dict[str, object]:
    return {
        "message_id": 1,
        "date": 1_800_000_000,
        "chat": {"id": user.id, "type": "private"},
        "from": user.to_dict(),
        "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    }


async def test_json_logs_carry_update_handler_outcome_and_no_secrets(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    """A full run, from report to payout, leaves no name, phone, account or token in the log."""
    bot = BotProcess(
        fake,
        tmp_path,
        LOG_FORMAT="json",
        MODERATOR_CHAT_ID=str(MODERATOR_CHAT),
        MODERATOR_IDS=str(MODERATOR),
        ADMIN_IDS=str(ADMIN),
    )
    await bot.start()
    try:
        chat = Chat(fake, TgUser(55, first_name="王秘密", language_code="zh-hans"))
        await chat.agree()
        await chat.report(description="电话 13912345678 李四")
        (card,) = await fake.wait_for_messages(MODERATOR_CHAT, 1, timeout=30)
        fake.press_button(TgUser(MODERATOR), card, card.button("✅ 100"))
        # Approved, and asked for payout details: notices, which wait until the rider's
        # answers of the last window leave room (Telegram's ~1 a second into a chat; this bot
        # runs with the real 10 s window), so up to a window after the report's burst.
        await chat.next(2, timeout=30)
        saved = await chat.give_payee("张三丰 13812348000")
        assert saved.text.startswith("收款信息已保存：张** · 138****8000")
        fake.send_text(TgUser(ADMIN), "/payout")
        await fake.wait_for_messages(ADMIN, 2, timeout=30)
        await chat.next(1, timeout=30)  # money on its way (a notice too)
    finally:
        assert await bot.stop() == 0
    entries = [json.loads(line) for line in bot.log.splitlines() if line.startswith("{")]
    assert len(entries) == len(bot.log.splitlines())
    handled = [e for e in entries if e.get("handler")]
    assert {
        "onboarding.start",
        "report.on_photo",
        "report.on_submit",
        "review.on_decision",
        "dispatch.on_text",  # the rider's typed payout details and description
        "money.payout_command",
    } <= {e["handler"] for e in handled}
    assert all(e["outcome"] == "ok" and isinstance(e["update_id"], int) for e in handled)
    for secret in (TOKEN, "TEST-TOKEN", "13812348000", "张三丰", "13912345678", "李四", "王秘密"):
        assert secret not in bot.log


def _webhook_bot(fake: FakeTelegram, tmp_path: Path, port: int, **env: str) -> BotProcess:
    return BotProcess(
        fake,
        tmp_path,
        WEBHOOK_URL="https://bot.example.org/telegram/hook",
        WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        WEBHOOK_SECRET=SECRET,
        **env,
    )


def _peak_rss_kib(pid: int) -> int:
    """The process's peak resident memory since start, or since `_reset_peak_rss`."""
    with open(f"/proc/{pid}/status") as status:
        return int(status.read().split("VmHWM:")[1].split()[0])


def _reset_peak_rss(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as clear:
        clear.write("5")


async def test_webhook_refuses_a_large_body_before_reading_it(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    """An unauthenticated 8 MB POST costs the bot no memory; a real update still works."""
    port = free_port()
    bot = _webhook_bot(fake, tmp_path, port)
    await bot.start()
    assert bot.process is not None
    try:
        await _listening(port)
        url = f"http://127.0.0.1:{port}/telegram/hook"
        _reset_peak_rss(bot.process.pid)
        before = _peak_rss_kib(bot.process.pid)
        body = b'{"update_id": 1, "padding": "' + b"x" * (8 * 1024 * 1024) + b'"}'
        headers = {"X-Telegram-Bot-Api-Secret-Token": "wrong-secret-123456"}
        async with aiohttp.ClientSession() as http:
            try:
                async with http.post(
                    url, data=body, headers={**headers, "Content-Type": "application/json"}
                ) as response:
                    refused = response.status
            except aiohttp.ClientError:
                refused = 0  # the server closed the connection without reading the body
            assert refused == 0 or refused >= 400
            grown = _peak_rss_kib(bot.process.pid) - before
            user = TgUser(98, language_code="en")
            update = {"update_id": 2, "message": _start_message(user)}
            async with http.post(
                url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
            ) as response:
                assert response.status == 200
        (answer,) = await fake.wait_for_messages(user.id, 1, timeout=30)
        assert answer.text.startswith("Hi Rider!")
    finally:
        assert await bot.stop() == 0, bot.log
    print(f"refused with {refused or 'connection closed'}; peak RSS grew by {grown} KiB")
    assert grown < 4 * 1024


async def test_an_update_that_cannot_be_parsed_is_logged_by_id_only_and_skipped(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    bot = BotProcess(fake, tmp_path)
    await bot.start()
    try:
        user = TgUser(97, language_code="en")
        fake.send_text(user, "/start")
        await fake.wait_for_messages(user.id, 1, timeout=30)
        message = {**_start_message(user), "date": "yesterday", "text": "秘密 13900001111"}
        fake.inject({"update_id": 4242, "message": message})
        # Polling moves past it: the next update is answered.
        later = TgUser(96, language_code="en")
        fake.send_text(later, "/start")
        await fake.wait_for_messages(later.id, 1, timeout=30)
    finally:
        assert await bot.stop() == 0, bot.log
    assert "could not parse update 4242" in bot.log
    assert "13900001111" not in bot.log
    assert "秘密" not in bot.log


# --- Cases (即时办): `check` validates the routing -----------------------------------------

ROUTING = """
[[categories]]
key = "wire"
zh = "电线"
en = "Fallen wire"

[[categories]]
key = "pothole"
zh = "坑洼"
en = "Pothole"

[[departments]]
key = "power"
zh = "供电所"
en = "Power company"
chat_id = -1001
categories = ["wire"]
"""


async def test_check_says_cases_are_off_without_departments(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    result = await asyncio.to_thread(run, tmp_path, fake, "check")
    assert "ok    cases off (no [[departments]] in config.toml)" in result.stdout.splitlines()


async def test_check_fails_on_an_unrouted_category_and_an_unreachable_chat(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    (tmp_path / "config.toml").write_text(ROUTING, encoding="utf-8")
    fake.fail_next("getChat", status=400, description="Bad Request: chat not found")
    result = await asyncio.to_thread(run, tmp_path, fake, "check")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[3] == "FAIL  routing: no department handles pothole"
    assert lines[4].startswith("FAIL  department power: chat -1001 unreachable (")
    assert "Chat not found" in lines[4]


async def test_check_passes_when_routing_is_whole(fake: FakeTelegram, tmp_path: Path) -> None:
    text = ROUTING.replace('categories = ["wire"]', 'categories = ["wire", "pothole"]')
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    result = await asyncio.to_thread(run, tmp_path, fake, "check")
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[3:-1] == [  # the last line: updates
        "ok    routing (2 categories)",
        "ok    department power: chat Test group -1001",
    ]


TOWN_ROUTING = """
[towns]
file = "towns.geojson"

[[categories]]
key = "pothole"
zh = "坑洼"
en = "Pothole"
fix_workdays = 3

[[departments]]
key = "chengguan"
zh = "城关镇办"
en = "Chengguan office"
chat_id = -1001
categories = ["pothole"]
towns = ["城关镇"]
"""


async def test_check_names_the_town_a_category_cannot_reach_and_the_calendar(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    from tests.test_towns import COUNTY

    (tmp_path / "towns.geojson").write_text(json.dumps(COUNTY), encoding="utf-8")
    (tmp_path / "config.toml").write_text(TOWN_ROUTING, encoding="utf-8")
    result = await asyncio.to_thread(run, tmp_path, fake, "check")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert "ok    towns file (2 towns, 1 grids)" in lines
    assert "FAIL  routing: no department handles pothole @ 好花红镇, pothole @ -" in lines
    assert any(
        line.startswith(("ok    holiday calendar", "WARN  holiday calendar")) for line in lines
    )


@pytest.mark.parametrize(
    ("geojson", "problem"),
    [
        ("{broken", "towns.file: towns.geojson: not valid JSON"),
        (
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {"name": "大镇"},
                            "geometry": {
                                "type": "Polygon",
                                "coordinates": [[[106 + i * 1e-6, 26.0] for i in range(100_000)]],
                            },
                        }
                    ],
                }
            ),
            "towns.file: towns.geojson: feature 0 (大镇): polygon has over 20000 points",
        ),
        (
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        {
                            "type": "Feature",
                            "properties": {"name": name},
                            "geometry": {
                                "type": "Polygon",
                                "coordinates": [[[x, 0], [x + 1, 0], [x + 1, 1], [x, 1], [x, 0]]],
                            },
                        }
                        for name, x in (("甲镇", 0), ("乙镇", 0.5))
                    ],
                }
            ),
            "towns.file: towns.geojson: 甲镇 and 乙镇 overlap",
        ),
    ],
)
async def test_a_bad_towns_file_is_one_line_at_start_up(
    tmp_path: Path, geojson: str, problem: str
) -> None:
    (tmp_path / "towns.geojson").write_text(geojson, encoding="utf-8")
    (tmp_path / "config.toml").write_text(TOWN_ROUTING, encoding="utf-8")
    result = await asyncio.to_thread(run, tmp_path, None)
    assert result.returncode == 2
    assert problem in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
