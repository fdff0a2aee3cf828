"""Payout batches: which periods are due, building a batch crash-safely, marking it paid.

A period ends at each fire time of `PAYOUT_SCHEDULE` (a cron in the programme's time zone)
and starts at the previous one. A batch pays every rider the sum of their unsettled rewards
credited before the period's end (net of reversals of those rewards, and of earlier paid
rewards taken back), if that sum is positive, at least the minimum, and the rider has payout
details; everyone else is carried forward to the next batch.

Building a batch takes two transactions:

1. the batch row, its lines, the `payout:<batch>:<rider>` ledger entries and the links to
   the entries each line settles, all at once (status `open`);
2. the finance files rendered from the stored lines, their sha256, status `exported`.

A crash before 1 commits leaves nothing; a crash between 1 and 2 leaves an open batch that
the next run (same period key, or `run_due` at start-up) renders from its stored lines.
Either way the rerun makes no duplicate and loses no line. Announcing (sending the files,
telling riders) is the caller's: it claims the batch (`claim`, one guarded UPDATE), sends the
files, and calls `mark_announced` (which queues the riders' notices in the same transaction)
once a recipient took them; `run_due` hands back every batch not yet announced, so a crash
there is caught up too, and the claim keeps two announcers from both sending.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import NamedTuple

from apscheduler.triggers.cron import CronTrigger

from services import finance_file
from storage import payouts as store
from storage.db import Connection, Database
from storage.payouts import RiderDue

__all__ = [
    "CATCH_UP_LIMIT",
    "BatchFiles",
    "BatchOutcome",
    "PaidOutcome",
    "Period",
    "RiderDue",
    "due_periods",
    "mark_announced",
    "mark_paid",
    "period_key",
    "run_adhoc",
    "run_batch",
    "run_due",
    "stored_outcome",
]

CATCH_UP_LIMIT = 52
"""At most this many missed periods get batches of their own after a long downtime (a year
of weekly batches); older periods get none, and their unpaid rewards go into the earliest
batch caught up, since a batch pays everything unsettled before its end."""

_LONGEST_LOOKBACK = timedelta(days=4000)


class Period(NamedTuple):
    key: str  # e.g. 2026-W48, 2026-11-30-1000 or adhoc-<unix>
    start: int  # unix seconds; informative (shown in the file)
    end: int  # unix seconds; the batch pays what was credited before this


@dataclass(frozen=True)
class BatchFiles:
    xlsx_name: str  # payout-2026-W48.xlsx
    xlsx: bytes
    csv_name: str
    csv: bytes
    sha256: str  # of the XLSX, as stored with the batch


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch run did, with all a handler needs to tell admins, finance and riders.

    `announced` is True when the batch had been announced before: send nothing again.
    `batch_id` is None only for an ad hoc run that found nothing to pay (no batch made).
    """

    period: Period
    kind: str  # scheduled | adhoc
    batch_id: int | None
    status: str | None
    total_fen: int
    paid: tuple[RiderDue, ...]  # one per line: "100.00 元 will be paid in this batch"
    missing_payee: tuple[RiderDue, ...]  # due but without payout details: remind them
    files: BatchFiles | None
    announced: bool

    @property
    def nothing_to_pay(self) -> bool:
        return not self.paid


@dataclass(frozen=True)
class PaidOutcome:
    """`marked` is False when the batch is unknown, still open, or was already paid."""

    marked: bool
    status: str | None  # the batch's status now; None if there is no such batch
    period_key: str | None
    paid: tuple[RiderDue, ...]  # riders to tell that their money was paid (empty unless marked)
    paid_by: int | None = None  # who marked it paid (this call or an earlier one)
    paid_at: int | None = None


def _next_fire(trigger: CronTrigger, at_or_after: int) -> int | None:
    fire: datetime | None = trigger.get_next_fire_time(
        None, datetime.fromtimestamp(at_or_after, UTC)
    )
    return None if fire is None else int(fire.timestamp())


