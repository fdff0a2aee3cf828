"""Each department's performance over a period (部门绩效), as a county is assessed on it.

- received: dispatches to it in the period (a case's opening or a re-routing to it);
- accepted / accepted in time, fixed / fixed in time: of the cases it holds that were opened
  in the period, those accepted by the 签收 deadline and fixed by the fix deadline (as it
  stands: an approved extension moved it); on_time_rate (按时办结率) = fixed in time / fixed;
- extensions asked and granted, returned (退单, "not ours") and reopened (返工), in the period;
- satisfaction (满意率) = (满意 + 基本满意) / real answers given in the period; answers the clock
  gave for a silent rider are counted apart and never in the rate;
- median hours from dispatch to accepted and to fixed, of the cases opened in the period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from locales import Phrases
from services.figures import Period
from services.stats import MEDIAN, ranked_percentile
from settings import Programme
from storage import performance as store
from storage.db import Database
from storage.ranks import Ranked


@dataclass(frozen=True)
class DepartmentPerformance:
    department: str
    received: int
    cases: int
    accepted: int
    accepted_in_time: int
    fixed: int
    fixed_in_time: int
    extensions_asked: int
    extensions_granted: int
    returned: int
    reopened: int
    answers: int  # real 回访 answers
    satisfied: int  # of which 满意 or 基本满意
    silent: int  # confirmed by the clock, counted apart
    median_accept_hours: float | None
    median_fix_hours: float | None

    @property
    def on_time_rate(self) -> float | None:
        return self.fixed_in_time / self.fixed if self.fixed else None

    @property
    def accepted_in_time_rate(self) -> float | None:
        return self.accepted_in_time / self.cases if self.cases else None

    @property
    def satisfaction(self) -> float | None:
        return self.satisfied / self.answers if self.answers else None


def _median_hours(ranked: Ranked | None) -> float | None:
    if ranked is None:
        return None
    return round(float(ranked_percentile(ranked, MEDIAN)) / 3600, 1)


async def performance(
    db: Database, programme: Programme, period: Period
) -> list[DepartmentPerformance]:
    """One row per configured department (in config order, even without cases), then any
    department no longer configured that the period's data names."""
    start, end = period.start_ts, period.end_ts
    async with db.snapshot() as conn:  # one committed state, never under the write lock
        cases = await store.case_counts(conn, start, end)
        events = await store.event_counts(conn, start, end)
        extensions = await store.extension_counts(conn, start, end)
        feedback = await store.feedback_counts(conn, start, end)
        to_accept = await store.duration_ranks(conn, start, end, (MEDIAN,), to="accepted_at")
        to_fix = await store.duration_ranks(conn, start, end, (MEDIAN,), to="fixed_at")
    keys = [d.key for d in programme.departments]
    keys += sorted({*cases, *events, *extensions, *feedback} - set(keys))
    rows = []
    for key in keys:
        total, accepted, accepted_in_time, fixed, fixed_in_time = cases.get(key, (0,) * 5)
        received, returned, reopened = events.get(key, (0, 0, 0))
        asked, granted = extensions.get(key, (0, 0))
        answers, satisfied, silent = feedback.get(key, (0, 0, 0))
        rows.append(
            DepartmentPerformance(
                key, received, total, accepted, accepted_in_time, fixed, fixed_in_time,
                asked, granted, returned, reopened, answers, satisfied, silent,
                _median_hours(to_accept.get(key)), _median_hours(to_fix.get(key)),
            )
        )  # fmt: skip
    return rows


def performance_text(
    t: Phrases, programme: Programme, rows: Sequence[DepartmentPerformance]
) -> str:
    """部门绩效 in words, for /stats and the weekly digest: a line per department."""
    lines = [t("stats.performance.heading")]
    for row in rows:
        department = programme.department(row.department)
        lines.append(
            t(
                "stats.performance.line",
                department=department.name(t.language) if department else row.department,
                received=row.received,
                on_time=rate_text(row.on_time_rate),
                fixed=row.fixed,
                satisfaction=rate_text(row.satisfaction),
                answers=row.answers,
                silent=row.silent,
                asked=row.extensions_asked,
                granted=row.extensions_granted,
                returned=row.returned,
                reopened=row.reopened,
            )
        )
    return "\n".join(lines)


def rate_text(share: float | None) -> str:
    """A rate as people read it (83%), or "-" when there was nothing to count."""
    return "-" if share is None else f"{round(share * 100)}%"


HEADERS = {
    "zh": (
        "部门", "派发", "案件", "签收", "按时签收", "办结", "按时办结", "按时办结率",
        "申请延期", "批准延期", "退单", "返工", "回访", "满意率", "默认满意",
        "签收中位时长(小时)", "办结中位时长(小时)",
    ),
    "en": (
        "Department", "Received", "Cases", "Accepted", "Accepted in time", "Fixed",
        "Fixed in time", "On-time rate", "Extensions asked", "Extensions granted",
        "Returned", "Reopened", "Answers", "Satisfaction", "Silent",
        "Median hours to accept", "Median hours to fix",
    ),
}  # fmt: skip


def sheet_rows(rows: Sequence[DepartmentPerformance], names: Mapping[str, str]) -> list[list[Any]]:
    """The sheet's cells, a row per department; None where a rate has nothing to count."""
    return [
        [
            names.get(r.department, r.department), r.received, r.cases, r.accepted,
            r.accepted_in_time, r.fixed, r.fixed_in_time, r.on_time_rate,
            r.extensions_asked, r.extensions_granted, r.returned, r.reopened, r.answers,
            r.satisfaction, r.silent, r.median_accept_hours, r.median_fix_hours,
        ]
        for r in rows
    ]  # fmt: skip


RATE_COLUMNS = (7, 13)


def performance_sheet(
    workbook: Any, rows: Sequence[DepartmentPerformance], language: str, names: Mapping[str, str]
) -> None:
    """The 部门绩效 sheet of an xlsxwriter workbook: frozen header, filter, rates as %."""
    headers = HEADERS["en" if language == "en" else "zh"]
    sheet = workbook.add_worksheet("Departments" if language == "en" else "部门绩效")
    bold = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    percent = workbook.add_format({"num_format": "0.0%"})
    sheet.write_row(0, 0, headers, bold)
    cells = sheet_rows(rows, names)
    for number, row in enumerate(cells, start=1):
        for column, value in enumerate(row):
            if value is None:
                continue
            sheet.write(number, column, value, percent if column in RATE_COLUMNS else None)
    for column, header in enumerate(headers):
        widest = max([len(str(header))] + [len(str(r[column])) for r in cells])
        sheet.set_column(column, column, min(max(widest + 2, 8), 30))
    sheet.freeze_panes(1, 1)
    sheet.autofilter(0, 0, max(len(cells), 1), len(headers) - 1)
