"""`/audit`: check that the money adds up, to the fen. An empty list means all is well.

Every check reads one committed state (`Database.snapshots()`: read transactions on read-only
connections of their own, all on one snapshot), so a batch or an approval committing while
the audit runs is either wholly in it or wholly out of it (no false alarms on a live bot),
the long checks run side by side, and the bot keeps answering.

Checks:
- every rider: the ledger's sum equals a balance recomputed without the ledger (the rewards
  moderators decided for the rider's reports still approved, less the rider's payout
  lines); it equals their rewards and reversals no batch has settled; and unpaid + on the
  way + paid = earned - reversed (only entries of a known kind in a known batch add up);
- every batch: its lines sum to its total and count, its payout entries match its lines one
  for one, each line is the sum of the entries it settles, and once exported the stored
  XLSX has the stored sha256 and the stored CSV re-reads to the same batch, lines and total;
- no report listed in two payout lines; no report credited twice; every approved report has
  its reward, in the amount of its approval decision, every reversed one its reversal, and
  no report has money it should not.
"""

from __future__ import annotations

import asyncio
import hashlib

from services import finance_file
from services.ledger import yuan
from storage import ledger as ledger_store
from storage import payouts as payout_store
from storage import points as points_store
from storage.db import Connection, Database

_REPORT_PROBLEMS = {
    "credited_twice": "credited more than once",
    "wrong_rider": "has money entries for a rider who did not send it",
    "approved_without_reward": "is approved but has no reward entry",
    "reversed_without_reversal": "is reversed but has no reversal entry",
    "reward_not_approved": "has a reward but is neither approved nor reversed",
    "reversal_not_reversed": "has a reversal entry but its status is not reversed",
    "reversal_without_reward": "has a reversal entry but no reward",
    "reversal_mismatch": "has a reversal that does not cancel its reward exactly",
    "reward_not_decided": "has a reward that differs from the amount its moderator approved",
}


async def audit(db: Database) -> list[str]:
    """Every violation found, one sentence each."""
    # Five snapshots of one committed state: the database runs the long checks side by side
    # (a thread or a server process each), and they still agree with one another. A task
    # group, so that one check failing stops the others before their snapshots close.
    async with db.snapshots(5) as (batches_view, riders_view, lines_view, *reports_views):
        async with asyncio.TaskGroup() as group:
            batches = group.create_task(_batches_and_files(batches_view))
            riders = group.create_task(ledger_store.rider_checks(riders_view))
            paid_twice = group.create_task(_paid_twice(lines_view))
            reports = group.create_task(_reports(*reports_views))
        points = await _points(batches_view, riders.result())
    return [
        *[problem for rider in riders.result() for problem in _rider(rider)],
        *batches.result()[0],
        *paid_twice.result(),
        *batches.result()[1],
        *reports.result(),
        *points,
    ]


async def _batches_and_files(conn: Connection) -> tuple[list[str], list[str]]:
    """What is wrong with the batches' sums, and with their stored files (re-read in a
    thread: Python's work, while the database does the other checks and the bot keeps
    answering)."""
    checks = await payout_store.batch_checks(conn)
    stored = await payout_store.stored_file_hashes(conn)
    batches = {check.batch.id: check.batch for check in checks}
    return _batches(checks), await asyncio.to_thread(_files, stored, batches)


def _rider(check: ledger_store.RiderCheck) -> list[str]:
    """What is wrong with one rider's money (`rider_checks` returns only riders with a fault,
    or with negative points, which `_points` reports)."""
    problems = []
    rider, balance = check.rider_id, check.balance
    entries = balance.unpaid_fen
    decided, paid = check.decided_fen, check.lines_fen
    if decided - paid != entries:
        problems.append(
            f"rider {rider}: entries sum to {yuan(entries)}, but the rewards decided for"
            f" their approved reports ({yuan(decided)}) less their payout lines"
            f" ({yuan(paid)}) come to {yuan(decided - paid)}"
        )
    if check.unsettled_fen != entries:
        problems.append(
            f"rider {rider}: balance {yuan(entries)}, but the rewards and reversals no"
            f" batch settled sum to {yuan(check.unsettled_fen)}"
        )
    accounted = balance.unpaid_fen + balance.on_the_way_fen + balance.paid_fen
    if accounted != balance.earned_fen - balance.reversed_fen:
        problems.append(
            f"rider {rider}: unpaid + on the way + paid = {yuan(accounted)},"
            f" earned - reversed = {yuan(balance.earned_fen - balance.reversed_fen)}"
        )
    return problems


