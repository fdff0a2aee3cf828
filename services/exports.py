"""The register (台账) of a period as files other systems take: XLSX, GeoJSON, Open311.

One row per report submitted in the period, read on one snapshot. What is in it: reference,
submitted / decided / dispatched / fixed times in the programme's time zone, category, place
(WGS-84 coordinates and the town or street of the nearest place within TOWN_RADIUS_M, when
the places file names one), status, handling department, reward, points, payout batch and
the rider's description. What never is: the rider's name, account, Telegram id or photos
(Open311 gets a note of how many photos there are, not a URL).

- XLSX: sheet 台账 (headers in Chinese with the English beneath), sheet 汇总 (per department
  and per category), sheet 概况 (the headline figures). Amounts are exact (Decimal).
- GeoJSON (RFC 7946): a FeatureCollection of Points [lon, lat]; reports without a place have
  `geometry: null`.
- Open311 GeoReport v2: `services.json` from the categories, `requests.json` with the
  standard fields; datetimes ISO 8601 with the zone's offset (+08:00).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from locales import Texts, display_width
from services import figures as data
from services import spreadsheet
from services.finance_file import exact_yuan
from services.geo import haversine_m
from services.performance import DepartmentPerformance, performance, performance_sheet
from services.reporting import CLOSED
from settings import Programme, Settings
from storage import figures as store
from storage.db import Database

TOWN_RADIUS_M = 3000
CASE_OUTCOMES = {
    "dispatched": "已派单",
    "accepted": "处置中",
    "fixed": "已修好",
    "confirmed": "已修好，骑手确认",
    "reopened": "骑手反馈未修好，返工中",
    "not_ours": "退回改派",
    "cannot_fix": "无法处置",
}
CLOSED_CASES = ("fixed", "confirmed", "cannot_fix")
REGISTER_COLUMNS = (
    ("编号", "Reference"),
    ("提交时间", "Submitted"),
    ("审核时间", "Decided"),
    ("派单时间", "Dispatched"),
    ("处置时间", "Fixed"),
    ("类别", "Category"),
    ("纬度", "Latitude"),
    ("经度", "Longitude"),
    ("镇街", "Town/street"),
    ("状态", "Status"),
    ("处置单位", "Department"),
    ("处置结果", "Outcome"),
    ("奖励（元）", "Reward (yuan)"),
    ("积分", "Points"),
    ("发放批次", "Payout batch"),
    ("描述", "Description"),
)
DATE_FORMAT = "yyyy-mm-dd hh:mm"
MONEY_FORMAT = '"¥"0.00'
COORDINATE_FORMAT = "0.00000"
WIDEST_COLUMN = 50  # characters; a long description wraps instead


@dataclass(frozen=True)
class Line:
    """One report as every format shows it (times already local)."""

    row: store.RegisterRow
    town: str
    category_name: str
    status_name: str
    department_name: str


@dataclass(frozen=True)
class Files:
    period_name: str  # 2026-10, 2026 or 2026-10-01_2026-10-15
    count: int
    xlsx: bytes
    geojson: bytes
    services_json: bytes
    requests_json: bytes

    def name(self, extension: str) -> str:
        stem = {"zip": "open311"}.get(extension, "register")
        return f"{stem}-{self.period_name}.{extension}"

    @property
    def open311_zip(self) -> bytes:
        """services.json and requests.json in one file, for a chat."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("services.json", self.services_json)
            archive.writestr("requests.json", self.requests_json)
        return buffer.getvalue()


