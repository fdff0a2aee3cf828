"""Drawing: valid PNGs of sane size, and Chinese that renders from the bundled font."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta

import numpy as np
import pytest
from fontTools.ttLib import TTFont
from matplotlib import font_manager, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from locales import Phrases, Texts, display_width
from services import charts
from services import figures as data
from services.geo import ServiceArea
from services.towns import Towns
from settings import DEFAULT_CATEGORIES, Department, PayoutRules, Programme
from storage.db import Database
from tests.reports_helpers import SHANGHAI, Seed, local

DEPARTMENTS = (Department("roads", "公路段", "Roads office", -1, ("road_hazard",)),)


def _label(text: str, family: list[str]) -> np.ndarray:
    """`text` drawn alone in `family`, as grey pixels."""
    figure = Figure(figsize=(3, 1), dpi=100)
    figure.text(0.05, 0.3, text, fontsize=24, family=family)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # type: ignore[no-untyped-call]
    pixels = canvas.buffer_rgba()  # type: ignore[no-untyped-call]
    return np.asarray(pixels)[:, :, 0].copy()


def test_the_bundled_font_has_every_chart_character() -> None:
    cmap = TTFont(str(charts.font_path()))["cmap"].getBestCmap()
    texts = Texts()
    wanted = "".join(c.name_zh for c in DEFAULT_CATEGORIES) + "公路段供电所"
    wanted += "".join(texts.get("zh", key) for key in ("charts.reports", "charts.map.fixed"))
    wanted += texts.get("zh", "charts.headline")
    missing = {c for c in wanted if c not in "{}_" and ord(c) not in cmap and not c.isspace()}
    assert missing == set()
    size = charts.font_path().stat().st_size
    assert 100_000 < size < 3_000_000


def test_matplotlib_picks_the_bundled_font_for_chinese() -> None:
    name = charts.chart_font()
    assert name == "Noto Sans CJK SC Charts"
    found = font_manager.findfont(
        font_manager.FontProperties(family=name), fallback_to_default=False
    )
    assert found == str(charts.font_path())


@pytest.mark.filterwarnings("ignore:Glyph .* missing from font")
def test_a_chinese_label_is_not_the_missing_glyph_box() -> None:
    family = [charts.chart_font()]
    label = _label("道路隐患", family)
    # Private-use characters are not in the font: they are drawn as its missing-glyph box.
    boxes = _label("\ue000\ue001\ue002\ue003", family)
    assert (label < 128).sum() > 200  # ink was drawn
    assert not np.array_equal(label, boxes)
    # Two different labels differ too (a font of boxes would draw them alike).
    assert not np.array_equal(label, _label("火灾隐患", family))


def _valid_png(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    image.verify()
    assert 20_000 < len(png) < 2_000_000
    return Image.open(io.BytesIO(png)).size


async def test_the_stats_image(db: Database) -> None:
    seed = Seed(db)
    for day in range(1, 9):
        report = await seed.report(
            local(2026, 10, day),
            status="approved",
            decided=local(2026, 10, day, 15),
            reward_fen=5000,
        )
        await seed.case(report, "roads", local(2026, 10, day, 15), 24, local(2026, 10, day, 20))
    programme = Programme(departments=DEPARTMENTS, payout=PayoutRules(budget_month_fen=100_000))
    period = data.month_period(2026, 10, SHANGHAI)
    for language in ("zh", "en"):
        t = Phrases(Texts(), language, SHANGHAI)
        png, caption = await charts.render_stats(db, programme, SHANGHAI, period, t)
        assert _valid_png(png) == (1200, 900)
    assert caption.startswith("2026-10: 8 reports received, 8 verified, 400.00")
    # With nothing at all, every chart is a note, and the image is still valid.
    empty = data.month_period(2025, 1, SHANGHAI)
    png, caption = await charts.render_stats(
        db, programme, SHANGHAI, empty, Phrases(Texts(), "zh", SHANGHAI)
    )
    _valid_png(png)
    assert caption.startswith("2025年1月：收到线索0条")


async def test_the_incident_picture(db: Database) -> None:
    seed = Seed(db)
    for index in range(6):
        await seed.report(local(2026, 9, 1 + index), place=(29.3 + index / 100, 117.2))
    await seed.report(local(2026, 9, 9), place=None)  # no place: not drawn
    t = Phrases(Texts(), "zh", SHANGHAI)
    area = ServiceArea.polygon([(29.1, 117.0), (29.5, 117.0), (29.5, 117.4)])
    png, drawn = await charts.render_incidents(db, area, data.month_period(2026, 9, SHANGHAI), t)
    assert drawn == 6
    _valid_png(png)


def test_each_report_on_the_map_is_coloured_as_what_it_is() -> None:
    """A case that cannot be fixed is not "being handled"; a reopened one is, again."""
    assert charts.point_state("approved", "cannot_fix") == "cannot_fix"
    assert charts.point_state("approved", "reopened") == "verified"
    assert charts.point_state("approved", "accepted") == "verified"
    assert charts.point_state("approved", "fixed") == "fixed"
    assert charts.point_state("approved", "confirmed") == "fixed"
    assert charts.point_state("pending", None) == "waiting"
    assert charts.point_state("rejected", None) == "closed"
    assert set(charts.STATE_COLOURS) == {"waiting", "verified", "fixed", "cannot_fix", "closed"}


def synthetic(weeks: int, months: int, departments: int) -> data.Charts:
    """Charts' numbers for `weeks` weeks from 2025-12-01 (across a new year), `months` months
    of rewards and `departments` departments: sparse, typical or dense data."""
    mondays = tuple(date(2025, 12, 1) + timedelta(weeks=w) for w in range(weeks))
    start = datetime.combine(mondays[0], datetime.min.time(), SHANGHAI)
    period = data.Period("weeks", start, start + timedelta(weeks=weeks), 2025)
    counts = tuple(tuple((w * (c + 3)) % 7 + 1 for w in range(weeks)) for c in range(3))
    hours = tuple(None if w % 5 == 3 else 2.0 + w % 9 for w in range(weeks))
    month_keys = tuple(((2025 * 12 + 10 + m) // 12, (10 + m) % 12 + 1) for m in range(months))
    handling = data.Handling(
        tuple(
            data.DepartmentHandling(f"d{d}", 6 + d, 5, 10.0 + d, 20.0 + d, 0.8, 24.0)
            for d in range(departments)
        ),
        sum(6 + d for d in range(departments)),
    )
    return data.Charts(
        period=period,
        headline=data.Headline(100, 60, 600_000, 40, 100_000, 300_000),
        weekly=data.WeeklyReports(
            mondays, ("road_hazard", "fire_risk", None), counts, sum(map(sum, counts))
        ),
        verification=data.VerificationTimes(
            mondays,
            hours,
            tuple(None if h is None else h * 2 for h in hours),
            4.0,
            9.0,
            24,
            weeks * 6,
        ),
        handling=handling,
        rewards=data.MonthlyRewards(
            month_keys, tuple(100_00 * (m + 1) for m in range(months)), 500_00, months * 6
        ),
    )


@pytest.mark.parametrize(("weeks", "months", "departments"), [(2, 2, 1), (12, 6, 3), (53, 13, 12)])
def test_no_two_tick_labels_overlap_and_the_year_is_shown(
    weeks: int, months: int, departments: int
) -> None:
    """Sparse, typical and dense data, measured with matplotlib's own text extents."""
    programme = Programme(
        departments=tuple(
            Department(f"d{d}", f"城关镇第{d}办事处", f"Office {d}", -1, ("road_hazard",))
            for d in range(departments)
        )
    )
    t = Phrases(Texts(), "zh", SHANGHAI)
    with rc_context(charts._style()):
        figure = charts.stats_figure(synthetic(weeks, months, departments), t, programme)
        crowded = charts.overlapping_ticks(figure)
        charts.declutter(figure)
        assert charts.overlapping_ticks(figure) == []
    if weeks > 50:
        assert crowded  # a year of weeks in half the width: the labels had to be thinned
    weekly = [label.get_text() for label in figure.axes[0].get_xticklabels() if label.get_visible()]
    # Every label shown reads as one date: its year is the one last named to its left.
    mondays = synthetic(weeks, months, departments).weekly.weeks
    shown = read_dates(weekly)
    assert shown == sorted(shown)
    assert set(shown) <= set(mondays)
    if weeks > 5:
        assert any(label.startswith("2026-") for label in weekly)  # the new year is named
    rewards = [
        label.get_text() for label in figure.axes[-1].get_xticklabels() if label.get_visible()
    ]
    assert rewards[0][:4].isdigit()  # the months begin with their year


