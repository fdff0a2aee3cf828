"""Consent and the rider's own data: /start, the agree button, /privacy and /delete."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from handlers.access import Audience, allow
from handlers.callbacks import ButtonPress, Verb, pressed
from handlers.common import BotContext
from handlers.consent import AGREE, ask_consent, privacy_notice
from handlers.speak import Speaker
from handlers.widgets import HELD_PHOTO, drop_buttons, main_keyboard, take_held_photo

ERASE = Verb("delete")  # argument: "yes" erases, "no" keeps everything
__all__ = ["AGREE", "ERASE", "delete", "on_consent", "on_delete", "privacy", "start"]


@allow(Audience.ANYONE)
async def start(update: Update, context: BotContext) -> None:
    """A new user: welcome and the privacy notice; a returning rider: welcome back."""
    user = update.effective_user
    if user is None:
        return
    reporting = context.runtime.reporting
    if not await reporting.has_consented(user.id):
        await ask_consent(update, context)
        return
    say = Speaker(update, context)
    t = await say.phrases()
    counts = await reporting.status_counts(user.id)
    submitted = sum(n for status, n in counts.items() if status not in ("draft", "expired"))
    lines = [
        t(
            "start.welcome_back",
            name=user.first_name,
            submitted=submitted,
            waiting=counts.get("pending", 0) + counts.get("needs_info", 0),
            approved=counts.get("approved", 0),
        )
    ]
    if counts.get("draft"):
        lines.append(t("start.draft_waiting"))
    await say.send("\n".join(lines), reply_markup=main_keyboard(t))


@allow(Audience.ANYONE)
async def on_consent(update: Update, context: BotContext) -> None:
    """The agree button: remember consent, then carry on with any photo sent before it."""
    user = update.effective_user
    if update.callback_query is None or user is None:
        return
    say = Speaker(update, context)
    await say.alert()
    await drop_buttons(update.callback_query.message)  # agreed once: the button has done its job
    await context.runtime.reporting.consent(user.id, await say.language())
    context.runtime.languages.forget(user.id)
    held = context.user_data.pop(HELD_PHOTO, None) if context.user_data is not None else None
    if isinstance(held, Message):
        await say.reply("start.agreed_with_photo")
        await take_held_photo(Update(update.update_id, message=held), context)
        return
    await say.reply(
        "start.agreed",
        max=context.runtime.settings.programme.reports.max_photos,
        reply_markup=main_keyboard(await say.phrases()),
    )


@allow(Audience.ANYONE)
async def privacy(update: Update, context: BotContext) -> None:
    """/privacy, and the consent message's 📄 button: what is kept, who sees it, for how
    long, what /delete erases and what stays."""
    say = Speaker(update, context)
    if update.callback_query is not None:
        await say.alert()
    await say.send(await privacy_notice(say))


@allow(Audience.ANYONE)
async def delete(update: Update, context: BotContext) -> None:
    """/delete: ask for confirmation before erasing anything."""
    say = Speaker(update, context)
    t = await say.phrases()
    buttons = InlineKeyboardMarkup.from_row(
        [
            InlineKeyboardButton(t("button.delete_confirm"), callback_data=ERASE.data(1, "yes")),
            InlineKeyboardButton(t("button.delete_keep"), callback_data=ERASE.data(1, "no")),
        ]
    )
    backup_days = context.runtime.settings.backups_kept
    await say.reply("delete.confirm", backup_days=backup_days, reply_markup=buttons)


@allow(Audience.ANYONE)
@pressed
async def on_delete(update: Update, context: BotContext, press: ButtonPress) -> None:
    """The confirmation buttons of /delete."""
    query, user = press.query, press.user
    say = Speaker(update, context)
    await say.alert()
    await say.language()  # answered in the language they used, even after erasing it
    await drop_buttons(query.message)
    if press.argument != "yes":
        await say.reply("delete.kept")
        return
    await context.runtime.reporting.erase(user.id)
    context.runtime.languages.forget(user.id)
    if context.user_data is not None:
        context.user_data.pop(HELD_PHOTO, None)
    await say.reply("delete.done")
