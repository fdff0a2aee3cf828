"""The bot's web server (aiohttp): Telegram's webhook, departments' signed status updates,
the e-mail channel's case page, and case photos for departments' systems. HTTP glue only:
each route reads the request, calls a service and answers.

    POST /<webhook path>                Telegram's updates (WEBHOOK_URL), secret header checked
    POST /departments/<key>/updates     a department's signed update (README: "Updates back")
    GET  /case/<token>                  the e-mail's page: the case and what can be done
    POST /case/<token>                  what the clerk chose (multipart: a photo with "fixed")
    GET  /photos/<token>.jpg            a report photo, for a webhook or an Open311 media_url
    GET  /dashboard                     the county office's page (services/dashboard.py)
    GET  /dashboard/api/...             its data, for a signed link or Telegram's initData
    GET  /dashboard/static/...          its script, style and the map library (Leaflet)
"""

from __future__ import annotations

import functools
import hmac
import html
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from telegram import Update

from handlers.common import BotApplication, Runtime
from handlers.infra.inbox import JournalingQueue
from locales import LANGUAGES, Phrases
from services.cases import State
from services.channels import Failed
from services.dashboard import PATH as DASHBOARD
from services.dashboard import Denied, Visitor, filters_of
from services.handoff import (
    PHOTO_MAX_BYTES,
    PHOTO_PURPOSE,
    Reply,
    Status,
    decode_photo,
)
from services.signing import SIGNATURE_HEADER, unseal, verify

log = logging.getLogger(__name__)

# Telegram's updates are a few kilobytes; a department's update may carry one photo.
TELEGRAM_MAX_BODY_BYTES = 1024 * 1024
UPDATE_MAX_BODY_BYTES = PHOTO_MAX_BYTES * 4 // 3 + 64 * 1024  # the photo as base64, and JSON
PAGE_MAX_BODY_BYTES = PHOTO_MAX_BYTES + 64 * 1024
RUNTIME = web.AppKey("runtime", Runtime)
TELEGRAM = web.AppKey("telegram", BotApplication)


class TooLarge(Exception):
    pass


async def read_body(request: web.Request, limit: int) -> bytes:
    """The body, refused (TooLarge) by its Content-Length or as it grows past `limit`,
    before more than `limit` bytes are held."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return bytes(body)


def _json(answer: Reply) -> web.Response:
    return web.json_response(answer.body, status=answer.status, dumps=_dumps)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _refuse(status: int, error: str, message: str) -> web.Response:
    return _json(Reply(status, {"ok": False, "error": error, "message": message}))


# --- Telegram ---------------------------------------------------------------------------------


async def telegram_update(request: web.Request) -> web.Response:
    """One update from Telegram; anything without the webhook's secret header gets 403
    before its body is read."""
    app = request.app[TELEGRAM]
    hook = request.app[RUNTIME].settings.webhook
    assert hook is not None
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not hmac.compare_digest(given.encode(), hook.secret.encode()):
        return web.Response(status=403)
    try:
        body = await read_body(request, TELEGRAM_MAX_BODY_BYTES)
    except TooLarge:
        return web.Response(status=413)
    data: Any = None
    try:
        data = json.loads(body)
        update = Update.de_json(data, app.bot)
    except Exception as exc:
        found = data.get("update_id") if isinstance(data, dict) else None
        log.warning(
            "could not parse update %s from Telegram (%s); its contents are not logged",
            found if isinstance(found, int) else "unknown",
            type(exc).__name__,
        )
        return web.Response()  # Telegram would only send it again
    if isinstance(app.update_queue, JournalingQueue):
        app.update_queue.expect([data])  # the inbox keeps it as received
    await app.update_queue.put(update)
    return web.Response()


# --- departments' updates ---------------------------------------------------------------------


async def department_update(request: web.Request) -> web.Response:
    """A department's system says what became of a case (README: "Updates back")."""
    runtime = request.app[RUNTIME]
    handoff = runtime.handoff
    department = runtime.settings.programme.department(request.match_info["key"])
    secret = None if department is None else department.channel.secret
    header = request.headers.get(SIGNATURE_HEADER, "")
    if department is None or secret is None or not header:
        return _refuse(401, "bad_signature", f"sign the body in {SIGNATURE_HEADER}")
    try:
        body = await read_body(request, UPDATE_MAX_BODY_BYTES)
    except TooLarge:
        return _refuse(
            413, "too_large", f"at most {PHOTO_MAX_BYTES // (1024 * 1024)} MB of photo per update"
        )
    if not verify(secret, body, header, handoff.now()):
        return _refuse(401, "bad_signature", "the signature does not match, or is too old")
    try:
        update = json.loads(body)
        status = Status(update["status"])
        update_id = update["id"]
        reference = update["reference"]
        if not (isinstance(update_id, str) and update_id and isinstance(reference, str)):
            raise ValueError
        note = update.get("note")
        due = update.get("due")
        if not all(v is None or isinstance(v, str) for v in (note, due)):
            raise ValueError
        photo = decode_photo(update.get("photo"))
        photo_url = update.get("photo_url")
        if photo_url is not None and not (
            isinstance(photo_url, str) and photo_url.startswith(("https://", "http://"))
        ):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return _refuse(
            400,
            "bad_request",
            'expected JSON {"id", "reference", "status": accepted | fixed | not_ours | '
            'cannot_fix | extension, "note"?, "photo"? (base64 JPEG) or "photo_url"?, '
            '"due"? (YYYY-MM-DD)}',
        )
    if photo is None and photo_url is not None:
        try:
            photo = await handoff.channels.fetch_photo(photo_url, PHOTO_MAX_BYTES + 1)
        except Failed as exc:
            return _refuse(422, "bad_photo", f"the photo_url could not be read: {exc.detail}")
    if photo is not None and len(photo) > PHOTO_MAX_BYTES:
        return _refuse(413, "too_large", "the photo is larger than 5 MB")
    case_id = await handoff.case_id(reference)
    answer = await handoff.apply(
        department.key, update_id, case_id, status, note=note, photo=photo, due=due
    )
    return _json(answer)


