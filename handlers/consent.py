"""The privacy notice and the agree button: shown before anything of a rider is kept."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers.callbacks import Verb
from handlers.common import BotContext
from handlers.speak import Speaker

AGREE = Verb("consent")


async def ask_consent(update: Update, context: BotContext) -> None:
    """The welcome, what we keep and why, and the agree button."""
    say = Speaker(update, context)
    user = update.effective_user
    greeting = await say.text("start.greeting", name=user.first_name if user else "")
    button = InlineKeyboardButton(await say.text("button.agree"), callback_data=AGREE.data(1))
    await say.send(
        f"{greeting}\n\n{await privacy_notice(say)}",
        reply_markup=InlineKeyboardMarkup.from_button(button),
    )


async def privacy_notice(say: Speaker) -> str:
    settings = say.context.runtime.settings
    return await say.text(
        "privacy.notice",
        days=settings.programme.retention.photo_days,
        backup_days=settings.backups_kept,  # one backup a day (see bot.py), the newest kept
    )
