"""/stats for moderators and admins: the period's charts as one image (drawn by
services/charts.py), then how the programme does today, this week and all time, with the
departments' cases, as one message in the caller's language (figures from services/stats.py),
then the departments' performance as an image. The message's figures are read while the
charts are drawn."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from fractions import Fraction

from telegram import Update

from handlers.access import Audience, allow
from handlers.common import BotContext
from handlers.speak import Speaker
from locales import Phrases
from services import charts
from services import figures as data
from services.figures import parse_period
from services.performance import DepartmentPerformance, performance, performance_text
from services.stats import DepartmentStats, PeriodStats, Snapshot, Stats, case_stats
from settings import Settings


def service(context: BotContext) -> Stats:
    """The stats service, on the runtime's clock."""
    runtime = context.runtime
    settings = runtime.settings
    return Stats(
        runtime.db,
        settings.timezone,
        [category.key for category in settings.programme.categories],
        clock=runtime.clock,
    )


def duration(t: Phrases, span: timedelta) -> str:
    """A time to decision in hours and minutes, rounded to the nearest minute."""
    minutes = int((span + timedelta(seconds=30)) // timedelta(minutes=1))
    hours, minutes = divmod(minutes, 60)
    if hours:
        return t("stats.duration.hours", hours=hours, minutes=minutes)
    return t("stats.duration.minutes", minutes=minutes)


def render(t: Phrases, settings: Settings, snapshot: Snapshot) -> str:
    """The whole /stats message (split into messages by the sender if it is long)."""

    def items(pairs: list[tuple[str, int]]) -> str:
        return t("stats.separator").join(t("stats.item", name=n, count=c) for n, c in pairs)

    def category_name(key: str | None) -> str:
        category = settings.programme.category(key or "")
        return category.name(t.language) if category else key or "-"

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
                    median=duration(t, decided.median),
                    p90=duration(t, decided.p90),
                )
            )
        hours = settings.programme.review.deadline_hours
        lines.append(t("stats.breaches", hours=hours, count=stats.breaches))
        return lines

    blocks = [t("stats.title", time=t.when(snapshot.at))]
    blocks += ["\n".join(section(stats)) for stats in snapshot.periods]
    return "\n\n".join(blocks)


@allow(Audience.MODERATORS)
async def stats_command(update: Update, context: BotContext) -> None:
    """/stats [month | year | 2026-10]: the charts as one image, then the text figures."""
    say = Speaker(update, context)
    runtime = context.runtime
    settings = runtime.settings
    period = parse_period(" ".join(context.args or []), runtime.clock(), settings.timezone)
    if period is None:
        await say.reply("stats.usage")
        return
    chat = update.effective_chat
    if chat is None:
        return
    t = await say.phrases()
    # The text's figures are read while the charts are drawn: the reads wait for the
    # database, the drawing for the charts thread, and neither for the other.
    (png, caption), (text, rows) = await asyncio.gather(
        charts.render_stats(runtime.db, settings.programme, settings.timezone, period, t),
        text_figures(context, t, period),
    )
    programme = settings.programme
    drawn = (
        None
        if rows is None  # drawn while the first two answers are sent
        else asyncio.ensure_future(
            charts.draw_in_pool(lambda: charts.performance_png(rows, t, programme, period))
        )
    )
    await context.bot.send_photo(chat.id, png, caption=caption)
    await say.send(text)
    if drawn is not None:
        caption = t("charts.performance.title", period=charts.period_label(t, period))
        await context.bot.send_photo(chat.id, await drawn, caption=caption)


async def text_figures(
    context: BotContext, t: Phrases, period: data.Period
) -> tuple[str, list[DepartmentPerformance] | None]:
    """The /stats message: today, this week and all time, then, where departments are
    configured, their cases and their performance in `period` (also drawn, after)."""
    runtime = context.runtime
    text = render(t, runtime.settings, await service(context).snapshot())
    departments = [d.key for d in runtime.settings.programme.departments]
    if not departments:
        return text, None
    found = await case_stats(runtime.db, departments, runtime.clock)
    rows = await performance(runtime.db, runtime.settings.programme, period)
    cases = render_cases(t, runtime.settings, found)
    return f"{text}\n\n{cases}\n\n{performance_text(t, runtime.settings.programme, rows)}", rows


def render_cases(t: Phrases, settings: Settings, found: list[DepartmentStats]) -> str:
    """The departments' block of /stats: figures only where a department has 5+ cases."""
    lines = [t("stats.cases.heading")]
    for stats in found:
        department = settings.programme.department(stats.department)
        name = department.name(t.language) if department else stats.department
        times = stats.to_fixed
        if times is None or stats.reopened is None:
            lines.append(t("stats.cases.few", department=name, count=stats.cases))
            continue
        lines.append(
            t(
                "stats.cases.line",
                department=name,
                count=stats.cases,
                median=duration(t, times.median) if times.median else "-",
                p90=duration(t, times.p90) if times.p90 else "-",
                within=_percent(stats.within_sla),
                reopened=_percent(stats.reopened),
                overdue=stats.open_overdue,
            )
        )
    return "\n".join(lines)


def _percent(share: Fraction | None) -> str:
    return "-" if share is None else str(round(share * 100))