# --- the e-mail's page ------------------------------------------------------------------------


async def case_page(request: web.Request) -> web.Response:
    """The case and a form for each thing the department may do next."""
    runtime = request.app[RUNTIME]
    found = await runtime.handoff.case_of_page(request.match_info["token"])
    if found is None:
        return await _page(runtime, "handoff.page.gone", status=404)
    return await _page(runtime, None, case_id=found[0])


async def case_page_post(request: web.Request) -> web.Response:
    """What the clerk chose on the page, applied like a press on a card."""
    runtime = request.app[RUNTIME]
    found = await runtime.handoff.case_of_page(request.match_info["token"])
    if found is None:
        return await _page(runtime, "handoff.page.gone", status=404)
    case_id, department = found
    try:
        if request.content_length is not None and request.content_length > PAGE_MAX_BODY_BYTES:
            raise TooLarge
        form = await request.post()
    except (TooLarge, web.HTTPRequestEntityTooLarge):
        return await _page(runtime, "handoff.page.too_large", case_id=case_id, status=413)
    try:
        status = Status(str(form.get("status", "")))
    except ValueError:
        return await _page(runtime, "handoff.page.bad", case_id=case_id, status=400)
    upload, nonce, note = (form.get(name) for name in ("photo", "nonce", "note"))
    photo = upload.file.read() if isinstance(upload, web.FileField) else None
    answer = await runtime.handoff.apply(
        department,
        f"page:{nonce if isinstance(nonce, str) and nonce else secrets.token_hex(8)}",
        case_id,
        status,
        note=note.strip() or None if isinstance(note, str) else None,
        photo=photo or None,
    )
    key = "handoff.page.done" if answer.ok else f"handoff.page.{answer.body['error']}"
    return await _page(runtime, key, case_id=case_id, status=answer.status)


PAGE_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:1em auto;padding:0 1em}"
    "form{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:.8em 0}"
    "button{font-size:1em;padding:.4em 1em}textarea{width:100%;min-height:3em}"
    ".said{background:#fff3cd;padding:.5em 1em;border-radius:6px}dt{color:#555}"
)
# What a department may do from the page, by the case's state (the transition table decides).
PAGE_ACTIONS: dict[State, tuple[Status, ...]] = {
    State.DISPATCHED: (Status.ACCEPTED, Status.FIXED, Status.NOT_OURS),
    State.REOPENED: (Status.ACCEPTED, Status.FIXED, Status.NOT_OURS),
    State.ACCEPTED: (Status.FIXED, Status.CANNOT_FIX, Status.NOT_OURS),
}


