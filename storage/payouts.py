"""SQL for payout batches: what is due, the lines that pay it, the files, the one-way status.

Building a batch happens inside one transaction (the caller's): `stage_due` computes the
rewards and reversals a batch settles into temporary tables, `insert_batch` and
`settle_staged` write the batch, its lines, one `payout:<batch>:<rider>` ledger entry per
line and the `payout_items` linking each settled entry to its line; `drop_stage` cleans up.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass

from storage.db import Connection, Database, dialect, guarded_update

REVERSAL_MARK = "(冲正)"
"""Appended to a reference in `report_refs` when a reversal of an already-paid report is
netted against a line (冲正: an accounting reversal)."""


@dataclass(frozen=True)
class BatchRecord:
    """A payout batch without its file blobs."""

    id: int
    period_key: str
    kind: str  # scheduled | adhoc
    period_start: int
    period_end: int
    status: str  # open | exported | paid
    total_fen: int
    line_count: int
    file_sha256: str | None
    created_at: int
    exported_at: int | None
    announced_at: int | None
    paid_at: int | None
    paid_by: int | None


@dataclass(frozen=True, slots=True)  # a batch holds 100,000 of them: no __dict__ each
class LineRecord:
    """One rider's line in a batch, with their Telegram id (None once erased)."""

    rider_id: int
    telegram_id: int | None
    amount_fen: int
    report_refs: str
    payee_name: str
    payee_account: str


@dataclass(frozen=True, slots=True)
class RiderDue:
    """A rider and an amount: due, paid in a batch, or about to be told."""

    rider_id: int
    telegram_id: int | None
    amount_fen: int


@dataclass(frozen=True)
class BatchCheck:
    """A batch's stored figures beside the same figures recomputed from its parts."""

    batch: BatchRecord
    lines_fen: int
    lines: int
    payout_entries_fen: int  # the sum of its ledger entries, negated
    lines_without_entry: int  # lines whose payout entry is missing or differs
    entries_without_line: int
    lines_not_matching_items: int  # lines whose amount is not the sum of what they settle


_BATCH_COLUMNS = (
    "id, period_key, kind, period_start, period_end, status, total_fen, line_count,"
    " file_sha256, created_at, exported_at, announced_at, paid_at, paid_by"
)


async def batch_by_key(conn: Connection, period_key: str) -> BatchRecord | None:
    async with conn.execute(
        f"SELECT {_BATCH_COLUMNS} FROM payout_batches WHERE period_key = ?",  # noqa: S608
        (period_key,),
    ) as cur:
        row = await cur.fetchone()
    return None if row is None else BatchRecord(*row)


async def batch_by_id(db: Database, batch_id: int) -> BatchRecord | None:
    row = await db.fetchone(
        f"SELECT {_BATCH_COLUMNS} FROM payout_batches WHERE id = ?",  # noqa: S608
        (batch_id,),
    )
    return None if row is None else BatchRecord(*row)


async def batches(db: Database) -> list[BatchRecord]:
    """Every batch, oldest period first."""
    rows = await db.fetchall(
        f"SELECT {_BATCH_COLUMNS} FROM payout_batches ORDER BY period_end, id"  # noqa: S608
    )
    return [BatchRecord(*row) for row in rows]


async def unfinished_batches(db: Database) -> list[BatchRecord]:
    """Batches still open (interrupted) or exported but not yet announced, oldest first."""
    rows = await db.fetchall(
        f"SELECT {_BATCH_COLUMNS} FROM payout_batches"  # noqa: S608
        " WHERE status = 'open' OR announced_at IS NULL ORDER BY period_end, id"
    )
    return [BatchRecord(*row) for row in rows]


async def latest_period_end(db: Database, kind: str | None = None) -> int | None:
    """The end of the latest batch (of `kind`, if given), None when there is none."""
    row = await db.fetchone(
        "SELECT MAX(period_end) FROM payout_batches WHERE CAST(? AS TEXT) IS NULL OR kind = ?",
        (kind, kind),
    )
    return None if row is None or row[0] is None else int(row[0])


async def first_entry_time(db: Database) -> int | None:
    row = await db.fetchone("SELECT MIN(created_at) FROM ledger")
    return None if row is None or row[0] is None else int(row[0])


