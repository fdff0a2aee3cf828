"""The privacy notice and the agree button: shown before anything of a rider is kept."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers.callbacks import Verb
from handlers.common import BotContext
from handlers.speak import Speaker

AGREE = Verb("consent")
FULL_NOTICE = Verb("privfull")  # the whole privacy notice, behind a button


async def ask_consent(update: Update, context: BotContext) -> None:
    """The welcome, what we keep and why in three lines (one phone screen), the agree button
    and a button for the whole notice."""
    say = Speaker(update, context)
    user = update.effective_user
    greeting = await say.text("start.greeting", name=user.first_name if user else "")
    days = say.context.runtime.settings.programme.retention.photo_days
    buttons = [
        [InlineKeyboardButton(await say.text("button.agree"), callback_data=AGREE.data(1))],
        [
            InlineKeyboardButton(
                await say.text("button.privacy_full"), callback_data=FULL_NOTICE.data(1)
            )
        ],
    ]
    await say.send(
        f"{greeting}\n\n{await say.text('privacy.summary', days=days)}",
        reply_markup=InlineKeyboardMarkup(buttons),
    )


async def privacy_notice(say: Speaker) -> str:
    settings = say.context.runtime.settings
    return await say.text(
        "privacy.notice",
        days=settings.programme.retention.photo_days,
        backup_days=settings.backups_kept,  # one backup a day (see bot.py), the newest kept
    )
