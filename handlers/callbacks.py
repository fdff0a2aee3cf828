"""Button data, built and read in one place: `<verb>:<id>[:<argument>]`, at most 64 bytes.

Each feature declares its verbs once (`APPROVE = Verb("ap")`), builds data with
`APPROVE.data(report_id, 5000)`, registers its `CallbackQueryHandler` with `pattern(...)`
and reads a press with `parse(query.data)`, or has it read by decorating its handler with
`@pressed`. Data longer than Telegram's 64 bytes fails when it is built, not when Telegram
refuses the keyboard; forged or stale data parses to None.

    @allow(Audience.RIDERS)
    @pressed
    async def on_item(update: Update, context: BotContext, press: ButtonPress) -> None:
        ...  # press.verb, press.item, press.argument, press.user, press.message
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, ClassVar

from telegram import CallbackQuery, Message, Update, User
from telegram.error import TelegramError

from handlers.common import BotContext, language_of

log = logging.getLogger(__name__)

MAX_BYTES = 64
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,11}$")
_DATA = re.compile(r"^([a-z][a-z0-9_]{0,11}):(-?\d{1,18})(?::(.*))?$", re.S)


class Verb:
    """One kind of button press; its name is unique across the bot."""

    known: ClassVar[dict[str, Verb]] = {}

    def __init__(self, name: str) -> None:
        if not _NAME.match(name):
            raise ValueError(f"button verb {name!r}: 1-12 of a-z 0-9 _, starting with a letter")
        if name in Verb.known:
            raise ValueError(f"button verb {name!r} is declared twice")
        self.name = name
        Verb.known[name] = self

    def data(self, item: int, argument: str | int = "") -> str:
        """The callback data for pressing this verb on `item` (with an optional argument)."""
        data = f"{self.name}:{item}" if argument == "" else f"{self.name}:{item}:{argument}"
        if len(data.encode()) > MAX_BYTES:
            raise ValueError(f"callback data over {MAX_BYTES} bytes: {data!r}")
        return data

    def __repr__(self) -> str:
        return f"Verb({self.name!r})"


@dataclass(frozen=True)
class Pressed:
    """A parsed button press: which verb, on which item, with what argument."""

    verb: Verb
    item: int
    argument: str = ""

    def number(self) -> int | None:
        """The argument as a number, or None when it is not one."""
        digits = self.argument.removeprefix("-")
        return int(self.argument) if digits.isascii() and digits.isdigit() else None


def parse(data: str | None) -> Pressed | None:
    """The press `data` encodes, or None for data this bot never built."""
    found = _DATA.match(data or "")
    if found is None or found.group(1) not in Verb.known:
        return None
    return Pressed(Verb.known[found.group(1)], int(found.group(2)), found.group(3) or "")


def pattern(*verbs: Verb) -> re.Pattern[str]:
    """The `CallbackQueryHandler` pattern that matches presses of any of `verbs`."""
    names = "|".join(re.escape(verb.name) for verb in verbs)
    return re.compile(rf"^(?:{names}):-?\d")


@dataclass(frozen=True)
class ButtonPress(Pressed):
    """A press handed to a `@pressed` handler: the parsed data, who pressed, and where."""

    user: User = field(kw_only=True)
    query: CallbackQuery = field(kw_only=True)
    message: Message | None = field(kw_only=True)  # the message the button is under


PressHandler = Callable[[Update, BotContext, ButtonPress], Coroutine[Any, Any, None]]
Handler = Callable[[Update, BotContext], Coroutine[Any, Any, None]]


def pressed(handler: PressHandler) -> Handler:
    """Hand `handler` the parsed press; a press of data this bot never built (or without a
    presser) is answered "button expired" and goes no further."""

    @functools.wraps(handler)
    async def read(update: Update, context: BotContext) -> None:
        query = update.callback_query
        press = parse(query.data if query else None)
        user = update.effective_user
        if query is None or press is None or user is None:
            await answer_expired(update, context)
            return
        message = query.message if isinstance(query.message, Message) else None
        button = ButtonPress(
            press.verb, press.item, press.argument, user=user, query=query, message=message
        )
        await handler(update, context, button)

    return read


async def answer_expired(update: Update, context: BotContext) -> None:
    """Answer a press with "This button has expired", in the presser's language."""
    query = update.callback_query
    if query is None:
        return
    language = await language_of(context, update.effective_user)
    try:
        await query.answer(context.runtime.texts.get(language, "button.expired"), show_alert=False)
    except TelegramError as exc:  # "query is too old" after a restart stops nothing
        log.info("button answer not delivered: %s", exc.message)
