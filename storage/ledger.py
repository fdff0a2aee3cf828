"""SQL for the money ledger (append-only entries in fen and points) and riders' payees.

Functions taking an `Connection` run inside the caller's `Database.transaction()`
(or, for the audit's reads, its `Database.snapshot()`); functions taking the `Database` are
reads outside any transaction (or open their own).
"""

from __future__ import annotations

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
    """Every rider's balance, computed exactly as `balance` does (for the audit)."""
    rows = await _rows(conn, _BALANCE_SQL.format(where=""))
    return {int(row[0]): _balance(row) for row in rows}


async def unsettled_sums(conn: Connection) -> dict[int, int]:
    """Each rider's rewards and reversals that no batch line has settled yet."""
    rows = await _rows(
        conn,
        "SELECT l.rider_id, SUM(l.amount_fen) FROM ledger AS l"
        " WHERE l.kind <> 'payout'"
        " AND NOT EXISTS (SELECT 1 FROM payout_items AS i WHERE i.ledger_id = l.id)"
        " GROUP BY l.rider_id",
    )
    return {int(row[0]): int(row[1]) for row in rows}


async def recomputed_balances(conn: Connection) -> dict[int, tuple[int, int]]:
    """(decided, paid) per rider from data outside the ledger: the rewards moderators decided
    for the rider's reports that are approved now (not reversed), and the rider's payout
    lines. decided - paid is what the rider's ledger entries must sum to."""
    rows = await _rows(
        conn,
        """
        SELECT rider_id, SUM(decided), SUM(paid) FROM (
            SELECT r.rider_id, d.amount_fen AS decided, 0 AS paid
            FROM reports AS r JOIN decisions AS d ON d.report_id = r.id
            WHERE r.status = 'approved' AND d.action = 'approve'
            UNION ALL
            SELECT rider_id, 0, amount_fen FROM payout_lines
        ) AS amounts
        GROUP BY rider_id
        """,
    )
    return {int(row[0]): (int(row[1]), int(row[2])) for row in rows}


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


async def report_anomalies(conn: Connection) -> list[tuple[str, int, str | None]]:
    """(problem, report id, reference) for every report whose money disagrees with its status.

    Problems: credited_twice, wrong_rider, approved_without_reward, reversed_without_reversal,
    reward_not_approved, reversal_not_reversed, reversal_without_reward, reversal_mismatch,
    reward_not_decided (the reward is not the amount of the report's approval decision).
    """
    rows = await _rows(
        conn,
        """
        SELECT 'credited_twice', l.report_id, r.reference FROM ledger AS l
            LEFT JOIN reports AS r ON r.id = l.report_id
        WHERE l.kind = 'reward' GROUP BY l.report_id, r.reference HAVING COUNT(*) > 1
        UNION ALL
        SELECT 'wrong_rider', r.id, r.reference FROM ledger AS l JOIN reports AS r
            ON r.id = l.report_id WHERE l.rider_id <> r.rider_id
        UNION ALL
        SELECT 'approved_without_reward', r.id, r.reference FROM reports AS r
        WHERE r.status IN ('approved', 'reversed') AND NOT EXISTS (
            SELECT 1 FROM ledger AS l WHERE l.idempotency_key = 'reward:' || r.id)
        UNION ALL
        SELECT 'reversed_without_reversal', r.id, r.reference FROM reports AS r
        WHERE r.status = 'reversed' AND NOT EXISTS (
            SELECT 1 FROM ledger AS l WHERE l.idempotency_key = 'reversal:' || r.id)
        UNION ALL
        SELECT 'reward_not_approved', r.id, r.reference FROM ledger AS l JOIN reports AS r
            ON r.id = l.report_id
        WHERE l.kind = 'reward' AND r.status NOT IN ('approved', 'reversed')
        UNION ALL
        SELECT 'reversal_not_reversed', r.id, r.reference FROM ledger AS l JOIN reports AS r
            ON r.id = l.report_id
        WHERE l.kind = 'reversal' AND r.status <> 'reversed'
        UNION ALL
        SELECT 'reversal_without_reward', v.report_id, r.reference FROM ledger AS v
            LEFT JOIN reports AS r ON r.id = v.report_id
        WHERE v.kind = 'reversal' AND NOT EXISTS (
            SELECT 1 FROM ledger AS l WHERE l.idempotency_key = 'reward:' || v.report_id)
        UNION ALL
        SELECT 'reversal_mismatch', v.report_id, r.reference FROM ledger AS v JOIN ledger AS w
            ON w.idempotency_key = 'reward:' || v.report_id
            LEFT JOIN reports AS r ON r.id = v.report_id
        WHERE v.kind = 'reversal' AND (v.amount_fen <> -w.amount_fen OR v.points <> -w.points)
        UNION ALL
        SELECT 'reward_not_decided', r.id, r.reference FROM ledger AS l JOIN reports AS r
            ON r.id = l.report_id
        WHERE l.kind = 'reward' AND l.amount_fen IS DISTINCT FROM (
            SELECT SUM(d.amount_fen) FROM decisions AS d
            WHERE d.report_id = l.report_id AND d.action = 'approve')
        """,
    )
    return [(str(row[0]), int(row[1]), row[2]) for row in rows]


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
