"""What every handler shares: the runtime (settings, database, clock, texts, services) and the
typed context that carries it; answering a person is speak.py's."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

from telegram import User
from telegram.ext import Application, CallbackContext, ExtBot

from locales import Texts
from services.asks import Asks
from services.cases import Cases
from services.clock import Clock
from services.dashboard import Dashboard
from services.handoff import Handoff
from services.inbox import Inbox
from services.invites import Invites
from services.membercard import MemberCards
from services.moderation import Moderation
from services.money import Money
from services.outbox import Outbox
from services.places import Places
from services.points import Points
from services.reporting import Reporting
from services.users import Languages, Names
from settings import Settings
from storage.db import Database


@dataclass
class Runtime:
    """Long-lived objects built once in `build_application` and shared by all handlers."""

    settings: Settings
    db: Database
    clock: Clock  # the one time every service reads
    texts: Texts
    languages: Languages
    reporting: Reporting
    moderation: Moderation
    money: Money
    outbox: Outbox
    cases: Cases
    places: Places
    points: Points
    member_cards: MemberCards
    inbox: Inbox
    handoff: Handoff  # cases to departments' own systems (e-mail, webhook, Open311)
    invites: Invites  # one-time links that make moderators, department and merchant staff
    names: Names  # what staff are called, for cards and lists
    asks: Asks  # /ask: riders' questions for a person
    dashboard: Dashboard  # the county office's page
    # Set when a report is submitted, to wake the card sender.
    card_wake: asyncio.Event = field(default_factory=asyncio.Event)


class BotContext(CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], dict[str, Any]]):
    """PTB's context with typed access to the runtime."""

    @property
    def runtime(self) -> Runtime:
        return cast(Runtime, self.bot_data["runtime"])


BotApplication = Application[
    ExtBot[Any], BotContext, dict[Any, Any], dict[Any, Any], dict[str, Any], Any
]


async def language_of(context: BotContext, user: User | None) -> str:
    """The language to answer `user` in (the default language when there is no user)."""
    if user is None:
        return context.runtime.languages.default
    return await context.runtime.languages.of(user.id, user.language_code)
