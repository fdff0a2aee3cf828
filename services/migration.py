"""`bot.py migrate-to`: copy the SQLite database into an empty PostgreSQL one, then audit
both and compare what a county cares about: balances to the fen, reports, photos."""

from __future__ import annotations

from pathlib import Path

from services.audit import audit
from storage import ledger as ledger_store
from storage import transfer
from storage.db import Database

FACTS = {
    "reports": "SELECT id, reference, status, rider_id FROM reports ORDER BY id",
    "photos": "SELECT report_id, position, sha256, evidence FROM report_photos ORDER BY id",
    "ledger": "SELECT id, rider_id, kind, amount_fen, points, idempotency_key FROM ledger"
    " ORDER BY id",
    "payout batches": "SELECT id, period_key, status, total_fen, file_sha256 FROM payout_batches"
    " ORDER BY id",
}


async def _facts(db: Database) -> dict[str, object]:
    async with db.snapshot() as conn:
        found: dict[str, object] = {"balances": await ledger_store.balances(conn)}
        for name, sql in FACTS.items():
            async with conn.execute(sql) as cursor:
                found[name] = [tuple(row) for row in await cursor.fetchall()]
    return found


async def migrate(source: Path, target_url: str) -> tuple[dict[str, int], list[str]]:
    """Copy, then audit and compare both; (rows per table, problems). No problems: done."""
    copied = await transfer.copy(source, target_url)
    problems: list[str] = []
    facts = []
    for name, target in (("SQLite", source), ("PostgreSQL", target_url)):
        db = Database(target)
        await db.open()
        try:
            problems.extend(f"{name} audit: {line}" for line in await audit(db))
            facts.append(await _facts(db))
        finally:
            await db.close()
    before, after = facts
    problems.extend(f"{key} differ" for key in before if before[key] != after[key])
    return copied, problems
