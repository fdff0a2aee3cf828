"""The three channels a case can take to a department working in its own system: an
e-mail through SMTP (STARTTLS and login, aiosmtplib), a signed JSON webhook, and an Open311
(GeoReport v2) service request. Transport only: services/handoff.py decides what goes when,
and what comes back.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiohttp
import aiosmtplib

from locales import WHEN_FORMAT, Texts
from services.signing import SIGNATURE_HEADER, signature
from settings import Department, Settings

SCHEMA = "suishoupai.case/1"
MAIL_IDLE_SECONDS = 20  # a mail connection idle longer is closed and opened anew


class Failed(Exception):
    """One attempt did not hand the case over; `detail` says why (for the attempt's row)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Delivered:
    detail: str  # "HTTP 201", "250 OK"
    remote_id: str | None = None  # Open311's service_request_id


@dataclass(frozen=True)
class WorkOrder:
    """One case as a department's system receives it (the 12345 work order's fields)."""

    key: str  # the idempotency key, the same on every attempt
    delivery_id: int
    reference: str
    event: str  # case.dispatched, or case.reopened when the rider said it is not fixed
    received_at: int  # when the rider submitted it
    dispatched_at: int
    category: str | None
    category_name: str
    town: str | None
    grid: str | None
    latitude: float | None
    longitude: float | None
    place: str | None
    description: str | None
    urgent: bool
    accept_due_at: int | None
    due_at: int
    reopened: int
    note: str | None  # the rider's reason when reopened
    photos: tuple[bytes, ...]
    photo_urls: tuple[str, ...]  # empty without PUBLIC_URL: the photos go inline
    page_url: str | None  # the e-mail's page; None without PUBLIC_URL
    updates_url: str | None


def _iso(seconds: int | None, zone: Any) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, zone).isoformat()


def work_order_json(order: WorkOrder, zone: Any, now: int) -> dict[str, Any]:
    """The webhook's body (README: "The webhook's JSON")."""
    photos: list[dict[str, str]] = (
        [{"url": url, "content_type": "image/jpeg"} for url in order.photo_urls]
        if order.photo_urls
        else [
            {"content_type": "image/jpeg", "data": base64.b64encode(jpeg).decode()}
            for jpeg in order.photos
        ]
    )
    location = None
    if order.latitude is not None and order.longitude is not None:
        location = {"lat": order.latitude, "lon": order.longitude, "crs": "WGS84"}
    return {
        "schema": SCHEMA,
        "event": order.event,
        "id": order.key,
        "sent_at": _iso(now, zone),
        "case": {
            "reference": order.reference,
            "received_at": _iso(order.received_at, zone),
            "dispatched_at": _iso(order.dispatched_at, zone),
            "channel": "suishoupai",
            "category": {"code": order.category, "name": order.category_name},
            "town": order.town,
            "grid": order.grid,
            "location": location,
            "place": order.place,
            "description": order.description,
            "urgency": "urgent" if order.urgent else "normal",
            "accept_due_at": _iso(order.accept_due_at, zone),
            "due_at": _iso(order.due_at, zone),
            "reopened": order.reopened,
            "reopen_reason": order.note if order.event == "case.reopened" else None,
            "photos": photos,
            "updates_url": order.updates_url,
        },
    }