def _previous_fire(trigger: CronTrigger, before: int) -> int | None:
    """The latest fire time strictly before `before`, searching back with doubling steps."""
    step = timedelta(minutes=1)
    while step <= _LONGEST_LOOKBACK:
        fire = _next_fire(trigger, before - int(step.total_seconds()))
        if fire is not None and fire < before:
            while (later := _next_fire(trigger, fire + 1)) is not None and later < before:
                fire = later
            return fire
        step *= 2
    return None


def period_key(end: int, previous_end: int | None, timezone: tzinfo) -> str:
    """`2026-W48` for a weekly-or-longer period, named after the ISO week of the day before
    its end (Monday 10:00 pays the week that ended); else the end's local minute,
    `2026-11-30-1000`. Keys never repeat for consecutive fire times of one schedule."""
    end_local = datetime.fromtimestamp(end, timezone)
    if previous_end is not None and end - previous_end >= timedelta(days=6).total_seconds():
        year, week, _ = (end_local - timedelta(days=1)).isocalendar()
        previous_local = datetime.fromtimestamp(previous_end, timezone)
        if (year, week) != (previous_local - timedelta(days=1)).isocalendar()[:2]:
            return f"{year}-W{week:02d}"
    return end_local.strftime("%Y-%m-%d-%H%M")


def due_periods(
    trigger: CronTrigger,
    last_period_end: int | None,
    now: int,
    *,
    limit: int = CATCH_UP_LIMIT,
) -> list[Period]:
    """Closed periods (fire time <= now) ending after `last_period_end`, oldest first.

    With no batch yet (`last_period_end` None) only the latest closed period is due. After a
    long downtime at most `limit` periods, the latest ones, are returned.
    """
    ends: list[int] = []
    fire = _previous_fire(trigger, now + 1)
    while fire is not None and (last_period_end is None or fire > last_period_end):
        ends.append(fire)
        fire = _previous_fire(trigger, fire)
        if last_period_end is None or len(ends) == limit:
            break
    periods = []
    previous = fire
    for end in reversed(ends):
        start = end if previous is None else previous
        if last_period_end is not None:
            start = min(max(start, last_period_end), end)
        periods.append(Period(period_key(end, previous, trigger.timezone), start, end))
        previous = end
    return periods


async def run_batch(
    db: Database,
    *,
    period_key: str,
    period_start: int,
    period_end: int,
    minimum_fen: int,
    now: int,
    timezone: tzinfo,
    render: finance_file.Renderer = finance_file.render,
) -> BatchOutcome:
    """Build, or finish, or just report the scheduled batch for this period (idempotent)."""
    period = Period(period_key, period_start, period_end)
    return await _run(db, period, "scheduled", minimum_fen, now, timezone, render)


async def run_adhoc(
    db: Database,
    *,
    minimum_fen: int,
    now: int,
    timezone: tzinfo,
    render: finance_file.Renderer = finance_file.render,
) -> BatchOutcome:
    """`/payout`: a batch `adhoc-<now>` paying everything credited up to now (inclusive).

    With nothing to pay no batch is made (`batch_id` None, `nothing_to_pay` True).
    """
    start = await store.latest_period_end(db) or await store.first_entry_time(db) or now
    key, repeat = f"adhoc-{now}", 1
    async with db.transaction() as conn:
        # A second /payout within the same second is a new batch, not the first one again.
        while await store.batch_by_key(conn, key) is not None:
            repeat += 1
            key = f"adhoc-{now}-{repeat}"
    period = Period(key, min(start, now + 1), now + 1)
    return await _run(db, period, "adhoc", minimum_fen, now, timezone, render)


async def run_due(
    db: Database,
    *,
    trigger: CronTrigger,
    minimum_fen: int,
    now: int,
    render: finance_file.Renderer = finance_file.render,
) -> list[BatchOutcome]:
    """The scheduled job and start-up: finish interrupted batches, build every due one.

    Returns every batch not yet announced (oldest first), for the caller to send and then
    `mark_announced`.
    """
    timezone: tzinfo = trigger.timezone
    outcomes: dict[int, BatchOutcome] = {}
    for batch in await store.unfinished_batches(db):
        outcomes[batch.id] = await _finish(db, batch.id, None, minimum_fen, now, timezone, render)
    last_end = await store.latest_period_end(db, "scheduled")
    for period in due_periods(trigger, last_end, now):
        outcome = await _run(db, period, "scheduled", minimum_fen, now, timezone, render)
        if outcome.batch_id is not None:
            outcomes[outcome.batch_id] = outcome
    pending = [outcome for outcome in outcomes.values() if not outcome.announced]
    return sorted(pending, key=lambda outcome: (outcome.period.end, outcome.batch_id or 0))