async def stage_due(conn: Connection, *, period_end: int, minimum_fen: int) -> None:
    """Fill temp tables with what a batch ending at `period_end` would settle.

    `payout_due`: every unsettled reward credited before `period_end`, and every
    unsettled reversal of such a reward (a reversal is netted as soon as it exists, so a
    batch never pays a reward already taken back). `payout_due_riders`: each rider whose
    sum is positive and at least `minimum_fen`, and whether they have payee details.
    """
    await drop_stage(conn)
    await conn.execute(
        """
        CREATE TEMP TABLE payout_due AS
        SELECT l.id AS ledger_id, l.rider_id, l.kind, l.amount_fen, l.report_id
        FROM ledger AS l
        WHERE l.kind = 'reward' AND l.created_at < :end
            AND NOT EXISTS (SELECT 1 FROM payout_items AS i WHERE i.ledger_id = l.id)
        UNION ALL
        SELECT v.id, v.rider_id, v.kind, v.amount_fen, v.report_id
        FROM ledger AS v JOIN ledger AS w ON w.idempotency_key = 'reward:' || v.report_id
        WHERE v.kind = 'reversal' AND w.created_at < :end
            AND NOT EXISTS (SELECT 1 FROM payout_items AS i WHERE i.ledger_id = v.id)
        """,
        {"end": period_end},
    )
    await conn.execute(
        """
        CREATE TEMP TABLE payout_due_riders AS
        SELECT d.rider_id, SUM(d.amount_fen) AS amount_fen,
            EXISTS (SELECT 1 FROM payees AS p WHERE p.rider_id = d.rider_id) AS has_payee
        FROM payout_due AS d
        GROUP BY d.rider_id
        HAVING SUM(d.amount_fen) > 0 AND SUM(d.amount_fen) >= :minimum
        """,
        {"minimum": minimum_fen},
    )


async def drop_stage(conn: Connection) -> None:
    await conn.execute("DROP TABLE IF EXISTS payout_due")
    await conn.execute("DROP TABLE IF EXISTS payout_due_riders")


async def staged_payable(conn: Connection) -> int:
    """How many staged riders would get a line (they are due and have payee details)."""
    async with conn.execute("SELECT COUNT(*) FROM payout_due_riders WHERE has_payee") as cur:
        row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def staged_missing_payees(conn: Connection) -> list[RiderDue]:
    """Staged riders who are due but have no payee details, so cannot be paid."""
    async with conn.execute(
        "SELECT d.rider_id, u.telegram_id, d.amount_fen FROM payout_due_riders AS d"
        " JOIN users AS u ON u.id = d.rider_id WHERE NOT d.has_payee ORDER BY d.rider_id"
    ) as cur:
        return [RiderDue(*row) async for row in cur]


