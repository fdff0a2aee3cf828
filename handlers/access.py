"""Who may use a handler, declared where it is defined: `@allow(Audience.MODERATORS)`.

Every registered handler declares its audience (a test checks it). The check runs before
the handler; someone outside the audience gets a short answer in their language (a rider
who has not agreed yet gets the privacy notice) and the handler does not run. Services still
re-check the rules that move money or state: this is the door, not the lock.

Admins' commands answer only in a private chat with an admin, or in the finance chat, so
payout figures never appear in a group where others read along.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, TypeVar

from telegram import Update

from handlers.common import BotContext
from handlers.consent import ask_consent
from handlers.speak import Speaker
from services.users import Name


class Audience(StrEnum):
    ANYONE = "anyone"
    RIDERS = "riders"  # people who agreed to the privacy notice
    MODERATORS = "moderators"  # MODERATOR_IDS, /mods add, and admins
    ADMINS = "admins"  # ADMIN_IDS, in a private chat or the finance chat
    STAFF = "staff"  # department staff (/staff add), moderators and admins; which case a
    # staff member may change is checked by services/cases.py
    MERCHANTS = "merchants"  # merchant staff registered with /merchants add


Handler = Callable[[Update, BotContext], Awaitable[Any]]
H = TypeVar("H", bound=Handler)


# Whom cards and lists name: everyone but riders (whose names the bot does not keep).
NAMED = frozenset({Audience.MODERATORS, Audience.STAFF, Audience.ADMINS, Audience.MERCHANTS})


def allow(audience: Audience) -> Callable[[H], H]:
    """Declare (and enforce) who may use the decorated handler."""

    def declare(handler: H) -> H:
        if audience == Audience.ANYONE:
            handler.audience = audience  # type: ignore[attr-defined]
            return handler

        @functools.wraps(handler)
        async def guarded(update: Update, context: BotContext) -> Any:
            if await admitted(audience, update, context):
                user = update.effective_user
                if audience in NAMED and user is not None:
                    name = Name.of(user.first_name, user.last_name, user.username)
                    await context.runtime.names.saw(user.id, name)
                return await handler(update, context)
            await refuse(audience, update, context)
            return None

        guarded.audience = audience  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return declare


async def admitted(audience: Audience, update: Update, context: BotContext) -> bool:
    user = update.effective_user
    if user is None:
        return False
    runtime = context.runtime
    if audience == Audience.RIDERS:
        return await runtime.reporting.has_consented(user.id)
    if audience == Audience.MODERATORS:
        return await runtime.moderation.is_moderator(user.id)
    if audience == Audience.STAFF:
        return await runtime.cases.is_staff_anywhere(
            user.id
        ) or await runtime.moderation.is_moderator(user.id)
    if audience == Audience.ADMINS:
        chat = update.effective_chat
        where = chat is not None and (
            chat.type == "private" or chat.id == runtime.settings.finance_chat_id
        )
        return where and runtime.moderation.is_admin(user.id)
    if audience == Audience.MERCHANTS:
        return await runtime.places.staff_merchant(user.id) is not None
    return True


async def refuse(audience: Audience, update: Update, context: BotContext) -> None:
    """Tell someone outside the audience so briefly; in a group, an admin's command is
    simply not answered, so onlookers learn nothing."""
    say = Speaker(update, context)
    if audience == Audience.RIDERS:
        await say.alert()
        await ask_consent(update, context)
        return
    key = {
        Audience.ADMINS: "admin.only",
        Audience.STAFF: "case.refused.not_staff",
        Audience.MERCHANTS: "merchants.only",
    }.get(audience, "moderation.refused.not_moderator")
    if update.callback_query is not None:
        await say.alert(key, popup=True)
        return
    chat = update.effective_chat
    if audience == Audience.ADMINS and (chat is None or chat.type != "private"):
        return
    await say.reply(key)


def audience_of(handler: object) -> Audience | None:
    """The audience a handler callback declared, if any."""
    found = getattr(handler, "audience", None)
    return found if isinstance(found, Audience) else None
