"""Drawing /stats, the weekly digest and the incident picture: PNG bytes, off the event loop.

matplotlib's Agg backend, its object API (no pyplot state), and one worker thread of its own
(`draw_in_pool`), so a chart being drawn never holds up other updates and two never draw at
once (matplotlib's settings are global). The labels are Chinese or English; the font ships
with the project (services/fonts/: a subset of Noto Sans CJK SC, SIL OFL 1.1) and is
registered with matplotlib's font manager the first time anything is drawn, so Chinese
renders on a fresh machine without system fonts.

The incident picture is drawn locally over the service area's outline (box or polygon),
without map tiles: none is reachable from the county's network, and publishing a map of
the mainland needs approval.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import math
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta, tzinfo
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

import matplotlib

matplotlib.use("Agg")

from matplotlib import font_manager, rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from locales import Phrases, display_width
from services import figures as data
from services.figures import Charts, Period
from services.geo import ServiceArea
from services.performance import DepartmentPerformance
from services.reporting import OPEN
from services.towns import Towns
from settings import Programme
from storage import figures as store
from storage.db import Database

T = TypeVar("T")
FONT_FILE: Final = "NotoSansCJKsc-Subset.otf"
DPI: Final = 100
SIZE_INCHES: Final = (12.0, 9.0)
PALETTE: Final = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
_POOL: Final = ThreadPoolExecutor(max_workers=1, thread_name_prefix="charts")
_font_lock = threading.Lock()
_font_name: str | None = None


def font_path() -> Path:
    """The bundled CJK font (package data)."""
    return Path(str(resources.files("services").joinpath("fonts", FONT_FILE)))


def chart_font() -> str:
    """Register the bundled font with matplotlib (once) and return its family name."""
    global _font_name
    with _font_lock:
        if _font_name is None:
            path = font_path()
            font_manager.fontManager.addfont(str(path))
            _font_name = font_manager.FontProperties(fname=str(path)).get_name()
        return _font_name


def _style() -> Any:  # matplotlib types rc keys as literals
    return {
        "font.family": "sans-serif",
        "font.sans-serif": [chart_font(), "DejaVu Sans"],
        "axes.unicode_minus": False,  # the font's hyphen, not U+2212
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 12,
        "font.size": 10,
    }


async def draw_in_pool(draw: Callable[[], T]) -> T:
    """Run `draw` on the charts' own thread, never the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, draw)


def _png(figure: Figure) -> bytes:
    declutter(figure)
    figure.set_layout_engine("none")  # laid out by declutter already: not again for the PNG
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def overlapping_ticks(figure: Figure) -> list[tuple[str, str]]:
    """Pairs of neighbouring tick labels, on either axis of any chart, that overlap as drawn."""
    renderer = _drawn(figure)
    found = []
    for axes in figure.axes:
        for labels in (axes.get_xticklabels(), axes.get_yticklabels()):
            shown = [label for label in labels if label.get_visible() and label.get_text()]
            boxes = [_label_box(label, renderer) for label in shown]
            for (a, box_a), (b, box_b) in itertools.pairwise(zip(shown, boxes, strict=True)):
                if box_a.overlaps(box_b):
                    found.append((a.get_text(), b.get_text()))
    return found


LABEL_GAP_PX = 3  # each side: labels closer than twice this read as one ("2026-0102")


def _label_box(label: Text, renderer: Any) -> Bbox:
    """Where a tick label is drawn, with room on each side that no neighbour may enter."""
    return label.get_window_extent(renderer).padded(LABEL_GAP_PX)


def declutter(figure: Figure) -> None:
    """Keep every 2nd, 3rd, ... x tick label of a chart until none overlaps its neighbour
    (a long period in a half-width chart). Labels that carry a year (the first, and where
    the year changes) are kept before others, so every label shown reads unambiguously:
    its year is the one last named to its left."""
    renderer = _drawn(figure)
    for axes in figure.axes:
        labels = [label for label in axes.get_xticklabels() if label.get_text()]
        boxes = [_label_box(label, renderer) for label in labels]
        anchors = [_has_year(label.get_text()) for label in labels]
        for step in range(1, len(labels) + 1):
            shown = [i for i in range(len(labels)) if i % step == 0 or anchors[i]]
            kept: list[int] = []
            for index in shown:
                # A label with its year makes the one before give way (the year it names
                # runs on to the right); a plain label gives way to the one before it.
                while kept and anchors[index] and boxes[kept[-1]].overlaps(boxes[index]):
                    kept.pop()
                if not kept or not boxes[kept[-1]].overlaps(boxes[index]):
                    kept.append(index)
            plain = [i for i in shown if not anchors[i]]
            if all(i in kept for i in plain) or step == len(labels):
                break
        for index, label in enumerate(labels):
            label.set_visible(index in kept)


