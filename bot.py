"""Entry point: `python bot.py` runs the bot (long polling, or a webhook if WEBHOOK_URL is set).

    python bot.py           run the bot
    python bot.py backup    make an online backup of the database now
    python bot.py check     validate settings, open the database, call getMe; one line each
    python bot.py migrate-to postgresql://…   copy the SQLite database into PostgreSQL, audit both
    python bot.py export --format xlsx|geojson|open311 --from YYYY-MM-DD --to YYYY-MM-DD --out PATH
                            the register of reports submitted in those days (both included)

A start that cannot reach the Bot API says so in one line (what was tried, what failed, what
to check) and exits 1; the lines logged on the way are dropped unless LOG_LEVEL=debug.
Telegram is reached through the environment's proxy (HTTPS_PROXY / ALL_PROXY) when set.

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
import os
import signal
import sys
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Update
from telegram.error import InvalidToken, NetworkError
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

from cli import backup_command, check, export_command, migrate_to, unreachable
from handlers import (
    asks,
    cases,
    consent,
    dispatch,
    figures,
    jobs,
    membercard,
    menus,
    moderators,
    money,
    onboarding,
    places,
    report,
    review,
    review_card,
    start,
    stats,
    widgets,
)
from handlers.callbacks import pattern
from handlers.common import BotApplication, BotContext, Runtime
from handlers.infra import notify
from handlers.infra.errors import on_error
from handlers.infra.inbox import JournalingQueue
from handlers.infra.ordering import PerUserUpdateProcessor, slow_down_notice
from handlers.infra.transport import PacedRateLimiter, remember_sniffio_is_missing
from handlers.infra.unparsed import SkipUnparsedUpdates, UnparsedUpdates
from handlers.labels import KeyboardLabel
from handlers.web import WebServer
from locales import Texts
from services.asks import Asks
from services.cases import Cases
from services.clock import Clock
from services.dashboard import Dashboard
from services.handoff import Handoff
from services.inbox import Inbox
from services.invites import Invites
from services.logs import StartupHold, configure_logging, release_held_logs
from services.membercard import MemberCards
from services.moderation import Moderation
from services.money import Money
from services.outbox import Outbox
from services.places import Places
from services.points import Points
from services.reporting import Reporting
from services.users import Languages, Names
from settings import Settings, SettingsError, Webhook, load_settings
from storage.db import Database

log = logging.getLogger("bot")
handled = logging.getLogger("bot.updates")
DRAFT_SWEEP_SECONDS = 600
PROMISE_CHECK_SECONDS = 900
CASE_CHECK_SECONDS = 300


def handlers(texts: Texts) -> list[BaseHandler[Any, BotContext, Any]]:
    """The bot's routing table: PTB tries these in order and the first match wins.

    Who may use each handler is declared on the handler itself (handlers/access.py).
    """
    private = filters.ChatType.PRIVATE
    fresh = filters.UpdateType.MESSAGE  # edits (live-location updates included) are ignored
    text = filters.TEXT & ~filters.COMMAND
    return [
        # --- commands -------------------------------------------------------------------
        # anyone; a /start deep link from a 联新卡 or a redemption QR goes to merchant staff
        CommandHandler("start", dispatch.start_link, filters=private & dispatch.DEEP_LINK),
        CommandHandler("start", onboarding.start, filters=private),
        CommandHandler("help", start.help_command),
        CommandHandler("language", start.language_command, filters=private),
        CommandHandler("privacy", onboarding.privacy, filters=private),
        CommandHandler("delete", onboarding.delete, filters=private),
        # riders
        CommandHandler("report", report.report_command, filters=private),
        CommandHandler("cancel", report.cancel, filters=private),
        CommandHandler("my", report.my_reports, filters=private),
        CommandHandler("balance", money.balance_command, filters=private),
        CommandHandler("history", money.history_command, filters=private),
        CommandHandler("payee", money.payee_command, filters=private),
        CommandHandler("nearby", places.nearby_command, filters=private),
        CommandHandler("card", membercard.card_command, filters=private),
        CommandHandler("points", membercard.points_command, filters=private),
        CommandHandler("ask", asks.ask_command, filters=private),
        # merchant staff
        CommandHandler("redeem", membercard.redeem_command, filters=private),
        # moderators
        CommandHandler("queue", review.queue_command, filters=private),
        CommandHandler("stats", stats.stats_command),
        # admins (answered only in a private chat or the finance chat)
        CommandHandler("mods", moderators.mods_command),
        CommandHandler("reverse", money.reverse_command),
        CommandHandler("payout", money.payout_command),
        CommandHandler("audit", money.audit_command),
        CommandHandler("batches", money.batches_command),
        CommandHandler("batch", money.batch_command),
        CommandHandler("places", places.places_command),
        CommandHandler("merchants", membercard.merchants_command),
        # reports upward: the incident picture (moderators), the register (admins)
        CommandHandler("map", figures.map_command),
        CommandHandler("export", figures.export_command),
        CommandHandler("dashboard", figures.dashboard_command),
        # departments (即时办): moderators and department staff
        CommandHandler("cases", cases.cases_command),
        CommandHandler("staff", cases.staff_command),
        CommandHandler("supervise", cases.supervise_command),
        # --- buttons, by the verb in their data (handlers/callbacks.py) --------------------
        CallbackQueryHandler(onboarding.on_consent, pattern=pattern(consent.AGREE)),
        CallbackQueryHandler(onboarding.privacy, pattern=pattern(consent.FULL_NOTICE)),
        CallbackQueryHandler(onboarding.on_delete, pattern=pattern(onboarding.ERASE)),
        CallbackQueryHandler(start.language_chosen, pattern=pattern(start.CHOOSE_LANGUAGE)),
        CallbackQueryHandler(report.on_draft_button, pattern=pattern(*report.DRAFT_BUTTONS)),
        CallbackQueryHandler(report.on_submit, pattern=pattern(report.SUBMIT)),
        CallbackQueryHandler(report.on_cancel_button, pattern=pattern(report.CANCEL)),
        CallbackQueryHandler(review.on_decision, pattern=pattern(*review_card.DECISIONS)),
        CallbackQueryHandler(review.on_menu, pattern=pattern(*review_card.MENUS)),
        CallbackQueryHandler(cases.on_staff_button, pattern=pattern(*cases.STAFF_VERBS)),
        CallbackQueryHandler(cases.on_rider_button, pattern=pattern(*cases.RIDER_VERBS)),
        CallbackQueryHandler(cases.on_route_button, pattern=pattern(cases.ROUTE)),
        CallbackQueryHandler(cases.on_extension_button, pattern=pattern(cases.EXTENSION)),
        CallbackQueryHandler(cases.on_supervision_button, pattern=pattern(cases.SUPERVISION)),
        CallbackQueryHandler(places.on_page, pattern=pattern(places.MORE, places.MERCHANTS)),
        CallbackQueryHandler(places.on_town, pattern=pattern(widgets.TOWN)),
        CallbackQueryHandler(places.on_problem, pattern=pattern(places.PROBLEM)),
        CallbackQueryHandler(places.on_problem_what, pattern=pattern(places.PROBLEM_WHAT)),
        CallbackQueryHandler(membercard.on_item, pattern=pattern(membercard.ITEM)),
        CallbackQueryHandler(membercard.on_cancel_code, pattern=pattern(membercard.CANCEL_CODE)),
        CallbackQueryHandler(membercard.on_confirm, pattern=pattern(membercard.CONFIRM)),
        CallbackQueryHandler(
            money.on_payee_button, pattern=pattern(money.CONFIRM_PAYEE, money.CANCEL_PAYEE)
        ),
        CallbackQueryHandler(money.on_payee_start, pattern=pattern(money.START_PAYEE)),
        CallbackQueryHandler(money.on_payee_stop, pattern=pattern(money.STOP_PAYEE)),
        CallbackQueryHandler(money.on_mark_paid, pattern=pattern(money.MARK_PAID)),
        # --- answers to the bot's own questions: replies to its prompts (handlers/prompts.py)
        MessageHandler(review.ASK_PROMPT_REPLY & text & fresh, review.on_question),
        MessageHandler(private & money.PAYEE_PROMPT_REPLY & text & fresh, money.on_payee_reply),
        MessageHandler(
            cases.PROMPT_REPLY & (filters.TEXT | filters.PHOTO) & ~filters.COMMAND & fresh,
            cases.on_prompt_reply,
        ),
        MessageHandler(private & places.PROBLEM_PHOTO_REPLY & fresh, places.on_problem_photo),
        MessageHandler(private & asks.ASK_REPLY & fresh, asks.on_ask_reply),
        MessageHandler(~private & asks.ASKED_REPLY & fresh, asks.on_answer),
        # --- the rider's keyboard, by its labels in every language ------------------------
        MessageHandler(private & KeyboardLabel(texts, "keyboard.cancel") & fresh, report.cancel),
        MessageHandler(
            private & KeyboardLabel(texts, "keyboard.report", "keyboard.location") & fresh,
            report.report_command,
        ),
        MessageHandler(
            private & KeyboardLabel(texts, "keyboard.nearby") & fresh, places.nearby_command
        ),
        # --- an admin's places file (XLSX or CSV) -----------------------------------------------
        MessageHandler(private & places.PLACES_FILE & fresh, places.on_places_file),
        # --- what a rider sends -------------------------------------------------------------
        MessageHandler(private & fresh & (filters.PHOTO | filters.Document.ALL), report.on_photo),
        # A location: a draft's place, else "near me" (dispatch.on_location decides)
        MessageHandler(private & fresh & filters.LOCATION, dispatch.on_location),
        MessageHandler(private & fresh & filters.VOICE, report.on_voice),
        MessageHandler(
            private
            & fresh
            & (filters.VIDEO | filters.ANIMATION | filters.Sticker.ALL | filters.VIDEO_NOTE),
            report.on_unsupported_media,
        ),
        # free text: an open payout details step's answer, a moderator's question's answer,
        # else the draft's description (dispatch.on_text decides)
        MessageHandler(private & fresh & text, dispatch.on_text),
        # --- last: whatever nobody recognised ---------------------------------------------------
        CallbackQueryHandler(start.stale_button),
        MessageHandler(private & fresh, start.unknown),
    ]


def build_application(settings: Settings) -> BotApplication:
    """The configured PTB Application, ready for `run_polling` (or a test's own start)."""
    remember_sniffio_is_missing()
    db = Database(settings.database)
    clock = Clock()
    outbox = Outbox(db, clock)
    case_work = Cases(db, settings, outbox, clock)
    moderation = Moderation(db, settings, outbox, cases=case_work, clock=clock)
    texts = Texts()
    runtime = Runtime(
        settings=settings,
        db=db,
        clock=clock,
        texts=texts,
        languages=Languages(db),
        reporting=Reporting(db, settings.programme, settings.timezone, outbox, clock=clock),
        moderation=moderation,
        money=Money(db, settings, outbox, clock),
        outbox=outbox,
        cases=case_work,
        places=Places(db, settings, outbox, clock),
        points=Points(db, settings, outbox, clock),
        member_cards=MemberCards(db, settings, clock),
        inbox=Inbox(db, clock),
        handoff=Handoff(db, settings, case_work, texts, clock),
        invites=Invites(db, settings, outbox, clock),
        names=Names(db, clock),
        asks=Asks(db, settings, outbox, clock),
        dashboard=Dashboard(db, settings, moderation.is_moderator, clock),
    )
    updates = JournalingQueue(runtime.inbox)

    # Long-running senders: review cards to the moderators, notices from the outbox, cases
    # to departments; and the web server, when something needs it.
    senders: list[asyncio.Task[None]] = []
    server: list[WebServer] = []

    async def post_init(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        await runtime.db.open()
        # With PostgreSQL, one process leads (polls or serves the webhook, runs the jobs);
        # any other waits here until the leader's database lease is gone.
        await runtime.db.lead(on_wait=standing_by, on_lost=lease_lost)
        await updates.replay(app.bot)  # what a killed process took and never finished
        senders.append(menus.publish_soon(app.bot, runtime))
        senders.append(asyncio.create_task(review.card_sender(app, runtime.card_wake)))
        senders.append(asyncio.create_task(notify.deliver_notices(app)))
        if case_work.enabled:
            senders.append(asyncio.create_task(cases.card_sender(app)))
        if runtime.handoff.enabled:
            senders.append(asyncio.create_task(runtime.handoff.run()))
        if settings.serves_web:
            server.append(WebServer(app, runtime))
            await server[0].start()
        log.info("started as @%s", app.bot.username)

    async def post_stop(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        for web_server in server:
            await web_server.stop()
        for task in senders:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runtime.handoff.close()

    async def post_shutdown(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        await runtime.db.close()
        log.info("stopped; database closed")

    api = settings.bot_api_url
    polling = SkipUnparsedUpdates(
        connection_pool_size=1, proxy=settings.proxy, on_received=updates.expect
    )
    builder = ApplicationBuilder().get_updates_request(polling)
    if settings.proxy:
        builder = builder.proxy(settings.proxy)
    app: BotApplication = (
        builder.token(settings.bot_token)
        .update_queue(updates)
        .base_url(f"{api}/bot")
        .base_file_url(f"{api}/file/bot")
        .context_types(ContextTypes(context=BotContext))
        .rate_limiter(PacedRateLimiter(settings.rate_limits))
        .concurrent_updates(
            PerUserUpdateProcessor(
                max_queued=settings.rate_limits.max_queued_updates,
                on_overflow=slow_down_notice(runtime),
                on_settled=lambda update: runtime.inbox.handled(update.update_id),
            )
        )
        .post_init(post_init)
        .post_stop(post_stop)
        .post_shutdown(post_shutdown)
        .build()
    )
    app.bot_data["runtime"] = runtime
    for handler in handlers(runtime.texts):
        handler.callback = logged(handler.callback)
        app.add_handler(handler)
    app.add_error_handler(on_error)
    schedule_jobs(app)
    return app


Callback = Callable[[Any, BotContext], Coroutine[Any, Any, Any]]


def standing_by() -> None:
    release_held_logs()  # start-up went well (Telegram answered); waiting is no failure
    log.info("standby: another process leads; waiting to take over")


LEASE_LOST_EXIT = 75  # EX_TEMPFAIL: scripts/run starts the bot again, as a standby or leader
_lease = {"lost": False}


def lease_lost() -> None:
    """The leader's database lease is gone: stop at once, so two never poll together, and
    exit with `LEASE_LOST_EXIT` so that whatever runs the bot starts it again."""
    log.critical("leadership lost (database connection dropped); stopping")
    _lease["lost"] = True
    os.kill(os.getpid(), signal.SIGTERM)


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
    app.job_queue.run_repeating(jobs.promise_job, interval=PROMISE_CHECK_SECONDS, first=60)
    settings = app.bot_data["runtime"].settings
    zone = settings.timezone
    # The cron only wakes the job; the database decides which periods are due, so a run
    # missed while the bot was down is caught up by the run at start-up.
    app.job_queue.run_custom(money.payout_job, job_kwargs={"trigger": settings.payout_trigger()})
    # The job queue starts when this process leads, which for a standby is long after this
    # call: without a grace time a start-up job would be dropped as missed.
    app.job_queue.run_once(
        money.payout_job,
        when=1,
        name="payout catch-up",
        job_kwargs={"misfire_grace_time": None},
    )
    app.job_queue.run_repeating(cases.service_job, interval=CASE_CHECK_SECONDS, first=45)
    app.job_queue.run_daily(
        cases.overdue_job, time=datetime.time(9, 0, tzinfo=zone), name="overdue cases"
    )
    programme = settings.programme
    if programme.digest.enabled:  # run_daily numbers days 0 = Sunday
        app.job_queue.run_daily(
            figures.digest_job,
            time=datetime.time(programme.digest.time[0], programme.digest.time[1], tzinfo=zone),
            days=((programme.digest.weekday + 1) % 7,),
            name="weekly digest",
        )
    if settings.database_url is None:  # PostgreSQL is backed up by its own tools (pg_dump)
        app.job_queue.run_daily(jobs.backup, time=datetime.time(3, 0, tzinfo=zone), name="backup")
    app.job_queue.run_daily(
        jobs.retention, time=datetime.time(3, 30, tzinfo=zone), name="retention"
    )


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    command = arguments[:1]
    if command not in ([], ["backup"], ["check"], ["export"], ["migrate-to"]):
        print(
            "usage: python bot.py [backup | check | export ... | migrate-to URL];"
            f" got {command[0]!r}",
            file=sys.stderr,
        )
        return 2
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"bot.py: cannot start: {exc}", file=sys.stderr)
        return 2
    if command == ["check"]:
        return asyncio.run(check(settings))
    if command == ["migrate-to"]:
        return asyncio.run(migrate_to(settings, arguments[1:]))
    if command == ["export"]:
        return export_command(settings, arguments[1:])
    level = getattr(logging, settings.log_level.upper())
    configure_logging(secrets(settings), settings.log_format, level, [UnparsedUpdates()])
    if command == ["backup"]:
        return backup_command(settings)
    app = build_application(settings)
    # At debug level every line (tracebacks included) goes out as it comes.
    hold = StartupHold() if level > logging.DEBUG else None
    if hold is not None:
        assert app.job_queue is not None

        async def started(_: BotContext) -> None:
            hold.end()

        app.job_queue.run_once(
            started, when=0, name="start-up logs", job_kwargs={"misfire_grace_time": None}
        )
    try:
        run(app, settings)
    except InvalidToken:
        if hold is not None:
            hold.end(keep=False)
        print("bot.py: cannot start: BOT_TOKEN: rejected by the Bot API", file=sys.stderr)
        return 2
    except NetworkError as exc:
        if hold is not None:
            hold.end(keep=False)
        print(f"bot.py: {unreachable(settings, exc)}", file=sys.stderr)
        return 1
    finally:
        if hold is not None:
            hold.end()
    return LEASE_LOST_EXIT if _lease["lost"] else 0


def run(app: BotApplication, settings: Settings) -> None:
    """Long polling, or Telegram's webhook on the bot's own web server (handlers/web.py)
    when WEBHOOK_URL is set; until a stop signal."""
    if settings.webhook is None:
        app.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
        return
    asyncio.run(serve_webhook(app, settings.webhook))


async def serve_webhook(app: BotApplication, hook: Webhook) -> None:
    """PTB's life cycle as `run_webhook` runs it, with the web server `post_init` starts
    (the one that also takes departments' updates) serving Telegram's updates."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await app.initialize()
    try:
        if app.post_init is not None:
            await app.post_init(app)
        await app.bot.set_webhook(
            hook.url,
            secret_token=hook.secret,
            allowed_updates=Update.ALL_TYPES,
            drop_pending_updates=False,
        )
        await app.start()
        await stop.wait()
    finally:
        if app.running:
            await app.stop()
        if app.post_stop is not None:
            await app.post_stop(app)
        await app.shutdown()
        if app.post_shutdown is not None:
            await app.post_shutdown(app)


def secrets(settings: Settings) -> list[str]:
    """What must never reach a log line: the token, the webhook secret, a proxy's password,
    the mail server's password, departments' secrets and API keys."""
    found = [settings.bot_token]
    if settings.card_secret:
        found.append(settings.card_secret)
    if settings.webhook is not None:
        found.append(settings.webhook.secret)
    if settings.smtp is not None and settings.smtp.password:
        found.append(settings.smtp.password)
    for department in settings.programme.departments:
        found += [s for s in (department.channel.secret, department.channel.api_key) if s]
    if settings.proxy:
        password = urllib.parse.urlsplit(settings.proxy).password
        if password:
            found.append(password)
    return found


if __name__ == "__main__":
    sys.exit(main())