def local_time(seconds: int | None, zone: tzinfo) -> str:
    """ISO 8601 with the zone's offset (2026-10-05T09:30:00+08:00); "" for None."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, zone).isoformat(timespec="seconds")


def nearest_town(
    lat: float | None, lon: float | None, towns: Sequence[tuple[float, float, str]]
) -> str:
    if lat is None or lon is None:
        return ""
    best, found = float(TOWN_RADIUS_M), ""
    for town_lat, town_lon, town in towns:
        distance = haversine_m(lat, lon, town_lat, town_lon)
        if distance <= best:
            best, found = distance, town
    return found


def period_name(start: datetime, end: datetime, zone: tzinfo) -> str:
    first = start.astimezone(zone)
    period = data.Period("range", start, end, first.year)
    if data.month_period(first.year, first.month, zone) == data.Period(
        "month", start, end, first.year, first.month
    ):
        return f"{first.year}-{first.month:02d}"
    if data.year_period(first.year, zone) == data.Period("year", start, end, first.year):
        return str(first.year)
    last = (period.end.astimezone(zone)).date()
    return f"{first.date().isoformat()}_{last.isoformat()}"


async def export(
    db: Database, settings: Settings, start: datetime, end: datetime, now: datetime
) -> Files:
    """Every format for the reports submitted in `[start, end)`."""
    zone = settings.timezone
    begin, finish = int(start.timestamp()), int(end.timestamp())
    async with db.snapshot() as conn:
        rows = await store.register(conn, begin, finish)
        towns = await store.towns(conn)
    period = data.Period("range", start, end, start.astimezone(zone).year)
    found = await data.charts(db, settings.programme, zone, period)
    departments = await performance(db, settings.programme, period)
    texts = Texts()
    programme = settings.programme
    lines = []
    for row in rows:
        category = programme.category(row.category or "")
        department = programme.department(row.department or "")
        lines.append(
            Line(
                row=row,
                town=row.town or nearest_town(row.latitude, row.longitude, towns),
                category_name=category.name_zh if category else row.category or "",
                status_name=texts.get("zh", f"status.{row.status}"),
                department_name=department.name_zh if department else row.department or "",
            )
        )
    return Files(
        period_name=period_name(start, end, zone),
        count=len(lines),
        xlsx=register_xlsx(lines, found, zone, now, departments, settings.programme),
        geojson=geojson(lines, zone),
        services_json=services_json(settings),
        requests_json=requests_json(lines, settings, texts),
    )


# --- XLSX ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Formats:
    """The register's cell formats, made once per workbook."""

    bold: Any
    title: Any
    english: Any
    money: Any
    when: Any
    coordinate: Any
    wrapped: Any

    @classmethod
    def of(cls, workbook: Any) -> _Formats:
        return cls(
            bold=workbook.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1}),
            title=workbook.add_format({"bold": True, "font_size": 14}),
            english=workbook.add_format({"italic": True, "font_color": "#666666"}),
            money=workbook.add_format({"num_format": MONEY_FORMAT}),
            when=workbook.add_format({"num_format": DATE_FORMAT}),
            coordinate=workbook.add_format({"num_format": COORDINATE_FORMAT}),
            wrapped=workbook.add_format({"text_wrap": True, "valign": "top"}),
        )


def register_xlsx(
    lines: Sequence[Line],
    found: data.Charts,
    zone: tzinfo,
    now: datetime,
    departments: Sequence[DepartmentPerformance] = (),
    programme: Programme | None = None,
) -> bytes:
    """The register as it goes upward: 台账, then the totals (汇总), the summary (概况) and
    部门绩效."""
    programme = programme or Programme()
    buffer = io.BytesIO()
    workbook = spreadsheet.workbook(buffer)
    formats = _Formats.of(workbook)
    _register_sheet(workbook, formats, lines, found, zone, now, programme)
    _totals_sheet(workbook, formats, lines)
    _summary_sheet(workbook, formats, found, zone, now)
    if departments:
        names = {d.key: d.name_zh for d in programme.departments}
        performance_sheet(workbook, departments, "zh", names)
    workbook.close()
    return buffer.getvalue()


def _register_sheet(
    workbook: Any,
    formats: _Formats,
    lines: Sequence[Line],
    found: data.Charts,
    zone: tzinfo,
    now: datetime,
    programme: Programme,
) -> None:
    """台账: a title row, frozen headers with a filter, dates as dates, money as ¥0.00,
    columns fitted to their contents, landscape and fitted to the page's width with the
    headers on every page."""
    english_headers = programme.export.english_headers
    sheet = workbook.add_worksheet("台账")
    county = programme.service_area.name_zh
    generated = now.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    title = f"{county}随手拍线索台账 · {_period_text(found.period, zone)} · 生成于{generated}"
    sheet.merge_range(0, 0, 0, len(REGISTER_COLUMNS) - 1, title, formats.title)
    header_rows = 2 if english_headers else 1
    for column, (chinese, english_name) in enumerate(REGISTER_COLUMNS):
        sheet.write_string(1, column, chinese, formats.bold)
        if english_headers:
            sheet.write_string(2, column, english_name, formats.english)
    first = 1 + header_rows
    widths = [_width(chinese) for chinese, _ in REGISTER_COLUMNS]
    for index, line in enumerate(lines, start=first):
        _register_row(sheet, formats, index, line, zone, widths)
    for column, width in enumerate(widths):
        sheet.set_column(column, column, min(width, WIDEST_COLUMN) + 2)
    last = max(first, first + len(lines) - 1)
    sheet.freeze_panes(first, 1)
    sheet.autofilter(header_rows, 0, last, len(REGISTER_COLUMNS) - 1)
    sheet.set_landscape()
    sheet.set_paper(9)  # A4
    sheet.fit_to_pages(1, 0)  # as wide as the page, as long as it takes
    sheet.repeat_rows(1, header_rows)


