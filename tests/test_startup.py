"""The real `python bot.py` process: one-line start-up errors, and a clean stop on signals."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests import engines
from tests.conftest import BOT_SCRIPT, PYTHON, TOKEN, BotProcess, bot_process_env
from tests.fakegram import FakeTelegram, TgUser
from tests.riders import BEIJING, Chat, today_prefix


def run_bot(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, BOT_SCRIPT],
        env=bot_process_env(None, tmp_path, **env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"BOT_TOKEN": ""}, "BOT_TOKEN"),
        ({"BOT_TOKEN": f"{TOKEN} trailing"}, "BOT_TOKEN"),
        ({"MODERATOR_IDS": "1,two,3"}, "MODERATOR_IDS"),
        ({"TIMEZONE": "Asia/Atlantis"}, "TIMEZONE"),
        ({"PAYOUT_SCHEDULE": "61 * * * *"}, "PAYOUT_SCHEDULE"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"HTTPS_PROXY": "ftp://proxy.example:21"}, "HTTPS_PROXY"),
    ],
)
def test_bad_setting_stops_with_one_line_and_exit_2(
    tmp_path: Path, env: dict[str, str], setting: str
) -> None:
    result = run_bot(tmp_path, **env)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert setting in lines[0]
    assert "Traceback" not in result.stderr
    assert "TEST-TOKEN" not in result.stderr


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "mode",
    [
        {},
        {"WEBHOOK_URL": "https://bot.example.org/hook", "WEBHOOK_SECRET": "a-webhook-secret-1234"},
    ],
    ids=["polling", "webhook"],
)
def test_unreachable_bot_api_stops_with_one_line_naming_what_to_check(
    tmp_path: Path, mode: dict[str, str]
) -> None:
    api = f"http://127.0.0.1:{closed_port()}"
    result = run_bot(tmp_path, BOT_API_URL=api, **mode)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0] == (
        f"bot.py: cannot reach the Bot API at {api} without a proxy (connection refused); "
        "check the network, HTTPS_PROXY/ALL_PROXY or BOT_API_URL"
    )
    assert "TEST-TOKEN" not in result.stderr


def test_unreachable_bot_api_shows_the_traceback_at_debug_level(tmp_path: Path) -> None:
    api = f"http://127.0.0.1:{closed_port()}"
    result = run_bot(tmp_path, BOT_API_URL=api, LOG_LEVEL="debug")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("bot.py: cannot reach the Bot API")
    assert "TEST-TOKEN" not in result.stderr


def test_proxy_from_the_environment_is_used_and_named_without_its_password(
    tmp_path: Path,
) -> None:
    proxy = f"127.0.0.1:{closed_port()}"
    result = run_bot(
        tmp_path,
        BOT_API_URL="https://api.telegram.invalid",
        HTTPS_PROXY=f"http://rider:pass-word-9@{proxy}",
    )
    assert result.returncode == 1
    # Refused by the proxy's port, not a failed name look-up: the request went to the proxy.
    assert result.stderr == (
        "bot.py: cannot reach the Bot API at https://api.telegram.invalid through proxy "
        f"http://rider:***@{proxy} (connection refused); "
        "check the network, HTTPS_PROXY/ALL_PROXY or BOT_API_URL\n"
    )


def test_unreadable_config_toml_stops_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[reports]\ndaily_cap = \n", encoding="utf-8")
    result = run_bot(tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "config.toml" in result.stderr
    assert "TEST-TOKEN" not in result.stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_signal_stops_cleanly_with_database_closed(
    fake: FakeTelegram, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    bot = BotProcess(fake, tmp_path)
    await bot.start()
    try:
        fake.send_text(TgUser(1, language_code="en"), "/start")
        await fake.wait_for_messages(1, 1, timeout=30)
    finally:
        code = await bot.stop(stop_signal)
    assert code == 0, bot.log
    assert "database closed" in bot.log
    assert "TEST-TOKEN" not in bot.log
    # The last connection closed cleanly: SQLite folded the write-ahead log back in.
    if engines.ENGINE == "sqlite":
        assert (tmp_path / "bot.db").exists()
        assert not (tmp_path / "bot.db-wal").exists()


async def test_report_spans_a_restart_of_the_real_process(
    fake: FakeTelegram, tmp_path: Path
) -> None:
    chat = Chat(fake, TgUser(77, first_name="阿强", language_code="zh-hans"))
    first = BotProcess(fake, tmp_path)
    await first.start()
    try:
        await chat.agree()
        chat.photo()
        await chat.one()
        chat.location(*BEIJING)
        categories = await chat.one()
    finally:
        assert await first.stop() == 0, first.log
    second = BotProcess(fake, tmp_path)
    await second.start()
    try:
        chat.press(await chat.categorise(categories, "道路隐患"), "提交")
        submitted = await chat.one()
    finally:
        assert await second.stop() == 0, second.log
    assert submitted.text.startswith(f"✅ 已提交！线索编号{today_prefix()}0001")
