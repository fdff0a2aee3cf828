"""Entry point: `python bot.py` runs the bot (long polling, or a webhook if WEBHOOK_URL is set).

    python bot.py           run the bot
    python bot.py backup    make an online backup of the database now
    python bot.py check     validate settings, open the database, call getMe; one line each

`build_application(settings)` is the one place where handlers are registered, in order, and
the runtime (database, texts) is wired in. The database opens in `post_init` and closes in
`post_shutdown`; SIGINT and SIGTERM stop the bot cleanly with exit code 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import logging
import sqlite3
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Bot, Update
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from handlers import jobs, moderation, money, notify, onboarding, report, start, stats
from handlers.common import BotApplication, BotContext, Runtime
from handlers.errors import on_error
from handlers.ordering import PerUserUpdateProcessor, slow_down_notice
from handlers.transport import PacedRateLimiter
from locales import Texts
from services import backup as backups
from services.logs import configure_logging
from services.moderation import Moderation
from services.money import Money
from services.outbox import Outbox
from services.reporting import Reporting
from services.users import Languages
from settings import Settings, SettingsError, load_settings
from storage.db import Database

log = logging.getLogger("bot")
handled = logging.getLogger("bot.updates")
DRAFT_SWEEP_SECONDS = 600
PROMISE_CHECK_SECONDS = 900


def handlers() -> list[BaseHandler[Any, BotContext, Any]]:
    """Every handler, in the order PTB tries them: the first that matches an update wins."""
    private = filters.ChatType.PRIVATE
    fresh = filters.UpdateType.MESSAGE  # edits (live-location updates included) are ignored
    return [
        # Commands
        CommandHandler("start", onboarding.start, filters=private),
        CommandHandler("help", start.help_command),
        CommandHandler("language", start.language_command, filters=private),
        CommandHandler("privacy", onboarding.privacy, filters=private),
        CommandHandler("delete", onboarding.delete, filters=private),
        CommandHandler("report", report.report_command, filters=private),
        CommandHandler("cancel", report.cancel, filters=private),
        CommandHandler("my", report.my_reports, filters=private),
        CommandHandler("queue", moderation.queue_command, filters=private),
        CommandHandler("mods", moderation.mods_command),
        CommandHandler("stats", stats.stats_command),
        CommandHandler("balance", money.balance_command, filters=private),
        CommandHandler("history", money.history_command, filters=private),
        CommandHandler("payee", money.payee_command, filters=private),
        CommandHandler("reverse", money.reverse_command),
        CommandHandler("payout", money.payout_command),
        CommandHandler("audit", money.audit_command),
        # Buttons
        CallbackQueryHandler(moderation.on_button, pattern=f"^{moderation.CALLBACK}"),
        CallbackQueryHandler(money.on_mark_paid, pattern=f"^{money.CALLBACK_PAID}"),
        CallbackQueryHandler(start.language_chosen, pattern=f"^{start.LANGUAGE_CALLBACK}"),
        CallbackQueryHandler(onboarding.on_consent, pattern=f"^{onboarding.CALLBACK_CONSENT}$"),
        CallbackQueryHandler(onboarding.on_delete, pattern=f"^{onboarding.CALLBACK_DELETE}"),
        CallbackQueryHandler(
            report.on_photo_location, pattern=f"^{report.CALLBACK_PHOTO_LOCATION}"
        ),
        CallbackQueryHandler(report.on_category, pattern=f"^{report.CALLBACK_CATEGORY}"),
        CallbackQueryHandler(report.on_skip, pattern=f"^{report.CALLBACK_SKIP}"),
        CallbackQueryHandler(report.on_submit, pattern=f"^{report.CALLBACK_SUBMIT}"),
        CallbackQueryHandler(report.on_cancel_button, pattern=f"^{report.CALLBACK_CANCEL}"),
        # A moderator's question for a rider: a reply to the bot's prompt
        MessageHandler(
            moderation.ASK_PROMPT_REPLY & filters.TEXT & ~filters.COMMAND & fresh,
            moderation.on_question,
        ),
        # A rider's messages
        MessageHandler(private & fresh & (filters.PHOTO | filters.Document.ALL), report.on_photo),
        MessageHandler(private & fresh & filters.LOCATION, report.on_location),
        MessageHandler(
            private
            & fresh
            & (filters.VIDEO | filters.ANIMATION | filters.Sticker.ALL | filters.VIDEO_NOTE),
            report.on_unsupported_media,
        ),
        MessageHandler(private & fresh & filters.TEXT & ~filters.COMMAND, report.on_text),
        # Last: whatever nobody recognised.
        CallbackQueryHandler(start.stale_button),
        MessageHandler(private & fresh, start.unknown),
    ]


def build_application(settings: Settings) -> BotApplication:
    """The configured PTB Application, ready for `run_polling` (or a test's own start)."""
    db = Database(settings.database_path)
    texts = Texts()
    runtime = Runtime(
        settings=settings,
        db=db,
        texts=texts,
        languages=Languages(db),
        reporting=Reporting(db, settings.programme, settings.timezone),
        moderation=Moderation(db, settings),
        money=Money(db, settings),
        outbox=Outbox(db),
    )

    card_sender: list[asyncio.Task[None]] = []

    async def post_init(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        await runtime.db.open()
        await start.set_command_menus(app.bot, texts)
        card_sender.append(asyncio.create_task(moderation.card_sender(app, runtime.card_wake)))
        log.info("started as @%s", app.bot.username)

    async def post_stop(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        for task in card_sender:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def post_shutdown(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        await runtime.db.close()
        log.info("stopped; database closed")

    api = settings.bot_api_url
    app: BotApplication = (
        ApplicationBuilder()
        .token(settings.bot_token)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .context_types(ContextTypes(context=BotContext))
        .rate_limiter(PacedRateLimiter(settings.rate_limits))
        .concurrent_updates(
            PerUserUpdateProcessor(
                max_queued=settings.rate_limits.max_queued_updates,
                on_overflow=slow_down_notice(runtime),
            )
        )
        .post_init(post_init)
        .post_stop(post_stop)
        .post_shutdown(post_shutdown)
        .build()
    )
    app.bot_data["runtime"] = runtime
    for handler in handlers():
        handler.callback = logged(handler.callback)
        app.add_handler(handler)
    app.add_error_handler(on_error)
    schedule_jobs(app)
    return app


Callback = Callable[[Any, BotContext], Coroutine[Any, Any, Any]]


def logged(callback: Callback) -> Callback:
    """One log line per handled update: its id, the handler, the outcome and the time taken."""
    name = f"{callback.__module__.removeprefix('handlers.')}.{callback.__qualname__}"

    @functools.wraps(callback)
    async def run(update: Update, context: BotContext) -> Any:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await callback(update, context)
            outcome = "ok"
            return result
        finally:
            ms = round((time.perf_counter() - started) * 1000, 1)
            handled.info(
                "update %s handled by %s: %s in %s ms",
                update.update_id,
                name,
                outcome,
                ms,
                extra={
                    "update_id": update.update_id,
                    "handler": name,
                    "outcome": outcome,
                    "ms": ms,
                },
            )

    return run


def schedule_jobs(app: BotApplication) -> None:
    """Recurring work. Jobs are not persisted: each one asks the database what is due."""
    assert app.job_queue is not None
    app.job_queue.run_repeating(jobs.sweep_drafts, interval=DRAFT_SWEEP_SECONDS, first=30)
    app.job_queue.run_repeating(notify.drain_outbox, interval=notify.DRAIN_SECONDS, first=10)
    app.job_queue.run_repeating(moderation.promise_job, interval=PROMISE_CHECK_SECONDS, first=60)
    settings = app.bot_data["runtime"].settings
    zone = settings.timezone
    # The cron only wakes the job; the database decides which periods are due, so a run
    # missed while the bot was down is caught up by the run at start-up.
    app.job_queue.run_custom(money.payout_job, job_kwargs={"trigger": settings.payout_trigger()})
    app.job_queue.run_once(money.payout_job, when=1, name="payout catch-up")
    app.job_queue.run_daily(jobs.backup, time=datetime.time(3, 0, tzinfo=zone), name="backup")
    app.job_queue.run_daily(
        jobs.retention, time=datetime.time(3, 30, tzinfo=zone), name="retention"
    )


def main(argv: list[str] | None = None) -> int:
    command = (sys.argv[1:] if argv is None else argv)[:1]
    if command not in ([], ["backup"], ["check"]):
        print(f"usage: python bot.py [backup | check]; got {command[0]!r}", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"bot.py: cannot start: {exc}", file=sys.stderr)
        return 2
    if command == ["check"]:
        return asyncio.run(check(settings))
    configure_logging([settings.bot_token], settings.log_format)
    if command == ["backup"]:
        path = backups.backup(
            settings.database_path,
            settings.backup_dir,
            settings.backups_kept,
            datetime.datetime.now(settings.timezone),
        )
        print(f"backup written to {path}")
        return 0
    app = build_application(settings)
    try:
        if settings.webhook is None:
            app.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
        else:
            hook = settings.webhook
            # PTB's webhook server refuses (403) any request without the right secret header.
            app.run_webhook(
                listen=hook.listen_host,
                port=hook.listen_port,
                url_path=hook.path,
                webhook_url=hook.url,
                secret_token=hook.secret,
                allowed_updates=Update.ALL_TYPES,
                drop_pending_updates=False,
            )
    except InvalidToken:
        print("bot.py: cannot start: BOT_TOKEN: rejected by the Bot API", file=sys.stderr)
        return 2
    except NetworkError as exc:
        print(f"bot.py: cannot start: BOT_API_URL: {exc.message}", file=sys.stderr)
        return 1
    return 0


async def check(settings: Settings) -> int:
    """Pre-deploy checks, one line each; stops at the first failure with a non-zero code."""
    print(f"ok    settings (database {settings.database_path}, timezone {settings.timezone})")
    db = Database(settings.database_path)
    try:
        await db.open()
        version = await db.schema_version()
    except (OSError, sqlite3.Error) as exc:
        print(f"FAIL  database {settings.database_path}: {exc}")
        return 1
    finally:
        await db.close()
    print(f"ok    database (schema version {version})")
    api = settings.bot_api_url
    bot = Bot(settings.bot_token, base_url=f"{api}/bot", base_file_url=f"{api}/file/bot")
    try:
        async with bot:
            me = await bot.get_me()
    except InvalidToken:
        print("FAIL  Bot API: BOT_TOKEN rejected")
        return 1
    except TelegramError as exc:
        print(f"FAIL  Bot API at {api}: {exc.message}")
        return 1
    print(f"ok    Bot API at {api} (@{me.username})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
