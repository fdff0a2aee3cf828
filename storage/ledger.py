"""SQL for the money ledger (append-only entries in fen and points) and riders' payees.

Functions taking an `Connection` run inside the caller's `Database.transaction()`
(or, for the audit's reads, its `Database.snapshot()`); functions taking the `Database` are
reads outside any transaction (or open their own).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from storage.db import Connection, Database, Row, guarded_update


@dataclass(frozen=True)
class Balance:
    """A rider's money and points; unpaid + on the way + paid = earned - reversed."""

    points: int
    unpaid_fen: int  # the sum of all entries; negative after a paid reward is reversed
    on_the_way_fen: int  # in batches not yet marked paid
    paid_fen: int  # in batches marked paid
    earned_fen: int  # all rewards ever credited
    reversed_fen: int  # all rewards taken back

    @property
    def points_left(self) -> int:
        """The points a rider has, never below zero in any view."""
        return max(self.points, 0)

    @property
    def points_owed(self) -> int:
        """Points a reversal took back after they were spent: the reversal books them in full,
        and the next points the rider earns settle them before any can be spent."""
        return max(-self.points, 0)


@dataclass(frozen=True)
class Entry:
    """One ledger entry with what it refers to: a report, or the batch that paid it out."""

    id: int
    kind: str  # reward | reversal | payout
    amount_fen: int
    points: int
    created_at: int
    report_id: int | None
    report_reference: str | None
    memo: str | None
    batch_id: int | None
    batch_key: str | None
    batch_status: str | None


@dataclass(frozen=True)
class Reward:
    """A report's reward entry, and the batch that settled it (None while unpaid)."""

    report_id: int
    reference: str | None
    rider_id: int
    amount_fen: int
    points: int
    settled_by_batch: int | None


@dataclass(frozen=True)
class Payee:
    """Who a rider's money goes to: the real name and the WeChat/Alipay account or phone."""

    rider_id: int
    real_name: str
    account: str
    updated_at: int


# The ledger refuses an existing idempotency key outright (so that no REPLACE can swap an
# entry; see migration 0007), so idempotent inserts check for the key first.
_UNLESS_KEY_EXISTS = "WHERE NOT EXISTS (SELECT 1 FROM ledger WHERE idempotency_key = ?)"


async def report_rider(conn: Connection, report_id: int) -> int | None:
    """The rider who sent the report, or None if there is no such report."""
    async with conn.execute("SELECT rider_id FROM reports WHERE id = ?", (report_id,)) as cur:
        row = await cur.fetchone()
    return None if row is None else int(row[0])


async def insert_reward(
    conn: Connection,
    *,
    report_id: int,
    rider_id: int,
    amount_fen: int,
    points: int,
    now: int,
) -> bool:
    """Add the `reward:<report>` entry unless it exists; True if this call added it."""
    cursor = await conn.execute(
        "INSERT INTO ledger (rider_id, kind, amount_fen, points, report_id, idempotency_key,"
        " created_at) SELECT ?, 'reward', ?, ?, ?, 'reward:' || ?, ?"
        f" {_UNLESS_KEY_EXISTS}",
        (rider_id, amount_fen, points, report_id, report_id, now, f"reward:{report_id}"),
    )
    return cursor.rowcount == 1


async def reward(conn: Connection, report_id: int) -> Reward | None:
    """The report's reward entry, if it was ever credited."""
    async with conn.execute(
        "SELECT l.report_id, r.reference, l.rider_id, l.amount_fen, l.points, i.batch_id"
        " FROM ledger AS l JOIN reports AS r ON r.id = l.report_id"
        " LEFT JOIN payout_items AS i ON i.ledger_id = l.id"
        " WHERE l.idempotency_key = 'reward:' || ?",
        (report_id,),
    ) as cur:
        row = await cur.fetchone()
    if row is None:
        return None
    return Reward(
        report_id=row[0],
        reference=row[1],
        rider_id=row[2],
        amount_fen=row[3],
        points=row[4],
        settled_by_batch=row[5],
    )


