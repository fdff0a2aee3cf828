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

import argparse
import asyncio
import contextlib
import datetime
import functools
import logging
import os
import pathlib
import signal
import sys
import time
import urllib.parse
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import Bot, Update
from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut
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
from telegram.request import HTTPXRequest
from tornado.httpserver import HTTPServer

from handlers import (
    cases,
    consent,
    dispatch,
    figures,
    jobs,
    membercard,
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
from handlers.infra.transport import PacedRateLimiter
from handlers.infra.unparsed import SkipUnparsedUpdates, UnparsedUpdates
from handlers.labels import KeyboardLabel
from locales import Texts
from services import backup as backups
from services import exports, migration
from services.cases import Cases
from services.clock import Clock
from services.inbox import Inbox
from services.logs import StartupHold, configure_logging, release_held_logs
from services.membercard import MemberCards
from services.moderation import Moderation
from services.money import Money
from services.outbox import Outbox
from services.places import Places
from services.points import Points
from services.reporting import Reporting
from services.users import Languages
from settings import Settings, SettingsError, load_settings, redact_url
from storage import transfer
from storage.db import DATABASE_ERRORS, Database, is_postgres_url

log = logging.getLogger("bot")
handled = logging.getLogger("bot.updates")
DRAFT_SWEEP_SECONDS = 600
PROMISE_CHECK_SECONDS = 900
CASE_CHECK_SECONDS = 300
# Telegram's updates are a few kilobytes; the webhook server refuses a larger body from its
# Content-Length (or as a chunked body grows) before reading it, secret or not.
WEBHOOK_MAX_BODY_BYTES = 1024 * 1024


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
        # departments (即时办): moderators and department staff
        CommandHandler("cases", cases.cases_command),
        CommandHandler("staff", cases.staff_command),
        # --- buttons, by the verb in their data (handlers/callbacks.py) --------------------
        CallbackQueryHandler(onboarding.on_consent, pattern=pattern(consent.AGREE)),
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
        CallbackQueryHandler(places.on_page, pattern=pattern(places.MORE, places.MERCHANTS)),
        CallbackQueryHandler(places.on_town, pattern=pattern(widgets.TOWN)),
        CallbackQueryHandler(places.on_problem, pattern=pattern(places.PROBLEM)),
        CallbackQueryHandler(membercard.on_item, pattern=pattern(membercard.ITEM)),
        CallbackQueryHandler(membercard.on_cancel_code, pattern=pattern(membercard.CANCEL_CODE)),
        CallbackQueryHandler(membercard.on_confirm, pattern=pattern(membercard.CONFIRM)),
        CallbackQueryHandler(
            money.on_payee_button, pattern=pattern(money.CONFIRM_PAYEE, money.CANCEL_PAYEE)
        ),
        CallbackQueryHandler(money.on_mark_paid, pattern=pattern(money.MARK_PAID)),
        # --- answers to the bot's own questions: replies to its prompts (handlers/prompts.py)
        MessageHandler(review.ASK_PROMPT_REPLY & text & fresh, review.on_question),
        MessageHandler(private & money.PAYEE_PROMPT_REPLY & text & fresh, money.on_payee_reply),
        MessageHandler(
            cases.PROMPT_REPLY & (filters.TEXT | filters.PHOTO) & ~filters.COMMAND & fresh,
            cases.on_prompt_reply,
        ),
        MessageHandler(private & places.PROBLEM_PHOTO_REPLY & fresh, places.on_problem_photo),
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
        MessageHandler(
            private
            & fresh
            & (filters.VIDEO | filters.ANIMATION | filters.Sticker.ALL | filters.VIDEO_NOTE),
            report.on_unsupported_media,
        ),
        # free text: the answer to a moderator's open question, else the draft's description
        MessageHandler(private & fresh & text, report.on_rider_text),
        # --- last: whatever nobody recognised ---------------------------------------------------
        CallbackQueryHandler(start.stale_button),
        MessageHandler(private & fresh, start.unknown),
    ]