async def insert_batch(
    conn: Connection,
    *,
    period_key: str,
    kind: str,
    period_start: int,
    period_end: int,
    now: int,
) -> int:
    cursor = await conn.execute(
        "INSERT INTO payout_batches (period_key, kind, period_start, period_end, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (period_key, kind, period_start, period_end, now),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


async def settle_staged(conn: Connection, *, batch_id: int, now: int) -> None:
    """Write the batch's lines, their payout entries and items, and its totals."""
    # A reward's reversal, if any, is joined (LEFT JOIN ledger AS v), so that PostgreSQL
    # hashes the few reversals instead of looking one up for each reward, a million times
    # in a first batch; `v.kind` is implied by the key (ledger's CHECK) and narrows the hash.
    await conn.execute(
        f"""
        INSERT INTO payout_lines (batch_id, rider_id, amount_fen, report_refs, payee_name,
            payee_account)
        SELECT :batch, d.rider_id, d.amount_fen, COALESCE(refs.refs, ''), p.real_name, p.account
        FROM payout_due_riders AS d
        JOIN payees AS p ON p.rider_id = d.rider_id
        LEFT JOIN (
            SELECT rider_id, {_joined_refs(conn)} AS refs FROM (
                SELECT e.rider_id, e.ledger_id, CASE
                    WHEN e.kind = 'reward' AND v.id IS NULL
                    THEN r.reference
                    WHEN e.kind = 'reversal' AND EXISTS (
                        SELECT 1 FROM ledger AS w JOIN payout_items AS i ON i.ledger_id = w.id
                        WHERE w.idempotency_key = 'reward:' || e.report_id)
                    THEN r.reference || :mark
                END AS ref
                FROM payout_due AS e JOIN reports AS r ON r.id = e.report_id
                LEFT JOIN ledger AS v ON e.kind = 'reward' AND v.kind = 'reversal'
                    AND v.idempotency_key = 'reversal:' || e.report_id
                ORDER BY e.rider_id, e.ledger_id
            ) AS due_refs
            GROUP BY rider_id
        ) AS refs ON refs.rider_id = d.rider_id
        ORDER BY d.rider_id
        """,  # noqa: S608
        {"batch": batch_id, "mark": REVERSAL_MARK},
    )
    await conn.execute(
        "INSERT INTO ledger (rider_id, kind, amount_fen, points, batch_id, idempotency_key,"
        " created_at)"
        " SELECT rider_id, 'payout', -amount_fen, 0, batch_id,"
        " 'payout:' || batch_id || ':' || rider_id, :now"
        " FROM payout_lines WHERE batch_id = :batch ORDER BY id",
        {"batch": batch_id, "now": now},
    )
    await conn.execute(
        "INSERT INTO payout_items (ledger_id, batch_id, rider_id)"
        " SELECT e.ledger_id, l.batch_id, l.rider_id FROM payout_due AS e"
        " JOIN payout_lines AS l ON l.batch_id = :batch AND l.rider_id = e.rider_id",
        {"batch": batch_id},
    )
    await conn.execute(
        "UPDATE payout_batches SET"
        " total_fen = (SELECT COALESCE(SUM(amount_fen), 0) FROM payout_lines WHERE batch_id = :b),"
        " line_count = (SELECT COUNT(*) FROM payout_lines WHERE batch_id = :b)"
        " WHERE id = :b",
        {"b": batch_id},
    )


def _joined_refs(conn: Connection) -> str:
    """The aggregate joining a rider's references in ledger order."""
    if dialect(conn) == "postgresql":
        return "string_agg(ref, ',' ORDER BY ledger_id)"
    return "group_concat(ref, ',')"  # in the subquery's order


_LINES_SQL = (
    "SELECT l.rider_id, u.telegram_id, l.amount_fen, l.report_refs, l.payee_name,"
    " l.payee_account FROM payout_lines AS l JOIN users AS u ON u.id = l.rider_id"
    " WHERE l.batch_id = ? ORDER BY l.id"
)


LINES_PAGE = 5_000


async def line_pages(db: Database, batch_id: int) -> AsyncGenerator[list[LineRecord], None]:
    """The batch's lines in the order they were written, LINES_PAGE at a time, read on a
    snapshot: only one page of the database's rows is in memory beside the caller's."""
    after = 0
    async with db.snapshot() as conn:
        while True:
            async with conn.execute(
                "SELECT l.id, l.rider_id, u.telegram_id, l.amount_fen, l.report_refs,"
                " l.payee_name, l.payee_account FROM payout_lines AS l"
                " JOIN users AS u ON u.id = l.rider_id"
                " WHERE l.batch_id = ? AND l.id > ? ORDER BY l.id LIMIT ?",
                (batch_id, after, LINES_PAGE),
            ) as cur:
                rows = list(await cur.fetchall())
            if not rows:
                return
            after = int(rows[-1][0])
            yield [LineRecord(*row[1:]) for row in rows]


async def paid_riders(db: Database, batch_id: int) -> list[RiderDue]:
    """Who a batch pays and how much, in the order of its lines (without the files' text)."""
    rows = await db.fetchall(
        "SELECT l.rider_id, u.telegram_id, l.amount_fen FROM payout_lines AS l"
        " JOIN users AS u ON u.id = l.rider_id WHERE l.batch_id = ? ORDER BY l.id",
        (batch_id,),
    )
    return [RiderDue(*row) for row in rows]


async def lines_in(conn: Connection, batch_id: int) -> list[LineRecord]:
    """The batch's lines in the order they were written, inside the caller's transaction."""
    async with conn.execute(_LINES_SQL, (batch_id,)) as cur:
        return [LineRecord(*row) async for row in cur]


async def export(
    conn: Connection,
    *,
    batch_id: int,
    xlsx: bytes,
    csv: bytes,
    sha256: str,
    now: int,
) -> bool:
    """Store the files and move open -> exported; False if it was not open any more."""
    stored = {"file_xlsx": xlsx, "file_csv": csv, "file_sha256": sha256, "exported_at": now}
    return await guarded_update(
        conn, "payout_batches", {"id": batch_id}, "status", "open", "exported", stored
    )


async def files(db: Database, batch_id: int) -> tuple[bytes, bytes] | None:
    """The stored (xlsx, csv) of an exported batch."""
    row = await db.fetchone(
        "SELECT file_xlsx, file_csv FROM payout_batches WHERE id = ? AND status <> 'open'",
        (batch_id,),
    )
    return None if row is None else (bytes(row[0]), bytes(row[1]))


async def claim(db: Database, batch_id: int, *, now: int, token: str, stale_before: int) -> bool:
    """Claim the announcement of an exported batch; False if it was announced, or another
    live claim holds it. A claim by another process (`token`) is one a dead process left."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE payout_batches SET announcing_at = :now, announcing_by = :token,"
            " announce_attempts = announce_attempts + 1"
            " WHERE id = :id AND status <> 'open' AND announced_at IS NULL"
            " AND (announcing_at IS NULL OR announcing_by IS DISTINCT FROM :token"
            " OR announcing_at < :stale)",
            {"now": now, "token": token, "id": batch_id, "stale": stale_before},
        )
        return cursor.rowcount == 1


async def release(db: Database, batch_id: int, token: str) -> int:
    """Give up our claim (no recipient took the file); the number of attempts so far."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE payout_batches SET announcing_at = NULL, announcing_by = NULL"
            " WHERE id = ? AND announcing_by = ? AND announced_at IS NULL",
            (batch_id, token),
        )
        async with conn.execute(
            "SELECT announce_attempts FROM payout_batches WHERE id = ?", (batch_id,)
        ) as cur:
            row = await cur.fetchone()
    return 0 if row is None else int(row[0])


