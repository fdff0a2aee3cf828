"""The state of the fake Telegram (chats, messages, files, settings) and the Bot API methods.

Every method implementation is synchronous and validates everything before it changes any
state, so a request either fails with an :class:`ApiError` and leaves no trace, or takes full
effect. Methods that touch the update queue (getUpdates, webhooks) live in ``server.py``.
"""

from __future__ import annotations

import copy
import io
import json
import mimetypes
import re
import time
from collections.abc import Callable
from typing import Any

from .formatting import Entity, format_text
from .models import ApiError, Json, SentMessage, StoredFile, TgUser, Upload
from .wire import ApiRequest

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
_INT_RE = re.compile(r"-?\d+")
_LANGUAGE_RE = re.compile(r"[a-z]{2}")
_BLOCKABLE_PREFIXES = ("send", "copy", "forward", "edit")
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Message keys that make up a message's content (copied by copyMessage / forwardMessage).
_CONTENT_KEYS = (
    "text",
    "entities",
    "link_preview_options",
    "animation",
    "photo",
    "video",
    "video_note",
    "audio",
    "voice",
    "sticker",
    "document",
    "caption",
    "caption_entities",
    "has_media_spoiler",
    "venue",
    "location",
    "contact",
    "poll",
    "dice",
)
# Message kinds in detection order (animation messages also carry "document",
# venue messages also carry "location").
_KINDS = (
    "text",
    "photo",
    "animation",
    "video",
    "video_note",
    "audio",
    "voice",
    "sticker",
    "document",
    "venue",
    "location",
    "contact",
    "poll",
    "dice",
)
_MEDIA_KINDS = ("photo", "animation", "video", "audio", "voice", "document", "video_note")
# kind -> (file_path folder, default extension, file_id prefix)
_FILE_KINDS: dict[str, tuple[str, str | None, str]] = {
    "photo": ("photos", "jpg", "AgAC"),
    "document": ("documents", None, "BQAC"),
    "video": ("videos", "mp4", "BAAC"),
    "animation": ("animations", "mp4", "CgAC"),
    "audio": ("music", "mp3", "CQAC"),
    "voice": ("voice", "oga", "AwAC"),
    "sticker": ("stickers", "webp", "CAAC"),
    "video_note": ("video_notes", "mp4", "DQAC"),
}
_DEFAULT_PHOTO_SIZE = (1280, 960)
_THUMB_SIDE = 90


def now() -> int:
    return int(time.time())


