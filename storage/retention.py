"""SQL for data retention: what the privacy notice promises to delete, deleted."""

from __future__ import annotations

from collections.abc import Collection

from storage.db import Connection, placeholders


async def drop_old_photos(conn: Connection, decided_before: int, finished: Collection[str]) -> int:
    """Delete the stored photos of reports in a `finished` status decided (or, undecided,
    last changed) before `decided_before`; their count."""
    await conn.execute(  # voice notes go with them: Telegram's file id is all that is kept
        "UPDATE report_voices SET file_id = NULL "  # noqa: S608
        "WHERE file_id IS NOT NULL AND report_id IN (SELECT id FROM reports "
        f"WHERE status IN ({placeholders(finished)}) "
        "AND COALESCE(decided_at, updated_at) < ?)",
        (*finished, decided_before),
    )
    cursor = await conn.execute(
        "UPDATE report_photos SET evidence = NULL, evidence_file_id = NULL "  # noqa: S608
        "WHERE evidence IS NOT NULL AND report_id IN (SELECT id FROM reports "
        f"WHERE status IN ({placeholders(finished)}) "
        "AND COALESCE(decided_at, updated_at) < ?)",
        (*finished, decided_before),
    )
    return cursor.rowcount


async def purge_expired_drafts(conn: Connection) -> int:
    """Delete drafts that expired (their photos go with them); their count."""
    for table in ("report_photos", "report_voices"):
        await conn.execute(
            f"DELETE FROM {table} WHERE report_id IN "  # noqa: S608
            "(SELECT id FROM reports WHERE status = 'expired')"
        )
    cursor = await conn.execute("DELETE FROM reports WHERE status = 'expired'")
    return cursor.rowcount


async def leftovers_of_erased_riders(conn: Connection) -> int:
    """Photos still held for riders who asked to be forgotten (normally none); deleted."""
    await conn.execute(
        "DELETE FROM report_voices WHERE report_id IN (SELECT r.id FROM reports r "
        "JOIN users u ON u.id = r.rider_id WHERE u.erased_at IS NOT NULL)"
    )
    cursor = await conn.execute(
        "DELETE FROM report_photos WHERE report_id IN (SELECT r.id FROM reports r "
        "JOIN users u ON u.id = r.rider_id WHERE u.erased_at IS NOT NULL)"
    )
    return cursor.rowcount