async def mark_announced(conn: Connection, batch_id: int, now: int) -> bool:
    """Inside the caller's transaction: announced now, unless it already was."""
    cursor = await conn.execute(
        "UPDATE payout_batches SET announced_at = ?, announcing_at = NULL, announcing_by = NULL"
        " WHERE id = ? AND status <> 'open' AND announced_at IS NULL",
        (now, batch_id),
    )
    return cursor.rowcount == 1


async def record_delivery(db: Database, batch_id: int, chat_id: int, now: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO payout_deliveries (batch_id, chat_id, sent_at) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (batch_id, chat_id, now),
        )


async def delivered_to(db: Database, batch_id: int) -> set[int]:
    """The chats that accepted the batch's files."""
    rows = await db.fetchall(
        "SELECT chat_id FROM payout_deliveries WHERE batch_id = ?", (batch_id,)
    )
    return {int(row[0]) for row in rows}


async def mark_paid(conn: Connection, batch_id: int, admin_id: int, now: int) -> bool:
    """Inside the caller's transaction: exported -> paid; False if it was not exported."""
    paid = {"paid_at": now, "paid_by": admin_id}
    return await guarded_update(
        conn, "payout_batches", {"id": batch_id}, "status", "exported", "paid", paid
    )


async def telegram_id_of(conn: Connection, rider_id: int) -> int | None:
    """The rider's Telegram id, None once erased."""
    async with conn.execute("SELECT telegram_id FROM users WHERE id = ?", (rider_id,)) as cur:
        row = await cur.fetchone()
    return None if row is None or row[0] is None else int(row[0])


async def recent_batches(db: Database, limit: int) -> list[BatchRecord]:
    """The latest batches, newest first."""
    rows = await db.fetchall(
        f"SELECT {_BATCH_COLUMNS} FROM payout_batches ORDER BY id DESC LIMIT ?",  # noqa: S608
        (limit,),
    )
    return [BatchRecord(*row) for row in rows]


async def payee_changed_at(conn: Connection, batch_id: int) -> dict[int, int]:
    """Per rider of the batch whose payout details differ from those of their previous
    batch: when they were last changed (riders paid for the first time are not listed)."""
    async with conn.execute(
        """
        WITH lines AS (
            -- The batch's riders' lines, each beside the same rider's line before it: one
            -- sort, where a lookup per line runs once per pair of lines on a planner that
            -- has not seen the batch's fresh lines counted (PostgreSQL, same transaction).
            SELECT rider_id, batch_id, payee_name, payee_account,
                LAG(batch_id) OVER earlier AS previous_batch,
                LAG(payee_name) OVER earlier AS previous_name,
                LAG(payee_account) OVER earlier AS previous_account
            FROM payout_lines
            WHERE rider_id IN (SELECT rider_id FROM payout_lines WHERE batch_id = :batch)
            WINDOW earlier AS (PARTITION BY rider_id ORDER BY batch_id)
        )
        SELECT l.rider_id, COALESCE(
            (SELECT MAX(c.changed_at) FROM payee_changes AS c
             WHERE c.rider_id = l.rider_id AND c.changed_at <= b.created_at),
            b.created_at)
        FROM lines AS l
        JOIN payout_batches AS b ON b.id = l.batch_id
        WHERE l.batch_id = :batch AND l.previous_batch IS NOT NULL
            AND (l.previous_name IS DISTINCT FROM l.payee_name
                OR l.previous_account IS DISTINCT FROM l.payee_account)
        """,
        {"batch": batch_id},
    ) as cur:
        return {int(row[0]): int(row[1]) async for row in cur}