async def _page(
    runtime: Runtime, said: str | None, *, case_id: int | None = None, status: int = 200
) -> web.Response:
    """The e-mail's page in the programme's language: what was said (the outcome of the
    clerk's last choice), the case, and a form for each thing that can be done next."""
    language = runtime.languages.default

    def t(key: str, **params: object) -> str:
        return escape(runtime.texts.get(language, key, **params))

    parts = [
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{t('handoff.page.title')}</title><style>{PAGE_STYLE}</style></head><body>",
        f"<h1>{t('handoff.page.title')}</h1>",
    ]
    if said is not None:
        parts.append(f'<p class="said" role="status">{t(said)}</p>')
    case = None if case_id is None else await runtime.cases.case(case_id)
    if case is not None:
        category = runtime.settings.programme.category(case.category or "")
        facts = {
            "handoff.page.reference": case.reference,
            "handoff.page.category": category.name(language) if category else "-",
            "handoff.page.town": case.town or runtime.texts.get(language, "town.none"),
            "handoff.page.state": runtime.texts.get(language, f"case.my.{case.state}").strip(" ·"),
            "handoff.page.description": case.description or "-",
        }
        parts.append("<dl>")
        parts += [f"<dt>{t(key)}</dt><dd>{escape(value)}</dd>" for key, value in facts.items()]
        parts.append("</dl>")
        for choice in PAGE_ACTIONS.get(case.state, ()):
            parts.append(_form(t, choice))
    parts.append("</body></html>")
    return web.Response(
        status=status, content_type="text/html", charset="utf-8", text="".join(parts)
    )


def _form(t: Any, choice: Status) -> str:
    """One choice as a form; a nonce makes a second press of the same form a replay."""
    fields = [
        f'<input type="hidden" name="status" value="{choice}">',
        f'<input type="hidden" name="nonce" value="{secrets.token_urlsafe(12)}">',
    ]
    if choice == Status.FIXED:
        fields.append(
            f"<label>{t('handoff.page.photo')} "
            '<input type="file" name="photo" accept="image/jpeg,image/png,image/webp"></label>'
        )
    if choice != Status.ACCEPTED:
        required = "" if choice == Status.FIXED else " required"
        fields.append(
            f'<label>{t(f"handoff.page.note_{choice}")}<textarea name="note"{required}>'
            "</textarea></label>"
        )
    return (
        '<form method="post" enctype="multipart/form-data">'
        + "".join(fields)
        + f'<button type="submit">{t(f"handoff.page.do_{choice}")}</button></form>'
    )


# --- photos ---------------------------------------------------------------------------------


async def photo(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    token = request.match_info["token"]
    values = unseal(runtime.settings.link_key, PHOTO_PURPOSE, token, 2, runtime.handoff.now())
    if values is None:
        return web.Response(status=404)
    jpeg = await runtime.handoff.photo(*values)
    if jpeg is None:
        return web.Response(status=404)
    return web.Response(body=jpeg, content_type="image/jpeg")


# --- the county office's page ----------------------------------------------------------------

STATIC = Path(__file__).parent / "static"
# Where the map's tiles come from, by `[dashboard] tiles`; the page may load nothing else.
TILE_HOSTS = {
    "none": "",
    "osm": " https://tile.openstreetmap.org",
    "amap": " https://*.is.autonavi.com",
    "tianditu": " https://*.tianditu.gov.cn",
}
PAGE_TEXTS = (
    "title", "loading", "map", "cases", "count", "none", "any", "urgent", "performance",
    "history", "history.hint", "history.close", "denied.failed",
    *(f"filter.{name}" for name in ("town", "department", "category", "state")),
    *(f"light.{name}" for name in ("green", "yellow", "red", "none")),
    *(f"column.{name}" for name in (
        "reference", "category", "town", "department", "state", "light", "opened", "due",
        "fixed", "at", "who", "action", "after", "note",
    )),
)  # fmt: skip


def _headers(runtime: Runtime) -> dict[str, str]:
    """The page loads only its own files and the configured tiles; its address (which may
    carry an admin's link) is never sent to a tile server."""
    tiles = TILE_HOSTS[runtime.settings.programme.dashboard.tiles]
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; "
            f"img-src 'self' data:{tiles}; connect-src 'self'; base-uri 'none'; "
            "form-action 'none'; "
            "frame-ancestors 'self' https://web.telegram.org https://*.telegram.org"
        ),
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def _phrases(runtime: Runtime, request: web.Request, visitor: Visitor | None = None) -> Phrases:
    asked = request.query.get("lang") or (visitor.language if visitor else None) or ""
    language = next((code for code in LANGUAGES if asked.startswith(code)), None)
    return Phrases(runtime.texts, language or runtime.languages.default, runtime.settings.timezone)