def _has_year(label: str) -> bool:
    return len(label) >= 7 and label[:4].isdigit() and label[4] == "-"


def _drawn(figure: Figure) -> Any:
    """The figure laid out (constrained layout places the labels) without painting a pixel,
    and its renderer, to measure text as it will appear: painting is most of a draw, and
    the PNG paints it again anyway."""
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    figure.draw_without_rendering()
    return canvas.get_renderer()  # type: ignore[no-untyped-call]  # matplotlib leaves it untyped


def month_labels(months: Sequence[tuple[int, int]]) -> list[str]:
    """`2026-05`, then `06`, `07`, ... and the year again when it changes."""
    labels = []
    for index, (year, month) in enumerate(months):
        new_year = index == 0 or months[index - 1][0] != year
        labels.append(f"{year}-{month:02d}" if new_year else f"{month:02d}")
    return labels


def week_labels(weeks: Sequence[date]) -> list[str]:
    """Each week's Monday: `2026-11-02`, then `11-09`, ... and the year when it changes."""
    labels = []
    for index, monday in enumerate(weeks):
        new_year = index == 0 or weeks[index - 1].year != monday.year
        labels.append(monday.isoformat() if new_year else monday.strftime("%m-%d"))
    return labels


def period_label(t: Phrases, period: Period) -> str:
    end = (period.end - timedelta(seconds=1)).date()
    return t(
        f"charts.period.{period.kind}",
        year=period.year,
        month=period.month,
        weeks=round((period.end - period.start) / timedelta(weeks=1)),
        start=period.start.date().isoformat(),
        end=end.isoformat(),
    )


def headline(t: Phrases, charts: Charts) -> str:
    """The sentence the county reports upward with."""
    line = charts.headline
    return t(
        "charts.headline",
        period=period_label(t, charts.period),
        submitted=line.submitted,
        verified=line.verified,
        amount=t.money(line.rewards_fen),
        in_batch=t.money(line.in_batch_fen),
        paid=t.money(line.paid_fen),
        fixed=line.fixed,
    )


def _note(axes: Axes, title: str, text: str) -> None:
    axes.set_title(title, loc="left")
    axes.set_axis_off()
    axes.text(0.5, 0.5, text, ha="center", va="center", fontsize=12, color="#666666")


def _week_ticks(axes: Axes, weeks: Sequence[date]) -> None:
    """A tick per week; `declutter` thins the labels to what the chart's width holds."""
    axes.set_xticks(range(len(weeks)), week_labels(weeks), rotation=0)


def _legend(axes: Axes, fontsize: int = 8) -> None:
    """The legend beside the chart, outside the data."""
    axes.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def _weekly(axes: Axes, t: Phrases, charts: Charts, programme: Programme) -> None:
    weekly = charts.weekly
    title = t("charts.weekly.title", period=period_label(t, charts.period), n=weekly.n)
    if not weekly.enough:
        _note(axes, title, t("charts.few", n=weekly.n))
        return
    axes.set_title(title, loc="left")
    bottom = [0] * len(weekly.weeks)
    for index, (category, counts) in enumerate(zip(weekly.categories, weekly.counts, strict=True)):
        known = programme.category(category or "")
        label = known.name(t.language) if known else category or "-"
        positions = range(len(weekly.weeks))
        axes.bar(positions, counts, bottom=bottom, label=label, color=PALETTE[index % 10])
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    _week_ticks(axes, weekly.weeks)
    axes.set_ylabel(t("charts.reports"))
    _legend(axes)


