"""/help, /language, the command menus, and a gentle answer to anything unknown or expired.

/start and the privacy notice are in onboarding.py."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from handlers import menus
from handlers.access import Audience, allow
from handlers.callbacks import ButtonPress, Verb, pressed
from handlers.common import BotContext
from handlers.speak import Speaker
from handlers.widgets import unknown as unknown
from locales import LANGUAGES

CHOOSE_LANGUAGE = Verb("lang")  # argument: the language code


@allow(Audience.ANYONE)
async def help_command(update: Update, context: BotContext) -> None:
    """What this person can do: the riders' commands, then a section for each role they
    hold (merchant staff, department staff, moderators, admins), one line a command."""
    say = Speaker(update, context)
    t = await say.phrases()
    user = update.effective_user
    roles = [] if user is None else await menus.roles_of(context.runtime, user.id)
    lines = [t("help.header")]
    shown: set[str] = set()
    for role in [menus.RIDER, *roles]:
        names = [name for name in menus.MENUS[role] if name not in shown]
        if not names:
            continue
        shown.update(names)
        if role != menus.RIDER:
            lines += ["", t(f"help.section.{role}")]
        lines += [
            f"/{c.command} - {c.description}" for c in menus.commands(t.texts, t.language, names)
        ]
    lines += ["", t("help.footer")]
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