Told = Callable[[Connection, tuple[RiderDue, ...]], Awaitable[None]]
"""Queues the riders' notices inside the transaction that changed the batch."""


async def mark_announced(db: Database, batch_id: int, now: int, tell: Told | None = None) -> bool:
    """Record that the batch's files reached finance; False if already done. `tell` queues
    the riders' "on the way" in the same transaction, so they hear it exactly once."""
    async with db.transaction() as conn:
        if not await store.mark_announced(conn, batch_id, now):
            return False
        if tell is not None:
            await tell(conn, _riders(await store.lines_in(conn, batch_id)))
        return True


async def mark_paid(
    db: Database, batch_id: int, admin_id: int, now: int, tell: Told | None = None
) -> PaidOutcome:
    """exported -> paid, once; `admin_id` is the admin's Telegram id. `tell` queues the
    riders' "paid" in the same transaction."""
    paid: tuple[RiderDue, ...] = ()
    async with db.transaction() as conn:
        marked = await store.mark_paid(conn, batch_id, admin_id, now)
        if marked:
            paid = _riders(await store.lines_in(conn, batch_id))
            if tell is not None:
                await tell(conn, paid)
    batch = await store.batch_by_id(db, batch_id)
    if batch is None:
        return PaidOutcome(marked=False, status=None, period_key=None, paid=())
    return PaidOutcome(
        marked=marked,
        status=batch.status,
        period_key=batch.period_key,
        paid=paid,
        paid_by=batch.paid_by,
        paid_at=batch.paid_at,
    )


async def stored_outcome(db: Database, batch_id: int) -> BatchOutcome:
    """An exported batch as stored (its files as sent, never re-rendered)."""
    return await _finish(db, batch_id, (), 0, 0, UTC, finance_file.render)


async def _run(
    db: Database,
    period: Period,
    kind: str,
    minimum_fen: int,
    now: int,
    timezone: tzinfo,
    render: finance_file.Renderer,
) -> BatchOutcome:
    """Step 1 in one transaction (unless the batch exists), then step 2."""
    async with db.transaction() as conn:
        existing = await store.batch_by_key(conn, period.key)
        if existing is not None:
            batch_id, missing = existing.id, None
        else:
            await store.stage_due(conn, period_end=period.end, minimum_fen=minimum_fen)
            missing = tuple(await store.staged_missing_payees(conn))
            if kind == "adhoc" and await store.staged_payable(conn) == 0:
                await store.drop_stage(conn)
                return BatchOutcome(period, kind, None, None, 0, (), missing, None, False)
            batch_id = await store.insert_batch(
                conn,
                period_key=period.key,
                kind=kind,
                period_start=period.start,
                period_end=period.end,
                now=now,
            )
            await store.settle_staged(conn, batch_id=batch_id, now=now)
            await store.drop_stage(conn)
    return await _finish(db, batch_id, missing, minimum_fen, now, timezone, render)


async def _finish(
    db: Database,
    batch_id: int,
    missing: tuple[RiderDue, ...] | None,
    minimum_fen: int,
    now: int,
    timezone: tzinfo,
    render: finance_file.Renderer,
) -> BatchOutcome:
    """Step 2 if the batch is still open; then the outcome from what is stored."""
    batch = await _batch(db, batch_id)
    paid = tuple(await store.paid_riders(db, batch_id))
    rendered: finance_file.RenderedFiles | None = None
    if batch.status == "open":
        if missing is None:
            missing = await _missing_payees(db, batch.period_end, minimum_fen)
        rendered = await _render(db, batch, missing, timezone, render)
        async with db.transaction() as conn:
            exported = await store.export(
                conn,
                batch_id=batch.id,
                xlsx=rendered.xlsx,
                csv=rendered.csv,
                sha256=hashlib.sha256(rendered.xlsx).hexdigest(),
                now=now,
            )
        if not exported:  # another run exported it first: what it stored is what finance gets
            rendered = None
        batch = await _batch(db, batch_id)
    announced = batch.announced_at is not None
    if announced:
        missing = ()
    elif missing is None:
        missing = await _missing_payees(db, batch.period_end, minimum_fen)
    return BatchOutcome(
        period=Period(batch.period_key, batch.period_start, batch.period_end),
        kind=batch.kind,
        batch_id=batch.id,
        status=batch.status,
        total_fen=batch.total_fen,
        paid=paid,
        missing_payee=missing,
        files=await _files(db, batch, rendered),
        announced=announced,
    )


