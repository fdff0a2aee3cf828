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

from services import reports_data as data
from services.outbox import Fen, Notice
from settings import Programme, Settings
from storage import reports_data as store
from storage.db import Connection

THRESHOLDS = (80, 100)  # percent of the monthly budget at which admins are warned


@dataclass(frozen=True)
class BudgetUse:
    """This month's (and year's) rewards against the budget, in fen."""

    month: tuple[int, int]
    used_fen: int
    budget_fen: int
    year_used_fen: int
    year_budget_fen: int | None

    @property
    def percent(self) -> int:
        return self.used_fen * 100 // self.budget_fen

    def exceeded_by(self, amount_fen: int) -> bool:
        """Whether a further `amount_fen` takes the month or the year past its budget."""
        if self.used_fen + amount_fen > self.budget_fen:
            return True
        return (
            self.year_budget_fen is not None
            and self.year_used_fen + amount_fen > self.year_budget_fen
        )


async def use(
    conn: Connection, programme: Programme, zone: tzinfo, now: datetime
) -> BudgetUse | None:
    """This month's use; None when no monthly budget is set."""
    if programme.payout.budget_month_fen is None:
        return None
    local = now.astimezone(zone)
    month = data.month_period(local.year, local.month, zone)
    year = data.year_period(local.year, zone)
    return BudgetUse(
        month=(local.year, local.month),
        used_fen=await store.rewards_between(conn, month.start_ts, month.end_ts),
        budget_fen=programme.payout.budget_month_fen,
        year_used_fen=(
            await store.rewards_between(conn, year.start_ts, year.end_ts)
            if programme.payout.budget_year_fen is not None
            else 0
        ),
        year_budget_fen=programme.payout.budget_year_fen,
    )


def warnings(settings: Settings, before: BudgetUse, after: BudgetUse) -> list[Notice]:
    """Admins' notices for each threshold this approval crossed (once per month each)."""
    crossed = [t for t in THRESHOLDS if before.percent < t <= after.percent]
    year, month = after.month
    return [
        Notice(
            admin,
            f"budget.warning.{threshold}",
            {
                "used": Fen(after.used_fen),
                "budget": Fen(after.budget_fen),
                "percent": after.percent,
                "month": f"{year}-{month:02d}",
            },
            once_key=f"budget:{year}-{month:02d}:{threshold}:{admin}",
        )
        for threshold in crossed
        for admin in sorted(settings.admin_ids)
    ]


def payout_over_budget(programme: Programme, total_fen: int) -> bool:
    """Whether one payout batch alone is more than a month's budget."""
    return (
        programme.payout.budget_month_fen is not None
        and total_fen > programme.payout.budget_month_fen
    )
