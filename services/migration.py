"""`bot.py migrate-to`: copy the SQLite database into an empty PostgreSQL one, then audit
both and compare what a county cares about: balances to the fen, reports, photos (read by
`storage.transfer.facts`)."""

from __future__ import annotations

from pathlib import Path

from services.audit import audit
from storage import transfer
from storage.db import Database


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
            facts.append(await transfer.facts(db))
        finally:
            await db.close()
    before, after = facts
    problems.extend(f"{key} differ" for key in before if before[key] != after[key])
    return copied, problems
