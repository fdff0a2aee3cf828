"""How a benchmark hands the bot its updates: long polling or a webhook.

Long polling (the default): the bot fetches what the stand-in queued with getUpdates, exactly
as before. Webhook: the bot is started with WEBHOOK_URL, WEBHOOK_LISTEN and WEBHOOK_SECRET, so
it calls setWebhook and serves PTB's webhook server on 127.0.0.1; every update the benchmark
injects into the stand-in (`fake.send_text`, `fake.press_button`, ...) is then also POSTed, as
the same JSON, to that server with the secret header, as Telegram would. The stand-in still
queues its copy, which nobody fetches (once setWebhook is called it answers getUpdates with 409).

The POSTs go out as tasks over one shared aiohttp session, at most 40 at a time: Telegram's
default `max_connections` for a webhook, which PTB's run_webhook asks for. So updates injected
together (a crowd's /start) are delivered concurrently; one rider's steps, each injected only
after the bot answered the previous one, stay in order.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
from collections import Counter
from collections.abc import Callable
from types import TracebackType

import aiohttp

from tests.fakegram import FakeTelegram
from tests.fakegram.models import Json

HOOK_URL = "https://bot.example.org/telegram/hook"  # what setWebhook is told; never fetched
HOOK_PATH = HOOK_URL.split("://", 1)[1].partition("/")[2]
CONNECTIONS = 40  # Telegram's default max_connections for a webhook
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class BenchTelegram(FakeTelegram):
    """The stand-in, passing every injected update to ``deliver`` as well (if set)."""

    def __init__(self) -> None:
        super().__init__()
        self.deliver: Callable[[Json], None] | None = None

    async def __aenter__(self) -> BenchTelegram:
        await super().__aenter__()
        return self

    def inject(self, update: Json) -> Json:
        update = super().inject(update)
        if self.deliver is not None:
            self.deliver(update)
        return update

    def inject_many(self, updates: list[Json]) -> list[Json]:
        updates = super().inject_many(updates)
        if self.deliver is not None:
            for update in updates:
                self.deliver(update)
        return updates


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_listening(port: int, timeout: float = 60.0) -> None:  # noqa: ASYNC109
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                raise AssertionError(f"nothing listens on port {port}") from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return


class Delivery:
    """One bot run's way of getting updates; use ``async with`` around the run."""

    def __init__(self, fake: BenchTelegram, webhook: bool) -> None:
        self.fake = fake
        self.webhook = webhook
        self.port = free_port() if webhook else 0
        self.secret = secrets.token_urlsafe(24)  # 32 characters of A-Za-z0-9_-
        self.url = f"http://127.0.0.1:{self.port}/{HOOK_PATH}"
        self.statuses: Counter[int] = Counter()  # HTTP status of each POST
        self.failures: list[str] = []  # POSTs that got no HTTP answer at all
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def mode(self) -> str:
        return "webhook" if self.webhook else "long polling"

    def bot_env(self) -> dict[str, str]:
        """What to add to the bot's environment (nothing for long polling)."""
        if not self.webhook:
            return {}
        return {
            "WEBHOOK_URL": HOOK_URL,
            "WEBHOOK_LISTEN": f"127.0.0.1:{self.port}",
            "WEBHOOK_SECRET": self.secret,
        }

    async def bot_ready(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Until the bot polls, or has called setWebhook and its server accepts connections."""
        if not self.webhook:
            await self.fake.wait_for(lambda: bool(self.fake.calls_to("getUpdates")), timeout)
            return
        await self.fake.wait_for(lambda: bool(self.fake.calls_to("setWebhook")), timeout)
        await wait_listening(self.port, timeout)

    async def __aenter__(self) -> Delivery:
        if self.webhook:
            connector = aiohttp.TCPConnector(limit=CONNECTIONS)
            self._session = aiohttp.ClientSession(connector=connector)
            self.fake.deliver = self.post
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.fake.deliver = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def post(self, update: Json) -> None:
        """POST ``update`` to the bot's webhook in the background."""
        body = json.dumps(update).encode()  # now, as it is at injection
        task = asyncio.get_running_loop().create_task(self._post(body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, body: bytes) -> None:
        assert self._session is not None
        headers = {SECRET_HEADER: self.secret, "Content-Type": "application/json"}
        try:
            async with self._session.post(self.url, data=body, headers=headers) as response:
                await response.read()
                self.statuses[response.status] += 1
        except (aiohttp.ClientError, OSError) as exc:
            self.failures.append(f"{type(exc).__name__}: {exc}")

    @property
    def posted(self) -> int:
        return self.statuses.total() + len(self.failures)

    def summary(self) -> str:
        """One line on the POSTs: how many, and what the bot answered."""
        if not self.webhook:
            return "updates fetched by the bot with getUpdates"
        answers = ", ".join(
            f"{count} x {status}" for status, count in sorted(self.statuses.items())
        )
        line = f"webhook POSTs {self.posted}: {answers or 'none'}"
        if self.failures:
            line += f"; {len(self.failures)} got no answer (first: {self.failures[0]})"
        return line