def _verification(axes: Axes, t: Phrases, charts: Charts) -> None:
    times = charts.verification
    title = t("charts.verification.title", period=period_label(t, charts.period), n=times.n)
    if not times.enough or times.median is None or times.p90 is None:
        _note(axes, title, t("charts.few", n=times.n))
        return
    axes.set_title(title, loc="left")
    # A line through the weeks that have a figure: a week with too few decisions is left
    # out rather than breaking the line into scattered points.
    for hours, marker, key, whole, colour in (
        (times.median_hours, "o", "charts.verification.median", times.median, PALETTE[0]),
        (times.p90_hours, "s", "charts.verification.p90", times.p90, PALETTE[1]),
    ):
        known = [(week, value) for week, value in enumerate(hours) if value is not None]
        axes.plot(
            [week for week, _ in known],
            [value for _, value in known],
            marker=marker,
            label=t(key, hours=f"{whole:.1f}"),
            color=colour,
        )
    axes.axhline(
        times.promise_hours,
        color=PALETTE[2],
        linestyle="--",
        label=t("charts.verification.promise", hours=times.promise_hours),
    )
    axes.set_ylim(bottom=0)
    axes.set_xlim(-0.5, len(times.weeks) - 0.5)
    _week_ticks(axes, times.weeks)
    axes.set_ylabel(t("charts.hours"))
    _legend(axes)


def _handling(axes: Axes, t: Phrases, charts: Charts, programme: Programme) -> None:
    handling = charts.handling
    assert handling is not None
    title = t("charts.handling.title", period=period_label(t, charts.period), n=handling.n)
    if not handling.enough:
        _note(axes, title, t("charts.few", n=handling.n))
        return
    axes.set_title(title, loc="left")
    names, medians, levels, notes = [], [], [], []
    for line in handling.departments:
        department = programme.department(line.department)
        names.append(department.name(t.language) if department else line.department)
        if not line.enough:
            medians.append(0.0)
            levels.append(float("nan"))
            notes.append(t("charts.handling.few", n=line.n))
            continue
        medians.append(line.median_hours or 0.0)
        levels.append(line.service_hours or float("nan"))
        within = "-" if line.within_share is None else f"{line.within_share * 100:.0f}"
        notes.append(t("charts.handling.line", within=within, n=line.n, fixed=line.fixed))
    positions = range(len(names))
    axes.barh(positions, medians, color=PALETTE[4], label=t("charts.handling.median"))
    axes.scatter(
        levels, positions, marker="|", s=400, color=PALETTE[2], label=t("charts.handling.level")
    )
    for position, (median, note) in enumerate(zip(medians, notes, strict=True)):
        axes.text(median, position, f"  {note}", va="center", fontsize=8)
    axes.set_yticks(list(positions), names)
    axes.invert_yaxis()
    axes.set_xlabel(t("charts.hours"))
    _legend(axes)


def _rewards(axes: Axes, t: Phrases, charts: Charts) -> None:
    rewards = charts.rewards
    first, last = rewards.months[0], rewards.months[-1]
    title = t(
        "charts.rewards.title",
        start=f"{first[0]}-{first[1]:02d}",
        end=f"{last[0]}-{last[1]:02d}",
        n=rewards.n,
    )
    if not rewards.enough:
        _note(axes, title, t("charts.few", n=rewards.n))
        return
    axes.set_title(title, loc="left")
    yuan = [fen / 100 for fen in rewards.fen]
    budget = None if rewards.budget_fen is None else rewards.budget_fen / 100
    colours = [PALETTE[2] if budget is not None and y > budget else PALETTE[0] for y in yuan]
    axes.bar(range(len(yuan)), yuan, color=colours)
    if budget is not None:
        axes.axhline(budget, color=PALETTE[1], linestyle="--", label=t("charts.rewards.budget"))
        _legend(axes)
    axes.set_xticks(range(len(yuan)), month_labels(rewards.months), fontsize=8)
    axes.set_ylabel(t("charts.yuan"))