class Channels:
    """Sends work orders and reads Open311 back; one HTTP session for all departments."""

    def __init__(self, settings: Settings, texts: Texts) -> None:
        self.settings = settings
        self.texts = texts
        self.rules = settings.programme.delivery
        self._http: aiohttp.ClientSession | None = None
        self._mail: aiosmtplib.SMTP | None = None
        self._mail_used_at = 0.0

    def now(self) -> int:
        return int(time.time())

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            timeout = aiohttp.ClientTimeout(total=self.rules.timeout_seconds)
            self._http = aiohttp.ClientSession(timeout=timeout, trust_env=True)
        return self._http

    async def close(self) -> None:
        await self._drop_mail_client()
        if self._http is not None:
            await self._http.close()

    async def send(self, department: Department, order: WorkOrder) -> Delivered:
        senders: dict[str, Callable[[Department, WorkOrder], Awaitable[Delivered]]] = {
            "email": self._email,
            "webhook": self._webhook,
            "open311": self._open311,
        }
        return await senders[department.send](department, order)

    # --- e-mail ---------------------------------------------------------------------------

    def email(self, department: Department, order: WorkOrder) -> EmailMessage:
        """The case e-mail: a Chinese subject with the reference, the facts, the map links,
        the page's link; the photos attached as the moderators saw them (no metadata)."""
        smtp = self.settings.smtp
        assert smtp is not None
        assert department.channel.email is not None
        zone = self.settings.timezone
        language = self.texts.default_language

        def t(key: str, **params: object) -> str:
            return self.texts.get(language, key, **params)

        def when(seconds: int | None) -> str:
            if seconds is None:
                return "-"
            return datetime.fromtimestamp(seconds, zone).strftime(WHEN_FORMAT)

        where = order.town or t("town.none")
        lines = [
            t("handoff.email.intro", department=department.name(language)),
            "",
            t("handoff.email.reference", reference=order.reference),
            t("handoff.email.category", category=order.category_name)
            + (t("handoff.email.urgent") if order.urgent else ""),
            t("handoff.email.town", town=where),
        ]
        if order.place:
            lines.append(t("handoff.email.place", place=order.place))
        if order.latitude is not None and order.longitude is not None:
            lat, lon = round(order.latitude, 6), round(order.longitude, 6)
            lines += [
                t("handoff.email.location", lat=lat, lon=lon),
                t("handoff.email.amap", url=amap_link(lat, lon, order.reference)),
                t("handoff.email.osm", url=osm_link(lat, lon)),
            ]
        lines += [
            t("handoff.email.description", description=order.description or "-"),
            t("handoff.email.received", at=when(order.received_at)),
            t("handoff.email.accept_due", at=when(order.accept_due_at)),
            t("handoff.email.due", at=when(order.due_at)),
            t("handoff.email.photos", count=len(order.photos)),
        ]
        if order.event == "case.reopened":
            lines.insert(2, t("handoff.email.reopened", note=order.note or "-"))
        if order.page_url:
            lines += ["", t("handoff.email.page", url=order.page_url)]
        message = EmailMessage()
        subject_key = "handoff.email.subject_urgent" if order.urgent else "handoff.email.subject"
        message["Subject"] = t(
            subject_key, reference=order.reference, category=order.category_name, town=where
        )
        message["From"] = smtp.sender
        message["To"] = department.channel.email
        domain = smtp.sender.rpartition("@")[2]
        message["Message-ID"] = make_msgid(idstring=order.key, domain=domain)
        message["X-Suishoupai-Reference"] = order.reference
        message.set_content("\n".join(lines))
        for number, jpeg in enumerate(order.photos, start=1):
            message.add_attachment(
                jpeg, maintype="image", subtype="jpeg", filename=f"{order.reference}-{number}.jpg"
            )
        return message

    async def _email(self, department: Department, order: WorkOrder) -> Delivered:
        """One case e-mail, on the mail connection the last one used if it is still fresh
        (a backlog after an outage goes out without a TLS handshake and login per case)."""
        message = self.email(department, order)
        try:
            client = await self._mail_client()
            errors, reply = await client.send_message(message)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self._drop_mail_client()
            raise Failed(_brief(exc)) from None
        self._mail_used_at = time.monotonic()
        if errors:
            raise Failed(f"refused: {', '.join(sorted(errors))}")
        return Delivered(reply.strip()[:120] or "250")

    async def _mail_client(self) -> aiosmtplib.SMTP:
        """A logged-in connection to the mail server; a new one after MAIL_IDLE_SECONDS,
        before the server would have closed it."""
        idle = time.monotonic() - self._mail_used_at
        if self._mail is not None and self._mail.is_connected and idle < MAIL_IDLE_SECONDS:
            return self._mail
        await self._drop_mail_client()
        self._mail = await self._connect_mail()
        return self._mail

    async def _connect_mail(self) -> aiosmtplib.SMTP:
        """A new connection to the mail server, TLS as configured, logged in."""
        smtp = self.settings.smtp
        assert smtp is not None
        client = aiosmtplib.SMTP(
            hostname=smtp.host,
            port=smtp.port,
            start_tls=smtp.tls == "starttls",
            use_tls=smtp.tls == "tls",
            timeout=self.rules.timeout_seconds,
        )
        await client.connect()
        if smtp.user and smtp.password:
            await client.login(smtp.user, smtp.password)
        return client

    async def _drop_mail_client(self) -> None:
        client, self._mail = self._mail, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()

    # --- webhook --------------------------------------------------------------------------

    async def _webhook(self, department: Department, order: WorkOrder) -> Delivered:
        body = json.dumps(
            work_order_json(order, self.settings.timezone, self.now()), ensure_ascii=False
        ).encode()
        return await self._post_signed(department, body, order.key)

    async def _post_signed(self, department: Department, body: bytes, key: str) -> Delivered:
        channel = department.channel
        assert channel.url is not None
        assert channel.secret is not None
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: signature(channel.secret, body, self.now()),
            "Idempotency-Key": key,
            "User-Agent": "suishoupai-bot",
        }
        try:
            async with self._session().post(channel.url, data=body, headers=headers) as response:
                await response.read()
                if not 200 <= response.status < 300:
                    raise Failed(f"HTTP {response.status}")
                return Delivered(f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Failed(_brief(exc)) from None

    # --- Open311 --------------------------------------------------------------------------

    async def _open311(self, department: Department, order: WorkOrder) -> Delivered:
        channel = department.channel
        assert channel.url is not None
        assert channel.api_key is not None
        if order.latitude is None or order.longitude is None:
            raise Failed("no location: GeoReport v2 needs lat/long")
        text = f"[{order.reference}] {order.category_name}: {order.description or '-'}"
        form = {
            "api_key": channel.api_key,
            "service_code": channel.service_code(order.category),
            "lat": f"{order.latitude:.6f}",
            "long": f"{order.longitude:.6f}",
            "description": text[:4000],
        }
        if order.place or order.town:
            form["address_string"] = " ".join(p for p in (order.town, order.place) if p)
        if order.photo_urls:
            form["media_url"] = order.photo_urls[0]
        try:
            async with self._session().post(f"{channel.url}/requests.json", data=form) as response:
                raw = await response.read()
                if not 200 <= response.status < 300:
                    raise Failed(f"HTTP {response.status}: {_open311_error(raw)}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Failed(_brief(exc)) from None
        try:
            first = json.loads(raw)[0]
            remote = first.get("service_request_id") or (
                f"token:{first['token']}" if first.get("token") else None
            )
        except (ValueError, LookupError, TypeError, AttributeError):
            remote = None
        if not remote:
            raise Failed(f"HTTP {response.status} without a service_request_id")
        return Delivered(f"HTTP {response.status}", str(remote))

    async def fetch_photo(self, url: str, limit: int) -> bytes:
        """A photo a department's update points to; at most `limit` bytes are read (more
        means too large: the caller refuses it)."""
        try:
            async with self._session().get(url) as response:
                if response.status != 200:
                    raise Failed(f"HTTP {response.status}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) >= limit:
                        break
                return bytes(body[:limit])
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Failed(_brief(exc)) from None

    async def read_requests(self, department: Department, ids: list[str]) -> list[Any]:
        """GeoReport v2's GET requests.json for these service_request_ids."""
        channel = department.channel
        assert channel.url is not None
        query = {"api_key": channel.api_key or "", "service_request_id": ",".join(ids)}
        try:
            async with self._session().get(
                f"{channel.url}/requests.json", params=query
            ) as response:
                raw = await response.read()
                if response.status != 200:
                    raise Failed(f"HTTP {response.status}: {_open311_error(raw)}")
            found = json.loads(raw)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Failed(_brief(exc)) from None
        except ValueError:
            raise Failed("an answer that is not JSON") from None
        return found if isinstance(found, list) else []

    async def probe(self, department: Department) -> str:
        """Try the department's channel without sending a case: log in to the mail server,
        send the webhook a signed ping, read the Open311 endpoint's services. What it said;
        Failed if it did not answer as it should."""
        channel = department.channel
        if department.send == "email":
            smtp = self.settings.smtp
            assert smtp is not None
            try:
                client = await self._connect_mail()
                code, _ = await client.noop()
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                raise Failed(_brief(exc)) from None
            return f"mail server {smtp.host}:{smtp.port} answered {code}"
        if department.send == "webhook":
            ping = {"schema": SCHEMA, "event": "ping", "id": f"ping-{self.now()}"}
            done = await self._post_signed(department, json.dumps(ping).encode(), ping["id"])
            return f"{channel.url} answered a signed ping with {done.detail}"
        assert channel.url is not None
        try:
            async with self._session().get(
                f"{channel.url}/services.json", params={"api_key": channel.api_key or ""}
            ) as response:
                raw = await response.read()
                if response.status != 200:
                    raise Failed(f"HTTP {response.status}")
            codes = {item.get("service_code") for item in json.loads(raw)}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Failed(_brief(exc)) from None
        except (ValueError, TypeError, AttributeError):
            raise Failed("services.json is not a GeoReport v2 service list") from None
        wanted = {channel.service_code(c) for c in department.categories}
        missing = sorted(wanted - codes)
        if missing:
            raise Failed(f"no service_code {', '.join(missing)} among its services")
        return f"{channel.url} lists the service codes {', '.join(sorted(wanted))}"


def amap_link(lat: float, lon: float, name: str) -> str:
    """高德地图's marker link; it takes WGS-84 when told so."""
    return f"https://uri.amap.com/marker?position={lon},{lat}&name={name}&coordinate=wgs84"


def osm_link(lat: float, lon: float) -> str:
    return f"https://www.openstreetmap.org/?mlat={lat}&mlon={lon}#map=18/{lat}/{lon}"


def _brief(exc: BaseException) -> str:
    """An error in a few words, for an attempt's row and the logs (no URL, no secret)."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}"[:200]
    return type(exc).__name__ + (f": {exc}"[:160] if str(exc) else "")


def _open311_error(raw: bytes) -> str:
    """GeoReport v2's error list, `[{"code": 400, "description": "..."}]`, in a few words."""
    try:
        errors = json.loads(raw)
        return "; ".join(str(e.get("description", e)) for e in errors)[:200]
    except (ValueError, TypeError, AttributeError):
        return raw[:120].decode(errors="replace")
