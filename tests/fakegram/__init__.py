"""fakegram: an in-process stand-in for the Telegram Bot API, for end-to-end tests.

Model
-----
:class:`FakeTelegram` is an aiohttp server on 127.0.0.1 (random port) that speaks the real Bot
API wire format, so an unmodified python-telegram-bot ``Application`` runs against it::

    async with FakeTelegram() as fake:
        app = (ApplicationBuilder().token(fake.token)
               .base_url(f"{fake.base_url}/bot").base_file_url(f"{fake.base_url}/file/bot")
               .build())

It plays Telegram's side of the conversation:

* **Bot → Telegram.** ``/bot<token>/<method>`` (case-insensitive method names; form,
  multipart or JSON bodies) is first checked against the official Bot API specification
  (``spec.py``, ``spec/api.json``): unknown methods and parameters, missing required ones,
  wrongly typed or shaped values and stated limits are refused with a 400, as strictly as
  Telegram. It is then executed against an in-memory world of chats, messages and
  files (``world.py``). Every method validates first and then commits, so a failing call
  changes nothing. Answers and errors mimic Telegram's (``message is not modified``,
  ``message to edit not found``, ``bot was blocked by the user``, ``BUTTON_DATA_INVALID``,
  ``can't parse entities`` for bad HTML/MarkdownV2 ...). Uploaded and injected files can be
  fetched with getFile + ``/file/bot<token>/<file_path>``.
* **Telegram → bot.** Tests inject user activity (``send_text``, ``send_photo``,
  ``press_button``, ``inject`` ...). Each call returns the update dict immediately and queues
  it; the bot receives it via getUpdates long polling, with Telegram's offset semantics
  (``update_id < offset`` is confirmed and dropped), ``limit``, ``timeout`` and sticky
  ``allowed_updates``. ``with fake.held_updates():`` (alias ``fake.batch()``) or
  ``inject_many`` make several updates arrive in one getUpdates answer.
* **Observation.** ``fake.calls`` records every request (``Call``), ``fake.sent`` /
  ``fake.sent_to(chat)`` hold the bot's messages as live ``SentMessage`` objects updated by
  edits and deletes, ``fake.callback_answers`` the answerCallbackQuery parameters.
  ``await fake.wait_for(predicate)`` re-checks on every recorded call (no sleeping loops).
* **Adversity.** ``fail_next`` queues 429/5xx/any-status faults (optionally delayed, per
  method and chat) that answer without side effects, ``fail_downloads`` breaks file
  downloads, ``enforce_caps`` applies Telegram's flood limits as sliding windows, and
  ``block_chat`` makes a chat answer 403.

Message ids are per chat and shared by user and bot messages; ``date`` is the current unix
time. Chats with a positive id are private chats with the user of that id, negative ids are
supergroups (override with ``set_chat``).
"""

from .models import Call, SentMessage, TgUser
from .server import FakeTelegram

__all__ = ["Call", "FakeTelegram", "SentMessage", "TgUser"]