def read_dates(labels: list[str]) -> list[date]:
    """`2025-12-01`, `12-08`, `2026-01-05`: each label with the year last named before it."""
    year: int | None = None
    days = []
    for label in labels:
        if len(label) == 10:
            year = int(label[:4])
            days.append(date.fromisoformat(label))
            continue
        assert year is not None, labels  # a label without a year before any with one
        month, day = (int(part) for part in label.split("-"))
        days.append(date(year, month, day))
    return days


def test_labels_carry_the_year_where_it_changes() -> None:
    assert charts.month_labels([(2025, 11), (2025, 12), (2026, 1)]) == ["2025-11", "12", "2026-01"]
    weeks = [date(2025, 12, 22), date(2025, 12, 29), date(2026, 1, 5)]
    assert charts.week_labels(weeks) == ["2025-12-22", "12-29", "2026-01-05"]


def test_the_headline_is_wrapped_not_cut_off() -> None:
    line = (
        "近53周（2025-12-01至2026-12-06）：收到线索100条，核实有效60起，"
        "核定奖励6,000.00元（已发放3,000.00元，发放中1,000.00元），处置完成40件。"
    )
    lines = charts.wrapped(line, 60).split("\n")
    assert len(lines) > 1
    assert "".join(lines) == line
    assert all(display_width(part) <= 60 for part in lines)


def test_the_map_draws_the_towns_under_the_reports_with_the_legend_outside() -> None:
    from tests.test_towns import COUNTY

    towns = Towns.from_geojson(COUNTY, "towns.geojson")
    t = Phrases(Texts(), "zh", SHANGHAI)
    period = data.month_period(2026, 9, SHANGHAI)
    points = [
        (26.12, 106.62, "approved", "cannot_fix"),
        (26.13, 106.63, "approved", "fixed"),
        (26.12, 106.72, "pending", None),
    ]
    with rc_context(charts._style()):
        figure = charts.incidents_figure(points, ServiceArea.everywhere(), t, period, towns)
        charts.declutter(figure)
        axes = figure.axes[0]
        names = [text.get_text() for text in axes.texts]
        assert names == ["城关镇", "好花红镇"]
        legend = axes.get_legend()
        assert legend is not None
        labels = [text.get_text() for text in legend.get_texts()]
        assert "无法处置 (1)" in labels
        renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
        assert legend.get_window_extent(renderer).x0 >= axes.get_window_extent(renderer).x1
        empty = charts.incidents_figure([], ServiceArea.everywhere(), t, period, towns)
        assert "这段时间没有带位置的线索" in [text.get_text() for text in empty.axes[0].texts]