def performance_png(
    rows: Sequence[DepartmentPerformance], t: Phrases, programme: Programme, period: Period
) -> bytes:
    """部门绩效 at a glance: per department, cases received and fixed in time as bars, the
    on-time and satisfaction rates written at the bar's end; the legend outside the data."""
    with rc_context(_style()):
        height = max(2.6, 1.0 + 0.55 * len(rows))
        figure = Figure(figsize=(SIZE_INCHES[0], height), layout="constrained")
        axes = figure.add_subplot()
        axes.set_title(t("charts.performance.title", period=period_label(t, period)), loc="left")
        names = []
        for row in rows:
            department = programme.department(row.department)
            names.append(department.name(t.language) if department else row.department)
        positions = list(range(len(rows)))
        received = [row.received for row in rows]
        in_time = [row.fixed_in_time for row in rows]
        axes.barh(
            [p - 0.2 for p in positions], received, height=0.4, color=PALETTE[4],
            label=t("charts.performance.received"),
        )  # fmt: skip
        axes.barh(
            [p + 0.2 for p in positions], in_time, height=0.4, color=PALETTE[0],
            label=t("charts.performance.in_time"),
        )  # fmt: skip
        for position, row in zip(positions, rows, strict=True):
            note = t(
                "charts.performance.rates",
                on_time=_percent(row.on_time_rate),
                satisfaction=_percent(row.satisfaction),
            )
            axes.text(max(row.received, row.fixed_in_time), position, f"  {note}", va="center",
                      fontsize=8)  # fmt: skip
        axes.set_yticks(positions, names)
        axes.invert_yaxis()
        axes.set_xlabel(t("charts.performance.cases"))
        axes.set_xlim(0, max([*received, 1]) * 1.6)
        _legend(axes)
        return _png(figure)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def stats_png(charts: Charts, t: Phrases, programme: Programme) -> bytes:
    """One image: the headline, then 3 or 4 charts (handling only where departments exist)."""
    with rc_context(_style()):
        return _png(stats_figure(charts, t, programme))


HEADLINE_WIDTH: Final = 100  # half-width characters across the /stats image at 13 pt


def wrapped(text: str, width: int) -> str:
    """`text` in lines of at most `width` (a Chinese character counts two), broken after a
    comma or a space, so the headline is never cut off at the image's edges."""
    lines: list[str] = []
    line = ""
    for piece in re.findall(r"[^，、 ]+[，、 ]?", text):  # never inside 1,000.00
        if line and display_width(line + piece) > width:
            lines.append(line.rstrip())
            line = ""
        line += piece
    return "\n".join([*lines, line.rstrip()])


def stats_figure(charts: Charts, t: Phrases, programme: Programme) -> Figure:
    """The /stats figure, drawn but not yet decluttered (call inside the charts' style)."""
    figure = Figure(figsize=SIZE_INCHES, layout="constrained")
    figure.suptitle(wrapped(headline(t, charts), HEADLINE_WIDTH), fontsize=13)
    grid = figure.add_gridspec(2, 2)
    panels: list[Callable[[Axes], None]] = [
        lambda axes: _weekly(axes, t, charts, programme),
        lambda axes: _verification(axes, t, charts),
        lambda axes: _rewards(axes, t, charts),
    ]
    if charts.handling is not None:
        panels.insert(2, lambda axes: _handling(axes, t, charts, programme))
        places = [grid[0, 0], grid[0, 1], grid[1, 0], grid[1, 1]]
    else:
        places = [grid[0, 0], grid[0, 1], grid[1, :]]
    for draw, place in zip(panels, places, strict=True):
        draw(figure.add_subplot(place))
    return figure


# --- where last month's reports were -------------------------------------------------------

STATE_COLOURS: Final = {
    "waiting": "#f28e2b",
    "verified": "#4e79a7",
    "fixed": "#59a14f",
    "cannot_fix": "#e15759",
    "closed": "#9d9d9d",
}


def point_state(status: str, case_state: str | None) -> str:
    """The colour group of a report: waiting, verified (being handled, a reopened case
    again), fixed (confirmed or not), cannot be fixed, or closed (rejected, duplicate)."""
    if case_state in ("fixed", "confirmed"):
        return "fixed"
    if case_state == "cannot_fix":
        return "cannot_fix"
    if status in OPEN:
        return "waiting"
    if status == "approved":
        return "verified"
    return "closed"


def _outline(area: ServiceArea) -> list[tuple[float, float]] | None:
    """The area's outline as closed (lon, lat) points, to plot; None for "everywhere"."""
    outline = area.outline()
    return None if outline is None else [(lon, lat) for lat, lon in outline]


GRID_FROM: Final = 2000  # more points than this: a density grid instead of dots


def incidents_png(
    points: Sequence[tuple[float, float, str, str | None]],
    area: ServiceArea,
    t: Phrases,
    period: Period,
    towns: Towns | None = None,
) -> bytes:
    """Reports as dots (or a density grid when many), coloured by where each stands, over
    the towns' outlines and names (the service area's outline without a towns file)."""
    with rc_context(_style()):
        return _png(incidents_figure(points, area, t, period, towns))


