"""What each person can do: the command menus Telegram shows (set per chat with command
scopes) and the sections of /help, from one table of roles and their commands.

    everyone's private chat   the riders' menu (the default scope)
    the moderators' chat      what moderators use there
    a staff member's chat     the riders' menu, then each role's commands they hold
                              (merchant staff, department staff, moderators, admins)

A person's own menu is set at start-up and again when an admin adds or removes them.
tests/test_first_conversation.py checks the table against the routing table in bot.py:
every command is in some role's menu, and each is declared for that role's audience.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from telegram import BotCommand, BotCommandScopeChat
from telegram.error import TelegramError
from telegram.ext import ExtBot

from handlers.common import Runtime
from locales import LANGUAGES, Texts

log = logging.getLogger(__name__)

RIDER, MERCHANT, STAFF, MODERATOR, ADMIN = "rider", "merchant", "staff", "moderator", "admin"
# Each role's commands, in the order its menu and its /help section show them; every one has
# a `command.<name>` message, and each role a `help.section.<role>` heading.
MENUS: dict[str, tuple[str, ...]] = {
    RIDER: (
        "report",
        "my",
        "balance",
        "history",
        "payee",
        "nearby",
        "card",
        "points",
        "ask",
        "help",
        "language",
        "privacy",
        "cancel",
        "delete",
        "start",
    ),
    MERCHANT: ("redeem",),
    STAFF: ("cases",),
    MODERATOR: ("queue", "cases", "stats", "map", "dashboard"),
    ADMIN: (
        "payout",
        "batches",
        "batch",
        "reverse",
        "audit",
        "export",
        "mods",
        "staff",
        "merchants",
        "places",
        "supervise",
    ),
}
MODERATORS_CHAT = ("cases", "stats", "map", "help")  # the moderators' group's own menu


def commands(texts: Texts, language: str, names: Iterable[str]) -> list[BotCommand]:
    return [BotCommand(name, texts.get(language, f"command.{name}")) for name in names]


def menu_of(roles: Iterable[str]) -> list[str]:
    """The riders' menu, then each held role's commands not listed yet."""
    names: list[str] = []
    for role in (RIDER, *[r for r in (MERCHANT, STAFF, MODERATOR, ADMIN) if r in set(roles)]):
        names += [name for name in MENUS[role] if name not in names]
    return names


async def roles_of(runtime: Runtime, telegram_id: int) -> list[str]:
    """The roles beyond rider that this person holds now."""
    held = []
    if await runtime.places.staff_merchant(telegram_id) is not None:
        held.append(MERCHANT)
    if await runtime.cases.departments_of(telegram_id):
        held.append(STAFF)
    if await runtime.moderation.is_moderator(telegram_id):
        held.append(MODERATOR)
    if runtime.moderation.is_admin(telegram_id):
        held.append(ADMIN)
    return held


async def publish(bot: ExtBot[object], runtime: Runtime) -> None:
    """Every menu: the riders' (in each language), the moderators' chat's, and each person's
    with a role. A menu Telegram refuses (a chat the bot cannot reach) is logged, not fatal."""
    texts = runtime.texts
    await bot.set_my_commands(commands(texts, texts.default_language, MENUS[RIDER]))
    for language in LANGUAGES:
        await bot.set_my_commands(commands(texts, language, MENUS[RIDER]), language_code=language)
    chat = runtime.settings.moderator_chat_id
    if chat is not None:
        await _set(bot, texts, chat, MODERATORS_CHAT)
    for telegram_id in await people_with_roles(runtime):
        await refresh(bot, runtime, telegram_id)


async def people_with_roles(runtime: Runtime) -> list[int]:
    configured, added = await runtime.moderation.moderators()
    staff = [person for people in (await runtime.cases.staff()).values() for person in people]
    merchants = await runtime.places.staff_ids()
    return sorted({*configured, *added, *staff, *merchants})


async def refresh(bot: ExtBot[object], runtime: Runtime, telegram_id: int) -> None:
    """This person's own menu, after a role was given or taken (the riders' menu when they
    hold none)."""
    roles = await roles_of(runtime, telegram_id)
    if not roles:
        try:
            await bot.delete_my_commands(scope=BotCommandScopeChat(telegram_id))
            for language in LANGUAGES:
                await bot.delete_my_commands(
                    scope=BotCommandScopeChat(telegram_id), language_code=language
                )
        except TelegramError as exc:
            log.info("menu of %s not reset: %s", telegram_id, exc.message)
        return
    await _set(bot, runtime.texts, telegram_id, menu_of(roles))


async def _set(bot: ExtBot[object], texts: Texts, chat_id: int, names: Iterable[str]) -> None:
    names = list(names)
    try:
        scope = BotCommandScopeChat(chat_id)
        await bot.set_my_commands(commands(texts, texts.default_language, names), scope=scope)
        for language in LANGUAGES:
            await bot.set_my_commands(
                commands(texts, language, names), scope=scope, language_code=language
            )
    except TelegramError as exc:  # a person who never opened the bot, a chat it left
        log.info("menu for chat %s not set: %s", chat_id, exc.message)


def publish_soon(bot: ExtBot[object], runtime: Runtime) -> asyncio.Task[None]:
    """`publish` in the background: a county's few hundred menus take a few seconds at
    Telegram's pace, and start-up need not wait for them."""

    async def run() -> None:
        try:
            await publish(bot, runtime)
        except TelegramError as exc:
            log.warning("command menus not published: %s", exc.message)

    return asyncio.create_task(run())
