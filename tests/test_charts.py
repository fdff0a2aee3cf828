"""Drawing: valid PNGs of sane size, and Chinese that renders from the bundled font."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fontTools.ttLib import TTFont
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from locales import Phrases, Texts
from services import charts
from services import figures as data
from services.geo import ServiceArea
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
