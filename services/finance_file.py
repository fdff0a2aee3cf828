"""The finance file for a payout batch: an XLSX workbook and a UTF-8 CSV (with BOM) beside it.

Both have the same rows, so Excel and WPS open either: the batch id and period, a header,
one line per rider (Telegram id or `#<internal id>` once erased, real name, payout account,
amount in yuan with two decimals, report references) and a total row. Labels are bilingual
(Chinese first) because the file goes to finance as it is. Rendering is deterministic: the
same statement gives the same bytes, so the stored sha256 identifies the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

from services import spreadsheet
from services.ledger import yuan

BATCH_LABEL = "发放批次 Batch"
PERIOD_LABEL = "周期 Period"
TOTAL_LABEL = "合计 Total"
COLUMNS = (
    "Telegram ID",
    "姓名 Name",
    "收款账户 Account",
    "金额(元) Amount (yuan)",
    "线索编号 Reports",
    "备注 Note",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_YUAN = re.compile(r"(-?)([0-9]+)\.([0-9]{2})")


@dataclass(frozen=True)
class StatementLine:
    rider_id: int
    telegram_id: int | None
    real_name: str
    account: str
    amount_fen: int
    report_refs: str
    details_changed_at: int | None = None  # payout details changed since the previous batch

    @property
    def payee_id(self) -> str:
        """The Telegram id, or `#<internal id>` for a rider whose Telegram id was erased."""
        return str(self.telegram_id) if self.telegram_id is not None else f"#{self.rider_id}"


@dataclass(frozen=True)
class HeldBack:
    """A rider owed money this batch could not pay: no payout details yet."""

    rider_id: int
    telegram_id: int | None
    amount_fen: int

    @property
    def payee_id(self) -> str:
        return str(self.telegram_id) if self.telegram_id is not None else f"#{self.rider_id}"


HELD_BACK_SHEET = "暂缓 Held back"
HELD_BACK_COLUMNS = ("Telegram ID", "金额(元) Amount (yuan)", "原因 Reason")
HELD_BACK_REASON = "缺少收款信息 No payout details"


@dataclass(frozen=True)
class Statement:
    """What a batch pays, as the finance file shows it, and whom it holds back."""

    batch_id: int
    period_key: str
    period_start: int
    period_end: int
    created_at: int
    lines: Sequence[StatementLine]
    held_back: Sequence[HeldBack] = ()

    @property
    def total_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


@dataclass(frozen=True)
class RenderedFiles:
    xlsx: bytes
    csv: bytes


Renderer = Callable[[Statement, tzinfo], RenderedFiles]


@dataclass(frozen=True)
class CsvTotals:
    """What a finance CSV says: its batch id, lines and their sum, and its total row."""

    batch_id: int
    line_count: int
    lines_fen: int
    total_fen: int


def render(statement: Statement, timezone: tzinfo) -> RenderedFiles:
    """Both files for the statement; times are shown in `timezone`."""
    return RenderedFiles(xlsx=render_xlsx(statement, timezone), csv=render_csv(statement, timezone))


def _period(statement: Statement, timezone: tzinfo) -> str:
    def local(ts: int) -> str:
        return datetime.fromtimestamp(ts, timezone).strftime("%Y-%m-%d %H:%M")

    return f"{local(statement.period_start)} – {local(statement.period_end)} ({timezone})"


def note(line: StatementLine, timezone: tzinfo) -> str:
    """ "details changed on <date>" when the rider's payout details changed since their
    previous batch, so finance double-checks a new account before paying it."""
    if line.details_changed_at is None:
        return ""
    day = datetime.fromtimestamp(line.details_changed_at, timezone).strftime("%Y-%m-%d")
    return f"收款信息于{day}变更 details changed on {day}"


def render_csv(statement: Statement, timezone: tzinfo) -> bytes:
    """UTF-8 with a BOM and CRLF line ends; text starting like a formula is quoted with `'`."""

    def text(value: str) -> str:
        return "'" + value if value.startswith(_FORMULA_START) else value

    out = io.BytesIO()
    stream = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(stream)
    writer.writerow([BATCH_LABEL, statement.batch_id])
    writer.writerow([PERIOD_LABEL, statement.period_key, _period(statement, timezone)])
    writer.writerow([])
    writer.writerow(COLUMNS)
    for line in statement.lines:
        writer.writerow(
            [
                line.payee_id,
                text(line.real_name),
                text(line.account),
                yuan(line.amount_fen),
                text(line.report_refs),
                note(line, timezone),
            ]
        )
    writer.writerow([TOTAL_LABEL, "", "", yuan(statement.total_fen), ""])
    stream.detach()
    return out.getvalue()


def exact_yuan(fen: int) -> Decimal:
    """`12345` -> `Decimal('123.45')`: yuan without passing through a binary float."""
    return Decimal(fen).scaleb(-2)


def render_xlsx(statement: Statement, timezone: tzinfo) -> bytes:
    """The payout sheet (and, when riders were held back, a sheet listing them); amounts are
    numbers formatted `0.00`, every other cell is text.

    Amounts are written from `Decimal`, never `float`: the cell's value is the exact
    decimal text (`<v>150.05</v>`), as in the CSV.

    Written row by row in constant-memory mode (inline strings, temporary files), so a batch
    of 100,000 lines needs tens of megabytes, not hundreds.
    """
    out = io.BytesIO()
    workbook = spreadsheet.workbook(out, in_memory=False, constant_memory=True)
    workbook.set_properties(
        {
            "title": f"Payout {statement.period_key}",
            "created": datetime.fromtimestamp(statement.created_at, UTC).replace(tzinfo=None),
        }
    )
    bold = workbook.add_format({"bold": True})
    money = workbook.add_format({"num_format": "0.00"})
    bold_money = workbook.add_format({"num_format": "0.00", "bold": True})
    sheet = workbook.add_worksheet("Payout")
    sheet.set_column(0, 0, 16)
    sheet.set_column(1, 1, 14)
    sheet.set_column(2, 2, 24)
    sheet.set_column(3, 3, 20)
    sheet.set_column(4, 4, 40)
    sheet.set_column(5, 5, 36)

    sheet.write_string(0, 0, BATCH_LABEL, bold)
    sheet.write_string(0, 1, str(statement.batch_id))
    sheet.write_string(1, 0, PERIOD_LABEL, bold)
    sheet.write_string(1, 1, statement.period_key)
    sheet.write_string(1, 2, _period(statement, timezone))
    for column, title in enumerate(COLUMNS):
        sheet.write_string(3, column, title, bold)
    sheet.freeze_panes(4, 0)
    row = 4
    for line in statement.lines:
        sheet.write_string(row, 0, line.payee_id)
        sheet.write_string(row, 1, line.real_name)
        sheet.write_string(row, 2, line.account)
        sheet.write_number(row, 3, exact_yuan(line.amount_fen), money)
        sheet.write_string(row, 4, line.report_refs)
        if line.details_changed_at is not None:
            sheet.write_string(row, 5, note(line, timezone))
        row += 1
    sheet.write_string(row, 0, TOTAL_LABEL, bold)
    sheet.write_number(row, 3, exact_yuan(statement.total_fen), bold_money)
    if statement.held_back:
        held = workbook.add_worksheet(HELD_BACK_SHEET)
        held.set_column(0, 0, 16)
        held.set_column(1, 1, 22)
        held.set_column(2, 2, 30)
        for column, title in enumerate(HELD_BACK_COLUMNS):
            held.write_string(0, column, title, bold)
        for number, rider in enumerate(statement.held_back, start=1):
            held.write_string(number, 0, rider.payee_id)
            held.write_number(number, 1, exact_yuan(rider.amount_fen), money)
            held.write_string(number, 2, HELD_BACK_REASON)
    workbook.close()
    return out.getvalue()


def parse_yuan(text: str) -> int:
    """`123.45` -> `12345`, exactly; ValueError for anything but two decimals."""
    match = _YUAN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an amount in yuan: {text!r}")
    sign, whole, cents = match.groups()
    fen = int(whole) * 100 + int(cents)
    return -fen if sign else fen


def read_csv_totals(data: bytes) -> CsvTotals:
    """Re-read a finance CSV written by `render_csv`; ValueError if it is not one."""
    if not data.startswith(codecs.BOM_UTF8):
        raise ValueError("the CSV has no UTF-8 BOM")
    rows = list(csv.reader(io.StringIO(data[len(codecs.BOM_UTF8) :].decode("utf-8"))))
    if len(rows) < 5 or rows[0][:1] != [BATCH_LABEL] or tuple(rows[3]) != COLUMNS:
        raise ValueError("the CSV does not start with the batch, period and header rows")
    if rows[-1][:1] != [TOTAL_LABEL] or len(rows[-1]) < 4:
        raise ValueError("the CSV does not end with a total row")
    amounts = [parse_yuan(row[3]) for row in rows[4:-1]]
    return CsvTotals(
        batch_id=int(rows[0][1]),
        line_count=len(amounts),
        lines_fen=sum(amounts),
        total_fen=parse_yuan(rows[-1][3]),
    )