async def dashboard_page(request: web.Request) -> web.Response:
    """The page's shell: its words and where its script is; the data comes from the API,
    which checks the visitor on every request. A link that is no good is refused here
    already, so an expired link shows why at once."""
    runtime = request.app[RUNTIME]
    t = _phrases(runtime, request)
    token = request.query.get("t")
    if token is not None:
        found = await runtime.dashboard.visitor(f"Link {token}")
        if isinstance(found, Denied):
            return _dashboard_refusal(runtime, t, found)
    words = {key: t(f"dashboard.{key}") for key in PAGE_TEXTS}
    area = runtime.settings.programme.service_area.name(t.language)
    heading = t("dashboard.heading", area=area).strip()
    page = _shell().replace("{language}", t.language).replace("{title}", escape(heading))
    page = page.replace("{texts}", _dumps(words).replace("<", "\\u003c"))
    return web.Response(
        text=page, content_type="text/html", charset="utf-8", headers=_headers(runtime)
    )


@functools.cache
def _shell() -> str:
    return (STATIC / "dashboard.html").read_text(encoding="utf-8")


def _dashboard_refusal(runtime: Runtime, t: Phrases, denied: Denied) -> web.Response:
    status = 401 if denied != Denied.NOT_ALLOWED else 403
    body = (
        f'<!doctype html><html lang="{t.language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(t('dashboard.title'))}</title>"
        f'<link rel="stylesheet" href="dashboard/static/dashboard.css"></head><body>'
        f'<p class="denied" role="alert">{escape(t(f"dashboard.denied.{denied}"))}</p>'
        "</body></html>"
    )
    return web.Response(
        status=status, text=body, content_type="text/html", charset="utf-8",
        headers=_headers(runtime),
    )  # fmt: skip


DashboardData = Callable[[web.Request, Runtime, Phrases], Awaitable[object | None]]


def _dashboard_api(answer: DashboardData) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A route of the page's data: the visitor checked first (401/403 with why, in the
    page's language), then `answer`'s JSON; None from it is 404."""

    async def handle(request: web.Request) -> web.Response:
        runtime = request.app[RUNTIME]
        found = await runtime.dashboard.visitor(request.headers.get("Authorization", ""))
        if isinstance(found, Denied):
            t = _phrases(runtime, request)
            refusal = {"ok": False, "error": found.value, "message": t(f"dashboard.denied.{found}")}
            return _data(runtime, refusal, 401 if found != Denied.NOT_ALLOWED else 403)
        body = await answer(request, runtime, _phrases(runtime, request, found))
        if body is None:
            return _data(runtime, {"ok": False, "error": "unknown"}, 404)
        return _data(runtime, body)

    return handle


def _data(runtime: Runtime, body: object, status: int = 200) -> web.Response:
    return web.json_response(body, status=status, headers=_headers(runtime), dumps=_dumps)


@_dashboard_api
async def dashboard_overview(request: web.Request, runtime: Runtime, t: Phrases) -> object:
    return await runtime.dashboard.overview(t)


@_dashboard_api
async def dashboard_cases(request: web.Request, runtime: Runtime, t: Phrases) -> object:
    return await runtime.dashboard.cases(t, filters_of(request.query))


@_dashboard_api
async def dashboard_history(request: web.Request, runtime: Runtime, t: Phrases) -> object | None:
    events = await runtime.dashboard.history(t, request.match_info["reference"][:40])
    return None if events is None else {"events": events}


def build(app: BotApplication, runtime: Runtime) -> web.Application:
    """The web application with every route this configuration needs."""
    server = web.Application(client_max_size=max(UPDATE_MAX_BODY_BYTES, PAGE_MAX_BODY_BYTES))
    server[RUNTIME] = runtime
    server[TELEGRAM] = app
    hook = runtime.settings.webhook
    if hook is not None:
        server.router.add_post(f"/{hook.path}", telegram_update)
    server.router.add_post("/departments/{key}/updates", department_update)
    server.router.add_get("/case/{token}", case_page)
    server.router.add_post("/case/{token}", case_page_post)
    server.router.add_get("/photos/{token}.jpg", photo)
    server.router.add_get(DASHBOARD, dashboard_page)
    server.router.add_get(f"{DASHBOARD}/api/overview", dashboard_overview)
    server.router.add_get(f"{DASHBOARD}/api/cases", dashboard_cases)
    server.router.add_get(f"{DASHBOARD}/api/cases/{{reference}}", dashboard_history)
    server.router.add_static(f"{DASHBOARD}/static", STATIC, append_version=False)
    return server


class WebServer:
    """The server's life: started when the bot leads, stopped with it."""

    def __init__(self, app: BotApplication, runtime: Runtime) -> None:
        self.runner = web.AppRunner(build(app, runtime), access_log=None)
        self.web = runtime.settings.web

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.web.listen_host, self.web.listen_port)
        await site.start()
        log.info("web server listening on %s:%s", self.web.listen_host, self.web.listen_port)

    async def stop(self) -> None:
        await self.runner.cleanup()


def escape(text: object) -> str:
    return html.escape(str(text))
