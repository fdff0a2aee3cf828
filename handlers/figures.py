"""What the county reports upward: the /stats image, /map, /export and the weekly digest.

Glue only: the numbers come from services/figures.py, the pictures from
services/charts.py (drawn on their own thread), the files from services/exports.py.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update, WebAppInfo
from telegram.error import TelegramError

from handlers.access import Audience, allow
from handlers.common import BotContext
from handlers.speak import Speaker
from locales import Phrases
from services import charts, exports
from services import figures as data
from services.performance import performance, performance_text

log = logging.getLogger(__name__)


@allow(Audience.MODERATORS)
async def map_command(update: Update, context: BotContext) -> None:
    """/map [2026-10]: where a month's reports were (last month by default), by state."""
    say = Speaker(update, context)
    chat = update.effective_chat
    runtime = context.runtime
    settings = runtime.settings
    now = runtime.clock()
    argument = " ".join(context.args or [])
    period = data.parse_period(argument, now, settings.timezone) if argument else None
    if period is None:
        period = data.last_month(now, settings.timezone)
        if argument:
            await say.reply("map.usage")
            return
    t = await say.phrases()
    programme = settings.programme
    png, _ = await charts.render_incidents(
        runtime.db, programme.service_area, period, t, programme.towns
    )
    if chat is not None:
        await context.bot.send_photo(chat.id, png, caption=t("charts.map.caption"))


@allow(Audience.MODERATORS)
async def dashboard_command(update: Update, context: BotContext) -> None:
    """/dashboard: the county office's page. An admin gets a signed link that expires; a
    moderator (an admin too) a button opening it inside Telegram as a Mini App. Only in a
    private chat: a link in a group would open the page to everyone there."""
    say = Speaker(update, context)
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None or chat.type != chat.PRIVATE:
        await say.reply("dashboard.private_only")
        return
    runtime = context.runtime
    dashboard = runtime.dashboard
    language = await say.language()
    url = dashboard.url
    admin = runtime.moderation.is_admin(user.id)
    if url is None:
        await say.reply("dashboard.no_url" if admin else "dashboard.needs_https")
        return
    if admin:
        link = dashboard.link(user.id, language)
        assert link is not None
        address, expires = link
        t = await say.phrases()
        until = runtime.texts.when(language, datetime.fromtimestamp(expires, UTC), t.zone)
        button = InlineKeyboardMarkup(
            [[InlineKeyboardButton(await say.text("dashboard.open"), url=address)]]
        )
        await say.reply("dashboard.link", url=address, until=until, reply_markup=button)
    if url.startswith("https://"):
        app = InlineKeyboardButton(
            await say.text("dashboard.open"), web_app=WebAppInfo(f"{url}?lang={language}")
        )
        await say.reply("dashboard.mini_app", reply_markup=InlineKeyboardMarkup([[app]]))
    elif not admin:
        await say.reply("dashboard.needs_https")


@allow(Audience.ADMINS)
async def export_command(update: Update, context: BotContext) -> None:
    """/export [2026-10 | 2026]: the register (台账) as XLSX, GeoJSON and Open311 files."""
    say = Speaker(update, context)
    chat = update.effective_chat
    runtime = context.runtime
    settings = runtime.settings
    now = runtime.clock()
    argument = " ".join(context.args or [])
    period = data.parse_period(argument or "month", now, settings.timezone)
    if period is None or period.kind == "weeks":
        await say.reply("export.usage")
        return
    files = await exports.export(runtime.db, settings, period.start, period.end, now)
    t = await say.phrases()
    caption = t(
        "export.caption",
        period=charts.period_label(t, period),
        count=files.count,
    )
    if chat is None:
        return
    await context.bot.send_document(
        chat.id, files.xlsx, filename=files.name("xlsx"), caption=caption
    )
    await context.bot.send_document(chat.id, files.geojson, filename=files.name("geojson"))
    await context.bot.send_document(chat.id, files.open311_zip, filename=files.name("zip"))


async def digest_job(context: BotContext) -> None:
    """The weekly digest image to the moderators' chat and every admin; failures logged."""
    runtime = context.runtime
    settings = runtime.settings
    period = data.last_week(runtime.clock(), settings.timezone)
    chats = sorted(settings.admin_ids)
    if settings.moderator_chat_id is not None:
        chats.insert(0, settings.moderator_chat_id)
    drawn: dict[str, tuple[bytes, str]] = {}
    for chat_id in chats:
        language = (
            runtime.languages.default
            if chat_id == settings.moderator_chat_id
            else await runtime.languages.of(chat_id, None)
        )
        if language not in drawn:
            t = Phrases(runtime.texts, language, settings.timezone)
            drawn[language] = await charts.render_digest(
                runtime.db, settings.programme, settings.timezone, period, t
            )
        png, caption = drawn[language]
        try:
            await context.bot.send_photo(chat_id, png, caption=caption)
            if settings.programme.departments:
                t = Phrases(runtime.texts, language, settings.timezone)
                rows = await performance(runtime.db, settings.programme, period)
                text = performance_text(t, settings.programme, rows)
                await context.bot.send_message(chat_id, text)
        except TelegramError as exc:
            log.warning("weekly digest to %s not delivered: %s", chat_id, exc.message)
