"""The command-line tools beside the bot: `check` (pre-deploy checks, one line each),
`backup` (SQLite, online), `export` (the register as files) and `migrate-to` (SQLite into
PostgreSQL). bot.py's main() reads the settings and hands them over."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import pathlib
import sys

from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut
from telegram.request import HTTPXRequest

from locales import Texts
from services import backup as backups
from services import exports, migration, workdays
from services.channels import Channels, Failed
from services.inbox import Inbox
from settings import Department, Settings, redact_url
from storage import transfer
from storage.db import DATABASE_ERRORS, Database, is_postgres_url


def backup_command(settings: Settings) -> int:
    """`python bot.py backup`: an online backup of the SQLite database, now."""
    if settings.database_url is not None:
        print("bot.py backup: PostgreSQL is backed up with pg_dump", file=sys.stderr)
        return 2
    path = backups.backup(
        settings.database_path,
        settings.backup_dir,
        settings.backups_kept,
        datetime.datetime.now(settings.timezone),
    )
    print(f"backup written to {path}")
    return 0


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


def calendar_line(now: datetime.datetime) -> str:
    """Working-day deadlines need the statutory calendar of this year (and, from November,
    of the next one, which the State Council publishes late in the year)."""
    years = [now.year] + ([now.year + 1] if now.month >= 11 else [])
    missing = workdays.missing_years(years)
    if now.year in missing:
        return (
            f"WARN  holiday calendar: {now.year} is missing; working days count Monday-Friday"
            " until chinesecalendar is upgraded"
        )
    if missing:
        return f"WARN  holiday calendar: {missing[0]} not published in chinesecalendar yet"
    return f"ok    holiday calendar ({', '.join(map(str, years))})"


async def check_routing(bot: Bot, settings: Settings) -> list[str]:
    """Cases: every category reaches exactly one department, every department chat is reachable.

    A category is never routed twice (settings refuse that); here: unrouted ones and chats."""
    programme = settings.programme
    if not programme.departments:
        return ["ok    cases off (no [[departments]] in config.toml)"]
    lines = []
    towns = programme.towns
    if towns:
        lines.append(f"ok    towns file ({len(towns.names)} towns, {len(towns.grids)} grids)")
    unrouted = programme.unrouted_categories()
    if unrouted:
        lines.append(f"FAIL  routing: no department handles {', '.join(unrouted)}")
    else:
        where = f" in each of {len(towns.names)} towns and outside them" if towns else ""
        lines.append(f"ok    routing ({len(programme.categories)} categories{where})")
    if any(workdays.Unit.WORKDAYS in (c.fix.unit, c.accept.unit) for c in programme.categories):
        lines.append(calendar_line(datetime.datetime.now(settings.timezone)))
    channels = Channels(settings, Texts())
    try:
        for department in programme.departments:
            lines.append(await _check_department(bot, channels, department))
    finally:
        await channels.close()
    return lines


async def _check_department(bot: Bot, channels: Channels, department: Department) -> str:
    """Its channel tried without a case: the group's chat, or its own system."""
    if department.send != "telegram":
        try:
            said = await channels.probe(department)
        except Failed as exc:
            return f"FAIL  department {department.key}: {department.send} {exc.detail}"
        return f"ok    department {department.key}: {department.send}: {said}"
    assert department.chat_id is not None
    try:
        chat = await bot.get_chat(department.chat_id)
    except TelegramError as exc:
        return (
            f"FAIL  department {department.key}: chat {department.chat_id} "
            f"unreachable ({exc.message})"
        )
    title = chat.title or chat.first_name or chat.id
    return f"ok    department {department.key}: chat {title}"
