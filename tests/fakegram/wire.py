"""Decoding Bot API requests the way Telegram does.

Clients such as PTB send ``application/x-www-form-urlencoded`` (no files) or
``multipart/form-data`` (with files), where every non-string value is a JSON string
(``chat_id=123``, ``reply_markup={"inline_keyboard": ...}``). ``application/json`` bodies and
query-string parameters are accepted as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .models import Upload

# Parameters whose string value is JSON (numbers, booleans, objects, arrays).
JSON_KEYS = frozenset(
    {
        "chat_id",
        "message_id",
        "message_ids",
        "message_thread_id",
        "reply_markup",
        "reply_to_message_id",
        "reply_parameters",
        "entities",
        "caption_entities",
        "latitude",
        "longitude",
        "offset",
        "limit",
        "timeout",
        "allowed_updates",
        "commands",
        "scope",
        "media",
        "menu_button",
        "show_alert",
        "cache_time",
        "drop_pending_updates",
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "disable_content_type_detection",
        "has_spoiler",
        "show_caption_above_media",
        "supports_streaming",
        "live_period",
        "horizontal_accuracy",
        "heading",
        "proximity_alert_radius",
        "duration",
        "width",
        "height",
        "user_id",
        "from_chat_id",
        "link_preview_options",
        "max_connections",
        "revoke_messages",
        "until_date",
    }
)
# Free-text parameters that must never be JSON-decoded even if they look like JSON.
TEXT_KEYS = frozenset(
    {
        "text",
        "caption",
        "title",
        "address",
        "description",
        "short_description",
        "first_name",
        "last_name",
        "phone_number",
        "question",
        "explanation",
        "url",
        "custom_title",
        "name",
        "query",
        "callback_query_id",
        "inline_message_id",
        "file_id",
        "parse_mode",
        "language_code",
        "action",
    }
)


@dataclass
class ApiRequest:
    """A decoded Bot API call: canonical method name, parameters and uploaded file parts."""

    method: str
    params: dict[str, Any] = field(default_factory=dict)
    uploads: dict[str, Upload] = field(default_factory=dict)


def decode_value(key: str, value: str) -> Any:
    """Decode one form value: JSON for structured/numeric keys, the raw string otherwise."""
    if key in TEXT_KEYS:
        return value
    if key in JSON_KEYS or value[:1] in ("{", "["):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, dict | list | int | float | bool):
            return decoded
    return value


async def read_params(request: web.Request) -> tuple[dict[str, Any], dict[str, Upload]]:
    """Collect the parameters and file parts of ``request`` (query string and body)."""
    params: dict[str, Any] = {key: decode_value(key, value) for key, value in request.query.items()}
    uploads: dict[str, Upload] = {}
    if not request.can_read_body:
        return params, uploads
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("JSON body must be an object")
        for key, value in body.items():
            params[key] = decode_value(key, value) if isinstance(value, str) else value
        return params, uploads
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                uploads[key] = Upload(value.file.read(), value.filename, value.content_type)
            elif isinstance(value, bytes | bytearray):
                uploads[key] = Upload(bytes(value))
            else:
                params[key] = decode_value(key, value)
    return params, uploads


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(body, ensure_ascii=False).encode("utf-8"),
        content_type="application/json",
    )


def nginx_502() -> web.Response:
    body = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return web.Response(status=502, text=body, content_type="text/html")
