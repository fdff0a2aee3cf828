"""Shared fixtures: the Bot API stand-in and the real Application running against it."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from telegram import Update

from bot import build_application
from settings import Programme, RateLimits, Settings
from storage.db import Database
from tests import engines
from tests.fakegram import FakeTelegram

# The `money` fixture and the helpers of the ledger and payout tests.
pytest_plugins = ["tests.money_helpers"]

TOKEN = "123456:TEST-TOKEN"
ROOT = Path(__file__).resolve().parent.parent
MODERATOR_CHAT = -100500
ADMIN = 9001
MODERATOR = 9002


def settings_for(fake: FakeTelegram, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings pointing at the stand-in, with a fresh database in `tmp_path`."""
    database = engines.database_for(tmp_path / "bot.db")
    base = Settings(
        bot_token=fake.token,
        bot_api_url=fake.base_url,
        database_path=tmp_path / "bot.db",
        database_url=database if isinstance(database, str) else None,
        moderator_chat_id=MODERATOR_CHAT,
        moderator_ids=frozenset({MODERATOR}),
        admin_ids=frozenset({ADMIN}),
        programme=Programme(),
        # Telegram's 20 a minute into a group and ~1 a second into a private chat, compressed
        # (20 a second, 10 a second) to keep tests short; tests of the caps set their own.
        rate_limits=RateLimits(group_window_seconds=1.0, private_window_seconds=1.0),
    )
    return dataclasses.replace(base, **overrides)


class RunningBot:
    """The real Application, started and stopped the way `run_polling` does it.

    Every exception a handler raises is collected; the fixture fails the test if any was.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = build_application(settings)
        self.errors: list[BaseException] = []

        async def record(update: object, context: Any) -> None:
            if context.error is not None:
                self.errors.append(context.error)

        self.app.add_error_handler(record)

    async def start(self) -> None:
        app = self.app
        await app.initialize()
        if app.post_init:
            await app.post_init(app)
        assert app.updater is not None
        await app.updater.start_polling(
            poll_interval=0, timeout=1, allowed_updates=Update.ALL_TYPES
        )
        await app.start()

    async def settled(self, fake: FakeTelegram) -> None:
        """Wait until every injected update was fetched, every handler has finished and every
        notice due has been delivered (or given up)."""
        processor = self.app.update_processor
        outbox = self.app.bot_data["runtime"].outbox
        quiet = 0
        for _ in range(3000):
            busy = (
                fake.pending_updates
                or not self.app.update_queue.empty()
                or processor.current_concurrent_updates
                or await outbox.in_progress()
            )
            quiet = 0 if busy else quiet + 1
            if quiet >= 5:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the bot did not settle")

    async def run_job(self, fake: FakeTelegram, job: Callable[[Any], Awaitable[None]]) -> None:
        """Run a scheduled job now through the job queue, wait for it and for its notices."""
        finished = asyncio.Event()

        async def run(context: Any) -> None:
            try:
                await job(context)
            finally:
                finished.set()

        assert self.app.job_queue is not None
        self.app.job_queue.run_once(run, 0)
        await asyncio.wait_for(finished.wait(), timeout=30)
        await self.settled(fake)

    async def stop(self) -> None:
        app = self.app
        assert app.updater is not None
        if app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        if app.post_stop:
            await app.post_stop(app)
        await app.shutdown()
        if app.post_shutdown:
            await app.post_shutdown(app)


def database_url(path: Path) -> str:
    """DATABASE_URL for a bot process whose SQLite file would be `path`."""
    database = engines.database_for(path)
    return database if isinstance(database, str) else f"sqlite:///{database}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: checks what only SQLite has (files, PRAGMAs)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if engines.ENGINE == "sqlite":
        return
    skip = pytest.mark.skip(reason="SQLite only: runs in the SQLite pass of the suite")
    for item in items:
        if item.get_closest_marker("sqlite_only"):
            item.add_marker(skip)


def pytest_sessionfinish(session: pytest.Session) -> None:
    engines.drop_template()


@pytest.fixture(autouse=True)
def _fresh_databases() -> Iterator[None]:
    """On PostgreSQL, the databases a test created are dropped after it."""
    yield
    engines.drop_databases()


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh database with every migration applied."""
    database = Database(engines.database_for(tmp_path / "test.db"))
    await database.open()
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """The stand-in; the test fails if a fault it injected never fired."""
    async with FakeTelegram(token=TOKEN) as server:
        yield server
        assert server.unfired_faults() == [], "injected faults never fired"


BotStarter = Callable[..., Awaitable[RunningBot]]


@pytest.fixture
async def start_bot(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[BotStarter]:
    """Start the bot with settings overridden (`programme=...`); stopped after the test.

    The test fails if any handler raised.
    """
    started: list[RunningBot] = []

    async def start(**overrides: Any) -> RunningBot:
        running = RunningBot(settings_for(fake, tmp_path, **overrides))
        await running.start()
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop()
    for running in started:
        assert running.errors == [], f"handlers raised: {running.errors!r}"


@pytest.fixture
async def bot(start_bot: BotStarter) -> RunningBot:
    return await start_bot()


def bot_process_env(fake: FakeTelegram | None, tmp_path: Path, **env: str) -> dict[str, str]:
    """Environment for a real `python bot.py` process (no .env, no config.toml from the repo)."""
    base = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "BOT_TOKEN": TOKEN,
        "DATABASE_URL": database_url(tmp_path / "bot.db"),
    }
    if fake is not None:
        base["BOT_API_URL"] = fake.base_url
    base.update(env)
    return base


PYTHON = sys.executable
BOT_SCRIPT = str(ROOT / "bot.py")


class BotProcess:
    """A real `python bot.py` process against the stand-in, stopped with a signal."""

    def __init__(self, fake: FakeTelegram, tmp_path: Path, **env: str) -> None:
        self.env = bot_process_env(fake, tmp_path, **env)
        self.cwd = tmp_path
        self.process: asyncio.subprocess.Process | None = None
        self.log = ""

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            PYTHON,
            BOT_SCRIPT,
            env=self.env,
            cwd=self.cwd,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def wait(self) -> int:
        """Until the process ends by itself; its exit code."""
        return await self.stop(stop_signal=None)

    async def stop(self, stop_signal: int | None = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.returncode is None and stop_signal is not None:
            self.process.send_signal(stop_signal)
        _, stderr = await asyncio.wait_for(self.process.communicate(), timeout=30)
        self.log += stderr.decode()
        assert self.process.returncode is not None
        return self.process.returncode