def _register_row(
    sheet: Any, formats: _Formats, index: int, line: Line, zone: tzinfo, widths: list[int]
) -> None:
    """One report's row of 台账; `widths` grows to what each column needs."""
    row = line.row
    texts: dict[int, str] = {
        0: row.reference,
        5: line.category_name,
        8: line.town,
        9: line.status_name,
        10: line.department_name,
        11: outcome_text(line),
        14: row.payout_batch or "",
        15: row.description or "",
    }
    for column, value in texts.items():
        sheet.write_string(index, column, value, formats.wrapped if column == 15 else None)
        widths[column] = max(widths[column], _width(value))
    moments = (row.submitted_at, row.decided_at, row.dispatched_at, row.fixed_at)
    for column, moment in enumerate(moments, start=1):
        if moment is not None:
            sheet.write_datetime(index, column, _local(moment, zone), formats.when)
            widths[column] = max(widths[column], len(DATE_FORMAT))
    if row.latitude is not None and row.longitude is not None:
        sheet.write_number(index, 6, round(row.latitude, 5), formats.coordinate)
        sheet.write_number(index, 7, round(row.longitude, 5), formats.coordinate)
        widths[6] = widths[7] = max(widths[6], 10)
    if row.reward_fen is not None:
        sheet.write_number(index, 12, exact_yuan(row.reward_fen), formats.money)
    if row.points is not None:
        sheet.write_number(index, 13, row.points)


def _totals_sheet(workbook: Any, formats: _Formats, lines: Sequence[Line]) -> None:
    """汇总: reports, verified, rewards and fixed by department, town and category."""
    totals = workbook.add_worksheet("汇总")
    headers = (
        ("分组", "Group"),
        ("名称", "Name"),
        ("线索", "Reports"),
        ("核实有效", "Verified"),
        ("奖励（元）", "Rewards (yuan)"),
        ("已处置", "Fixed"),
    )
    for column, (chinese, english_name) in enumerate(headers):
        totals.write_string(0, column, chinese, formats.bold)
        totals.write_string(1, column, english_name, formats.english)
    row_index = 2
    groups = (
        ("处置单位 Department", "department"),
        ("镇街 Town/street", "town"),
        ("类别 Category", "category"),
    )
    for group, key in groups:
        for name, sums in _totals(lines, key).items():
            totals.write_string(row_index, 0, group)
            totals.write_string(row_index, 1, name or "-")
            totals.write_number(row_index, 2, sums[0])
            totals.write_number(row_index, 3, sums[1])
            totals.write_number(row_index, 4, exact_yuan(sums[2]), formats.money)
            totals.write_number(row_index, 5, sums[3])
            row_index += 1
    totals.set_column(0, 1, 20)


def _summary_sheet(
    workbook: Any, formats: _Formats, found: data.Charts, zone: tzinfo, now: datetime
) -> None:
    """概况: the headline figures, money as money."""
    summary = workbook.add_worksheet("概况")
    summary.write_string(0, 0, "项目", formats.bold)
    summary.write_string(0, 1, "数值", formats.bold)
    summary.write_string(1, 0, "Figure", formats.english)
    summary.write_string(1, 1, "Value", formats.english)
    headline = found.headline
    decisions = found.verification
    span = found.period
    figures: list[tuple[str, Any]] = [
        (
            "期间 Period",
            f"{_excel_time(span.start_ts, zone)} – {_excel_time(span.end_ts, zone)}",
        ),
        ("收到线索 Reports received", headline.submitted),
        ("核实有效 Verified", headline.verified),
        ("核定奖励（元） Rewards approved (yuan)", exact_yuan(headline.rewards_fen)),
        ("其中发放中（元） of which in a payout batch", exact_yuan(headline.in_batch_fen)),
        ("其中已发放（元） of which paid", exact_yuan(headline.paid_fen)),
        ("处置完成 Hazards fixed", headline.fixed),
        ("审核用时中位数（小时） Median hours to decision", _rounded(decisions.median)),
        ("审核用时90%分位（小时） 90th percentile hours", _rounded(decisions.p90)),
        ("导出时间 Exported", _excel_time(int(now.timestamp()), zone)),
    ]
    for index, (name, value) in enumerate(figures, start=2):
        summary.write_string(index, 0, name)
        if isinstance(value, str):
            summary.write_string(index, 1, value)
        else:
            money = formats.money if isinstance(value, Decimal) else None
            summary.write_number(index, 1, value, money)
    summary.set_column(0, 0, 42)
    summary.set_column(1, 1, 40)


def _rounded(hours: float | None) -> Any:
    return "-" if hours is None else round(hours, 1)


def _local(seconds: int, zone: tzinfo) -> datetime:
    """A moment as the register shows it: local wall time, without a zone (Excel has none)."""
    return datetime.fromtimestamp(seconds, zone).replace(tzinfo=None)