def _batches(checks: list[payout_store.BatchCheck]) -> list[str]:
    problems = []
    for check in checks:
        batch = check.batch
        name = f"batch {batch.id} ({batch.period_key})"
        if check.lines_fen != batch.total_fen or check.lines != batch.line_count:
            problems.append(
                f"{name}: {check.lines} lines sum to {yuan(check.lines_fen)}, the batch"
                f" says {batch.line_count} lines and {yuan(batch.total_fen)}"
            )
        if check.payout_entries_fen != check.lines_fen:
            problems.append(
                f"{name}: payout entries sum to {yuan(check.payout_entries_fen)},"
                f" its lines to {yuan(check.lines_fen)}"
            )
        if check.lines_without_entry or check.entries_without_line:
            problems.append(
                f"{name}: {check.lines_without_entry} lines without their payout entry,"
                f" {check.entries_without_line} payout entries without a line"
            )
        if check.lines_not_matching_items:
            problems.append(
                f"{name}: {check.lines_not_matching_items} lines differ from the sum of"
                " the rewards and reversals they settle"
            )
    return problems


async def _paid_twice(conn: Connection) -> list[str]:
    return [
        f"report {reference} is listed in more than one payout line"
        for reference in await payout_store.reports_paid_twice(conn)
    ]


def _files(
    stored: list[tuple[int, str | None, bytes, bytes]],
    batches: dict[int, payout_store.BatchRecord],
) -> list[str]:
    """Each exported batch's stored files against the batch (re-reading a 100,000-line CSV
    takes a while: the caller runs this in a thread)."""
    problems = []
    for batch_id, sha256, xlsx, csv in stored:
        batch = batches[batch_id]
        name = f"batch {batch_id} ({batch.period_key})"
        if hashlib.sha256(xlsx).hexdigest() != sha256:
            problems.append(f"{name}: the stored XLSX does not match its sha256")
        try:
            totals = finance_file.read_csv_totals(csv)
        except ValueError as exc:
            problems.append(f"{name}: the stored CSV cannot be read ({exc})")
            continue
        if totals.batch_id != batch_id:
            problems.append(f"{name}: the stored CSV is for batch {totals.batch_id}")
        if (totals.line_count, totals.lines_fen, totals.total_fen) != (
            batch.line_count,
            batch.total_fen,
            batch.total_fen,
        ):
            problems.append(
                f"{name}: the CSV has {totals.line_count} lines summing to"
                f" {yuan(totals.lines_fen)} and a total of {yuan(totals.total_fen)};"
                f" the batch says {batch.line_count} lines and {yuan(batch.total_fen)}"
            )
    return problems


async def _reports(status_view: Connection, entries_view: Connection) -> list[str]:
    return [
        f"report {reference or '#' + str(report_id)} {_REPORT_PROBLEMS[problem]}"
        for problem, report_id, reference in await ledger_store.report_anomalies(
            status_view, entries_view
        )
    ]


_POINTS_PROBLEMS = {
    "used_without_entry": "redemption code {} is used but no points were debited",
    "entry_without_used_code": "points were debited for redemption code {}, which is not used",
    "entry_mismatch": "redemption code {} debited another rider or another amount",
}


async def _points(conn: Connection, riders: list[ledger_store.RiderCheck]) -> list[str]:
    """Every used redemption code has exactly its debit, and nobody's points are negative
    (`riders` summed every rider's points already)."""
    return [
        *(
            _POINTS_PROBLEMS[problem].format(code)
            for problem, code in await points_store.anomalies(conn)
        ),
        *(
            f"rider {rider.rider_id} has negative points"
            for rider in riders
            if rider.balance.points < 0
        ),
    ]