def incidents_figure(
    points: Sequence[tuple[float, float, str, str | None]],
    area: ServiceArea,
    t: Phrases,
    period: Period,
    towns: Towns | None = None,
) -> Figure:
    """The /map figure (call inside the charts' style)."""
    figure = Figure(figsize=(9.0, 9.0), layout="constrained")
    axes = figure.add_subplot()
    title = t("charts.map.title", period=period_label(t, period), n=len(points))
    outline = _outline(area)
    if outline is not None:
        axes.plot(*zip(*outline, strict=True), color="#333333", linewidth=1.5)
    for name, rings in (towns or Towns.none()).outlines():
        for ring in rings:
            axes.plot([lon for _, lon in ring], [lat for lat, _ in ring], color="#999999", lw=0.8)
        largest = max(rings, key=len)  # its name at the middle of its largest part
        name_lon = sum(lon for _, lon in largest) / len(largest)
        name_lat = sum(lat for lat, _ in largest) / len(largest)
        axes.text(name_lon, name_lat, name, ha="center", va="center", fontsize=9, color="#666666")
    if not points:
        _note(axes, title, t("charts.map.none"))
        return figure
    axes.set_title(title, loc="left")
    if len(points) > GRID_FROM:
        lons = [p[1] for p in points]
        lats = [p[0] for p in points]
        image = axes.hexbin(lons, lats, gridsize=40, mincnt=1, cmap="YlOrRd")
        figure.colorbar(image, ax=axes, label=t("charts.reports"))
    else:
        for state, colour in STATE_COLOURS.items():
            chosen = [p for p in points if point_state(p[2], p[3]) == state]
            if chosen:
                axes.scatter(
                    [p[1] for p in chosen],
                    [p[0] for p in chosen],
                    s=18,
                    color=colour,
                    alpha=0.8,
                    label=f"{t(f'charts.map.{state}')} ({len(chosen)})",
                )
        _legend(axes, 9)
    # Degrees of longitude shrink with latitude: keep distances honest on the picture.
    middle = sum(p[0] for p in points) / len(points)
    axes.set_aspect(1 / max(math.cos(math.radians(middle)), 0.01))
    axes.set_xlabel(t("charts.map.note"))
    axes.tick_params(labelsize=8)
    return figure


# --- what the handlers and the bench call ----------------------------------------------------


async def render_stats(
    db: Database, programme: Programme, zone: tzinfo, period: Period, t: Phrases
) -> tuple[bytes, str]:
    """(PNG, headline) of /stats for `period`: read from a snapshot, drawn off the loop."""
    found = await data.charts(db, programme, zone, period)
    png = await draw_in_pool(lambda: stats_png(found, t, programme))
    return png, headline(t, found)


async def render_incidents(
    db: Database, area: ServiceArea, period: Period, t: Phrases, towns: Towns | None = None
) -> tuple[bytes, int]:
    """(PNG, reports drawn) of the incident picture for `period`."""
    async with db.snapshot() as conn:
        points = await store.points_in(conn, period.start_ts, period.end_ts)
    png = await draw_in_pool(lambda: incidents_png(points, area, t, period, towns))
    return png, len(points)


def _change(t: Phrases, now: int, before: int, money: bool = False) -> str:
    difference = now - before
    shown = t.money(abs(difference)) if money else str(abs(difference))
    return f"+{shown}" if difference > 0 else f"-{shown}" if difference < 0 else "±0"


async def render_digest(
    db: Database, programme: Programme, zone: tzinfo, last: Period, t: Phrases
) -> tuple[bytes, str]:
    """(PNG, caption) of the weekly digest: `last` week against the week before."""
    before = last.previous()
    both = Period("weeks", before.start, last.end, before.year)
    week = await data.charts(db, programme, zone, last)
    earlier = await data.charts(db, programme, zone, before)
    pictured = await data.charts(db, programme, zone, both)
    png = await draw_in_pool(lambda: stats_png(pictured, t, programme))
    now, then = week.headline, earlier.headline
    caption = t(
        "digest.caption",
        period=period_label(t, last),
        headline=headline(t, week),
        submitted=now.submitted,
        submitted_change=_change(t, now.submitted, then.submitted),
        verified=now.verified,
        verified_change=_change(t, now.verified, then.verified),
        amount=t.money(now.rewards_fen),
        amount_change=_change(t, now.rewards_fen, then.rewards_fen, money=True),
    )
    return png, caption
