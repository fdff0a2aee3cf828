"""Consent and the rider's own data: /start, the privacy notice, /privacy and /delete."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update

from handlers.common import BotContext, language_of
from handlers.report import HELD_PHOTO, drop_buttons, main_keyboard, on_photo, send

CALLBACK_CONSENT = "consent:yes"
CALLBACK_DELETE = "delete:"


async def start(update: Update, context: BotContext) -> None:
    """A new user: welcome and the privacy notice; a returning rider: welcome back."""
    user = update.effective_user
    if user is None:
        return
    reporting = context.runtime.reporting
    if not await reporting.has_consented(user.id):
        await ask_consent(update, context)
        return
    texts = context.runtime.texts
    language = await language_of(context, user)
    counts = await reporting.status_counts(user.id)
    submitted = sum(n for status, n in counts.items() if status not in ("draft", "expired"))
    lines = [
        texts.get(
            language,
            "start.welcome_back",
            name=user.first_name,
            submitted=submitted,
            waiting=counts.get("pending", 0) + counts.get("needs_info", 0),
            approved=counts.get("approved", 0),
        )
    ]
    if counts.get("draft"):
        lines.append(texts.get(language, "start.draft_waiting"))
    await send(update, context, "\n".join(lines), main_keyboard(context, language))


async def ask_consent(update: Update, context: BotContext) -> None:
    """The welcome, what we keep and why, and the agree button."""
    texts = context.runtime.texts
    user = update.effective_user
    language = await language_of(context, user)
    text = "\n\n".join(
        [
            texts.get(language, "start.greeting", name=user.first_name if user else ""),
            privacy_notice(context, language),
        ]
    )
    button = InlineKeyboardButton(
        texts.get(language, "button.agree"), callback_data=CALLBACK_CONSENT
    )
    await send(update, context, text, InlineKeyboardMarkup.from_button(button))


def privacy_notice(context: BotContext, language: str) -> str:
    settings = context.runtime.settings
    return context.runtime.texts.get(
        language,
        "privacy.notice",
        days=settings.programme.photo_retention_days,
        backup_days=settings.backups_kept,  # one backup a day (see bot.py), the newest kept
    )


async def on_consent(update: Update, context: BotContext) -> None:
    """The agree button: remember consent, then carry on with any photo sent before it."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    await query.answer()
    language = await language_of(context, user)
    await context.runtime.reporting.consent(user.id, language)
    context.runtime.languages.forget(user.id)
    held = context.user_data.pop(HELD_PHOTO, None) if context.user_data is not None else None
    if isinstance(held, Message):
        await send(update, context, context.runtime.texts.get(language, "start.agreed_with_photo"))
        update_with_photo = Update(update.update_id, message=held)
        await on_photo(update_with_photo, context)
        return
    texts = context.runtime.texts
    await send(
        update,
        context,
        texts.get(language, "start.agreed", max=context.runtime.settings.programme.max_photos),
        main_keyboard(context, language),
    )


async def privacy(update: Update, context: BotContext) -> None:
    """/privacy: what is kept, who sees it, for how long."""
    language = await language_of(context, update.effective_user)
    await send(update, context, privacy_notice(context, language))


async def delete(update: Update, context: BotContext) -> None:
    """/delete: ask for confirmation before erasing anything."""
    texts = context.runtime.texts
    language = await language_of(context, update.effective_user)
    buttons = InlineKeyboardMarkup.from_row(
        [
            InlineKeyboardButton(
                texts.get(language, "button.delete_confirm"), callback_data=f"{CALLBACK_DELETE}yes"
            ),
            InlineKeyboardButton(
                texts.get(language, "button.delete_keep"), callback_data=f"{CALLBACK_DELETE}no"
            ),
        ]
    )
    backup_days = context.runtime.settings.backups_kept
    await send(
        update, context, texts.get(language, "delete.confirm", backup_days=backup_days), buttons
    )


async def on_delete(update: Update, context: BotContext) -> None:
    """The confirmation buttons of /delete."""
    query = update.callback_query
    user = update.effective_user
    if query is None or user is None:
        return
    await query.answer()
    language = await language_of(context, user)
    texts = context.runtime.texts
    await drop_buttons(query.message)
    if query.data != f"{CALLBACK_DELETE}yes":
        await send(update, context, texts.get(language, "delete.kept"))
        return
    await context.runtime.reporting.erase(user.id)
    context.runtime.languages.forget(user.id)
    if context.user_data is not None:
        context.user_data.pop(HELD_PHOTO, None)
    await send(update, context, texts.get(language, "delete.done"))
