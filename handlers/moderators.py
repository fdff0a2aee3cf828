"""The moderators' commands: /queue to work through pending reports, /mods to manage them."""

from __future__ import annotations

from telegram import Update

from handlers import menus
from handlers.access import Audience, allow
from handlers.common import BotContext
from handlers.speak import Speaker
from handlers.widgets import people, refresh_card, send_invite
from services.invites import Role as InviteRole


@allow(Audience.ADMINS)
async def mods_command(update: Update, context: BotContext) -> None:
    """/mods, /mods add <id>, /mods remove <id>."""
    user = update.effective_user
    if user is None:
        return
    say = Speaker(update, context)
    service = context.runtime.moderation
    args = context.args or []
    if args == ["invite"]:
        await send_invite(update, context, InviteRole.MODERATOR, None, "")
        return
    if len(args) == 2 and args[0] in ("add", "remove") and args[1].isascii() and args[1].isdigit():
        target = int(args[1])
        if args[0] == "add":
            changed = await service.add_moderator(target, user.id)
        else:
            changed, voided = await service.remove_moderator(target)
            for report_id in voided:  # their proposals no longer count: show the tiers again
                card = await service.card(report_id)
                if card is not None:
                    await refresh_card(context, card)
        await say.reply(f"mods.{args[0]}.{'done' if changed else 'unchanged'}", id=target)
        if changed:
            await menus.refresh(context.bot, context.runtime, target)
        return
    if args:
        await say.reply("mods.usage")
        return
    configured, added = await service.moderators()
    await say.reply(
        "mods.list",
        configured=await people(context, sorted(configured)),
        added=await people(context, added),
    )