async def reversal_memo(conn: Connection, report_id: int) -> str | None:
    """The reason recorded with the report's reversal, or None if it was never reversed."""
    async with conn.execute(
        "SELECT COALESCE(memo, '') FROM ledger WHERE idempotency_key = 'reversal:' || ?",
        (report_id,),
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else str(row[0])


async def insert_reversal(conn: Connection, *, reward: Reward, memo: str, now: int) -> bool:
    """Add `reversal:<report>` cancelling the reward's money and points; True if added."""
    cursor = await conn.execute(
        "INSERT INTO ledger (rider_id, kind, amount_fen, points, report_id, idempotency_key,"
        " memo, created_at) SELECT ?, 'reversal', ?, ?, ?, 'reversal:' || ?, ?, ?"
        f" {_UNLESS_KEY_EXISTS}",
        (
            reward.rider_id,
            -reward.amount_fen,
            -reward.points,
            reward.report_id,
            reward.report_id,
            memo,
            now,
            f"reversal:{reward.report_id}",
        ),
    )
    return cursor.rowcount == 1


async def mark_report_reversed(conn: Connection, report_id: int, now: int) -> bool:
    """Move the report from approved to reversed; False if it was not approved."""
    changed = {"updated_at": now}
    return await guarded_update(
        conn, "reports", {"id": report_id}, "status", "approved", "reversed", changed
    )


_BALANCE_SQL = """
SELECT l.rider_id,
       COALESCE(SUM(l.points), 0),
       COALESCE(SUM(l.amount_fen), 0),
       -COALESCE(SUM(CASE WHEN l.kind = 'payout' AND b.status <> 'paid'
                     THEN l.amount_fen END), 0),
       -COALESCE(SUM(CASE WHEN l.kind = 'payout' AND b.status = 'paid' THEN l.amount_fen END), 0),
       COALESCE(SUM(CASE WHEN l.kind = 'reward' THEN l.amount_fen END), 0),
       -COALESCE(SUM(CASE WHEN l.kind = 'reversal' THEN l.amount_fen END), 0)
FROM ledger AS l LEFT JOIN payout_batches AS b ON b.id = l.batch_id
{where}
GROUP BY l.rider_id
"""


def _balance(row: Row) -> Balance:
    return Balance(
        points=row[1],
        unpaid_fen=row[2],
        on_the_way_fen=row[3],
        paid_fen=row[4],
        earned_fen=row[5],
        reversed_fen=row[6],
    )


async def balance(db: Database, rider_id: int) -> Balance:
    """The rider's balance: sums over their entries (all zero for a rider without any)."""
    row = await db.fetchone(_BALANCE_SQL.format(where="WHERE l.rider_id = ?"), (rider_id,))
    return Balance(0, 0, 0, 0, 0, 0) if row is None else _balance(row)


async def _rows(conn: Connection, sql: str, params: tuple[object, ...] = ()) -> list[Row]:
    async with conn.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


async def balances(conn: Connection) -> dict[int, Balance]:
    """Every rider's balance, computed exactly as `balance` does (a copy's must be equal)."""
    rows = await _rows(conn, _BALANCE_SQL.format(where=""))
    return {int(row[0]): _balance(row) for row in rows}


@dataclass(frozen=True)
class RiderCheck:
    """A rider's ledger sums beside the same money recomputed without the ledger."""

    rider_id: int
    balance: Balance
    unsettled_fen: int  # their rewards and reversals that no batch line has settled yet
    decided_fen: int  # the rewards moderators decided for their reports still approved
    lines_fen: int  # their payout lines; decided - lines is what their entries must sum to


_RIDER_CHECKS_SQL = """
SELECT rider_id, SUM(points), SUM(entries), SUM(on_the_way), SUM(paid), SUM(earned),
    SUM(taken_back), SUM(unsettled), SUM(decided), SUM(lines)
FROM (
    SELECT l.rider_id, l.points, l.amount_fen AS entries,
        CASE WHEN l.kind = 'payout' AND b.status <> 'paid' THEN -l.amount_fen ELSE 0 END
            AS on_the_way,
        CASE WHEN l.kind = 'payout' AND b.status = 'paid' THEN -l.amount_fen ELSE 0 END
            AS paid,
        CASE WHEN l.kind = 'reward' THEN l.amount_fen ELSE 0 END AS earned,
        CASE WHEN l.kind = 'reversal' THEN -l.amount_fen ELSE 0 END AS taken_back,
        CASE WHEN l.kind <> 'payout' AND i.ledger_id IS NULL THEN l.amount_fen ELSE 0 END
            AS unsettled,
        0 AS decided, 0 AS lines
    FROM ledger AS l
    LEFT JOIN payout_batches AS b ON b.id = l.batch_id
    LEFT JOIN payout_items AS i ON i.ledger_id = l.id
    UNION ALL
    SELECT r.rider_id, 0, 0, 0, 0, 0, 0, 0, d.amount_fen, 0
    FROM reports AS r JOIN decisions AS d ON d.report_id = r.id
    WHERE r.status = 'approved' AND d.action = 'approve'
    UNION ALL
    SELECT rider_id, 0, 0, 0, 0, 0, 0, 0, 0, amount_fen FROM payout_lines
) AS amounts
GROUP BY rider_id
HAVING SUM(decided) - SUM(lines) <> SUM(entries)
    OR SUM(unsettled) <> SUM(entries)
    OR SUM(entries) + SUM(on_the_way) + SUM(paid) <> SUM(earned) - SUM(taken_back)
    OR SUM(points) < 0
ORDER BY rider_id
"""


async def rider_checks(conn: Connection) -> list[RiderCheck]:
    """The riders whose money does not add up, or whose points are below zero (the audit).

    One pass over the ledger, the approved reports' decisions and the payout lines, summed
    per rider in the database: a rider's balance (as `balance` computes it), their rewards
    and reversals no batch settled, and their money recomputed without the ledger. Only the
    riders failing a check come back, so a million entries that add up cost no Python.
    """
    return [
        RiderCheck(
            rider_id=int(row[0]),
            balance=Balance(*(int(value) for value in row[1:7])),
            unsettled_fen=int(row[7]),
            decided_fen=int(row[8]),
            lines_fen=int(row[9]),
        )
        for row in await _rows(conn, _RIDER_CHECKS_SQL)
    ]


async def history(db: Database, rider_id: int, limit: int) -> list[Entry]:
    """The rider's latest entries, newest first."""
    rows = await db.fetchall(
        "SELECT l.id, l.kind, l.amount_fen, l.points, l.created_at, l.report_id, r.reference,"
        " l.memo, l.batch_id, b.period_key, b.status"
        " FROM ledger AS l"
        " LEFT JOIN reports AS r ON r.id = l.report_id"
        " LEFT JOIN payout_batches AS b ON b.id = l.batch_id"
        " WHERE l.rider_id = ? ORDER BY l.created_at DESC, l.id DESC LIMIT ?",
        (rider_id, limit),
    )
    return [Entry(*row) for row in rows]


REPORT_PROBLEMS = (
    "credited_twice",
    "wrong_rider",
    "approved_without_reward",
    "reversed_without_reversal",
    "reward_not_approved",
    "reversal_not_reversed",
    "reversal_without_reward",
    "reversal_mismatch",
    "reward_not_decided",
)
"""What `report_anomalies` finds, in the order it lists them."""

# Per report: credited twice (a GROUP BY over the rewards, then the few found are named),
# approved or reversed without the entry its status needs (an anti-join on the keys).
_REPORT_PROBLEMS_SQL = """
SELECT 'credited_twice', twice.report_id,
    (SELECT r.reference FROM reports AS r WHERE r.id = twice.report_id)
FROM (
    SELECT report_id FROM ledger WHERE kind = 'reward'
    GROUP BY report_id HAVING COUNT(*) > 1
) AS twice
UNION ALL
SELECT 'approved_without_reward', r.id, r.reference FROM reports AS r
WHERE r.status IN ('approved', 'reversed') AND NOT EXISTS (
    SELECT 1 FROM ledger AS l WHERE l.idempotency_key = 'reward:' || r.id)
UNION ALL
SELECT 'reversed_without_reversal', r.id, r.reference FROM reports AS r
WHERE r.status = 'reversed' AND NOT EXISTS (
    SELECT 1 FROM ledger AS l WHERE l.idempotency_key = 'reversal:' || r.id)
"""

# Per entry that names a report: one pass over them, each beside its report and the amount
# the report's approval decided; then the reversals alone, each beside the reward it cancels
# (looking that up for every entry doubled the pass). Only entries with a problem come back,
# a flag per problem, in the order of ENTRY_PROBLEMS.
_ENTRY_PROBLEMS_SQL = """
SELECT report_id, reference, wrong_rider, reward_not_approved, reversal_not_reversed,
    FALSE, FALSE, reward_not_decided
FROM (
    SELECT l.report_id, r.reference,
        (l.rider_id <> r.rider_id) AS wrong_rider,
        (l.kind = 'reward' AND r.status NOT IN ('approved', 'reversed')) AS reward_not_approved,
        (l.kind = 'reversal' AND r.status <> 'reversed') AS reversal_not_reversed,
        (l.kind = 'reward' AND r.id IS NOT NULL AND l.amount_fen IS DISTINCT FROM d.fen)
            AS reward_not_decided
    FROM ledger AS l
    LEFT JOIN reports AS r ON r.id = l.report_id
    LEFT JOIN (
        SELECT report_id, SUM(amount_fen) AS fen FROM decisions
        WHERE action = 'approve' GROUP BY report_id
    ) AS d ON d.report_id = l.report_id
    WHERE l.report_id IS NOT NULL
) AS entries
WHERE wrong_rider OR reward_not_approved OR reversal_not_reversed OR reward_not_decided
UNION ALL
SELECT v.report_id, r.reference, FALSE, FALSE, FALSE,
    w.id IS NULL, (v.amount_fen <> -w.amount_fen OR v.points <> -w.points), FALSE
FROM ledger AS v
LEFT JOIN ledger AS w ON w.idempotency_key = 'reward:' || v.report_id
LEFT JOIN reports AS r ON r.id = v.report_id
WHERE v.kind = 'reversal' AND v.report_id IS NOT NULL
    AND (w.id IS NULL OR v.amount_fen <> -w.amount_fen OR v.points <> -w.points)
"""
ENTRY_PROBLEMS = (
    "wrong_rider",
    "reward_not_approved",
    "reversal_not_reversed",
    "reversal_without_reward",
    "reversal_mismatch",
    "reward_not_decided",
)


async def report_anomalies(
    status_view: Connection, entries_view: Connection
) -> list[tuple[str, int, str | None]]:
    """(problem, report id, reference) for every report whose money disagrees with its status,
    ordered as `REPORT_PROBLEMS`, then by report.

    Problems: credited_twice, wrong_rider, approved_without_reward, reversed_without_reversal,
    reward_not_approved, reversal_not_reversed, reversal_without_reward, reversal_mismatch,
    reward_not_decided (the reward is not the amount of the report's approval decision).
    The per-report and the per-entry passes run side by side, one on each connection: give
    two snapshots of one state (`Database.snapshots`), or the same connection twice.
    """

    async def per_entry() -> list[tuple[str, int, str | None]]:
        return [
            (problem, int(row[0]), row[1])
            for row in await _rows(entries_view, _ENTRY_PROBLEMS_SQL)
            for problem, flag in zip(ENTRY_PROBLEMS, row[2:], strict=True)
            if flag
        ]

    async def per_report() -> list[tuple[str, int, str | None]]:
        return [
            (str(row[0]), int(row[1]), row[2])
            for row in await _rows(status_view, _REPORT_PROBLEMS_SQL)
        ]

    if status_view is entries_view:
        found = [*await per_report(), *await per_entry()]
    else:
        by_report, by_entry = await asyncio.gather(per_report(), per_entry())
        found = [*by_report, *by_entry]
    return sorted(found, key=lambda found: (REPORT_PROBLEMS.index(found[0]), found[1]))


async def save_payee(db: Database, payee: Payee) -> None:
    """Insert or replace the rider's payee details."""
    async with db.transaction() as conn:
        await store_payee(conn, payee)


async def store_payee(conn: Connection, payee: Payee) -> None:
    """`save_payee` inside the caller's transaction; the change is recorded with its time."""
    await conn.execute(
        "INSERT INTO payees (rider_id, real_name, account, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (rider_id) DO UPDATE SET real_name = excluded.real_name,"
        " account = excluded.account, updated_at = excluded.updated_at",
        (payee.rider_id, payee.real_name, payee.account, payee.updated_at),
    )
    await conn.execute(
        "INSERT INTO payee_changes (rider_id, changed_at) VALUES (?, ?)",
        (payee.rider_id, payee.updated_at),
    )


async def propose_payee(db: Database, payee: Payee) -> int:
    """Keep details waiting for the rider's Confirm (replacing older ones); the new token."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM payee_pending WHERE rider_id = ?", (payee.rider_id,))
        cursor = await conn.execute(
            "INSERT INTO payee_pending (rider_id, real_name, account, created_at)"
            " VALUES (?, ?, ?, ?)",
            (payee.rider_id, payee.real_name, payee.account, payee.updated_at),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid


async def open_payee_step(
    db: Database, rider_id: int, step: str, real_name: str | None, now: int
) -> None:
    """The rider's next text answers `step` (the name, then the account)."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM payee_steps WHERE rider_id = ?", (rider_id,))
        await conn.execute(
            "INSERT INTO payee_steps (rider_id, step, real_name, opened_at) VALUES (?, ?, ?, ?)",
            (rider_id, step, real_name, now),
        )


async def payee_step(db: Database, rider_id: int, since: int) -> tuple[str, str | None] | None:
    """(step, name given) of the rider's open step, opened at `since` or later."""
    row = await db.fetchone(
        "SELECT step, real_name FROM payee_steps WHERE rider_id = ? AND opened_at >= ?",
        (rider_id, since),
    )
    return None if row is None else (str(row[0]), row[1])


async def close_payee_step(db: Database, rider_id: int) -> bool:
    async with db.transaction() as conn:
        cursor = await conn.execute("DELETE FROM payee_steps WHERE rider_id = ?", (rider_id,))
        return cursor.rowcount == 1


async def take_proposed_payee(
    conn: Connection, rider_id: int, token: int
) -> tuple[str, str] | None:
    """Remove and return (name, account) waiting under `token` for this rider, if any."""
    async with conn.execute(
        "DELETE FROM payee_pending WHERE id = ? AND rider_id = ? RETURNING real_name, account",
        (token, rider_id),
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


async def payee(db: Database, rider_id: int) -> Payee | None:
    row = await db.fetchone(
        "SELECT rider_id, real_name, account, updated_at FROM payees WHERE rider_id = ?",
        (rider_id,),
    )
    return None if row is None else Payee(*row)


async def has_payee(conn: Connection, rider_id: int) -> bool:
    """True when the rider's payout details are on file (inside a transaction)."""
    sql = "SELECT 1 FROM payees WHERE rider_id = ?"
    async with conn.execute(sql, (rider_id,)) as cur:
        return await cur.fetchone() is not None