async def _render(
    db: Database,
    batch: store.BatchRecord,
    missing: tuple[RiderDue, ...],
    timezone: tzinfo,
    render: finance_file.Renderer,
) -> finance_file.RenderedFiles:
    """The finance files, rendered off the event loop (the bot keeps answering) from the
    stored lines, streamed a page at a time: 100,000 lines are never in memory at once."""
    async with db.transaction() as conn:
        changed = await store.payee_changed_at(conn, batch.id)
    pages = store.line_pages(db, batch.id)
    statement = finance_file.Statement(
        batch_id=batch.id,
        period_key=batch.period_key,
        period_start=batch.period_start,
        period_end=batch.period_end,
        created_at=batch.created_at,
        lines=_streamed(pages, changed, asyncio.get_running_loop()),
        held_back=[
            finance_file.HeldBack(due.rider_id, due.telegram_id, due.amount_fen) for due in missing
        ],
    )
    try:
        return await asyncio.to_thread(render, statement, timezone)
    finally:
        await pages.aclose()


def _streamed(
    pages: AsyncGenerator[list[store.LineRecord], None],
    changed: dict[int, int],
    loop: asyncio.AbstractEventLoop,
) -> Iterator[finance_file.StatementLine]:
    """In the rendering thread: the statement's lines, each page read by the event loop."""
    while (page := asyncio.run_coroutine_threadsafe(_next_page(pages), loop).result()) is not None:
        for line in page:
            yield finance_file.StatementLine(
                rider_id=line.rider_id,
                telegram_id=line.telegram_id,
                real_name=line.payee_name,
                account=line.payee_account,
                amount_fen=line.amount_fen,
                report_refs=line.report_refs,
                details_changed_at=changed.get(line.rider_id),
            )


async def _next_page(
    pages: AsyncGenerator[list[store.LineRecord], None],
) -> list[store.LineRecord] | None:
    return await anext(pages, None)


async def _files(
    db: Database, batch: store.BatchRecord, rendered: finance_file.RenderedFiles | None
) -> BatchFiles:
    """The batch's files: those this run just stored (the same bytes, not read back: a second
    copy of 30 MB at 100,000 lines), else those stored before."""
    stored = (rendered.xlsx, rendered.csv) if rendered else await store.files(db, batch.id)
    assert stored is not None  # exported: the CHECK constraint guarantees files and sha256
    assert batch.file_sha256 is not None
    return BatchFiles(
        xlsx_name=f"payout-{batch.period_key}.xlsx",
        xlsx=stored[0],
        csv_name=f"payout-{batch.period_key}.csv",
        csv=stored[1],
        sha256=batch.file_sha256,
    )


async def _batch(db: Database, batch_id: int) -> store.BatchRecord:
    batch = await store.batch_by_id(db, batch_id)
    if batch is None:
        raise LookupError(f"payout batch {batch_id} does not exist")
    return batch


async def _missing_payees(db: Database, period_end: int, minimum_fen: int) -> tuple[RiderDue, ...]:
    """Riders a batch ending at `period_end` could not pay for lack of payout details."""
    async with db.transaction() as conn:
        await store.stage_due(conn, period_end=period_end, minimum_fen=minimum_fen)
        missing = await store.staged_missing_payees(conn)
        await store.drop_stage(conn)
    return tuple(missing)


def _riders(lines: list[store.LineRecord]) -> tuple[RiderDue, ...]:
    return tuple(RiderDue(line.rider_id, line.telegram_id, line.amount_fen) for line in lines)
