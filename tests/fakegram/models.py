"""Plain data objects of the fake: users, recorded calls, bot-sent messages, files, errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": status, "description": ...}``."""

    def __init__(self, status: int, description: str, parameters: Json | None = None) -> None:
        super().__init__(f"{status} {description}")
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> Json:
        body: Json = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass
class TgUser:
    """A human Telegram user that tests make talk to the bot."""

    id: int
    first_name: str = "Rider"
    language_code: str | None = "zh-hans"
    username: str | None = None
    last_name: str | None = None

    def to_dict(self) -> Json:
        data: Json = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        return data


@dataclass
class Call:
    """One HTTP request the bot made, as the fake saw and answered it.

    ``method`` is the canonical Bot API name (``sendMessage``) whatever case the client used;
    file downloads are recorded as ``downloadFile`` with ``params == {"file_path": ...}``.
    ``at`` is ``time.monotonic()`` at arrival. ``result`` is the ``result`` of a successful
    answer and ``error`` the description of a failed one.
    """

    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    status: int
    at: float
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def summary(self) -> str:
        parts = [f"{self.method} -> {self.status}"]
        for key in ("chat_id", "message_id", "callback_query_id", "offset"):
            if key in self.params:
                parts.append(f"{key}={self.params[key]!r}")
        text = self.params.get("text", self.params.get("caption"))
        if text is not None:
            shown = str(text) if len(str(text)) <= 60 else str(text)[:57] + "..."
            parts.append(f"text={shown!r}")
        if self.error:
            parts.append(f"error={self.error!r}")
        return " ".join(parts)


@dataclass(eq=False)
class SentMessage:
    """A message the bot sent, kept up to date by edit* and delete* calls.

    ``text`` is the text or caption as the user sees it (after ``parse_mode`` processing).
    ``reply_markup`` is the markup the bot sent (any keyboard kind); ``raw["reply_markup"]``
    only ever holds inline keyboards, like Telegram's Message objects. ``params`` are the
    decoded parameters of the request that created the message.
    """

    chat_id: int
    message_id: int
    kind: str
    text: str  # "" for messages without text or caption
    reply_markup: Json | None
    file_bytes: bytes | None
    location: tuple[float, float] | None
    deleted: bool = False
    edits: int = 0
    raw: Json = field(default_factory=dict)
    params: Json = field(default_factory=dict)

    def buttons(self) -> list[tuple[str, str]]:
        """(text, data) of every keyboard button, row by row.

        ``data`` is ``callback_data``, else the ``url`` / web app url, else ``""``.
        """
        markup = self.reply_markup or {}
        rows = markup.get("inline_keyboard") or markup.get("keyboard") or []
        found: list[tuple[str, str]] = []
        for row in rows:
            for button in row:
                if isinstance(button, str):
                    found.append((button, ""))
                    continue
                data = button.get("callback_data") or button.get("url")
                if data is None and isinstance(button.get("web_app"), dict):
                    data = button["web_app"].get("url")
                found.append((str(button.get("text", "")), str(data or "")))
        return found

    def button(self, text_contains: str) -> str:
        """callback_data of the first button whose text contains ``text_contains``."""
        for text, data in self.buttons():
            if text_contains in text:
                return data
        raise AssertionError(
            f"no button containing {text_contains!r} in message {self.message_id} "
            f"to chat {self.chat_id} (text={self.text!r}); buttons: {self.buttons()!r}"
        )


@dataclass
class Upload:
    """A file part of a multipart request."""

    data: bytes
    filename: str | None = None
    content_type: str | None = None


@dataclass
class StoredFile:
    """A file known to the fake server (uploaded by the bot or injected by a test)."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int | None = None
    height: int | None = None
    kind: str = "document"
    thumb: StoredFile | None = None

    @property
    def file_size(self) -> int:
        return len(self.data)

    def photo_size(self) -> Json:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width or 0,
            "height": self.height or 0,
            "file_size": self.file_size,
        }

    def file_object(self) -> Json:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": self.file_size,
            "file_path": self.file_path,
        }
