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
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
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


@dataclass(frozen=True, slots=True)  # one per line of a batch: no __dict__ each
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


@dataclass(frozen=True, slots=True)
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
    lines: Iterable[StatementLine]  # `render` reads them once: they may be streamed
    held_back: Sequence[HeldBack] = ()

    @property
    def total_fen(self) -> int:
        """The lines' sum (reading them: for lines held in a sequence)."""
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
    """Both files for the statement; times are shown in `timezone`.

    One pass over the lines writes each to both files, so a statement streamed from the
    database is never held whole; the bytes are those `render_xlsx` and `render_csv` give.
    """
    csv_file, xlsx_file = _CsvFile(statement, timezone), _XlsxFile(statement, timezone)
    total_fen = 0
    for line in statement.lines:
        csv_file.add(line)
        xlsx_file.add(line)
        total_fen += line.amount_fen
    return RenderedFiles(xlsx=xlsx_file.close(total_fen), csv=csv_file.close(total_fen))


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
    lines = list(statement.lines)
    csv_file = _CsvFile(statement, timezone)
    for line in lines:
        csv_file.add(line)
    return csv_file.close(sum(line.amount_fen for line in lines))


def _text(value: str) -> str:
    """A CSV cell that Excel will not run as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


class _CsvFile:
    """The CSV written line by line: the header rows, `add` each line, `close` with the total."""

    def __init__(self, statement: Statement, timezone: tzinfo) -> None:
        self._timezone = timezone
        self._out = io.BytesIO()
        self._stream = io.TextIOWrapper(
            self._out, encoding="utf-8-sig", newline="", write_through=True
        )
        self._writer = csv.writer(self._stream)
        self._writer.writerow([BATCH_LABEL, statement.batch_id])
        self._writer.writerow([PERIOD_LABEL, statement.period_key, _period(statement, timezone)])
        self._writer.writerow([])
        self._writer.writerow(COLUMNS)

    def add(self, line: StatementLine) -> None:
        self._writer.writerow(
            [
                line.payee_id,
                _text(line.real_name),
                _text(line.account),
                yuan(line.amount_fen),
                _text(line.report_refs),
                note(line, self._timezone),
            ]
        )

    def close(self, total_fen: int) -> bytes:
        self._writer.writerow([TOTAL_LABEL, "", "", yuan(total_fen), ""])
        self._stream.detach()
        return self._out.getvalue()


def exact_yuan(fen: int) -> Decimal:
    """`12345` -> `Decimal('123.45')`: yuan without passing through a binary float."""
    return Decimal(fen).scaleb(-2)


def render_xlsx(statement: Statement, timezone: tzinfo) -> bytes:
    """The payout sheet (and, when riders were held back, a sheet listing them); amounts are
    numbers formatted `0.00`, every other cell is text.

    Amounts are written from `Decimal`, never `float`: the cell's value is the exact
    decimal text (`<v>150.05</v>`), as in the CSV.
    """
    lines = list(statement.lines)
    xlsx_file = _XlsxFile(statement, timezone)
    for line in lines:
        xlsx_file.add(line)
    return xlsx_file.close(sum(line.amount_fen for line in lines))


class _XlsxFile:
    """The workbook written row by row in constant-memory mode (inline strings, temporary
    files), so a batch of 100,000 lines needs tens of megabytes, not hundreds."""

    def __init__(self, statement: Statement, timezone: tzinfo) -> None:
        self._timezone = timezone
        self._held_back = statement.held_back
        self._out = io.BytesIO()
        self._workbook = spreadsheet.workbook(self._out, in_memory=False, constant_memory=True)
        self._workbook.set_properties(
            {
                "title": f"Payout {statement.period_key}",
                "created": datetime.fromtimestamp(statement.created_at, UTC).replace(tzinfo=None),
            }
        )
        self._bold = self._workbook.add_format({"bold": True})
        self._money = self._workbook.add_format({"num_format": "0.00"})
        self._bold_money = self._workbook.add_format({"num_format": "0.00", "bold": True})
        sheet = self._sheet = self._workbook.add_worksheet("Payout")
        for column, width in enumerate((16, 14, 24, 20, 40, 36)):
            sheet.set_column(column, column, width)
        sheet.write_string(0, 0, BATCH_LABEL, self._bold)
        sheet.write_string(0, 1, str(statement.batch_id))
        sheet.write_string(1, 0, PERIOD_LABEL, self._bold)
        sheet.write_string(1, 1, statement.period_key)
        sheet.write_string(1, 2, _period(statement, timezone))
        for column, title in enumerate(COLUMNS):
            sheet.write_string(3, column, title, self._bold)
        sheet.freeze_panes(4, 0)
        self._row = 4

    def add(self, line: StatementLine) -> None:
        sheet, row = self._sheet, self._row
        sheet.write_string(row, 0, line.payee_id)
        sheet.write_string(row, 1, line.real_name)
        sheet.write_string(row, 2, line.account)
        sheet.write_number(row, 3, exact_yuan(line.amount_fen), self._money)
        sheet.write_string(row, 4, line.report_refs)
        if line.details_changed_at is not None:
            sheet.write_string(row, 5, note(line, self._timezone))
        self._row += 1

    def close(self, total_fen: int) -> bytes:
        """The total row, the held-back sheet, and the workbook's bytes."""
        self._sheet.write_string(self._row, 0, TOTAL_LABEL, self._bold)
        self._sheet.write_number(self._row, 3, exact_yuan(total_fen), self._bold_money)
        if self._held_back:
            held = self._workbook.add_worksheet(HELD_BACK_SHEET)
            held.set_column(0, 0, 16)
            held.set_column(1, 1, 22)
            held.set_column(2, 2, 30)
            for column, title in enumerate(HELD_BACK_COLUMNS):
                held.write_string(0, column, title, self._bold)
            for number, rider in enumerate(self._held_back, start=1):
                held.write_string(number, 0, rider.payee_id)
                held.write_number(number, 1, exact_yuan(rider.amount_fen), self._money)
                held.write_string(number, 2, HELD_BACK_REASON)
        self._workbook.close()
        return self._out.getvalue()


