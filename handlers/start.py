"""First conversation: /start, /help, /language, and a gentle answer to anything unknown."""

from __future__ import annotations

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ExtBot

from handlers.common import BotContext, language_of, reply
from handlers.speak import answer_button
from locales import LANGUAGES, Texts

# The command menu, in the order riders see it; each has a `command.<name>` message.
MENU = (
    "report",
    "my",
    "balance",
    "history",
    "payee",
    "help",
    "language",
    "privacy",
    "cancel",
    "delete",
    "start",
)
LANGUAGE_CALLBACK = "lang:"


def menu_commands(texts: Texts, language: str) -> list[BotCommand]:
    return [BotCommand(name, texts.get(language, f"command.{name}")) for name in MENU]


async def set_command_menus(bot: ExtBot[object], texts: Texts) -> None:
    """Publish the command menu in every language (the default menu is the default language)."""
    await bot.set_my_commands(menu_commands(texts, texts.default_language))
    for language in LANGUAGES:
        await bot.set_my_commands(menu_commands(texts, language), language_code=language)


async def help_command(update: Update, context: BotContext) -> None:
    """List the commands with one line each."""
    texts = context.runtime.texts
    language = await language_of(context, update.effective_user)
    lines = [texts.get(language, "help.header")]
    lines += [f"/{c.command} - {c.description}" for c in menu_commands(texts, language)]
    lines.append(texts.get(language, "help.footer"))
    if update.effective_chat:
        await context.bot.send_message(update.effective_chat.id, "\n".join(lines))


async def language_command(update: Update, context: BotContext) -> None:
    """Offer the languages as buttons."""
    texts = context.runtime.texts
    language = await language_of(context, update.effective_user)
    buttons = [
        InlineKeyboardButton(
            texts.get(language, f"language.name.{code}"), callback_data=f"lang:{code}"
        )
        for code in LANGUAGES
    ]
    await reply(update, context, "language.choose", reply_markup=InlineKeyboardMarkup([buttons]))


async def language_chosen(update: Update, context: BotContext) -> None:
    """Remember the language picked from the buttons and confirm in it."""
    query = update.callback_query
    if query is None or update.effective_user is None:
        return
    code = (query.data or "").removeprefix(LANGUAGE_CALLBACK)
    if code not in LANGUAGES:
        await answer_button(query)
        return
    await context.runtime.languages.choose(update.effective_user.id, code)
    await answer_button(query)
    await reply(update, context, "language.saved")


async def unknown(update: Update, context: BotContext) -> None:
    """Anything no other handler took: point the user to /help."""
    if update.effective_chat and update.effective_chat.type == "private":
        await reply(update, context, "fallback.unknown")


async def stale_button(update: Update, context: BotContext) -> None:
    """A button no handler recognises (an old message, or forged data): say it has expired."""
    query = update.callback_query
    if query is None:
        return
    language = await language_of(context, update.effective_user)
    await answer_button(query, context.runtime.texts.get(language, "button.expired"))
