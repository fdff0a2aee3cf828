"""Joining by an admin's one-time link: `/start i<token>` (services/invites.py)."""

from __future__ import annotations

from telegram import Update

from handlers import menus
from handlers.access import Audience, allow
from handlers.common import BotContext
from handlers.speak import Speaker
from services.invites import Joined
from services.users import Name


@allow(Audience.ANYONE)
async def accept_link(update: Update, context: BotContext) -> None:
    """The person who tapped the link joins (once); they are told what they can do now."""
    user = update.effective_user
    if user is None or not context.args:
        return
    say = Speaker(update, context)
    name = Name.of(user.first_name, user.last_name, user.username)
    outcome = await context.runtime.invites.accept(context.args[0], user.id, name.full())
    if not isinstance(outcome, Joined):
        await say.reply(f"invite.refused.{outcome.reason}")
        return
    await context.runtime.names.saw(user.id, name)  # /mods and /staff name them from now on
    target = outcome.target or ""
    if outcome.role == "staff" and outcome.target is not None:
        found = context.runtime.settings.programme.department(outcome.target)
        target = found.name(await say.language()) if found else target
    await say.reply(f"invite.welcome.{outcome.role}", target=target)
    await menus.refresh(context.bot, context.runtime, user.id)
