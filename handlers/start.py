"""/help, /language, the command menus, and a gentle answer to anything unknown or expired.

/start and the privacy notice are in onboarding.py."""

from __future__ import annotations

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ExtBot

from handlers.access import Audience, allow
from handlers.callbacks import ButtonPress, Verb, pressed
from handlers.common import BotContext
from handlers.speak import Speaker
from handlers.widgets import unknown as unknown
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
CHOOSE_LANGUAGE = Verb("lang")  # argument: the language code


def menu_commands(texts: Texts, language: str) -> list[BotCommand]:
    return [BotCommand(name, texts.get(language, f"command.{name}")) for name in MENU]


async def set_command_menus(bot: ExtBot[object], texts: Texts) -> None:
    """Publish the command menu in every language (the default menu is the default language)."""
    await bot.set_my_commands(menu_commands(texts, texts.default_language))
    for language in LANGUAGES:
        await bot.set_my_commands(menu_commands(texts, language), language_code=language)


@allow(Audience.ANYONE)
async def help_command(update: Update, context: BotContext) -> None:
    """List the commands with one line each."""
    say = Speaker(update, context)
    t = await say.phrases()
    lines = [t("help.header")]
    lines += [f"/{c.command} - {c.description}" for c in menu_commands(t.texts, t.language)]
    lines.append(t("help.footer"))
    await say.send("\n".join(lines))


@allow(Audience.ANYONE)
async def language_command(update: Update, context: BotContext) -> None:
    """Offer the languages as buttons."""
    say = Speaker(update, context)
    t = await say.phrases()
    buttons = [
        InlineKeyboardButton(
            t(f"language.name.{code}"), callback_data=CHOOSE_LANGUAGE.data(0, code)
        )
        for code in LANGUAGES
    ]
    await say.reply("language.choose", reply_markup=InlineKeyboardMarkup([buttons]))


@allow(Audience.ANYONE)
@pressed
async def language_chosen(update: Update, context: BotContext, press: ButtonPress) -> None:
    """Remember the language picked from the buttons and confirm in it."""
    user = press.user
    say = Speaker(update, context)
    await say.alert()
    if press.argument in LANGUAGES:
        await context.runtime.languages.choose(user.id, press.argument)
        await Speaker(update, context).reply("language.saved")


@allow(Audience.ANYONE)
async def stale_button(update: Update, context: BotContext) -> None:
    """A button no handler recognises (an old message, or forged data): say it has expired."""
    await Speaker(update, context).alert("button.expired")
