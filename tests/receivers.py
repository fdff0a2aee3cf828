"""Real local receivers for the departments' channels, as a county's systems would run them:
a mail server (aiosmtpd) that wants STARTTLS and a login, a webhook receiver that checks the
signature the way README's example does, and an Open311 (GeoReport v2) stand-in that
refuses what the specification refuses."""

from __future__ import annotations

import asyncio
import email
import email.policy
import hashlib
import hmac
import json
import socket
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import trustme
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

SMTP_USER = "bot@county.example"
SMTP_PASSWORD = "mail-password-123"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


class MailServer:
    """A mail server on 127.0.0.1 that takes mail only after STARTTLS and AUTH; what
    arrived is in `messages`, parsed."""

    def __init__(self, ca: trustme.CA) -> None:
        self.port = free_port()
        self.raw: list[bytes] = []
        self.logins: list[str] = []
        cert = ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=True,
            authenticator=self._authenticate,
            auth_require_tls=True,
        )

    def _authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            SMTP_PASSWORD.encode(),
        )
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        assert session.authenticated, "mail taken without a login"
        assert isinstance(envelope.content, bytes)
        self.raw.append(envelope.content)  # parsed when read: a busy server only stores
        return "250 OK queued"

    @property
    def messages(self) -> list[EmailMessage]:
        parsed = [email.message_from_bytes(raw, policy=email.policy.default) for raw in self.raw]
        return [m for m in parsed if isinstance(m, EmailMessage)]

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    async def wait_for(self, count: int) -> list[EmailMessage]:
        deadline = time.monotonic() + 30
        while len(self.raw) < count:
            assert time.monotonic() < deadline, f"{len(self.raw)} of {count} e-mails came"
            await asyncio.sleep(0.05)
        return self.messages


def signed(secret: str, body: bytes, header: str, tolerance: int = 300) -> bool:
    """README's receiver check: `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    stamp = parts.get("t", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > tolerance:
        return False
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, parts.get("v1", ""))


@dataclass
class WebhookReceiver:
    """A department's webhook endpoint: 401 without a good signature; `status` answers
    the rest (503 while it pretends to be down); `stop()` makes it unreachable."""

    secret: str
    port: int = field(default_factory=free_port)
    status: int = 200
    events: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # Idempotency-Key of each accepted POST
    refused: int = 0
    after_photo: bytes = b""
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cases"

    async def _take(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not signed(self.secret, body, request.headers.get("X-Suishoupai-Signature", "")):
            self.refused += 1
            return web.json_response({"error": "bad signature"}, status=401)
        if self.status != 200:
            return web.Response(status=self.status)
        self.events.append(json.loads(body))
        self.keys.append(request.headers["Idempotency-Key"])
        return web.json_response({"received": True})

    async def _photo(self, request: web.Request) -> web.Response:
        """The department's own copy of its after-photo, for an update's photo_url."""
        return web.Response(body=self.after_photo, content_type="image/jpeg")

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/cases", self._take)
        app.router.add_get("/after.jpg", self._photo)
        self._runner = await serve(app, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        while len([e for e in self.events if e["event"] != "ping"]) < count:
            assert time.monotonic() < deadline, f"{len(self.events)} of {count} cases came"
            await asyncio.sleep(0.05)
        return [e for e in self.events if e["event"] != "ping"]


SERVICES = [
    {
        "service_code": "FIRE",
        "service_name": "火灾隐患",
        "description": "fire risks",
        "metadata": False,
        "type": "realtime",
        "keywords": "",
        "group": "safety",
    },
    {
        "service_code": "ACCIDENT",
        "service_name": "交通事故",
        "description": "accidents",
        "metadata": False,
        "type": "realtime",
        "keywords": "",
        "group": "safety",
    },
]


@dataclass
class Open311:
    """A GeoReport v2 endpoint (https://wiki.open311.org/GeoReport_v2): services.json,
    POST requests.json (form-encoded, api_key, a known service_code, a location), GET
    requests.json?service_request_id=...; every refusal is the spec's error list."""

    api_key: str
    port: int = field(default_factory=free_port)
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # what it refused, and why
    polls: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/open311/v2"

    def _refuse(self, code: int, why: str) -> web.Response:
        self.errors.append(why)
        return web.json_response([{"code": code, "description": why}], status=code)

    async def _services(self, request: web.Request) -> web.Response:
        return web.json_response(SERVICES)

    async def _create(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return self._refuse(400, f"expected a form, got {request.content_type}")
        form = await request.post()
        if form.get("api_key") != self.api_key:
            return self._refuse(403, "api_key missing or wrong")
        code = form.get("service_code")
        if code not in {s["service_code"] for s in SERVICES}:
            return self._refuse(404, f"service_code {code!r} not found")
        try:
            lat, lon = float(str(form["lat"])), float(str(form["long"]))
        except (KeyError, ValueError):
            if not (form.get("address_string") or form.get("address_id")):
                return self._refuse(400, "lat/long, address_string or address_id required")
            lat = lon = 0.0
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return self._refuse(400, "lat/long out of range")
        description = str(form.get("description", ""))
        if len(description) > 4000:
            return self._refuse(400, "description over 4000 characters")
        media = str(form.get("media_url", ""))
        if media and not media.startswith(("http://", "https://")):
            return self._refuse(400, "media_url must be a URL")
        request_id = f"SR-{len(self.requests) + 1:04d}"
        now = time.strftime("%Y-%m-%dT%H:%M:%S+08:00")
        self.requests[request_id] = {
            "service_request_id": request_id,
            "status": "open",
            "status_notes": None,
            "service_code": code,
            "description": description,
            "lat": lat,
            "long": lon,
            "media_url": media or None,
            "requested_datetime": now,
            "updated_datetime": now,
        }
        return web.json_response([{"service_request_id": request_id, "service_notice": ""}])

    async def _read(self, request: web.Request) -> web.Response:
        self.polls += 1
        wanted = request.query.get("service_request_id", "").split(",")
        return web.json_response([self.requests[i] for i in wanted if i in self.requests])

    def set_status(self, request_id: str, status: str, notes: str | None = None) -> None:
        self.requests[request_id] |= {
            "status": status,
            "status_notes": notes,
            "updated_datetime": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
        }

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/open311/v2/services.json", self._services)
        app.router.add_post("/open311/v2/requests.json", self._create)
        app.router.add_get("/open311/v2/requests.json", self._read)
        self._runner = await serve(app, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