def parse_yuan(text: str) -> int:
    """`123.45` -> `12345`, exactly; ValueError for anything but two decimals."""
    match = _YUAN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an amount in yuan: {text!r}")
    sign, whole, cents = match.groups()
    fen = int(whole) * 100 + int(cents)
    return -fen if sign else fen


def read_csv_totals(data: bytes) -> CsvTotals:
    """Re-read a finance CSV written by `render_csv`; ValueError if it is not one.

    Row by row: the audit re-reads a 100,000-line file, and holding its rows took 150 MB.
    """
    if not data.startswith(codecs.BOM_UTF8):
        raise ValueError("the CSV has no UTF-8 BOM")
    rows = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline=""))
    head = list(itertools.islice(rows, 4))
    last = next(rows, None)
    starts_right = (
        len(head) == 4
        and len(head[0]) >= 2
        and head[0][0] == BATCH_LABEL
        and tuple(head[3]) == COLUMNS
    )
    if last is None or not starts_right:
        raise ValueError("the CSV does not start with the batch, period and header rows")
    line_count = lines_fen = 0
    for row in rows:  # `last` is a line: another row follows it
        lines_fen += parse_yuan(_amount(last))
        line_count += 1
        last = row
    if last[:1] != [TOTAL_LABEL]:
        raise ValueError("the CSV does not end with a total row")
    return CsvTotals(
        batch_id=int(head[0][1]),
        line_count=line_count,
        lines_fen=lines_fen,
        total_fen=parse_yuan(_amount(last)),
    )


def _amount(row: list[str]) -> str:
    if len(row) < 4:
        raise ValueError(f"a row of the CSV has no amount: {row!r}")
    return row[3]
