"""The reward budget: `[payout] budget_yuan_per_month` (and `budget_yuan_per_year`).

What counts against it: rewards less reversals booked in the month (or year), in the
programme's time zone, the same sum the /stats rewards chart draws. An approval that would
take the month (or year) past its budget is refused unless an admin makes it; admins are
told once per month when the month's use reaches 80% and 100%; the payout file's caption
warns when a batch's total exceeds the monthly budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from services import figures as data
from services.outbox import Fen, Notice
from settings import Programme, Settings
from storage import figures as store
from storage.db import Connection

THRESHOLDS = (80, 100)  # percent of a budget at which admins are warned


@dataclass(frozen=True)
class BudgetUse:
    """This month's and this year's rewards against their budgets, in fen (None: not set)."""

    month: tuple[int, int]
    used_fen: int
    budget_fen: int | None
    year_used_fen: int
    year_budget_fen: int | None

    @property
    def percent(self) -> int:
        """Of the monthly budget (0 when only a yearly one is set)."""
        return _percent(self.used_fen, self.budget_fen)

    @property
    def year_percent(self) -> int:
        return _percent(self.year_used_fen, self.year_budget_fen)

    def exceeded_by(self, amount_fen: int) -> bool:
        """Whether a further `amount_fen` takes the month or the year past its budget."""
        return any(
            budget is not None and used + amount_fen > budget
            for used, budget in (
                (self.used_fen, self.budget_fen),
                (self.year_used_fen, self.year_budget_fen),
            )
        )


def _percent(used_fen: int, budget_fen: int | None) -> int:
    return used_fen * 100 // budget_fen if budget_fen else 0


async def use(
    conn: Connection, programme: Programme, zone: tzinfo, now: datetime
) -> BudgetUse | None:
    """This month's and year's use; None when neither budget is set."""
    rules = programme.payout
    if rules.budget_month_fen is None and rules.budget_year_fen is None:
        return None
    local = now.astimezone(zone)
    month = data.month_period(local.year, local.month, zone)
    year = data.year_period(local.year, zone)
    return BudgetUse(
        month=(local.year, local.month),
        used_fen=await store.rewards_between(conn, month.start_ts, month.end_ts),
        budget_fen=rules.budget_month_fen,
        year_used_fen=(
            await store.rewards_between(conn, year.start_ts, year.end_ts)
            if rules.budget_year_fen is not None
            else 0
        ),
        year_budget_fen=rules.budget_year_fen,
    )


def warnings(settings: Settings, before: BudgetUse, after: BudgetUse) -> list[Notice]:
    """Admins' notices for each threshold this approval crossed, of the month's budget and of
    the year's (once per month, or per year, each)."""
    year, month = after.month
    spans = (
        ("budget.warning", f"{year}-{month:02d}", before.percent, after.percent,
         after.used_fen, after.budget_fen),
        ("budget.year_warning", f"{year}", before.year_percent, after.year_percent,
         after.year_used_fen, after.year_budget_fen),
    )  # fmt: skip
    return [
        Notice(
            admin,
            f"{key}.{threshold}",
            {"used": Fen(used), "budget": Fen(budget), "percent": now, "month": span},
            once_key=f"budget:{span}:{threshold}:{admin}",
        )
        for key, span, was, now, used, budget in spans
        if budget is not None
        for threshold in THRESHOLDS
        if was < threshold <= now
        for admin in sorted(settings.admin_ids)
    ]


def payout_over_budget(programme: Programme, total_fen: int) -> bool:
    """Whether one payout batch alone is more than a month's budget."""
    return (
        programme.payout.budget_month_fen is not None
        and total_fen > programme.payout.budget_month_fen
    )
