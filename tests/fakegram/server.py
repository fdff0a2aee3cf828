"""The HTTP side of the fake: routing, recording, faults, rate caps, the update queue.

See the package docstring (``tests/fakegram/__init__.py``) for the model and the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any

from aiohttp import web

from .formatting import utf16_len
from .models import ApiError, Call, Json, SentMessage, TgUser
from .spec import check_call
from .wire import ApiRequest, json_response, nginx_502, read_params
from .world import World, commands_key, now

_LOGGER = logging.getLogger(__name__)

_CONFLICT_POLL = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: _CONFLICT_POLL,
    500: "Internal Server Error",
}
# Update types Telegram only delivers when explicitly listed in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


@dataclass
class _Fault:
    method: str  # lower-case method name or "*"
    status: int
    remaining: int
    retry_after: int | None
    description: str | None
    delay: float | None
    chat_id: int | None

    def matches(self, method: str, params: Json) -> bool:
        if self.method == "*":
            if method == "getUpdates":
                return False
        elif self.method != method.lower():
            return False
        return self.chat_id is None or params.get("chat_id") == self.chat_id

    def error(self) -> ApiError:
        if self.status == 429:
            retry_after = self.retry_after if self.retry_after is not None else 1
            description = self.description or f"Too Many Requests: retry after {retry_after}"
            return ApiError(429, description, {"retry_after": retry_after})
        try:
            phrase = HTTPStatus(self.status).phrase
        except ValueError:
            phrase = "Error"
        description = self.description or _DEFAULT_DESCRIPTIONS.get(self.status, phrase)
        parameters = {"retry_after": self.retry_after} if self.retry_after is not None else None
        return ApiError(self.status, description, parameters)


@dataclass
class _Pending:
    update: Json
    # Re-injected with an old update_id: exempt from offset confirmation until delivered once.
    sticky: bool = False


def _update_type(update: Json) -> str:
    return next((key for key in update if key != "update_id"), "")


class FakeTelegram:
    """A Telegram Bot API server on 127.0.0.1 for end-to-end tests (see package docstring)."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",  # noqa: S107 - a fake token
        *,
        host: str = "127.0.0.1",
    ) -> None:
        self.token = token
        self.host = host
        self.world = World(token)
        self.calls: list[Call] = []
        self.cap_rejections = 0
        self.internal_errors: list[BaseException] = []
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()
        self._changed = asyncio.Event()  # replaced and set on every recorded call
        self._updates_changed = asyncio.Event()  # replaced and set when getUpdates must recheck
        self._server_methods: dict[str, Callable[[ApiRequest], Any]] = {
            "getWebhookInfo": self._get_webhook_info,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
        }
        names = [*self.world.methods, *self._server_methods, "getUpdates"]
        self._method_names = {name.lower(): name for name in names}
        # update queue
        self._pending: list[_Pending] = []
        self._held: list[_Pending] = []
        self._hold_depth = 0
        self._next_update_id = 1
        self._allowed_updates: frozenset[str] | None = None
        self._poll_generation = 0
        self._webhook_url = ""
        self._callback_seq = 0
        # faults and caps
        self._faults: list[_Fault] = []
        self._download_faults: list[_Fault] = []
        self._cap_per_second: int | None = None
        self._cap_per_group: int | None = None
        self._cap_per_private: int | None = None
        self._second_window = 1.0
        self._group_window = 60.0
        self._private_window = 10.0
        self._cap_log: deque[tuple[float, int | str]] = deque()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeTelegram already started")
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self._runner = runner
        self._port = runner.addresses[0][1]
        self._closing.clear()

    async def stop(self) -> None:
        """Answer pending long polls with [], cut delayed faults short and close the server."""
        if self._runner is None:
            return
        self._closing.set()
        self._wake_pollers()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeTelegram not started")
        return f"http://{self.host}:{self._port}"

    @property
    def bot_id(self) -> int:
        return self.world.bot_id

    @property
    def bot_user(self) -> Json:
        return dict(self.world.bot_user)

    # ------------------------------------------------------------------ HTTP

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        path = request.path
        if path.startswith("/file/bot"):
            return await self._serve_file(path.removeprefix("/file/bot"), at)
        if not path.startswith("/bot"):
            return json_response(ApiError(404, "Not Found").body(), 404)
        token, _, raw_method = path.removeprefix("/bot").partition("/")
        try:
            params, uploads = await read_params(request)
        except ValueError:
            call = Call(raw_method, {}, {}, 0, at)
            return self._finish(call, error=ApiError(400, "Bad Request: can't parse request"))
        call = Call(raw_method, params, {name: u.data for name, u in uploads.items()}, 0, at)
        if token != self.token:
            return self._finish(call, error=ApiError(401, "Unauthorized"))
        method = self._method_names.get(raw_method.lower())
        if method is None:
            return self._finish(call, error=ApiError(404, "Not Found: method not found"))
        call.method = method
        refusal = check_call(method, params, uploads.keys())
        if refusal is not None:
            return self._finish(call, error=ApiError(400, refusal))
        if method == "getUpdates":
            return await self._get_updates(call)
        fault = self._take_fault(self._faults, method, params)
        if fault is not None and fault.status >= 300:
            return await self._answer_fault(call, fault)
        retry_after = self._check_caps(params, at)
        if retry_after is not None:
            self.cap_rejections += 1
            error = ApiError(
                429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
            )
            return self._finish(call, error=error)
        response = self._execute(call, ApiRequest(method, params, uploads))
        if fault is not None and fault.delay:
            await self._sleep(fault.delay)  # slow success: took effect, answer comes late
        return response

    def _execute(self, call: Call, req: ApiRequest) -> web.Response:
        handler = self._server_methods.get(req.method, self.world.handle)
        try:
            result = handler(req)
        except ApiError as error:
            return self._finish(call, error=error)
        except Exception as exc:
            _LOGGER.exception("fakegram bug while handling %s", req.method)
            self.internal_errors.append(exc)
            return self._finish(call, error=ApiError(500, f"Internal Server Error: {exc!r}"))
        return self._finish(call, result=result)

    def _finish(
        self, call: Call, *, result: Any = None, error: ApiError | None = None
    ) -> web.Response:
        if error is not None:
            call.status, call.error = error.status, error.description
            body = error.body()
        else:
            call.status, call.result = 200, copy.deepcopy(result)
            body = {"ok": True, "result": result}
        self._record(call)
        return json_response(body, call.status)

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def _answer_fault(self, call: Call, fault: _Fault) -> web.Response:
        if fault.status == 502:
            call.status, call.error = 502, "Bad Gateway"
            self._record(call)
            response = nginx_502()
        else:
            response = self._finish(call, error=fault.error())
        if fault.delay:
            await self._sleep(fault.delay)
        return response

    async def _serve_file(self, rest: str, at: float) -> web.Response:
        token, _, file_path = rest.partition("/")
        call = Call("downloadFile", {"file_path": file_path}, {}, 0, at)
        if token != self.token:
            return self._finish(call, error=ApiError(401, "Unauthorized"))
        fault = self._take_fault(self._download_faults, "downloadfile", {})
        if fault is not None:
            return await self._answer_fault(call, fault)
        stored = self.world.files_by_path.get(file_path)
        if stored is None:
            return self._finish(call, error=ApiError(404, "Not Found"))
        call.status = 200
        self._record(call)
        return web.Response(
            body=stored.data, content_type=stored.mime_type or "application/octet-stream"
        )

    # ------------------------------------------------------------------ faults and caps

    def fail_next(
        self,
        method: str,
        *,
        status: int = 500,
        times: int = 1,
        retry_after: int | None = None,
        description: str | None = None,
        delay: float | None = None,
        chat_id: int | None = None,
    ) -> None:
        """Make the next ``times`` matching calls fail with ``status`` without any effect.

        ``method`` is case-insensitive; ``"*"`` matches every method except getUpdates.
        ``delay`` seconds pass before the answer. A status below 300 means "slow success":
        the call takes effect immediately and only its answer is delayed.
        """
        if times < 1:
            raise ValueError("times must be >= 1")
        self._faults.append(
            _Fault(method.lower(), status, times, retry_after, description, delay, chat_id)
        )

    def fail_downloads(self, times: int = 1, status: int = 500) -> None:
        """Make the next ``times`` ``/file/...`` downloads fail with ``status``."""
        self._download_faults.append(_Fault("downloadfile", status, times, None, None, None, None))

    def clear_faults(self) -> None:
        self._faults.clear()
        self._download_faults.clear()

    def unfired_faults(self) -> list[str]:
        """Faults injected but never triggered (`method x times left`): a test that leaves any
        never exercised what it meant to."""
        return [
            f"{fault.method} x{fault.remaining}" for fault in self._faults + self._download_faults
        ]

    @staticmethod
    def _take_fault(faults: list[_Fault], method: str, params: Json) -> _Fault | None:
        for fault in faults:
            if fault.matches(method, params):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    faults.remove(fault)
                return fault
        return None

    def enforce_caps(
        self,
        per_second: int | None = 30,
        per_group: int | None = 20,
        per_private: int | None = 10,
        *,
        group_window: float = 60.0,
        second_window: float = 1.0,
        private_window: float = 10.0,
    ) -> None:
        """Refuse chat requests beyond Telegram's flood limits with 429 (None disables a cap).

        Sliding windows over accepted requests that carry a ``chat_id``: at most ``per_second``
        within ``second_window`` overall, ``per_group`` within ``group_window`` per negative
        chat id and ``per_private`` within ``private_window`` per positive (private) chat id
        (Telegram: about one a second, short bursts allowed). Calling this resets the windows.
        """
        for cap in (per_second, per_group, per_private):
            if cap is not None and cap < 1:
                raise ValueError("caps must be >= 1 or None")
        self._cap_per_second, self._cap_per_group = per_second, per_group
        self._cap_per_private = per_private
        self._second_window, self._group_window = second_window, group_window
        self._private_window = private_window
        self._cap_log.clear()

    def _check_caps(self, params: Json, at: float) -> int | None:
        """None if the request may pass (and is counted), else the retry_after to answer."""
        chat = params.get("chat_id")
        caps = (self._cap_per_second, self._cap_per_group, self._cap_per_private)
        if chat is None or all(cap is None for cap in caps):
            return None
        horizon = at - max(self._second_window, self._group_window, self._private_window)
        while self._cap_log and self._cap_log[0][0] <= horizon:
            self._cap_log.popleft()
        waits: list[float] = []
        if self._cap_per_second is not None:
            recent = [t for t, _ in self._cap_log if t > at - self._second_window]
            if len(recent) >= self._cap_per_second:
                waits.append(recent[-self._cap_per_second] + self._second_window - at)
        if self._cap_per_group is not None and isinstance(chat, int) and chat < 0:
            group = [t for t, c in self._cap_log if c == chat and t > at - self._group_window]
            if len(group) >= self._cap_per_group:
                waits.append(group[-self._cap_per_group] + self._group_window - at)
        if self._cap_per_private is not None and isinstance(chat, int) and chat > 0:
            window = self._private_window
            private = [t for t, c in self._cap_log if c == chat and t > at - window]
            if len(private) >= self._cap_per_private:
                waits.append(private[-self._cap_per_private] + window - at)
        if waits:
            return max(1, math.ceil(max(waits)))
        self._cap_log.append((at, chat))
        return None

    # ------------------------------------------------------------------ getUpdates & webhooks

    async def _get_updates(self, call: Call) -> web.StreamResponse:
        fault = self._take_fault(self._faults, "getUpdates", call.params)
        if fault is not None and fault.status >= 300:
            return await self._answer_fault(call, fault)
        if self._webhook_url:
            return self._finish(call, error=ApiError(409, _CONFLICT_WEBHOOK))
        try:
            offset = int(call.params.get("offset") or 0)
            limit = int(call.params.get("limit") or 100)
            timeout = max(0.0, float(call.params.get("timeout") or 0))
        except (TypeError, ValueError):
            return self._finish(call, error=ApiError(400, "Bad Request: wrong parameter value"))
        limit = 100 if limit < 1 else min(limit, 100)
        allowed = call.params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else None
        self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()  # an older waiting poll must now answer 409
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        batch: list[Json] = []
        try:
            while True:
                wake = self._updates_changed
                if generation != self._poll_generation:
                    return self._finish(call, error=ApiError(409, _CONFLICT_POLL))
                if self._closing.is_set():
                    break
                batch = self._take_batch(limit)
                remaining = deadline - loop.time()
                if batch or remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), remaining)
        except asyncio.CancelledError:
            call.status, call.error = 499, "client closed request"
            self._record(call)
            raise
        response = self._finish(call, result=batch)
        if fault is not None and fault.delay:
            await self._sleep(fault.delay)
        return response

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._pending = [
                p for p in self._pending if p.sticky or p.update["update_id"] >= offset
            ]
        elif offset < 0:
            self._pending.sort(key=lambda p: int(p.update["update_id"]))
            self._pending = self._pending[offset:]

    def _is_allowed(self, update: Json) -> bool:
        kind = _update_type(update)
        if self._allowed_updates is None:
            return kind not in _OPT_IN_UPDATES
        return kind in self._allowed_updates

    def _take_batch(self, limit: int) -> list[Json]:
        self._pending = [p for p in self._pending if self._is_allowed(p.update)]
        self._pending.sort(key=lambda p: int(p.update["update_id"]))
        batch = self._pending[:limit]
        for pending in batch:
            pending.sticky = False
        return [pending.update for pending in batch]

    def _wake_pollers(self) -> None:
        wake, self._updates_changed = self._updates_changed, asyncio.Event()
        wake.set()

    def _get_webhook_info(self, req: ApiRequest) -> Json:
        info: Json = {
            "url": self._webhook_url,
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._allowed_updates is not None:
            info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    def _set_webhook(self, req: ApiRequest) -> bool:
        url = req.params.get("url")
        if not isinstance(url, str):
            raise ApiError(400, "Bad Request: bad webhook: URL must be provided")
        if url and not url.startswith("https://"):
            raise ApiError(400, "Bad Request: bad webhook: HTTPS url must be provided for webhook")
        if req.params.get("drop_pending_updates"):
            self._pending.clear()
        allowed = req.params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) if allowed else None
        self._webhook_url = url
        self._wake_pollers()
        return True

    def _delete_webhook(self, req: ApiRequest) -> bool:
        if req.params.get("drop_pending_updates"):
            self._pending.clear()
        self._webhook_url = ""
        return True

    @property
    def webhook_url(self) -> str:
        return self._webhook_url

    @property
    def pending_updates(self) -> int:
        """Updates injected but not yet confirmed by a getUpdates offset (held ones excluded)."""
        return len(self._pending)

    # ------------------------------------------------------------------ update injection

    def inject(self, update: Json) -> Json:
        """Queue a raw update; assigns ``update_id`` unless given (a given old id = redelivery)."""
        self._enqueue([self._assign(update)])
        return update

    def inject_many(self, updates: list[Json]) -> list[Json]:
        """Queue several raw updates so that they appear together in one getUpdates answer."""
        self._enqueue([self._assign(update) for update in updates])
        return updates

    @contextlib.contextmanager
    def held_updates(self) -> Iterator[None]:
        """Hold every update injected inside the block; release them all at once at its end."""
        self._hold_depth += 1
        try:
            yield
        finally:
            self._hold_depth -= 1
            if self._hold_depth == 0 and self._held:
                held, self._held = self._held, []
                self._enqueue(held)

    batch = held_updates

    def _assign(self, update: Json) -> _Pending:
        sticky = False
        if "update_id" in update:
            update_id = int(update["update_id"])
            sticky = update_id < self._next_update_id
            self._next_update_id = max(self._next_update_id, update_id + 1)
        else:
            update["update_id"] = self._next_update_id
            self._next_update_id += 1
        query = update.get("callback_query")
        if isinstance(query, dict) and "id" in query:
            self.world.callback_ids.add(str(query["id"]))
        return _Pending(update, sticky)

    def _enqueue(self, pending: list[_Pending]) -> None:
        if self._hold_depth:
            self._held.extend(pending)
            return
        self._pending.extend(pending)
        self._wake_pollers()
        self._notify()

    def _user_message(
        self,
        user: TgUser,
        chat_id: int | None,
        content: Json,
        *,
        reply_to_message_id: int | None = None,
        media_group_id: str | None = None,
    ) -> Json:
        self.world.users[user.id] = user
        chat = user.id if chat_id is None else chat_id
        content = dict(content)
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        if reply_to_message_id is not None:
            target = self.world.reply_snapshot(chat, reply_to_message_id)
            content["reply_to_message"] = target or {
                "message_id": reply_to_message_id,
                "chat": self.world.chat(chat),
                "date": now(),
            }
        message = self.world.new_message(chat, user.to_dict(), content)
        return self.inject({"message": copy.deepcopy(message)})

    def send_text(
        self,
        user: TgUser,
        text: str,
        *,
        chat_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> Json:
        """A text message from ``user``; a leading /command gets a bot_command entity."""
        content: Json = {"text": text}
        command = text.split(maxsplit=1)[0] if text.startswith("/") else ""
        if len(command) > 1:
            content["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
            ]
        return self._user_message(user, chat_id, content, reply_to_message_id=reply_to_message_id)

    def send_photo(
        self,
        user: TgUser,
        image_bytes: bytes,
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        media_group_id: str | None = None,
        width: int | None = None,
        height: int | None = None,
        file_unique_id: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> Json:
        """A compressed photo; the bytes become downloadable via getFile (thumb + full size)."""
        stored = self.world.register_file(
            image_bytes, "photo", file_unique_id=file_unique_id, width=width, height=height
        )
        content = self.world.media_content("photo", stored, {})
        if caption is not None:
            content["caption"] = caption
        return self._user_message(
            user,
            chat_id,
            content,
            media_group_id=media_group_id,
            reply_to_message_id=reply_to_message_id,
        )

    def send_document(
        self,
        user: TgUser,
        data: bytes,
        *,
        file_name: str = "photo.jpg",
        mime_type: str = "image/jpeg",
        caption: str | None = None,
        chat_id: int | None = None,
        media_group_id: str | None = None,
        file_unique_id: str | None = None,
    ) -> Json:
        """A file sent as document (e.g. an uncompressed photo)."""
        stored = self.world.register_file(
            data,
            "document",
            file_name=file_name,
            mime_type=mime_type,
            file_unique_id=file_unique_id,
        )
        content = self.world.media_content("document", stored, {})
        if caption is not None:
            content["caption"] = caption
        return self._user_message(user, chat_id, content, media_group_id=media_group_id)

    def send_location(
        self,
        user: TgUser,
        latitude: float,
        longitude: float,
        *,
        live_period: int | None = None,
        chat_id: int | None = None,
        horizontal_accuracy: float | None = None,
    ) -> Json:
        location: Json = {"latitude": latitude, "longitude": longitude}
        if live_period is not None:
            location["live_period"] = live_period
        if horizontal_accuracy is not None:
            location["horizontal_accuracy"] = horizontal_accuracy
        return self._user_message(user, chat_id, {"location": location})

    def send_venue(
        self,
        user: TgUser,
        latitude: float,
        longitude: float,
        title: str,
        address: str,
        *,
        chat_id: int | None = None,
    ) -> Json:
        """A venue; like Telegram the message carries both ``venue`` and ``location``."""
        location: Json = {"latitude": latitude, "longitude": longitude}
        venue = {"location": location, "title": title, "address": address}
        return self._user_message(user, chat_id, {"venue": venue, "location": dict(location)})

    def send_contact(
        self,
        user: TgUser,
        phone_number: str,
        first_name: str = "Rider",
        *,
        chat_id: int | None = None,
    ) -> Json:
        """The user's own contact (``user_id`` = the sender), as a request_contact button sends."""
        contact = {"phone_number": phone_number, "first_name": first_name, "user_id": user.id}
        return self._user_message(user, chat_id, {"contact": contact})

    def send_message_fields(
        self, user: TgUser, *, chat_id: int | None = None, **fields: Any
    ) -> Json:
        """A message with arbitrary content fields (video, animation, sticker, voice, ...)."""
        return self._user_message(user, chat_id, fields)

    def edit_user_message(
        self, user: TgUser, message_id: int, *, chat_id: int | None = None, **fields: Any
    ) -> Json:
        """The user edits an earlier message (e.g. a live location moves): edited_message."""
        chat = user.id if chat_id is None else chat_id
        message = self.world.messages.get((chat, message_id))
        if message is None:
            raise KeyError(f"no message {message_id} in chat {chat}")
        message.update(fields)
        message["edit_date"] = now()
        return self.inject({"edited_message": copy.deepcopy(message)})

    def press_button(
        self,
        user: TgUser,
        message: SentMessage | int,
        data: str,
        *,
        chat_id: int | None = None,
    ) -> Json:
        """A callback_query from ``user`` on ``message`` (current state), with ``data``.

        ``message`` may be a message id the bot never sent (forged press): then a plausible
        bot message is made up. ``chat_id`` defaults to the message's chat / the user's chat.
        """
        self.world.users[user.id] = user
        if isinstance(message, SentMessage):
            chat = message.chat_id
            shown = copy.deepcopy(message.raw)
        else:
            chat = user.id if chat_id is None else chat_id
            stored = self.world.messages.get((chat, message))
            shown = copy.deepcopy(stored) if stored is not None else self._made_up(chat, message)
        self._callback_seq += 1
        query = {
            "id": str(4_300_000_000_000_000_000 + self._callback_seq),
            "from": user.to_dict(),
            "message": shown,
            "chat_instance": str(abs(chat) * 7 + 1_000_003),
            "data": data,
        }
        return self.inject({"callback_query": query})

    def _made_up(self, chat_id: int, message_id: int) -> Json:
        """A plausible bot message for a button press on a message the fake never saw."""
        return {
            "message_id": message_id,
            "from": dict(self.world.bot_user),
            "chat": self.world.chat(chat_id),
            "date": now(),
        }

    # ------------------------------------------------------------------ inspection

    def calls_to(self, method: str) -> list[Call]:
        name = method.lower()
        return [call for call in self.calls if call.method.lower() == name]

    def bot_calls(self) -> list[Call]:
        """Every recorded call except getUpdates."""
        return [call for call in self.calls if call.method != "getUpdates"]

    @property
    def sent(self) -> list[SentMessage]:
        """Every message the bot sent, in order, including deleted ones."""
        return self.world.sent

    @property
    def callback_answers(self) -> list[Json]:
        return self.world.callback_answers

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        """Messages the bot sent to ``chat_id`` and did not delete, in order."""
        return [m for m in self.world.sent if m.chat_id == chat_id and not m.deleted]

    def last_sent(self, chat_id: int) -> SentMessage:
        messages = self.sent_to(chat_id)
        if not messages:
            raise AssertionError(f"the bot sent nothing (not deleted) to chat {chat_id}")
        return messages[-1]

    def file_bytes(self, file_id: str) -> bytes:
        return self.world.files[file_id].data

    def commands(self, scope: Json | None = None, language_code: str = "") -> list[Json]:
        """Commands stored by setMyCommands for (scope, language_code); [] if none."""
        return copy.deepcopy(self.world.commands.get(commands_key(scope, language_code), []))

    def menu_button(self, chat_id: int | None = None) -> Json | None:
        """Menu button stored by setChatMenuButton for ``chat_id`` (None = the default one)."""
        return self.world.menu_buttons.get(chat_id)

    def block_chat(self, chat_id: int) -> None:
        """Sending to ``chat_id`` now fails with 403 (user blocked the bot / bot was kicked)."""
        self.world.blocked.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        self.world.blocked.discard(chat_id)

    def set_chat(self, chat_id: int, **fields: Any) -> None:
        """Override the Chat object for ``chat_id`` (e.g. ``title=``, ``type="group"``)."""
        base = {"type": "private" if chat_id > 0 else "supergroup"}
        self.world.chat_overrides[chat_id] = base | fields

    def set_chat_member(self, chat_id: int, user: TgUser | int, status: str = "member") -> None:
        """Status getChatMember reports ("creator", "administrator", "member", "left", ...)."""
        if isinstance(user, TgUser):
            self.world.users[user.id] = user
            user = user.id
        self.world.members[(chat_id, user)] = status

    # ------------------------------------------------------------------ waiting

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 10.0,  # noqa: ASYNC109 - part of the documented API
        *,
        description: str | Callable[[], str] | None = None,
    ) -> None:
        """Wait until ``predicate()`` is true; re-checked whenever a call is recorded."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            if predicate():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                what = description() if callable(description) else description
                raise AssertionError(self._timeout_report(what or repr(predicate), timeout))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int,
        timeout: float = 10.0,  # noqa: ASYNC109 - part of the documented API
    ) -> list[SentMessage]:
        """Wait until the bot has sent at least ``count`` messages to ``chat_id`` in total.

        Deleted messages count (they were sent) and are included in the returned list.
        """

        def messages() -> list[SentMessage]:
            return [m for m in self.world.sent if m.chat_id == chat_id]

        def describe() -> str:
            texts = [m.text for m in messages()]
            return f"{count} message(s) to chat {chat_id}; got {len(texts)}: {texts!r}"

        await self.wait_for(lambda: len(messages()) >= count, timeout, description=describe)
        return messages()

    def _timeout_report(self, what: str, timeout: float) -> str:
        recent = self.bot_calls()[-15:]
        lines = [f"timed out after {timeout}s waiting for {what}"]
        lines.append(f"last {len(recent)} of {len(self.bot_calls())} bot calls:")
        lines += [f"  {call.summary()}" for call in recent] or ["  (none)"]
        polls = self.calls_to("getUpdates")
        lines.append(f"getUpdates calls: {len(polls)}; unconfirmed updates: {len(self._pending)}")
        if self._held:
            lines.append(f"{len(self._held)} update(s) still held by held_updates()")
        if self.internal_errors:
            lines.append(f"fakegram internal errors: {self.internal_errors!r}")
        return "\n".join(lines)
