"""/stats for moderators and admins: how the programme does today, this week and all time.

One plain-text message in the caller's language; the figures come from services/stats.py.
"""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

from telegram import Update

from handlers.common import BotContext, language_of
from locales import Texts
from services.stats import DepartmentStats, PeriodStats, Snapshot, Stats, case_stats
from settings import Settings

MESSAGE_LIMIT = 4096


def service(context: BotContext) -> Stats:
    """The stats service, on the same clock as the moderators' workflow."""
    runtime = context.runtime
    settings = runtime.settings
    return Stats(
        runtime.db,
        settings.timezone,
        [category.key for category in settings.programme.categories],
        clock=runtime.moderation.clock,
    )


def duration(texts: Texts, language: str, span: timedelta) -> str:
    """A time to decision in hours and minutes, rounded to the nearest minute."""
    minutes = int((span + timedelta(seconds=30)) // timedelta(minutes=1))
    hours, minutes = divmod(minutes, 60)
    if hours:
        return texts.get(language, "stats.duration.hours", hours=hours, minutes=minutes)
    return texts.get(language, "stats.duration.minutes", minutes=minutes)


def render(texts: Texts, settings: Settings, language: str, snapshot: Snapshot) -> str:
    """The whole /stats message."""

    def t(key: str, **params: object) -> str:
        return texts.get(language, key, **params)

    def items(pairs: list[tuple[str, int]]) -> str:
        return t("stats.separator").join(t("stats.item", name=n, count=c) for n, c in pairs)

    def category_name(key: str | None) -> str:
        category = settings.programme.category(key or "")
        return category.name(language) if category else key or "-"

    def section(stats: PeriodStats) -> list[str]:
        since = "" if stats.since is None else stats.since.date().isoformat()
        period = t(f"stats.period.{stats.period}", since=since)
        lines = [t("stats.heading", period=period, count=stats.submitted)]
        if stats.by_status:
            statuses = [(t(f"status.{s}"), n) for s, n in stats.by_status]
            lines.append(t("stats.by_status", items=items(statuses)))
        if stats.by_category:
            categories = [(category_name(c), n) for c, n in stats.by_category]
            lines.append(t("stats.by_category", items=items(categories)))
        decided = stats.decisions
        if decided.median is None or decided.p90 is None:
            lines.append(t("stats.decisions.none"))
        else:
            lines.append(
                t(
                    "stats.decisions",
                    count=decided.count,
                    median=duration(texts, language, decided.median),
                    p90=duration(texts, language, decided.p90),
                )
            )
        hours = settings.programme.review_deadline_hours
        lines.append(t("stats.breaches", hours=hours, count=stats.breaches))
        return lines

    blocks = [t("stats.title", time=texts.when(language, snapshot.at, settings.timezone))]
    blocks += ["\n".join(section(stats)) for stats in snapshot.periods]
    text = "\n\n".join(blocks)
    # Many configured categories could not reach Telegram's limit, but never send an error.
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


async def stats_command(update: Update, context: BotContext) -> None:
    """/stats (moderators and admins): reports, times to decision and breaches, by period."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None:
        return
    runtime = context.runtime
    texts = runtime.texts
    language = await language_of(context, user)
    if not await runtime.moderation.is_moderator(user.id):
        await context.bot.send_message(
            chat.id, texts.get(language, "moderation.refused.not_moderator")
        )
        return
    snapshot = await service(context).snapshot()
    text = render(texts, runtime.settings, language, snapshot)
    departments = [d.key for d in runtime.settings.programme.departments]
    if departments:
        found = await case_stats(runtime.db, departments, runtime.cases.clock)
        text = f"{text}\n\n{render_cases(texts, runtime.settings, language, found)}"[:MESSAGE_LIMIT]
    await context.bot.send_message(chat.id, text)


def render_cases(
    texts: Texts, settings: Settings, language: str, found: list[DepartmentStats]
) -> str:
    """The departments' block of /stats: figures only where a department has 5+ cases."""
    lines = [texts.get(language, "stats.cases.heading")]
    for stats in found:
        department = settings.programme.department(stats.department)
        name = department.name(language) if department else stats.department
        times = stats.to_fixed
        if times is None or stats.reopened is None:
            lines.append(texts.get(language, "stats.cases.few", department=name, count=stats.cases))
            continue
        lines.append(
            texts.get(
                language,
                "stats.cases.line",
                department=name,
                count=stats.cases,
                median=duration(texts, language, times.median) if times.median else "-",
                p90=duration(texts, language, times.p90) if times.p90 else "-",
                within=_percent(stats.within_sla),
                reopened=_percent(stats.reopened),
                overdue=stats.open_overdue,
            )
        )
    return "\n".join(lines)


def _percent(share: Fraction | None) -> str:
    return "-" if share is None else str(round(share * 100))