def _width(text: str) -> int:
    """Characters a column needs for `text`: its longest line's display width."""
    return max((display_width(line) for line in text.split("\n")), default=0)


def _period_text(period: data.Period, zone: tzinfo) -> str:
    last = (period.end - timedelta(seconds=1)).astimezone(zone).date()
    return f"{period.start.astimezone(zone).date().isoformat()}至{last.isoformat()}"


def outcome_text(line: Line) -> str:
    """处置结果: where the case stands, with the department's own latest words."""
    row = line.row
    if row.case_state is None:
        return ""
    state = CASE_OUTCOMES.get(row.case_state, row.case_state)
    return f"{state}：{row.outcome_note}" if row.outcome_note else state


def _excel_time(seconds: int | None, zone: tzinfo) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, zone).strftime("%Y-%m-%d %H:%M")


def _totals(lines: Sequence[Line], key: str) -> dict[str, list[int]]:
    """name -> [reports, verified, rewards in fen, fixed]."""
    found: dict[str, list[int]] = {}
    for line in lines:
        name = {
            "department": line.department_name,
            "town": line.town,
            "category": line.category_name,
        }[key]
        figures = found.setdefault(name, [0, 0, 0, 0])
        figures[0] += 1
        figures[1] += line.row.status == "approved"
        figures[2] += line.row.reward_fen or 0 if line.row.status == "approved" else 0
        figures[3] += line.row.fixed_at is not None
    return found


# --- GeoJSON and Open311 -------------------------------------------------------------


def geojson(lines: Sequence[Line], zone: tzinfo) -> bytes:
    features = []
    for line in lines:
        row = line.row
        geometry = (
            None
            if row.latitude is None or row.longitude is None
            else {"type": "Point", "coordinates": [row.longitude, row.latitude]}
        )
        features.append(
            {
                "type": "Feature",
                "id": row.reference,
                "geometry": geometry,
                "properties": {
                    "reference": row.reference,
                    "submitted": local_time(row.submitted_at, zone),
                    "decided": local_time(row.decided_at, zone),
                    "dispatched": local_time(row.dispatched_at, zone),
                    "fixed": local_time(row.fixed_at, zone),
                    "category": row.category,
                    "category_name": line.category_name,
                    "town": line.town,
                    "status": row.status,
                    "case_state": row.case_state,
                    "department": row.department,
                    "reward_yuan": None
                    if row.reward_fen is None
                    else str(exact_yuan(row.reward_fen)),
                    "points": row.points,
                    "payout_batch": row.payout_batch,
                    "description": row.description or "",
                },
            }
        )
    collection = {"type": "FeatureCollection", "features": features}
    return json.dumps(collection, ensure_ascii=False, indent=1).encode("utf-8")


def services_json(settings: Settings) -> bytes:
    """Open311 GET services: one service per category."""
    services = [
        {
            "service_code": category.key,
            "service_name": category.name_zh,
            "description": category.name_en,
            "metadata": False,
            "type": "realtime",
            "keywords": "urgent" if category.urgent else "",
            "group": "随手拍",
        }
        for category in settings.programme.categories
    ]
    return json.dumps(services, ensure_ascii=False, indent=1).encode("utf-8")


def open311_status(row: store.RegisterRow) -> str:
    """open while waiting for review or being handled; closed once settled either way."""
    if row.status in CLOSED:
        return "closed"
    if row.status == "approved":
        return (
            "open"
            if row.case_state is not None and row.case_state not in CLOSED_CASES
            else "closed"
        )
    return "open"


def requests_json(lines: Sequence[Line], settings: Settings, texts: Texts) -> bytes:
    """Open311 GET requests: no personal data, photos as a note."""
    zone = settings.timezone
    requests = []
    for line in lines:
        row = line.row
        notes = [line.status_name]
        if row.case_state is not None:
            notes.append(texts.get("zh", f"case.state.{row.case_state}"))
        if row.photos:
            notes.append(f"照片{row.photos}张，存于系统内，不公开")
        expected = row.due_at if row.due_at is not None else row.deadline_at
        request: dict[str, Any] = {
            "service_request_id": row.reference,
            "status": open311_status(row),
            "status_notes": "；".join(notes),
            "service_name": line.category_name,
            "service_code": row.category or "",
            "description": row.description or "",
            "agency_responsible": line.department_name,
            "service_notice": "",
            "requested_datetime": local_time(row.submitted_at, zone),
            "updated_datetime": local_time(row.updated_at, zone),
            "expected_datetime": local_time(expected, zone),
            "address": line.town,
            "address_id": "",
            "zipcode": "",
            "lat": row.latitude,
            "long": row.longitude,
        }
        requests.append(request)
    return json.dumps(requests, ensure_ascii=False, indent=1).encode("utf-8")