def image_size(data: bytes) -> tuple[int, int] | None:
    """Pixel size of an image, or None if ``data`` is not an image Pillow can read."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None


def _without_reply(message: Json) -> Json:
    """Deep copy of ``message`` as Telegram nests it (no further reply_to_message)."""
    return copy.deepcopy({k: v for k, v in message.items() if k != "reply_to_message"})


def message_kind(message: Json) -> str:
    return next((kind for kind in _KINDS if kind in message), "unknown")


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INT_RE.fullmatch(value):
        return int(value)
    return None


class World:
    """Everything the fake Telegram knows, plus the Bot API methods operating on it."""

    def __init__(self, token: str) -> None:
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_user: Json = {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "FakeBot",
            "username": "fake_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }
        self.users: dict[int, TgUser] = {}
        self.chat_overrides: dict[int, Json] = {}
        self.blocked: set[int] = set()
        self.members: dict[tuple[int, int], str] = {}
        self.files: dict[str, StoredFile] = {}
        self.files_by_path: dict[str, StoredFile] = {}
        # Every message (user's and bot's) by (chat_id, message_id), in its current state.
        self.messages: dict[tuple[int, int], Json] = {}
        self.deleted: set[tuple[int, int]] = set()
        self.sent: list[SentMessage] = []
        self.sent_index: dict[tuple[int, int], SentMessage] = {}
        self.callback_answers: list[Json] = []
        self.callback_ids: set[str] = set()
        self.commands: dict[tuple[str, str], list[Json]] = {}
        self.menu_buttons: dict[int | None, Json] = {}
        self.bot_settings: dict[str, Json] = {}
        self._last_message_id: dict[int, int] = {}
        self._file_seq = 0
        self._media_group_seq = 0
        self.methods: dict[str, Callable[[ApiRequest], Any]] = {
            "getMe": self.get_me,
            "getChat": self.get_chat,
            "getChatMember": self.get_chat_member,
            "getChatAdministrators": self.get_chat_administrators,
            "getFile": self.get_file,
            "sendMessage": self.send_message,
            "sendPhoto": lambda req: self._send_media(req, "photo"),
            "sendDocument": lambda req: self._send_media(req, "document"),
            "sendVideo": lambda req: self._send_media(req, "video"),
            "sendAnimation": lambda req: self._send_media(req, "animation"),
            "sendAudio": lambda req: self._send_media(req, "audio"),
            "sendVoice": lambda req: self._send_media(req, "voice"),
            "sendVideoNote": lambda req: self._send_media(req, "video_note"),
            "sendSticker": lambda req: self._send_media(req, "sticker"),
            "sendLocation": self.send_location,
            "sendVenue": self.send_venue,
            "sendContact": self.send_contact,
            "sendMediaGroup": self.send_media_group,
            "sendChatAction": self.send_chat_action,
            "copyMessage": self.copy_message,
            "forwardMessage": self.forward_message,
            "editMessageText": self.edit_message_text,
            "editMessageCaption": self.edit_message_caption,
            "editMessageReplyMarkup": self.edit_message_reply_markup,
            "editMessageMedia": self.edit_message_media,
            "deleteMessage": self.delete_message,
            "deleteMessages": self.delete_messages,
            "answerCallbackQuery": self.answer_callback_query,
            "setMyCommands": self.set_my_commands,
            "getMyCommands": self.get_my_commands,
            "deleteMyCommands": self.delete_my_commands,
            "setChatMenuButton": self.set_chat_menu_button,
            "getChatMenuButton": self.get_chat_menu_button,
            "setMyName": self._store_setting,
            "setMyDescription": self._store_setting,
            "setMyShortDescription": self._store_setting,
            "setMyDefaultAdministratorRights": self._store_setting,
            "close": lambda req: True,
            "logOut": lambda req: True,
        }

    # ------------------------------------------------------------------ dispatch

    def handle(self, req: ApiRequest) -> Any:
        if req.method.startswith(_BLOCKABLE_PREFIXES):
            chat_id = _as_int(req.params.get("chat_id"))
            if chat_id is not None and chat_id in self.blocked:
                if chat_id < 0:
                    raise ApiError(403, "Forbidden: bot was kicked from the supergroup chat")
                raise ApiError(403, "Forbidden: bot was blocked by the user")
        return self.methods[req.method](req)

    # ------------------------------------------------------------------ chats and messages

    def chat(self, chat_id: int) -> Json:
        if chat_id in self.chat_overrides:
            return {"id": chat_id, **self.chat_overrides[chat_id]}
        if chat_id > 0:
            user = self.users.get(chat_id)
            chat: Json = {"id": chat_id, "type": "private"}
            chat["first_name"] = user.first_name if user else "User"
            if user and user.last_name:
                chat["last_name"] = user.last_name
            if user and user.username:
                chat["username"] = user.username
            return chat
        return {"id": chat_id, "type": "supergroup", "title": f"Test group {chat_id}"}

    def next_message_id(self, chat_id: int) -> int:
        self._last_message_id[chat_id] = self._last_message_id.get(chat_id, 0) + 1
        return self._last_message_id[chat_id]

    def new_message(self, chat_id: int, sender: Json, content: Json) -> Json:
        """Create and store a message (``sender`` is the ``from`` object)."""
        message_id = self.next_message_id(chat_id)
        message: Json = {
            "message_id": message_id,
            "from": copy.deepcopy(sender),
            "chat": self.chat(chat_id),
            "date": now(),
            **content,
        }
        self.messages[(chat_id, message_id)] = message
        return message

    def live_message(self, chat_id: int, message_id: int) -> Json | None:
        if (chat_id, message_id) in self.deleted:
            return None
        return self.messages.get((chat_id, message_id))

    def reply_snapshot(self, chat_id: int, message_id: int) -> Json | None:
        message = self.live_message(chat_id, message_id)
        return _without_reply(message) if message is not None else None

    def content_bytes(self, content: Json) -> bytes | None:
        kind = message_kind(content)
        media = content.get(kind)
        if kind == "photo" and isinstance(media, list) and media:
            media = media[-1]
        if isinstance(media, dict) and "file_id" in media:
            stored = self.files.get(media["file_id"])
            return stored.data if stored else None
        return None

    # ------------------------------------------------------------------ files

    def register_file(
        self,
        data: bytes,
        kind: str,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        file_unique_id: str | None = None,
        width: int | None = None,
        height: int | None = None,
    ) -> StoredFile:
        """Store ``data`` as a new Telegram file (photos also get a small thumbnail size)."""
        folder, extension, prefix = _FILE_KINDS.get(kind, _FILE_KINDS["document"])
        if extension is None:
            suffix = file_name.rsplit(".", 1)[-1] if file_name and "." in file_name else None
            guessed = mimetypes.guess_extension(mime_type) if mime_type else None
            extension = suffix or (guessed.lstrip(".") if guessed else "bin")
        self._file_seq += 1
        seq = self._file_seq
        stored = StoredFile(
            file_id=f"{prefix}FakeFile{seq:06d}",
            file_unique_id=file_unique_id or f"AQADFake{seq:06d}",
            data=data,
            file_path=f"{folder}/file_{seq}.{extension}",
            file_name=file_name,
            mime_type=mime_type,
            kind=kind,
        )
        if kind == "photo":
            if width is None or height is None:
                width, height = image_size(data) or _DEFAULT_PHOTO_SIZE
            stored.width, stored.height = width, height
            scale = min(1.0, _THUMB_SIDE / max(width, height, 1))
            self._file_seq += 1
            stored.thumb = StoredFile(
                file_id=f"{prefix}FakeThumb{self._file_seq:06d}",
                file_unique_id=f"{stored.file_unique_id}-s",
                data=data,
                file_path=f"{folder}/file_{self._file_seq}.{extension}",
                width=max(1, round(width * scale)),
                height=max(1, round(height * scale)),
                kind=kind,
            )
            self._index_file(stored.thumb)
        self._index_file(stored)
        return stored

    def _index_file(self, stored: StoredFile) -> None:
        self.files[stored.file_id] = stored
        self.files_by_path[stored.file_path] = stored

    def media_content(self, kind: str, stored: StoredFile, params: Json) -> Json:
        """The message fields for a ``kind`` message carrying ``stored``."""
        if kind == "photo":
            sizes = [stored.photo_size()]
            if stored.thumb is not None:
                sizes.insert(0, stored.thumb.photo_size())
            return {"photo": sizes}
        media: Json = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.file_size,
        }
        if kind in ("document", "animation", "audio"):
            media["file_name"] = stored.file_name or stored.file_path.rsplit("/", 1)[-1]
            if stored.mime_type:
                media["mime_type"] = stored.mime_type
        if kind in ("video", "animation", "audio", "voice", "video_note"):
            media["duration"] = int(params.get("duration") or 1)
        if kind in ("video", "animation"):
            media["width"] = int(params.get("width") or stored.width or 640)
            media["height"] = int(params.get("height") or stored.height or 480)
        if kind == "video_note":
            media["length"] = int(params.get("length") or 240)
        if kind == "sticker":
            media |= {"type": "regular", "width": 512, "height": 512}
            media |= {"is_animated": False, "is_video": False}
        if kind == "animation":
            return {"animation": media, "document": dict(media)}
        return {kind: media}

    def _file_source(self, req: ApiRequest, key: str, value: Any = None) -> StoredFile | Upload:
        """Resolve a file parameter: an upload, an attach:// reference or an existing file_id."""
        if value is None:
            value = req.params.get(key)
        if value is None:
            upload = req.uploads.get(key)
            if upload is None:
                raise ApiError(400, f"Bad Request: there is no {key} in the request")
            return upload
        if isinstance(value, str):
            if value.startswith("attach://"):
                upload = req.uploads.get(value.removeprefix("attach://"))
                if upload is None:
                    raise ApiError(400, f"Bad Request: file {value} not found in the request")
                return upload
            if value in self.files:
                return self.files[value]
            if value.startswith(("http://", "https://")):
                return Upload(b"", filename=value.rsplit("/", 1)[-1] or None)
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _commit_file(self, source: StoredFile | Upload, kind: str) -> StoredFile:
        if isinstance(source, StoredFile):
            return source
        return self.register_file(
            source.data, kind, file_name=source.filename, mime_type=source.content_type
        )

    # ------------------------------------------------------------------ parameter helpers

    def _chat_id(self, req: ApiRequest, key: str = "chat_id") -> int:
        value = req.params.get(key)
        if value is None or value == "":
            raise ApiError(400, f"Bad Request: {key} is empty")
        chat_id = _as_int(value)
        if chat_id is None:
            raise ApiError(400, "Bad Request: chat not found")
        return chat_id

    def _message_id(self, req: ApiRequest) -> int:
        value = req.params.get("message_id")
        if value is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message_id = _as_int(value)
        if message_id is None:
            raise ApiError(400, "Bad Request: invalid message identifier specified")
        return message_id

    def _float(self, req: ApiRequest, key: str, limit: float) -> float:
        value = req.params.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > limit:
            raise ApiError(400, f"Bad Request: wrong {key} specified")
        return float(value)

    @staticmethod
    def _render(
        raw: Any,
        parse_mode: Any,
        entities: Any,
        *,
        limit: int,
        too_long: str,
        empty: str | None,
    ) -> tuple[str | None, list[Entity]]:
        """Apply parse_mode/entities to a text or caption and check it like Telegram."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if empty:
                raise ApiError(400, empty)
            return None, []
        raw = raw if isinstance(raw, str) else json.dumps(raw)
        if isinstance(entities, list):
            text, parsed = raw, entities
        else:
            text, parsed = format_text(raw, parse_mode if isinstance(parse_mode, str) else None)
        if not text.strip():
            if empty:
                raise ApiError(400, empty)
            return None, []
        if len(text) > limit:
            raise ApiError(400, too_long)
        return text, parsed

    def _text(self, req: ApiRequest) -> tuple[str, list[Entity]]:
        text, entities = self._render(
            req.params.get("text"),
            req.params.get("parse_mode"),
            req.params.get("entities"),
            limit=TEXT_LIMIT,
            too_long="Bad Request: message is too long",
            empty="Bad Request: message text is empty",
        )
        assert text is not None
        return text, entities

    def _caption(self, source: Json) -> tuple[str | None, list[Entity]]:
        return self._render(
            source.get("caption"),
            source.get("parse_mode"),
            source.get("caption_entities"),
            limit=CAPTION_LIMIT,
            too_long="Bad Request: message caption is too long",
            empty=None,
        )

    def _markup(self, req: ApiRequest, *, inline_only: bool = False) -> Json | None:
        markup = req.params.get("reply_markup")
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            self._check_inline_keyboard(markup["inline_keyboard"], req.params.get("chat_id"))
        elif inline_only:
            raise ApiError(400, "Bad Request: inline keyboard expected")
        return markup

    @staticmethod
    def _check_inline_keyboard(rows: Any, chat_id: Any) -> None:
        """What the specification cannot say (its shape and limits are checked in spec.py).
        A Mini App's button opens only an https page, and only in a private chat."""
        for row in rows:
            for button in row:
                app = button.get("web_app")
                if isinstance(app, dict):
                    if not str(app.get("url", "")).startswith("https://"):
                        raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")
                    if (_as_int(chat_id) or 0) < 0:
                        raise ApiError(400, "Bad Request: BUTTON_TYPE_INVALID")
                if "url" in button:
                    url = button["url"]
                    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
                        raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")

    def _reply_target(self, req: ApiRequest, chat_id: int) -> Json | None:
        params = req.params.get("reply_parameters")
        if isinstance(params, dict):
            message_id = params.get("message_id")
            target_chat = _as_int(params.get("chat_id", chat_id))
            allow = bool(params.get("allow_sending_without_reply"))
        else:
            message_id = req.params.get("reply_to_message_id")
            target_chat = chat_id
            allow = bool(req.params.get("allow_sending_without_reply"))
        if message_id is None:
            return None
        target_id = _as_int(message_id)
        target = None
        if target_chat is not None and target_id is not None:
            target = self.reply_snapshot(target_chat, target_id)
        if target is None and not allow:
            raise ApiError(400, "Bad Request: message to be replied not found")
        return target

    def _commit_message(
        self,
        req: ApiRequest,
        chat_id: int,
        content: Json,
        *,
        markup: Json | None,
        reply_to: Json | None,
        file_bytes: bytes | None = None,
        media_group_id: str | None = None,
    ) -> Json:
        """Store a bot message and its SentMessage record; returns the Message object."""
        message = self.new_message(chat_id, self.bot_user, content)
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        if media_group_id is not None:
            message["media_group_id"] = media_group_id
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        if req.params.get("protect_content"):
            message["has_protected_content"] = True
        sent = SentMessage(
            chat_id=chat_id,
            message_id=message["message_id"],
            kind=message_kind(message),
            text=message.get("text", message.get("caption")) or "",
            reply_markup=markup,
            file_bytes=file_bytes,
            location=_location_of(message),
            raw=message,
            params=copy.deepcopy(req.params),
        )
        self.sent.append(sent)
        self.sent_index[(chat_id, sent.message_id)] = sent
        return message

    # ------------------------------------------------------------------ info methods

    def get_me(self, req: ApiRequest) -> Json:
        return dict(self.bot_user)

    def get_chat(self, req: ApiRequest) -> Json:
        chat = self.chat(self._chat_id(req))
        chat |= {"accent_color_id": 0, "max_reaction_count": 11}
        chat["accepted_gift_types"] = {
            "unlimited_gifts": False,
            "limited_gifts": False,
            "unique_gifts": False,
            "premium_subscription": False,
            "gifts_from_channels": False,
        }
        return chat

    def _user_dict(self, user_id: int) -> Json:
        if user_id == self.bot_id:
            return dict(self.bot_user)
        user = self.users.get(user_id)
        return user.to_dict() if user else {"id": user_id, "is_bot": False, "first_name": "User"}

    def _member(self, chat_id: int, user_id: int) -> Json:
        default = "administrator" if user_id == self.bot_id and chat_id < 0 else "member"
        status = self.members.get((chat_id, user_id), default)
        member: Json = {"status": status, "user": self._user_dict(user_id)}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member |= {
                "can_be_edited": False,
                "is_anonymous": False,
                "can_manage_chat": True,
                "can_delete_messages": True,
                "can_manage_video_chats": True,
                "can_restrict_members": True,
                "can_promote_members": False,
                "can_change_info": False,
                "can_invite_users": True,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
                "can_pin_messages": True,
            }
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def get_chat_member(self, req: ApiRequest) -> Json:
        user_id = _as_int(req.params.get("user_id"))
        if user_id is None:
            raise ApiError(400, "Bad Request: user_id is empty")
        return self._member(self._chat_id(req), user_id)

    def get_chat_administrators(self, req: ApiRequest) -> list[Json]:
        chat_id = self._chat_id(req)
        if chat_id > 0:
            raise ApiError(400, "Bad Request: there are no administrators in the private chat")
        admins = [
            self._member(chat, user)
            for (chat, user), status in self.members.items()
            if chat == chat_id and status in ("creator", "administrator")
        ]
        if (chat_id, self.bot_id) not in self.members:
            admins.append(self._member(chat_id, self.bot_id))
        return admins

    def get_file(self, req: ApiRequest) -> Json:
        stored = self.files.get(str(req.params.get("file_id", "")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if stored.file_size > 20 * 1024 * 1024:
            raise ApiError(400, "Bad Request: file is too big")
        return stored.file_object()

    # ------------------------------------------------------------------ sending

    def send_message(self, req: ApiRequest) -> Json:
        chat_id = self._chat_id(req)
        text, entities = self._text(req)
        markup = self._markup(req)
        reply_to = self._reply_target(req, chat_id)
        content: Json = {"text": text}
        if entities:
            content["entities"] = entities
        return self._commit_message(req, chat_id, content, markup=markup, reply_to=reply_to)

    def _send_media(self, req: ApiRequest, kind: str) -> Json:
        chat_id = self._chat_id(req)
        source = self._file_source(req, kind)
        if kind == "photo" and isinstance(source, StoredFile) and source.kind != "photo":
            raise ApiError(400, "Bad Request: type of file mismatch")
        caption, entities = self._caption(req.params)
        markup = self._markup(req)
        reply_to = self._reply_target(req, chat_id)
        stored = self._commit_file(source, kind)
        content = self.media_content(kind, stored, req.params)
        if caption is not None and kind != "sticker":
            content["caption"] = caption
            if entities:
                content["caption_entities"] = entities
        if req.params.get("has_spoiler"):
            content["has_media_spoiler"] = True
        return self._commit_message(
            req, chat_id, content, markup=markup, reply_to=reply_to, file_bytes=stored.data
        )

    def _location(self, req: ApiRequest) -> Json:
        location: Json = {
            "latitude": self._float(req, "latitude", 90),
            "longitude": self._float(req, "longitude", 180),
        }
        for key in ("live_period", "horizontal_accuracy", "heading", "proximity_alert_radius"):
            if req.params.get(key) is not None:
                location[key] = req.params[key]
        return location

    def send_location(self, req: ApiRequest) -> Json:
        chat_id = self._chat_id(req)
        location = self._location(req)
        markup = self._markup(req)
        reply_to = self._reply_target(req, chat_id)
        return self._commit_message(
            req, chat_id, {"location": location}, markup=markup, reply_to=reply_to
        )

    def send_venue(self, req: ApiRequest) -> Json:
        chat_id = self._chat_id(req)
        location = self._location(req)
        venue: Json = {"location": location}
        for key in ("title", "address"):
            if not req.params.get(key):
                raise ApiError(400, f"Bad Request: venue {key} is empty")
            venue[key] = str(req.params[key])
        for key in ("foursquare_id", "foursquare_type", "google_place_id", "google_place_type"):
            if req.params.get(key):
                venue[key] = req.params[key]
        markup = self._markup(req)
        reply_to = self._reply_target(req, chat_id)
        return self._commit_message(
            req,
            chat_id,
            {"venue": venue, "location": dict(location)},
            markup=markup,
            reply_to=reply_to,
        )

    def send_contact(self, req: ApiRequest) -> Json:
        chat_id = self._chat_id(req)
        contact: Json = {}
        for key in ("phone_number", "first_name"):
            if not req.params.get(key):
                raise ApiError(400, f"Bad Request: contact {key} is empty")
            contact[key] = str(req.params[key])
        if req.params.get("last_name"):
            contact["last_name"] = str(req.params["last_name"])
        markup = self._markup(req)
        reply_to = self._reply_target(req, chat_id)
        return self._commit_message(
            req, chat_id, {"contact": contact}, markup=markup, reply_to=reply_to
        )

    def send_media_group(self, req: ApiRequest) -> list[Json]:
        chat_id = self._chat_id(req)
        media = req.params.get("media")
        if not isinstance(media, list) or not media:
            raise ApiError(400, 'Bad Request: parameter "media" is required')
        if len(media) > 10:
            raise ApiError(400, "Bad Request: too many messages to send as an album")
        items: list[tuple[str, StoredFile | Upload, str | None, list[Entity]]] = []
        for item in media:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind not in ("photo", "video", "document", "audio"):
                raise ApiError(400, "Bad Request: wrong media type specified in the album")
            assert isinstance(item, dict)
            source = self._file_source(req, "media", item.get("media"))
            caption, entities = self._caption(item)
            items.append((kind, source, caption, entities))
        reply_to = self._reply_target(req, chat_id)
        self._media_group_seq += 1
        group_id = str(13_000_000_000_000_000 + self._media_group_seq)
        messages = []
        for kind, source, caption, entities in items:
            stored = self._commit_file(source, kind)
            content = self.media_content(kind, stored, {})
            if caption is not None:
                content["caption"] = caption
                if entities:
                    content["caption_entities"] = entities
            messages.append(
                self._commit_message(
                    req,
                    chat_id,
                    content,
                    markup=None,
                    reply_to=reply_to,
                    file_bytes=stored.data,
                    media_group_id=group_id,
                )
            )
        return messages

    def send_chat_action(self, req: ApiRequest) -> bool:
        self._chat_id(req)
        if req.params.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    def _source_message(self, req: ApiRequest, verb: str) -> Json:
        from_chat = self._chat_id(req, "from_chat_id")
        source = self.live_message(from_chat, self._message_id(req))
        if source is None:
            raise ApiError(400, f"Bad Request: message to {verb} not found")
        return source

    def copy_message(self, req: ApiRequest) -> Json:
        chat_id = self._chat_id(req)
        source = self._source_message(req, "copy")
        content = {key: copy.deepcopy(source[key]) for key in _CONTENT_KEYS if key in source}
        if not content:
            raise ApiError(400, "Bad Request: the message can't be copied")
        if "caption" in req.params or "caption_entities" in req.params:
            if "text" in content or message_kind(content) not in _MEDIA_KINDS:
                raise ApiError(400, "Bad Request: there is no caption in the message")
            caption, entities = self._caption(req.params)
            content.pop("caption", None)
            content.pop("caption_entities", None)
            if caption is not None:
                content["caption"] = caption
                if entities:
                    content["caption_entities"] = entities
        markup = self._markup(req)
        reply_to = self._reply_target(req, chat_id)
        message = self._commit_message(
            req,
            chat_id,
            content,
            markup=markup,
            reply_to=reply_to,
            file_bytes=self.content_bytes(content),
        )
        return {"message_id": message["message_id"]}

    def forward_message(self, req: ApiRequest) -> Json:
        chat_id = self._chat_id(req)
        source = self._source_message(req, "forward")
        content = {key: copy.deepcopy(source[key]) for key in _CONTENT_KEYS if key in source}
        if "forward_origin" in source:
            content["forward_origin"] = copy.deepcopy(source["forward_origin"])
        elif "from" in source:
            content["forward_origin"] = {
                "type": "user",
                "sender_user": copy.deepcopy(source["from"]),
                "date": source["date"],
            }
        else:
            content["forward_origin"] = {
                "type": "chat",
                "sender_chat": copy.deepcopy(source["chat"]),
                "date": source["date"],
            }
        return self._commit_message(
            req,
            chat_id,
            content,
            markup=None,
            reply_to=None,
            file_bytes=self.content_bytes(content),
        )

    # ------------------------------------------------------------------ editing

    def _editable(self, req: ApiRequest) -> SentMessage:
        if "inline_message_id" in req.params and "chat_id" not in req.params:
            raise ApiError(400, "Bad Request: message to edit not found")
        chat_id = self._chat_id(req)
        message_id = self._message_id(req)
        sent = self.sent_index.get((chat_id, message_id))
        if sent is None or sent.deleted:
            if self.live_message(chat_id, message_id) is not None:
                raise ApiError(400, "Bad Request: message can't be edited")
            raise ApiError(400, "Bad Request: message to edit not found")
        return sent

    @staticmethod
    def _apply_edit(sent: SentMessage, markup: Json | None, changes: Json) -> Json:
        raw = sent.raw
        for key, value in changes.items():
            if value is None:
                raw.pop(key, None)
            else:
                raw[key] = value
        if markup is not None:
            raw["reply_markup"] = markup
        else:
            raw.pop("reply_markup", None)
        raw["edit_date"] = now()
        sent.reply_markup = markup
        sent.kind = message_kind(raw)
        sent.text = raw.get("text", raw.get("caption")) or ""
        sent.location = _location_of(raw)
        sent.edits += 1
        return raw

    def edit_message_text(self, req: ApiRequest) -> Json:
        sent = self._editable(req)
        if "text" not in sent.raw:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text, entities = self._text(req)
        markup = self._markup(req, inline_only=True)
        if (
            text == sent.raw["text"]
            and entities == sent.raw.get("entities", [])
            and markup == sent.raw.get("reply_markup")
        ):
            raise ApiError(400, NOT_MODIFIED)
        return self._apply_edit(sent, markup, {"text": text, "entities": entities or None})

    def edit_message_caption(self, req: ApiRequest) -> Json:
        sent = self._editable(req)
        if sent.kind not in _MEDIA_KINDS:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption, entities = self._caption(req.params)
        markup = self._markup(req, inline_only=True)
        if (
            caption == sent.raw.get("caption")
            and entities == sent.raw.get("caption_entities", [])
            and markup == sent.raw.get("reply_markup")
        ):
            raise ApiError(400, NOT_MODIFIED)
        changes = {"caption": caption, "caption_entities": entities or None}
        return self._apply_edit(sent, markup, changes)

    def edit_message_reply_markup(self, req: ApiRequest) -> Json:
        sent = self._editable(req)
        markup = self._markup(req, inline_only=True)
        if markup == sent.raw.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        return self._apply_edit(sent, markup, {})

    def edit_message_media(self, req: ApiRequest) -> Json:
        sent = self._editable(req)
        if sent.kind not in _MEDIA_KINDS:
            raise ApiError(400, "Bad Request: there is no media in the message to edit")
        media = req.params.get("media")
        if not isinstance(media, dict):
            raise ApiError(400, 'Bad Request: parameter "media" is required')
        kind = media.get("type")
        if kind not in ("photo", "video", "animation", "audio", "document"):
            raise ApiError(400, "Bad Request: wrong media type specified")
        source = self._file_source(req, "media", media.get("media"))
        if kind == "photo" and isinstance(source, StoredFile) and source.kind != "photo":
            raise ApiError(400, "Bad Request: type of file mismatch")
        caption, entities = self._caption(media)
        markup = self._markup(req, inline_only=True)
        current = sent.raw.get(sent.kind)
        if isinstance(current, list):
            current = current[-1]
        if (
            isinstance(source, StoredFile)
            and isinstance(current, dict)
            and current.get("file_unique_id") == source.file_unique_id
            and caption == sent.raw.get("caption")
            and entities == sent.raw.get("caption_entities", [])
            and markup == sent.raw.get("reply_markup")
        ):
            raise ApiError(400, NOT_MODIFIED)
        stored = self._commit_file(source, kind)
        changes: Json = dict.fromkeys(_MEDIA_KINDS)
        changes |= self.media_content(kind, stored, media)
        changes |= {"caption": caption, "caption_entities": entities or None}
        raw = self._apply_edit(sent, markup, changes)
        sent.file_bytes = stored.data
        return raw

    def delete_message(self, req: ApiRequest) -> bool:
        key = (self._chat_id(req), self._message_id(req))
        if self.live_message(*key) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        self._mark_deleted(key)
        return True

    def delete_messages(self, req: ApiRequest) -> bool:
        chat_id = self._chat_id(req)
        ids = req.params.get("message_ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= 100:
            raise ApiError(400, "Bad Request: message identifiers are not specified")
        for message_id in ids:
            if isinstance(message_id, int) and self.live_message(chat_id, message_id):
                self._mark_deleted((chat_id, message_id))
        return True

    def _mark_deleted(self, key: tuple[int, int]) -> None:
        self.deleted.add(key)
        sent = self.sent_index.get(key)
        if sent is not None:
            sent.deleted = True

    # ------------------------------------------------------------------ callbacks and settings

    def answer_callback_query(self, req: ApiRequest) -> bool:
        query_id = str(req.params.get("callback_query_id", ""))
        if query_id not in self.callback_ids:
            raise ApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        self.callback_answers.append(copy.deepcopy(req.params))
        return True

    def _commands_key(self, req: ApiRequest) -> tuple[str, str]:
        scope = req.params.get("scope") or {"type": "default"}
        if not isinstance(scope, dict) or "type" not in scope:
            raise ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        language = str(req.params.get("language_code") or "")
        if language and not _LANGUAGE_RE.fullmatch(language):
            raise ApiError(400, "Bad Request: invalid language code specified")
        return commands_key(scope, language)

    def set_my_commands(self, req: ApiRequest) -> bool:
        commands = req.params["commands"]  # shape, names and lengths: checked in spec.py
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: too many commands specified")
        key = self._commands_key(req)
        if commands:
            self.commands[key] = copy.deepcopy(commands)
        else:
            self.commands.pop(key, None)
        return True

    def get_my_commands(self, req: ApiRequest) -> list[Json]:
        return copy.deepcopy(self.commands.get(self._commands_key(req), []))

    def delete_my_commands(self, req: ApiRequest) -> bool:
        self.commands.pop(self._commands_key(req), None)
        return True

    def set_chat_menu_button(self, req: ApiRequest) -> bool:
        chat_id = self._chat_id(req) if "chat_id" in req.params else None
        button = req.params.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or "type" not in button:
            raise ApiError(400, "Bad Request: can't parse menu button JSON object")
        self.menu_buttons[chat_id] = copy.deepcopy(button)
        return True

    def get_chat_menu_button(self, req: ApiRequest) -> Json:
        chat_id = self._chat_id(req) if "chat_id" in req.params else None
        button = self.menu_buttons.get(chat_id, self.menu_buttons.get(None, {"type": "default"}))
        return copy.deepcopy(button)

    def _store_setting(self, req: ApiRequest) -> bool:
        self.bot_settings[req.method] = copy.deepcopy(req.params)
        return True


def commands_key(scope: Json | None, language_code: str) -> tuple[str, str]:
    """Key of ``World.commands``: (scope as canonical JSON, language code or "")."""
    return json.dumps(scope or {"type": "default"}, sort_keys=True), language_code


def _location_of(message: Json) -> tuple[float, float] | None:
    location = message.get("location")
    if isinstance(location, dict):
        return float(location["latitude"]), float(location["longitude"])
    return None
