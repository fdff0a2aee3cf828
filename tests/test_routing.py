"""The routing table: every registered handler declares who may use it, and button data
never needs more than Telegram's 64 bytes."""

from __future__ import annotations

from pathlib import Path

from telegram.ext import CallbackQueryHandler

from bot import build_application
from handlers.access import Audience, audience_of
from handlers.callbacks import MAX_BYTES, Verb, parse
from settings import Settings


def test_every_registered_handler_declares_its_audience(tmp_path: Path) -> None:
    app = build_application(Settings(bot_token="1:x", database_path=tmp_path / "bot.db"))
    registered = [handler for group in app.handlers.values() for handler in group]
    assert len(registered) > 30
    undeclared = [
        handler.callback.__qualname__
        for handler in registered
        if audience_of(handler.callback) is None
    ]
    assert undeclared == []
    audiences = {audience_of(handler.callback) for handler in registered}
    assert audiences == set(Audience)


def test_every_verb_has_one_button_route(tmp_path: Path) -> None:
    app = build_application(Settings(bot_token="1:x", database_path=tmp_path / "bot.db"))
    routes = [
        handler
        for group in app.handlers.values()
        for handler in group
        if isinstance(handler, CallbackQueryHandler) and handler.pattern is not None
    ]
    for verb in Verb.known.values():
        if verb.name.startswith("t_"):  # the codec's own test verbs
            continue
        data = verb.data(2**40, "x" * 10)
        assert len(data.encode()) <= MAX_BYTES
        matching = [route for route in routes if route.pattern.match(data)]  # type: ignore[union-attr]
        assert len(matching) == 1, (verb, matching)
        assert parse(data) is not None