def build_application(settings: Settings) -> BotApplication:
    """The configured PTB Application, ready for `run_polling` (or a test's own start)."""
    db = Database(settings.database)
    clock = Clock()
    outbox = Outbox(db, clock)
    case_work = Cases(db, settings, outbox, clock)
    runtime = Runtime(
        settings=settings,
        db=db,
        clock=clock,
        texts=Texts(),
        languages=Languages(db),
        reporting=Reporting(db, settings.programme, settings.timezone, outbox, clock=clock),
        moderation=Moderation(db, settings, outbox, cases=case_work, clock=clock),
        money=Money(db, settings, outbox, clock),
        outbox=outbox,
        cases=case_work,
        places=Places(db, settings, outbox, clock),
        points=Points(db, settings, outbox, clock),
        member_cards=MemberCards(db, settings, clock),
        inbox=Inbox(db, clock),
    )
    updates = JournalingQueue(runtime.inbox)

    # Long-running senders: review cards to the moderators, notices from the outbox.
    senders: list[asyncio.Task[None]] = []

    async def post_init(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        await runtime.db.open()
        # With PostgreSQL, one process leads (polls or serves the webhook, runs the jobs);
        # any other waits here until the leader's database lease is gone.
        await runtime.db.lead(on_wait=standing_by, on_lost=lease_lost)
        await updates.replay(app.bot)  # what a killed process took and never finished
        await start.set_command_menus(app.bot, runtime.texts)
        senders.append(asyncio.create_task(review.card_sender(app, runtime.card_wake)))
        senders.append(asyncio.create_task(notify.deliver_notices(app)))
        if case_work.enabled:
            senders.append(asyncio.create_task(cases.card_sender(app)))
        log.info("started as @%s", app.bot.username)

    async def post_stop(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        for task in senders:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def post_shutdown(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        await runtime.db.close()
        log.info("stopped; database closed")

    api = settings.bot_api_url
    polling = SkipUnparsedUpdates(connection_pool_size=1, proxy=settings.proxy)
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
    if command == ["backup"] and settings.database_url is not None:
        print("bot.py backup: PostgreSQL is backed up with pg_dump", file=sys.stderr)
        return 2
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


def export_command(settings: Settings, arguments: list[str]) -> int:
    """`python bot.py export ...`: the register as a file (a folder for open311)."""
    parser = argparse.ArgumentParser(prog="python bot.py export")
    parser.add_argument("--format", choices=("xlsx", "geojson", "open311"), required=True)
    parser.add_argument("--from", dest="first", type=datetime.date.fromisoformat, required=True)
    parser.add_argument("--to", dest="last", type=datetime.date.fromisoformat, required=True)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    try:
        options = parser.parse_args(arguments)
    except SystemExit as exc:
        return int(exc.code or 0)
    if options.last < options.first:
        print("bot.py export: --to is before --from", file=sys.stderr)
        return 2
    zone = settings.timezone
    start = datetime.datetime.combine(options.first, datetime.time(), tzinfo=zone)
    end = datetime.datetime.combine(
        options.last + datetime.timedelta(days=1), datetime.time(), tzinfo=zone
    )

    async def build() -> exports.Files:
        db = Database(settings.database)
        await db.open()
        try:
            return await exports.export(db, settings, start, end, datetime.datetime.now(zone))
        finally:
            await db.close()

    files = asyncio.run(build())
    out: pathlib.Path = options.out
    if options.format == "open311":
        out.mkdir(parents=True, exist_ok=True)
        (out / "services.json").write_bytes(files.services_json)
        (out / "requests.json").write_bytes(files.requests_json)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(files.xlsx if options.format == "xlsx" else files.geojson)
    print(f"{files.count} reports written to {out}")
    return 0


def run(app: BotApplication, settings: Settings) -> None:
    """Long polling, or the webhook server when WEBHOOK_URL is set; until a stop signal."""
    if settings.webhook is None:
        app.run_polling(allowed_updates=Update.ALL_TYPES, drop_pending_updates=False)
        return
    hook = settings.webhook
    # PTB builds the tornado server itself; this sets the limit for every server it builds.
    HTTPServer.configure(None, max_body_size=WEBHOOK_MAX_BODY_BYTES)
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


def secrets(settings: Settings) -> list[str]:
    """What must never reach a log line: the token, the webhook secret, a proxy's password."""
    found = [settings.bot_token]
    if settings.card_secret:
        found.append(settings.card_secret)
    if settings.webhook is not None:
        found.append(settings.webhook.secret)
    if settings.proxy:
        password = urllib.parse.urlsplit(settings.proxy).password
        if password:
            found.append(password)
    return found


def route(settings: Settings) -> str:
    """How the Bot API is reached: 'through proxy URL' (password hidden) or 'without a proxy'."""
    if settings.proxy:
        return f"through proxy {redact_url(settings.proxy)}"
    return "without a proxy"


def unreachable(settings: Settings, exc: NetworkError) -> str:
    """One line: what was tried, what failed, what to check."""
    line = (
        f"cannot reach the Bot API at {settings.bot_api_url} {route(settings)} "
        f"({network_failure(exc)}); check the network, HTTPS_PROXY/ALL_PROXY or BOT_API_URL"
    )
    return line.replace(settings.bot_token, "[redacted]")


def network_failure(exc: NetworkError) -> str:
    """The cause in a few words: the operating system's reason where there is one."""
    if isinstance(exc, TimedOut):
        return "timed out"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno is not None:
            # getaddrinfo's errors are negative and carry their own text.
            reason = os.strerror(cause.errno) if cause.errno > 0 else cause.strerror
            return str(reason).lower()
        cause = cause.__cause__ or cause.__context__
    return exc.message.split(": ", 1)[-1] if exc.message.startswith("httpx.") else exc.message


MIGRATION_ERRORS: tuple[type[Exception], ...] = (*DATABASE_ERRORS, transfer.NotEmpty)


async def migrate_to(settings: Settings, target: list[str]) -> int:
    """Copy this county's SQLite database into an empty PostgreSQL database, audit both."""
    if len(target) != 1 or not is_postgres_url(target[0]) or settings.database_url:
        print(
            "usage: DATABASE_URL=sqlite:///… python bot.py migrate-to postgresql://…",
            file=sys.stderr,
        )
        return 2
    try:
        copied, problems = await migration.migrate(settings.database_path, target[0])
    except MIGRATION_ERRORS as exc:
        print(f"FAIL  migrate-to: {exc}")
        return 1
    for table, rows in transfer.summary(copied):
        print(f"ok    copied {rows} rows of {table}")
    for problem in problems:
        print(f"FAIL  {problem}")
    if problems:
        return 1
    print("ok    both audits clean; balances, reports, photos, ledger and batches are equal")
    return 0


async def check(settings: Settings) -> int:
    """Pre-deploy checks, one line each; stops at the first failure with a non-zero code."""
    where = "PostgreSQL" if settings.database_url else settings.database_path
    print(f"ok    settings (database {where}, timezone {settings.timezone})")
    db = Database(settings.database)
    try:
        await db.open()
        version = await db.schema_version()
        leads = await db.would_lead()
        written_ago = await Inbox(db).written_ago()
    except DATABASE_ERRORS as exc:
        print(f"FAIL  database {where}: {exc}")
        return 1
    finally:
        await db.close()
    role = "would lead" if leads else "would wait: another process leads"
    print(f"ok    database (engine {db.engine}, schema version {version}, {role})")
    api = settings.bot_api_url
    bot = Bot(
        settings.bot_token,
        base_url=f"{api}/bot",
        base_file_url=f"{api}/file/bot",
        request=HTTPXRequest(proxy=settings.proxy),
    )
    try:
        async with bot:
            me = await bot.get_me()
            waiting = (await bot.get_webhook_info()).pending_update_count
            routing = await check_routing(bot, settings)
    except InvalidToken:
        print("FAIL  Bot API: BOT_TOKEN rejected")
        return 1
    except NetworkError as exc:
        print(f"FAIL  Bot API: {unreachable(settings, exc)}")
        return 1
    except TelegramError as exc:
        print(f"FAIL  Bot API at {api} {route(settings)}: {exc.message}")
        return 1
    print(f"ok    Bot API at {api} {route(settings)} (@{me.username})")
    for line in routing:
        print(line)
    print(updates_line(waiting, written_ago))
    return 1 if any(line.startswith("FAIL") for line in routing) else 0


STALLED_AFTER_SECONDS = 120


def updates_line(waiting: int, written_ago: float | None) -> str:
    """Whether updates flow: Telegram holds `waiting` updates nobody fetched; the running bot
    writes each one down as it fetches it, so many waiting and none written lately means its
    poller is stalled (or no bot runs)."""
    if waiting and (written_ago is None or written_ago > STALLED_AFTER_SECONDS):
        since = "none ever" if written_ago is None else f"none for {written_ago / 60:.0f} min"
        return (
            f"WARN  updates: {waiting} waiting at Telegram and {since} written down: the "
            "bot's poller is stalled or no bot is running (its log says why)"
        )
    return f"ok    updates ({waiting} waiting at Telegram)"


async def check_routing(bot: Bot, settings: Settings) -> list[str]:
    """Cases: every category reaches exactly one department, every department chat is reachable.

    A category is never routed twice (settings refuse that); here: unrouted ones and chats."""
    programme = settings.programme
    if not programme.departments:
        return ["ok    cases off (no [[departments]] in config.toml)"]
    lines = []
    unrouted = programme.unrouted_categories()
    if unrouted:
        lines.append(f"FAIL  routing: no department handles {', '.join(unrouted)}")
    else:
        lines.append(f"ok    routing ({len(programme.categories)} categories)")
    for department in programme.departments:
        try:
            chat = await bot.get_chat(department.chat_id)
        except TelegramError as exc:
            lines.append(
                f"FAIL  department {department.key}: chat {department.chat_id} "
                f"unreachable ({exc.message})"
            )
            continue
        title = chat.title or chat.first_name or chat.id
        lines.append(f"ok    department {department.key}: chat {title}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