async def batch_checks(conn: Connection) -> list[BatchCheck]:
    """For every batch, its stored total beside sums over its lines, entries and items."""
    async with conn.execute(
        f"""
        WITH line_sums AS (
            SELECT batch_id, SUM(amount_fen) AS fen, COUNT(*) AS lines
            FROM payout_lines GROUP BY batch_id
        ), entry_sums AS (
            SELECT batch_id, -SUM(amount_fen) AS fen
            FROM ledger WHERE batch_id IS NOT NULL GROUP BY batch_id
        ), item_sums AS (
            SELECT i.batch_id, i.rider_id, SUM(e.amount_fen) AS fen
            FROM payout_items AS i JOIN ledger AS e ON e.id = i.ledger_id
            GROUP BY i.batch_id, i.rider_id
        ), line_checks AS (
            SELECT l.batch_id,
                SUM(CASE WHEN p.id IS NULL OR p.amount_fen <> -l.amount_fen THEN 1 ELSE 0 END)
                    AS without_entry,
                SUM(CASE WHEN COALESCE(s.fen, 0) <> l.amount_fen THEN 1 ELSE 0 END) AS not_matching
            FROM payout_lines AS l
            LEFT JOIN ledger AS p
                ON p.idempotency_key = 'payout:' || l.batch_id || ':' || l.rider_id
            LEFT JOIN item_sums AS s ON s.batch_id = l.batch_id AND s.rider_id = l.rider_id
            GROUP BY l.batch_id
        ), orphans AS (
            SELECT e.batch_id, COUNT(*) AS entries FROM ledger AS e
            WHERE e.batch_id IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM payout_lines AS l
                WHERE l.batch_id = e.batch_id AND l.rider_id = e.rider_id)
            GROUP BY e.batch_id
        )
        SELECT {_BATCH_COLUMNS},
            COALESCE(ls.fen, 0), COALESCE(ls.lines, 0), COALESCE(es.fen, 0),
            COALESCE(lc.without_entry, 0), COALESCE(o.entries, 0), COALESCE(lc.not_matching, 0)
        FROM payout_batches AS b
        LEFT JOIN line_sums AS ls ON ls.batch_id = b.id
        LEFT JOIN entry_sums AS es ON es.batch_id = b.id
        LEFT JOIN line_checks AS lc ON lc.batch_id = b.id
        LEFT JOIN orphans AS o ON o.batch_id = b.id
        ORDER BY b.id
        """  # noqa: S608
    ) as cursor:
        rows = await cursor.fetchall()
    return [
        BatchCheck(BatchRecord(*row[:14]), row[14], row[15], row[16], row[17], row[18], row[19])
        for row in rows
    ]


async def stored_file_hashes(
    conn: Connection,
) -> list[tuple[int, str | None, bytes, bytes]]:
    """(batch id, stored sha256, xlsx, csv) of every exported or paid batch."""
    async with conn.execute(
        "SELECT id, file_sha256, file_xlsx, file_csv FROM payout_batches"
        " WHERE status <> 'open' ORDER BY id"
        if dialect(conn) == "postgresql"
        else "SELECT id, file_sha256, CAST(file_xlsx AS BLOB), CAST(file_csv AS BLOB)"
        " FROM payout_batches WHERE status <> 'open' ORDER BY id"
    ) as cursor:
        rows = await cursor.fetchall()
    return [(int(row[0]), row[1], bytes(row[2] or b""), bytes(row[3] or b"")) for row in rows]


async def reports_paid_twice(conn: Connection) -> list[str]:
    """References listed in more than one payout line (a report paid twice)."""
    if dialect(conn) == "postgresql":
        sql = """
        SELECT ref FROM payout_lines, unnest(string_to_array(report_refs, ',')) AS ref
        WHERE ref <> '' GROUP BY ref HAVING COUNT(*) > 1 ORDER BY ref
        """
    else:
        # Split by turning each list into a JSON array: json_quote escapes whatever the text
        # holds, and a comma inside the quoted text becomes the end of one string and the
        # start of the next. (A recursive split took three times as long.)
        sql = """
        SELECT ref.value FROM payout_lines,
            json_each('[' || replace(json_quote(report_refs), ',', '","') || ']') AS ref
        WHERE ref.value <> '' GROUP BY ref.value HAVING COUNT(*) > 1 ORDER BY ref.value
        """
    async with conn.execute(sql) as cursor:
        rows = await cursor.fetchall()
    return [str(row[0]) for row in rows]
